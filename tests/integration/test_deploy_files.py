"""The deployment files: systemd units, the crontab line, the container files and the Render Blueprint.

No Docker engine runs here, so the image is never built: these tests check what can be checked without one —
`systemd-analyze verify` on the units, the crontab syntax, the YAML files' structure, the entrypoint's dispatch,
and that every command line the files ship is one the real CLI accepts.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from camsync.settings import settings_vars

ROOT = Path(__file__).resolve().parents[2]
CRONTAB = ROOT / "deploy" / "cron" / "camsync"
SYSTEMD = ROOT / "deploy" / "systemd"
ENTRYPOINT = ROOT / "deploy" / "docker" / "entrypoint.sh"
INSTALLED_CAMSYNC = "/usr/local/bin/camsync"
CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
SETTING_NAMES = {spec.env for _name, spec, _default in settings_vars()}
SECRET_NAMES = {spec.env for _name, spec, _default in settings_vars() if spec.secret}


# --- a minimal YAML reader (PyYAML is not a dependency): block mappings and sequences, quoted and flow scalars --


def _strip_comment(line: str) -> str:
    if line.lstrip().startswith("#"):
        return ""
    quote = None
    for index, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and line[index - 1] in " \t":
            return line[:index].rstrip()
    return line.rstrip()


def _scalar(text: str) -> Any:
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        inner = text[1:-1].strip()
        return [_scalar(part) for part in inner.split(",")] if inner else []
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text[:1] in ("{", "&", "*", "|", ">", "!"):
        raise ValueError(f"unsupported YAML: {text!r}")
    return text


_KEY = re.compile(r"^([A-Za-z0-9_.-]+):(?:\s+(.*))?$")


def _block(lines: list[tuple[int, str]], i: int, indent: int) -> tuple[Any, int]:
    if lines[i][1].startswith("- ") or lines[i][1] == "-":
        return _sequence(lines, i, indent)
    return _mapping(lines, i, indent)


def _mapping(lines: list[tuple[int, str]], i: int, indent: int) -> tuple[dict[str, Any], int]:
    result: dict[str, Any] = {}
    while i < len(lines) and lines[i][0] == indent and not lines[i][1].startswith("-"):
        match = _KEY.match(lines[i][1])
        if not match:
            raise ValueError(f"not a `key: value` line: {lines[i][1]!r}")
        key, rest = match.group(1), (match.group(2) or "").strip()
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        i += 1
        if rest:
            result[key] = _scalar(rest)
        elif i < len(lines) and (lines[i][0] > indent or (lines[i][0] == indent and lines[i][1].startswith("- "))):
            result[key], i = _block(lines, i, lines[i][0])
        else:
            result[key] = None
    if i < len(lines) and lines[i][0] > indent:
        raise ValueError(f"unexpected indentation: {lines[i][1]!r}")
    return result, i


def _sequence(lines: list[tuple[int, str]], i: int, indent: int) -> tuple[list[Any], int]:
    items: list[Any] = []
    while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- "):
        content = lines[i][1][2:]
        child = indent + 2 + len(content) - len(content.lstrip())
        if _KEY.match(content.strip()):
            lines[i] = (child, content.strip())
            item, i = _mapping(lines, i, child)
            items.append(item)
        else:
            items.append(_scalar(content))
            i += 1
    return items, i


def mini_yaml(text: str) -> Any:
    """Parse the YAML subset the deployment files use; anything else raises ValueError."""
    lines = []
    for raw in text.splitlines():
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise ValueError("tab indentation")
        line = _strip_comment(raw)
        if line.strip():
            lines.append((len(line) - len(line.lstrip()), line.strip()))
    value, end = _block(lines, 0, 0)
    if end != len(lines):
        raise ValueError(f"unparsed from: {lines[end][1]!r}")
    return value


def as_text(value: Any) -> Any:
    """Scalars as strings, so that PyYAML's ints and the mini reader's strings compare equal."""
    if isinstance(value, dict):
        return {key: as_text(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_text(item) for item in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if value is None else str(value)


def load_yaml(path: Path) -> Any:
    """PyYAML when it is installed (checked against the mini reader), else the mini reader."""
    text = path.read_text()
    mini = as_text(mini_yaml(text))
    try:
        import yaml
    except ImportError:
        return mini
    full = as_text(yaml.safe_load(text))
    assert full == mini
    return full


def test_mini_yaml_reads_mappings_sequences_and_scalars() -> None:
    text = """
# a comment
top:
  name: "quoted # not a comment"   # a comment
  count: 3
  flow: ["a", b]
  empty: []
  items:
    - plain:/with:colons
    - key: one
      other: 'two'
  after:
list:
- x
"""
    assert mini_yaml(text) == {
        "top": {
            "name": "quoted # not a comment",
            "count": "3",
            "flow": ["a", "b"],
            "empty": [],
            "items": ["plain:/with:colons", {"key": "one", "other": "two"}],
            "after": None,
        },
        "list": ["x"],
    }


@pytest.mark.parametrize("bad", ["a: 1\n  b: 2\n", "a: 1\na: 2\n", "a: |\n  text\n", "- a\nb: 1\n"])
def test_mini_yaml_refuses_what_it_does_not_understand(bad: str) -> None:
    with pytest.raises(ValueError):
        mini_yaml(bad)


# --- the crontab line -------------------------------------------------------------------------------------------


def _cron_field_ok(field: str, low: int, high: int) -> bool:
    for part in field.split(","):
        match = re.fullmatch(r"(?:\*|(\d+)(?:-(\d+))?)(?:/(\d+))?", part)
        if not match:
            return False
        first, last, step = match.groups()
        bounds = [int(n) for n in (first, last) if n is not None]
        if any(n < low or n > high for n in bounds) or (step is not None and int(step) == 0):
            return False
    return True


def crontab_entries(text: str) -> tuple[dict[str, str], list[list[str]]]:
    """(environment lines, jobs as [5 time fields, user, command]) of an /etc/cron.d file."""
    env: dict[str, str] = {}
    jobs = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        assignment = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)", line)
        if assignment:
            env[assignment.group(1)] = assignment.group(2)
            continue
        jobs.append(line.split(None, 6))
    return env, jobs


def shipped_cron_job() -> list[str]:
    """The one job line of deploy/cron/camsync, as [5 time fields, user, command]."""
    _env, jobs = crontab_entries(CRONTAB.read_text())
    assert len(jobs) == 1, jobs
    return jobs[0]


def cron_command_args(command: str) -> list[str]:
    """camsync's arguments in the crontab command (without the program and the output redirection)."""
    words = shlex.split(command)
    assert words[0] == INSTALLED_CAMSYNC
    return words[1 : words.index(">>")]


def test_crontab_line_parses_and_calls_run_all_from_cron() -> None:
    text = CRONTAB.read_text()
    assert "." not in CRONTAB.name, "cron ignores /etc/cron.d files whose name has a dot"
    assert text.endswith("\n"), "cron ignores a last line without a newline"
    env, _jobs = crontab_entries(text)
    assert env["SHELL"] == "/bin/sh"
    assert "/usr/local/bin" in env["PATH"].split(":")
    job = shipped_cron_job()
    assert len(job) == 7, "5 time fields, a user, a command"
    for value, (name, low, high) in zip(job[:5], CRON_FIELDS, strict=True):
        assert _cron_field_ok(value, low, high), f"bad {name} field {value!r}"
    assert job[:5] == ["*/5", "*", "*", "*", "*"]
    assert job[5] == "camsync"
    args = cron_command_args(job[6])
    assert args[args.index("--trigger") + 1] == "cron"
    assert args.index("--trigger") < args.index("run-all")
    assert args[args.index("--env-file") + 1] == "/etc/camsync/camsync.env"
    assert job[6].endswith(">> /var/log/camsync/camsync.log 2>&1")


@pytest.mark.parametrize(
    ("field", "ok"), [("*/5", True), ("0-59/15", True), ("1,2,30", True), ("60", False), ("*/0", False), ("x", False)]
)
def test_cron_field_check_tells_good_from_bad(field: str, ok: bool) -> None:
    assert _cron_field_ok(field, 0, 59) is ok


# --- systemd ------------------------------------------------------------------------------------------------------


def unit_settings(path: Path) -> dict[str, dict[str, list[str]]]:
    """Section -> key -> every value of the key (systemd allows a key more than once)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{path.name}: a setting outside any section: {line}"
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian package `systemd`)")
    camsync = Path(sys.executable).with_name("camsync")
    assert camsync.is_file(), f"{camsync} is missing: run `make venv`"
    units_dir = tmp_path / "units"
    units_dir.mkdir()
    for unit in SYSTEMD.iterdir():
        # verify wants ExecStart's program to exist: point it at this checkout's camsync.
        (units_dir / unit.name).write_text(unit.read_text().replace(INSTALLED_CAMSYNC, str(camsync)))
    units = sorted(str(path) for path in units_dir.iterdir())
    assert len(units) == 3
    result = subprocess.run(
        [analyze, "verify", *units], capture_output=True, text=True, timeout=60, env={**os.environ, "SYSTEMD_PAGER": ""}
    )
    # verify reports unknown keys and bad values as warnings with exit 0: any output is a finding.
    assert result.returncode == 0, result.stderr
    assert (result.stdout + result.stderr).strip() == ""


def test_oneshot_service_and_timer_run_all_every_five_minutes() -> None:
    service = unit_settings(SYSTEMD / "camsync.service")["Service"]
    assert service["Type"] == ["oneshot"]
    assert shlex.split(service["ExecStart"][0])[0] == INSTALLED_CAMSYNC
    assert "run-all" in service["ExecStart"][0]
    assert "75" in service["SuccessExitStatus"][0].split()
    timer = unit_settings(SYSTEMD / "camsync.timer")
    assert timer["Timer"]["Unit"] == ["camsync.service"]
    assert timer["Timer"]["OnCalendar"] == ["*:0/5"]
    assert timer["Install"]["WantedBy"] == ["timers.target"]


def test_worker_service_restarts_stops_on_sigterm_and_is_hardened() -> None:
    service = unit_settings(SYSTEMD / "camsync-worker.service")["Service"]
    assert shlex.split(service["ExecStart"][0])[1:] == ["worker"]
    assert service["Restart"] == ["on-failure"]
    assert service["KillSignal"] == ["SIGTERM"]
    assert service["TimeoutStopSec"] == ["15"]
    assert service["NoNewPrivileges"] == ["yes"]
    assert service["ProtectSystem"] == ["strict"]
    assert service["User"] == ["camsync"]
    assert service["EnvironmentFile"] == ["/etc/camsync/camsync.env"]
    store = service["Environment"][0].partition("=")[2]
    assert store.startswith("sqlite:////var/lib/camsync/")
    assert "/var/lib/camsync" in service["ReadWritePaths"][0].split()
    assert service["ReadOnlyPaths"][0].lstrip("-") == "/data"


# --- the container ------------------------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", ROOT.joinpath("Dockerfile").read_text())
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def dockerignore_allows(path: str) -> bool:
    """Whether a path reaches the build context under .dockerignore's `*` then `!path` allow-list."""
    lines = [line.strip() for line in ROOT.joinpath(".dockerignore").read_text().splitlines()]
    rules = [line for line in lines if line and not line.startswith("#")]
    assert rules[0] == "*", "the .dockerignore is an allow-list"
    allowed = [rule[1:] for rule in rules if rule.startswith("!")]
    return any(path == rule or path.startswith(rule + "/") for rule in allowed)


def test_dockerfile_is_slim_non_root_with_a_store_volume_and_the_entrypoint() -> None:
    steps = dockerfile_instructions()
    args = {word: [rest for w, rest in steps if w == word] for word, _ in steps}
    assert args["FROM"] == ["python:3.11-slim"]
    assert args["USER"] == ["camsync"]
    assert args["VOLUME"] == ['["/var/lib/camsync"]']
    assert "DATABASE_URL=sqlite:////var/lib/camsync/camsync.db" in " ".join(args["ENV"])
    assert "APP_DB_URL=sqlite:////data/camwater.db" in " ".join(args["ENV"])
    assert any(re.search(r"\bpip install \.(\s|$)", run) for run in args["RUN"])
    copies = {}
    for rest in args["COPY"]:
        words = [word for word in rest.split() if not word.startswith("--")]
        for source in words[:-1]:
            copies[source] = words[-1]
            assert (ROOT / source).exists(), f"COPY {source}: missing from the repository"
            assert dockerignore_allows(source), f"COPY {source}: excluded from the build context by .dockerignore"
    assert copies["deploy/cron/camsync"] == "/etc/cron.d/camsync"
    entrypoint = copies["deploy/docker/entrypoint.sh"]
    assert args["ENTRYPOINT"] == [f'["{entrypoint}"]']


def test_compose_runs_the_worker_with_the_app_db_read_only_and_an_optional_postgres() -> None:
    compose = load_yaml(ROOT / "docker-compose.yml")
    camsync = compose["services"]["camsync"]
    assert camsync["build"] == "."
    assert camsync["stop_signal"] == "SIGTERM"
    assert "camsync-store:/var/lib/camsync" in camsync["volumes"]
    app_db = [volume for volume in camsync["volumes"] if volume.endswith(":/data:ro")]
    assert len(app_db) == 1, "the PAY+ app DB folder is mounted read-only at /data"
    assert camsync["environment"]["APP_DB_URL"].endswith("sqlite:////data/camwater.db}")
    assert set(camsync["environment"]) <= SETTING_NAMES
    assert camsync["depends_on"]["postgres"]["required"] == "false"
    postgres = compose["services"]["postgres"]
    assert postgres["profiles"] == ["postgres"]
    assert "ports" not in postgres, "the store is not published outside the compose network"
    assert set(compose["volumes"]) == {"camsync-store", "postgres-data"}


def test_render_blueprint_is_a_background_worker_with_its_database_and_secrets_unset() -> None:
    blueprint = load_yaml(ROOT / "render.yaml")
    (worker,) = blueprint["services"]
    assert worker["type"] == "worker"
    assert worker["runtime"] in ("python", "docker")
    assert worker["buildCommand"] == "pip install ."
    assert worker["startCommand"] == "camsync worker"
    env = {entry["key"]: entry for entry in worker["envVars"]}
    assert set(env) - {"PYTHON_VERSION"} <= SETTING_NAMES
    database = env["DATABASE_URL"]["fromDatabase"]
    assert database["property"] == "connectionString"
    assert database["name"] in {db["name"] for db in blueprint["databases"]}
    for key in SECRET_NAMES & set(env):
        assert env[key].get("sync") == "false", f"{key} is a secret: `sync: false`"
    for key, entry in env.items():
        if entry.get("sync") == "false":
            assert "value" not in entry, f"{key}: a value in the file would defeat `sync: false`"


# --- the entrypoint -------------------------------------------------------------------------------------------------


def test_entrypoint_passes_bash_n() -> None:
    result = subprocess.run(["bash", "-n", str(ENTRYPOINT)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert os.access(ENTRYPOINT, os.X_OK), "the entrypoint must be executable"


@pytest.fixture
def echo_camsync(tmp_path: Path) -> Path:
    """A stand-in for camsync that prints the arguments it was given."""
    fake = tmp_path / "camsync"
    fake.write_text('#!/bin/sh\necho "$@"\n')
    fake.chmod(0o755)
    return fake


def run_entrypoint(
    fake: Path, *args: str, mode: str | None = None, prefix: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CAMSYNC_BIN": str(fake)}
    if mode is not None:
        env["SYNC_MODE"] = mode
    return subprocess.run(
        [*prefix, str(ENTRYPOINT), *args], capture_output=True, text=True, env=env, timeout=30, cwd="/"
    )


@pytest.mark.parametrize(
    ("mode", "args", "expected"),
    [
        (None, (), "worker"),
        ("daemon", (), "worker"),
        ("once", (), "--trigger cron run-all"),
        ("cron", ("doctor",), "doctor"),
        ("daemon", ("camsync", "runs", "list", "--json"), "runs list --json"),
    ],
)
def test_entrypoint_dispatches_on_sync_mode_and_passes_arguments_through(
    echo_camsync: Path, mode: str | None, args: tuple[str, ...], expected: str
) -> None:
    result = run_entrypoint(echo_camsync, *args, mode=mode)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


def test_entrypoint_once_mode_records_one_cron_run_all_in_the_ledger(tmp_path: Path) -> None:
    camsync = Path(sys.executable).with_name("camsync")
    store = tmp_path / "store.db"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "CAMSYNC_BIN": str(camsync),
        "SYNC_MODE": "once",
        "DATABASE_URL": f"sqlite:///{store}",
        "APP_DB_URL": f"sqlite:///{tmp_path / 'missing-app.db'}",
    }
    result = subprocess.run([str(ENTRYPOINT)], capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    with closing(sqlite3.connect(store)) as conn:
        runs = conn.execute('SELECT job, "trigger", status FROM sync_runs').fetchall()
    assert runs == [("run-all", "cron", "SUCCESS")]


def test_entrypoint_refuses_an_unknown_sync_mode(echo_camsync: Path) -> None:
    result = run_entrypoint(echo_camsync, mode="hourly")
    assert result.returncode == 4
    assert "SYNC_MODE must be daemon, cron or once" in result.stderr
    assert result.stdout == ""


def test_entrypoint_cron_mode_needs_root(echo_camsync: Path) -> None:
    prefix: tuple[str, ...] = ()
    if os.geteuid() == 0:  # as root the cron mode would go on to start cron: drop to nobody
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root and setpriv (util-linux) is missing to drop privileges")
        prefix = (setpriv, "--reuid=65534", "--regid=65534", "--clear-groups")
    result = run_entrypoint(echo_camsync, mode="cron", prefix=prefix)
    assert result.returncode == 4
    assert "must run as root" in result.stderr


def test_entrypoint_and_crontab_agree_on_the_env_file_and_the_log() -> None:
    script = ENTRYPOINT.read_text()
    command = shipped_cron_job()[6]
    env_file = re.search(r"^ENV_FILE=(\S+)$", script, re.M)
    log_dir = re.search(r"^LOG_DIR=(\S+)$", script, re.M)
    assert env_file and log_dir
    assert f"--env-file {env_file.group(1)} " in command
    assert f">> {log_dir.group(1)}/camsync.log " in command


# --- every shipped command line is one the CLI accepts --------------------------------------------------------------


def shipped_command_lines() -> dict[str, list[str]]:
    """camsync's arguments in every command line the deployment files ship."""
    lines = {"cron": cron_command_args(shipped_cron_job()[6])}
    for unit in ("camsync.service", "camsync-worker.service"):
        lines[unit] = shlex.split(unit_settings(SYSTEMD / unit)["Service"]["ExecStart"][0])[1:]
    for mode, call in re.findall(r'^\s*(\w+)\) exec "\$CAMSYNC" (.+?) ;;$', ENTRYPOINT.read_text(), re.M):
        lines[f"entrypoint {mode}"] = shlex.split(call)
    lines["render"] = shlex.split(load_yaml(ROOT / "render.yaml")["services"][0]["startCommand"])[1:]
    return lines


def test_every_shipped_command_line_is_accepted_by_the_cli(run_cli: Any) -> None:
    lines = shipped_command_lines()
    assert set(lines) == {
        "cron",
        "camsync.service",
        "camsync-worker.service",
        "entrypoint daemon",
        "entrypoint once",
        "render",
    }
    for where, args in lines.items():
        result = run_cli(*args, "--help")
        assert result.exit_code == 0, f"{where}: camsync {' '.join(args)}: {result.stderr}"
        assert "Usage:" in result.stdout


# --- the deployment docs name only commands that exist --------------------------------------------------------------

DOCS = (ROOT / "docs" / "deploy.md", ROOT / "docs" / "runbook.md")
GLOBAL_WITH_VALUE = {"--env-file", "--log-format", "--trigger"}
GLOBAL_FLAGS = {"-v", "--verbose", "-q", "--quiet"}


def code_in(markdown: str) -> list[str]:
    """The fenced blocks and inline code spans of a Markdown text (quoted error messages left out)."""
    fences = re.findall(r"^```[^\n]*\n(.*?)^```", markdown, re.S | re.M)
    prose = re.sub(r"^```[^\n]*\n.*?^```", "", markdown, flags=re.S | re.M)
    spans = [a or b for a, b in re.findall(r"``(.+?)``|`([^`]+)`", prose, re.S)]
    return fences + [span.replace("\n", " ") for span in spans if not span.startswith("Error:")]


def camsync_calls(code: str) -> list[list[str]]:
    """The words after each `camsync` program (or compose service) in a piece of code, global options skipped."""
    calls = []
    for line in code.replace("\\\n", " ").splitlines():
        words = line.split()
        comment = next((i for i, word in enumerate(words) if word.startswith("#")), len(words))
        calls.extend(_calls_in_line(words[:comment]))
    return calls


def _calls_in_line(words: list[str]) -> list[list[str]]:
    calls = []
    for index, word in enumerate(words):
        if word != "camsync" and not word.endswith("/bin/camsync"):
            continue
        rest, call = words[index + 1 :], []
        while rest and rest[0].startswith("-"):
            if rest[0] in GLOBAL_WITH_VALUE:
                rest = rest[2:]
            elif rest[0] in GLOBAL_FLAGS:
                rest = rest[1:]
            else:
                break
        if rest and rest[0].startswith("-"):
            continue  # another program's option (`install -o camsync -g …`): not a camsync call
        for item in rest:
            if not re.fullmatch(r"[a-z][a-z-]*", item):
                break
            call.append(item)
        if call:
            calls.append(call)
    return calls


def command_path_exists(words: list[str]) -> bool:
    """Whether `camsync WORDS…` starts with a command of the real CLI (later words may be its arguments)."""
    import typer.main

    from camsync.cli import app

    command: Any = typer.main.get_command(app)
    matched = 0
    for word in words:
        subcommands = getattr(command, "commands", None)
        if subcommands is None or word not in subcommands:
            break
        command = subcommands[word]
        matched += 1
    return matched > 0 and getattr(command, "commands", None) is None


def test_camsync_calls_are_found_in_code_and_prose_is_left_alone() -> None:
    markdown = (
        "The `camsync` user runs `camsync --env-file /e doctor` and ``Error: camsync needs 3. Run `x` ``, then\n"
        "`camsync luna\nstatus`.\n"
        "```bash\nsudo install -o camsync -g camsync /var/log/camsync\n"
        "docker compose run --rm camsync state import-json /data/state.json   # camsync in a container\n"
        "/usr/local/bin/camsync --trigger cron \\\n  run-all\n```\n"
    )
    calls = [call for code in code_in(markdown) for call in camsync_calls(code)]
    assert calls == [["state", "import-json"], ["run-all"], ["doctor"], ["luna", "status"]]
    assert command_path_exists(["luna", "replay", "TXN"])
    assert not command_path_exists(["luna"])
    assert not command_path_exists(["nonsense"])


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.name)
def test_every_command_the_deploy_docs_name_exists(doc: Path) -> None:
    calls = [call for code in code_in(doc.read_text()) for call in camsync_calls(code)]
    assert len(calls) >= 5
    missing = sorted({" ".join(call) for call in calls if not command_path_exists(call)})
    assert missing == [], f"{doc.name} names commands the CLI does not have"
