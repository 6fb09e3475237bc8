"""Staging throughput against a plain pyarrow.csv parse of the same lines (issue 2 bar).

The reference parses each record type's lines as all-string columns with Arrow's CSV
reader (Latin-1, `~`, no quoting); separating the lines by type is not timed. Ours is
the whole path from the file on disk to typed Parquet, then validation.

    .venv/bin/python bench/bench_stage.py [--persons 100000] [--file PATH]
"""
from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]


def reference_parse(path: Path) -> float:
    groups: dict[bytes, list[bytes]] = {}
    for line in path.read_bytes().split(b"\n"):
        if line[:3] not in (b"HDR", b"TRL", b"LOV", b""):
            groups.setdefault(line[:3], []).append(line)
    bufs = {k: b"\n".join(v) + b"\n" for k, v in groups.items()}
    del groups
    start = time.perf_counter()
    for buf in bufs.values():
        n = buf.split(b"\n", 1)[0].count(b"~") + 1
        names = [f"f{i}" for i in range(n)]
        pacsv.read_csv(
            pa.BufferReader(buf),
            read_options=pacsv.ReadOptions(column_names=names, encoding="latin-1"),
            parse_options=pacsv.ParseOptions(delimiter="~", quote_char=False, invalid_row_handler=lambda r: "skip"),
            convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in names}),
        )
    return time.perf_counter() - start


def measure(path: Path, workdir: Path, repeat: int = 3, validate: bool = True) -> dict:
    """Stage `path` (best of `repeat`) against the pyarrow.csv reference (best of `repeat`), then validate once.

    Returns the figures of main's printout plus `go` (the last staged file, for callers that go on with it)."""
    from cstf.esr.reader import read_go_file
    from cstf.staging.store import StagingStore

    # Best of N for both sides: the machine's noise should not decide the ratio.
    ref = min(reference_parse(path) for _ in range(repeat))
    stage = float("inf")
    for i in range(repeat):
        gc.collect()
        store = StagingStore(workdir / f"staging{i}")
        t = time.perf_counter()
        go = read_go_file(path)
        store.write_file_tables(go)
        stage = min(stage, time.perf_counter() - t)
    validate_s = None
    if validate:
        t = time.perf_counter()
        try:
            from cstf.validation import References, validate_tables
            tables = {k: v.to_pandas(date_as_object=False) for k, v in go.tables.items()}
            refs = References(person_ids=frozenset(tables["PRA"]["person_id"]), competence_ids=frozenset(tables["CDA"]["competence_id"]))
            validate_tables(tables, references=refs)
            validate_s = time.perf_counter() - t
        except ImportError:
            pass
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    return {
        "file": path.name, "mb": round(path.stat().st_size / 1e6, 1), "rows": go.rows,
        "reference_parse_s": round(ref, 2), "stage_s": round(stage, 2),
        "throughput_ratio": round(ref / stage, 2),
        "validate_s": round(validate_s, 2) if validate_s is not None else None,
        "stage_plus_validate_s": round(stage + (validate_s or 0), 2), "peak_rss_gb": round(peak_gb, 2),
        "go": go,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--persons", type=int, default=100_000)
    ap.add_argument("--file", type=Path, help="an existing GO full file instead of generating one")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each side; the best counts")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.file:
            path = args.file
        else:
            from sim.esr import generate
            t = time.perf_counter()
            path = generate(tmp / "landing", persons=args.persons, days=0, seed=7).files[0]
            print(f"generated {path.name} ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        result = measure(path, tmp, args.repeat)
        result.pop("go")
        print(json.dumps(result) if args.json else "\n".join(f"{k:>22}: {v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
