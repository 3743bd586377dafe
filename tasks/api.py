"""Python API of the workers: submit, watch and cancel searches.

The store (``KNAS_DATABASE_URL``) needs its tables, as ``knas db upgrade`` creates them; the
embedded default broker needs no server. A search waits in the queue until a worker takes it:

>>> from db.migrate import upgrade
>>> upgrade()
>>> search_id = submit_search({"samples": 20, "topk": 3})
>>> search_progress(search_id)["status"]
'queued'
>>> cancel_search(search_id)["status"]
'cancelled'

(``tests/test_doctests.py`` runs this on a temporary store and state directory.)
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from db import repository as repo
from db.models import SearchCandidate
from db.session import session_scope
from db.status import Status
from knas_core.errors import ConfigError  # tasks.schema's ConfigError is this one
from tasks.common import BrokerUnavailableError, check_broker, submit_with_rollback
from tasks.pace import Pace, pace_in

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from db.models import Search
    from tasks.schema import SearchConfig

# The schema (and with it the proxies' registry, torch) and the Celery app are imported where
# they are needed, so that the progress of a finished search or an unknown id (`knas status`,
# `knas cancel`) costs a database query, not seconds of imports.

__all__ = ["BrokerUnavailableError", "ConfigError", "SubmittedSearch", "cancel_search", "check_broker",
           "search_progress", "submit_search"]


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
    from tasks.schema import load_config

    cfg = load_config(config)
    warnings = preflight(cfg)
    from tasks.search import advance_search

    search_id = submit_with_rollback(
        lambda session: repo.create_search(session, cfg.model_dump(mode="json"), cfg.name).id,
        advance_search, repo.delete_search, "search")
    return SubmittedSearch(search_id, warnings)


def cancel_search(search_id: int) -> dict[str, Any]:
    """Ask a search to stop; workers check the flag between architectures. Returns its progress
    with ``already_ended``: True when it had ended before (done, failed or cancelled: left as is)."""
    with session_scope() as session:
        search = repo.get_search(session, search_id)
        if search is None:
            raise KeyError(f"no search with id {search_id}")
        ended = search.status in Status.ENDED
        search.request_cancel()  # leaves an ended search as it is
    if not ended:
        from tasks.search import advance_search

        with contextlib.suppress(Exception):  # the flag alone stops the work; the broker may be down
            advance_search.apply_async(args=[search_id], retry=False)
    return {**search_progress(search_id), "already_ended": ended}


def search_progress(search_id: int) -> dict[str, Any]:
    """Status, stage, counters, error, the best architecture, and while it runs its pace
    (:mod:`tasks.pace`): ``rate`` (``rate_unit`` per second: architectures ``scored`` by the
    search itself, cache hits left out; NASI's ``steps``; random search's ``evaluated``) and
    ``eta_seconds``, both None when nothing says (ended, queued, before the first unit)."""
    with session_scope() as session:
        search = repo.get_search(session, search_id)
        if search is None:
            raise KeyError(f"no search with id {search_id}")
        speed = pace_in(session, search_id) if search.status == Status.RUNNING else Pace()
        best: dict[str, Any] | None
        if search.result:
            best = {k: search.result.get(k) for k in ("arch", "index", "score", "accuracy", "test_acc",
                                                      "percentile")}
        else:
            best = _best_so_far(session, search)
        return {
            "id": search.id, "name": search.name, "status": search.status, "stage": search.stage,
            "scored": search.scored, "failed": search.failed, "total": search.total,
            "evaluated": search.evaluated, "rate": speed.rate, "rate_unit": str(speed.unit),
            "eta_seconds": speed.eta_seconds, "error": search.error,
            "cancel_requested": search.cancel_requested, "best": best,
            "data": search.data_id, "data_description": search.data_description,
            "created_at": search.created_at.isoformat() if search.created_at else None,
            "finished_at": search.finished_at.isoformat() if search.finished_at else None,
        }


def _best_so_far(session: Session, search: Search) -> dict[str, Any] | None:
    """The best architecture scored so far by a search without a result, or None (also when this
    process cannot read its config, e.g. a plugin proxy it has not loaded). Imports the search
    tasks and the proxies (torch): the score key depends on them."""
    from tasks.search import ranking_values, search_keys

    found = search_keys(search.config, search.data_id)
    if found is None:  # an unreadable config, or a plugin that does not load here
        return None
    keys = list(found.keys.values())
    if len(keys) == 1:  # one query
        top = repo.best_scored(session, search.id, keys[0], found.higher_is_better[keys[0].proxy])
    else:  # an ensemble is relative to the candidates scored so far
        values, _, _ = ranking_values(session, search.id, keys, found.weights)
        scored = [(v, c) for c, v in values.items() if v is not None]
        if not scored:
            return None
        value, cand_id = max(scored)
        top = (session.get_one(SearchCandidate, cand_id).architecture, value)
    return {"arch": top[0].arch, "index": top[0].index, "score": top[1]} if top else None
