"""Loopback services for tests: PostgreSQL and Redis. With ``CI=true`` a missing service fails
the test instead of skipping it.

Parallel runs (pytest-xdist workers, or two checkouts testing at once) never share state: every
PostgreSQL use gets a database of its own (:func:`postgres_database`), and every test process
claims a Redis database number of its own for the session (:func:`redis_url`)."""

from __future__ import annotations

import atexit
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

PG_ADMIN_URL = os.environ.get("KNAS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
#: The Redis server; its database number is the first one this process tries to claim.
REDIS_URL = os.environ.get("KNAS_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
#: The key that marks a Redis database as claimed by a test process (it survives our flushes).
REDIS_CLAIM_KEY = "knas-test:claimed-by"
#: A crashed run's claim lapses after this many seconds (the suite's timeout is far shorter).
REDIS_CLAIM_SECONDS = 6 * 3600

def _missing(what: str, exc: BaseException) -> None:
    message = f"{what} is not reachable ({type(exc).__name__}: {exc})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + "; CI=true requires it")
    pytest.skip(message)


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database; dropped afterwards. Yields its SQLAlchemy URL."""
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"knas_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        admin.dispose()
        _missing("PostgreSQL", exc)
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        from db.session import dispose_engine

        dispose_engine(url)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


_redis_claim: tuple[str, str] | None = None  # (url of the claimed database, our token)


def _claim_redis_database() -> tuple[str, str]:
    """Claim a database number (1-15, from REDIS_URL's onwards; never 0) with an atomic
    ``SET NX``; released when the process exits."""
    import redis

    base = redis.connection.parse_url(REDIS_URL)
    first = int(base.get("db") or 9)
    token = f"{socket.gethostname()}:{os.getpid()}:{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    server = REDIS_URL.split("://", 1)[1].split("/", 1)[0]
    scheme = REDIS_URL.split("://", 1)[0]
    for number in sorted(range(1, 16), key=lambda n: (n < first, n)):
        url = f"{scheme}://{server}/{number}"
        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        try:
            if client.set(REDIS_CLAIM_KEY, token, nx=True, ex=REDIS_CLAIM_SECONDS):
                atexit.register(_release_redis_database, url, token)
                return url, token
        finally:
            client.close()
    raise RuntimeError(f"every Redis database 1-15 of {server} is claimed by another test run")


def _release_redis_database(url: str, token: str) -> None:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        if client.get(REDIS_CLAIM_KEY) == token.encode():
            client.flushdb()
        client.close()
    except Exception:  # noqa: BLE001, S110 - the claim lapses by itself
        pass


def redis_url() -> str:
    """This test process's own Redis database, emptied (all but the claim)."""
    import redis

    global _redis_claim
    try:
        if _redis_claim is None:
            _redis_claim = _claim_redis_database()
        url, token = _redis_claim
        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        with client.pipeline() as pipe:  # MULTI/EXEC: the database is never seen unclaimed
            pipe.flushdb().set(REDIS_CLAIM_KEY, token, ex=REDIS_CLAIM_SECONDS).execute()
        client.close()
    except (redis.RedisError, OSError) as exc:
        _missing("Redis", exc)
    return url
