"""The synthetic GO file generator: conventions, layouts, manifest, scenarios."""
from __future__ import annotations

import json
import re
from collections import Counter
from functools import lru_cache
from datetime import date, timedelta

import pytest
import yaml

import sim.esr as esr
from cstf.paths import include_dir
from sim.esr.files import NAME_RE
from sim.esr.generator import MIN_PERSONS

START = date(2024, 6, 1)
LAYOUT_TYPES = ("PRA", "ASA", "CMA", "CDA", "ORA", "LCA", "POA")


def layout_counts() -> dict[str, int]:
    folder = include_dir() / "layouts"
    return {rt: len(yaml.safe_load((folder / f"{rt}.yaml").read_text())["columns"]) for rt in LAYOUT_TYPES}


def read_lines(path) -> list[list[str]]:
    """Split as the spec says: Latin-1, split on LF, `~` fields, no quoting."""
    text = path.read_bytes().decode("latin-1")
    assert text.endswith("\n")
    return [line.split("~") for line in text[:-1].split("\n")]


@lru_cache(maxsize=None)
def cols(rt: str) -> list[str]:
    folder = include_dir() / "layouts"
    return [c["name"] for c in yaml.safe_load((folder / f"{rt}.yaml").read_text())["columns"]]


def records(gs, rt: str, file_name: str | None = None) -> list[dict]:
    """Records of one type as dicts (column name -> value), optionally from one file."""
    out = []
    for p in gs.files:
        if file_name and p.name != file_name:
            continue
        for f in read_lines(p):
            if f[0] == rt:
                out.append(dict(zip(cols(rt), f)) | {"_file": p.name})
    return out


@pytest.fixture(scope="module")
def gs(tmp_path_factory):
    return esr.generate(tmp_path_factory.mktemp("go") / "landing", persons=200, malformed=True)


def test_same_arguments_give_byte_identical_files(tmp_path, gs):
    again = esr.generate(tmp_path / "again", persons=200, malformed=True)
    assert [p.name for p in again.files] == [p.name for p in gs.files]
    for a, b in zip(gs.files, again.files):
        assert a.read_bytes() == b.read_bytes(), a.name
    assert json.dumps(again.manifest, sort_keys=True) == json.dumps(gs.manifest, sort_keys=True)
    other = esr.generate(tmp_path / "seed2", persons=200, seed=2)
    assert other.files[0].read_bytes() != gs.files[0].read_bytes()


def test_names_sequences_and_windows_chain(gs):
    names = [p.name for p in gs.files]
    assert names == [
        "GO_999_GDW_GOF_20240601_00000101.DAT", "GO_999_GDW_GOC_20240602_00000102.DAT",
        "GO_999_GDW_GOC_20240603_00000103.DAT", "GO_999_GDW_GOC_20240604_00000104.DAT"]
    prev_current = None
    for k, p in enumerate(gs.files):
        assert NAME_RE.match(p.name)
        hdr = read_lines(p)[0]
        assert len(hdr) == 7 and hdr[0] == "HDR" and hdr[1] == p.name and hdr[3] == "999" and hdr[6] == "01"
        file_date = START + timedelta(days=k)
        assert hdr[5] == f"{file_date:%Y%m%d} 000000"
        if k == 0:  # the full file: no previous run, extracted the next morning (spec §9.2)
            assert hdr[4] == "00000000 000000"
            assert hdr[2] == "20240602 031502"
        else:  # each delta starts where the previous file ended (spec §9.3)
            assert hdr[4] == prev_current
            assert hdr[2] == f"{file_date:%Y%m%d} 031455"
        prev_current = hdr[5]


def test_every_line_has_the_layout_field_count(gs):
    expected = layout_counts()
    deliberate = {(m["file"], m["line"]) for m in gs.manifest["malformed_lines"]}
    assert len(deliberate) == 5
    seen = Counter()
    for p in gs.files:
        for n, f in enumerate(read_lines(p), start=1):
            if (p.name, n) in deliberate:
                continue
            if f[0] in expected:
                assert len(f) == expected[f[0]], (p.name, n, f[0])
            elif f[0] in ("CMD", "PRD"):
                assert len(f) == 2 and f[1]
            else:
                assert f[0] in ("HDR", "TRL", "LOV"), f[0]
            seen[f[0]] += 1
    assert set(expected) <= set(seen)


def test_trailer_and_manifest_counts_match_the_files(gs):
    for p in gs.files:
        lines = read_lines(p)
        assert lines[0][0] == "HDR" and lines[-1][0] == "TRL"
        assert [f[0] for f in lines].count("HDR") == 1 and [f[0] for f in lines].count("TRL") == 1
        data = Counter(f[0] for f in lines if f[0] not in ("HDR", "TRL", "LOV"))
        assert int(lines[-1][1]) == sum(data.values())
        assert gs.manifest["counts"][p.name] == dict(data)
        assert any(f[0] == "LOV" for f in lines)


def test_full_file_scale_and_primary_flags(gs):
    counts = gs.manifest["counts"][gs.files[0].name]
    assert counts["PRA"] >= 200 and counts["CDA"] == 22
    employees = [r for r in records(gs, "PRA", gs.files[0].name)
                 if r["system_person_type"] == "EMP" and not r["effective_end"]]
    # about 15 achievements per employee (~1.5 million for 100,000 people)
    assert 13 <= gs.manifest["totals"]["cma_full_bulk"] / len(employees) <= 17
    primaries = Counter(r["person_id"] for r in records(gs, "ASA", gs.files[0].name)
                        if r["assignment_type"] == "E" and not r["effective_end"] and r["primary_assignment"] == "Y")
    assert all(primaries[r["person_id"]] == 1 for r in employees)


def test_latin1_bytes_round_trip(gs):
    full = gs.files[0].read_bytes()
    with pytest.raises(UnicodeDecodeError):
        full.decode("utf-8")  # Latin-1, not UTF-8
    everything = b"".join(p.read_bytes() for p in gs.files)
    assert everything.decode("latin-1").encode("latin-1") == everything
    names = gs.manifest["latin1_names"]
    assert {"Siân", "Zoë", "Róisín", "Eléonore", "Anaïs"} <= {n["first_name"] for n in names}
    assert "O'Brien-Ní Bhriain" in {n["last_name"] for n in names}
    for n in names:
        assert f"{n['last_name']}~{n['first_name']}".encode("latin-1") in everything
    for p in gs.files[1:]:  # every delta has non-ASCII text, so corrupt(..., "utf8") changes it
        assert not p.read_bytes().isascii()


def test_text_quirks_are_kept_raw(gs):
    text = b"".join(p.read_bytes() for p in gs.files).decode("latin-1")
    kinds = {q["quirk"] for q in gs.manifest["text_quirks"]}
    assert kinds == {"quote", "leading_space"}
    for q in gs.manifest["text_quirks"]:
        assert f"~{q['value']}~" in text
    assert '~999 Maternity "Town" Hospital~' in text


def test_lf_by_default_and_crlf_option(tmp_path, gs):
    assert b"\r" not in gs.files[0].read_bytes()
    crlf = esr.generate(tmp_path / "crlf", persons=MIN_PERSONS, days=1, crlf=True)
    for p in crlf.files:
        data = p.read_bytes()
        assert data.endswith(b"TRL~" + data.rsplit(b"TRL~", 1)[1]) and data.endswith(b"\r\n")
        assert data.count(b"\n") == data.count(b"\r\n")


def test_applicants_and_hires(gs):
    m = gs.manifest
    status = {a["person_id"]: a["status"] for a in m["applicants"]}
    assert {"OFFER", "ACCEPTED", "ACTIVE_APL", "INTERVIEW1"} <= set(status.values())
    assert set(m["applicants_eligible"]) == {p for p, s in status.items() if s in ("OFFER", "ACCEPTED")}
    assert set(m["applicants_ineligible"]) == {p for p, s in status.items() if s not in ("OFFER", "ACCEPTED")}
    asa = records(gs, "ASA")
    for pid, st in status.items():
        assert any(r["person_id"] == pid and r["assignment_type"] == "A" and r["system_assignment_status"] == st
                   and not r["assignment_number"] for r in asa)
    assert len(m["hires"]) == 2
    file_date = lambda name: NAME_RE.match(name)["date"]
    future = [h for h in m["hires"] if h["date"].replace("-", "") > file_date(h["file"])]
    assert len(future) == 1  # one hire is future-dated
    for h in m["hires"]:
        assert h["person_id"] in m["applicants_eligible"]
        pra = [r for r in records(gs, "PRA", h["file"]) if r["person_id"] == h["person_id"]]
        hire = date.fromisoformat(h["date"])
        emp = [r for r in pra if r["system_person_type"] == "EMP"]
        apl = [r for r in pra if r["system_person_type"] == "APL"]
        assert emp[0]["effective_start"] == emp[0]["hire_date"] == f"{hire:%Y%m%d}" and not emp[0]["effective_end"]
        assert emp[0]["employee_number"] == h["employee_number"]
        assert apl[0]["effective_end"] == f"{hire - timedelta(days=1):%Y%m%d}"
        e = [r for r in records(gs, "ASA", h["file"]) if r["assignment_id"] == h["assignment_id"]][0]
        assert (e["assignment_type"], e["system_assignment_status"], e["primary_assignment"]) == ("E", "ACTIVE_ASSIGN", "Y")


def test_future_termination_then_reversal(gs):
    m = gs.manifest
    assert len(m["future_terminations"]) == 2
    for t in m["future_terminations"]:
        atd = date.fromisoformat(t["atd"])
        assert atd > START + timedelta(days=1)  # in the future of its file
        pra = [r for r in records(gs, "PRA", t["file"]) if r["person_id"] == t["person_id"]]
        assert {r["actual_termination_date"] for r in pra} == {f"{atd:%Y%m%d}"}
        ex = [r for r in pra if r["system_person_type"] == "EX_EMP"][0]
        assert ex["effective_start"] == f"{atd + timedelta(days=1):%Y%m%d}"
        asa = [r for r in records(gs, "ASA", t["file"]) if r["person_id"] == t["person_id"]][0]
        assert asa["last_working_day"] == t["last_working_day"].replace("-", "")
    (rev,) = m["reversed_terminations"]
    assert rev["person_id"] in {t["person_id"] for t in m["future_terminations"]}
    assert rev["file"] > m["future_terminations"][0]["file"]
    (pra,) = [r for r in records(gs, "PRA", rev["file"]) if r["person_id"] == rev["person_id"]]
    assert (pra["actual_termination_date"], pra["effective_end"], pra["system_person_type"]) == ("", "", "EMP")


def test_rehire_keeps_person_and_employee_number(gs):
    (r,) = gs.manifest["rehires"]
    full = [p for p in records(gs, "PRA", gs.files[0].name) if p["person_id"] == r["person_id"]]
    assert [p["system_person_type"] for p in full] == ["EMP", "EX_EMP"]
    later = [p for p in records(gs, "PRA", r["file"]) if p["person_id"] == r["person_id"]]
    emp = [p for p in later if p["system_person_type"] == "EMP"][0]
    assert emp["hire_date"] == r["date"].replace("-", "") > r["previous_atd"].replace("-", "")
    assert emp["employee_number"] == r["employee_number"] == full[0]["employee_number"]


def test_multiple_assignments_one_primary(gs):
    multi = gs.manifest["multiple_assignments"]
    assert len(multi) == 3
    asa = records(gs, "ASA")
    for m in multi:
        rows = {r["assignment_id"]: r for r in asa if r["person_id"] == m["person_id"] and r["assignment_id"] in m["assignment_ids"]}
        assert set(rows) == set(m["assignment_ids"])
        assert [a for a, r in rows.items() if r["primary_assignment"] == "Y"] == [m["primary_assignment_id"]]


def test_name_and_email_changes_are_new_slices(gs):
    m = gs.manifest
    assert {c["field"] for c in m["name_changes"]} == {"last_name", "first_name"}
    assert len(m["email_changes"]) == 2
    for c in m["name_changes"] + m["email_changes"]:
        pra = [r for r in records(gs, "PRA", c["file"]) if r["person_id"] == c["person_id"]]
        d = date.fromisoformat(c["date"])
        old = [r for r in pra if r["effective_end"] == f"{d - timedelta(days=1):%Y%m%d}"][0]
        new = [r for r in pra if r["effective_start"] == f"{d:%Y%m%d}"][0]
        assert old[c["field"]] == c["old"] != new[c["field"]] == c["new"]


def test_iat_achievements_carry_the_other_vpd_on_applicants(gs):
    iat = gs.manifest["iat_achievements"]
    assert len(iat) == 2 and {a["vpd"] for a in iat} == {"888"}
    applicants = {r["person_id"] for r in records(gs, "PRA") if r["system_person_type"] == "APL"}
    cma = {r["competency_element_id"]: r for r in records(gs, "CMA")}
    for a in iat:
        assert a["person_id"] in applicants and a["person_id"] in gs.manifest["applicants_eligible"]
        row = cma[a["element_id"]]
        assert (row["vpd_code"], row["competency_type"], row["competency_status"]) == ("888", "PERSONAL", "ACHIEVED")
    # the delta-1 IAT row precedes its person's PRA in the file (cross-type order is not guaranteed)
    d1 = [a for a in iat if a["file"] != gs.files[0].name][0]
    lines = read_lines(gs.files[1])
    first = {f[0]: i for i, f in reversed(list(enumerate(lines))) if len(f) > 1 and f[1] == d1["person_id"]}
    assert first["CMA"] < first["PRA"]


def test_reissued_competence(gs):
    r = gs.manifest["reissued_competence"]
    cda = {c["competence_id"]: c for c in records(gs, "CDA", r["file"])}
    old, new = cda[r["old_id"]], cda[r["new_id"]]
    assert old["date_to"] == r["old_date_to"].replace("-", "") and not new["date_to"]
    stem = lambda name: re.sub(r" - \d+ Years?$", "", name.split("|")[2])
    assert stem(old["competence_name"]) == stem(new["competence_name"]) == r["stem"]
    assert old["renewal_period_freq"] != new["renewal_period_freq"]
    by_comp = Counter(c["competence_id"] for c in records(gs, "CMA"))
    assert by_comp[r["old_id"]] > 0 and by_comp[r["new_id"]] == len(r["new_achievements"]) > 0


def test_deletes(gs):
    m = gs.manifest
    assert len(m["deleted_achievements"]) == 2
    full_cma = {c["competency_element_id"]: c for c in records(gs, "CMA", gs.files[0].name)}
    for d in m["deleted_achievements"]:
        assert ["CMD", d["element_id"]] in read_lines(next(p for p in gs.files if p.name == d["file"]))
        assert full_cma[d["element_id"]]["person_id"] == d["person_id"]
    (pd,) = m["deleted_persons"]
    assert ["PRD", pd["person_id"]] in read_lines(next(p for p in gs.files if p.name == pd["file"]))


def test_achievement_dates_expire_the_day_before_the_anniversary(gs):
    from sim.esr.generator import expiry
    years = {c["competence_id"]: int(c["renewal_period_freq"]) for c in records(gs, "CDA")}
    for c in records(gs, "CMA", gs.files[0].name)[:2000]:
        df = date(int(c["date_from"][:4]), int(c["date_from"][4:6]), int(c["date_from"][6:]))
        assert c["date_to"] == f"{expiry(df, years[c['competence_id']]):%Y%m%d}"
        assert df < START


def test_malformed_lines_are_where_the_manifest_says(gs):
    expected, mins = layout_counts(), {"PRA": 39, "ASA": 49, "CMA": 23}
    outcomes = Counter()
    for m in gs.manifest["malformed_lines"]:
        f = read_lines(next(p for p in gs.files if p.name == m["file"]))[m["line"] - 1]
        rt, n = f[0], len(f)
        assert rt == m["record_type"]
        outcomes[m["outcome"]] += 1
        if "too few" in m["problem"]:
            assert n < mins[rt] and m["outcome"] == "quarantine"
        elif "bad date" in m["problem"]:
            assert f[2] == "20241341" and n == expected[rt]
        elif "blank key" in m["problem"]:
            assert f[1] == "" and n == expected[rt]
        elif "extra" in m["problem"]:
            assert n == expected[rt] + 1 and m["outcome"] == "accept"
        elif "missing" in m["problem"]:
            assert mins[rt] <= n < expected[rt] and m["outcome"] == "accept"
    assert outcomes == {"quarantine": 3, "accept": 2}


def test_no_malformed_lines_unless_asked(tmp_path):
    clean = esr.generate(tmp_path, persons=MIN_PERSONS, days=1)
    assert clean.manifest["malformed_lines"] == []
    expected = layout_counts()
    for p in clean.files:
        for f in read_lines(p):
            if f[0] in expected:
                assert len(f) == expected[f[0]]


def test_fewer_days_and_other_vpd(tmp_path):
    gs = esr.generate(tmp_path, vpd="277", other_vpd="456", persons=MIN_PERSONS, days=1, start=date(2025, 2, 28))
    assert [p.name for p in gs.files] == ["GO_277_GDW_GOF_20250228_00000101.DAT",
                                          "GO_277_GDW_GOC_20250301_00000102.DAT"]
    assert {a["vpd"] for a in gs.manifest["iat_achievements"]} == {"456"}
    assert gs.manifest["rehires"] == []  # day-2 scenarios are not generated
    assert b"277|LOCAL|Sharps Safety|" in gs.files[0].read_bytes()


def test_too_few_persons_is_refused(tmp_path):
    with pytest.raises(ValueError):
        esr.generate(tmp_path, persons=MIN_PERSONS - 1)


def test_a_layout_change_flows_through(tmp_path):
    """An extra column in a layout file appears in every generated line of that type."""
    folder = tmp_path / "layouts"
    folder.mkdir()
    for f in (include_dir() / "layouts").glob("*.yaml"):
        spec = yaml.safe_load(f.read_text())
        if f.stem == "CMA":
            spec["columns"].append({"name": "spare_28", "type": "text", "tag": "drop"})
        (folder / f.name).write_text(yaml.safe_dump(spec))
    gs = esr.generate(tmp_path / "out", persons=MIN_PERSONS, days=1, layouts=esr.Layouts(folder))
    widths = {len(f) for p in gs.files for f in read_lines(p) if f[0] == "CMA"}
    assert widths == {layout_counts()["CMA"] + 1}


def test_manifest_file_and_cli(tmp_path, capsys):
    from sim.esr.__main__ import main
    assert main(["--out", str(tmp_path / "landing"), "--persons", "50", "--days", "2",
                 "--malformed", "--manifest", str(tmp_path / "manifest.json")]) == 0
    printed = capsys.readouterr().out.split()
    assert len(printed) == 3 and all(p.endswith(".DAT") for p in printed)
    manifest = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    assert sorted(manifest["counts"]) == sorted(p.rsplit("/", 1)[1] for p in printed)
    assert manifest["malformed_lines"]


def test_cli_output_does_not_depend_on_the_process(tmp_path):
    """Two processes with different hash seeds write the same bytes (no set-order leaks)."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    repo = Path(__file__).resolve().parents[3]
    outs = []
    for hs in ("1", "99"):
        out = tmp_path / hs
        env = {**os.environ, "PYTHONHASHSEED": hs}
        subprocess.run([sys.executable, "-m", "sim.esr", "--out", str(out), "--persons", "60", "--days", "2",
                        "--malformed", "--manifest", str(tmp_path / f"{hs}.json")],
                       cwd=repo, env=env, check=True, capture_output=True)
        outs.append({p.name: p.read_bytes() for p in out.iterdir()} | {"m": (tmp_path / f"{hs}.json").read_bytes()})
    assert outs[0] == outs[1] and len(outs[0]) == 4


def test_scenario_people_match_the_documented_catalogue(gs):
    """sim/esr/README.md lists these ids; keep the two in step."""
    people = gs.manifest["scenario_people"]
    assert people["latin1"] == ["9000001", "9000002", "9000003"]
    assert (people["apl_offer_iat"], people["apl_accepted_hired"], people["ex_emp_rehired"],
            people["term_reversed"], people["reissue"]) == ("9000008", "9000009", "9000012", "9000013", "9000021")
    new = [a["person_id"] for a in gs.manifest["applicants"] if a["file"] != gs.files[0].name]
    assert new == ["9000201", "9000202", "9000203"]  # 9000001 + persons + 0, 1, 2
