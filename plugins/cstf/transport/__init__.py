"""ESR transport (spec esr-interface §7.1, §2.6, §8): fetch GO and confirmation files from ESR's
Out/ folder, upload achievement files and full-extract requests to In/. No Airflow here; the FTPS
connection is cstf.hooks.esr_ftps."""
from .gdr import build_request, gdr_bytes, gdr_name, hold_cause, next_sequence
from .remote import ChangedRemoteFile, FetchPlan, Known, RemoteFile, RemoteFolder, TransportError, plan_fetch, temporary_name

__all__ = ["ChangedRemoteFile", "FetchPlan", "Known", "RemoteFile", "RemoteFolder", "TransportError", "build_request",
           "gdr_bytes", "gdr_name", "hold_cause", "next_sequence", "plan_fetch", "temporary_name"]
