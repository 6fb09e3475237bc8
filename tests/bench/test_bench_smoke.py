"""`make bench` end to end at a tiny size: the harness runs every benchmark and its table has every row.

Speed is never asserted here (figures belong to bench/); this only shows the harness works:
each benchmark produced a figure for the size, the table and the JSON agree, and the pages were
timed against a state built by the real steps.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from run_all import ROWS  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
SIZE = 200
EXPECTED = [r for r in ROWS if "PostgreSQL" not in r]  # PostgreSQL pages only with --pg


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    workdir = tmp_path_factory.mktemp("bench")
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "run_all.py"), "--sizes", str(SIZE),
                           "--sample", "20", "--ref-seconds", "0.3", "--workdir", str(workdir), "--no-real-totara"],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return workdir, done


def test_table_has_a_row_per_benchmark_with_a_figure_for_the_size(bench_run):
    workdir, done = bench_run
    table = (workdir / "summary.md").read_text()
    assert table.splitlines()[0] == f"| Benchmark | {SIZE} persons |"
    first = table.split("\n\n")[0]  # the benchmarks' table; the projections follow it
    rows = {line.split(" | ")[0].lstrip("| "): line for line in first.splitlines()[2:] if line.startswith("| ")}
    assert list(rows) == EXPECTED
    for name, line in rows.items():
        cell = line.split(" | ")[1]
        assert cell != "—" and not cell.startswith("not measured"), f"{name}: {cell}"
    assert table.split("\n\n")[0] in done.stdout  # the same table is printed
    # The apply projections at a real site's rates (the committed profile: no site here), with and without batches.
    projection = next(p for p in table.split("\n\n") if p.startswith("| apply at a real site's rates"))
    assert "| first load:" in projection and "| typical day:" in projection, projection


def test_figures_are_measured_with_their_reference(bench_run):
    workdir, _ = bench_run
    figures = {f["name"]: f for f in json.loads((workdir / "summary.json").read_text())}
    assert set(figures) == set(EXPECTED)
    for f in figures.values():
        assert f["size"] == SIZE and math.isfinite(f["figure"]), f
    # Every comparison with a same-run reference names that reference.
    for name in ("stage", "validate", "plan users (steady)", "plan competences", "apply users", "apply competences",
                 "outbound (plan + file)", "competence status: a day", "pages: slowest (SQLite)",
                 "year: day 365 (SQLite)"):
        assert figures[name]["ratio"] is not None and figures[name]["reference"], figures[name]


def test_state_for_the_pages_holds_what_a_run_writes(bench_run):
    workdir, _ = bench_run
    built = json.loads((workdir / str(SIZE) / "state" / "bench_state.json").read_text())
    counts = built["counts"]
    assert counts["files"] == 2 and counts["validation_results"] > 0 and counts["quarantine"] > 0
    assert counts["plan_actions"] == built["user_actions"] + built["competence_actions"]
    assert built["user_actions"] >= SIZE * 0.9          # an empty Totara: about one create a person
    assert built["competence_actions"] > built["user_actions"] * 5
    assert counts["action_outcomes"] > 0 and counts["outbound_ledger"] == built["outbound_rows"] > 0


def test_outbound_day_reruns_the_outbound_step_of_the_built_state(bench_run, tmp_path):
    from sqlalchemy import create_engine, text
    workdir, _ = bench_run
    state = workdir / str(SIZE) / "state"
    built = json.loads((state / "bench_state.json").read_text())
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_outbound_day.py"), "--state", str(state),
                           "--repeat", "2", "--scratch", str(tmp_path)], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    repeats = [line for line in done.stdout.splitlines() if line.startswith("repeat ")]
    assert len(repeats) == 2, done.stdout
    for line in repeats:
        assert f"{built['outbound_rows']:,} rows in the file" in line and " x" in line, line
    # The same output from both copies (ledger, events, file lines), and the statements that wrote it are named.
    assert repeats[0].split("hashes ")[1] == repeats[1].split("hashes ")[1]
    assert "INSERT INTO outbound_ledger" in done.stdout and done.stdout.splitlines()[-1].startswith("median x")
    # The ledger floor inserted the rows the step left, as they ended, into a fresh copy (left there), no events.
    n = built["outbound_rows"]
    assert done.stdout.count(f"ledger floor: the same {n:,} rows inserted as they ended") == 2, done.stdout
    # The same rows bare: those rows again into a scratch table of the ledger's columns, dropped afterwards.
    assert done.stdout.count(f"same rows bare: those {n:,} rows, every column") == 2, done.stdout
    floor = create_engine(f"sqlite:///{tmp_path / 'state' / 'state.db'}")
    with floor.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM outbound_ledger WHERE state = 'written'")).scalar_one() == n
        assert conn.execute(text("SELECT COUNT(*) FROM outbound_ledger_events")).scalar_one() == 0
        assert not conn.execute(text("SELECT name FROM sqlite_master WHERE name = 'bench_same_rows_bare'")).all()
    floor.dispose()
    # The built state itself is untouched: the copies were worked on.
    engine = create_engine(built["db_url"])
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM outbound_ledger")).scalar_one() == built["outbound_rows"]
    engine.dispose()
