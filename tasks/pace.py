"""How fast a running search goes: the rate of the work it does itself and the seconds left.

The work is what the search's time goes into, by strategy:

* a strategy that ranks by proxies (KNAS, ensembles, evolution): architectures it scored since
  its scoring started, counted from the :class:`~db.models.ProxyScore` rows stored since then
  under its score keys (:func:`tasks.search.score_keys`), so cache hits (rows stored before) are
  left out; the ETA is the architectures left at that rate;
* NASI: its supernet optimisation steps (the ``scored``/``total`` counters of the score stage,
  Shu et al., ICLR 2022, Alg. 1);
* random search: its evaluations (``evaluated`` of ``topk``).

The dashboard and ``knas status`` show the same figures; an ended or queued search has none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy.orm import Session

from db import queries
from db.models import as_utc, utcnow
from db.session import session_scope
from db.status import SearchStage, Status


class PaceUnit(StrEnum):
    """What a :class:`Pace` counts per second (a member equals its value)."""

    SCORED = "scored"
    STEPS = "steps"
    EVALUATED = "evaluated"


@dataclass(frozen=True)
class Pace:
    """Units of work per second and the seconds left; None where nothing says."""

    rate: float | None = None
    eta_seconds: float | None = None
    unit: str = PaceUnit.SCORED


def pace(status: str, stage: str, total: int, done: int, fresh: int, started: datetime | None,
         now: datetime, *, measured: str = SearchStage.SCORE, unit: str = PaceUnit.SCORED) -> Pace:
    """The pace of a search in its stage ``measured``: ``fresh`` units of work done since
    ``started`` (for scoring, cache hits are not among them) over the seconds since; the ETA is
    the units left (``total - done``) at that rate. Nothing for a search that is not running or
    not in that stage, nor before its first unit of work.

    >>> from datetime import timedelta
    >>> t0 = datetime(2026, 1, 1)
    >>> pace("running", "score", 100, 30, 20, t0, t0 + timedelta(seconds=40))
    Pace(rate=0.5, eta_seconds=140.0, unit=<PaceUnit.SCORED: 'scored'>)
    >>> pace("cancelled", "score", 100, 30, 20, t0, t0 + timedelta(seconds=40)).rate is None
    True
    """
    if status != Status.RUNNING or stage != measured or started is None or fresh <= 0:
        return Pace(unit=unit)
    elapsed = (as_utc(now) - as_utc(started)).total_seconds()
    if elapsed <= 0:
        return Pace(unit=unit)
    rate = fresh / elapsed
    return Pace(rate, max(total - done, 0) / rate, unit)


def pace_in(session: Session, search_id: int, now: datetime | None = None) -> Pace:
    """:func:`pace` of a search from its stored rows (see the module's docstring for what is
    counted). A search run whole by one worker records its images only when it ends: its keys
    are then matched on any images."""
    from knas_core.search import STRATEGIES
    from tasks.search import search_keys

    search = queries.search_scoring(session, search_id)
    if search is None or search["status"] != Status.RUNNING or search["score_started_at"] is None:
        return Pace()
    now = now or utcnow()
    status, stage, started = search["status"], search["stage"], search["score_started_at"]
    strategy = search["config"].get("strategy", "knas")
    if strategy in STRATEGIES and not STRATEGIES.get(strategy).uses_proxies:
        # ``started`` is the worker's first report (tasks.search.run_strategy), sent after the
        # first unit: the units done since are the count less one
        if stage == SearchStage.SCORE:  # NASI: its steps are the score stage's counters
            return pace(status, stage, search["total"], search["scored"], search["scored"] - 1, started, now,
                        unit=PaceUnit.STEPS)
        # random search: nothing is scored, the time goes into the top-k evaluations
        topk = int(search["config"].get("topk") or 0)
        return pace(status, stage, topk, search["evaluated"], search["evaluated"] - 1, started, now,
                    measured=SearchStage.EVALUATE, unit=PaceUnit.EVALUATED)
    if stage != SearchStage.SCORE:
        return Pace()
    found = search_keys(search["config"], search["data_id"])
    if found is None:
        return Pace()
    fresh = queries.fresh_architectures(session, list(found.keys.values()), started,
                                        any_data=search["data_id"] is None,
                                        any_device=not found.device_known)
    return pace(status, stage, search["total"], search["scored"], fresh, started, now)


def search_pace(search_id: int) -> Pace:
    """:func:`pace_in` in a session of its own."""
    with session_scope() as session:
        return pace_in(session, search_id)
