"""Where things are: environment settings with defaults (documented in the README)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cstf.paths import include_dir


@dataclass(frozen=True)
class Settings:
    """Deployment settings. Every path can be moved with an environment variable."""
    workdir: Path
    landing_dir: Path
    staging_dir: Path
    reports_dir: Path
    trusts_dir: Path
    state_db_url: str

    @classmethod
    def from_env(cls, env: dict | None = None) -> "Settings":
        env = os.environ if env is None else env
        workdir = Path(env.get("CSTF_WORKDIR", "work")).resolve()
        return cls(
            workdir=workdir,
            landing_dir=Path(env.get("CSTF_LANDING_DIR", workdir / "landing")).resolve(),
            staging_dir=Path(env.get("CSTF_STAGING_DIR", workdir / "staging")).resolve(),
            reports_dir=Path(env.get("CSTF_REPORTS_DIR", workdir / "reports")).resolve(),
            trusts_dir=Path(env.get("CSTF_TRUSTS_DIR", include_dir() / "trusts")).resolve(),
            state_db_url=env.get("CSTF_STATE_DB_URL") or f"sqlite:///{workdir / 'state.db'}",
        )

    def landing_for(self, vpd: str) -> Path:
        """Landing folder of a trust: <landing>/<VPD>/ when it exists, else the landing folder itself."""
        per_trust = self.landing_dir / vpd
        return per_trust if per_trust.is_dir() else self.landing_dir
