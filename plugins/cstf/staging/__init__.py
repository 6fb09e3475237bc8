"""Parquet staging: per-file tables and the current state per VPD (pure: no Airflow)."""
from cstf.staging.current import apply_file
from cstf.staging.store import StagingStore, write_parquet_atomic

__all__ = ["StagingStore", "apply_file", "write_parquet_atomic"]
