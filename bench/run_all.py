"""`make bench`: every benchmark at 10,000, 50,000 and 100,000 persons, in one table.

For each size the GO full file is generated once (sim.esr, cached in work/bench/<N>/feed/), then:
stage (against a pyarrow.csv parse of the same lines), validate (against plain pandas checks),
plan users and plan competences (against a plain merge of the same tables), apply users and apply
competences (a bounded sample through the real appliers against the simulator, against the
simulator's raw mutation rate, with the projected time of the whole plan), outbound (plan + the
achievement file for one completion per account, against a bare insert of as many rows) and the
auditor pages on the state of that run (bench_pages: slowest page against the 1 s bar). Each size
runs in its own process, so its peak RSS is its own; "peak RSS (largest step)" runs each step of the first load
in a process of its own, as Airflow runs a task, and names the largest (bench_memory). After the sizes: a real
Totara site's rows when one is
configured (bench_real_totara), and the apply projections at a real site's rates (bench_projection: the
appliers against the simulator slowed to the costs measured on a real site, first load and a typical day of the
largest size, with batches and without). Plan job assignments: first load and a day (bench_plan_jobs, bar 10 s).
A year of daily runs (bench_year: days 1, 30 and 365 on a state DB holding the days between; SQLite, and
PostgreSQL with --pg): a day's inbound plus outbound at day 365 against day 30 (bar ×1.25).

    .venv/bin/python bench/run_all.py                       # 10k, 50k, 100k (several minutes)
    .venv/bin/python bench/run_all.py --quick               # smoke run at small sizes
    .venv/bin/python bench/run_all.py --sizes 10000 --pg    # pages on PostgreSQL too

Prints one markdown table (a row per benchmark, a column per size) and writes it to
work/bench/summary.md (figures as JSON beside it). Ratios are the figure divided by the reference
measured in the same run: for times, lower is better; for rates (actions/s), higher is better.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from common import ROOT, Figure, bare_insert_seconds, markdown_table, peak_rss_mb, progress

SIZES = (10_000, 50_000, 100_000)
QUICK_SIZES = (300, 1_000)
ROWS = ["stage", "validate", "plan users (steady)", "plan users (initial load)", "plan competences",
        "apply users", "apply users: whole plan (projected)", "apply competences",
        "apply competences: whole plan (projected)", "outbound (plan + file)", "competence status: a day",
        "plan job assignments (first load)", "plan job assignments (a day)", "pages: slowest (SQLite)",
        "pages: slowest (PostgreSQL)", "CSV download", "state DB built",
        "year: day 1 (SQLite)", "year: day 30 (SQLite)", "year: day 365 (SQLite)",
        "year: day 1 (PostgreSQL)", "year: day 30 (PostgreSQL)", "year: day 365 (PostgreSQL)", "peak RSS", "peak RSS (largest step)"]
YEAR_DBS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def _pages_figures(name: str, size: int, m: dict) -> list[Figure]:
    s = m["slowest"]
    figs = [Figure(name, size, s["seconds"], "s", m["bar_ratio"],
                   f"of the 1 s bar; {s['page']}; PK lookup {m['reference_s'] * 1000:.2f} ms, "
                   f"{len(m['pages'])} pages" + (f", {len(m['unavailable'])} not available yet" if m["unavailable"] else ""))]
    return figs


def _year_figures(size: int, m: dict) -> list[Figure]:
    """Days 1, 30 and 365 of bench_year per database: a day's inbound plus outbound; day 365 against day 30."""
    figs = []
    for db, days in m["dbs"].items():
        by = {x["day"]: x for x in days}
        total = {d: x["inbound_s"] + x["outbound_s"] for d, x in by.items()}
        for d, x in sorted(by.items()):
            note = (f"in {x['inbound_s']:.1f} s + out {x['outbound_s']:.1f} s; state DB {x['db_mb']:.0f} MB "
                    f"({x.get('live_mb', x['db_mb']):.0f} MB in use), {x['tables'].get('plan_actions', 0):,} plan "
                    f"actions, 90 days' detail")
            if d == 365 and 30 in total:
                figs.append(Figure(f"year: day {d} ({YEAR_DBS[db]})", size, total[d], "s", total[d] / total[30],
                                   f"day 30 {total[30]:.1f} s, bar ×1.25; {note}"))
            else:
                figs.append(Figure(f"year: day {d} ({YEAR_DBS[db]})", size, total[d], "s", None, note))
    return figs


def run_size(size: int, workdir: Path, sample: int, ref_seconds: float, repeat: int, pg: bool) -> list[Figure]:
    """Every benchmark at one size (in this process). A benchmark that raises gives "not measured" rows
    with the error, and the others still run: the tree changes under a long run."""
    import bench_apply
    import bench_memory
    import bench_pages
    import bench_plan_competences
    import bench_plan_jobs
    import bench_plan_users
    import bench_stage
    import bench_status_day
    import bench_validate
    import bench_year
    from build_state import build_state, generate_feed

    figs: list[Figure] = []
    here = workdir / str(size)
    feed = generate_feed(size, here / "feed")
    got: dict = {}

    def section(rows: list[str], what: str, fn) -> None:
        progress(f"{size:,}: {what}")
        try:
            figs.extend(fn())
        except Exception as exc:  # noqa: BLE001 - reported in the table and on stderr
            why = f"{type(exc).__name__}: {str(exc).splitlines()[0][:150] if str(exc) else ''}"
            progress(f"{size:,}: {what} FAILED: {why}")
            traceback.print_exc()
            figs.extend(Figure(r, size, float("nan"), "", None, why) for r in rows)

    def stage():
        with tempfile.TemporaryDirectory(dir=here) as tmp:
            st = bench_stage.measure(feed, Path(tmp), repeat=repeat, validate=False)
        got["go"] = st.pop("go")
        return [Figure("stage", size, st["stage_s"], "s", st["stage_s"] / st["reference_parse_s"],
                       f"pyarrow.csv parse {st['reference_parse_s']:.2f} s; {st['mb']:.0f} MB")]

    def validate():
        tables = {k: v.to_pandas(date_as_object=False) for k, v in got.pop("go").tables.items()}
        va = bench_validate.measure(tables)
        return [Figure("validate", size, va["validate_s"], "s", va["ratio"],
                       f"pandas checks {va['reference_s']:.2f} s; {va['rows']:,} rows")]

    def plan_users():
        pu = got["pu"] = bench_plan_users.measure(size, repeat=repeat)
        return [Figure("plan users (steady)", size, pu["steady_s"], "s", pu["steady_s"] / pu["reference_s"],
                       f"merge {pu['reference_s']:.2f} s; {pu['steady_actions']:,} actions"),
                Figure("plan users (initial load)", size, pu["initial_s"], "s", pu["initial_s"] / pu["reference_s"],
                       f"merge {pu['reference_s']:.2f} s; {pu['initial_actions']:,} creates")]

    def plan_competences():
        pc_ = got["pc"] = bench_plan_competences.measure(size * 15, repeat=repeat)
        return [Figure("plan competences", size, pc_["plan_s"], "s", pc_["plan_s"] / pc_["reference_s"],
                       f"merge {pc_['reference_s']:.2f} s; {pc_['actions']:,} actions")]

    def apply():
        ap = bench_apply.measure(sample, ref_seconds, workdir=here)
        out = [Figure("apply users", size, ap["users_per_s"], "actions/s", ap["users_per_s"] / ap["update_per_s"],
                      f"raw core_user_update_user {ap['update_per_s']:.0f}/s; {ap['users']:,} creates, "
                      f"{ap['concurrency']} in flight, {ap['users_not_done']} not done"),
               Figure("apply competences", size, ap["competences_per_s"], "actions/s",
                      ap["competences_per_s"] / ap["mark_per_s"],
                      f"raw mark_certification_complete {ap['mark_per_s']:.0f}/s; {ap['competences']:,} actions, "
                      f"{ap['competences_not_done']} not done")]
        if "pu" in got:
            n = got["pu"]["initial_actions"]
            out.append(Figure("apply users: whole plan (projected)", size, n / ap["users_per_s"], "s", None,
                              f"{n:,} creates of the initial load"))
        if "pc" in got:
            n = got["pc"]["to_apply"]
            out.append(Figure("apply competences: whole plan (projected)", size, n / ap["competences_per_s"], "s",
                              None, f"{n:,} mark-complete and evidence actions"))
        return out

    def state():
        t = time.perf_counter()
        built = got["built"] = build_state(size, here / "state", feed=feed)
        build_s = time.perf_counter() - t
        (here / "state" / "bench_state.json").write_text(json.dumps(built, default=str))
        counts = built["counts"]
        out = [Figure("state DB built", size, build_s, "s", None,
                      f"{counts.get('plan_actions', 0):,} plan actions, {counts.get('action_outcomes', 0):,} "
                      f"outcomes, {counts.get('outbound_ledger', 0):,} ledger rows; {built['status_note']}")]
        sec = built["seconds"]
        if "outbound" in built.get("errors", {}):
            out.append(Figure("outbound (plan + file)", size, float("nan"), "s", None, built["errors"]["outbound"][:150]))
        else:
            out_s = sec.get("outbound_plan", 0) + sec.get("outbound_write", 0)
            ref = bare_insert_seconds(built["db_url"], built["outbound_completions"])
            out.append(Figure("outbound (plan + file)", size, out_s, "s", out_s / ref,
                              f"bare insert of {built['outbound_completions']:,} rows {ref:.2f} s; "
                              f"{built['outbound_rows']:,} rows in the file"))
        return out

    def pages_sqlite():
        built = got["built"]
        pm = bench_pages.measure(built["db_url"], built["run_id"])
        progress(f"{size:,}: pages on SQLite:\n" + bench_pages.report(pm))
        c = pm["csv"]
        return _pages_figures("pages: slowest (SQLite)", size, pm) + [
            Figure("CSV download", size, c["bytes"] / 1e6, "MB", None,
                   f"{c['report']}: {c['rows']:,} rows in {c['seconds']:.2f} s")]

    def pages_pg():
        url, schema = bench_pages.pg_schema_url()
        try:
            built_pg = build_state(size, here / "state_pg", url, feed=feed)
            pm = bench_pages.measure(url, built_pg["run_id"])
            progress(f"{size:,}: pages on PostgreSQL:\n" + bench_pages.report(pm))
            return _pages_figures("pages: slowest (PostgreSQL)", size, pm)
        finally:
            bench_pages.drop_pg_schema(schema)

    section(["stage"], f"stage ({repeat}x each side)", stage)
    section(["validate"], "validate", validate)
    section(["plan users (steady)", "plan users (initial load)"], "plan users", plan_users)
    section(["plan competences"], f"plan competences ({size * 15:,} achievements)", plan_competences)
    section(["apply users", "apply competences"], f"apply users and competences ({sample:,} each) against the simulator",
            apply)
    section(["state DB built", "outbound (plan + file)"], "the state of a run (build_state) for outbound and the pages",
            state)
    def status_day():
        with tempfile.TemporaryDirectory(dir=here) as tmp:
            m = bench_status_day.measure(f"sqlite:///{Path(tmp) / 'status.db'}", size, 15, 0.01)
        return [Figure("competence status: a day", size, m["day_s"], "s", m["day_s"] / m["whole_s"],
                       f"whole-trust rewrite of {m['rows']:,} rows {m['whole_s']:.1f} s; {m['persons_rewritten']:,} "
                       f"persons changed, {m['rows_written']:,} rows rewritten")]

    section(["competence status: a day"], "a day's competence status update (1% of persons changed)", status_day)

    def plan_jobs():
        m = bench_plan_jobs.measure(size)
        return [Figure("plan job assignments (first load)", size, m["first_s"], "s", m["first_s"] / 10.0,
                       f"bar 10 s; {m['assignments']:,} assignments, {m['first_actions']:,} actions (with hierarchy)"),
                Figure("plan job assignments (a day)", size, m["day_s"], "s", m["day_s"] / m["first_s"],
                       f"~1% transferred, 0.1% new managers: {m['day_actions']:,} actions; unchanged day "
                       f"{m['steady_s']:.2f} s, {m['steady_actions']} actions")]

    section(["plan job assignments (first load)", "plan job assignments (a day)"], "plan job assignments", plan_jobs)
    if "built" in got:
        section(["pages: slowest (SQLite)", "CSV download"], "pages on SQLite", pages_sqlite)
    if pg:
        section(["pages: slowest (PostgreSQL)"], "the state again on PostgreSQL, then the pages", pages_pg)

    def year():
        # 90 days of plan detail (the trust default keeps 400): the year shows the state DB bounded by retention.
        m = bench_year.measure(size, tuple(YEAR_DBS) if pg else ("sqlite",), workdir=here, detail_days=90)
        (here / "year.json").write_text(json.dumps(m, default=str))
        progress(f"{size:,}: a year of daily runs:\n" + bench_year.report(m))
        return _year_figures(size, m)

    year_rows = [f"year: day {d} ({YEAR_DBS[db]})" for db in (YEAR_DBS if pg else ("sqlite",)) for d in (1, 30, 365)]
    # Last: it sets the state DB's clock to the simulated days while it runs.
    section(year_rows, "a year of daily runs (days 1, 30 and 365 on a state DB with the days between)", year)
    figs.append(Figure("peak RSS", size, peak_rss_mb(), "MB", None, "this whole bench process"))

    def memory():
        res = bench_memory.measure(size, workdir, keep=False)
        (here / "memory.json").write_text(json.dumps(res))
        progress(f"{size:,}: peak RSS of each step in its own process:\n" + bench_memory.report(res))
        top = bench_memory.largest(res)
        if top is None:
            raise RuntimeError(next((f"{r['step']}: {r['error']}" for r in res if "error" in r), "no step measured"))
        others = sorted((r for r in res if r.get("kind") == "step" and "peak_mb" in r and r is not top),
                        key=lambda r: -r["peak_mb"])[:2]
        failed = [f"{r['step']} failed: {r['error'][:80]}" for r in res if "error" in r]
        note = (f"of the {bench_memory.LIMIT_MB:,} MB bar; {top['step']}; next "
                + ", ".join(f"{r['step']} {r['peak_mb']:,.0f} MB" for r in others) + "".join(f"; {f}" for f in failed))
        return [Figure("peak RSS (largest step)", size, top["peak_mb"], "MB", top["peak_mb"] / bench_memory.LIMIT_MB, note)]

    section(["peak RSS (largest step)"], "peak RSS of each step of the first load, each in its own process", memory)
    return figs


def _retime_pages(size: int, workdir: Path, out: Path) -> None:
    """The pages change more often than the state takes to build: time them again on the kept state."""
    import bench_pages
    built = json.loads((workdir / str(size) / "state" / "bench_state.json").read_text())
    progress(f"{size:,}: pages on SQLite again (state of the last run)")
    pm = bench_pages.measure(built["db_url"], built["run_id"])
    progress(bench_pages.report(pm))
    c = pm["csv"]
    fresh = _pages_figures("pages: slowest (SQLite)", size, pm) + [
        Figure("CSV download", size, c["bytes"] / 1e6, "MB", None, f"{c['report']}: {c['rows']:,} rows in {c['seconds']:.2f} s")]
    kept = [f for f in json.loads(out.read_text()) if f["name"] not in {x.name for x in fresh}]
    out.write_text(json.dumps(kept + [f.as_dict() for f in fresh]))


def _real_totara(workdir: Path, quick: bool) -> str | None:
    """Apply throughput on a real Totara site, one call per action against batches (bench_real_totara), when one is
    configured (TOTARA_URL / TOTARA_SITE_HOME / TOTARA_SRC, or the site of `make totara-site`); else None."""
    from sim.totara.testing import DEFAULT_SITE_HOME, real_site_config
    if real_site_config() is None and not (DEFAULT_SITE_HOME / "connection.json").exists():
        progress("real Totara site rows: no site configured (make totara-site, or TOTARA_URL ...): skipped")
        return None
    progress("=== a real Totara site: one call per action against batches ===")
    cmd = [sys.executable, str(Path(__file__).with_name("bench_real_totara.py")),
           "--out", str(workdir / "real_totara.json")] + (["--accounts", "50", "--per-user", "2"] if quick else [])
    done = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    sys.stderr.write(done.stderr)
    if done.returncode:
        return f"Real Totara site: not measured (exit {done.returncode}): {done.stderr.strip().splitlines()[-1:]}"
    return done.stdout.strip()


def _projection(persons: int, sample: int) -> str:
    """The appliers against the simulator slowed to a real site's measured costs, and the first load and a typical
    day projected at those rates with batches and without (bench_projection; always: the committed profile when no
    site was measured here)."""
    progress("=== apply at a real Totara site's rates (the simulator slowed to its measured costs) ===")
    cmd = [sys.executable, str(Path(__file__).with_name("bench_projection.py")), "--persons", str(persons),
           "--accounts", str(min(200, sample)), "--competences", str(min(400, 2 * sample))]
    done = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    sys.stderr.write(done.stderr)
    if done.returncode:
        return f"Apply at a real site's rates: not measured (exit {done.returncode}): {done.stderr.strip().splitlines()[-1:]}"
    return done.stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", help=f"persons per run (default {', '.join(map(str, SIZES))})")
    ap.add_argument("--quick", action="store_true", help=f"a smoke run: sizes {QUICK_SIZES}, small samples, one try")
    ap.add_argument("--sample", type=int, help="actions applied per step against the simulator (default 2000)")
    ap.add_argument("--ref-seconds", type=float, help="seconds of the simulator's raw mutation rate (default 3)")
    ap.add_argument("--pg", action="store_true", help="the pages on PostgreSQL too")
    ap.add_argument("--workdir", type=Path, default=ROOT / "work" / "bench")
    ap.add_argument("--pages-only", action="store_true",
                    help="time the pages again on each size's state of the last run (SQLite) and update its rows")
    ap.add_argument("--table-only", action="store_true",
                    help="measure nothing: the table again from the sizes' last figures (work/bench/figures_<N>.json)")
    ap.add_argument("--no-real-totara", action="store_true",
                    help="skip the real Totara site rows even when a site is configured (see bench_real_totara.py)")
    ap.add_argument("--one-size", type=int, help=argparse.SUPPRESS)   # the child process of one size
    ap.add_argument("--figures-out", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    sizes = a.sizes or list(QUICK_SIZES if a.quick else SIZES)
    sample = a.sample or (100 if a.quick else 2000)
    ref_seconds = a.ref_seconds or (1.0 if a.quick else 3.0)
    repeat = 1 if a.quick else 2

    if a.one_size:
        figs = run_size(a.one_size, a.workdir, sample, ref_seconds, repeat, a.pg)
        a.figures_out.write_text(json.dumps([f.as_dict() for f in figs]))
        return

    a.workdir.mkdir(parents=True, exist_ok=True)
    figures: list[Figure] = []
    started = time.perf_counter()
    for size in sizes:
        out = a.workdir / f"figures_{size}.json"
        if a.pages_only and out.exists():
            _retime_pages(size, a.workdir, out)
        if a.table_only or a.pages_only:
            figures += [Figure(**f) for f in json.loads(out.read_text())] if out.exists() else []
            continue
        progress(f"=== {size:,} persons ===")
        out.unlink(missing_ok=True)
        cmd = [sys.executable, str(Path(__file__).resolve()), "--one-size", str(size), "--figures-out", str(out),
               "--workdir", str(a.workdir), "--sample", str(sample), "--ref-seconds", str(ref_seconds)]
        cmd += ["--quick"] if a.quick else []
        cmd += ["--pg"] if a.pg else []
        rc = subprocess.run(cmd, env=dict(os.environ, PYTHONUNBUFFERED="1")).returncode
        if rc or not out.exists():
            sys.exit(f"the {size:,}-person run failed (exit {rc}); see the lines above")
        figures += [Figure(**f) for f in json.loads(out.read_text())]
    table = markdown_table(figures, sizes, ROWS)
    load = os.getloadavg()
    now = f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
    when = (f"pages timed again {now} on the states of the last run, other rows as measured then" if a.pages_only else
            f"figures of earlier runs, table made {now}" if a.table_only else
            f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node() or 'this machine'} "
            f"({os.cpu_count()} cores, load {load[0]:.1f} at the end) in {time.perf_counter() - started:.0f} s")
    note = (f"{when}; "
            f"apply sample {sample:,} actions; ratio = figure ÷ the reference in brackets, measured in the same run.")
    real = None if a.no_real_totara or a.table_only or a.pages_only else _real_totara(a.workdir, a.quick)
    if real:
        table += "\n\n" + real
    if not (a.table_only or a.pages_only):
        table += "\n\n" + _projection(max(sizes), sample)
    (a.workdir / "summary.md").write_text(table + "\n\n" + note + "\n")
    (a.workdir / "summary.json").write_text(json.dumps([f.as_dict() for f in figures], indent=1, default=str))
    print(table)
    print()
    print(note)
    progress(f"table written to {a.workdir / 'summary.md'}")


if __name__ == "__main__":
    main()
