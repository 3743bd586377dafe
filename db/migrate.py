"""Alembic, driven from Python: ``knas db upgrade`` calls :func:`upgrade`."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from db.session import database_url, get_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", database_url(url).replace("%", "%%"))
    return cfg


_LOCK_KEY = 0x6B6E6173  # "knas": the PostgreSQL advisory lock that serialises migrations


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Bring the schema at ``url`` (default: ``KNAS_DATABASE_URL``) to ``revision``.

    Safe to call from several processes at once (workers starting together): PostgreSQL
    migrations run under an advisory lock, SQLite ones under a file lock beside the database.
    """
    url = database_url(url)
    with _migration_lock(url):
        command.upgrade(alembic_config(url), revision)


@contextmanager
def _migration_lock(url: str) -> Iterator[None]:
    engine = get_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _LOCK_KEY})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _LOCK_KEY})
                conn.commit()
    elif engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        with open(f"{engine.url.database}.migrate-lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
    else:
        yield


def current_revision(url: str | None = None) -> str | None:
    from alembic.runtime.migration import MigrationContext

    from db.session import get_engine

    with get_engine(url).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    """The newest revision the migrations of this checkout define."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head
