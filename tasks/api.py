"""Python API of the workers: submit, watch and cancel searches.

>>> search_id = submit_search({"samples": 20, "topk": 3})     # doctest: +SKIP
>>> search_progress(search_id)["status"]                        # doctest: +SKIP
'running'
"""

from __future__ import annotations

import contextlib
from typing import Any

from db import repository as repo
from db.models import TERMINAL, as_utc, utcnow
from db.session import session_scope
from tasks.schema import ConfigError, SearchConfig, load_config

__all__ = ["BrokerUnavailableError", "ConfigError", "SubmittedSearch", "cancel_search", "search_progress",
           "submit_search"]


class BrokerUnavailableError(ConnectionError):
    """The task broker cannot be reached; nothing was written."""


def _check_broker(timeout: float = 5.0) -> None:
    from tasks.celery_app import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - every transport raises its own kind
        raise BrokerUnavailableError(
            f"cannot reach the task broker at {app.conf.broker_url!r} ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'no answer'}); start it or fix KNAS_BROKER_URL"
        ) from None


class SubmittedSearch(int):
    """The id of a submitted search (an ``int``) with the submit-time ``warnings`` (e.g. a GPU
    asked for that this machine does not see: the workers may have one)."""

    warnings: tuple[str, ...]

    def __new__(cls, search_id: int, warnings: tuple[str, ...] | list[str] = ()) -> SubmittedSearch:
        obj = super().__new__(cls, search_id)
        obj.warnings = tuple(warnings)
        return obj


def submit_search(config: dict[str, Any] | SearchConfig) -> SubmittedSearch:
    """Validate ``config``, check it against this machine (:func:`tasks.preflight.preflight`), store
    a queued search and enqueue it; returns the search id, an ``int`` whose ``warnings`` attribute
    lists what may fail on a worker.

    Proxies promoted into the database are registered before the config is validated
    (:func:`tasks.schema.load_config`). Raises :class:`ConfigError` (its ``problems`` name the
    fields, in the config's own field names) or :class:`BrokerUnavailableError`; in both cases
    nothing is left in the database.
    """
    from tasks.preflight import preflight

    cfg = load_config(config)
    warnings = preflight(cfg)
    _check_broker()
    from tasks.search import advance_search

    with session_scope() as session:
        search = repo.create_search(session, cfg.model_dump(mode="json"), cfg.name)
        search_id = search.id
    try:
        advance_search.apply_async(args=[search_id], retry=False)
    except Exception as exc:  # noqa: BLE001 - undo the row: nothing half-written
        with session_scope() as session:
            repo.delete_search(session, search_id)
        raise BrokerUnavailableError(f"could not enqueue the search: {exc}") from None
    return SubmittedSearch(search_id, warnings)


def cancel_search(search_id: int) -> dict[str, Any]:
    """Ask a search to stop; workers check the flag between architectures. Returns its progress
    with ``already_ended``: True when it had ended before (done, failed or cancelled: left as is)."""
    with session_scope() as session:
        search = repo.get_search(session, search_id)
        if search is None:
            raise KeyError(f"no search with id {search_id}")
        ended = search.status in TERMINAL
        search.request_cancel()  # leaves an ended search as it is
    if not ended:
        from tasks.search import advance_search

        with contextlib.suppress(Exception):  # the flag alone stops the work; the broker may be down
            advance_search.apply_async(args=[search_id], retry=False)
    return {**search_progress(search_id), "already_ended": ended}


def search_progress(search_id: int) -> dict[str, Any]:
    """Status, stage, counters, rate (archs/s), ETA (s), error and the best architecture."""
    from tasks.search import device_type, score_key

    with session_scope() as session:
        search = repo.get_search(session, search_id)
        if search is None:
            raise KeyError(f"no search with id {search_id}")
        try:
            cfg: SearchConfig | None = load_config(search.config)
        except ConfigError:  # e.g. a plugin proxy this process has not loaded
            cfg = None
        rate = eta = None
        if search.score_started_at is not None and search.scored:
            stop = (search.finished_at if search.status in TERMINAL else None) or utcnow()
            elapsed = max((as_utc(stop) - as_utc(search.score_started_at)).total_seconds(), 1e-6)
            rate = search.scored / elapsed
            eta = max(search.total - search.scored, 0) / rate if search.stage == "score" else 0.0
        best: dict[str, Any] | None
        if search.result:
            best = {k: search.result.get(k) for k in ("arch", "index", "score", "accuracy", "test_acc",
                                                      "percentile")}
        elif cfg is not None:
            from knas_core.proxies import get_proxy

            top = repo.best_scored(session, search_id, score_key(cfg, device_type(cfg), search.data_id or ""),
                                   get_proxy(cfg.proxy).higher_is_better)
            best = {"arch": top[0].arch, "index": top[0].index, "score": top[1]} if top else None
        else:
            best = None
        return {
            "id": search.id, "name": search.name, "status": search.status, "stage": search.stage,
            "scored": search.scored, "failed": search.failed, "total": search.total,
            "evaluated": search.evaluated, "rate": rate, "eta_seconds": eta, "error": search.error,
            "cancel_requested": search.cancel_requested, "best": best,
            "data": search.data_id, "data_description": search.data_description,
            "created_at": search.created_at.isoformat() if search.created_at else None,
            "finished_at": search.finished_at.isoformat() if search.finished_at else None,
        }

