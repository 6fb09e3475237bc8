"""A stand-alone apply worker the fault tests SIGKILL mid-apply: it runs one apply step of one run exactly
as the Airflow task does (same job, same state DB, same plan), in a process of its own.

    python -m tests.faults.worker '{"step": "users", "vpd": "999", "run_id": "...", "run_date": "2024-06-02",
                                    "mode": "apply", "try_number": 1, "totara": {"url": ..., "client_id": ...,
                                    "client_secret": ..., "timeout_read": 3}}'
"""
from __future__ import annotations

import json
import sys
from datetime import date


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    from cstf import achievements, inbound, lifecycle
    from cstf.config import Settings, load_trusts
    from cstf.ledger import StateDB
    from cstf.totara import TotaraClient
    from cstf.totara import client as client_module

    # Back off in milliseconds, as the in-process tasks of the suite do.
    client_module.BACKOFF_START_S, client_module.BACKOFF_CAP_S = 0.02, 0.2
    settings = Settings.from_env()
    trust = load_trusts(settings.trusts_dir)[spec["vpd"]]
    db = StateDB.from_url(settings.state_db_url)
    ctx = inbound.RunContext(run_id=spec["run_id"], dag_id="esr_inbound", task_id=f"apply_{spec['step']}",
                             try_number=int(spec["try_number"]), run_date=date.fromisoformat(spec["run_date"]),
                             mode=spec["mode"])
    job = inbound.InboundJob(settings, trust, db, ctx)
    t = spec["totara"]
    client = TotaraClient(t["url"], t["client_id"], t["client_secret"], timeout=(5, float(t["timeout_read"])),
                          batch_size=int(t.get("batch_size", 200)))
    if spec["step"] == "users":
        lifecycle.apply_plan(job, client, dob_for=lifecycle.dob_lookup(job))
    else:
        achievements.apply_plan(job, client)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
