"""One simulator subprocess per test session (seeded default fixture, control API on); each test starts
from a fresh reset: default fixture, real clock, no faults, default settings."""
from __future__ import annotations

import pytest

from sim.totara.testing import running_simulator
from simtotara_helpers import Api


@pytest.fixture(scope="session")
def sim_server(tmp_path_factory):
    with running_simulator(tmp_path_factory.mktemp("totara-sim")) as handle:
        yield handle


@pytest.fixture
def sim(sim_server):
    sim_server.control("reset")  # also puts the clock back to real time
    return sim_server


@pytest.fixture
def api(sim):
    return Api(sim)

