"""Engines and sessions. ``KNAS_DATABASE_URL`` selects the database (see :mod:`knas_core.settings`).

SQLite runs in WAL mode with a busy timeout so a dashboard can read while one worker writes.
A process remembers which file its SQLite database is (device and inode, at the first
connection) and refuses to go on when the path no longer names that file: a deleted database
would otherwise take every write of a running worker into an unlinked file, lost at exit.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from knas_core.errors import InputError
from knas_core.settings import get_settings

SQLITE_BUSY_TIMEOUT_MS = 30_000


def database_url(url: str | None = None) -> str:
    """``url``, else ``KNAS_DATABASE_URL`` (default ``sqlite:///knas.db``)."""
    return url or get_settings().database_url


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class DatabaseFileGoneError(RuntimeError, InputError):
    """The SQLite file this process uses was deleted or replaced; nothing more is written. An
    :class:`~knas_core.errors.InputError`: the database the user named is gone, which they fix."""


#: SQLite URL -> (absolute path, device, inode) of its file at the first connection.
_SQLITE_FILES: dict[str, tuple[str, int, int]] = {}


def _sqlite_file(url: str) -> str | None:
    """The absolute path of an SQLite URL's file; None for other databases and in-memory ones."""
    parsed = make_url(url)
    name = parsed.database
    if parsed.get_backend_name() != "sqlite" or not name or name == ":memory:" or name.startswith("file:") \
            or parsed.query.get("uri"):
        return None
    return os.path.abspath(name)


def check_database_file(url: str | None = None) -> None:
    """Raise :class:`DatabaseFileGoneError` if the SQLite file of ``url`` is not the one this
    process first connected to (deleted, or replaced by another file at the same path)."""
    known = _SQLITE_FILES.get(database_url(url))
    if known is None:
        return
    path, device, inode = known
    try:
        st = os.stat(path)
    except OSError:
        st = None
    if st is None or (st.st_dev, st.st_ino) != (device, inode):
        raise DatabaseFileGoneError(
            f"the database file {path} was deleted or replaced while in use; nothing more is written "
            "to it: stop the workers and dashboards using it, then start them again")


def _remember_file(url: str, dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:
    _sqlite_pragmas(dbapi_connection, record)
    path = _sqlite_file(url)
    if path is None:
        return
    if url in _SQLITE_FILES:
        check_database_file(url)  # a new connection may just have created an empty file there
    else:
        st = os.stat(path)
        _SQLITE_FILES[url] = (path, st.st_dev, st.st_ino)


_ENGINES: dict[str, Engine] = {}


def get_engine(url: str | None = None) -> Engine:
    """One engine per URL per process (connection pools are per process: see :func:`dispose_engines`)."""
    url = database_url(url)
    if url not in _ENGINES:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
            event.listen(engine, "connect", functools.partial(_remember_file, url))
        else:
            if make_url(url).get_driver_name() == "psycopg":
                from knas_core.optional import require

                require("psycopg", "postgres", f"the database URL {make_url(url).drivername}://...")
            engine = create_engine(url, pool_pre_ping=True)
        _ENGINES[url] = engine
    return _ENGINES[url]


def dispose_engine(url: str) -> None:
    """Close and forget the engine of ``url`` (e.g. before its database is dropped or deleted)."""
    engine = _ENGINES.pop(url, None)
    if engine is not None:
        engine.dispose()


def dispose_engines() -> None:
    """Forget pooled connections inherited across ``fork`` (call in a new worker child)."""
    for engine in _ENGINES.values():
        engine.dispose(close=False)
    _ENGINES.clear()


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on error. On SQLite, raises
    :class:`DatabaseFileGoneError` (before reading, and instead of committing) once the database
    file has been deleted or replaced."""
    url = database_url(url)
    factory = sessionmaker(bind=get_engine(url), expire_on_commit=False)
    check_database_file(url)
    session = factory()
    try:
        yield session
        check_database_file(url)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
