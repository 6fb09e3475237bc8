"""The ESR transport against a real explicit-FTPS server on 127.0.0.1 (pyftpdlib, PROT P required):
fetch GO files into landing, refuse a changed file, upload under a temporary name, and write and
upload one full-extract request (GDR) per window-gap hold; then the esr_inbound DAG doing it all."""
from __future__ import annotations

import hashlib
from datetime import date, datetime, timezone
from types import SimpleNamespace

import pytest

from cstf import inbound
from cstf.config import Settings, load_trusts
from cstf.esr.outbound import CmiWriter
from cstf.hooks.esr_ftps import EsrFtpsHook
from cstf.ledger import StateDB
from cstf.ledger.transport import TransportLedger
from cstf.transport import ChangedRemoteFile
from cstf.transport.flow import fetch_confirmations, fetch_go_files, request_full_extract, upload_outbound
from sim.esr import generate

GOF = "GO_999_GDW_GOF_20240601_00000101.DAT"
GOC2, GOC3, GOC4 = (f"GO_999_GDW_GOC_202406{d:02d}_00000{100 + d}.DAT" for d in (2, 3, 4))


@pytest.fixture
def job_for(tmp_path, monkeypatch, db_url):
    """An inbound job of trust 999 for a processing date, on a fresh workdir and the state DB under test."""
    monkeypatch.setenv("CSTF_WORKDIR", str(tmp_path / "work"))
    monkeypatch.delenv("CSTF_LANDING_DIR", raising=False)
    settings = Settings.from_env()
    db = StateDB.from_url(db_url)
    db.migrate()

    def make(run_date: date, run_id: str = "run-1") -> inbound.InboundJob:
        ctx = inbound.RunContext(run_id=run_id, dag_id="test", run_date=run_date)
        return inbound.InboundJob(settings, load_trusts(settings.trusts_dir)["999"], db, ctx)

    yield make
    db.dispose()


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fetches_new_files_into_landing_then_a_second_fetch_is_a_no_op(ftps_server, job_for):
    generate(ftps_server.out, persons=40, days=3, seed=11)
    (ftps_server.out / "GO_888_GDW_GOC_20240602_00000990.DAT").write_bytes(b"another trust's file")
    job = job_for(date(2024, 6, 4))
    with EsrFtpsHook() as hook:
        result = fetch_go_files(job, hook, hook.out_dir)
    landing = job.settings.landing_for("999")
    assert result.fetched == [GOF, GOC2, GOC3, GOC4]  # in processing order
    assert sorted(p.name for p in landing.iterdir()) == sorted([GOF, GOC2, GOC3, GOC4])  # no temporary names left
    assert all(sha(landing / n) == sha(ftps_server.out / n) for n in result.fetched)
    recorded = TransportLedger(job.db).fetched("999")
    assert {n: (t.size, t.sha256) for n, t in recorded.items()} == {
        n: ((ftps_server.out / n).stat().st_size, sha(ftps_server.out / n)) for n in result.fetched}
    mtimes = {p.name: p.stat().st_mtime_ns for p in landing.iterdir()}

    with EsrFtpsHook() as hook:
        again = fetch_go_files(job_for(date(2024, 6, 4), "run-2"), hook, hook.out_dir)
    assert again.fetched == [] and sorted(again.already) == sorted(result.fetched)
    assert {p.name: p.stat().st_mtime_ns for p in landing.iterdir()} == mtimes
    assert len(TransportLedger(job.db).transfers("999", "fetched")) == 4
    # The landed files go through the inbound flow unchanged.
    todo = inbound.discover(job)
    proceed, outcomes = inbound.register(job, todo)
    assert proceed == [GOF, GOC2, GOC3, GOC4] and not [o for o in outcomes if o.status != "accepted"]


def test_a_changed_file_under_an_old_name_is_refused_with_a_clear_error(ftps_server, job_for):
    generate(ftps_server.out, persons=40, days=1, seed=11)
    job = job_for(date(2024, 6, 2))
    with EsrFtpsHook() as hook:
        fetch_go_files(job, hook, hook.out_dir)
    landing = job.settings.landing_for("999")
    before = (landing / GOC2).read_bytes()
    (ftps_server.out / GOC2).write_bytes(before + b"PRA~tampered\n")  # ESR re-wrote the file under its old name
    (ftps_server.out / GOC3).write_bytes(b"a later file")  # waits on the server behind the changed one
    with EsrFtpsHook() as hook, pytest.raises(ChangedRemoteFile) as err:
        fetch_go_files(job, hook, hook.out_dir)
    message = str(err.value)
    assert GOC2 in message and "changed on the server" in message and f"{len(before)} bytes" in message
    assert (landing / GOC2).read_bytes() == before  # landing keeps what was fetched
    assert sorted(p.name for p in landing.iterdir()) == sorted([GOF, GOC2])
    kept = list((job.settings.workdir / "refused" / "999").iterdir())
    assert [p.read_bytes() for p in kept] == [before + b"PRA~tampered\n"]  # the new bytes are kept for the admin
    assert [e["outcome"] for e in job.db.audit_events(vpd="999") if e["step"] == "fetch"] == ["ok", "rejected"]


def test_upload_goes_through_a_temporary_name_once(ftps_server, job_for, tmp_path):
    job = job_for(date(2024, 6, 3))
    local = tmp_path / "LMS_999_TOT_CMI_20240603_00000007.DAT"
    local.write_bytes(b"HDR~LMS_999_TOT_CMI_20240603_00000007.DAT~20240603 220000~999~0\nTRL~0\n")
    with EsrFtpsHook() as hook:
        first = upload_outbound(job, hook, hook.in_dir, local, "CMI")
        again = upload_outbound(job, hook, hook.in_dir, local, "CMI")  # a retried task
    assert again == first and first.sha256 == sha(local)
    assert [p.name for p in ftps_server.inbox.iterdir()] == [local.name]
    assert (ftps_server.inbox / local.name).read_bytes() == local.read_bytes()
    assert len(ftps_server.received) == 1 and ftps_server.received[0].startswith(f".{local.name}.")
    local.write_bytes(b"other bytes")
    with EsrFtpsHook() as hook, pytest.raises(ChangedRemoteFile, match="refusing to send other bytes"):
        upload_outbound(job, hook, hook.in_dir, local, "CMI")


def test_confirmation_files_come_back_from_out(ftps_server, job_for, tmp_path):
    cmc = "LMS_999_TOT_CMC_20240604_00000001.DAT"
    (ftps_server.out / cmc).write_bytes(b"HDR~" + cmc.encode() + b"~20240604 060000~999~LMS_999_TOT_CMI_20240603_00000007.DAT\nTRL~0\n")
    generate(ftps_server.out, persons=40, days=1, seed=11)
    job = job_for(date(2024, 6, 4))
    with EsrFtpsHook() as hook:
        result = fetch_confirmations(job, hook, hook.out_dir, tmp_path / "esr_out", CmiWriter().confirmation_pattern())
    assert result.fetched == [cmc] and [p.name for p in (tmp_path / "esr_out").iterdir()] == [cmc]


def test_a_window_gap_holds_the_trust_and_one_full_extract_request_is_uploaded(ftps_server, job_for):
    generate(ftps_server.out, persons=40, days=3, seed=11)
    (ftps_server.out / GOC2).unlink()  # ESR never sent day 2: a gap in the windows
    job = job_for(date(2024, 6, 3))
    with EsrFtpsHook() as hook:
        fetch_go_files(job, hook, hook.out_dir)
        assert request_full_extract(job, hook, hook.in_dir) is None  # not held yet: nothing to request
        proceed, _ = inbound.register(job, inbound.discover(job))
        assert proceed == [GOF]
        inbound.promote(job, inbound.validate(job, inbound.stage(job, proceed)[0])[0])
        hold = job.db.get_hold("999")
        assert hold and "gap" in hold["reason"]
        sent = request_full_extract(job, hook, hook.in_dir)
        assert sent.name == "GO_999_GDW_GDR_20240603_00000001.DAT" and sent.hold_id == hold["id"]
        assert (ftps_server.inbox / sent.name).read_bytes() == b"HDR~GO_999_GDW_GDR_20240603_00000001.DAT~20240603 000000"
        # The next runs under the same hold send nothing new.
        assert request_full_extract(job_for(date(2024, 6, 4), "run-2"), hook, hook.in_dir) == sent
        assert [p.name for p in ftps_server.inbox.iterdir()] == [sent.name] and len(ftps_server.received) == 1
        # An admin releases the hold, the gap holds the trust again the same day: a second request, a new name.
        job.db.release_vpd("999", released_by="admin", note="test")
        inbound.register(job_for(date(2024, 6, 3), "run-3"), [GOC3])
        second = request_full_extract(job_for(date(2024, 6, 3), "run-3"), hook, hook.in_dir)
    assert second.name == "GO_999_GDW_GDR_20240603_00000002.DAT"
    assert sorted(p.name for p in ftps_server.inbox.iterdir()) == [sent.name, second.name]


def test_an_overlap_hold_asks_for_no_full_extract(ftps_server, job_for):
    job = job_for(date(2024, 6, 3))
    job.db.hold_vpd("999", reason=f"{GOC3}: overlap: the window starts 2024-05-31 00:00, before the watermark", file_name=GOC3)
    with EsrFtpsHook() as hook:
        assert request_full_extract(job, hook, hook.in_dir) is None
    assert list(ftps_server.inbox.iterdir()) == []


@pytest.mark.airflow
@pytest.mark.timeout(900)
def test_esr_inbound_dag_fetches_over_ftps_and_requests_a_full_extract(ftps_server, inbound_dag, totara_sim, tmp_path,
                                                                        monkeypatch):
    monkeypatch.setenv("CSTF_WORKDIR", str(tmp_path / "dagwork"))
    monkeypatch.delenv("CSTF_STATE_DB_URL", raising=False)
    generate(ftps_server.out, persons=40, days=3, seed=11)
    (ftps_server.out / GOC2).unlink()
    day = date(2024, 6, 3)
    inbound_dag.test(logical_date=datetime(day.year, day.month, day.day, tzinfo=timezone.utc),
                     run_conf={"run_date": None, "vpd": None, "mode": "apply", "approve_destructive": False})
    settings = Settings.from_env()
    landing = settings.landing_for("999")
    assert sorted(p.name for p in landing.iterdir()) == sorted([GOF, GOC3, GOC4])
    db = StateDB.from_url(settings.state_db_url)
    status = {f.name: f.status for f in db.list_files()}
    assert status == {GOF: "applied", GOC3: "held"}  # the day-4 file waits for its date
    assert [p.name for p in ftps_server.inbox.iterdir()] == ["GO_999_GDW_GDR_20240603_00000001.DAT"]
    assert [t.name for t in TransportLedger(db).transfers("999", "uploaded", "GDR")] == ["GO_999_GDW_GDR_20240603_00000001.DAT"]


def test_esr_outbound_uploads_to_in_and_settles_confirmations_fetched_from_out(ftps_server, tmp_path, monkeypatch):
    """The esr_outbound operators with the FTPS Connection: deliver uploads the CMI file, confirmations fetch the CMC."""
    from cstf import outbound
    from cstf.ledger.outbound import OutboundLedger
    from cstf.operators import outbound as out_ops
    from cstf.operators.common import job_for

    monkeypatch.setenv("CSTF_WORKDIR", str(tmp_path / "work"))
    for var in ("CSTF_STATE_DB_URL", "CSTF_OUTBOX_DIR", "CSTF_ESR_IN_DIR", "CSTF_ESR_OUT_DIR", "CSTF_LANDING_DIR"):
        monkeypatch.delenv(var, raising=False)
    item = {"vpd": "999", "run_date": "2024-06-03", "mode": "apply"}
    context = {"run_id": "outbound-ftps", "ti": SimpleNamespace(dag_id="esr_outbound", try_number=1)}
    job = job_for(item, context, "write_file")
    ledger = OutboundLedger(job.db)
    queued = ledger.queue([{"person_id": "9000003", "competence_id": "3002", "date_achieved": "2024-06-03",
                            "expiry_date": "2025-06-02", "certification": "CSTF-IG-1Y", "employee_number": "20012399",
                            "assignment_number": "20012399", "competence_name": "NHS|CSTF|Information Governance|"}],
                          "outbound-ftps", vpd="999")
    written = outbound.write_file(job, ledger)["file"]
    sent_bytes = (outbound.Folders.from_env(job).outbox / written).read_bytes()

    assert out_ops.deliver(item, context)["delivered"] == [written]
    assert [p.name for p in ftps_server.inbox.iterdir()] == [written]
    assert (ftps_server.inbox / written).read_bytes() == sent_bytes
    assert ftps_server.received[0].startswith(f".{written}.")  # uploaded under a temporary name, then renamed
    assert not outbound.Folders.from_env(job).esr_in.exists()  # not the local-folder delivery
    assert ledger.file_for_run_date("999", date(2024, 6, 3))["delivered_at"]
    assert TransportLedger(job.db).get("uploaded", written).sha256 == hashlib.sha256(sent_bytes).hexdigest()
    assert out_ops.deliver(item, context)["delivered"] == []  # a re-run sends nothing again
    assert len(ftps_server.received) == 1

    ref = queued[0]["source_reference"]
    cmc = "LMS_999_TOT_CMC_20240604_00000001.DAT"
    (ftps_server.out / cmc).write_bytes(
        f"HDR~{cmc}~20240604 060000~999~{written}\nCMC~{ref}~9000003~3002~S~~\nTRL~1\n".encode("latin-1"))
    assert out_ops.confirmations(item, context)["confirmations"]["confirmed"] == 1
    assert [r["source_reference"] for r in ledger.rows("999", ["confirmed"])] == [ref]
    assert TransportLedger(job.db).get("fetched", cmc).kind == "CMC"
