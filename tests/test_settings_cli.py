"""`cstf trust settings-history`: the settings versions `cstf stage` (like every esr_inbound run) recorded."""
from __future__ import annotations

import json
from pathlib import Path

from cstf import cli
from cstf.esr.names import parse_go_name

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "go"
FILES = [str(p) for p in sorted(FIXTURES.glob("GO_999_*.DAT"), key=lambda p: parse_go_name(p.name).sort_key)]
EXAMPLE = (ROOT / "include" / "trusts" / "999.yaml").read_text(encoding="utf-8")


def test_settings_history_lists_each_version_and_what_changed(tmp_path, capsys):
    trusts = tmp_path / "trusts"
    trusts.mkdir()
    (trusts / "999.yaml").write_text(EXAMPLE, encoding="utf-8")
    work = ["--workdir", str(tmp_path / "w")]
    assert cli.main(["trust", "settings-history", "--vpd", "999", *work]) == 1
    assert "no settings recorded for VPD 999" in capsys.readouterr().out
    assert cli.main(["stage", FILES[0], *work, "--trusts", str(trusts), "--json"]) == 0
    (trusts / "999.yaml").write_text(EXAMPLE.replace("retention_days: 90", "retention_days: 120"), encoding="utf-8")
    assert cli.main(["stage", FILES[1], *work, "--trusts", str(trusts), "--json"]) == 0
    capsys.readouterr()
    assert cli.main(["trust", "settings-history", "--vpd", "999", *work]) == 0
    out = capsys.readouterr().out
    assert out.count("version ") == 2 and "  inbound.retention_days: 90 → 120" in out
    assert "by deployment (file changed)" in out
    assert cli.main(["trust", "settings-history", "--vpd", "999", *work, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [v["version"] for v in doc["versions"]] == [1, 2] and doc["versions"][0]["changes"] == []
    assert doc["versions"][1]["changes"] == [{"setting": "inbound.retention_days", "before": "90", "after": "120"}]
    assert doc["versions"][1]["first_seen_run"].startswith("cli-")
