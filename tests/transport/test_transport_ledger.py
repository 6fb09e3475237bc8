"""The transport ledger (migration 0007) on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest

from cstf.ledger import StateDB
from cstf.ledger.transport import Transfer, TransferConflict, TransportLedger


@pytest.fixture
def ledger(db_url):
    db = StateDB.from_url(db_url)
    db.migrate()
    yield TransportLedger(db)
    db.dispose()


def t(name, direction="fetched", kind="GOC", sha="a" * 64, size=10, vpd="999", **kw):
    return Transfer(vpd=vpd, direction=direction, kind=kind, remote_folder="Out" if direction == "fetched" else "In",
                    name=name, size=size, sha256=sha, run_id="run-1", **kw)


def test_records_and_reads_back_by_name_vpd_direction_and_kind(ledger):
    ledger.record(t("GO_999_GDW_GOF_20240601_00000101.DAT", kind="GOF", size=5000))
    ledger.record(t("GO_999_GDW_GOC_20240602_00000102.DAT"))
    ledger.record(t("GO_888_GDW_GOC_20240602_00000990.DAT", vpd="888"))
    ledger.record(t("LMS_999_TOT_CMI_20240603_00000007.DAT", direction="uploaded", kind="CMI"))
    got = ledger.get("fetched", "GO_999_GDW_GOF_20240601_00000101.DAT")
    assert (got.size, got.kind, got.vpd, got.run_id, got.remote_folder) == (5000, "GOF", "999", "run-1", "Out")
    assert got.fetched_at and got.id
    assert list(ledger.fetched("999")) == ["GO_999_GDW_GOF_20240601_00000101.DAT", "GO_999_GDW_GOC_20240602_00000102.DAT"]
    assert [x.name for x in ledger.transfers("999", "fetched", "GOC")] == ["GO_999_GDW_GOC_20240602_00000102.DAT"]
    assert [x.name for x in ledger.transfers("999", "uploaded")] == ["LMS_999_TOT_CMI_20240603_00000007.DAT"]
    assert ledger.get("uploaded", "GO_999_GDW_GOF_20240601_00000101.DAT") is None


def test_the_same_transfer_again_is_a_no_op_and_other_bytes_under_the_name_a_conflict(ledger):
    first = ledger.record(t("GO_999_GDW_GOC_20240602_00000102.DAT"))
    again = ledger.record(t("GO_999_GDW_GOC_20240602_00000102.DAT"))
    assert again.id == first.id and len(ledger.transfers("999", "fetched")) == 1
    with pytest.raises(TransferConflict, match="GO_999_GDW_GOC_20240602_00000102.DAT: already fetched"):
        ledger.record(t("GO_999_GDW_GOC_20240602_00000102.DAT", sha="b" * 64))
    # The same name may be fetched once and uploaded once (two directions).
    ledger.record(t("GO_999_GDW_GOC_20240602_00000102.DAT", direction="uploaded", sha="b" * 64))


def test_a_full_extract_request_is_found_by_its_hold(ledger):
    assert ledger.request_for_hold(7) is None
    ledger.record(t("GO_999_GDW_GDR_20240603_00000001.DAT", direction="uploaded", kind="GDR", hold_id=7))
    assert ledger.request_for_hold(7).name == "GO_999_GDW_GDR_20240603_00000001.DAT"
    assert ledger.request_for_hold(8) is None
