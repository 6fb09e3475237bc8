"""The trust settings history (migration 0013) on SQLite and PostgreSQL: each run records the settings it used,
a version only when they changed since the trust's last run, who changed the file, and never an UPDATE."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from cstf.config import Settings, load_trust
from cstf.config.trust_versions import NOT_IN_GIT, SOFTWARE_UPDATE, canonical_json, sha256_text
from cstf.inbound import InboundJob, RunContext, record_settings
from cstf.ledger.trust_settings import record_trust_settings, settings_versions

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = (ROOT / "include" / "trusts" / "999.yaml").read_text(encoding="utf-8")


def rows(db) -> list[tuple]:
    with db.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text("SELECT * FROM trust_settings_versions ORDER BY id"))]


def record(db, settings: dict, run_id: str, *, file_sha256: str | None = None, who=None, vpd: str = "999"):
    body = json.dumps(settings, sort_keys=True)
    asked = []

    def ask(same_file: bool):
        asked.append(same_file)
        return who or ("Ada Admin, 2024-06-02 10:11 +0100 (commit abc1234)", "Raise the threshold")
    out = record_trust_settings(db, vpd, body, sha256_text(body), run_id=run_id, file_sha256=file_sha256,
                                source_path="/trusts/999.yaml", who=ask)
    return out, asked


def test_a_version_is_recorded_once_by_the_first_run_that_used_it(db):
    out, asked = record(db, {"vpd": "999", "n": 50}, "run-1", file_sha256="f1")
    assert out["recorded"] and out["version"] == 1 and asked == [False]
    first = rows(db)
    for run in ("run-2", "run-3"):  # later runs with the same settings: one read, nothing written, nobody asked
        out, asked = record(db, {"vpd": "999", "n": 50}, run, file_sha256="f1")
        assert not out["recorded"] and out["version"] == 1 and asked == []
    assert rows(db) == first       # the first sighting stays as it was: no row updated
    [v] = settings_versions(db, "999")
    assert (v["first_seen_run"], v["changed_by"], v["change_note"], v["source_path"], v["file_sha256"]) == (
        "run-1", "Ada Admin, 2024-06-02 10:11 +0100 (commit abc1234)", "Raise the threshold", "/trusts/999.yaml", "f1")
    assert v["settings"] == {"vpd": "999", "n": 50} and v["sha256"] == sha256_text(v["settings_json"])


def test_changes_and_a_change_back_are_new_versions_so_the_latest_is_what_the_last_run_used(db):
    record(db, {"n": 50}, "run-1", file_sha256="f1")
    record(db, {"n": 80}, "run-2", file_sha256="f2")
    out, _ = record(db, {"n": 50}, "run-3", file_sha256="f1")   # put back as it was
    assert out == {"version": 3, "sha256": sha256_text(json.dumps({"n": 50})), "recorded": True}
    assert [(v["version"], v["first_seen_run"], v["settings"]["n"]) for v in settings_versions(db, "999")] == [
        (1, "run-1", 50), (2, "run-2", 80), (3, "run-3", 50)]
    record(db, {"n": 50}, "run-4", file_sha256="f1")
    assert len(rows(db)) == 3
    record(db, {"n": 1}, "run-1", vpd="998")                      # trusts are counted apart
    assert [(v["vpd"], v["version"]) for v in settings_versions(db)] == [
        ("998", 1), ("999", 1), ("999", 2), ("999", 3)]


def test_the_same_file_giving_other_settings_says_so(db):
    record(db, {"n": 50}, "run-1", file_sha256="f1")
    _out, asked = record(db, {"n": 50, "new_default": True}, "run-2", file_sha256="f1")
    assert asked == [True]          # the file did not change: a software update moved a default
    _out, asked = record(db, {"n": 60, "new_default": True}, "run-3", file_sha256=None)
    assert asked == [False]         # no file to compare: never claimed the same


def test_two_writers_of_one_version_keep_one_row(db, monkeypatch):
    import cstf.ledger.trust_settings as ts
    record(db, {"n": 50}, "run-1")
    with db.engine.begin() as conn:  # another process wrote version 2 between our read and our write
        conn.execute(text("INSERT INTO trust_settings_versions (vpd, version, sha256, settings_json, first_seen_at, "
                          "changed_by) VALUES ('999', 2, 'x', '{}', '2024-06-02T00:00:00+00:00', 'them')"))
    real = ts.queries.load

    def stale(name):  # our read still saw version 1 as the latest
        if name == "trust_settings_latest":
            return text("SELECT version, sha256, file_sha256 FROM trust_settings_versions WHERE vpd = :vpd "
                        "AND version = 1")
        return real(name)
    monkeypatch.setattr(ts.queries, "load", stale)
    out, _ = record(db, {"n": 80}, "run-2")
    assert out["recorded"] is False and len(rows(db)) == 2


def _job(db, trusts: Path, run_id: str) -> InboundJob:
    settings = Settings.from_env({"CSTF_WORKDIR": str(trusts.parent / "work"), "CSTF_TRUSTS_DIR": str(trusts)})
    return InboundJob(settings, load_trust(trusts / "999.yaml"), db, RunContext(run_id=run_id))


def test_each_run_records_the_settings_file_it_read_and_a_changed_file_is_a_change(db, tmp_path):
    trusts = tmp_path / "trusts"   # not in a git work tree: a deployment changed the file
    trusts.mkdir()
    path = trusts / "999.yaml"
    path.write_text(EXAMPLE, encoding="utf-8")
    assert record_settings(_job(db, trusts, "manual__2024-06-03"))["recorded"]
    assert not record_settings(_job(db, trusts, "manual__2024-06-04"))["recorded"]
    path.write_text(EXAMPLE.replace("max_suspensions: 50", "max_suspensions: 80"), encoding="utf-8")
    assert record_settings(_job(db, trusts, "manual__2024-06-05"))["version"] == 2
    v1, v2 = settings_versions(db, "999")
    assert (v1["first_seen_run"], v2["first_seen_run"]) == ("manual__2024-06-03", "manual__2024-06-05")
    assert v1["settings"]["safeguards"]["max_suspensions"] == 50 and v2["settings"]["safeguards"]["max_suspensions"] == 80
    assert v2["changed_by"] == NOT_IN_GIT and v2["change_note"] is None and v2["source_path"] == str(path)
    assert v2["settings_json"] == canonical_json(load_trust(path))
    assert v1["file_sha256"] != v2["file_sha256"]


def test_a_software_update_is_told_apart_from_an_edited_file(db, tmp_path, monkeypatch):
    trusts = tmp_path / "trusts"
    trusts.mkdir()
    (trusts / "999.yaml").write_text(EXAMPLE, encoding="utf-8")
    record_settings(_job(db, trusts, "run-1"))
    job = _job(db, trusts, "run-2")  # same file; the model's default for a setting not in the file moved
    monkeypatch.setattr(job.trust.competences, "include_requirement_rows", True)
    assert record_settings(job)["version"] == 2
    assert settings_versions(db, "999")[1]["changed_by"] == SOFTWARE_UPDATE


@pytest.mark.parametrize("query", ["trust_settings_latest", "trust_settings_insert", "trust_settings_versions"])
def test_the_queries_never_change_a_recorded_version(query):
    from cstf.ledger import queries
    assert not [w for w in ("UPDATE", "DELETE", "ON CONFLICT") if w in queries.source(query).upper()]
