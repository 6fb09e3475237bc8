"""`cstf mappings import / export`: the state DB's mappings to and from the YAML file, each change recorded."""
from __future__ import annotations

import shutil
from pathlib import Path

from cstf import cli
from cstf.config.mappings import load_mappings
from cstf.ledger import StateDB
from cstf.ledger.mapping_store import MappingStore

ROOT = Path(__file__).resolve().parents[1]


def test_import_then_export_then_a_changed_file(tmp_path, capsys):
    src = tmp_path / "in.yaml"
    shutil.copy(ROOT / "include" / "trusts" / "999.mappings.yaml", src)
    args = ["--vpd", "999", "--workdir", str(tmp_path / "w")]
    assert cli.main(["mappings", "import", *args, str(src), "--by", "lena", "--reason", "go-live", "--dry-run"]) == 0
    assert "would change" in capsys.readouterr().out
    db = StateDB.from_url(f"sqlite:///{tmp_path / 'w' / 'state.db'}")
    assert not MappingStore(db).has_mappings("999")                  # a dry run changes nothing
    assert cli.main(["mappings", "import", *args, str(src), "--by", "lena", "--reason", "go-live"]) == 0
    out = capsys.readouterr().out
    n = len(load_mappings(src).mappings)
    assert f"VPD 999: {n} mapping(s) changed" in out and out.count("add ") == n
    out_file = tmp_path / "out.yaml"
    assert cli.main(["mappings", "export", *args, "--out", str(out_file)]) == 0
    assert len(load_mappings(out_file).mappings) == n
    out_file.write_text(out_file.read_text().replace("status: proposed", "status: confirmed", 1))
    capsys.readouterr()
    assert cli.main(["mappings", "import", *args, str(out_file), "--by", "omar", "--reason", "IPC sign-off"]) == 0
    assert "VPD 999: 1 mapping(s) changed" in capsys.readouterr().out
    assert MappingStore(db).changes("999")[0]["by_user"] == "omar"
    bad = tmp_path / "bad.yaml"
    bad.write_text("mappings:\n  - {competence_id: '1', certification: X, valid_from: notadate}\n")
    assert cli.main(["mappings", "import", *args, str(bad), "--by", "omar"]) == 1
    assert "row 1 (competence_id 1): valid_from" in capsys.readouterr().err
