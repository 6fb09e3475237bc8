"""What the `cstf` commands share: settings from the command line, the state DB, a trust's settings.

Its own module so that cli.py and the audit/report commands it loads both import it, and not each other.
"""
from __future__ import annotations

import os


def settings_from(args):
    from cstf.config import Settings
    env = dict(os.environ)
    if getattr(args, "workdir", None):
        env["CSTF_WORKDIR"] = str(args.workdir)
        env.pop("CSTF_STATE_DB_URL", None) if "CSTF_STATE_DB_URL" not in os.environ else None
        for k in ("CSTF_STAGING_DIR", "CSTF_REPORTS_DIR", "CSTF_LANDING_DIR"):
            env.pop(k, None)
    if getattr(args, "trusts", None):
        env["CSTF_TRUSTS_DIR"] = str(args.trusts)
    return Settings.from_env(env)


def state_db(settings):
    from cstf.ledger import StateDB
    settings.workdir.mkdir(parents=True, exist_ok=True)
    db = StateDB.from_url(settings.state_db_url)
    db.migrate()
    return db


def trust_for(settings, vpd: str):
    """The trust's settings file when there is one; the defaults otherwise (e.g. a file from elsewhere)."""
    from cstf.config import TrustSettings, load_trusts
    try:
        trusts = load_trusts(settings.trusts_dir)
    except Exception:
        trusts = {}
    return trusts.get(vpd) or TrustSettings(vpd=vpd)
