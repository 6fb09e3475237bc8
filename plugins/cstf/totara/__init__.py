"""Totara Learn External API: client, errors, user snapshot (pure: never imports Airflow)."""
from .client import TotaraClient
from .errors import (TotaraBusinessError, TotaraConfigError, TotaraError, TotaraNotFound, TotaraOperationUnavailable,
                     TotaraQueryError, TotaraRateLimited, TotaraTransientError, TotaraUncertain, classify)

__all__ = ["TotaraClient", "TotaraError", "TotaraBusinessError", "TotaraNotFound", "TotaraQueryError",
           "TotaraConfigError", "TotaraOperationUnavailable", "TotaraRateLimited", "TotaraTransientError",
           "TotaraUncertain", "classify"]
