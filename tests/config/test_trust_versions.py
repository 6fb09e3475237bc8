"""Versions of a trust's settings: the canonical form, the reading groups, the changes between two versions and
who changed the file (git, time-boxed; a deployment when the folder is no git work tree)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from pydantic import BaseModel

from cstf.config.trust import TrustSettings, load_trust
from cstf.config.trust_versions import (MISSING, NOT_COMMITTED, NOT_IN_GIT, SOFTWARE_UPDATE, Change, authorship,
                                        canonical_json, describe, diff, file_sha256, flatten, groups, lookup,
                                        sha256_text, who_changed)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "include" / "trusts" / "999.yaml"
# A setting whose name says it may hold a secret must not be recorded as it is: decide first (leave it out of
# canonical_json), then list it here.
SECRET_NAME = re.compile(r"password|secret|token|api_?key|private|credential", re.I)


def _all_field_names(model: type[BaseModel]) -> set[str]:
    names = set()
    for name, info in model.model_fields.items():
        names.add(name)
        for t in (info.annotation, *getattr(info.annotation, "__args__", ())):
            if isinstance(t, type) and issubclass(t, BaseModel):
                names |= _all_field_names(t)
    return names


def test_no_setting_can_hold_a_secret():
    assert not [n for n in _all_field_names(TrustSettings) if SECRET_NAME.search(n)]


def test_canonical_json_is_the_whole_settings_sorted_and_stable():
    trust = load_trust(EXAMPLE)
    text = canonical_json(trust)
    assert text == canonical_json(load_trust(EXAMPLE)) and json.loads(text) == trust.model_dump(mode="json")
    assert list(json.loads(text)) == sorted(json.loads(text)) and " " not in text.split('"name"')[0]
    assert sha256_text(text) == sha256_text(canonical_json(TrustSettings.model_validate(json.loads(text))))
    assert sha256_text(text) != sha256_text(canonical_json(trust.model_copy(update={"name": "Other"})))


def test_load_trust_keeps_the_file_it_read_outside_the_settings():
    trust = load_trust(EXAMPLE)
    assert trust.source_path == EXAMPLE and "999.yaml" not in canonical_json(trust)
    assert TrustSettings(vpd="998").source_path is None
    assert trust == TrustSettings.model_validate(trust.model_dump()) != TrustSettings(vpd="998")


def test_every_setting_is_in_exactly_one_group_in_reading_order():
    gs = groups()
    paths = [p for g in gs for p in g.paths]
    assert len(paths) == len(set(paths))
    leaves = set(flatten(TrustSettings(vpd="999").model_dump(mode="json")))
    # dict settings (owned fields, status labels) are one setting each on the page
    assert {p for p in leaves if not any(p.startswith(d + ".") for d in paths)} == set(paths) - {
        p for p in paths if isinstance(lookup(TrustSettings(vpd="999").model_dump(mode="json"), p), dict)}
    titles = [g.title for g in gs]
    assert titles[:4] == ["Trust", "Inbound files: thresholds", "Safeguards: when changes are held",
                          "Owned fields and their sources"]
    owned = next(g for g in gs if g.key == "users.owned")
    assert owned.paths == ("users.owned_fields", "users.owned_custom_fields", "users.share_date_of_birth")
    assert "competences.iat.accept" in next(g for g in gs if g.key == "competences").paths


def test_descriptions_come_from_the_model():
    assert describe("safeguards.max_suspensions") == "hold when a run would suspend more accounts than this"
    assert describe("users.owned_fields.department").startswith("Totara user fields this interface owns")
    assert describe("competences.iat.accept").startswith("any source VPD")
    assert describe("no_such.setting") == "" and describe("inbound.no_such") == ""
    undocumented = [p for g in groups() for p in g.paths if not describe(p)]
    assert undocumented == [], "give these settings a Field description: the settings page shows it"


def test_diff_lists_what_changed_in_page_order_with_missing_sides():
    before = TrustSettings(vpd="999").model_dump(mode="json")
    after = json.loads(json.dumps(before))
    after["safeguards"]["max_suspensions"] = 80
    after["users"]["owned_fields"]["department"] = "organisation_name"
    del after["users"]["owned_fields"]["middlename"]
    after["inbound"]["trailer_check"] = "warn"
    after["outbound"]["go_live_date"] = "2024-06-01"
    after["new_section"] = {"x": 1}            # a setting a later model has
    del after["transport"]["in_dir"]           # ... and one it dropped
    changes = diff(before, after)
    assert changes == [
        Change("inbound.trailer_check", "reject", "warn"),
        Change("safeguards.max_suspensions", 50, 80),
        Change("users.owned_fields.department", MISSING, "organisation_name"),
        Change("users.owned_fields.middlename", "middle_names", MISSING),
        Change("outbound.go_live_date", None, "2024-06-01"),
        Change("transport.in_dir", None, MISSING),
        Change("new_section.x", MISSING, 1),
    ]
    assert diff(before, before) == []
    assert diff({"a": 1}, {"a": True}) == [Change("a", 1, True)]  # 1 == True in Python, not in the settings


def _git(folder: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True)


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_who_changed_a_file_in_a_git_work_tree(tmp_path):
    repo = tmp_path / "repo"
    (repo / "trusts").mkdir(parents=True)
    _git(repo, "init", "-q")
    path = repo / "trusts" / "999.yaml"
    path.write_text('vpd: "999"\n', encoding="utf-8")
    assert who_changed(path).changed_by == NOT_COMMITTED   # never committed: the last commit is not this change
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=Ada Admin", "-c", "user.email=ada@example.org", "commit", "-q",
         "-m", "Raise the suspension threshold for the merger", "--date", "2024-06-02T10:11:00+01:00")
    got = who_changed(path)
    assert got.changed_by.startswith("Ada Admin, 2024-06-02 10:11 +0100 (commit ") and got.note == (
        "Raise the suspension threshold for the merger")
    path.write_text('vpd: "999"\nname: Edited here\n', encoding="utf-8")
    assert who_changed(path).changed_by == NOT_COMMITTED


def test_who_changed_outside_git_or_when_git_fails(tmp_path, monkeypatch):
    path = tmp_path / "999.yaml"
    path.write_text('vpd: "999"\n', encoding="utf-8")
    assert who_changed(path) == who_changed(None) == who_changed(tmp_path / "gone" / "999.yaml")
    assert who_changed(path).changed_by == NOT_IN_GIT and who_changed(path).note is None
    monkeypatch.setenv("PATH", str(tmp_path / "no-git-here"))
    assert who_changed(EXAMPLE).changed_by == NOT_IN_GIT                 # no git at all
    monkeypatch.undo()

    def slow(*_a, **_k):
        raise subprocess.TimeoutExpired("git", 5)
    monkeypatch.setattr(subprocess, "run", slow)
    assert who_changed(EXAMPLE).changed_by == NOT_IN_GIT                 # a git that hangs is cut off


def test_the_same_file_with_other_settings_is_a_software_update(tmp_path):
    path = tmp_path / "999.yaml"
    path.write_text('vpd: "999"\n', encoding="utf-8")
    assert authorship(path, True).changed_by == SOFTWARE_UPDATE
    assert authorship(path, False).changed_by == NOT_IN_GIT
    assert file_sha256(path) and file_sha256(tmp_path / "none.yaml") is None and file_sha256(None) is None
