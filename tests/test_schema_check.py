"""Only ``knas db upgrade`` and ``knas up`` migrate; every other command, a starting worker and
the dashboard refuse a store whose schema is not this version's, in one line (exit status 2)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from db.migrate import SchemaOutOfDateError, check_schema, display_url, head_revision, known_revision, upgrade
from db.session import dispose_engine, get_engine
from knas_cli.main import main
from knas_core.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
ADVICE = "run `knas db upgrade`"


@pytest.fixture()
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``KNAS_DATABASE_URL`` of an SQLite file that does not exist yet."""
    url = f"sqlite:///{tmp_path / 'knas.db'}"
    monkeypatch.setenv("KNAS_DATABASE_URL", url)
    monkeypatch.setenv("KNAS_STATE_DIR", str(tmp_path / "state"))
    yield url
    dispose_engine(url)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_commands_refuse_a_new_database_until_knas_db_upgrade(store, tmp_path, capsys):
    head = head_revision()
    code, _, err = run(capsys, "status", "1")
    assert code == 2
    assert err == (f"knas: error: schema out of date: the database {store} does not exist yet, this version "
                   f"needs revision {head}: {ADVICE}\n")
    assert not (tmp_path / "knas.db").exists()  # checking never creates the database
    for argv in (["cancel", "1"], ["db", "load-groundtruth"]):
        code, _, err = run(capsys, *argv)
        assert code == 2 and "schema out of date" in err and ADVICE in err, (argv, err)
    assert run(capsys, "db", "upgrade")[:2] == (0, f"database at revision {head}\n")

    from db import repository as repo
    from db.session import session_scope
    from tasks.schema import validate_config

    with session_scope(store) as s:
        search_id = repo.create_search(s, validate_config({}).model_dump(mode="json"), "one").id
    code, out, err = run(capsys, "status", str(search_id))
    assert code == 0 and f"search {search_id} 'one': queued" in out, err


def test_a_database_without_tables_is_refused(store, tmp_path, capsys):
    sqlite3.connect(tmp_path / "knas.db").close()
    code, _, err = run(capsys, "status", "1")
    assert code == 2 and err.startswith(f"knas: error: schema out of date: the database {store} has no KNAS "
                                        "tables (a new or never migrated database)")
    assert err.rstrip().endswith(ADVICE) and len(err.splitlines()) == 1


def test_an_older_revision_is_refused_by_commands_workers_and_the_web(store, capsys, monkeypatch):
    upgrade(store, "0003")
    line = (f"schema out of date: the database {store} is at revision 0003, this version needs revision "
            f"{head_revision()}: {ADVICE}")
    with pytest.raises(SchemaOutOfDateError) as info:
        check_schema()
    assert str(info.value) == line and isinstance(info.value, InputError)
    assert run(capsys, "status", "1")[::2] == (2, f"knas: error: {line}\n")
    monkeypatch.delenv("KNAS_TORCH_THREADS", raising=False)  # `knas worker` sets it; restored after
    assert run(capsys, "worker", "--concurrency", "1")[::2] == (2, f"knas: error: {line}\n")
    from tests.processes import free_port

    assert run(capsys, "web", "--port", str(free_port()))[::2] == (2, f"knas: error: {line}\n")
    code, _, err = run(capsys, "evolve", "--archs", "3", "--name", "never_promoted")
    assert (code, err) == (2, f"knas: error: {line}\n")  # before the run, not after it


def test_a_worker_started_without_knas_worker_refuses_too(store, monkeypatch):
    from tasks import celery_app

    monkeypatch.setitem(celery_app._IN_WORKER, "yes", False)
    with pytest.raises(SystemExit, match="schema out of date"):
        celery_app._start_worker()
    assert celery_app._IN_WORKER["yes"] is False
    upgrade(store)
    celery_app._start_worker()
    assert celery_app._IN_WORKER["yes"] is True


def test_a_newer_revision_asks_for_the_newer_version(store):
    upgrade(store)
    with get_engine(store).begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(SchemaOutOfDateError, match="is at revision 9999, which a newer KNAS Studio wrote"):
        check_schema()


def test_the_revisions_read_from_the_files_are_alembics():
    """check_schema reads the migration files itself (no Alembic import): the same revisions
    and the same head as Alembic's own reading of them."""
    from alembic.script import ScriptDirectory

    from db.migrate import alembic_config

    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert head_revision() == scripts.get_current_head()
    revisions = {script.revision for script in scripts.walk_revisions()}
    assert len(revisions) >= 7 and all(known_revision(r) for r in revisions)
    assert not known_revision("9999") and not known_revision(head_revision() + "0")


def test_several_revision_rows_are_refused(store):
    upgrade(store)
    with get_engine(store).begin() as conn:
        conn.execute(text("INSERT INTO alembic_version (version_num) VALUES ('0003')"))
    with pytest.raises(InputError, match=r"several schema revisions \(0003, "):
        check_schema()


def test_status_and_cancel_check_the_schema_without_alembic(store):
    """The check is most of what `knas status` and `knas cancel` cost at start-up (measured in
    benchmarks/startup.py): it must not load Alembic (with Mako, Pygments and every dialect)."""
    upgrade(store)
    heavy = ["alembic", "mako", "torch", "celery", "pandas"]
    code = ("import json, sys\nfrom knas_cli.main import main\n"
            "codes = [main(['status', '999']), main(['cancel', '999'])]\n"
            f"print(json.dumps([codes, [n for n in {heavy!r} if n in sys.modules]]))")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    codes, loaded = json.loads(out.stdout.splitlines()[-1])
    assert codes == [2, 2], out.stderr  # unknown id: checked, then refused (an old schema stops earlier)
    assert "no search with id 999" in out.stderr and "schema out of date" not in out.stderr, out.stderr
    assert loaded == []


def test_the_shown_url_hides_the_password():
    assert display_url("postgresql+psycopg://knas:secret@db:5432/knas") == "postgresql+psycopg://knas:***@db:5432/knas"


def test_postgresql_at_an_older_revision_is_refused():
    from .services import postgres_database

    with postgres_database() as url:
        upgrade(url, "0003")
        pattern = r"is at revision 0003, this version needs revision \w+: run `knas db upgrade`"
        with pytest.raises(SchemaOutOfDateError, match=pattern):
            check_schema(url)
        upgrade(url)
        assert check_schema(url) == head_revision()


def test_the_dashboard_says_what_to_run(store):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=30).run()
    assert not at.exception, [e.value for e in at.exception]
    assert [e.value for e in at.error] == [
        f"schema out of date: the database {store} does not exist yet, this version needs revision "
        f"{head_revision()}: {ADVICE}"]
