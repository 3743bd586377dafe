"""The Searches page: one row per search with its live progress."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from db import queries
from db.models import as_utc, utcnow
from db.session import session_scope
from db.status import SearchStage, Status
from tasks.api import search_progress


def progress_fraction(p: dict[str, Any]) -> float:
    """Share of the work done in [0, 1]: 1 once done; scored/total while scoring; scoring
    counts for 90% and evaluation of the top-k for the last 10% afterwards."""
    if p["status"] == Status.DONE:
        return 1.0
    total = p.get("total") or 0
    scored = min(p.get("scored") or 0, total) if total else 0
    frac = 0.9 * scored / total if total else 0.0
    if p.get("stage") == SearchStage.EVALUATE:
        topk = (p.get("topk") or 0)
        frac = 0.9 + (0.1 * min(p.get("evaluated") or 0, topk) / topk if topk else 0.0)
    return round(min(frac, 1.0), 4)


def progress_text(p: dict[str, Any], strategy: str | None) -> str:
    """The caption of a search's progress bar: what it has scored and evaluated. NASI's score
    stage counts the supernet's optimisation steps (:mod:`tasks.pace`), so its caption says steps.

    >>> progress_text({"scored": 3, "total": 8, "failed": 1, "evaluated": 0}, "knas")
    'scored 3/8 (1 failed), evaluated 0'
    >>> progress_text({"scored": 2, "total": 40, "failed": 0, "evaluated": 0}, "nasi")
    'NASI steps 2/40, evaluated 0'
    """
    if strategy == "nasi":
        return f"NASI steps {p['scored']}/{p['total']}, evaluated {p['evaluated']}"
    return f"scored {p['scored']}/{p['total']} ({p['failed']} failed), evaluated {p['evaluated']}"


#: What the stage column says of a search that ended before it left the queue.
NOT_STARTED = "not started"


def shown_stage(status: str, stage: str) -> str:
    """The stage to show: where a search is, or for one that has ended, where it ended (the
    stage it failed or was cancelled in; ``done`` for a finished one). A search that ended
    while queued, cancelled there or failed before recording its first stage, shows
    :data:`NOT_STARTED`, not ``queued`` (which reads as still waiting)."""
    if status in Status.ENDED and stage == SearchStage.QUEUED:
        return NOT_STARTED
    return stage


def search_proxies(config: dict[str, Any]) -> list[str]:
    """The proxies that ranked a search's architectures: :meth:`SearchConfig.proxy_list
    <knas_core.search.config.SearchConfig.proxy_list>` of its stored config (the ensemble when
    ``proxies`` is set, not the unused ``proxy``); none for a strategy that uses no proxy
    (:attr:`Strategy.uses_proxies <knas_core.search.base.Strategy.uses_proxies>`: random, nasi)."""
    from knas_core.search import STRATEGIES
    from knas_core.search.config import SearchConfig

    strategy = config.get("strategy", "knas")
    if strategy in STRATEGIES and not STRATEGIES.get(strategy).uses_proxies:
        return []
    return SearchConfig.model_construct(**config).proxy_list()  # stored: validated when submitted


def proxies_label(config: dict[str, Any]) -> str:
    """The proxies of :func:`search_proxies` as one label, ``+``-joined, with an ensemble
    member's weight where it is not 1: ``synflow*0.75+eznas*1.5+params`` (two searches that
    differ only in their weights are different configurations)."""
    from knas_core.search.ensemble import format_members

    names = search_proxies(config)
    return format_members(names, config.get("weights") if len(names) > 1 else None, sep="+", mark="*")


def duration_seconds(started: datetime | None, finished: datetime | None,
                     now: datetime | None = None) -> float | None:
    """Seconds from start to end (to ``now`` while it runs); None before it started."""
    if started is None:
        return None
    end = finished if finished is not None else (now or utcnow())
    return max((as_utc(end) - as_utc(started)).total_seconds(), 0.0)


def overview_rows(limit: int = 200) -> list[dict[str, Any]]:
    """Rows of the Searches table, newest first: ``id, name, status, stage (where it is, or where
    it ended), progress (0-1), scored, total, failed, rate (``rate_unit`` per second) and eta_s
    (while it runs: :mod:`tasks.pace`), best_arch, best_index,
    best_accuracy (%), created``, and what tells seed runs apart: ``seed, proxies`` ("+"-joined,
    empty for a strategy without proxies), ``duration_s``, ``tags`` (list) and ``note``."""
    with session_scope() as session:
        searches = queries.search_rows(session, limit)
    rows = []
    for s in searches:
        p = search_progress(s["id"])
        p["topk"] = s["config"].get("topk")
        best = p.get("best") or {}
        rows.append({
            "id": s["id"], "name": s["name"], "status": p["status"],
            "stage": shown_stage(p["status"], p["stage"]),
            "progress": progress_fraction(p), "scored": p["scored"], "total": p["total"],
            "failed": p["failed"], "rate": p["rate"], "rate_unit": p["rate_unit"], "eta_s": p["eta_seconds"],
            "strategy": s["config"].get("strategy"), "dataset": s["config"].get("dataset"),
            "best_arch": best.get("arch"), "best_index": best.get("index"),
            "best_accuracy": best.get("accuracy"), "created": s["created_at"], "error": p["error"],
            "seed": s["config"].get("seed"), "proxies": proxies_label(s["config"]),
            "duration_s": duration_seconds(s["started_at"], s["finished_at"]),
            "tags": s["tags"], "note": s["note"],
        })
    return rows


def can_cancel(status: str) -> bool:
    """Whether cancelling means anything: the search is queued or running (an ended one stays as it is)."""
    return status in Status.ACTIVE


def any_active(rows: list[dict[str, Any]]) -> bool:
    """Whether any of these searches is queued or running (the page keeps refreshing)."""
    return any(r["status"] in Status.ACTIVE for r in rows)
