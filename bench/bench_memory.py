"""Peak RSS of each step of a full file's first load, each step in its own process (as Airflow runs a task).

The steps of build_state.py (discover + register, stage, validate, promote, plan users, apply users, record the
user outcomes, plan competences, apply competences, record the competence outcomes, competence status, outbound
plan, outbound file), each run in a fresh child process over the state the steps before it left, the GO feed
cached as build_state caches it (work/bench/<N>/feed). A child reports its own peak resident memory (VmHWM:
common.peak_rss_mb), its resident memory once the code is imported (the floor of any step), and Arrow's own peak
allocation. A child sets the allocators as a task does (cstf.memory.configure; BENCH_MEMORY_DEFAULT_ALLOCATORS=1:
their defaults). What build_state makes up in place of Totara (the accounts the creates would make, the
completions once applied, the outbound window's completions) is prepared in children of its own, reported apart:
those are the bench's stand-ins, not steps of the interface.
apply_users and apply_competences are lifecycle.apply_plan and achievements.apply_plan on a copy of the state,
against the Totara simulator: the whole plan is read, batched and its outcomes recorded as a first load does, but
only APPLY_SAMPLE items are sent (the simulator has none of the competences' accounts: they come back rejected);
Totara's answer to the others is made up (DONE). The steps after it go on from the state without it, the bench
recording the outcomes in its place.

    .venv/bin/python bench/bench_memory.py --persons 100000            # every step, a table of peaks
    .venv/bin/python bench/bench_memory.py --persons 100000 --steps stage validate   # again, on the kept state
    .venv/bin/python bench/bench_memory.py --persons 100000 --db postgresql          # the state DB on PostgreSQL

--steps runs the named steps again, each on the state it had in the last whole run: a copy of the state is kept
before stage, plan_competences and competence_status, and the steps from the nearest kept copy are run again.
With --db postgresql the state DB is a database of the server at CSTF_YEAR_PG_URL (default: postgres@127.0.0.1),
cstf_memory_bench_memory_state, and each copy of the state has its own (CREATE DATABASE ... TEMPLATE, made before
the step's clock and its memory floor); they are kept like the folders, and replaced by the next run (drop them
with `DROP DATABASE` when done: at 100,000 persons they hold a few GB).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from common import ROOT, drop_pg_database, peak_rss_mb, pg_available, pg_database, progress

# (name, kind): "step" is a step of the interface, "prepare" is the bench standing in for Totara.
STEPS = [("register", "step"), ("stage", "step"), ("validate", "step"), ("promote", "step"),
         ("plan_users", "step"), ("apply_users", "step"), ("record_user_outcomes", "step"),
         ("prepare_accounts", "prepare"),
         ("plan_competences", "step"), ("apply_competences", "step"), ("record_competence_outcomes", "step"),
         ("prepare_completions", "prepare"),
         ("competence_status", "step"), ("prepare_outbound", "prepare"), ("outbound_plan", "step"),
         ("outbound_write", "step")]
LIMIT_MB = 2048
PG_DB = "cstf_memory_bench"  # --db postgresql: the state's database, and the prefix of its copies' names
APPLY_SAMPLE = 2000  # items apply_users / apply_competences send to the simulator; Totara's answer to the others is made up


class _SampledClient:
    """The real client (the simulator's), but only the first `sample` competence items are sent: the answer to the
    others is made up (DONE), so the step reads, batches and records the whole plan as a first load does, without
    an hour of HTTP. Everything else goes to the real client."""

    def __init__(self, client, sample: int):
        import threading
        self.client, self.left, self.lock = client, sample, threading.Lock()

    def __getattr__(self, name):
        return getattr(self.client, name)

    def _split(self, items: list[dict]) -> int:
        with self.lock:
            k = min(len(items), self.left)
            self.left -= k
        return k

    def _answer(self, send, items: list[dict]) -> list[dict]:
        k = self._split(items)
        made_up = [{"index": i, "status": "DONE", "outcome": "NOT_SENT_BENCH", "item_id": None}
                   for i in range(k, len(items))]
        return (send(items[:k]) if k else []) + made_up

    def _made_up_users(self, send, items: list[dict]) -> list[dict]:
        k = self._split(items)
        made_up = [{"index": i, "status": "DONE", "message": "NOT_SENT_BENCH", "user_id": 10_000_000 + i}
                   for i in range(k, len(items))]
        return (send(items[:k]) if k else []) + made_up

    def create_users(self, items: list[dict]) -> list[dict]:
        return self._made_up_users(self.client.create_users, items)

    def update_users(self, items: list[dict]) -> list[dict]:
        return self._made_up_users(self.client.update_users, items)

    def mark_certifications_complete(self, items: list[dict]) -> list[dict]:
        return self._answer(self.client.mark_certifications_complete, items)

    def create_evidence_items(self, items: list[dict]) -> list[dict]:
        return self._answer(self.client.create_evidence_items, items)


def _status_kb() -> dict[str, int]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, val = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(val.split()[0])
    return out


# --- the child: one step ---------------------------------------------------------------------------------------

class _PeakTracer:
    """Samples this process's resident memory every few milliseconds and keeps the main thread's stack each time
    it reaches a new high (--trace): where in the step the peak is."""

    def __init__(self, every: float = 0.005):
        import threading
        self.every, self.peak_kb, self.stack = every, 0, []
        self.main = threading.main_thread().ident
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        import traceback
        while not self.stop.wait(self.every):
            rss = _status_kb()["VmRSS"]
            if rss > self.peak_kb + 10_240:
                self.peak_kb = rss
                frame = sys._current_frames().get(self.main)
                self.stack = [f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in traceback.extract_stack(frame)
                              if "cstf" in f.filename or "bench" in f.filename][-6:]

    def done(self) -> dict:
        self.stop.set()
        self.thread.join()
        return {"traced_peak_mb": self.peak_kb / 1024, "stack_at_peak": self.stack}


def _job(state_dir: Path, feed: Path, persons: int, outbound: bool = False):
    from build_state import OUTBOUND_DATE, RUN_DATE
    from cstf.config import Settings
    from cstf.config.trust import load_trust
    from cstf.inbound import InboundJob, RunContext
    from cstf.ledger import StateDB
    url = _state_url(state_dir)
    settings = Settings.from_env({"CSTF_WORKDIR": str(state_dir), "CSTF_LANDING_DIR": str(feed.parent),
                                  "CSTF_STATE_DB_URL": url})
    db = StateDB.from_url(url)
    trust = load_trust(settings.trusts_dir / "999.yaml")
    ctx = (RunContext(run_id=f"bench_{persons}_out_{OUTBOUND_DATE}", dag_id="esr_outbound", run_date=OUTBOUND_DATE)
           if outbound else RunContext(run_id=f"bench_{persons}_{RUN_DATE}", dag_id="esr_inbound", run_date=RUN_DATE))
    return InboundJob(settings, trust, db, ctx)


def _state_url(state_dir: Path) -> str:
    """The state's database: the PostgreSQL one its folder names (--db postgresql), else SQLite in the folder."""
    named = state_dir / "state_db_url"
    return named.read_text().strip() if named.exists() else f"sqlite:///{state_dir / 'state.db'}"


def _new_state(state_dir: Path, db: str) -> None:
    """An empty state: the folder, and on PostgreSQL an empty database of its own (named after the folder)."""
    _remove_state(state_dir)
    state_dir.mkdir(parents=True)
    if db == "postgresql":
        (state_dir / "state_db_url").write_text(pg_database(_pg_name(state_dir)))


def _copy_state(src: Path, dest: Path) -> None:
    """dest a copy of the state in src: the folder, and on PostgreSQL the database, copied into one of dest's own."""
    from sqlalchemy.engine import make_url
    _remove_state(dest)
    shutil.copytree(src, dest)
    url = _state_url(src)
    if not url.startswith("sqlite"):
        (dest / "state_db_url").write_text(pg_database(_pg_name(dest), template=make_url(url).database))


def _remove_state(state_dir: Path) -> None:
    from sqlalchemy.engine import make_url
    if (state_dir / "state_db_url").exists():
        drop_pg_database(make_url(_state_url(state_dir)).database)
    shutil.rmtree(state_dir, ignore_errors=True)


def _pg_name(state_dir: Path) -> str:
    return f"{PG_DB}_{re.sub(r'[^a-z0-9]', '_', state_dir.name.lower())}"


def _scratch_state(state_dir: Path) -> tuple[Path, int, float]:
    """A copy of the state for an apply step (the steps after it go on from the state without its outcomes), and
    the resident memory and clock once it is made: the copy is the bench's, not the step's."""
    scratch = state_dir.parent / "memory_state.apply"
    _copy_state(state_dir, scratch)
    return scratch, _status_kb()["VmRSS"], time.perf_counter()


@contextmanager
def _simulator_client(state_dir: Path):
    """A client of a Totara simulator started for the step (no rate limits)."""
    import tempfile

    from cstf.totara import TotaraClient
    from sim.totara.testing import running_simulator
    with tempfile.TemporaryDirectory(dir=state_dir.parent) as tmp, \
            running_simulator(tmp, client_rate_limit=0, site_rate_limit=0) as handle:
        client = TotaraClient(handle.url, handle.client_id, handle.client_secret)
        try:
            yield client
        finally:
            client.close()


def _apply_on_copy(state_dir: Path, feed: Path, persons: int, module, shown: str, extra=lambda job: {}):
    """`module.apply_plan` (lifecycle or achievements) on a copy of the state, against the simulator, APPLY_SAMPLE items
    sent: the whole plan read, batched and its outcomes recorded as a first load does; the steps after it go on from
    the state without, as build_state's stand-in records the outcomes. Returns the note, and the resident memory and
    clock once the copy is made (the copy is the bench's, not the step's)."""
    scratch, base, t = _scratch_state(state_dir)
    try:
        with _simulator_client(state_dir) as client:
            job = _job(scratch, feed, persons)
            try:
                summary = module.apply_plan(job, _SampledClient(client, APPLY_SAMPLE), **extra(job))
            except module.ApplyFailed as exc:
                summary = {"actions": "?", "failed": str(exc)[:100]}
        note = (f"{summary['actions']:,} actions, {APPLY_SAMPLE:,} sent to the simulator: "
                f"{summary.get(shown) or summary}")[:300]
    finally:
        _remove_state(scratch)
    return note, base, t


def run_step(step: str, state_dir: Path, feed: Path, persons: int) -> dict:
    """Run one step in this process (the state of the steps before it on disk). Returns what it reports."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    import build_state as bs
    from cstf import achievements, inbound, lifecycle, outbound
    from cstf.ledger.outbound import OutboundLedger
    from cstf.staging.store import write_parquet_atomic

    allocators = {}
    if not os.environ.get("BENCH_MEMORY_DEFAULT_ALLOCATORS"):
        try:
            from cstf import memory
        except ImportError:  # a tree from before cstf.memory (measuring the code as it was)
            pass
        else:
            allocators = memory.configure()  # as a task does
    names_file = state_dir / "bench_memory_names.json"
    names = json.loads(names_file.read_text()) if names_file.exists() else []
    base = _status_kb()["VmRSS"]
    tracer = _PeakTracer() if os.environ.get("BENCH_MEMORY_TRACE") else None
    t = time.perf_counter()
    note = ""
    if step == "register":
        from cstf.ledger import StateDB
        StateDB.from_url(_state_url(state_dir)).migrate()
        job = _job(state_dir, feed, persons)
        names, _ = inbound.register(job, inbound.discover(job))
    elif step in ("stage", "validate"):
        job = _job(state_dir, feed, persons)
        names, _ = getattr(inbound, step)(job, names)
    elif step == "promote":
        inbound.promote(_job(state_dir, feed, persons), names)
    elif step == "plan_users":
        job = _job(state_dir, feed, persons)
        write_parquet_atomic(bs._empty_snapshot(), lifecycle.snapshot_path(job))
        lifecycle.make_plan(job)
    elif step == "apply_users":
        # lifecycle.apply_plan as a task runs it (dates of birth looked up in staging at apply time); the outcomes are
        # recorded in its place by record_user_outcomes.
        note, base, t = _apply_on_copy(state_dir, feed, persons, lifecycle, "by_kind",
                                       lambda job: {"dob_for": lifecycle.dob_lookup(job)})
    elif step in ("record_user_outcomes", "record_competence_outcomes"):
        job = _job(state_dir, feed, persons)
        mod = lifecycle if step == "record_user_outcomes" else achievements
        wanted = ["action_id", "kind", "held", "person_id", "certification", "completion_date"]
        actions = pq.read_table(mod.plan_path(job), columns=[c for c in wanted if c in pq.read_schema(
            mod.plan_path(job)).names])  # what _record_done reads: not the payloads
        for c in ("person_id", "certification", "completion_date"):  # build_state reads them from a user plan too
            if c not in actions.column_names:
                actions = actions.append_column(c, pa.nulls(actions.num_rows, pa.string()))
        note = f"{bs._record_done(job.db, job.ctx.run_id, job.vpd, mod.STEP, actions):,} outcomes"
    elif step == "prepare_accounts":
        job = _job(state_dir, feed, persons)
        w = job.db.get_watermark(job.vpd)
        current = job.store.read_current(job.vpd, w["current_version"], ["persons", "assignments"])
        accounts = bs._accounts(pq.read_table(lifecycle.plan_path(job), columns=["kind", "person_id"]),
                                current["persons"], current["assignments"])
        write_parquet_atomic(accounts, lifecycle.snapshot_path(job))
        write_parquet_atomic(bs._empty_completions(), achievements.completions_path(job))
    elif step == "plan_competences":
        achievements.make_plan(_job(state_dir, feed, persons))
    elif step == "apply_competences":
        note, base, t = _apply_on_copy(state_dir, feed, persons, achievements, "by_outcome")
    elif step == "prepare_completions":
        job = _job(state_dir, feed, persons)
        plan = pq.read_table(achievements.plan_path(job), columns=["kind", "completion_date", "due_date",
                                                                   "totara_user_id", "certification", "rule"])
        write_parquet_atomic(bs._completions_as_applied(plan),
                             achievements.completions_path(job))
    elif step == "competence_status":
        job = _job(state_dir, feed, persons)
        builder = bs._status_builder()
        bs._call_with(builder, job=job, client=None, db=job.db, vpd=job.vpd, run_id=job.ctx.run_id,
                      settings=job.settings, trust=job.trust, as_of=job.ctx.run_date, run_date=job.ctx.run_date)
    elif step == "prepare_outbound":
        job = _job(state_dir, feed, persons)
        out_job = _job(state_dir, feed, persons, outbound=True)
        accounts = pq.read_table(lifecycle.snapshot_path(job))
        folder = lifecycle.run_dir(out_job, "outbound")
        write_parquet_atomic(bs._outbound_completions(accounts, bs.OUTBOUND_DATE), folder / "completions.parquet")
        write_parquet_atomic(accounts, folder / "users.parquet")
    elif step == "outbound_plan":
        out_job = _job(state_dir, feed, persons, outbound=True)
        note = f"{outbound.plan(out_job, OutboundLedger(out_job.db)).get('queued', 0):,} queued"
    elif step == "outbound_write":
        out_job = _job(state_dir, feed, persons, outbound=True)
        note = f"{outbound.write_file(out_job, OutboundLedger(out_job.db)).get('rows', 0):,} rows"
    else:
        raise SystemExit(f"unknown step {step!r}")
    seconds = time.perf_counter() - t
    traced = tracer.done() if tracer else {}
    names_file.write_text(json.dumps(names))
    pool = pa.default_memory_pool()
    return {"step": step, "seconds": seconds, "peak_mb": peak_rss_mb(),
            "base_mb": base / 1024, "arrow_peak_mb": pool.max_memory() / 2**20, "arrow_pool": pool.backend_name,
            "note": note, "allocators": allocators, **traced}


# --- the parent: every step in its own process -----------------------------------------------------------------

# Kept copies of the state before these steps, so --steps can run a step again on the state it first had.
RESTART_POINTS = ("stage", "plan_competences", "competence_status")


def measure(persons: int, workdir: Path, steps: list[str] | None = None, env: dict | None = None,
            keep: bool = True, db: str = "sqlite") -> list[dict]:
    """Each step's figures, in order, each step run in a fresh process. With `steps`, the state kept before the
    latest restart point at or before the first of them is restored, and the steps from there to the last named
    one are run again (a step's state is the one it had in the whole run). `keep`: keep those copies of the state
    (for --steps later); make bench does not."""
    from build_state import generate_feed
    here = workdir / str(persons)
    feed = generate_feed(persons, here / "feed")
    state_dir = here / "memory_state"
    order = [s for s, _ in STEPS]
    if steps:
        bad = set(steps) - set(order)
        if bad:
            raise SystemExit(f"unknown step(s) {sorted(bad)}; steps are {order}")
        first, last = min(order.index(s) for s in steps), max(order.index(s) for s in steps)
        point = max(order.index(p) for p in RESTART_POINTS if order.index(p) <= first) if first >= order.index(
            RESTART_POINTS[0]) else None
        if point is None or not (here / f"memory_state.before_{order[point]}").exists():
            raise SystemExit(f"no kept state to start {order[first]} from: run every step once first")
        _copy_state(here / f"memory_state.before_{order[point]}", state_dir)
        todo = order[point:last + 1]
    else:
        todo = order
        _new_state(state_dir, db)
    results = []
    for step in todo:
        if step in RESTART_POINTS and not steps and keep:
            _copy_state(state_dir, here / f"memory_state.before_{step}")
        progress(f"memory {persons:,}: {step} ...")
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", step, "--persons", str(persons),
               "--state", str(state_dir), "--feed", str(feed)]
        done = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, **(env or {})))
        if done.returncode:
            sys.stderr.write(done.stderr[-3000:])
            lines = done.stderr.strip().splitlines() or ["?"]
            why = next((ln for ln in reversed(lines) if re.match(r"^[\w.]+(Error|Exception)\b", ln)), lines[-1])
            results.append({"step": step, "kind": dict(STEPS)[step], "error": why[:300]})
            break
        res = json.loads(done.stdout.strip().splitlines()[-1])
        res["kind"] = dict(STEPS)[step]
        results.append(res)
        progress(f"memory {persons:,}: {step}: peak {res['peak_mb']:,.0f} MB in {res['seconds']:.1f} s "
                 f"(after imports {res['base_mb']:.0f} MB, Arrow peak {res['arrow_peak_mb']:,.0f} MB) {res['note']}")
        for line in res.get("stack_at_peak", []):
            progress(f"    at the peak: {line}")
    return results


def largest(results: list[dict]) -> dict | None:
    steps = [r for r in results if r.get("kind") == "step" and "peak_mb" in r]
    return max(steps, key=lambda r: r["peak_mb"]) if steps else None


def report(results: list[dict]) -> str:
    lines = ["| step | peak RSS | after imports | Arrow peak | time | note |", "|---|---|---|---|---|---|"]
    for r in results:
        name = r["step"] + (" (bench stand-in)" if r["kind"] == "prepare" else "")
        if "error" in r:
            lines.append(f"| {name} | failed: {r['error']} | | | | |")
            continue
        over = " **over 2 GB**" if r["peak_mb"] > LIMIT_MB and r["kind"] == "step" else ""
        lines.append(f"| {name} | {r['peak_mb']:,.0f} MB{over} | {r['base_mb']:.0f} MB | {r['arrow_peak_mb']:,.0f} MB "
                     f"| {r['seconds']:.1f} s | {r['note']} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--persons", type=int, default=100_000)
    ap.add_argument("--workdir", type=Path, default=ROOT / "work" / "bench")
    ap.add_argument("--steps", nargs="+", help="rerun only these steps on the state of the last whole run")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite",
                    help="the state DB of a whole run (--steps reruns on the database the last whole run used)")
    ap.add_argument("--trace", action="store_true", help="sample each step's memory: the stack at its peak")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--state", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--feed", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(run_step(a.child, a.state, a.feed, a.persons)))
        return
    if a.db == "postgresql" and not a.steps and not pg_available():
        sys.exit("--db postgresql: no PostgreSQL server answers at CSTF_YEAR_PG_URL (or its default)")
    results = measure(a.persons, a.workdir, a.steps, env={"BENCH_MEMORY_TRACE": "1"} if a.trace else None,
                      db=a.db)
    print(report(results))
    top = largest(results)
    if top:
        print(f"\nlargest step: {top['step']} {top['peak_mb']:,.0f} MB (bar {LIMIT_MB:,} MB)")
    if a.json:
        a.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
