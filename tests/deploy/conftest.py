"""Fixtures of the deployment tests: the `cluster` marker and a Redis server for the cluster."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

REDIS_URL = os.environ.get("CSTF_CLUSTER_REDIS", "redis://127.0.0.1:6379")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "cluster: starts the native Airflow cluster (PostgreSQL, Redis, Celery); select with -m cluster")


def _answers(url: str) -> str | None:
    """None when Redis answers at url, else why not."""
    import redis
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=3)
        client.ping()
        client.close()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not available here"
        return f"Redis not reachable at {url}: {type(exc).__name__}: {exc}"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """The machine's Redis server; when none answers, a private redis-server for the session if one is
    installed; else skip with the reason (a failure under CI=true)."""
    reason = _answers(REDIS_URL)
    if reason is None:
        yield REDIS_URL
        return
    binary = shutil.which("redis-server")
    if binary:
        from deploy.cluster import free_port
        port = free_port()
        folder = tmp_path_factory.mktemp("redis")
        proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(folder)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"redis://127.0.0.1:{port}"
        try:
            import time
            for _ in range(50):
                if _answers(url) is None:
                    break
                time.sleep(0.1)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)
