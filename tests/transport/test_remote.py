"""Which remote files to fetch, and how a download lands (pure logic; the remote is a local folder here)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from cstf.esr.outbound import CmiWriter
from cstf.transport.remote import Known, RemoteFile, TransportError, download, land, plan_fetch, temporary_name

CMC = CmiWriter().confirmation_pattern()


class FolderRemote:
    """A remote side backed by a local directory (folder names are subdirectories)."""

    def __init__(self, root: Path, truncate: int | None = None):
        self.root, self.truncate = root, truncate

    def list_files(self, folder):
        return [RemoteFile(p.name, p.stat().st_size) for p in sorted((self.root / folder).iterdir()) if p.is_file()]

    def retrieve(self, folder, name, sink):
        data = (self.root / folder / name).read_bytes()
        sink.write(data[: self.truncate] if self.truncate is not None else data)

    def upload(self, folder, name, local_path):
        (self.root / folder / name).write_bytes(Path(local_path).read_bytes())


def listing(*names_sizes):
    return [RemoteFile(n, s) for n, s in names_sizes]


def test_selects_this_trusts_go_files_in_date_and_sequence_order():
    files = listing(("GO_999_GDW_GOC_20240603_00000103.DAT", 10), ("GO_999_GDW_GOF_20240601_00000101.DAT", 50),
                    ("GO_999_GDW_GOC_20240602_00000102.DAT", 10), ("GO_888_GDW_GOC_20240602_00000990.DAT", 10),
                    ("GO_999_GDW_GDR_20240601_00000001.DAT", 5), ("GO_999_GDW_GOC_20241340_00000104.DAT", 10),
                    ("readme.txt", 3), ("LMS_999_TOT_CMC_20240604_00000001.DAT", 7))
    plan = plan_fetch(files, "999", {})
    assert [f.name for f, _ in plan.to_fetch] == ["GO_999_GDW_GOF_20240601_00000101.DAT",
                                                   "GO_999_GDW_GOC_20240602_00000102.DAT",
                                                   "GO_999_GDW_GOC_20240603_00000103.DAT"]
    assert [k for _, k in plan.to_fetch] == ["GOF", "GOC", "GOC"]
    # Other trusts' files, our own requests, impossible dates, foreign names and confirmations (not asked for)
    assert sorted(plan.ignored) == sorted(["GO_888_GDW_GOC_20240602_00000990.DAT", "GO_999_GDW_GDR_20240601_00000001.DAT",
                                           "GO_999_GDW_GOC_20241340_00000104.DAT", "readme.txt",
                                           "LMS_999_TOT_CMC_20240604_00000001.DAT"])


def test_confirmation_files_of_the_trust_only_when_asked():
    files = listing(("LMS_999_TOT_CMC_20240605_00000002.DAT", 7), ("LMS_999_TOT_CMC_20240604_00000001.DAT", 7),
                    ("LMS_888_TOT_CMC_20240604_00000001.DAT", 7), ("GO_999_GDW_GOC_20240602_00000102.DAT", 10))
    plan = plan_fetch(files, "999", {}, go_files=False, confirmation_pattern=CMC)
    assert [(f.name, k) for f, k in plan.to_fetch] == [("LMS_999_TOT_CMC_20240604_00000001.DAT", "CMC"),
                                                       ("LMS_999_TOT_CMC_20240605_00000002.DAT", "CMC")]
    assert sorted(plan.ignored) == ["GO_999_GDW_GOC_20240602_00000102.DAT", "LMS_888_TOT_CMC_20240604_00000001.DAT"]


def test_known_names_are_skipped_by_size_refused_when_changed_and_verified_without_a_size():
    known = {"GO_999_GDW_GOF_20240601_00000101.DAT": Known(50, "a" * 64),
             "GO_999_GDW_GOC_20240602_00000102.DAT": Known(10, "b" * 64),
             "GO_999_GDW_GOC_20240603_00000103.DAT": Known(10, "c" * 64)}
    files = listing(("GO_999_GDW_GOF_20240601_00000101.DAT", 50), ("GO_999_GDW_GOC_20240602_00000102.DAT", 11),
                    ("GO_999_GDW_GOC_20240603_00000103.DAT", None), ("GO_999_GDW_GOC_20240604_00000104.DAT", 10))
    plan = plan_fetch(files, "999", known)
    assert plan.already == ["GO_999_GDW_GOF_20240601_00000101.DAT"]
    assert [f.name for f, _ in plan.changed] == ["GO_999_GDW_GOC_20240602_00000102.DAT"]
    message = plan.changed[0][1]
    assert "GO_999_GDW_GOC_20240602_00000102.DAT" in message and "10 bytes" in message and "11 bytes" in message
    assert "changed on the server" in message
    assert [f.name for f, _ in plan.to_verify] == ["GO_999_GDW_GOC_20240603_00000103.DAT"]
    assert [f.name for f, _ in plan.to_fetch] == ["GO_999_GDW_GOC_20240604_00000104.DAT"]


def test_temporary_names_are_hidden_unique_and_match_no_file_pattern():
    a, b = temporary_name("GO_999_GDW_GOC_20240602_00000102.DAT"), temporary_name("GO_999_GDW_GOC_20240602_00000102.DAT")
    assert a != b and a.startswith(".GO_999_") and a.endswith(".part")
    assert plan_fetch(listing((a, 1)), "999", {}, confirmation_pattern=CMC).ignored == [a]


def test_a_download_lands_atomically_with_its_hash(tmp_path):
    (tmp_path / "Out").mkdir()
    data = "HDR~é~".encode("latin-1") * 1000
    (tmp_path / "Out" / "GO_999_GDW_GOF_20240601_00000101.DAT").write_bytes(data)
    remote = FolderRemote(tmp_path)
    f = remote.list_files("Out")[0]
    tmp, size, sha = download(remote, "Out", f, tmp_path / "landing")
    assert tmp.name.startswith(".") and not (tmp_path / "landing" / f.name).exists()  # not visible until renamed
    placed = land(tmp, tmp_path / "landing", f.name, sha, tmp_path / "refused")
    assert placed == tmp_path / "landing" / f.name and placed.read_bytes() == data and size == len(data)
    import hashlib
    assert sha == hashlib.sha256(data).hexdigest()
    assert [p.name for p in (tmp_path / "landing").iterdir()] == [f.name]


def test_a_short_download_is_an_error_and_leaves_nothing(tmp_path):
    (tmp_path / "Out").mkdir()
    (tmp_path / "Out" / "GO_999_GDW_GOF_20240601_00000101.DAT").write_bytes(b"x" * 100)
    remote = FolderRemote(tmp_path, truncate=60)
    f = remote.list_files("Out")[0]
    with pytest.raises(TransportError, match=re.escape("downloaded 60 bytes but the server listed 100")):
        download(remote, "Out", f, tmp_path / "landing")
    assert list((tmp_path / "landing").iterdir()) == []


def test_landing_never_overwrites_another_file_of_the_same_name(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "GO_999_GDW_GOF_20240601_00000101.DAT").write_bytes(b"old")
    (tmp_path / "Out").mkdir()
    (tmp_path / "Out" / "GO_999_GDW_GOF_20240601_00000101.DAT").write_bytes(b"new!")
    remote = FolderRemote(tmp_path)
    tmp, _size, sha = download(remote, "Out", remote.list_files("Out")[0], landing)
    refusal = land(tmp, landing, "GO_999_GDW_GOF_20240601_00000101.DAT", sha, tmp_path / "refused")
    assert isinstance(refusal, str) and "other content" in refusal
    assert (landing / "GO_999_GDW_GOF_20240601_00000101.DAT").read_bytes() == b"old"
    assert [p.read_bytes() for p in (tmp_path / "refused").iterdir()] == [b"new!"]  # kept, not dropped
    assert [p.name for p in landing.iterdir()] == ["GO_999_GDW_GOF_20240601_00000101.DAT"]
