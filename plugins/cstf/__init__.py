"""ESR <-> Totara CSTF interface.

Pure domain modules (esr, staging, validation, totara, reconcile, ledger,
config) never import Airflow; hooks/ and operators/ are the thin Airflow glue.
"""
__version__ = "0.1.0"
