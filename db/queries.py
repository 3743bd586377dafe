"""Read-only queries of the dashboard (``app/``): filtered, paged and aggregated in SQL.

Every function takes a session and returns plain Python values (dicts, tuples, floats), so
the caller may cache them and no ORM object outlives its session. Rankings are filtered,
sorted and paged in the database, so a search of all 15,625 architectures stays fast.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from db.models import (
    Architecture,
    BenchmarkAccuracy,
    ProxyScore,
    Search,
    SearchCandidate,
    TrainingRun,
)
from db.status import CandidateStage

#: Sortable columns of a ranking, by the name the dashboard shows.
RANKING_SORTS = {"rank": SearchCandidate.rank, "score": SearchCandidate.score,
                 "accuracy": SearchCandidate.accuracy, "position": SearchCandidate.position,
                 "index": Architecture.index}


@dataclass(frozen=True)
class RankingFilter:
    """Filters of a search's ranking. ``ops``: keep cells holding every one of these operations;
    ranges are inclusive and ``None`` leaves a side open (accuracy in %, score in proxy units)."""

    ops: tuple[str, ...] = ()
    score_min: float | None = None
    score_max: float | None = None
    acc_min: float | None = None
    acc_max: float | None = None
    stage: CandidateStage | None = None


def search_rows(session: Session, limit: int | None = 200, *, ids: Sequence[int] | None = None,
                status: str | None = None) -> list[dict[str, Any]]:
    """The newest ``limit`` searches (``None``: all) as plain dicts (no ORM objects); only those
    of ``ids`` and of ``status`` when given."""
    stmt = select(Search).order_by(Search.id.desc()).limit(limit)
    if ids is not None:
        stmt = stmt.where(Search.id.in_(list(ids)))
    if status is not None:
        stmt = stmt.where(Search.status == status)
    return [{"id": s.id, "name": s.name, "status": s.status, "stage": s.stage, "total": s.total,
             "scored": s.scored, "failed": s.failed, "evaluated": s.evaluated,
             "created_at": s.created_at, "started_at": s.started_at, "finished_at": s.finished_at,
             "config": dict(s.config), "result": dict(s.result) if s.result else None, "error": s.error,
             "tags": list(s.tags or []), "note": s.note or ""} for s in session.scalars(stmt)]


def search_config(session: Session, search_id: int) -> dict[str, Any] | None:
    return session.scalar(select(Search.config).where(Search.id == search_id))


def _ranking_where(search_id: int, flt: RankingFilter) -> list[Any]:
    where: list[Any] = [SearchCandidate.search_id == search_id]
    for op in flt.ops:  # the canonical string writes each edge as "|op~j|"
        where.append(Architecture.arch.like(f"%|{op}~%"))
    if flt.score_min is not None:
        where.append(SearchCandidate.score >= flt.score_min)
    if flt.score_max is not None:
        where.append(SearchCandidate.score <= flt.score_max)
    if flt.acc_min is not None:
        where.append(SearchCandidate.accuracy >= flt.acc_min)
    if flt.acc_max is not None:
        where.append(SearchCandidate.accuracy <= flt.acc_max)
    if flt.stage is not None:
        where.append(SearchCandidate.stage == flt.stage)
    return where


def ranking_page(session: Session, search_id: int, flt: RankingFilter = RankingFilter(), *,
                 sort: str = "rank", descending: bool = False, limit: int | None = 50,
                 offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """One page of a search's candidates and the number matching ``flt``.

    Rows: ``architecture_id, index, arch, position, stage, score, rank, accuracy, eval``.
    Missing values sort last whatever the direction. ``limit=None`` returns every match (export).
    """
    if sort not in RANKING_SORTS:
        raise ValueError(f"unknown sort column {sort!r}; choose one of {', '.join(RANKING_SORTS)}")
    where = _ranking_where(search_id, flt)
    column = RANKING_SORTS[sort]
    stmt = (select(SearchCandidate.architecture_id, Architecture.index, Architecture.arch,
                   SearchCandidate.position, SearchCandidate.stage, SearchCandidate.score,
                   SearchCandidate.rank, SearchCandidate.accuracy, SearchCandidate.eval_source)
            .join(Architecture, Architecture.id == SearchCandidate.architecture_id)
            .where(*where)
            .order_by(column.is_(None), column.desc() if descending else column.asc(),
                      SearchCandidate.position)
            .offset(offset))
    if limit is not None:
        stmt = stmt.limit(limit)
    keys = ("architecture_id", "index", "arch", "position", "stage", "score", "rank", "accuracy", "eval")
    rows = [dict(zip(keys, r)) for r in session.execute(stmt)]
    total = session.scalar(select(func.count()).select_from(SearchCandidate)
                           .join(Architecture, Architecture.id == SearchCandidate.architecture_id)
                           .where(*where)) or 0
    return rows, int(total)


def candidate_values(session: Session,
                     search_id: int) -> list[tuple[int, float | None, float | None, int | None]]:
    """``(position, score, accuracy, rank)`` of every candidate, in sampling order."""
    rows = session.execute(select(SearchCandidate.position, SearchCandidate.score, SearchCandidate.accuracy,
                                  SearchCandidate.rank)
                           .where(SearchCandidate.search_id == search_id).order_by(SearchCandidate.position))
    return [tuple(r) for r in rows]  # type: ignore[misc]


def candidate_rows(session: Session, search_id: int) -> list[dict[str, Any]]:
    """Every candidate of a search in sampling order: ``position, architecture_id, index, arch,
    score, accuracy, rank`` (score, accuracy and rank None where not known)."""
    rows = session.execute(select(SearchCandidate.position, SearchCandidate.architecture_id,
                                  Architecture.index, Architecture.arch, SearchCandidate.score,
                                  SearchCandidate.accuracy, SearchCandidate.rank)
                           .join(Architecture, Architecture.id == SearchCandidate.architecture_id)
                           .where(SearchCandidate.search_id == search_id).order_by(SearchCandidate.position))
    keys = ("position", "architecture_id", "index", "arch", "score", "accuracy", "rank")
    return [dict(zip(keys, r)) for r in rows]


def search_training_runs(session: Session, search_id: int) -> list[dict[str, Any]]:
    """Training runs of a search's evaluated candidates, best rank first."""
    rows = session.execute(
        select(SearchCandidate.rank, Architecture.arch, Architecture.index, TrainingRun.history,
               TrainingRun.status, TrainingRun.final_test_acc)
        .join(TrainingRun, TrainingRun.id == SearchCandidate.training_run_id)
        .join(Architecture, Architecture.id == SearchCandidate.architecture_id)
        .where(SearchCandidate.search_id == search_id).order_by(SearchCandidate.rank))
    keys = ("rank", "arch", "index", "history", "status", "final_test_acc")
    return [dict(zip(keys, r)) for r in rows]


# --- proxies and ground truth ---------------------------------------------------------------

def score_catalogue(session: Session) -> list[tuple[str, str, int]]:
    """``(proxy, dataset, successful scores)`` for every stored pair, most scores first."""
    rows = session.execute(select(ProxyScore.proxy, ProxyScore.dataset, func.count())
                           .where(ProxyScore.value.is_not(None))
                           .group_by(ProxyScore.proxy, ProxyScore.dataset))
    return sorted(((p, d, int(n)) for p, d, n in rows), key=lambda r: (-r[2], r[0], r[1]))


def proxy_scores(session: Session, proxy: str, dataset: str) -> dict[int, float]:
    """``architecture_id -> value`` of one proxy on one dataset.

    Scores of several set-ups (batch size, seed, device, network) are not mixed: the set-up
    holding the most scores is used (ties: the earliest stored).
    """
    rows = session.execute(
        select(ProxyScore.architecture_id, ProxyScore.value, ProxyScore.batch_size, ProxyScore.seed,
               ProxyScore.device_type, ProxyScore.model)
        .where(ProxyScore.proxy == proxy, ProxyScore.dataset == dataset, ProxyScore.value.is_not(None))
        .order_by(ProxyScore.id)).all()
    if not rows:
        return {}
    setups = Counter(tuple(r[2:]) for r in rows)
    chosen = max(setups, key=lambda s: setups[s])  # max keeps the first of equal counts
    return {r[0]: float(r[1]) for r in rows if r[1] is not None and tuple(r[2:]) == chosen}


def benchmark_values(session: Session, dataset: str, metric: str = "test",
                     architecture_ids: Sequence[int] | None = None) -> dict[int, float]:
    """``architecture_id -> accuracy (%)`` from the stored benchmark table."""
    stmt = select(BenchmarkAccuracy.architecture_id, BenchmarkAccuracy.value).where(
        BenchmarkAccuracy.dataset == dataset, BenchmarkAccuracy.metric == metric)
    if architecture_ids is None:
        return {a: float(v) for a, v in session.execute(stmt)}
    out: dict[int, float] = {}
    ids = list(architecture_ids)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        out.update({a: float(v) for a, v in session.execute(
            stmt.where(BenchmarkAccuracy.architecture_id.in_(chunk)))})
    return out


def architectures(session: Session, architecture_ids: Sequence[int]) -> dict[int, tuple[str, int | None]]:
    """``architecture_id -> (arch, official index)``."""
    out: dict[int, tuple[str, int | None]] = {}
    ids = list(architecture_ids)
    for start in range(0, len(ids), 500):
        rows = session.execute(select(Architecture.id, Architecture.arch, Architecture.index)
                               .where(Architecture.id.in_(ids[start:start + 500])))
        out.update({i: (a, x) for i, a, x in rows})
    return out


def find_architecture(session: Session, *, index: int | None = None, arch: str | None = None,
                      architecture_id: int | None = None, space: str = "nb201") -> dict[str, Any] | None:
    """An architecture by official index, canonical string or row id."""
    conds = []
    if architecture_id is not None:
        conds.append(Architecture.id == architecture_id)
    if index is not None:
        conds.append(and_(Architecture.index == index, Architecture.space == space))
    if arch is not None:
        conds.append(and_(Architecture.arch == arch, Architecture.space == space))
    if not conds:
        return None
    row = session.execute(select(Architecture.id, Architecture.space, Architecture.arch, Architecture.index)
                          .where(or_(*conds)).limit(1)).first()
    return dict(zip(("id", "space", "arch", "index"), row)) if row else None


def architecture_scores(session: Session, architecture_id: int) -> list[dict[str, Any]]:
    rows = session.execute(select(ProxyScore.proxy, ProxyScore.dataset, ProxyScore.batch_size,
                                  ProxyScore.seed, ProxyScore.device_type, ProxyScore.model,
                                  ProxyScore.value, ProxyScore.error, ProxyScore.seconds)
                           .where(ProxyScore.architecture_id == architecture_id)
                           .order_by(ProxyScore.proxy, ProxyScore.dataset))
    keys = ("proxy", "dataset", "batch_size", "seed", "device", "model", "value", "error", "seconds")
    return [dict(zip(keys, r)) for r in rows]


def architecture_training(session: Session, architecture_id: int) -> list[dict[str, Any]]:
    rows = session.execute(select(TrainingRun.dataset, TrainingRun.epochs, TrainingRun.seed,
                                  TrainingRun.setup,
                                  TrainingRun.status, TrainingRun.final_test_acc, TrainingRun.seconds,
                                  TrainingRun.device, TrainingRun.history)
                           .where(TrainingRun.architecture_id == architecture_id).order_by(TrainingRun.id))
    keys = ("dataset", "epochs", "seed", "setup", "status", "final_test_acc", "seconds", "device", "history")
    return [dict(zip(keys, r)) for r in rows]


def architecture_benchmark(session: Session, architecture_id: int) -> list[dict[str, Any]]:
    """Every stored benchmark accuracy of one architecture with its percentile in the stored
    table (share of architectures whose value on the same dataset and metric is at most this
    one's, in %, as :meth:`knas_core.groundtruth.GroundTruth.percentile`)."""
    own = session.execute(select(BenchmarkAccuracy.dataset, BenchmarkAccuracy.metric, BenchmarkAccuracy.value)
                          .where(BenchmarkAccuracy.architecture_id == architecture_id)
                          .order_by(BenchmarkAccuracy.dataset, BenchmarkAccuracy.metric)).all()
    out = []
    for dataset, metric, value in own:
        same = and_(BenchmarkAccuracy.dataset == dataset, BenchmarkAccuracy.metric == metric)
        n = session.scalar(select(func.count()).select_from(BenchmarkAccuracy).where(same)) or 0
        below = session.scalar(select(func.count()).select_from(BenchmarkAccuracy)
                               .where(same, BenchmarkAccuracy.value <= value)) or 0
        out.append({"dataset": dataset, "metric": metric, "accuracy": float(value), "n": int(n),
                    "percentile": 100.0 * below / n if n else None})
    return out


def architecture_searches(session: Session, architecture_id: int) -> list[dict[str, Any]]:
    rows = session.execute(select(SearchCandidate.search_id, Search.name, SearchCandidate.stage,
                                  SearchCandidate.score, SearchCandidate.rank, SearchCandidate.accuracy)
                           .join(Search, Search.id == SearchCandidate.search_id)
                           .where(SearchCandidate.architecture_id == architecture_id)
                           .order_by(SearchCandidate.search_id.desc()))
    keys = ("search", "name", "stage", "score", "rank", "accuracy")
    return [dict(zip(keys, r)) for r in rows]
