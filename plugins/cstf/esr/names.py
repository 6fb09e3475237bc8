"""GO file names: GO_<VPD>_GDW_<TYPE>_<YYYYMMDD>_<SEQ8>.DAT (spec §2.1)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

GO_NAME = re.compile(
    r"^GO_(?P<vpd>[0-9A-Z]{3})_GDW_(?P<type>GOC|GOF|GDR)_(?P<date>\d{8})_(?P<seq>\d{8})\.DAT$"
)


class FileRejected(Exception):
    """A whole-file problem: the file is refused and nothing changes."""

    def __init__(self, file_name: str, message: str):
        super().__init__(f"{file_name}: {message}")
        self.file_name = file_name
        self.message = message


@dataclass(frozen=True)
class GoFileName:
    name: str
    vpd: str
    file_type: str
    file_date: date
    sequence: int

    @property
    def sort_key(self) -> tuple:
        return (self.vpd, self.file_date, self.sequence)


def parse_go_name(name: str) -> GoFileName:
    m = GO_NAME.match(name)
    if not m:
        raise FileRejected(name, "file name does not match GO_<VPD>_GDW_<GOC|GOF>_<YYYYMMDD>_<SEQ8>.DAT")
    try:
        d = datetime.strptime(m["date"], "%Y%m%d").date()
    except ValueError:
        raise FileRejected(name, f"file name date {m['date']} is not a real date") from None
    return GoFileName(name=name, vpd=m["vpd"], file_type=m["type"], file_date=d, sequence=int(m["seq"]))


def is_go_name(name: str) -> bool:
    return GO_NAME.match(name) is not None
