"""Read-only queries of the dashboard (``app/``): filtered, paged and aggregated in SQL.

Every function takes a session and returns plain Python values (dicts, tuples, floats), so
the caller may cache them and no ORM object outlives its session. Rankings are filtered,
sorted and paged in the database, so a search of all 15,625 architectures stays fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select
from sqlalchemy.orm import Session

from db.models import (
    Architecture,
    AtlasImport,
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

def store_version(session: Session) -> tuple[int, ...]:
    """A cheap fingerprint of what the whole-space views read (scores, benchmark accuracies,
    architectures, atlas imports): it changes whenever a row is added or deleted, so the
    dashboard caches those views under it for as long as the store stays the same."""
    return tuple(int(session.scalar(q) or 0) for q in (
        select(func.max(ProxyScore.id)), select(func.count()).select_from(ProxyScore),
        select(func.max(BenchmarkAccuracy.id)), select(func.max(Architecture.id)),
        select(func.max(AtlasImport.id))))


def score_catalogue(session: Session) -> list[tuple[str, str, int]]:
    """``(proxy, dataset, successful scores)`` for every stored pair, most scores first."""
    rows = session.execute(select(ProxyScore.proxy, ProxyScore.dataset, func.count())
                           .where(ProxyScore.value.is_not(None))
                           .group_by(ProxyScore.proxy, ProxyScore.dataset))
    return sorted(((p, d, int(n)) for p, d, n in rows), key=lambda r: (-r[2], r[0], r[1]))


@dataclass(frozen=True)
class ScoreSetup:
    """The set-up of a group of scores of one proxy on one dataset (the rest of their key)."""

    data: str
    batch_size: int
    seed: int
    device_type: str
    model: str

    def where(self) -> list[Any]:
        return [ProxyScore.data == self.data, ProxyScore.batch_size == self.batch_size,
                ProxyScore.seed == self.seed, ProxyScore.device_type == self.device_type,
                ProxyScore.model == self.model]


def _core(session: Session) -> Connection:
    """The session's connection, for column queries of many rows: SQLAlchemy Core hands back
    its rows without the ORM's per-row processing (a third of the time for 15,625 rows)."""
    return session.connection()


_SETUP_COLUMNS = (ProxyScore.data, ProxyScore.batch_size, ProxyScore.seed, ProxyScore.device_type,
                  ProxyScore.model)


def main_setups(session: Session, proxy: str | None = None,
                dataset: str | None = None) -> dict[tuple[str, str], ScoreSetup]:
    """``(proxy, dataset) -> set-up`` holding the most successful scores of that proxy on that
    dataset (ties: the one stored first), for every stored pair (or those of ``proxy`` /
    ``dataset``), in one grouped query. Scores of several set-ups (images, batch size, seed,
    device, network) are never mixed in one view."""
    stmt = (select(ProxyScore.proxy, ProxyScore.dataset, *_SETUP_COLUMNS, func.count(),
                   func.min(ProxyScore.id))
            .where(ProxyScore.value.is_not(None))
            .group_by(ProxyScore.proxy, ProxyScore.dataset, *_SETUP_COLUMNS))
    if proxy is not None:
        stmt = stmt.where(ProxyScore.proxy == proxy)
    if dataset is not None:
        stmt = stmt.where(ProxyScore.dataset == dataset)
    best: dict[tuple[str, str], tuple[int, int, ScoreSetup]] = {}
    for p, d, data, batch, seed, device, model, n, first in _core(session).execute(stmt).all():
        rank = (-int(n), int(first))
        if (p, d) not in best or rank < best[(p, d)][:2]:
            best[(p, d)] = (*rank, ScoreSetup(data, batch, seed, device, model))
    return {k: v[2] for k, v in best.items()}


def main_setup(session: Session, proxy: str, dataset: str) -> ScoreSetup | None:
    """The :func:`main_setups` entry of ``proxy`` on ``dataset``; None when it has no score."""
    return main_setups(session, proxy, dataset).get((proxy, dataset))


def proxy_scores(session: Session, proxy: str, dataset: str,
                 setup: ScoreSetup | None = None) -> dict[int, float]:
    """``architecture_id -> value`` of one proxy on one dataset, under ``setup`` (default its
    :func:`main_setup`)."""
    setup = setup or main_setup(session, proxy, dataset)
    if setup is None:
        return {}
    rows = _core(session).execute(select(ProxyScore.architecture_id, ProxyScore.value)
                                  .where(ProxyScore.proxy == proxy, ProxyScore.dataset == dataset,
                                         ProxyScore.value.is_not(None), *setup.where())).all()
    return {a: float(v) for a, v in rows if v is not None}


def scored_accuracies(session: Session, proxy: str, dataset: str, metric: str = "test", *,
                      names: bool = True, setup: ScoreSetup | None = None) -> list[tuple[Any, ...]]:
    """One query for a proxy's scores under ``setup`` (default its :func:`main_setup`) joined
    with the benchmark accuracy of each architecture on ``dataset``: ``(architecture_id, index,
    arch, score, accuracy)`` rows in index order, only architectures with both; ``names=False``
    gives ``(score, accuracy, atlas_import_id)`` (for statistics: no architecture strings to
    carry, and where each score came from)."""
    setup = setup or main_setup(session, proxy, dataset)
    if setup is None:
        return []
    columns: tuple[Any, ...] = (ProxyScore.value, BenchmarkAccuracy.value)
    columns = (ProxyScore.architecture_id, Architecture.index, Architecture.arch, *columns) if names \
        else (*columns, ProxyScore.atlas_import_id)
    stmt = (select(*columns)
            .join(BenchmarkAccuracy, and_(BenchmarkAccuracy.architecture_id == ProxyScore.architecture_id,
                                          BenchmarkAccuracy.dataset == dataset,
                                          BenchmarkAccuracy.metric == metric))
            .where(ProxyScore.proxy == proxy, ProxyScore.dataset == dataset, ProxyScore.value.is_not(None),
                   *setup.where()))
    if names:
        stmt = (stmt.join(Architecture, Architecture.id == ProxyScore.architecture_id)
                .order_by(Architecture.index.is_(None), Architecture.index, ProxyScore.architecture_id))
    return [tuple(r) for r in _core(session).execute(stmt).all()]


def score_sources(session: Session, proxy: str, dataset: str) -> dict[int | None, int]:
    """How many of a proxy's scores under its :func:`main_setup` each atlas import stored
    (``None``: computed here)."""
    setup = main_setup(session, proxy, dataset)
    if setup is None:
        return {}
    rows = session.execute(select(ProxyScore.atlas_import_id, func.count())
                           .where(ProxyScore.proxy == proxy, ProxyScore.dataset == dataset,
                                  ProxyScore.value.is_not(None), *setup.where())
                           .group_by(ProxyScore.atlas_import_id))
    return {i: int(n) for i, n in rows}


def atlas_imports(session: Session) -> dict[int, dict[str, Any]]:
    """``id -> record`` of every atlas import (file, path, sha256, setups, proxies, counts, when)."""
    return {r.id: {"id": r.id, "file": r.file, "path": r.path, "sha256": r.sha256, "setups": list(r.setups),
                   "spaces": list(r.spaces), "proxies": list(r.proxies), "rows": r.rows,
                   "inserted": r.inserted, "identical": r.identical, "conflicts": r.conflicts,
                   "imported_at": r.imported_at}
            for r in session.scalars(select(AtlasImport).order_by(AtlasImport.id))}


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
    """Every stored score of one architecture with its set-up and ``atlas_import`` (the id of
    the atlas import that stored it; None for a computed one)."""
    rows = session.execute(select(ProxyScore.proxy, ProxyScore.dataset, ProxyScore.data,
                                  ProxyScore.batch_size, ProxyScore.seed, ProxyScore.device_type,
                                  ProxyScore.model,
                                  ProxyScore.value, ProxyScore.error, ProxyScore.seconds,
                                  ProxyScore.atlas_import_id)
                           .where(ProxyScore.architecture_id == architecture_id)
                           .order_by(ProxyScore.proxy, ProxyScore.dataset))
    keys = ("proxy", "dataset", "data", "batch_size", "seed", "device", "model", "value", "error", "seconds",
            "atlas_import")
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
