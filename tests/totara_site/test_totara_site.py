"""totara/site/totara_site.py: the one-command real Totara site.

The quick tests need no Totara. The last one builds (or reuses) a real site and gets an OAuth2 token; it runs
only when TOTARA_SRC points at a Totara 17 source tree (extracted or a bare git repository), e.g.
    TOTARA_SRC=/work/totara/src .venv/bin/pytest tests/totara_site -rs
"""
from __future__ import annotations

import importlib.util
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "totara" / "site" / "totara_site.py"


def _load():
    spec = importlib.util.spec_from_file_location("totara_site", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["totara_site"] = module
    spec.loader.exec_module(module)
    return module


ts = _load()


# ------------------------------------------------------------------------------------------ argument parsing
def test_up_arguments_and_defaults(tmp_path):
    args = ts.build_parser().parse_args(["--home", str(tmp_path), "up", "--src", "/x/totara", "--port", "8091"])
    assert (args.command, args.src, args.port, args.db_port) == ("up", "/x/totara", 8091, None)
    assert args.home == tmp_path and not args.fresh and not args.with_client
    # --home may also follow the sub-command.
    args = ts.build_parser().parse_args(["up", "--home", str(tmp_path), "--db-port", "5439"])
    assert args.home == tmp_path and args.db_port == 5439


def test_src_and_home_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TOTARA_SRC", "/from/env")
    monkeypatch.setenv("TOTARA_SITE_HOME", str(tmp_path))
    args = ts.build_parser().parse_args(["up"])
    assert args.src == "/from/env" and args.home == tmp_path
    monkeypatch.delenv("TOTARA_SITE_HOME")
    assert ts.build_parser().parse_args(["status"]).home == ts.DEFAULT_HOME == ROOT / "work" / "totara-site"


def test_php_and_cron_subcommands():
    args = ts.build_parser().parse_args(["php", "admin/cli/cron.php", "--showsql"])
    assert args.script == ["admin/cli/cron.php", "--showsql"]
    assert not ts.build_parser().parse_args(["cron"]).all
    assert ts.build_parser().parse_args(["cron", "--all"]).all
    helptext = ts.build_parser().format_help()
    assert "update_certification_task" in helptext and "schedule_task.php" in helptext
    for command in ("up", "reset", "stop", "status", "connection", "php", "cron"):
        assert command in helptext


def test_commands_need_a_site(tmp_path, capsys):
    for argv in (["reset"], ["connection"], ["cron"], ["php", "admin/cli/cron.php"]):
        assert ts.main(["--home", str(tmp_path / "none"), *argv]) == 1
        assert "run `up --src" in capsys.readouterr().err
    assert ts.main(["--home", str(tmp_path / "none"), "up"]) == 1
    assert "--src" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ config.php
def _config(tmp_path, **kw):
    defaults = dict(wwwroot="http://127.0.0.1:8090", dataroot=tmp_path / "dataroot", db_port=5433)
    return ts.config_php(**{**defaults, **kw})


def test_config_php_keys(tmp_path):
    text = _config(tmp_path)
    for needle in ("$CFG->dbtype    = 'pgsql';", "$CFG->dblibrary = 'native';", "$CFG->prefix    = 'ttr_';",
                   "'dbport'    => 5433,", "$CFG->wwwroot   = 'http://127.0.0.1:8090';",
                   f"$CFG->dataroot  = '{tmp_path / 'dataroot'}';", "$CFG->directorypermissions = 02777;",
                   "$CFG->noemailever = true;"):
        assert needle in text, needle
    # The bypass is guarded: config.php may be read more than once.
    assert "if (!defined('UNSUPPORTED_ENVIRONMENT_CHECK_BYPASS')) {\n    define('UNSUPPORTED_ENVIRONMENT_CHECK_BYPASS', true);" in text
    assert "require" not in text   # Totara 13+: server/config.php includes this file, never the other way round


def test_config_php_quotes_values(tmp_path):
    text = _config(tmp_path, dataroot="/tmp/it's\\here")
    assert "$CFG->dataroot  = '/tmp/it\\'s\\\\here';" in text


@pytest.mark.skipif(not shutil.which("php"), reason="PHP is not installed here")
def test_config_php_is_valid_php_and_can_be_read_twice(tmp_path):
    path = tmp_path / "config.php"
    path.write_text(_config(tmp_path, db_port=5499))
    code = (f"require '{path}'; require '{path}'; "
            "echo $CFG->dboptions['dbport'], ' ', $CFG->dbtype, ' ', (int)UNSUPPORTED_ENVIRONMENT_CHECK_BYPASS;")
    done = subprocess.run(["php", "-d", "display_errors=stderr", "-r", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout == "5499 pgsql 1", done.stderr


# ------------------------------------------------------------------------------------------ the connection
def test_connection_shape_matches_the_hook():
    conn = ts.connection_dict("http://127.0.0.1:8090/", "cid", "s3cr'et", max_concurrency=4)
    assert conn == {"conn_type": "totara", "host": "http://127.0.0.1:8090", "login": "cid",
                    "password": "s3cr'et", "extra": {"max_concurrency": 4}}
    assert "extra" not in ts.connection_dict("http://h:1", "a", "b")
    line = ts.airflow_env_line(conn)
    assert line.startswith("export AIRFLOW_CONN_TOTARA_DEFAULT=")
    name, _, value = shlex.split(line)[1].partition("=")
    assert name == "AIRFLOW_CONN_TOTARA_DEFAULT" and json.loads(value) == conn


def test_connection_file_is_private_and_secret_is_only_there(tmp_path, capsys):
    site = ts.Site(tmp_path)
    (site.server).mkdir(parents=True)
    (site.server / "version.php").write_text("<?php\n")
    site.state = {"port": 8090}
    site.save_state()
    site.write_connection({"base_url": "http://127.0.0.1:8090", "client_id": "cid", "client_secret": "TOPSECRET",
                           "service_user": "cstf_api"})
    assert oct(site.conn_file.stat().st_mode & 0o777) == "0o600"
    assert json.loads(site.conn_file.read_text())["password"] == "TOPSECRET"
    assert "TOPSECRET" not in site.state_file.read_text()
    assert ts.main(["--home", str(tmp_path), "connection", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["login"] == "cid"


# ------------------------------------------------------------------------------------------ TOTARA_SRC
def _fake_tree(path: Path) -> Path:
    (path / "server" / "lib").mkdir(parents=True)
    (path / "server" / "version.php").write_text("<?php $TOTARA->version = '17.3';\n")
    (path / "server" / "lib" / "setup.php").write_text("<?php\n")
    (path / "libraries" / "required").mkdir(parents=True)
    (path / "libraries" / "required" / "autoload.php").write_text("<?php\n")
    (path / "client" / "component").mkdir(parents=True)
    (path / "client" / "component" / "x.js").write_text("//\n")
    (path / "readme.md").write_text("totara\n")
    return path


def test_detect_extracted_tree(tmp_path):
    tree = _fake_tree(tmp_path / "totara")
    assert ts.detect_source(tree) == ("tree", tree.resolve())


@pytest.mark.skipif(not shutil.which("git"), reason="git is not installed here")
def test_detect_bare_git_and_work_tree(tmp_path):
    bare = tmp_path / "totara.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    assert ts.detect_source(bare) == ("git", bare.resolve())
    work = tmp_path / "work"
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    assert ts.detect_source(work) == ("git", (work / ".git").resolve())


def test_detect_neither_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ts.SiteError, match="server/version.php.*bare git"):
        ts.detect_source(tmp_path / "empty")
    with pytest.raises(ts.SiteError, match="does not exist"):
        ts.detect_source(tmp_path / "missing")


def test_copy_from_a_tree_takes_only_server_and_libraries_and_leaves_the_tree_alone(tmp_path):
    tree = _fake_tree(tmp_path / "totara")
    before = sorted(str(p.relative_to(tree)) for p in tree.rglob("*"))
    dest = tmp_path / "site"
    how = ts.copy_source("tree", tree, dest)
    assert how in ("hard links", "copy")
    assert sorted(p.name for p in dest.iterdir()) == ["libraries", "server"]
    assert (dest / "libraries" / "required" / "autoload.php").exists()
    # A file added to the copy (our plugin, config) does not appear in the tree.
    (dest / "server" / "local").mkdir()
    (dest / "server" / "local" / "x.php").write_text("<?php\n")
    assert sorted(str(p.relative_to(tree)) for p in tree.rglob("*")) == before
    ts.copy_source("tree", tree, dest, ("client",))
    assert (dest / "client" / "component" / "x.js").exists()


@pytest.mark.skipif(not shutil.which("git"), reason="git is not installed here")
def test_copy_from_a_bare_git_repository(tmp_path):
    tree = _fake_tree(tmp_path / "totara")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-C", str(tree)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], check=True)
    bare = tmp_path / "totara.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(tree), str(bare)], check=True)
    kind, src = ts.detect_source(bare)
    dest = tmp_path / "site"
    assert ts.copy_source(kind, src, dest) == "git archive"
    assert sorted(p.name for p in dest.iterdir()) == ["libraries", "server"]
    assert (dest / "server" / "version.php").read_text().startswith("<?php")


def test_tree_hash_follows_content(tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "version.php").write_text("1")
    first = ts.tree_hash(tmp_path / "p")
    assert ts.tree_hash(tmp_path / "p") == first
    (tmp_path / "p" / "version.php").write_text("2")
    assert ts.tree_hash(tmp_path / "p") != first
    assert ts.tree_hash(tmp_path / "missing") == ts.tree_hash(tmp_path / "missing2")


# ------------------------------------------------------------------------------------------ site data
def test_site_data_mirrors_the_simulator_fixture():
    yaml = pytest.importorskip("yaml")
    fixture = yaml.safe_load((ROOT / "sim" / "totara" / "fixtures" / "default.yaml").read_text())
    data = json.loads((ROOT / "totara" / "site" / "site_data.json").read_text())
    assert data["profile_fields"] == fixture["profile_fields"]
    assert data["certifications"] == fixture["certifications"]
    wanted = next(t for t in fixture["evidence_types"] if t["idnumber"] == "esr-competence")
    assert data["evidence_types"] == [wanted]
    service_user = next(c["service_user"] for c in fixture["clients"])
    assert data["service_user"]["username"] == service_user


# ------------------------------------------------------------------------------------------ a real site
def _free_port(preferred: int) -> int:
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", preferred)):
            return preferred
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("TOTARA_SRC"),
                    reason="set TOTARA_SRC=/path/to/totara (a Totara 17 tree or bare git repository) "
                           "to bring up a real Totara site (about a minute the first time)")
def test_real_site_up_gives_an_oauth_token():
    # Its own home (reused by later runs), not the developer's site; stopped afterwards.
    home = Path(os.environ.get("TOTARA_SITE_TEST_HOME") or ROOT / "work" / "totara-site-test")
    state = home / "state.json"
    saved = json.loads(state.read_text()) if state.exists() else {}
    port = saved.get("port") or _free_port(8098)
    db_port = saved.get("db_port") or _free_port(5438)
    done = subprocess.run([sys.executable, str(SCRIPT), "--home", str(home), "up", "--src", os.environ["TOTARA_SRC"],
                           "--port", str(port), "--db-port", str(db_port)], capture_output=True, text=True,
                          timeout=900)
    try:
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        conn = json.loads((home / "connection.json").read_text())
        assert conn["password"] not in done.stdout.replace(conn["password"], "", 1)   # printed once only
        assert conn["conn_type"] == "totara" and conn["host"] == f"http://127.0.0.1:{port}"
        body = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": conn["login"],
                                       "client_secret": conn["password"]}).encode()
        with urllib.request.urlopen(conn["host"] + "/totara/oauth2/token.php", body, timeout=60) as resp:
            token = json.loads(resp.read())
        assert token["token_type"] == "Bearer" and token["access_token"]
        request = urllib.request.Request(
            conn["host"] + "/api/graphql.php", method="POST",
            data=json.dumps({"query": "query { totara_webapi_status { status } }"}).encode(),
            headers={"Authorization": f"Bearer {token['access_token']}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as resp:
            assert json.loads(resp.read()) == {"data": {"totara_webapi_status": {"status": "ok"}}}
    finally:
        subprocess.run([sys.executable, str(SCRIPT), "--home", str(home), "stop"], capture_output=True, timeout=120)
