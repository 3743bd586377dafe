"""Alembic, driven from Python.

Only ``knas db upgrade`` and ``knas up`` migrate (:func:`upgrade`). Every other command, the
workers and the dashboard call :func:`check_schema` first and stop, as Optuna does, with
"schema out of date: ... run `knas db upgrade`" when the store is not at this version's revision.

The check imports no Alembic (about a fifth of a second of CPU, most of the start-up of ``knas
status``): it reads the store's ``alembic_version`` row with SQLAlchemy and this checkout's
revisions from the migration files' ``revision`` / ``down_revision`` lines (a test checks they
agree with Alembic's own reading). Alembic is imported to migrate only.
"""

from __future__ import annotations

import fcntl
import functools
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, make_url, text

from db.session import _sqlite_file, database_url, get_engine
from knas_core.errors import InputError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: Alembic's table of the store's revision (its default name; env.py keeps it).
VERSION_TABLE = "alembic_version"


def alembic_config(url: str | None = None) -> Config:
    from alembic.config import Config

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
    from alembic import command

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
    """The revision the database at ``url`` is at; None when it has never been migrated."""
    with get_engine(url).connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return None
        rows = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    if len(rows) > 1:  # Alembic's own reading refuses several heads too
        raise InputError(f"the database has several schema revisions ({', '.join(sorted(rows))}); "
                         "KNAS Studio's migrations are one line")
    return rows[0] if rows else None


_REVISION = re.compile(r"^revision\s*=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\s*=\s*(?:None|['\"]([^'\"]+)['\"])", re.MULTILINE)


@functools.cache
def _revisions() -> tuple[frozenset[str], str]:
    """This checkout's revisions and its head, read from the migration files' ``revision`` and
    ``down_revision`` lines (one line of history: no merges or branches)."""
    known: set[str] = set()
    parents: set[str] = set()
    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        source = path.read_text(encoding="utf-8")
        revision, down = _REVISION.search(source), _DOWN_REVISION.search(source)
        if revision is None or down is None:
            raise RuntimeError(f"{path}: no `revision = '...'` or `down_revision = ...` line")
        known.add(revision[1])
        if down[1] is not None:
            parents.add(down[1])
    heads = known - parents
    if len(heads) != 1:
        raise RuntimeError(f"the migrations in {MIGRATIONS} have {len(heads)} heads: {sorted(heads)}")
    return frozenset(known), heads.pop()


def head_revision() -> str:
    """The newest revision the migrations of this checkout define."""
    return _revisions()[1]


def known_revision(revision: str) -> bool:
    """Whether this checkout's migrations define ``revision``."""
    return revision in _revisions()[0]


class SchemaOutOfDateError(InputError):
    """The store is not at the schema revision this version needs; ``str()`` is one line that
    says what to run."""


def display_url(url: str | None = None) -> str:
    """The database URL as shown to users: the password hidden."""
    return make_url(database_url(url)).render_as_string(hide_password=True)


def check_schema(url: str | None = None) -> str:
    """Return the revision of the store at ``url`` (default ``KNAS_DATABASE_URL``) when it is this
    version's; else raise :class:`SchemaOutOfDateError`. Never creates or changes the database
    (a missing SQLite file stays missing); an unreachable server raises SQLAlchemy's error."""
    url = database_url(url)
    where, head = display_url(url), head_revision()
    path = _sqlite_file(url)
    if path is not None and not os.path.exists(path):
        current = None
        state = "does not exist yet"
    else:
        current = current_revision(url)
        state = (f"is at revision {current}" if current
                 else "has no KNAS tables (a new or never migrated database)")
    if current == head:
        return head
    if current is not None and not known_revision(current):
        raise SchemaOutOfDateError(
            f"schema newer than this version: the database {where} is at revision {current}, which a newer "
            f"KNAS Studio wrote; this version needs {head}: use the newer version")
    raise SchemaOutOfDateError(f"schema out of date: the database {where} {state}, this version needs "
                               f"revision {head}: run `knas db upgrade`")
