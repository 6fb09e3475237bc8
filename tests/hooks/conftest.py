"""A Totara simulator for the hook tests (one per module; the hook tests are few)."""
from __future__ import annotations

import pytest

from sim.totara.testing import running_simulator


@pytest.fixture(scope="module")
def totara_sim(tmp_path_factory):
    with running_simulator(tmp_path_factory.mktemp("totara-hook-sim")) as handle:
        yield handle
