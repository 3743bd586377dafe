"""Settings: every ``KNAS_*`` variable in one object, documented in one README table, a bad value
named in one line; and importing the modules touches neither the database nor the disk."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from knas_core.errors import InputError
from knas_core.settings import Settings, SettingsError, env_name, get_settings, settings_from

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
ROW = re.compile(r"^\| `(KNAS_[A-Z_]+)` \| (.*?) \|")


def _readme_rows() -> dict[str, str]:
    """``{variable: default cell}`` of the README's Configuration table."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = [ROW.match(line) for line in section.splitlines()]
    return {m.group(1): m.group(2) for m in rows if m}


def test_every_setting_is_in_the_one_readme_table():
    rows = _readme_rows()
    assert sorted(rows) == sorted(env_name(name) for name in Settings.model_fields)
    lines = README.read_text(encoding="utf-8").splitlines()
    assert sum(bool(ROW.match(line)) for line in lines) == len(rows), "one table of variables, not several"
    for name, field in Settings.model_fields.items():
        assert field.description, f"{name} has no description"
        default = field.default
        if isinstance(default, bool) or default in (None, ()):
            continue
        shown = f"{default:g}" if isinstance(default, float) else str(default)
        assert f"`{shown}`" in rows[env_name(name)], (name, rows[env_name(name)])


def test_only_the_settings_module_reads_knas_variables():
    reads = re.compile(r"""(environ\.get\(|environ\[|getenv\()\s*["']KNAS_""")
    offenders = []
    for package in ("knas_core", "knas_cli", "db", "tasks", "app"):
        for path in (ROOT / package).rglob("*.py"):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if reads.search(line) and not re.search(r"environ\[[^]]+\]\s*=[^=]", line):  # a write
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, offenders


@pytest.mark.parametrize("name, value, message", [
    ("KNAS_MAX_ATTEMPTS", "x", "KNAS_MAX_ATTEMPTS: expected a whole number >= 1, got 'x'"),
    ("KNAS_DISPATCH_WINDOW", "0", "KNAS_DISPATCH_WINDOW: expected a whole number >= 1, got '0'"),
    ("KNAS_VISIBILITY_TIMEOUT", "1.5", "KNAS_VISIBILITY_TIMEOUT: expected a whole number >= 1, got '1.5'"),
    ("KNAS_SWEEP_SECONDS", "-1", "KNAS_SWEEP_SECONDS: expected a number >= 0, got '-1'"),
    ("KNAS_TORCH_THREADS", "many", "KNAS_TORCH_THREADS: expected a whole number >= 1, got 'many'"),
    ("KNAS_READ_ONLY", "maybe", "KNAS_READ_ONLY: expected 1, true, yes or on (or 0, false, no, off), "
                                "got 'maybe'"),
])
def test_a_bad_value_names_its_variable(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        get_settings()
    assert str(info.value) == message
    assert isinstance(info.value, InputError)
    with pytest.raises(SettingsError, match=re.escape(message)):
        settings_from({name: value})


def test_the_command_line_shows_a_bad_value_in_one_line(monkeypatch, capsys):
    from knas_cli.main import main

    monkeypatch.setenv("KNAS_MAX_ATTEMPTS", "x")
    assert main(["status", "1"]) == 2
    line = "knas: error: KNAS_MAX_ATTEMPTS: expected a whole number >= 1, got 'x'\n"
    assert capsys.readouterr().err == line


def test_settings_are_read_once_and_again_when_a_variable_changes(monkeypatch):
    monkeypatch.setenv("KNAS_DISPATCH_WINDOW", "7")
    first = get_settings()
    assert first.dispatch_window == 7 and get_settings() is first
    monkeypatch.setenv("KNAS_DISPATCH_WINDOW", "2")
    assert get_settings().dispatch_window == 2
    monkeypatch.setenv("KNAS_DISPATCH_WINDOW", "")  # empty: unset
    assert get_settings().dispatch_window == 4
    monkeypatch.delenv("KNAS_DISPATCH_WINDOW")
    assert get_settings().dispatch_window == 4


def test_typed_values(monkeypatch, tmp_path):
    monkeypatch.setenv("KNAS_PLUGINS", " a.b, c ,,")
    monkeypatch.setenv("KNAS_READ_ONLY", "yes")
    monkeypatch.setenv("KNAS_DATA_DIR", "~/data")
    monkeypatch.setenv("KNAS_SWEEP_SECONDS", "0")
    s = get_settings()
    assert s.plugins == ("a.b", "c") and s.read_only is True and s.sweep_seconds == 0
    assert s.data_dir == Path.home() / "data"
    assert settings_from({}).read_only is False and settings_from({"KNAS_LAB_TOKEN": ""}).lab_token is None


def test_the_state_dir_default_is_written_once(monkeypatch, tmp_path):
    from knas_core.discovery.run import default_cache_dir
    from tasks import settings as worker_settings

    for name in ("KNAS_STATE_DIR", "KNAS_TENSOR_CACHE", "KNAS_BROKER_URL", "KNAS_RESULT_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    assert Settings.model_fields["state_dir"].default == Path(".knas")
    assert default_cache_dir() == Path(".knas") / "tensor-cache"
    state = tmp_path / "state"
    monkeypatch.setenv("KNAS_STATE_DIR", str(state))
    assert default_cache_dir() == state / "tensor-cache"
    assert worker_settings.broker_url() == f"sqla+sqlite:///{state / 'broker.sqlite'}"
    assert worker_settings.result_backend() == f"db+sqlite:///{state / 'results.sqlite'}"
    assert worker_settings.checkpoint_dir() == state / "checkpoints"
    monkeypatch.setenv("KNAS_TENSOR_CACHE", str(tmp_path / "tensors"))
    assert default_cache_dir() == tmp_path / "tensors"


# --- importing touches nothing ------------------------------------------------------------------

MODULES = ["tasks.celery_app", "tasks.search", "tasks.discovery", "tasks.api", "tasks.common",
           "tasks.settings", "tasks.preflight", "tasks.schema", "db.session", "db.models", "db.migrate",
           "db.repository", "db.queries", "db.discovery", "app.views.searches", "app.views.detail",
           "app.views.correlation", "app.views.architecture", "app.views.newsearch", "app.views.access",
           "app.views.proxy_lab", "app.views.scores", "app.ui", "knas_cli.main"]
PROBE = """
import importlib, sys
from sqlalchemy import event
from sqlalchemy.pool import Pool
connections = []
event.listen(Pool, "connect", lambda *args: connections.append(args))
for name in sys.argv[1:]:
    importlib.import_module(name)
from db import session
assert not connections and not session._ENGINES, (connections, list(session._ENGINES))
print("imported", len(sys.argv) - 1)
"""


@pytest.mark.parametrize("url", [
    "sqlite:////nonexistent-dir/x.db",                              # no such folder
    "sqlite:///{tmp}/empty.db",                                     # a database without tables
    "postgresql+psycopg://knas:secret@127.0.0.1:1/knas",            # nothing listens there
])
def test_importing_touches_no_database_and_creates_no_file(tmp_path, url):
    work = tmp_path / "work"
    work.mkdir()
    if "{tmp}" in url:
        import sqlite3

        sqlite3.connect(tmp_path / "empty.db").close()
        url = url.format(tmp=tmp_path)
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("KNAS_")}
    env.update({"KNAS_DATABASE_URL": url, "PYTHONPATH": str(ROOT)})
    proc = subprocess.run([sys.executable, "-c", PROBE, *MODULES], cwd=work, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == f"imported {len(MODULES)}"
    assert list(work.iterdir()) == [], "an import created files (e.g. the .knas state folder)"
    assert not Path("/nonexistent-dir").exists()
    assert "discovered proxies not loaded" not in proc.stderr
