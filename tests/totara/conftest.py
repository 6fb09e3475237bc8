"""Fixtures of the Totara client tests: one simulator subprocess per session, reset before every test,
and clients pointed at it (closed after the test)."""
from __future__ import annotations

import threading

import pytest
import requests

from cstf.totara import TotaraClient
from sim.totara.testing import running_simulator


@pytest.fixture(scope="session")
def totara_sim_server(tmp_path_factory):
    with running_simulator(tmp_path_factory.mktemp("totara-client-sim")) as handle:
        yield handle


@pytest.fixture
def sim(totara_sim_server):
    totara_sim_server.control("reset")  # default fixture, real clock, no faults, default settings
    return totara_sim_server


class FakeTime:
    """clock + sleep for the client: sleeping advances the clock instantly, and the waits are recorded."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time():
    return FakeTime()


@pytest.fixture
def make_client(sim):
    clients = []

    def make(**options) -> TotaraClient:
        client = TotaraClient(sim.url, sim.client_id, sim.client_secret, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client, fake_time):
    """A default client whose back-off sleeps are instant (fake clock), so fault tests stay fast."""
    return make_client(sleep=fake_time.sleep, clock=fake_time.clock)


class InFlight:
    """A requests.Session factory that counts concurrent HTTP requests (client side, to the simulator)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.current = 0
        self.peak = 0
        counter = self

        class CountingSession(requests.Session):
            def request(self, *args, **kwargs):
                with counter.lock:
                    counter.current += 1
                    counter.peak = max(counter.peak, counter.current)
                try:
                    return super().request(*args, **kwargs)
                finally:
                    with counter.lock:
                        counter.current -= 1

        self.session_factory = CountingSession


@pytest.fixture
def in_flight():
    return InFlight()
