"""One conformance suite, two targets: every test runs against the simulator and, when one is configured, a real
Totara 17 site with our local_esrsync plugin (see target.py). Where they differ, the real site is right."""
from __future__ import annotations

import pytest

from sim.totara.testing import running_simulator

from .target import NO_REAL_SITE, Target, real_site_config


@pytest.fixture(scope="session")
def _simulator(tmp_path_factory):
    with running_simulator(tmp_path_factory.mktemp("conformance-sim")) as handle:
        yield handle


@pytest.fixture(scope="session", params=["simulator", "real"])
def target(request):
    if request.param == "simulator":
        sim = request.getfixturevalue("_simulator")
        t = Target("simulator", sim.url, sim.client_id, sim.client_secret, cron=lambda: sim.control("cron"),
                   capability=lambda name, allowed: _sim_capability(sim, name, allowed))
    else:
        config = real_site_config()
        if config is None:
            pytest.skip(NO_REAL_SITE)
        t = Target("real", config["url"], config["client_id"], config["client_secret"], cron=config["cron"],
                   capability=config.get("capability"))
    yield t
    t.close()


def _sim_capability(sim, name: str, allowed: bool) -> None:
    """The simulator's way of taking a capability from the service account's role (site setting)."""
    denied = set(sim.control("settings")["settings"]["denied_capabilities"])
    denied = denied - {name} if allowed else denied | {name}
    sim.control("settings", {"denied_capabilities": sorted(denied)})


@pytest.fixture
def client(target):
    return target.client()
