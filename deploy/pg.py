"""Scratch PostgreSQL databases of the local launchers and test topologies (`make cluster`, `make airflow`, the
scheduler test harness), on the server CSTF_CLUSTER_PG names (the machine's PostgreSQL by default)."""
from __future__ import annotations

import os

PG_SERVER = os.environ.get("CSTF_CLUSTER_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432")


def _each(names, statements, server: str, connect_timeout: int | None = None) -> None:
    import sqlalchemy as sa
    engine = sa.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT",
                              connect_args={"connect_timeout": connect_timeout} if connect_timeout else {})
    try:
        with engine.connect() as conn:
            for name in names:
                for statement in statements(conn, name):
                    conn.execute(sa.text(statement))
    finally:
        engine.dispose()


def recreate_databases(*names: str, server: str = PG_SERVER) -> None:
    """Each database dropped (connections ended) and created empty."""
    _each(names, lambda _c, n: (f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)', f'CREATE DATABASE "{n}"'), server)


def drop_databases(*names: str, server: str = PG_SERVER) -> None:
    _each(names, lambda _c, n: (f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)',), server)


def ensure_database(name: str, server: str = PG_SERVER, connect_timeout: int = 3) -> str:
    """The database's URL, created when missing (kept otherwise). Raises when the server does not answer."""
    import sqlalchemy as sa

    def statements(conn, n):
        exists = conn.execute(sa.text("select 1 from pg_database where datname = :d"), {"d": n}).scalar()
        return () if exists else (f'CREATE DATABASE "{n}"',)
    _each([name], statements, server, connect_timeout)
    return f"{server}/{name}"
