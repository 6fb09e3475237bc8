"""GO file conventions: names, HDR/TRL, Latin-1 bytes, and file-level corruption.

See spec/esr-interface.md §2: `~` delimiter, no quoting, LF line ends, HDR
first, TRL last with the count of data records (excluding HDR, TRL and LOV).
"""
from __future__ import annotations

import re
from collections import Counter
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Iterable

FULL_PREV_RUN = "00000000 000000"
NAME_RE = re.compile(
    r"^GO_(?P<vpd>[0-9A-Z]{3})_GDW_(?P<type>GOC|GOF|GDR)_(?P<date>\d{8})_(?P<seq>\d{8})\.DAT$"
)
# Records that TRL does not count.
NOT_COUNTED = {"HDR", "TRL", "LOV"}


@lru_cache(maxsize=1 << 16)  # few distinct dates, many rows
def d8(d: date | None) -> str:
    """YYYYMMDD, blank for None."""
    return d.strftime("%Y%m%d") if d else ""


def ts(dt: datetime | date | str) -> str:
    """`YYYYMMDD HHMMSS`; a date means midnight; strings pass through."""
    if isinstance(dt, str):
        return dt
    if not isinstance(dt, datetime):
        dt = datetime(dt.year, dt.month, dt.day)
    return dt.strftime("%Y%m%d %H%M%S")


def go_name(vpd: str, kind: str, file_date: date, seq: int) -> str:
    return f"GO_{vpd}_GDW_{kind}_{d8(file_date)}_{seq:08d}.DAT"


class GoWriter:
    """Streams one GO file: HDR on open, TRL with the right count on close.

    Tracks the 1-based line number of every line written and the count of
    data records per record code, which the manifest reports.
    """

    def __init__(self, path: Path, header: dict, *, crlf: bool = False):
        self.path = Path(path)
        self.eol = "\r\n" if crlf else "\n"
        self.counts: Counter[str] = Counter()
        self.line_no = 0  # number of lines written so far
        self._fh = open(self.path, "wb")
        self._write([header_line(header, self.path.name)])

    def _write(self, lines: list[str]) -> None:
        if lines:
            # strict Latin-1: a character outside it is a generator bug
            self._fh.write((self.eol.join(lines) + self.eol).encode("latin-1"))
            self.line_no += len(lines)

    def record(self, fields: list[str]) -> int:
        """Write one record; returns its line number."""
        self._write(["~".join(fields)])
        if fields[0] not in NOT_COUNTED:
            self.counts[fields[0]] += 1
        return self.line_no

    def lines(self, code: str, lines: list[str]) -> None:
        """Write pre-rendered lines that all carry record code `code`."""
        self._write(lines)
        if code not in NOT_COUNTED:
            self.counts[code] += len(lines)

    def close(self, trailer: int | None = None) -> Path:
        n = sum(self.counts.values()) if trailer is None else trailer
        self._write([f"TRL~{n}"])
        self._fh.close()
        return self.path

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if not self._fh.closed:
            self._fh.close()


def header_line(header: dict, default_name: str) -> str:
    """HDR~<name>~<extract ts>~<VPD>~<prev run ts>~<current run ts>~<unknown>."""
    return "~".join([
        "HDR",
        header.get("name") or default_name,
        ts(header["extract_ts"]),
        header["vpd"],
        ts(header.get("prev_run") or FULL_PREV_RUN),
        ts(header["current_run"]),
        header.get("unknown", "01"),
    ])


def write_file(path: Path | str, header: dict, records: Iterable[list[str]], *,
               crlf: bool = False, trailer: int | None = None) -> Path:
    """Build any GO file from rows, with a correct HDR and TRL.

    header: {"extract_ts", "vpd", "current_run", optional "prev_run" (default
    the full-file `00000000 000000`), "name" (default the file name),
    "unknown" (default "01")}; datetimes or ready `YYYYMMDD HHMMSS` strings.
    records: field lists, LOV rows allowed anywhere. `trailer` overrides n.
    """
    w = GoWriter(Path(path), header, crlf=crlf)
    with w:
        for r in records:
            w.record([str(f) for f in r])
        return w.close(trailer)


CORRUPT_KINDS = ("bom", "utf8", "truncate", "no_hdr", "no_trl",
                 "trailer_mismatch", "vpd_mismatch", "bad_name")


def corrupt(path: Path | str, kind: str, out_dir: Path | str | None = None) -> Path:
    """Copy a GO file with one file-level problem; the original is untouched.

    The copy goes to out_dir (default `<folder>/corrupt_<kind>/`) under the
    same name, except "vpd_mismatch" (name VPD differs from the HDR VPD) and
    "bad_name" (a name the §2.1 pattern rejects). Returns the new path.
    """
    if kind not in CORRUPT_KINDS:
        raise ValueError(f"unknown kind {kind!r}; one of {CORRUPT_KINDS}")
    path = Path(path)
    data = path.read_bytes()
    eol = b"\r\n" if b"\r\n" in data else b"\n"
    lines = data.split(eol)
    if lines and lines[-1] == b"":
        lines.pop()  # the terminator of the last line
    name = path.name

    if kind == "bom":
        data = b"\xef\xbb\xbf" + data
    elif kind == "utf8":
        if data.isascii():
            raise ValueError(f"{name} is pure ASCII: UTF-8 re-encoding would not change it")
        data = data.decode("latin-1").encode("utf-8")
    elif kind == "truncate":
        if lines[-1].startswith(b"TRL"):
            lines.pop()
        last = lines.pop()
        data = eol.join(lines) + eol + last[: max(1, len(last) // 2)]  # no terminator
    elif kind == "no_hdr":
        data = eol.join(lines[1:]) + eol
    elif kind == "no_trl":
        data = eol.join(l for l in lines if not l.startswith(b"TRL~")) + eol
    elif kind == "trailer_mismatch":
        n = int(lines[-1].split(b"~")[1])
        lines[-1] = b"TRL~%d" % (n + 1)  # claims one record more than the file holds
        data = eol.join(lines) + eol
    elif kind == "vpd_mismatch":
        m = NAME_RE.match(name)
        other = "888" if m["vpd"] != "888" else "777"
        name = f"GO_{other}_GDW_{m['type']}_{m['date']}_{m['seq']}.DAT"
    elif kind == "bad_name":
        m = NAME_RE.match(name)
        name = f"GO_{m['vpd']}_GDW_{m['type']}_{m['date']}_{int(m['seq'])}.DAT"  # SEQ not 8 digits

    folder = Path(out_dir) if out_dir else path.parent / f"corrupt_{kind}"
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / name
    out.write_bytes(data)
    return out
