#!/usr/bin/env python3
"""A real Totara Learn 17 site for development and tests, built from a Totara source tree you supply.

The project contains no Totara code: `--src` points at a Totara 17.3 tree, either extracted (it has
server/version.php) or a bare git repository (HEAD and objects/). Only server/ and libraries/ are copied
(hard links when possible: edit files of the site copy by replacing them, not in place) into the site's
home; the tree itself is never modified.

    python3 totara/site/totara_site.py up --src /path/to/totara      # build (first time) or start the site
    python3 totara/site/totara_site.py reset                         # back to the freshly set-up database
    python3 totara/site/totara_site.py stop | status | connection
    python3 totara/site/totara_site.py cron                          # certification window/expiry task
    python3 totara/site/totara_site.py php admin/cli/cron.php        # any PHP CLI script inside server/
    python3 totara/site/totara_site.py capability local/esrsync:viewcompletions --set prohibit   # or allow

What `up` builds (home: <repo>/work/totara-site unless --home): PHP 8.2 packages when missing (root
only), a private PostgreSQL 15 cluster on its own port (5433; the machine's own PostgreSQL is not
touched), Totara installed with install_database.php, our plugin totara/local_esrsync copied to
server/local/esrsync and installed with upgrade.php, totara/site/setup_site.php (API on, service
account, roles, API client, profile fields, certifications, evidence type), a pg_dump of that
ready site (the reset point), the PHP built-in web server, and <home>/connection.json with the
Airflow Connection. Python 3.11 standard library only.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PLUGIN_SRC = REPO / "totara" / "local_esrsync"
SETUP_PHP = HERE / "setup_site.php"
SITE_DATA = HERE / "site_data.json"
DEFAULT_HOME = REPO / "work" / "totara-site"
DEFAULT_PORT = 8090
DEFAULT_DB_PORT = 5433
PG_BIN = Path(os.environ.get("TOTARA_SITE_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_SUPERUSER = "postgres"
DB_NAME = "totara"
DB_USER = "totara"
DB_PASS = "totara"
DB_PREFIX = "ttr_"
TEMPLATE_DB = "totara_ready"   # the reset point as a database: `reset` clones it (under a second)
CONN_ID = "totara_default"
# The part of a Totara tree a site needs: the web root and its PHP libraries (lib/setup.php loads
# libraries/required/autoload.php). Not client/ (the Tui front end, proprietary): see --with-client.
SITE_PARTS = ("server", "libraries")
CLIENT_PART = "client"
# Two development bundles are missing from the public git copy; `git archive` must leave them out.
MISSING_BLOBS = ("client/component/tui/build/tui_bundle.development.js",
                 "client/component/tui/build/tui_bundle.legacy.development.js")
PHP_PACKAGES = ("php8.2-cli", "php8.2-pgsql", "php8.2-xml", "php8.2-mbstring", "php8.2-curl", "php8.2-zip",
                "php8.2-gd", "php8.2-intl", "php8.2-soap", "php8.2-opcache", "php8.2-readline")
PHP_INI = """\
; totara_site.py: what Totara 17 needs on top of Debian's PHP 8.2 defaults.
max_input_vars = 5000
memory_limit = 512M
; PHP 8.2 warns of thousands of deprecated dynamic properties in Totara 17: noise (Totara sets its own level later).
error_reporting = E_ALL & ~E_DEPRECATED & ~E_STRICT
"""
CERT_TASK = r"\totara_certification\task\update_certification_task"
PHP_SERVER_WORKERS = 4

_T0 = time.monotonic()


class SiteError(Exception):
    """A failure with a message for the user (no traceback)."""


def say(message: str) -> None:
    print(f"[{time.monotonic() - _T0:6.1f}s] {message}", flush=True)


# --------------------------------------------------------------------------------------------- source tree
def detect_source(src: str | os.PathLike) -> tuple[str, Path]:
    """('tree', path) for an extracted Totara tree, ('git', path) for a bare git repository; else SiteError."""
    path = Path(src).expanduser()
    if not path.exists():
        raise SiteError(f"TOTARA_SRC {path} does not exist")
    path = path.resolve()
    if (path / "server" / "version.php").is_file():
        return "tree", path
    if (path / "HEAD").is_file() and (path / "objects").is_dir():
        return "git", path
    if (path / ".git").is_dir() and (path / ".git" / "HEAD").is_file():
        return "git", path / ".git"
    raise SiteError(f"{path} is not a Totara source tree: expected server/version.php (an extracted tree) "
                    "or HEAD and objects/ (a bare git repository of Totara)")


def copy_source(kind: str, src: Path, dest: Path, parts: tuple[str, ...] = SITE_PARTS) -> str:
    """Put parts of the Totara tree into dest; returns how ('hard links', 'copy', 'git archive')."""
    dest.mkdir(parents=True, exist_ok=True)
    if kind == "git":
        env = dict(os.environ, GIT_DIR=str(src))
        listing = run(["git", "ls-tree", "--name-only", "HEAD"], capture=True, env=env).split()
        missing = [p for p in parts if p not in listing]
        if missing:
            raise SiteError(f"{src}: HEAD has no {', '.join(missing)}: not a Totara 13+ repository")
        cmd = ["git", "archive", "HEAD", "--", *parts] + [f":!{b}" for b in MISSING_BLOBS
                                                          if b.split("/")[0] in parts]
        archive = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        untar = subprocess.run(["tar", "-x", "-C", str(dest)], stdin=archive.stdout, capture_output=True)
        archive.stdout.close()
        err = archive.stderr.read().decode(errors="replace")
        archive.wait()
        # The public copy lacks two blobs: git prints an "invalid object" line and still exits 0.
        if archive.returncode or untar.returncode:
            raise SiteError(f"git archive of {src} failed: {err.strip()} {untar.stderr.decode(errors='replace')}")
        if "server" in parts and not (dest / "server" / "version.php").is_file():
            raise SiteError(f"git archive of {src} gave no server/version.php")
        return "git archive"
    how = "hard links"
    for part in parts:
        if not (src / part).exists():
            raise SiteError(f"{src} has no {part}/")
        target = dest / part
        if target.exists():
            shutil.rmtree(target)
        linked = subprocess.run(["cp", "-al", str(src / part), str(target)], capture_output=True)
        if linked.returncode:   # another file system: a plain copy
            shutil.rmtree(target, ignore_errors=True)
            subprocess.run(["cp", "-a", str(src / part), str(target)], check=True)
            how = "copy"
    return how


# --------------------------------------------------------------------------------------------- texts
def php_string(value: str) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def config_php(*, wwwroot: str, dataroot: str | os.PathLike, db_port: int, db_host: str = "127.0.0.1",
               db_name: str = DB_NAME, db_user: str = DB_USER, db_pass: str = DB_PASS,
               prefix: str = DB_PREFIX) -> str:
    """The site's config.php (at the tree root: server/config.php includes ../config.php)."""
    return f"""<?php  // Totara configuration file, written by totara_site.py (ESR-CSTF interface); rewritten on every `up`.
unset($CFG);
global $CFG;
$CFG = new stdClass();

$CFG->dbtype    = 'pgsql';
$CFG->dblibrary = 'native';
$CFG->dbhost    = {php_string(db_host)};
$CFG->dbname    = {php_string(db_name)};
$CFG->dbuser    = {php_string(db_user)};
$CFG->dbpass    = {php_string(db_pass)};
$CFG->prefix    = {php_string(prefix)};
$CFG->dboptions = array(
    'dbpersist' => false,
    'dbport'    => {int(db_port)},
    'dbsocket'  => false,
);

$CFG->wwwroot   = {php_string(wwwroot)};
$CFG->dataroot  = {php_string(str(dataroot))};
$CFG->directorypermissions = 02777;

// No mail server here (the completion import sends alerts).
$CFG->noemailever = true;

// Totara 17 refuses PHP 8.2 in its environment check; this lets install and upgrade go on.
// config.php may be read more than once: define it once.
if (!defined('UNSUPPORTED_ENVIRONMENT_CHECK_BYPASS')) {{
    define('UNSUPPORTED_ENVIRONMENT_CHECK_BYPASS', true);
}}
"""


def connection_dict(base_url: str, client_id: str, client_secret: str, **extra) -> dict:
    """The Airflow Connection plugins/cstf/hooks/totara.py reads: host = base URL, login/password = client."""
    conn = {"conn_type": "totara", "host": base_url.rstrip("/"), "login": client_id, "password": client_secret}
    extra = {k: v for k, v in extra.items() if v is not None}
    if extra:
        conn["extra"] = extra
    return conn


def airflow_env_line(conn: dict, conn_id: str = CONN_ID) -> str:
    return f"export AIRFLOW_CONN_{conn_id.upper()}={shlex.quote(json.dumps(conn, separators=(',', ':')))}"


def tree_hash(root: Path, extra_files: tuple[Path, ...] = ()) -> str:
    """sha256 over the relative paths and contents of every file under root (plus extra_files)."""
    h = hashlib.sha256()
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
    for p in files:
        h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes() + b"\0")
    for p in extra_files:
        h.update(p.name.encode() + b"\0" + (p.read_bytes() if p.exists() else b"") + b"\0")
    return h.hexdigest()


# --------------------------------------------------------------------------------------------- the site
class Site:
    def __init__(self, home: Path):
        self.home = Path(home).resolve()
        self.root = self.home / "site"            # config.php, server/, libraries/
        self.server = self.root / "server"        # web root, where CLI scripts run
        self.dataroot = self.home / "dataroot"
        self.pgdata = self.home / "pgdata"
        self.pgrun = self.home / "pgrun"          # the private cluster's socket folder
        self.logs = self.home / "logs"
        self.phpconf = self.home / "php"          # extra ini folder (PHP_INI_SCAN_DIR)
        self.dump = self.home / "ready.dump"      # pg_dump -Fc of the freshly set-up site: the reset point
        self.state_file = self.home / "state.json"
        self.conn_file = self.home / "connection.json"
        self.php_pid_file = self.home / "php-server.pid"
        self.state: dict = {}
        if self.state_file.exists():
            self.state = json.loads(self.state_file.read_text())

    # ----- state
    def save_state(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=2, sort_keys=True))
        tmp.chmod(0o600)
        tmp.replace(self.state_file)

    @property
    def exists(self) -> bool:
        return self.state_file.exists() and (self.server / "version.php").exists()

    @property
    def port(self) -> int:
        return int(self.state.get("port", DEFAULT_PORT))

    @property
    def db_port(self) -> int:
        return int(self.state.get("db_port", DEFAULT_DB_PORT))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ----- processes as the postgres user
    def pg_cmd(self, tool: str, *args: str) -> list[str]:
        cmd = [str(PG_BIN / tool), *args]
        if os.geteuid() == 0:   # initdb and pg_ctl refuse root
            return ["runuser", "-u", PG_SUPERUSER, "--", *cmd]
        return cmd

    def pg_owner(self) -> tuple[int, int] | None:
        if os.geteuid() != 0:
            return None
        try:
            pw = pwd.getpwnam(PG_SUPERUSER)
        except KeyError:
            raise SiteError(f"no '{PG_SUPERUSER}' user: install postgresql-15 (initdb refuses to run as root)")
        return pw.pw_uid, pw.pw_gid

    def psql(self, sql: str, db: str = "postgres", user: str = PG_SUPERUSER, capture: bool = False) -> str:
        out = run([str(PG_BIN / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                   "-p", str(self.db_port), "-U", user, "-d", db, "-At", "-c", sql], capture=True)
        return out if capture else ""

    # ----- PHP
    def php_env(self) -> dict:
        # A leading ':' keeps Debian's own conf.d (the extensions) and adds ours.
        return dict(os.environ, PHP_INI_SCAN_DIR=":" + str(self.phpconf))

    def php(self, args: list[str], log: Path | None = None, check: bool = True, what: str = "") -> int:
        cmd = [php_binary(), *args]
        if log is None:
            return subprocess.run(cmd, cwd=self.server, env=self.php_env()).returncode
        with open(log, "ab") as fh:
            fh.write(f"\n=== {time.strftime('%F %T')} {' '.join(args)}\n".encode())
            fh.flush()
            rc = subprocess.run(cmd, cwd=self.server, env=self.php_env(), stdout=fh, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL).returncode
        if rc and check:
            raise SiteError(f"{what or ' '.join(args)} failed (exit {rc}); last lines of {log}:\n{log_tail(log)}")
        return rc

    # ----- PostgreSQL
    def pg_running(self) -> bool:
        if not (self.pgdata / "PG_VERSION").exists():
            return False
        return subprocess.run(self.pg_cmd("pg_ctl", "-D", str(self.pgdata), "status"),
                              capture_output=True).returncode == 0

    def pg_init(self) -> None:
        if (self.pgdata / "PG_VERSION").exists():
            return
        if not (PG_BIN / "initdb").exists():
            raise SiteError(f"PostgreSQL 15 is not installed ({PG_BIN}/initdb missing): apt-get install postgresql-15")
        owner = self.pg_owner()
        for d in (self.pgdata, self.pgrun):
            d.mkdir(parents=True, exist_ok=True)
            if owner:
                os.chown(d, *owner)
        self.pgdata.chmod(0o700)
        say(f"initdb private cluster in {self.pgdata}")
        run(self.pg_cmd("initdb", "-D", str(self.pgdata), "-U", PG_SUPERUSER, "-A", "trust", "-E", "UTF8",
                        "--locale=C.UTF-8"), capture=True)
        with open(self.pgdata / "postgresql.conf", "a") as fh:
            fh.write("\ninclude_if_exists = 'totara_site.conf'\n")

    def pg_write_conf(self) -> bool:
        """Write the cluster's own settings; True when they changed (a running cluster must restart)."""
        conf = (f"# totara_site.py: a private, throwaway cluster for a Totara test site.\n"
                f"port = {self.db_port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.pgrun}'\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "enable_memoize = off   # Totara needs it off\nmax_connections = 100\nshared_buffers = 128MB\n"
                "log_min_messages = warning\n")
        path = self.pgdata / "totara_site.conf"
        if path.exists() and path.read_text() == conf:
            return False
        path.write_text(conf)
        owner = self.pg_owner()
        if owner:
            os.chown(path, *owner)
        return True

    def pg_start(self) -> None:
        self.pg_init()
        changed = self.pg_write_conf()
        self.pgrun.mkdir(parents=True, exist_ok=True)
        owner = self.pg_owner()
        if owner:
            os.chown(self.pgrun, *owner)
        if self.pg_running():
            if not changed:
                return
            say("PostgreSQL settings changed: restarting the private cluster")
            run(self.pg_cmd("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "stop"), capture=True)
        if port_in_use(self.db_port):
            raise SiteError(f"port {self.db_port} is already in use: choose another with --db-port")
        self.logs.mkdir(parents=True, exist_ok=True)
        pglog = self.logs / "postgresql.log"
        pglog.touch()
        if owner:
            os.chown(pglog, *owner)
        say(f"starting PostgreSQL 15 (private cluster, port {self.db_port})")
        run(self.pg_cmd("pg_ctl", "-D", str(self.pgdata), "-l", str(pglog), "-w", "-t", "60", "start"),
            capture=True)

    def pg_stop(self) -> bool:
        if not self.pg_running():
            return False
        run(self.pg_cmd("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "stop"), capture=True)
        return True

    def db_exists(self) -> bool:
        return self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'", capture=True).strip() == "1"

    def db_create(self) -> None:
        if not self.psql(f"SELECT 1 FROM pg_roles WHERE rolname = '{DB_USER}'", capture=True).strip():
            self.psql(f"CREATE ROLE {DB_USER} LOGIN PASSWORD '{DB_PASS}'")
        self.psql(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        self.psql(f"CREATE DATABASE {DB_NAME} OWNER {DB_USER} ENCODING 'UTF8' TEMPLATE template0")

    # ----- PHP web server
    def php_server_pid(self) -> int | None:
        try:
            pid = int(self.php_pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        # Just after exec /proc may still show the parent's command line for a moment: look again.
        for _ in range(10):
            try:
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
            except (OSError, IndexError):
                return None
            if state == "Z":
                return None
            if comm.startswith("php"):
                return pid
            time.sleep(0.1)
        return None

    def php_server_start(self) -> None:
        pid = self.php_server_pid()
        if pid:
            return
        if port_in_use(self.port):
            raise SiteError(f"port {self.port} is already in use: choose another with --port")
        self.logs.mkdir(parents=True, exist_ok=True)
        log = open(self.logs / "php-server.log", "ab")
        env = dict(self.php_env(), PHP_CLI_SERVER_WORKERS=str(PHP_SERVER_WORKERS))
        cmd = [php_binary(), "-d", "display_errors=0", "-d", "opcache.enable_cli=1",
               "-d", "opcache.memory_consumption=256", "-d", "opcache.max_accelerated_files=60000",
               "-S", f"127.0.0.1:{self.port}", "-t", str(self.server)]
        proc = subprocess.Popen(cmd, cwd=self.server, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.php_pid_file.write_text(f"{proc.pid}\n")
        say(f"PHP built-in server started (pid {proc.pid}, {PHP_SERVER_WORKERS} workers) on {self.url}")

    def php_server_stop(self) -> bool:
        pid = self.php_server_pid()
        self.php_pid_file.unlink(missing_ok=True)
        if not pid:
            return False
        try:   # its own process group (start_new_session): the master and its workers
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            return False
        for _ in range(50):
            if not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.1)
        else:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return True

    def wait_http(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/totara/oauth2/token.php", timeout=10) as resp:
                    resp.read()
                return
            except urllib.error.HTTPError:
                return                         # it answered (400/401 without credentials)
            except (urllib.error.URLError, OSError) as exc:
                last = str(exc)
            if not self.php_server_pid():
                raise SiteError(f"the PHP server exited; see {self.logs / 'php-server.log'}:\n"
                                               f"{log_tail(self.logs / 'php-server.log')}")
            time.sleep(0.5)
        raise SiteError(f"{self.url}/totara/oauth2/token.php did not answer in {timeout:.0f}s ({last})")

    # ----- steps
    def write_config(self) -> None:
        self.dataroot.mkdir(parents=True, exist_ok=True)
        self.phpconf.mkdir(parents=True, exist_ok=True)
        (self.phpconf / "90-totara-site.ini").write_text(PHP_INI)
        text = config_php(wwwroot=self.url, dataroot=self.dataroot, db_port=self.db_port)
        path = self.root / "config.php"
        if not path.exists() or path.read_text() != text:
            path.write_text(text)

    def plugin_hash(self) -> str:
        return tree_hash(PLUGIN_SRC)

    def dump_key(self) -> str:
        """What the reset point depends on: our plugin and the set-up script and data."""
        return tree_hash(PLUGIN_SRC, (SETUP_PHP, SITE_DATA))

    def install_plugin(self, force: bool = False) -> bool:
        """Copy totara/local_esrsync in and run upgrade.php when its files changed. True when it ran."""
        if not (PLUGIN_SRC / "version.php").exists():
            say(f"WARNING: {PLUGIN_SRC}/version.php not found: our plugin is not installed")
            return False
        digest = self.plugin_hash()
        target = self.server / "local" / "esrsync"
        if not force and self.state.get("plugin_hash") == digest and target.exists():
            return False
        say("copying totara/local_esrsync to server/local/esrsync; upgrade.php --non-interactive")
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(PLUGIN_SRC, target, ignore=shutil.ignore_patterns(".git", "__pycache__", "*.swp"))
        self.php(["admin/cli/upgrade.php", "--non-interactive"], log=self.logs / "upgrade.log",
                 what="upgrade.php (installing local_esrsync)")
        # Changed files under the same version: upgrade.php does nothing, so drop the class map and schema caches.
        self.php(["admin/cli/purge_caches.php"], log=self.logs / "cli.log", what="purge_caches.php")
        self.state["plugin_hash"] = digest
        self.save_state()
        return True

    def run_setup(self) -> dict:
        """Run setup_site.php; returns its JSON (with the secret). The secret never goes to the log."""
        log = self.logs / "setup.log"
        env = dict(self.php_env(), TOTARA_SERVER_DIR=str(self.server))
        proc = subprocess.run([php_binary(), str(SETUP_PHP)], cwd=self.server, env=env, capture_output=True,
                              text=True, stdin=subprocess.DEVNULL)
        lines = proc.stdout.splitlines()
        result = None
        if lines and lines[-1].startswith("{"):
            try:
                result = json.loads(lines.pop())
            except json.JSONDecodeError:
                pass
        with open(log, "a") as fh:
            fh.write(f"\n=== {time.strftime('%F %T')} setup_site.php\n" + "\n".join(lines) + "\n" + proc.stderr)
        for line in lines:
            if line.startswith(("  changed:", "  WARNING:")) or line.endswith(("nothing changed", "change(s) made")):
                say("setup: " + line.strip())
        if proc.returncode or result is None:
            raise SiteError(f"setup_site.php failed (exit {proc.returncode}); last lines of {log}:\n{log_tail(log)}")
        return result

    def make_dump(self) -> None:
        tmp = self.dump.with_suffix(".tmp")
        run([str(PG_BIN / "pg_dump"), "-h", "127.0.0.1", "-p", str(self.db_port), "-U", DB_USER, "-Fc",
             "-f", str(tmp), DB_NAME], capture=True)
        tmp.replace(self.dump)
        self.state["dump_key"] = self.dump_key()
        self.state["dump_plugin_hash"] = self.state.get("plugin_hash")
        self.state.pop("template_key", None)
        self.save_state()
        say(f"reset point saved: {self.dump} ({self.dump.stat().st_size // 1024} KiB)")
        self.make_template()

    def make_template(self) -> None:
        """The reset point as a template database (a cache of the dump): a clone of it is the fastest reset.
        Copied from the live database when nothing is connected to it, else restored from the dump."""
        say(f"reset point as template database {TEMPLATE_DB} (what `reset` clones)")
        self.psql(f"DROP DATABASE IF EXISTS {TEMPLATE_DB} WITH (FORCE)")
        try:
            self.psql(f"CREATE DATABASE {TEMPLATE_DB} OWNER {DB_USER} TEMPLATE {DB_NAME}")
        except SiteError:   # a web request is connected to the live database
            self.pg_restore_into(TEMPLATE_DB)
        self.psql(f"ALTER DATABASE {TEMPLATE_DB} ALLOW_CONNECTIONS false")
        self.state["template_key"] = self.state.get("dump_key")
        self.save_state()

    def pg_restore_into(self, db: str) -> None:
        self.psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        self.psql(f"CREATE DATABASE {db} OWNER {DB_USER} ENCODING 'UTF8' TEMPLATE template0")
        run([str(PG_BIN / "pg_restore"), "-h", "127.0.0.1", "-p", str(self.db_port), "-U", DB_USER,
             "-d", db, "--no-owner", "--no-privileges", "-j", "4", str(self.dump)], capture=True)

    def restore_dump(self) -> str:
        """Put the reset point back as the live database; returns how."""
        template_ok = (self.state.get("template_key") is not None
                       and self.state.get("template_key") == self.state.get("dump_key")
                       and self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{TEMPLATE_DB}'",
                                     capture=True).strip() == "1")
        if template_ok:
            self.psql(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
            self.psql(f"CREATE DATABASE {DB_NAME} OWNER {DB_USER} TEMPLATE {TEMPLATE_DB}")
            return f"cloned {TEMPLATE_DB}"
        self.pg_restore_into(DB_NAME)
        return f"pg_restore {self.dump.name}"

    def purge_caches(self) -> None:
        for sub in ("cache", "localcache", "sessions"):
            shutil.rmtree(self.dataroot / sub, ignore_errors=True)
        self.php(["admin/cli/purge_caches.php"], log=self.logs / "cli.log", what="purge_caches.php")

    def write_connection(self, result: dict) -> dict:
        conn = connection_dict(result["base_url"], result["client_id"], result["client_secret"],
                               max_concurrency=4)
        tmp = self.conn_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(conn, indent=2) + "\n")
        tmp.chmod(0o600)
        tmp.replace(self.conn_file)
        self.state["client_id"] = result["client_id"]
        self.state["service_user"] = result["service_user"]
        self.save_state()
        return conn


# --------------------------------------------------------------------------------------------- helpers
def run(cmd: list[str], capture: bool = False, **kw) -> str:
    if cmd[0] == "runuser":
        kw.setdefault("cwd", "/")   # the postgres user may not be able to enter the current folder
    proc = subprocess.run(cmd, capture_output=capture, text=True, stdin=subprocess.DEVNULL, **kw)
    if proc.returncode:
        detail = ((proc.stderr or "") + (proc.stdout or "")).strip() if capture else ""
        raise SiteError(f"{' '.join(cmd)} failed (exit {proc.returncode})\n{detail[-3000:]}")
    return proc.stdout if capture else ""


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    text = [t for t in text if "Deprecated:" not in t and t.strip()]   # PHP 8.2 noise
    return "\n".join(text[-lines:])


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def php_binary() -> str:
    return shutil.which("php8.2") or shutil.which("php") or "php"


def missing_packages() -> list[str]:
    missing = []
    for pkg in PHP_PACKAGES:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
        if out.returncode or "install ok installed" not in out.stdout:
            missing.append(pkg)
    return missing


def ensure_packages() -> None:
    if not shutil.which("dpkg-query"):
        if not shutil.which("php"):
            raise SiteError("PHP 8.2 is not installed and this is not a Debian system: install "
                            + " ".join(PHP_PACKAGES))
        return
    missing = missing_packages()
    if not missing:
        return
    if os.geteuid() != 0:
        raise SiteError("missing packages: " + " ".join(missing) + "\nrun as root, or first: sudo apt-get update && "
                        "sudo apt-get install -y " + " ".join(missing))
    say("installing " + " ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "update", "-qq"], capture=True, env=env)
    run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], capture=True, env=env)


def versions(site: Site) -> dict:
    info = {}
    try:
        info["php"] = subprocess.run([php_binary(), "-r", "echo PHP_VERSION;"], capture_output=True,
                                     text=True).stdout.strip()
    except OSError:
        info["php"] = None
    try:
        info["postgresql"] = subprocess.run([str(PG_BIN / "postgres"), "--version"], capture_output=True,
                                            text=True).stdout.strip()
    except OSError:
        info["postgresql"] = None
    ver = site.server / "version.php"
    if ver.exists():
        text = ver.read_text(errors="replace")
        found = dict(re.findall(r"\$TOTARA->(version|build)\s*=\s*'([^']*)'", text))
        if found:
            info["totara"] = f"{found.get('version')} (Build: {found.get('build')})"
    return info


# --------------------------------------------------------------------------------------------- commands
def cmd_up(args) -> int:
    site = Site(args.home)
    first = not site.exists
    if args.src is None and (first or args.fresh):
        raise SiteError(f"no site in {site.home} yet: give the Totara source with --src (or TOTARA_SRC=...)")
    if args.src is not None:
        kind, src = detect_source(args.src)
        if not first and site.state.get("src") != str(src):
            say(f"note: this site was built from {site.state.get('src')}; reusing it (delete {site.home} "
                "or use --fresh to rebuild from the new source)")
    if args.fresh and site.home.exists():
        cmd_stop(args, quiet=True)
        say(f"--fresh: removing {site.home}")
        shutil.rmtree(site.home)
        site = Site(args.home)
        first = True
    ensure_packages()

    # Ports: as given, else as saved, else the defaults.
    old_port = site.state.get("port")
    site.state["port"] = args.port or site.state.get("port") or DEFAULT_PORT
    site.state["db_port"] = args.db_port or site.state.get("db_port") or DEFAULT_DB_PORT
    site.home.mkdir(parents=True, exist_ok=True)
    site.logs.mkdir(parents=True, exist_ok=True)

    if first or not (site.server / "version.php").exists():
        say(f"copying {', '.join(SITE_PARTS + ((CLIENT_PART,) if args.with_client else ()))} of {src} "
            f"({kind}) to {site.root}")
        if site.root.exists():
            shutil.rmtree(site.root)
        how = copy_source(kind, src, site.root, SITE_PARTS + ((CLIENT_PART,) if args.with_client else ()))
        site.state.update({"src": str(src), "src_kind": kind, "copied_by": how, "installed": False,
                           "admin_password": "Adm1n!" + secrets.token_urlsafe(12)})
        site.state.pop("plugin_hash", None)
        site.save_state()
        say(f"site copy made ({how})")
    elif args.with_client and not (site.root / CLIENT_PART).exists():
        if args.src is None:
            raise SiteError("--with-client on an existing site needs --src (where to copy client/ from)")
        say(f"adding {CLIENT_PART}/ of {src} to {site.root}")
        copy_source(kind, src, site.root, (CLIENT_PART,))
    if old_port and int(old_port) != int(site.state["port"]):
        say(f"port changed {old_port} -> {site.state['port']}: restarting the PHP server")
        site.php_server_stop()
    site.save_state()
    site.write_config()
    site.pg_start()

    if not site.state.get("installed"):
        say("creating database; install_database.php (about 40 s)")
        site.db_create()
        shutil.rmtree(site.dataroot, ignore_errors=True)
        site.dataroot.mkdir(parents=True)
        site.php(["admin/cli/install_database.php", "--agree-license", "--lang=en", "--adminuser=admin",
                  f"--adminpass={site.state['admin_password']}", "--adminemail=admin@example.org",
                  "--fullname=CSTF interface development site", "--shortname=cstf-dev"],
                 log=site.logs / "install.log", what="install_database.php")
        site.state["installed"] = True
        site.state.pop("plugin_hash", None)
        site.save_state()
        say("Totara installed")

    site.install_plugin()
    say("running setup_site.php")
    result = site.run_setup()
    if not site.dump.exists() or site.state.get("dump_key") is None:
        site.make_dump()
    elif site.state.get("template_key") != site.state.get("dump_key"):
        site.make_template()
    elif site.state.get("dump_key") != site.dump_key():
        say("note: the reset point predates the current plugin/set-up; `reset` refreshes it")
    site.php_server_start()
    site.wait_http()
    conn = site.write_connection(result)
    say(f"ready: {site.url} (admin password in {site.state_file}, key admin_password)")
    print_connection(site, conn)
    return 0


def cmd_reset(args) -> int:
    site = require_site(args.home)
    if not site.dump.exists():
        raise SiteError(f"no reset point {site.dump}: run `up` first")
    site.pg_start()
    how = site.restore_dump()
    say(f"reset point restored ({how})")
    restored_plugin = site.state.get("dump_plugin_hash")
    stale = site.state.get("dump_key") != site.dump_key()
    if stale:
        say("the reset point predates the current plugin/set-up: bringing it up to date")
        if restored_plugin != site.plugin_hash():
            site.install_plugin(force=True)
        site.run_setup()
    say("purging caches")
    site.purge_caches()
    if stale:
        site.make_dump()
    elif how.startswith("pg_restore"):
        site.make_template()
    if site.php_server_pid():
        site.wait_http()
    say(f"reset done ({site.url})")
    return 0


def cmd_stop(args, quiet: bool = False) -> int:
    site = Site(args.home)
    php = site.php_server_stop()
    pg = site.pg_stop()
    if not quiet:
        say(("PHP server stopped" if php else "PHP server was not running") + "; "
            + ("PostgreSQL stopped" if pg else "PostgreSQL was not running"))
    return 0


def cmd_status(args) -> int:
    site = Site(args.home)
    if not site.exists:
        print(f"no site in {site.home}")
        return 1
    pid = site.php_server_pid()
    info = {
        "home": str(site.home), "url": site.url, "source": site.state.get("src"),
        "php_server": f"running (pid {pid})" if pid else "stopped",
        "postgresql": (f"running (port {site.db_port}, data {site.pgdata})" if site.pg_running() else "stopped"),
        "installed": bool(site.state.get("installed")),
        "plugin_installed": bool(site.state.get("plugin_hash")),
        "plugin_up_to_date": site.state.get("plugin_hash") == site.plugin_hash(),
        "reset_point": str(site.dump) if site.dump.exists() else None,
        "reset_point_up_to_date": site.state.get("dump_key") == site.dump_key(),
        "service_user": site.state.get("service_user"), "client_id": site.state.get("client_id"),
        "connection_file": str(site.conn_file) if site.conn_file.exists() else None,
        "versions": versions(site),
    }
    print(json.dumps(info, indent=2))
    return 0


def print_connection(site: Site, conn: dict) -> None:
    print(f"Airflow Connection '{CONN_ID}' (also in {site.conn_file}):")
    print(airflow_env_line(conn))


def cmd_connection(args) -> int:
    site = require_site(args.home)
    if not site.conn_file.exists():
        raise SiteError(f"no {site.conn_file}: run `up` first")
    conn = json.loads(site.conn_file.read_text())
    if args.json:
        print(json.dumps(conn))
    else:
        print_connection(site, conn)
    return 0


def cmd_php(args) -> int:
    site = require_site(args.home)
    if not site.pg_running():
        raise SiteError("PostgreSQL is not running: run `up` first")
    return site.php(args.script)


def cmd_cron(args) -> int:
    site = require_site(args.home)
    if not site.pg_running():
        raise SiteError("PostgreSQL is not running: run `up` first")
    if args.all:
        return site.php(["admin/cli/cron.php"])
    return site.php(["admin/tool/task/cli/schedule_task.php", f"--execute={CERT_TASK}"])


# Sets one capability of the service account's role in the system context (argv: role, capability, permission).
CAPABILITY_PHP = r"""
define('CLI_SCRIPT', true);
require('config.php');
require_once($CFG->libdir . '/accesslib.php');
[, $shortname, $capability, $permission] = $argv;
$role = $DB->get_record('role', ['shortname' => $shortname], '*', MUST_EXIST);
$permissions = ['allow' => CAP_ALLOW, 'prohibit' => CAP_PROHIBIT];
assign_capability($capability, $permissions[$permission], $role->id, context_system::instance()->id, true);
echo "{$shortname}: {$capability} = {$permission}\n";
"""


def cmd_capability(args) -> int:
    """Allow or prohibit one capability on the service account's role (tests of a refused client use it)."""
    site = require_site(args.home)
    if not site.pg_running():
        raise SiteError("PostgreSQL is not running: run `up` first")
    role = json.loads(SITE_DATA.read_text())["role"]["shortname"]
    return site.php(["-r", CAPABILITY_PHP, "--", role, args.capability, args.set])


def require_site(home) -> Site:
    site = Site(home)
    if not site.exists:
        raise SiteError(f"no site in {site.home}: run `up --src TOTARA_TREE` first")
    return site


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="totara_site.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Environment: TOTARA_SRC is the default for --src; TOTARA_SITE_HOME for "
                                       "--home; TOTARA_SITE_PG_BIN for PostgreSQL's bin folder.")
    p.add_argument("--home", type=Path, default=Path(os.environ.get("TOTARA_SITE_HOME") or DEFAULT_HOME),
                   help=f"the site's folder (default {DEFAULT_HOME})")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, text: str) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, help=text, description=text)
        parser.add_argument("--home", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        return parser

    up = command("up", "build the site the first time, else start what is stopped and bring the plugin and "
                       "set-up up to date; prints the Airflow Connection")
    up.add_argument("--src", default=os.environ.get("TOTARA_SRC") or None,
                    help="Totara 17 source: an extracted tree (server/version.php) or a bare git repository; "
                         "needed the first time only (default: $TOTARA_SRC)")
    up.add_argument("--port", type=int, default=None, help=f"web server port (default {DEFAULT_PORT})")
    up.add_argument("--db-port", type=int, default=None,
                    help=f"private PostgreSQL cluster port (default {DEFAULT_DB_PORT})")
    up.add_argument("--with-client", action="store_true",
                    help="also copy client/ (the Tui front end): needed only to browse the site's web pages")
    up.add_argument("--fresh", action="store_true", help="stop and delete an existing site first")
    command("reset", "restore the reset point (the freshly set-up site) and purge caches; the server keeps running")
    command("stop", "stop the PHP server and the private PostgreSQL cluster (only what this script started)")
    command("status", "what runs, URL, versions")
    conn = command("connection", "print the Airflow Connection (an export line; --json: the JSON only)")
    conn.add_argument("--json", action="store_true")
    php = command("php", "run a PHP CLI script inside server/ with the site's PHP settings, e.g. "
                         "`php admin/cli/cron.php` or `php admin/tool/task/cli/schedule_task.php --list`")
    php.add_argument("script", nargs=argparse.REMAINDER, help="script path relative to server/, then its arguments")
    cron = command("cron", "run the certifications' cron task (recertification windows opening, expiry): "
                           f"php admin/tool/task/cli/schedule_task.php --execute='{CERT_TASK}'; "
                           "with --all the whole cron, php admin/cli/cron.php")
    cron.add_argument("--all", action="store_true", help="run the whole cron (admin/cli/cron.php) instead")
    cap = command("capability", "allow or prohibit one capability on the service account's role (system "
                                "context), e.g. to see a refused client; `up` grants the role's capabilities again")
    cap.add_argument("capability", help="e.g. local/esrsync:viewcompletions")
    cap.add_argument("--set", choices=("allow", "prohibit"), required=True)
    return p


COMMANDS = {"up": cmd_up, "reset": cmd_reset, "stop": cmd_stop, "status": cmd_status,
            "connection": cmd_connection, "php": cmd_php, "cron": cmd_cron, "capability": cmd_capability}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "php" and not args.script:
        build_parser().error("php: give a script, e.g. admin/cli/cron.php")
    try:
        return COMMANDS[args.command](args)
    except SiteError as exc:
        print(f"totara_site: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
