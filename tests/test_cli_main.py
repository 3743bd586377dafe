"""``knas_cli.main``: exit statuses by kind of failure, every command's options, and a start-up
that imports no heavy library.

In-process (``main([...])``) where possible: a subprocess of ``knas`` costs seconds of start-up.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from knas_cli import main as cli
from knas_cli.errors import UsageError
from knas_core.errors import ConfigError, DataFileError, InputError


def _failing(exc: BaseException):
    def run(args: object) -> int:
        raise exc

    return run


@pytest.mark.parametrize("exc", [
    UsageError("--thing must be positive"), InputError("bad input"), ConfigError("samples: too many"),
    DataFileError("scores.jsonl:2: not valid JSON"), FileNotFoundError("no such file: x.yaml"),
    ConnectionError("cannot reach the broker"),
])
def test_a_user_error_exits_2_with_its_message(monkeypatch, capsys, exc):
    monkeypatch.setattr("knas_cli.workers.run_status", _failing(exc))
    assert cli.main(["status", "1"]) == 2
    err = capsys.readouterr().err
    assert err == f"knas: error: {exc}\n"


def test_a_bare_value_error_is_an_internal_error(monkeypatch, capsys):
    monkeypatch.setattr("knas_cli.workers.run_status", _failing(ValueError("boom")))
    assert cli.main(["status", "1"]) == 1
    assert capsys.readouterr().err == "knas: error: ValueError: boom (rerun with --debug for details)\n"


def test_debug_shows_the_traceback(monkeypatch, capsys):
    monkeypatch.setattr("knas_cli.workers.run_status", _failing(ValueError("boom")))
    assert cli.main(["--debug", "status", "1"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.rstrip().endswith("(rerun with --debug for details)")


@pytest.mark.parametrize("path, name", [
    ("knas_core.registry", "UnknownNameError"), ("knas_core.spaces.base", "InvalidArchitectureError"),
    ("knas_core.paths", "DataNotFoundError"), ("knas_core.device", "DeviceUnavailableError"),
    ("knas_core.groundtruth", "BenchmarkFileError"), ("knas_core.discovery.language", "ProgramError"),
    ("tasks.schema", "ConfigError"), ("tasks.api", "BrokerUnavailableError"),
    ("db.session", "DatabaseFileGoneError"),
])
def test_the_user_facing_errors_are_input_errors(path, name):
    cls = getattr(__import__(path, fromlist=[name]), name)
    assert issubclass(cls, InputError)


@pytest.mark.parametrize("call", [
    lambda: __import__("knas_core.device", fromlist=["x"]).resolve_device("tpu"),
    lambda: __import__("knas_core.data", fromlist=["x"]).load_source("cifar10", source="nope"),
    lambda: __import__("knas_core.groundtruth", fromlist=["x"]).canonical_dataset("mnist"),
    lambda: __import__("knas_core.training", fromlist=["x"]).TrainConfig(epochs=0),
])
def test_a_bad_option_value_in_the_library_is_a_config_error(call):
    with pytest.raises(ConfigError):  # still a ValueError for callers that catch that
        call()


def test_a_malformed_score_file_is_a_data_file_error(tmp_path):
    from knas_core.evaluation import read_records

    path = tmp_path / "bad.jsonl"
    path.write_text("not json\n")
    with pytest.raises(DataFileError, match="bad.jsonl:1: not valid JSON"):
        list(read_records(path))


@pytest.mark.parametrize("name", list(cli.COMMANDS))
def test_every_command_adds_its_options_when_chosen(name, capsys):
    """The table and the command modules agree: each command's help shows its own options."""
    with pytest.raises(SystemExit) as stop:
        cli.main([name, "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: knas {name} ")


def test_the_command_list_shows_every_command_with_its_help(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = " ".join(capsys.readouterr().out.split())  # help lines wrap at the terminal's width
    for name, command in cli.COMMANDS.items():
        assert f" {name} " in out and command.help.replace("%%", "%") in out


@pytest.mark.parametrize("argv", [[], ["status", "--help"], ["cancel", "--help"], ["--version"]])
def test_the_quick_commands_load_no_heavy_library(argv):
    """``knas --help``, ``--version``, ``status`` and ``cancel`` start fast only while they
    import none of these (timed in benchmarks/startup.py; this guards it without a clock).
    ``status``/``cancel`` of a search need SQLAlchemy, and the scoring stack only for a search
    without a result; their parsers need neither."""
    heavy = ["torch", "pandas", "scipy", "numpy", "sqlalchemy", "celery", "kombu", "streamlit",
             "pydantic", "tqdm", "yaml", "knas_core.proxies", "tasks", "db"]
    code = ("import json, sys\nimport knas_cli.main as m\n"
            f"try:\n    m.main({argv!r}) if {argv!r} else m.build_parser()\nexcept SystemExit:\n    pass\n"
            f"print(json.dumps([n for n in {heavy!r} if n in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.splitlines()[-1]) == []


@pytest.mark.parametrize("proxies, message", [
    ("synflow=x,eznas", "'synflow=x': the weight 'x' is not a number"),
    ("synflow=,eznas", "write a proxy as NAME or NAME=WEIGHT"),
    ("synflow=2", "need an ensemble"),
    ("synflow,eznas=0", "eznas: a weight must be > 0"),
    ("synflow,eznas,params=2,knas", None),
])
def test_search_ensemble_weights_from_the_proxies_option(proxies, message):
    from knas_cli.fields import parse_config
    from knas_cli.search import FLAGS, config_from_args
    from knas_core.errors import InputError
    from knas_core.search.config import SearchConfig

    args = cli.build_parser().parse_args(["search", "--proxies", proxies])
    if message is None:
        cfg = parse_config(SearchConfig, config_from_args(args), FLAGS)
        assert cfg.proxy_weights() == {"synflow": 1.0, "eznas": 1.0, "params": 2.0, "knas": 1.0}
        return
    with pytest.raises(InputError, match=message) as caught:
        parse_config(SearchConfig, config_from_args(args), FLAGS)
    assert "--proxies" in str(caught.value)


def test_search_defaults_to_the_best_measured_ensemble():
    """``knas search`` with no options scores with the ensemble the benchmark measured best
    (issue 15, item 5); the KNAS paper's score stays one option away."""
    from knas_cli.search import DEFAULT_PROXIES, config_from_args
    from knas_core.search.ensemble import DEFAULT_ENSEMBLE

    args = cli.build_parser().parse_args(["search"])
    raw = config_from_args(args)
    assert raw["proxies"] == list(DEFAULT_ENSEMBLE) == ["synflow", "eznas", "params"]
    assert "weights" not in raw and DEFAULT_PROXIES == "synflow,eznas,params"  # equal weights
    assert raw["samples"] == 100 and raw["strategy"] == "knas"
    paper = config_from_args(cli.build_parser().parse_args(
        ["search", "--proxies", "knas", "--samples", "300"]))
    assert paper["proxy"] == "knas" and "proxies" not in paper and paper["samples"] == 300
