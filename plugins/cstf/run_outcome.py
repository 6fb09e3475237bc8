"""Whether a trust's run of esr_inbound is good news or something an on-call engineer must look at (no Airflow).

The run report always gets written; this decides the run's own state from it: a rejected or held file, a held
trust, a failed step, a failed apply or an action still held make the run fail, so whoever alerts on failed DAG
runs hears of it. docs/operations.md says what each problem means and what to do.
"""
from __future__ import annotations


def problems(report: dict, failed_steps: list[str], full_extract: dict | None = None) -> list[str]:
    """What is wrong with the run, each as one line for the log and the failure message; [] when all is well.

    report: cstf.inbound.run_report's summary; failed_steps: this trust's tasks that failed (or could not run
    because an upstream one failed); full_extract: the full-extract request a held trust is waiting on, if any.
    """
    out = [f"step {step} failed: see its log" for step in failed_steps]
    for f in report.get("files", []):
        if f.get("status") in ("rejected", "held"):
            out.append(f"file {f['name']} {f['status']}: {f.get('reason') or 'see the run page'}")
    if report.get("held"):
        request = (f"full extract requested from ESR as {full_extract['name']} at {full_extract['at']}"
                   if full_extract else "no full-extract request sent: ask ESR for a full extract (or configure the "
                   "ESR FTPS Connection so the run asks)")
        out.append(f"VPD {report['vpd']} is held, no suspensions until a full file arrives: "
                   f"{report.get('hold_reason')}; {request}")
    users = report.get("users") or {}
    failed = sum(n for key, n in (users.get("outcomes") or {}).items() if key.endswith(":failed"))
    if failed:
        out.append(f"{failed} account change(s) failed in Totara after retries")
    competences = report.get("competences") or {}
    cfailed = sum(n for key, n in (competences.get("outcomes") or {}).items() if key.endswith(":failed"))
    if cfailed:
        out.append(f"{cfailed} competence change(s) failed in Totara after retries")
    if users.get("held") and report.get("mode") != "plan":
        reasons = "; ".join(users.get("hold_reasons") or []) or "see the Holds page"
        out.append(f"{users['held']} account change(s) held, not applied: {reasons}")
    return out
