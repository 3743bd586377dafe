"""Settings: every ``KNAS_*`` variable in one object, documented in one README table, a bad value
named in one line."""

from __future__ import annotations

import re
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
