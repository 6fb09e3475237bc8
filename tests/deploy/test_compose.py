"""The Dockerfile and docker-compose.yaml, checked as files (no Docker engine here to build or run them)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_SERVICES = {"airflow-api-server", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
                    "airflow-worker-1", "airflow-worker-2"}
WORKERS = ("airflow-worker-1", "airflow-worker-2")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def dockerfile() -> list[str]:
    """Instructions of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def _env(service: dict) -> dict:
    env = service.get("environment") or {}
    return dict(item.split("=", 1) for item in env) if isinstance(env, list) else env


def test_dockerfile_builds_on_the_official_image_as_the_airflow_user(dockerfile):
    froms = [line for line in dockerfile if line.startswith("FROM ")]
    assert froms == ["FROM apache/airflow:3.3.2-python3.11"]
    users = [(i, line) for i, line in enumerate(dockerfile) if line.startswith("USER ")]
    pips = [(i, line) for i, line in enumerate(dockerfile) if "pip install" in line]
    assert users and users[-1][1] == "USER airflow", "the image must end as the airflow user, never root"
    assert len(pips) == 1
    pip_at, pip = pips[0]
    assert [line for i, line in users if i < pip_at][-1] == "USER airflow", "pip must run as the airflow user"
    assert "-r /opt/cstf/requirements.txt" in pip and "-c /opt/cstf/constraints.txt" in pip and "--no-cache-dir" in pip


def test_dockerfile_pins_the_same_airflow_as_requirements(dockerfile):
    """The base image's Airflow and the pinned apache-airflow must agree, or pip would replace Airflow."""
    pinned = re.search(r"^apache-airflow==(\S+)", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    base = re.search(r"apache/airflow:([\d.]+)-python", dockerfile[0]).group(1)
    assert base == pinned


def test_dockerfile_ships_code_and_configuration_not_simulators(dockerfile):
    copies = [line for line in dockerfile if line.startswith("COPY ")]
    sources = {part for line in copies for part in line.split()[1:-1] if not part.startswith("--")}
    assert {"dags/", "plugins/", "include/", "requirements.txt", "constraints.txt"} <= sources
    assert not sources & {"sim/", "tests/", "bench/", "."}
    env = " ".join(line for line in dockerfile if line.startswith("ENV "))
    for name in ("CSTF_INCLUDE_DIR", "CSTF_TRUSTS_DIR"):
        assert name in env


def test_compose_has_the_topology(services):
    assert set(services) == AIRFLOW_SERVICES | {"postgres", "redis", "airflow-init"}
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")
    for name in AIRFLOW_SERVICES | {"airflow-init"}:
        assert services[name]["build"] == "." and "cstf-airflow" in services[name]["image"], name
    commands = {name: " ".join(services[name]["command"]) for name in AIRFLOW_SERVICES}
    assert commands["airflow-api-server"] == "api-server"
    assert commands["airflow-scheduler"] == "scheduler"
    assert commands["airflow-dag-processor"] == "dag-processor"
    assert commands["airflow-triggerer"] == "triggerer"
    assert services["airflow-init"]["command"] == ["db", "migrate"]
    hostnames = [re.search(r"--celery-hostname (\S+)", commands[w]).group(1) for w in WORKERS]
    assert all(commands[w].startswith("celery worker") for w in WORKERS)
    assert len(set(hostnames)) == 2, hostnames


def test_every_long_running_service_has_a_healthcheck(services):
    for name in AIRFLOW_SERVICES | {"postgres", "redis"}:
        check = services[name].get("healthcheck") or {}
        assert check.get("test"), f"{name} has no healthcheck"
    assert "/api/v2/monitor/health" in " ".join(services["airflow-api-server"]["healthcheck"]["test"])
    for w in WORKERS:
        assert "inspect ping" in " ".join(services[w]["healthcheck"]["test"])


def test_airflow_services_share_one_configuration(services):
    """Same executor, metadata DB, broker and JWT secret everywhere; workers reach the Task Execution API."""
    envs = {name: _env(services[name]) for name in AIRFLOW_SERVICES}
    shared = ("AIRFLOW__CORE__EXECUTOR", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__BROKER_URL",
              "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
              "CSTF_STATE_DB_URL", "CSTF_STAGING_DIR", "CSTF_LANDING_DIR", "CSTF_TRUSTS_DIR")
    for key in shared:
        values = {name: env.get(key) for name, env in envs.items()}
        assert None not in values.values() and len(set(values.values())) == 1, f"{key}: {values}"
    env = envs["airflow-worker-1"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-api-server:8080/execution/"
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://") and "@redis:6379/" in env["AIRFLOW__CELERY__BROKER_URL"]
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert env["CSTF_STATE_DB_URL"].startswith("postgresql+psycopg2://") and env["CSTF_STATE_DB_URL"].endswith("/cstf_state")


def test_secrets_come_from_the_env_file_never_the_compose_file(services):
    for name, service in services.items():
        for key, value in _env(service).items():
            if re.search(r"SECRET|PASSWORD|FERNET|_KEY$", key):
                assert re.fullmatch(r"\$\{[A-Z_]+(:\?[^}]*)?\}", str(value)), f"{name}: {key} is not taken from .env"
            assert not re.search(r"://[^:/]+:(?!\$\{)[^@]+@", str(value)), f"{name}: {key} has a literal password"
    for name in AIRFLOW_SERVICES:
        assert services[name]["env_file"] == [".env"]


def test_workers_share_the_data_volume_and_the_trusts(compose, services):
    """Staging written by a task on one worker is read by the next task on the other: one shared volume."""
    mounts = {name: services[name]["volumes"] for name in AIRFLOW_SERVICES}
    data = {m for ms in mounts.values() for m in ms if m.endswith(":/data/cstf")}
    assert data == {"cstf-data:/data/cstf"} and all("cstf-data:/data/cstf" in ms for ms in mounts.values())
    assert all(any(m.endswith((":/opt/cstf/trusts", ":/opt/cstf/trusts:ro")) for m in ms) for ms in mounts.values())
    assert set(compose["volumes"]) >= {"postgres-db", "cstf-data", "airflow-logs"}
    init = [v for v in services["postgres"]["volumes"] if "docker-entrypoint-initdb.d" in v]
    assert init and (ROOT / init[0].split(":")[0]).exists()
    assert "CREATE DATABASE cstf_state" in (ROOT / init[0].split(":")[0]).read_text()


def test_airflow_waits_for_its_databases_and_the_migration(services):
    for name in AIRFLOW_SERVICES:
        deps = services[name]["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy"
        assert deps["redis"]["condition"] == "service_healthy"
        assert deps["airflow-init"]["condition"] == "service_completed_successfully"


def test_env_example_names_every_variable_compose_requires(compose):
    """Every ${VAR:?...} the compose file insists on is in .env.example, with no real secret in it."""
    required = set(re.findall(r"\$\{([A-Z_]+):\?", (ROOT / "docker-compose.yaml").read_text()))
    example = (ROOT / ".env.example").read_text()
    defined = dict(line.split("=", 1) for line in example.splitlines() if line and not line.startswith("#"))
    assert required and required <= set(defined), required - set(defined)
    for key in required:
        if re.search(r"SECRET|PASSWORD|KEY", key):
            assert defined[key] == "change-me", key
