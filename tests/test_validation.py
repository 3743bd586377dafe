"""Input that used to be accepted and then failed later (on a worker, in SQLite, or never ended):
configs at submit, ``knas submit`` files, and the one-line errors of the ``knas`` commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from knas_core.paths import PACKAGE_DATA
from tasks.preflight import check_data_dir, preflight
from tasks.schema import ConfigError, validate_config

from .conftest import ARCH

ROOT = Path(__file__).resolve().parents[1]
KNAS = str(Path(sys.executable).with_name("knas"))
OTHER = "|nor_conv_1x1~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def knas(tmp: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    full = {**os.environ, "KNAS_DATABASE_URL": f"sqlite:///{tmp / 'knas.db'}",
            "KNAS_STATE_DIR": str(tmp / "state"), "PYTHONPATH": str(ROOT), **env}
    full.pop("KNAS_BROKER_URL", None)
    full.pop("KNAS_RESULT_BACKEND", None)
    return subprocess.run([KNAS, *args], capture_output=True, text=True, timeout=120, env=full, cwd=tmp)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("knas: error:"), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


# --- item 8: the config on its own ------------------------------------------------------------

@pytest.mark.parametrize("raw, fragment", [
    ({"seed": 2**70}, "seed: Input should be less than 2147483648"),
    ({"seed": -1}, "seed:"),
    ({"samples": True}, "samples: expected a whole number, got True"),
    ({"topk": False}, "topk: expected a whole number"),
    ({"model": {"C": True}}, "model.C: expected a whole number"),
    ({"strategy": "evolution", "strategy_options": {"population": -5}},
     "strategy_options: population: must be >= 1"),
    ({"strategy": "evolution", "strategy_options": {"tournament": True}},
     "strategy_options: tournament: expected a whole number"),
    ({"strategy": "nasi", "strategy_options": {"steps": 10**12}},
     "strategy_options: steps: must be >= 1 and <= 10000"),
    ({"strategy": "nasi", "strategy_options": {"steps": 2.5}},
     "strategy_options: steps: expected a whole number"),
    ({"strategy": "nasi", "strategy_options": {"tau": float("nan")}},
     "strategy_options: tau: expected a finite number, got nan"),
    ({"strategy": "nasi", "strategy_options": {"tau": 0}}, "strategy_options: tau: must be > 0"),
    ({"strategy": "nasi", "strategy_options": {"mu": float("inf")}},
     "strategy_options: mu: expected a finite"),
    ({"train_subset": 10**9}, "train_subset: at most 50,000 (the cifar10 training set)"),
    ({"proxies": ["synflow", "naswot", "synflow"]}, "proxies: 'synflow' listed more than once"),
    ({"archs": [ARCH, OTHER, " " + ARCH], "topk": 1}, "archs: item 2: the same architecture as item 0"),
])
def test_config_bounds_name_the_field(raw, fragment):
    with pytest.raises(ConfigError) as info:
        validate_config(raw)
    assert fragment in str(info.value)


def test_sane_values_still_pass():
    cfg = validate_config({"strategy": "nasi", "seed": 2**31 - 1, "train_subset": 50_000, "topk": 1,
                           "strategy_options": {"steps": 3.0, "tau": 0.5, "nu": None},
                           "proxies": ["synflow", "naswot"], "archs": [ARCH, OTHER]})
    assert cfg.strategy_options == {"steps": 3, "tau": 0.5, "nu": None}
    assert isinstance(cfg.strategy_options["steps"], int)
    assert validate_config({"dataset": "imagenet16-120", "train_subset": 100_000}).train_subset == 100_000


# --- item 8: the config against this machine ----------------------------------------------------

NO_DATA = "data_dir: no usable data under the given path"


@pytest.mark.parametrize("data_dir, extra", [
    ("/etc", {}),
    ("/definitely/missing", {}),
    ("/", {"data_source": "imagefolder"}),
    ("/", {"data_source": "imagefolder", "dataset": "cifar100"}),  # 100 classes: walks each, bounded
    ("/etc", {"data_source": "synthetic"}),
    ("/etc/passwd", {}),
])
def test_data_dir_without_usable_data_is_rejected_at_submit(data_dir, extra):
    from tasks.api import submit_search

    with pytest.raises(ConfigError) as info:
        submit_search({"data_dir": data_dir, **extra})  # before the broker or the database
    assert str(info.value).startswith(NO_DATA)


def test_the_message_does_not_say_whether_a_path_exists(tmp_path):
    """Missing, present but no data, and unreadable read the same: nothing to probe the server with."""
    empty = tmp_path / "empty"
    empty.mkdir()
    locked = tmp_path / "locked"
    (locked / "cifar-10-batches-py").mkdir(parents=True)
    locked.chmod(0)
    try:
        messages = set()
        for path in (tmp_path / "missing", empty, "/etc", locked if os.geteuid() else empty):
            with pytest.raises(ConfigError) as info:
                check_data_dir(validate_config({"data_dir": str(path)}))
            messages.add(str(info.value))
        assert len(messages) == 1 and str(tmp_path) not in messages.pop()
    finally:
        locked.chmod(0o755)


def test_usable_data_dirs_pass(tmp_path):
    check_data_dir(validate_config({"data_dir": str(PACKAGE_DATA)}))  # an npz subset and the table
    check_data_dir(validate_config({"data_dir": str(PACKAGE_DATA), "data_source": "synthetic"}))
    folder = tmp_path / "images"
    for label in ("cat", "dog"):
        (folder / label / "nested").mkdir(parents=True)
        (folder / label / "nested" / "a.PNG").write_bytes(b"")
    check_data_dir(validate_config({"data_dir": str(folder), "data_source": "imagefolder"}))
    (folder / "empty-class").mkdir()
    with pytest.raises(ConfigError, match=NO_DATA):  # torchvision's ImageFolder fails on it too
        check_data_dir(validate_config({"data_dir": str(folder), "data_source": "imagefolder"}))


def test_cuda_without_a_visible_gpu_is_a_warning(monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    [warning] = preflight(validate_config({"device": "cuda"}))
    assert warning.startswith("device: cuda requested but this machine sees no CUDA GPU")
    assert preflight(validate_config({"device": "auto"})) == []


# --- item 8: knas submit ---------------------------------------------------------------------

@pytest.mark.integration
def test_submit_rejects_a_key_given_twice(tmp_path):
    path = tmp_path / "search.yaml"
    path.write_text("samples: 5\ntopk: 2\nsamples: 7\n")
    line = one_error_line(knas(tmp_path, "submit", str(path)))
    assert "key 'samples' is given twice (line 3)" in line
    assert not (tmp_path / "knas.db").exists()  # rejected before the database is touched


def test_submit_keeps_yaml_merge_keys(tmp_path):
    from knas_cli.workers import _load_config

    path = tmp_path / "merge.yaml"
    path.write_text("base: &b {samples: 5, topk: 2}\nsearch:\n  <<: *b\n  topk: 3\n")
    assert _load_config(str(path))["search"] == {"samples": 5, "topk": 3}


@pytest.mark.integration
def test_submit_rejects_a_bad_data_dir_in_one_line(tmp_path):
    path = tmp_path / "search.yaml"
    path.write_text("samples: 5\ntopk: 2\ndata_dir: /etc\n")
    assert NO_DATA in one_error_line(knas(tmp_path, "submit", str(path)))
    assert not (tmp_path / "knas.db").exists()


@pytest.mark.integration
@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a GPU is present")
def test_submit_prints_the_device_warning_and_submits(tmp_path):
    path = tmp_path / "search.yaml"
    path.write_text("samples: 5\ntopk: 2\ndevice: cuda\n")
    assert knas(tmp_path, "db", "upgrade").returncode == 0
    proc = knas(tmp_path, "submit", str(path), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["id"] == 1
    assert "knas: warning: device: cuda requested but this machine sees no CUDA GPU" in proc.stderr


# --- item 10: a deleted SQLite file -----------------------------------------------------------

def test_a_deleted_or_replaced_sqlite_file_stops_every_session(tmp_path):
    import shutil

    from sqlalchemy import func, select

    from db import repository as repo
    from db.migrate import upgrade
    from db.models import Search
    from db.session import DatabaseFileGoneError, get_engine, session_scope

    path = tmp_path / "knas.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    with session_scope(url) as s:
        repo.create_search(s, validate_config({}).model_dump(mode="json"), "kept")
    get_engine(url).dispose()  # the last connection closes: the WAL is checkpointed into the file
    shutil.copy(path, tmp_path / "copy.db")
    gone = pytest.raises(DatabaseFileGoneError, match=f"the database file {path} was deleted or replaced")
    with gone, session_scope(url) as s:  # the file goes while a worker holds a session: no commit
        repo.create_search(s, validate_config({}).model_dump(mode="json"), "lost")
        s.flush()
        path.unlink()
    with pytest.raises(DatabaseFileGoneError), session_scope(url):
        pass
    shutil.copy(tmp_path / "copy.db", path)  # the same content under another inode: still refused
    with pytest.raises(DatabaseFileGoneError), session_scope(url):
        pass
    other = f"sqlite:///{tmp_path / 'copy.db'}"
    with session_scope(other) as s:
        assert s.scalar(select(func.count()).select_from(Search)) == 1


@pytest.mark.integration
def test_status_of_a_database_without_tables_is_one_line(tmp_path):
    import sqlite3

    sqlite3.connect(tmp_path / "knas.db").close()  # an empty database file
    proc = knas(tmp_path, "status", "1")
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert "schema out of date" in line and "has no KNAS tables" in line and "knas db upgrade" in line
    assert "SQL" not in line


@pytest.mark.integration
def test_a_worker_stops_when_its_database_file_is_deleted(tmp_path):
    import time

    from .processes import SMALL_SEARCH as SMALL
    from .processes import Stack

    stack = Stack(tmp_path, f"sqlite:///{tmp_path / 'knas.db'}", broker=None)
    try:
        worker = stack.start_worker("w", "--concurrency", "1")
        search_id = stack.submit({**SMALL, "samples": 300, "topk": 3, "chunk_size": 2})
        stack.wait(search_id, lambda s: s["scored"] >= 2, timeout=180)
        (tmp_path / "knas.db").unlink()
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            raise AssertionError("the worker kept running on a deleted database") from None
        time.sleep(0.5)
        log = (tmp_path / "w.log").read_text()
        assert "was deleted or replaced while in use" in log and "stopping the worker" in log
    finally:
        stack.close()


# --- item 11: knas cancel of an ended search --------------------------------------------------

@pytest.mark.integration
def test_cancel_of_an_ended_search_says_so_and_leaves_it(tmp_path):
    from db import repository as repo
    from db.migrate import upgrade
    from db.session import session_scope

    url = f"sqlite:///{tmp_path / 'knas.db'}"
    upgrade(url)
    with session_scope(url) as s:
        done = repo.create_search(s, validate_config({}).model_dump(mode="json"), "done")
        done.finish("done")
        queued = repo.create_search(s, validate_config({}).model_dump(mode="json"), "queued")
        ids = done.id, queued.id
    proc = knas(tmp_path, "cancel", str(ids[0]))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"search {ids[0]} already ended: done; nothing to cancel"
    proc = knas(tmp_path, "cancel", str(ids[1]))
    assert proc.returncode == 0 and proc.stdout.strip() == f"search {ids[1]}: cancelled", proc.stderr
    with session_scope(url) as s:
        assert repo.get_search(s, ids[0]).status == "done"
        assert not repo.get_search(s, ids[0]).cancel_requested
        assert repo.get_search(s, ids[1]).status == "cancelled"
