# Packaging (issue 7): `cmake --install` and the .deb (`make package`), the systemd units
# (systemd-analyze verify), the Dockerfile and docker-compose.yml (checked without Docker:
# commands, flags, values, variables and ports against the real binary), the shell completions,
# the man page and the Insomnia and Postman collections (current, complete and working against
# a live server). Installs and packages the build under test: $FETCHD_BUILD_DIR (ctest sets it),
# else the directory of $FETCHD_BIN.
import base64
import gzip
import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import requests
import yaml

from conftest import REPO_DIR, clean_env, fetchd_bin, run_cli, unique_name

UNITS = ["fetchd.service", "fetchd-api.service", "fetchd-scheduler.service",
         "fetchd-worker@.service"]
# Runtime libraries dpkg-shlibdeps must find in the binary (the package's Depends).
EXPECTED_DEPENDS = ["libcurl4", "libpq5", "libsqlite3-0", "libhiredis0.14", "libsodium23"]
COMMAND_TIMEOUT = 300


def build_dir() -> Path:
    value = os.environ.get("FETCHD_BUILD_DIR")
    return Path(value) if value else Path(fetchd_bin()).resolve().parent


def run(cmd, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", COMMAND_TIMEOUT)
    kw.setdefault("env", clean_env())
    return subprocess.run([str(c) for c in cmd], **kw)


def check(cmd, **kw):
    r = run(cmd, **kw)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    return r


def fetchd_version() -> str:
    r = run_cli("--version")
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def help_subcommands(*words):
    """The subcommands `fetchd WORDS --help` lists."""
    text = run_cli(*words, "--help").stdout
    section = text.split("Subcommands:", 1)[1] if "Subcommands:" in text else ""
    return [m.group(1) for m in re.finditer(r"^  (\S+)", section, re.M)]


def help_flags(*words):
    """Every flag `fetchd WORDS --help` lists ("-h", "--help", "--concurrency", ...)."""
    text = run_cli(*words, "--help").stdout
    names = set()
    for m in re.finditer(r"^  (-[^\s]+)", text, re.M):
        names.update(n for n in m.group(1).split(",") if n.startswith("-"))
    return names


def command_problem(args):
    """Why `fetchd ARGS` is not a real command line (None when it is): the words before the
    first flag must name a runnable subcommand, every flag must be the subcommand's or the
    root's (they fall through). `--help` alone proves nothing: CLI11 answers it before it
    looks at the other arguments."""
    path, i = [], 0
    while i < len(args) and args[i] in help_subcommands(*path):
        path.append(args[i])
        i += 1
    if not path:
        return f"no subcommand in {args}"
    if help_subcommands(*path):
        return f"`fetchd {' '.join(path)}` needs a subcommand"
    if run_cli(*path, "--help").returncode != 0:
        return f"`fetchd {' '.join(path)} --help` fails"
    allowed = help_flags(*path) | help_flags()
    for arg in args[i:]:
        if arg.startswith("-") and arg.split("=", 1)[0] not in allowed:
            return f"`fetchd {' '.join(path)}` has no flag {arg.split('=', 1)[0]}"
    return None


# ---------------------------------------------------------------------------------------------
# cmake --install

@pytest.fixture(scope="module")
def destdir_root(tmp_path_factory):
    """`DESTDIR=<root> cmake --install <build> --prefix /usr`: the layout of the package."""
    root = tmp_path_factory.mktemp("destdir")
    check(["cmake", "--install", build_dir(), "--prefix", "/usr"],
          env=clean_env({"DESTDIR": str(root)}))
    return root


@pytest.fixture(scope="module")
def prefix_root(tmp_path_factory):
    """`cmake --install <build> --prefix <tmp>/usr`: the units name the binary installed there,
    so that systemd-analyze verify finds it."""
    prefix = tmp_path_factory.mktemp("prefix") / "usr"
    check(["cmake", "--install", build_dir(), "--prefix", prefix])
    return prefix


def test_install_puts_every_file_in_its_debian_place(destdir_root):
    usr = destdir_root / "usr"
    binary = usr / "bin" / "fetchd"
    assert binary.is_file() and os.access(binary, os.X_OK)
    assert check([binary, "--version"]).stdout.strip() == fetchd_version()

    example = (REPO_DIR / "fetchd.example.toml").read_text()
    assert (destdir_root / "etc" / "fetchd" / "fetchd.toml").read_text() == example
    assert (usr / "share/doc/fetchd/examples/fetchd.example.toml").read_text() == example
    assert (usr / "lib/sysusers.d/fetchd.conf").read_text() == \
        (REPO_DIR / "packaging/sysusers/fetchd.conf").read_text()
    for unit in UNITS:
        text = (usr / "lib/systemd/system" / unit).read_text()
        assert "ExecStart=/usr/bin/fetchd " in text, unit
        assert "FETCHD_CONFIG=/etc/fetchd/fetchd.toml" in text, unit
        assert "EnvironmentFile=-/etc/default/fetchd" in text, unit

    with gzip.open(usr / "share/man/man1/fetchd.1.gz", "rt") as f:
        assert f.read() == (REPO_DIR / "docs/fetchd.1").read_text()
    assert (usr / "share/bash-completion/completions/fetchd").read_text() == \
        run_cli("completion", "bash").stdout
    assert (usr / "share/zsh/vendor-completions/_fetchd").read_text() == \
        run_cli("completion", "zsh").stdout


def test_install_with_another_prefix_rewrites_the_units_paths(prefix_root):
    etc = prefix_root / "etc"  # GNUInstallDirs: /etc only for the prefixes /usr and /
    assert (etc / "fetchd" / "fetchd.toml").is_file()
    for unit in UNITS:
        text = (prefix_root / "lib/systemd/system" / unit).read_text()
        exec_start = re.search(r"^ExecStart=(\S+)", text, re.M).group(1)
        assert exec_start == str(prefix_root / "bin" / "fetchd"), unit
        assert f"FETCHD_CONFIG={etc}/fetchd/fetchd.toml" in text, unit
        assert "=/usr/bin/fetchd" not in text and "=/etc/" not in text, unit


# ---------------------------------------------------------------------------------------------
# systemd

def verify_unit(path: Path):
    return run(["systemd-analyze", "verify", "--man=no", path])


def test_systemd_analyze_verify_passes_on_every_unit(prefix_root, tmp_path):
    units = prefix_root / "lib/systemd/system"
    for unit in UNITS:
        r = verify_unit(units / unit)
        # Unknown keys and bad values are only warnings (exit 0): none is allowed.
        assert r.returncode == 0 and r.stderr.strip() == "" and r.stdout.strip() == "", \
            f"{unit}: exit {r.returncode}\n{r.stdout}{r.stderr}"
    # The template as a real instance: fetchd-worker@01 listens on 127.0.0.1:9101.
    shutil.copy(units / "fetchd-worker@.service", tmp_path / "fetchd-worker@.service")
    (tmp_path / "fetchd-worker@01.service").symlink_to("fetchd-worker@.service")
    r = verify_unit(tmp_path / "fetchd-worker@01.service")
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr


def test_systemd_analyze_verify_catches_a_broken_unit(prefix_root, tmp_path):
    """The check above can fail: a missing binary is an error, an unknown key a warning."""
    text = (prefix_root / "lib/systemd/system/fetchd.service").read_text()
    missing = tmp_path / "missing" / "fetchd.service"
    missing.parent.mkdir()
    missing.write_text(re.sub(r"^ExecStart=\S+", "ExecStart=/nonexistent/fetchd", text,
                              flags=re.M))
    assert verify_unit(missing).returncode != 0
    typo = tmp_path / "typo" / "fetchd.service"
    typo.parent.mkdir()
    typo.write_text(text.replace("NoNewPrivileges=", "NoNewPrivilege="))
    assert "Unknown key" in verify_unit(typo).stderr


def unit_settings(text):
    settings = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


def test_units_run_as_the_dedicated_user_with_hardening():
    for unit in UNITS:
        s = unit_settings((REPO_DIR / "packaging/systemd" / unit).read_text())
        assert s["User"] == ["fetchd"] and s["Group"] == ["fetchd"], unit
        for key, value in [("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                           ("ProtectHome", "yes"), ("PrivateTmp", "yes"),
                           ("CapabilityBoundingSet", ""), ("Restart", "on-failure")]:
            assert s.get(key) == [value], f"{unit}: {key}={s.get(key)}"
        assert s["SystemCallFilter"], unit
        command = s["ExecStart"][0].split()
        assert command[0] == "/usr/bin/fetchd"
        assert command[1] == {"fetchd.service": "serve", "fetchd-api.service": "api",
                              "fetchd-scheduler.service": "scheduler",
                              "fetchd-worker@.service": "worker"}[unit]
        assert command_problem(command[1:]) is None, f"{unit}: {command_problem(command[1:])}"
    serve = unit_settings((REPO_DIR / "packaging/systemd/fetchd.service").read_text())
    assert serve["StateDirectory"] == ["fetchd"]  # the SQLite database: /var/lib/fetchd


def test_sysusers_creates_the_fetchd_user(tmp_path):
    r = check(["systemd-sysusers", f"--root={tmp_path}", "--dry-run",
               REPO_DIR / "packaging/sysusers/fetchd.conf"])
    assert "Creating user 'fetchd'" in r.stdout + r.stderr


# ---------------------------------------------------------------------------------------------
# The Debian package

@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    """The .deb of the build under test (what `make package` makes), built by CPack in a
    scratch directory."""
    out = tmp_path_factory.mktemp("cpack")
    config = build_dir() / "CPackConfig.cmake"
    assert config.is_file(), f"{config} is missing: configure the build with CMake"
    check(["cpack", "-G", "DEB", "--config", config, "-B", out])
    debs = sorted(out.glob("fetchd_*.deb"))
    assert len(debs) == 1, list(out.iterdir())
    return debs[0]


def deb_field(deb, field):
    return check(["dpkg-deb", "-f", deb, field]).stdout.strip()


def test_deb_extracts_and_runs(deb, tmp_path):
    root = tmp_path / "root"
    check(["dpkg", "-x", deb, root])
    binary = root / "usr/bin/fetchd"
    assert check([binary, "--version"]).stdout.strip() == fetchd_version()
    assert check([binary, "config", "man"]).stdout == (REPO_DIR / "docs/fetchd.1").read_text()
    # Stripped for size: no .symtab left.
    sections = check(["readelf", "-S", "-W", binary]).stdout
    assert ".symtab" not in sections and ".debug_info" not in sections
    for path in ["etc/fetchd/fetchd.toml", "usr/lib/sysusers.d/fetchd.conf",
                 "usr/share/man/man1/fetchd.1.gz", "usr/share/bash-completion/completions/fetchd",
                 "usr/share/zsh/vendor-completions/_fetchd",
                 "usr/share/doc/fetchd/examples/fetchd.example.toml"] + \
            [f"usr/lib/systemd/system/{u}" for u in UNITS]:
        assert (root / path).is_file(), path


def test_deb_depends_are_computed_from_the_binary(deb):
    depends = [d.strip().split()[0] for d in deb_field(deb, "Depends").split(",")]
    for package in EXPECTED_DEPENDS:
        assert package in depends, f"{package} not in Depends: {depends}"
    # Computed, not hand-listed: CPack is told to run dpkg-shlibdeps and given no list.
    packaging = (REPO_DIR / "cmake/packaging.cmake").read_text()
    assert re.search(r"CPACK_DEBIAN_PACKAGE_SHLIBDEPS\s+ON", packaging)
    assert "CPACK_DEBIAN_PACKAGE_DEPENDS" not in packaging
    assert deb_field(deb, "Package") == "fetchd"
    assert fetchd_version() == "fetchd " + deb_field(deb, "Version")


def test_deb_maintainer_scripts_and_conffiles(deb, tmp_path):
    control = tmp_path / "control"
    check(["dpkg-deb", "-e", deb, control])
    assert (control / "conffiles").read_text().split() == ["/etc/fetchd/fetchd.toml"]
    for script in ["postinst", "prerm", "postrm"]:
        path = control / script
        assert os.access(path, os.X_OK), script
        check(["sh", "-n", path])
    postinst = (control / "postinst").read_text()
    assert "systemd-sysusers" in postinst and "useradd" in postinst


# ---------------------------------------------------------------------------------------------
# Docker: the Dockerfile and docker-compose.yml, checked against the real binary

def option_envs():
    """FETCHD_* names of the option table (from `fetchd config table`), plus FETCHD_CONFIG."""
    table = check([fetchd_bin(), "config", "table"]).stdout
    names = set(re.findall(r"`(FETCHD_[A-Z0-9_]+)`", table))
    assert "FETCHD_LISTEN" in names and "FETCHD_DB" in names
    return names | {"FETCHD_CONFIG"}


def option_flags():
    table = check([fetchd_bin(), "config", "table"]).stdout
    return set(re.findall(r"\| `(--[a-z0-9-]+)` \|", table))


def config_errors(args, env, tmp_path):
    """Loads the configuration of `args` and `env` for real (fetchd db migrate over a scratch
    SQLite database): None when every value is valid, else fetchd's message. Only the option
    table's flags are passed (the subcommand's own flags were checked with --help)."""
    flags = option_flags()
    passed, i = [], 0
    while i < len(args):
        name = args[i].split("=", 1)[0]
        takes_value = "=" not in args[i] and i + 1 < len(args) and not args[i + 1].startswith("-")
        if name in flags:
            passed += args[i:i + 2] if takes_value else args[i:i + 1]
        i += 2 if takes_value else 1
    env = {k: v for k, v in env.items() if k != "FETCHD_DB"}
    db = tmp_path / f"{unique_name('config')}.db"
    r = run_cli("db", "migrate", *passed, "--db", f"sqlite://{db}", env=env, cwd=tmp_path)
    return None if r.returncode == 0 else r.stderr.strip()


def dockerfile_stages():
    stages = []
    for raw in re.sub(r"\\\n", " ", (REPO_DIR / "Dockerfile").read_text()).splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append({"from": rest.strip(), "lines": []})
        else:
            stages[-1]["lines"].append((instruction.upper(), rest.strip()))
    return stages


def dockerfile_env(stage):
    env = {}
    for instruction, rest in stage["lines"]:
        if instruction == "ENV":
            env.update(dict(re.findall(r"(\w+)=(\S+)", rest)))
    return env


def dockerfile_entrypoint(stage):
    entry = [json.loads(rest) for i, rest in stage["lines"] if i == "ENTRYPOINT"]
    assert len(entry) == 1
    return entry[0]


def test_dockerfile_builds_with_the_deps_list_and_runs_unprivileged(tmp_path):
    stages = dockerfile_stages()
    assert len(stages) == 2, "multi-stage: build and runtime"
    build, runtime = stages
    assert build["from"] == "debian:bookworm AS build" and runtime["from"] == "debian:bookworm"
    runs = " ".join(rest for i, rest in build["lines"] if i == "RUN")
    copies = " ".join(rest for i, rest in build["lines"] if i == "COPY")
    # The one list `make deps` installs, through the same script; no other apt-get install.
    assert "scripts/debian-packages.txt" in copies and "scripts/deps.sh" in runs
    assert "apt-get install" not in runs
    assert "make package" in runs
    deps = (REPO_DIR / "scripts/deps.sh").read_text()
    assert "scripts/debian-packages.txt" in deps
    # Runtime: the package (its computed Depends), an unprivileged user, nothing built.
    runtime_runs = " ".join(rest for i, rest in runtime["lines"] if i == "RUN")
    assert "/tmp/fetchd.deb" in runtime_runs and "make" not in runtime_runs
    users = [rest for i, rest in runtime["lines"] if i == "USER"]
    assert users and users[-1] not in ("root", "0")
    env = dockerfile_env(runtime)
    assert set(env) <= option_envs(), set(env) - option_envs()
    assert config_errors([], env, tmp_path) is None
    assert dockerfile_entrypoint(runtime) == ["/usr/bin/fetchd"]
    exposed = [rest for i, rest in runtime["lines"] if i == "EXPOSE"]
    assert exposed == [env["FETCHD_LISTEN"].rsplit(":", 1)[1]]
    assert env["FETCHD_LISTEN"].startswith("0.0.0.0:")
    ignored = (REPO_DIR / ".dockerignore").read_text().split()
    assert "build/" in ignored and "node_modules/" in ignored


def compose():
    with open(REPO_DIR / "docker-compose.yml") as f:
        return yaml.safe_load(f)


def fetchd_services(doc):
    return {name: s for name, s in doc["services"].items() if s.get("image") == "fetchd:local"}


def listen_of(service, image_env):
    command = service.get("command", [])
    for i, arg in enumerate(command):
        if arg == "--listen":
            return command[i + 1]
        if arg.startswith("--listen="):
            return arg.split("=", 1)[1]
    return service.get("environment", {}).get("FETCHD_LISTEN", image_env["FETCHD_LISTEN"])


def test_compose_has_the_scale_out_topology_and_an_embedded_profile():
    doc = compose()
    services = doc["services"]
    assert {"postgres", "redis", "api", "scheduler", "worker", "embedded"} <= set(services)
    commands = {name: s["command"][0] for name, s in fetchd_services(doc).items()}
    assert commands == {"api": "api", "scheduler": "scheduler", "worker": "worker",
                        "embedded": "serve"}
    assert services["worker"]["deploy"]["replicas"] == 2
    for name in ["postgres", "redis", "api", "scheduler", "worker"]:
        assert "profiles" not in services[name], name  # a plain `docker compose up`
    assert services["embedded"]["profiles"] == ["embedded"]
    assert "depends_on" not in services["embedded"]
    embedded_env = services["embedded"].get("environment", {})
    assert "FETCHD_BROKER" not in embedded_env
    assert "sqlite://" in " ".join(services["embedded"]["command"])
    pg = services["postgres"]["environment"]
    for name in ["api", "scheduler", "worker"]:
        s = services[name]
        assert set(s["depends_on"]) == {"postgres", "redis"}, name
        env = s["environment"]
        assert env["FETCHD_DB"] == (f"postgres://{pg['POSTGRES_USER']}:{pg['POSTGRES_PASSWORD']}"
                                    f"@postgres:5432/{pg['POSTGRES_DB']}"), name
        assert re.fullmatch(r"redis://redis:6379/\d+", env["FETCHD_BROKER"]), name
    assert fetchd_services(doc)["api"]["build"] == "."


def test_compose_commands_flags_values_and_variables_are_real(tmp_path):
    doc = compose()
    runtime = dockerfile_stages()[-1]
    entrypoint = dockerfile_entrypoint(runtime)
    envs = option_envs()
    for name, service in fetchd_services(doc).items():
        argv = entrypoint + service["command"]
        assert argv[0] == "/usr/bin/fetchd", name
        assert command_problem(argv[1:]) is None, f"{name}: {command_problem(argv[1:])}"
        env = {k: str(v) for k, v in service.get("environment", {}).items()}
        assert set(env) <= envs, f"{name}: not options: {set(env) - envs}"
        error = config_errors(argv[2:], {**dockerfile_env(runtime), **env}, tmp_path)
        assert error is None, f"{name}: {error}"


def test_compose_checks_can_fail(tmp_path):
    """The checks above reject an invented flag or subcommand, a bad value and an unknown
    variable, and accept a real command line."""
    assert command_problem(["worker", "--listen", "0.0.0.0:9101", "--concurrency", "8"]) is None
    assert command_problem(["worker", "--listen", "0.0.0.0:9101", "--no-such-flag"]) is not None
    assert command_problem(["api", "--concurrency", "8"]) is not None  # the worker's flag
    assert command_problem(["launch", "--listen", "0.0.0.0:8000"]) is not None
    assert command_problem(["db"]) is not None
    assert command_problem(["db", "seed", "--count", "3"]) is None
    assert config_errors(["--listen", "0.0.0.0:99999"], {}, tmp_path) is not None
    assert config_errors([], {"FETCHD_LOG_FORMAT": "xml"}, tmp_path) is not None
    assert "FETCHD_NO_SUCH_OPTION" not in option_envs()


def test_compose_ports_and_health_checks_match_the_listen_addresses():
    doc = compose()
    image_env = dockerfile_env(dockerfile_stages()[-1])
    for name, service in fetchd_services(doc).items():
        host, port = listen_of(service, image_env).rsplit(":", 1)
        assert host == "0.0.0.0", f"{name} listens on {host}: unreachable from other containers"
        for mapping in service.get("ports", []):
            assert str(mapping).rsplit(":", 1)[-1] == port, f"{name}: {mapping} vs {port}"
        probe = " ".join(service["healthcheck"]["test"])
        assert f"/dev/tcp/127.0.0.1/{port} " in probe and "/readyz" in probe, name
    published = [p for s in fetchd_services(doc).values() for p in s.get("ports", [])]
    assert "8000:8000" in published


def test_package_lists_hold_what_these_tests_need():
    listed = set(re.sub(r"#.*", "", (REPO_DIR / "scripts/debian-packages.txt").read_text())
                 .split())
    # dpkg-shlibdeps, file (CPack's ELF check), systemd-analyze, yaml, zsh, groff, readelf.
    assert {"dpkg-dev", "file", "systemd", "python3-yaml", "zsh", "groff-base",
            "binutils"} <= listed


# ---------------------------------------------------------------------------------------------
# Shell completion and the man page

def bash_complete(words):
    """COMPREPLY of the generated bash completion for the command line `words` (the last word
    is the one being completed)."""
    script = run_cli("completion", "bash").stdout
    line = " ".join(f"'{w}'" for w in words)
    probe = (f"source /dev/stdin <<'EOF'\n{script}\nEOF\n"
             f"COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; _fetchd; "
             "printf '%s\\n' \"${COMPREPLY[@]}\"")
    r = check(["bash", "-c", probe])
    return [w for w in r.stdout.split("\n") if w]


def test_bash_completion_registers_and_completes_subcommands_and_flags():
    script = run_cli("completion", "bash").stdout
    r = check(["bash", "-c", f"source /dev/stdin <<'EOF'\n{script}\nEOF\ncomplete -p fetchd"])
    assert r.stdout.strip() == "complete -F _fetchd fetchd"
    assert bash_complete(["fetchd", "se"]) == ["serve"]
    assert sorted(bash_complete(["fetchd", ""])) == sorted(help_subcommands())
    assert sorted(bash_complete(["fetchd", "db", ""])) == sorted(help_subcommands("db"))
    assert bash_complete(["fetchd", "worker", "--conc"]) == ["--concurrency"]
    # Options of the table after a subcommand (fallthrough), values skipped while walking.
    assert bash_complete(["fetchd", "--log-level", "debug", "db", "s"]) == ["seed"]
    assert bash_complete(["fetchd", "serve", "--fetch-allow-p"]) == ["--fetch-allow-private"]
    assert bash_complete(["fetchd", "serve", "--log-format", ""]) == ["text", "json"]
    assert bash_complete(["fetchd", "db", "seed", "--ow"]) == ["--owner"]
    assert bash_complete(["fetchd", "nonsense", "se"]) == ["serve"]  # unknown words ignored
    assert bash_complete(["fetchd", "serve", "se"]) == []


def test_bash_completion_offers_every_flag_of_every_option():
    flags = set(bash_complete(["fetchd", "api", "--"]))
    assert option_flags() <= flags
    assert {"--no-migrate", "--help", "--config"} <= flags


def test_zsh_completion_loads_and_registers():
    script = run_cli("completion", "zsh").stdout
    assert script.startswith("#compdef fetchd\n")
    check(["zsh", "-n", "-c", script])
    probe = ("autoload -Uz compinit && compinit -u -D && "
             f"source /dev/stdin <<'EOF'\n{script}\nEOF\n"
             "print -r -- $_comps[fetchd]; _fetchd_commands ''; print -r -- ${reply%%:*}; "
             "_fetchd_flags 'worker'; print -r -- ${reply%%:*}")
    lines = check(["zsh", "-f", "-c", probe]).stdout.splitlines()
    assert lines[0] == "_fetchd"
    assert sorted(lines[1].split()) == sorted(help_subcommands())
    assert "--concurrency" in lines[2].split()


def test_man_page_is_current_and_complete():
    committed = (REPO_DIR / "docs/fetchd.1").read_text()
    assert run_cli("config", "man").stdout == committed, \
        "docs/fetchd.1 is stale: run `make docs` (fetchd config man > docs/fetchd.1)"
    for flag in option_flags():
        assert flag.replace("-", "\\-") in committed, flag
    for sub in help_subcommands():
        if sub not in ("db", "user", "config", "completion"):
            assert f"\\fBfetchd {sub}" in committed, sub
    assert "\\fBfetchd db seed" in committed and "\\fBfetchd user add" in committed
    r = check(["groff", "-man", "-ww", "-z", REPO_DIR / "docs/fetchd.1"])
    assert r.stderr == "", r.stderr  # no roff warnings


# ---------------------------------------------------------------------------------------------
# Insomnia and Postman collections

def load_generator():
    spec = importlib.util.spec_from_file_location("gen_collections",
                                                  REPO_DIR / "scripts/gen_collections.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    from conftest import Fetchd
    server = Fetchd(tmp_path_factory.mktemp("collections"), name="collections")
    try:
        server.start()
        r = server.get("/openapi.json")
        assert r.status_code == 200
        yield server, r.json()
    finally:
        server.kill()


def committed(name):
    return (REPO_DIR / "clients" / name).read_text()


def postman_routes(collection):
    out = set()
    for folder in collection["item"]:
        for item in folder["item"]:
            r = item["request"]
            path = "/" + "/".join(re.sub(r"^:(.+)$", r"{\1}", s) for s in r["url"]["path"])
            assert r["url"]["raw"].startswith("{{base_url}}/")
            out.add((r["method"], path))
    return out


def insomnia_routes(export):
    out = set()
    for r in export["resources"]:
        if r["_type"] == "request":
            assert r["url"].startswith("{{ _.base_url }}/")
            path = re.sub(r"\{\{ _\.(\w+) \}\}", r"{\1}", r["url"][len("{{ _.base_url }}"):])
            out.add((r["method"], path))
    return out


def missing_routes(spec, routes):
    gen = load_generator()
    return sorted(set(gen.routes(spec)) - routes)


def test_collections_are_current(live):
    _, spec = live
    rendered = load_generator().render(spec)
    assert set(rendered) == {"fetchd.insomnia.json", "fetchd.postman_collection.json",
                             "fetchd.postman_environment.json"}
    for name, text in rendered.items():
        assert committed(name) == text, \
            f"clients/{name} is stale: run `make docs` (scripts/gen_collections.py)"


def test_every_route_of_the_spec_is_in_both_collections(live):
    _, spec = live
    postman = json.loads(committed("fetchd.postman_collection.json"))
    insomnia = json.loads(committed("fetchd.insomnia.json"))
    assert missing_routes(spec, postman_routes(postman)) == []
    assert missing_routes(spec, insomnia_routes(insomnia)) == []
    # Only the Swagger UI's own files are left out, and they are GET routes of files.
    gen = load_generator()
    every = {(m.upper(), p) for p, item in spec["paths"].items() for m in item
             if m in gen.METHOD_ORDER}
    left_out = every - set(gen.routes(spec))
    assert all(m == "GET" and p.startswith("/swagger-ui/") and "." in p for m, p in left_out)
    assert ("GET", "/swagger-ui") in postman_routes(postman)
    # The check can fail: a route the collections lack is reported.
    extra = json.loads(json.dumps(spec))
    extra["paths"]["/tasks/{task_id}/archive"] = {"post": {"summary": "x", "tags": ["tasks"]}}
    assert missing_routes(extra, postman_routes(postman)) == [("POST", "/tasks/{task_id}/archive")]


def test_collections_hold_an_environment_with_base_url_and_token():
    env = json.loads(committed("fetchd.postman_environment.json"))
    values = {v["key"]: v["value"] for v in env["values"]}
    assert values["base_url"] == "http://127.0.0.1:8000" and "token" in values
    assert env["_postman_variable_scope"] == "environment"
    collection = json.loads(committed("fetchd.postman_collection.json"))
    assert collection["info"]["schema"].endswith("/v2.1.0/collection.json")
    assert collection["auth"]["bearer"][0]["value"] == "{{token}}"
    export = json.loads(committed("fetchd.insomnia.json"))
    assert export["_type"] == "export" and export["__export_format"] == 4
    base = [r for r in export["resources"] if r["_type"] == "environment"]
    assert len(base) == 1 and base[0]["data"]["base_url"] == "http://127.0.0.1:8000"


def test_login_sets_the_token_in_both_collections(live):
    _, spec = live
    collection = json.loads(committed("fetchd.postman_collection.json"))
    items = {(i["request"]["method"], "/" + "/".join(i["request"]["url"]["path"])): i
             for f in collection["item"] for i in f["item"]}
    login = items[("POST", "/login")]
    script = "\n".join(line for e in login["event"] if e["listen"] == "test"
                       for line in e["script"]["exec"])
    assert 'pm.environment.set("token", pm.response.json().access_token);' in script
    assert login["request"]["auth"] == {"type": "noauth"}
    assert "auth" not in items[("GET", "/me")]["request"]  # inherits the collection's bearer

    export = json.loads(committed("fetchd.insomnia.json"))
    requests_by_id = {r["_id"]: r for r in export["resources"] if r["_type"] == "request"}
    env = next(r for r in export["resources"] if r["_type"] == "environment")
    tag = re.fullmatch(r"\{% response 'body', '(\w+)', 'b64::([A-Za-z0-9+/=]+)::46b', "
                       r"'(?:no-history|never|always|when-expired)', \d+ %\}",
                       env["data"]["token"])
    assert tag, env["data"]["token"]
    assert base64.b64decode(tag.group(2)).decode() == "$.access_token"
    target = requests_by_id[tag.group(1)]
    assert (target["method"], target["url"]) == ("POST", "{{ _.base_url }}/login")
    me = next(r for r in requests_by_id.values() if r["url"] == "{{ _.base_url }}/me")
    assert me["authentication"] == {"type": "bearer", "token": "{{ _.token }}"}


def substitute(text, values, pattern):
    return re.sub(pattern, lambda m: str(values[m.group(1)]), text)


def test_the_collections_requests_work_against_a_live_server(live):
    """Register, log in and call /me with the requests as the collections hold them: the
    bodies, the variables and the token chaining are right, not just present."""
    server, _ = live
    base = f"http://{server.host}:{server.port}"

    postman = json.loads(committed("fetchd.postman_collection.json"))
    values = {v["key"]: v["value"] for v in postman["variable"]}
    values.update(base_url=base, username=unique_name("pm"))
    items = {i["request"]["url"]["raw"]: i for f in postman["item"] for i in f["item"]}

    def send_postman(raw, token=None):
        r = items[raw]["request"]
        headers = {h["key"]: h["value"] for h in r["header"]}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        body = substitute(r["body"]["raw"], values, r"\{\{(\w+)\}\}") if "body" in r else None
        return requests.request(r["method"], substitute(raw, values, r"\{\{(\w+)\}\}"),
                                data=body, headers=headers, timeout=10)

    assert send_postman("{{base_url}}/register").status_code == 201
    login = send_postman("{{base_url}}/login")
    assert login.status_code == 200
    token = login.json()["access_token"]  # what the login test script stores
    me = send_postman("{{base_url}}/me", token=token)
    assert me.status_code == 200 and me.json()["username"] == values["username"]

    export = json.loads(committed("fetchd.insomnia.json"))
    env = next(r for r in export["resources"] if r["_type"] == "environment")["data"]
    env = dict(env, base_url=base, username=unique_name("ins"))
    by_id = {r["_id"]: r for r in export["resources"] if r["_type"] == "request"}

    def send_insomnia(request, token=None):
        headers = {h["name"]: h["value"] for h in request["headers"]}
        if request["authentication"].get("type") == "bearer":
            headers["Authorization"] = f"Bearer {token}"
        body = request["body"].get("text")
        if body is not None:
            body = substitute(body, env, r"\{\{ _\.(\w+) \}\}")
        return requests.request(request["method"],
                                substitute(request["url"], env, r"\{\{ _\.(\w+) \}\}"),
                                data=body, headers=headers, timeout=10)

    register = next(r for r in by_id.values() if r["url"].endswith("/register"))
    assert send_insomnia(register).status_code == 201
    login_id = re.search(r"'(req_\w+)'", env["token"]).group(1)
    login = send_insomnia(by_id[login_id])
    assert login.status_code == 200
    me = next(r for r in by_id.values() if r["url"].endswith("/me"))
    r = send_insomnia(me, token=login.json()["access_token"])
    assert r.status_code == 200 and r.json()["username"] == env["username"]
