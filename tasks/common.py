"""What the search and discovery tasks share: retry options, the cancel signal, failing a row,
reaching the broker and submitting a row with its task message (all or nothing)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from db.models import Lifecycle
from db.session import session_scope
from db.status import Status
from knas_core.errors import Cancelled, InputError

__all__ = ["RETRY", "BrokerUnavailableError", "Cancelled", "check_broker", "fail", "submit_with_rollback"]

log = logging.getLogger(__name__)

#: Celery task options: transient database and connection errors are retried with backoff.
RETRY: dict[str, Any] = {"autoretry_for": (OperationalError, ConnectionError), "retry_backoff": True,
                         "retry_backoff_max": 60, "retry_jitter": True, "max_retries": 8}


class BrokerUnavailableError(ConnectionError, InputError):
    """The task broker cannot be reached; nothing was written (the message says which URL)."""


def fail(get: Callable[[Session, int], Lifecycle | None], row_id: int, reason: str, what: str) -> None:
    """End the row ``get(session, row_id)`` (a search or a discovery run) as ``failed`` with
    ``reason``, if it still exists, and log it as ``"<what> <id> failed: <reason>"``."""
    with session_scope() as session:
        row = get(session, row_id)
        if row is not None:
            row.finish(Status.FAILED, error=reason)
    log.warning("%s %s failed: %s", what, row_id, reason)


def check_broker(timeout: float = 5.0) -> None:
    """Raise :class:`BrokerUnavailableError` (one line, naming the broker) unless the task
    broker answers within ``timeout`` seconds."""
    from tasks.celery_app import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - every transport raises its own kind
        raise BrokerUnavailableError(
            f"cannot reach the task broker at {app.conf.broker_url!r} ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'no answer'}); start it or fix KNAS_BROKER_URL"
        ) from None


def submit_with_rollback(create: Callable[[Session], int], task: Any,
                         delete: Callable[[Session, int], None], what: str) -> int:
    """Check the broker, store a new row (``create`` returns its id) and send ``task`` with that
    id; if sending fails, ``delete`` the row again and raise :class:`BrokerUnavailableError`, so
    nothing is left half-written. Returns the id."""
    check_broker()
    with session_scope() as session:
        row_id = create(session)
    try:
        task.apply_async(args=[row_id], retry=False)
    except Exception as exc:  # noqa: BLE001 - undo the row: nothing half-written
        with session_scope() as session:
            delete(session, row_id)
        raise BrokerUnavailableError(f"could not enqueue the {what}: {exc}") from None
    return row_id
