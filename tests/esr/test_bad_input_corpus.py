"""The bad-input corpus (tests/fixtures/bad_input): every malformed file yields its documented outcome.

Each case is processed the way `cstf stage` and the inbound DAG do it (register in the state DB,
read, stage or quarantine, validate, promote), file by file in delivery order, in a fresh work
folder. For every file that is read, the reader's line accounting is checked against counts
taken independently: lines in the raw bytes, rows in the staged Parquet, rows in the quarantine.

A second, property-style test corrupts a valid generated file at random (seeded) and checks the
reader either refuses it with an error naming the file, or accounts for every line.
"""
from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from cstf.config import Settings, TrustSettings, load_trusts
from cstf.esr.layouts import load_layouts
from cstf.esr.names import FileRejected, is_go_name, parse_go_name
from cstf.esr.reader import read_go_file
from cstf.inbound import InboundJob, RunContext, process_files
from cstf.ledger import StateDB
from cstf.staging import StagingStore

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "fixtures" / "bad_input"
MANIFEST = yaml.safe_load((CORPUS / "manifest.yaml").read_text())
CASES = {c["id"]: c for c in MANIFEST["cases"]}
MANIFEST_FULL = "GO_999_GDW_GOF_20240601_00000101.DAT"
NAME_ERROR = "file name does not match GO_<VPD>_GDW_<GOC|GOF>_<YYYYMMDD>_<SEQ8>.DAT"


def test_corpus_is_large_and_covers_every_outcome():
    assert len(CASES) >= 40
    outcomes = {s["outcome"] for c in CASES.values() for s in c["steps"]}
    assert outcomes == {"staged", "quarantined", "rejected", "held", "duplicate", "superseded", "run_fails"}
    for c in CASES.values():  # every file a step names is in the case folder, and the other way round
        named = {s["file"].split("/")[-1] for s in c["steps"]}
        on_disk = {p.name for p in (CORPUS / c["id"]).rglob("*") if p.is_file()}
        assert named == on_disk, c["id"]


def test_docs_list_every_case():
    doc = (ROOT / "docs" / "bad-input.md").read_text()
    missing = [cid for cid in CASES if f"`{cid}`" not in doc]
    assert not missing, f"docs/bad-input.md does not document {missing}"


# --- processing a case the way production does ------------------------------------------------------

class Run:
    """A fresh work folder, state DB and landing folder for one case."""

    def __init__(self, tmp: Path):
        self.settings = Settings.from_env({"CSTF_WORKDIR": str(tmp), "CSTF_TRUSTS_DIR": str(ROOT / "include" / "trusts")})
        self.settings.landing_dir.mkdir(parents=True)
        self.db = StateDB.from_url(self.settings.state_db_url)
        self.db.migrate()
        self.trusts = load_trusts(self.settings.trusts_dir)
        self.store = StagingStore(self.settings.staging_dir)

    def deliver(self, case_id: str, batch: int, files: list[str]) -> dict[str, dict]:
        """Copy the batch's files to landing and process them like `cstf stage` (per VPD, in order)."""
        paths = []
        for rel in files:
            target = self.settings.landing_dir / Path(rel).name
            shutil.copyfile(CORPUS / case_id / rel, target)
            paths.append(target)
        results: dict[str, dict] = {}
        by_vpd: dict[str, list[Path]] = {}
        for p in paths:
            if not is_go_name(p.name):
                results[p.name] = {"status": "rejected", "error": f"{p.name}: {NAME_ERROR}", "text": NAME_ERROR}
                continue
            try:
                vpd = parse_go_name(p.name).vpd
            except FileRejected as exc:  # a GO-shaped name that is still not a valid one: the run fails
                results[p.name] = {"status": "run_fails", "error": str(exc), "text": str(exc)}
                continue
            by_vpd.setdefault(vpd, []).append(p)
        for vpd, group in by_vpd.items():
            job = InboundJob(self.settings, self.trusts.get(vpd) or TrustSettings(vpd=vpd), self.db,
                             RunContext(run_id=f"{case_id}-{batch}", dag_id="bad_input"))
            for o in process_files(job, group):
                quarantined = [f"line {q['line']} {q['record_type']}: {q['reason']}" for q in o.quarantined]
                results[o.name] = {"status": o.status, "error": o.error, "quarantined": quarantined,
                                   "text": "\n".join([o.error or "", *o.warnings, *quarantined])}
        return results


def _outcome(result: dict) -> str:
    if result["status"] == "staged" and result["quarantined"]:
        return "quarantined"
    return result["status"]


def _independent_counts(run: Run, path: Path, name: str) -> dict:
    """Counts of one staged file taken without the reader: raw lines, Parquet rows, quarantine rows."""
    layouts = load_layouts()
    data = path.read_bytes()
    lines = [line.rstrip(b"\r") for line in data.split(b"\n")]
    nonblank = [line for line in lines if line]
    body = nonblank[1:-1]  # HDR and TRL are not data lines
    known = set(layouts.by_type) | set(layouts.delete_codes)
    codes = [line[:3].decode("latin-1") if line[3:4] in (b"~", b"") else "" for line in body]
    tables = run.store.read_file_tables(name)
    quarantine = run.store.read_quarantine(name)
    return {
        "read": len(body),
        "staged": sum(t.num_rows for t in tables.values()),
        "quarantined": quarantine.num_rows if quarantine is not None else 0,
        "ignored": sum(1 for c in codes if c not in known),
    }


# Cases whose documented outcome the code does not give yet, each with the bug it shows (outside the reader).
# Cases the code does not yet handle as documented (strict: they fail loudly once fixed).
KNOWN_BUGS: dict[str, str] = {}


@pytest.mark.parametrize("case_id", [
    pytest.param(c, marks=pytest.mark.xfail(reason=KNOWN_BUGS[c], strict=True)) if c in KNOWN_BUGS else c for c in sorted(CASES)
])
def test_case_yields_its_documented_outcome(case_id, tmp_path):
    case = CASES[case_id]
    run = Run(tmp_path)
    staged_before: set[str] = set()
    batches: dict[int, list[dict]] = {}
    for step in case["steps"]:
        batches.setdefault(step["batch"], []).append(step)
    for batch, steps in sorted(batches.items()):
        results = run.deliver(case_id, batch, [s["file"] for s in steps])
        for step in steps:
            name = Path(step["file"]).name
            got = results[name]
            where = f"{case_id} step {step['file']}: {got}"
            assert _outcome(got) == step["outcome"], where
            assert step["message"] in got["text"], where
            if step["outcome"] in ("rejected", "run_fails"):
                assert got["error"].startswith(name), f"the error must name the file: {where}"
            rec = run.db.get_file(name)
            if step["outcome"] == "run_fails":
                assert rec is None, where  # nothing registered, nothing changed
            if step["outcome"] in ("rejected", "held") and is_go_name(name) and name not in staged_before:
                assert not run.store.has_file(name), f"a refused or held file must stage nothing: {where}"
            if step["outcome"] == "rejected" and rec is not None and rec.status == "rejected":
                assert run.db.get_hold(parse_go_name(name).vpd) is not None, f"a rejected file holds the trust: {where}"
            if step["outcome"] in ("staged", "quarantined"):
                staged_before.add(name)
            if step["counts"] is None:
                continue
            acc = rec.counts
            reader = {"read": acc["lines_read"], "staged": acc["staged"], "quarantined": acc["quarantined"], "ignored": acc["ignored"]}
            assert reader == step["counts"], where
            assert reader["read"] == reader["staged"] + reader["quarantined"] + reader["ignored"], where
            independent = _independent_counts(run, run.settings.landing_dir / name, name)
            assert independent == reader, f"{where}: reader {reader} but the file and staging hold {independent}"


# --- random corruption -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def valid_file(tmp_path_factory) -> Path:
    from sim.esr import generate
    gen = generate(tmp_path_factory.mktemp("valid"), persons=40, days=1, seed=5, malformed=False)
    return next(p for p in gen.files if "_GOF_" in p.name)


def _corrupt_randomly(data: bytes, rng: random.Random) -> tuple[bytes, list[str]]:
    done = []
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(["truncate", "flip", "drop", "duplicate", "junk", "swap", "nul", "cr"])
        lines = data.split(b"\n")
        if kind == "truncate":
            data = data[: rng.randrange(len(data))]
        elif kind == "flip":
            buf = bytearray(data)
            for _ in range(rng.randint(1, 8)):
                buf[rng.randrange(len(buf))] = rng.randrange(256)
            data = bytes(buf)
        elif kind == "drop" and len(lines) > 2:
            del lines[rng.randrange(len(lines))]
            data = b"\n".join(lines)
        elif kind == "duplicate" and lines:
            i = rng.randrange(len(lines))
            lines.insert(i, lines[i])
            data = b"\n".join(lines)
        elif kind == "junk":
            junk = bytes(rng.choice(b"~ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 |\xe9\xff\r") for _ in range(rng.randint(0, 80)))
            lines.insert(rng.randrange(len(lines) + 1), junk)
            data = b"\n".join(lines)
        elif kind == "swap" and len(lines) > 2:
            i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
            data = b"\n".join(lines)
        elif kind == "nul" and data:
            i = rng.randrange(len(data))
            data = data[:i] + b"\x00" + data[i:]
        elif kind == "cr" and data:
            i = rng.randrange(len(data))
            data = data[:i] + b"\r" + data[i:]
        done.append(kind)
    return data, done


@pytest.mark.parametrize("seed", range(200))
def test_random_corruption_is_refused_or_fully_accounted(seed, valid_file, tmp_path):
    rng = random.Random(seed)
    data, kinds = _corrupt_randomly(valid_file.read_bytes(), rng)
    path = tmp_path / valid_file.name
    path.write_bytes(data)
    try:
        go = read_go_file(path)
    except FileRejected as exc:
        assert exc.file_name == path.name and str(exc).startswith(path.name), (kinds, str(exc))
        assert exc.message.strip(), kinds
        return
    acc = go.accounting()
    physical = [line.rstrip(b"\r") for line in data.split(b"\n")]
    data_lines = [i + 1 for i, line in enumerate(physical) if line][1:-1]  # non-blank, without HDR and TRL
    assert acc["lines_read"] == len(data_lines), kinds
    assert acc["lines_read"] == acc["staged"] + acc["quarantined"] + acc["ignored"], (kinds, acc)
    staged = np.concatenate([t["_line"].to_numpy() for t in [*go.tables.values(), *go.deletes.values()]] or [np.empty(0, int)])
    quarantined = go.quarantine["line"].to_numpy()
    assert len(set(staged.tolist())) == len(staged), kinds                 # no line staged twice
    assert not set(staged.tolist()) & set(quarantined.tolist()), kinds     # nor both staged and quarantined
    assert set(staged.tolist()) | set(quarantined.tolist()) <= set(data_lines), kinds


def test_a_line_longer_than_arrows_block_is_quarantined_not_a_crash(tmp_path):
    """A 5 MB line (bigger than the CSV reader's block) is quarantined with its line number."""
    src = CORPUS / "very_long_line" / MANIFEST_FULL
    data = src.read_bytes().replace(b"X" * 100_000, b"X" * 5_000_000)
    path = tmp_path / MANIFEST_FULL
    path.write_bytes(data)
    go = read_go_file(path)
    assert go.quarantine["line"].to_pylist() == [13]
    assert "5000" in go.quarantine["reason"][0].as_py()
    assert go.accounting() == {"lines_read": 12, "staged": 10, "quarantined": 1, "ignored": 1}

