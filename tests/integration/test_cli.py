# The command line: --version, serve --help, db init/migrate, user add, configuration errors
# (exit 2, one line naming the option) and precedence (flag > env > TOML file > default).
import json
import re
import subprocess
from pathlib import Path

import pytest

from conftest import (DEFAULT_PASSWORD, FetchdStartError, assert_problem, create_task,
                      login, login_account, register_and_login, run_cli, unique_name)

REPO = Path(__file__).resolve().parents[2]


def db_url(path):
    return f"sqlite://{Path(path).resolve()}"


def output(r):
    return r.stdout + r.stderr


def test_version():
    r = run_cli("--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "fetchd 0.1.0"


def test_help_lists_the_options():
    # The configuration options are global (usable after any subcommand) and listed by
    # `fetchd --help`; `serve --help` lists what is serve's own.
    top = run_cli("--help")
    assert top.returncode == 0, top.stderr
    for flag in ("--listen", "--db", "--config", "--log-level", "--log-format",
                 "--auth-token-ttl", "--auth-open-registration", "--http-max-body-bytes",
                 "--fetch-allow-private"):
        assert flag in top.stdout, f"{flag} not in fetchd --help"
        env = "FETCHD_" + flag[2:].replace("-", "_").upper()
        assert env in top.stdout, f"{env} not in fetchd --help"
    serve = run_cli("serve", "--help")
    assert serve.returncode == 0, serve.stderr
    assert "--no-migrate" in serve.stdout


# --- db init / migrate -----------------------------------------------------------------------

# docs/api.md's example is "applied 0001_init.sql"; the migration's name with or without .sql.
APPLIED_RE = re.compile(r"applied\b.*0001_init(\.sql)?\b", re.I)
UP_TO_DATE_RE = re.compile(r"up[ -]to[ -]date", re.I)


@pytest.mark.parametrize("first, second", [("init", "init"), ("migrate", "migrate"),
                                           ("init", "migrate")])
def test_db_commands_are_idempotent(tmp_path, first, second):
    db = tmp_path / "fetchd.db"
    r = run_cli("db", first, "--db", db_url(db))
    assert r.returncode == 0, output(r)
    assert APPLIED_RE.search(output(r)), output(r)
    assert db.is_file()
    r = run_cli("db", second, "--db", db_url(db))
    assert r.returncode == 0, output(r)
    assert not APPLIED_RE.search(output(r)), output(r)
    assert UP_TO_DATE_RE.search(output(r)), output(r)


def test_db_init_accepts_a_relative_sqlite_path(tmp_path):
    r = run_cli("db", "init", "--db", "sqlite://sub.db", cwd=tmp_path)
    assert r.returncode == 0, output(r)
    assert (tmp_path / "sub.db").is_file()


def test_serve_no_migrate_on_an_initialised_db(fetchd_factory, tmp_path):
    db = tmp_path / "inited.db"
    r = run_cli("db", "init", "--db", db_url(db))
    assert r.returncode == 0, output(r)
    srv = fetchd_factory(db_path=db, args=["--no-migrate"])
    acct = register_and_login(srv)
    create_task(acct)
    r = run_cli("db", "migrate", "--db", db_url(db))  # serve applied nothing either
    assert UP_TO_DATE_RE.search(output(r)), output(r)


def test_serve_migrates_a_fresh_db_on_start(fetchd_factory, tmp_path):
    db = tmp_path / "fresh.db"
    srv = fetchd_factory(db_path=db)
    register_and_login(srv)
    r = run_cli("db", "migrate", "--db", db_url(db))
    assert r.returncode == 0 and UP_TO_DATE_RE.search(output(r)), output(r)


# --- user add --------------------------------------------------------------------------------


@pytest.fixture
def inited_db(tmp_path):
    db = tmp_path / "users.db"
    r = run_cli("db", "init", "--db", db_url(db))
    assert r.returncode == 0, output(r)
    return db


def test_user_add_then_login(fetchd_factory, inited_db):
    plain, admin = unique_name(), unique_name("admin")
    r = run_cli("user", "add", plain, "--db", db_url(inited_db), input=DEFAULT_PASSWORD + "\n")
    assert r.returncode == 0, output(r)
    r = run_cli("user", "add", admin, "--admin", "--db", db_url(inited_db),
                input="admin password\n")
    assert r.returncode == 0, output(r)
    srv = fetchd_factory(db_path=inited_db)
    assert login_account(srv, plain).user["role"] == "user"
    assert login_account(srv, admin, "admin password").user["role"] == "admin"
    # The password is the line, without its newline.
    r = srv.post("/login", json={"username": plain, "password": DEFAULT_PASSWORD + "\n"})
    assert_problem(r, 401)


def test_user_add_taken_name_fails(inited_db):
    name = unique_name()
    first = run_cli("user", "add", name, "--db", db_url(inited_db), input=DEFAULT_PASSWORD + "\n")
    assert first.returncode == 0, output(first)
    again = run_cli("user", "add", name, "--db", db_url(inited_db), input="other password\n")
    assert again.returncode != 0
    assert again.stderr.strip(), "no message on stderr"


@pytest.mark.parametrize("name, password", [("ab", DEFAULT_PASSWORD), ("good_name", "short")])
def test_user_add_invalid_input_fails(inited_db, name, password):
    r = run_cli("user", "add", name, "--db", db_url(inited_db), input=password + "\n")
    assert r.returncode != 0, output(r)
    assert r.stderr.strip()


# --- configuration errors --------------------------------------------------------------------


def run_serve(tmp_path, *args, env=None, timeout=15):
    try:
        return run_cli("serve", "--db", db_url(tmp_path / "bad.db"), "--listen", "127.0.0.1:0",
                       *args, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail("fetchd served with a bad configuration instead of exiting 2")


def assert_config_error(r, *needles):
    assert r.returncode == 2, f"exit {r.returncode}, stderr: {r.stderr!r}"
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {lines}"
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not named in {lines[0]!r}"
    return lines[0]


@pytest.mark.parametrize("args, option", [
    (["--auth-token-ttl", "abc"], "auth.token_ttl"),
    (["--auth-token-ttl", "-5s"], "auth.token_ttl"),
    (["--http-max-body-bytes", "lots"], "http.max_body_bytes"),
    (["--http-max-body-bytes", "-1"], "http.max_body_bytes"),
    (["--log-level", "loud"], "log_level"),
    (["--log-format", "xml"], "log_format"),
    (["--listen", "no-port-here"], "listen"),
])
def test_bad_flag_value_exits_2_naming_the_option(tmp_path, args, option):
    assert_config_error(run_serve(tmp_path, *args), option)


@pytest.mark.parametrize("var, value, option", [
    ("FETCHD_HTTP_MAX_BODY_BYTES", "-1", "http.max_body_bytes"),
    ("FETCHD_AUTH_TOKEN_TTL", "abc", "auth.token_ttl"),
    ("FETCHD_AUTH_OPEN_REGISTRATION", "maybe", "auth.open_registration"),
    ("FETCHD_FETCH_ALLOW_PRIVATE", "perhaps", "fetch.allow_private"),
    ("FETCHD_LOG_FORMAT", "xml", "log_format"),
])
def test_bad_env_value_exits_2_naming_the_option(tmp_path, var, value, option):
    assert_config_error(run_serve(tmp_path, env={var: value}), option)


@pytest.mark.parametrize("toml, needle", [
    ('[http]\nmax_bodyy = 1\n', "max_bodyy"),  # unknown key
    ('no_such_option = true\n', "no_such_option"),
    ('[http]\nmax_body_bytes = "lots"\n', "http.max_body_bytes"),  # wrong type
    ('[auth]\ntoken_ttl = "abc"\n', "auth.token_ttl"),
    ('log_level = "loud"\n', "log_level"),
], ids=["unknown-key-in-table", "unknown-top-level-key", "wrong-type", "bad-duration",
        "bad-enum"])
def test_bad_toml_value_exits_2_naming_the_option(tmp_path, toml, needle):
    path = tmp_path / "fetchd.toml"
    path.write_text(toml)
    assert_config_error(run_serve(tmp_path, "--config", path), needle)


def test_toml_syntax_error_exits_2_with_one_line(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text('listen = "127.0.0.1:0\n[auth\n')
    line = assert_config_error(run_serve(tmp_path, "--config", path))
    assert "broken.toml" in line, line


def test_missing_config_file_exits_2(tmp_path):
    line = assert_config_error(run_serve(tmp_path, "--config", tmp_path / "absent.toml"))
    assert "absent.toml" in line, line


def test_bad_config_also_fails_db_commands(tmp_path):
    r = run_cli("db", "init", "--db", db_url(tmp_path / "x.db"), "--log-format", "xml")
    assert_config_error(r, "log_format")


# --- precedence: flag > env > file > default -------------------------------------------------

PRECEDENCE_TOML = """\
listen = "127.0.0.2:0"

[auth]
token_ttl = "3600s"
open_registration = false
"""
PRECEDENCE_ENV = {
    "FETCHD_LISTEN": "127.0.0.3:0",
    "FETCHD_AUTH_TOKEN_TTL": "7200s",
    "FETCHD_AUTH_OPEN_REGISTRATION": "true",
}
PRECEDENCE_FLAGS = ["--listen", "127.0.0.1:0", "--auth-token-ttl", "1800s",
                    "--auth-open-registration=false"]


@pytest.fixture
def precedence_setup(tmp_path, inited_db):
    config = tmp_path / "fetchd.toml"
    config.write_text(PRECEDENCE_TOML)
    name = unique_name()
    r = run_cli("user", "add", name, "--db", db_url(inited_db), input=DEFAULT_PASSWORD + "\n")
    assert r.returncode == 0, output(r)
    return config, inited_db, name


@pytest.mark.parametrize("layers, host, ttl, registration_open", [
    ({"file"}, "127.0.0.2", 3600, False),
    ({"file", "env"}, "127.0.0.3", 7200, True),
    ({"file", "env", "flags"}, "127.0.0.1", 1800, False),
], ids=["file", "env-beats-file", "flag-beats-env"])
def test_config_precedence(fetchd_factory, precedence_setup, layers, host, ttl,
                           registration_open):
    config, db, name = precedence_setup
    args = ["--config", config] + (PRECEDENCE_FLAGS if "flags" in layers else [])
    env = PRECEDENCE_ENV if "env" in layers else {}
    srv = fetchd_factory(db_path=db, listen=None, args=args, env=env)
    assert srv.host == host  # `listen` as logged (and bound)
    assert srv.get("/healthz").status_code == 200
    assert login(srv, name)["expires_in"] == ttl  # auth.token_ttl
    r = srv.post("/register", json={"username": unique_name(), "password": DEFAULT_PASSWORD})
    if registration_open:
        assert r.status_code == 201, r.text
    else:
        assert_problem(r, 403)


def test_log_format_json(fetchd_factory):
    srv = fetchd_factory(args=["--log-format", "json"])
    assert srv.get("/healthz").status_code == 200
    srv.stop()
    lines = [line for line in srv.stderr_text().splitlines()
             if line.strip() and not line.startswith("===== start")]
    assert lines
    for line in lines:
        assert isinstance(json.loads(line), dict), line


def test_example_config_is_accepted(fetchd_factory):
    example = REPO / "fetchd.example.toml"
    if not example.is_file():
        pytest.skip("no fetchd.example.toml at the repository root")
    try:
        srv = fetchd_factory(args=["--config", example])
    except FetchdStartError as e:
        pytest.fail(f"fetchd.example.toml rejected: {e}")
    assert srv.get("/healthz").status_code == 200
