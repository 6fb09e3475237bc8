"""Settings: deployment (environment) and per trust (YAML), typed and checked."""
from cstf.config.settings import Settings
from cstf.config.trust import TrustConfigError, TrustSettings, load_trust, load_trusts

__all__ = ["Settings", "TrustConfigError", "TrustSettings", "load_trust", "load_trusts"]
