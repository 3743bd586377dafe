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
#: The Redis server; its database number is the first one this process tries to claim (not 9 by
#: default: earlier versions of these tests flush database 9 whenever they run).
REDIS_URL = os.environ.get("KNAS_TEST_REDIS_URL", "redis://127.0.0.1:6379/10")
#: The key that marks a Redis database as claimed by a test process (it survives our flushes).
REDIS_CLAIM_KEY = "knas-test:claimed-by"
#: A claim lapses after this many seconds; one of a process of this host that is gone is taken
#: over at once.
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
    ``SET NX`` (or take over the claim of a process of this host that is gone); released when
    the process exits."""
    import redis

    first = int(redis.connection.parse_url(REDIS_URL).get("db") or 10)
    token = f"{socket.gethostname()}:{os.getpid()}:{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    scheme, rest = REDIS_URL.split("://", 1)
    server = rest.split("/", 1)[0]
    for number in sorted(range(1, 16), key=lambda n: (n < first, n)):
        url = f"{scheme}://{server}/{number}"
        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        try:
            claimed = client.set(REDIS_CLAIM_KEY, token, nx=True, ex=REDIS_CLAIM_SECONDS)
            if claimed or _take_over(client, token):
                atexit.register(_release_redis_database, url, token)
                return url, token
        finally:
            client.close()
    raise RuntimeError(f"every Redis database 1-15 of {server} is claimed by another test run")


def _take_over(client, token: str) -> bool:
    """Claim a database whose claim belongs to a process of this host that no longer runs (a
    test run killed before its exit handlers ran)."""
    import redis

    with client.pipeline() as pipe:
        try:
            pipe.watch(REDIS_CLAIM_KEY)
            held = (pipe.get(REDIS_CLAIM_KEY) or b"").decode()
            host, _, rest = held.partition(":")
            pid = rest.partition(":")[0]
            if host != socket.gethostname() or not pid.isdigit() or _running(int(pid)):
                return False
            pipe.multi()
            pipe.set(REDIS_CLAIM_KEY, token, ex=REDIS_CLAIM_SECONDS)
            pipe.execute()
            return True
        except redis.WatchError:  # claimed meanwhile by someone else
            return False


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _release_redis_database(url: str, token: str) -> None:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        if client.get(REDIS_CLAIM_KEY) == token.encode():
            client.flushdb()
        client.close()
    except Exception:  # noqa: BLE001 - the claim lapses by itself
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
