"""The repository layer: every read and write that ``tasks/`` and ``app/`` make.

Writes that may race between workers (architectures, scores, candidates, ground truth) are
``INSERT ... ON CONFLICT DO NOTHING`` against the unique constraints, so concurrent or
repeated work never duplicates a row. Progress counters are recomputed from the rows, so
they add up whatever the number of workers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import CursorResult, and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from db.models import (
    Architecture,
    Base,
    BenchmarkAccuracy,
    ProxyScore,
    Search,
    SearchCandidate,
    TrainingRun,
    utcnow,
)
from db.status import CandidateStage, SearchStage, Status, TrainingStatus

if TYPE_CHECKING:  # pandas: imported by load_ground_truth only, not by every reader of the store
    from sqlalchemy.dialects import postgresql, sqlite

    from knas_core.groundtruth import GroundTruth


@dataclass(frozen=True)
class ScoreKey:
    """Everything besides the architecture that determines a proxy value.

    ``data``: the identity of the images (:attr:`knas_core.data.ImageSource.identity`), so that
    scores computed on different images (the shipped scoring set, a full data set, synthetic
    inputs) never stand in for each other.
    """

    proxy: str
    dataset: str
    batch_size: int
    seed: int
    device_type: str
    model: str = ""
    data: str = ""

    def as_filter(self) -> Any:
        return and_(ProxyScore.proxy == self.proxy, ProxyScore.dataset == self.dataset,
                    ProxyScore.data == self.data,
                    ProxyScore.batch_size == self.batch_size, ProxyScore.seed == self.seed,
                    ProxyScore.device_type == self.device_type, ProxyScore.model == self.model)


def _insert(session: Session) -> Callable[[type], postgresql.Insert | sqlite.Insert]:
    dialect = session.get_bind().dialect.name  # imported here: a reader needs neither dialect's insert
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert
    if dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert
    raise NotImplementedError(f"unsupported database dialect {dialect!r}; use SQLite or PostgreSQL")


def insert_ignore(session: Session, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows``, silently skipping those that violate a unique constraint.

    One statement executed for many parameter sets (``executemany``; SQLAlchemy batches it as
    "insertmanyvalues" where the driver benefits), so the statement is compiled once: a
    multi-row VALUES clause built per batch cost 3.7 s of compilation per 2,000 rows. Every row
    must give the same keys."""
    rows = list(rows)
    if rows:
        session.execute(_insert(session)(model).on_conflict_do_nothing(), rows)


# --- searches ---------------------------------------------------------------------------------

def create_search(session: Session, config: dict[str, Any], name: str = "") -> Search:
    search = Search(config=config, name=name or config.get("name", ""), status=Status.QUEUED,
                    stage=SearchStage.QUEUED)
    session.add(search)
    session.flush()
    return search


def get_search(session: Session, search_id: int, *, lock: bool = False) -> Search | None:
    stmt = select(Search).where(Search.id == search_id)
    if lock and session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def list_searches(session: Session, limit: int = 100, offset: int = 0) -> list[Search]:
    return list(session.scalars(select(Search).order_by(Search.id.desc()).limit(limit).offset(offset)))


def delete_search(session: Session, search_id: int) -> None:
    search = get_search(session, search_id)
    if search is not None:
        session.query(SearchCandidate).filter(SearchCandidate.search_id == search_id).delete()
        session.delete(search)


def annotate_search(session: Session, search_id: int, tags: Sequence[str], note: str) -> bool:
    """Replace a search's tags and note; False when there is no such search. One UPDATE of those
    two columns only (a worker writing the search's progress at the same time keeps its values,
    and ``updated_at``, the progress time, is left as it is)."""
    done = session.execute(update(Search).where(Search.id == search_id)
                           .values(tags=list(tags), note=note, updated_at=Search.updated_at))
    return bool(cast(CursorResult[Any], done).rowcount)


def request_cancel(session: Session, search_id: int) -> Search | None:
    """Set the cooperative cancel flag; a queued search is cancelled at once."""
    search = get_search(session, search_id)
    if search is not None:
        search.request_cancel()
    return search


def cancel_requested(session: Session, search_id: int) -> bool:
    return bool(session.scalar(select(Search.cancel_requested).where(Search.id == search_id)))


def set_stage(session: Session, search: Search, stage: SearchStage, **fields: Any) -> None:
    """Move ``search`` to ``stage`` (a queued one is running from now) and set ``fields``."""
    search.stage = stage
    if search.status == Status.QUEUED:
        search.status = Status.RUNNING
        search.started_at = search.started_at or utcnow()
    for key, value in fields.items():
        setattr(search, key, value)
    search.updated_at = utcnow()


def incomplete_searches(session: Session) -> list[int]:
    return list(session.scalars(select(Search.id).where(Search.status.in_(Status.ACTIVE))))


def running_searches(session: Session) -> list[Search]:
    return list(session.scalars(select(Search).where(Search.status == Status.RUNNING).order_by(Search.id)))


# --- architectures and candidates --------------------------------------------------------------

def ensure_architectures(session: Session, space: str,
                         archs: Sequence[tuple[str, int | None]]) -> dict[str, int]:
    """Architecture ids for ``(arch, index)`` pairs, inserting the missing ones."""
    insert_ignore(session, Architecture, [{"space": space, "arch": a, "index": i} for a, i in archs])
    names = [a for a, _ in archs]
    ids: dict[str, int] = {}
    for start in range(0, len(names), 500):
        chunk = names[start:start + 500]
        rows = session.execute(select(Architecture.arch, Architecture.id)
                               .where(Architecture.space == space, Architecture.arch.in_(chunk)))
        ids.update({a: i for a, i in rows})
    return ids


def add_candidates(session: Session, search_id: int, architecture_ids: Sequence[int]) -> None:
    insert_ignore(session, SearchCandidate, [
        {"search_id": search_id, "architecture_id": a, "position": p, "stage": CandidateStage.SAMPLED}
        for p, a in enumerate(architecture_ids)])


def candidates(session: Session, search_id: int,
               stage: CandidateStage | None = None) -> list[SearchCandidate]:
    stmt = select(SearchCandidate).where(SearchCandidate.search_id == search_id)
    if stage is not None:
        stmt = stmt.where(SearchCandidate.stage == stage)
    return list(session.scalars(stmt.order_by(SearchCandidate.position)))


Keys = ScoreKey | Sequence[ScoreKey]


def _key_list(keys: Keys) -> list[ScoreKey]:
    return [keys] if isinstance(keys, ScoreKey) else list(keys)


def _has_score(key: ScoreKey) -> Any:
    """EXISTS a score row under ``key`` for the candidate's architecture (correlated)."""
    return select(ProxyScore.id).where(ProxyScore.architecture_id == SearchCandidate.architecture_id,
                                       key.as_filter()).exists()


def _lacks_a_score(keys: Keys) -> Any:
    """The candidate misses a score row under at least one of ``keys`` (one per proxy)."""
    return or_(*[~_has_score(k) for k in _key_list(keys)])


def unscored_candidates(session: Session, search_id: int, keys: Keys, *,
                        lease: timedelta | None = None) -> list[SearchCandidate]:
    """Candidates missing a score row for any of ``keys``; with ``lease``, only those not
    claimed within it."""
    stmt = select(SearchCandidate).where(SearchCandidate.search_id == search_id, _lacks_a_score(keys))
    if lease is not None:
        cutoff = datetime.now(UTC) - lease
        stmt = stmt.where((SearchCandidate.claimed_at.is_(None)) | (SearchCandidate.claimed_at < cutoff))
    return list(session.scalars(stmt.order_by(SearchCandidate.position)))


def unscored_claims(session: Session, search_id: int, keys: Keys) -> list[Any]:
    """``(id, chunk, claimed_at, claimed_by)`` rows of the candidates missing a score row for
    any of ``keys``, in sampling order (light rows: the orchestrator reads them after every
    chunk)."""
    return list(session.execute(
        select(SearchCandidate.id, SearchCandidate.chunk, SearchCandidate.claimed_at,
               SearchCandidate.claimed_by)
        .where(SearchCandidate.search_id == search_id, _lacks_a_score(keys))
        .order_by(SearchCandidate.position)))


def claim(session: Session, candidate_ids: Sequence[int], *, by: str | None = None,
          chunk: int | None = None) -> None:
    """Claim candidates from now: sent in chunk message ``chunk`` (``by`` None: queued), or
    taken by the worker process ``by`` (``host:pid``)."""
    values: dict[str, Any] = {"claimed_at": utcnow(), "claimed_by": by}
    if chunk is not None:
        values["chunk"] = chunk
    session.execute(update(SearchCandidate).where(SearchCandidate.id.in_(candidate_ids)).values(**values))


def last_chunk(session: Session, search_id: int) -> int:
    """The number of the last chunk message sent for the search (0 before the first)."""
    return session.scalar(select(func.max(SearchCandidate.chunk))
                          .where(SearchCandidate.search_id == search_id)) or 0


# --- scores -----------------------------------------------------------------------------------

def get_score(session: Session, architecture_id: int, key: ScoreKey) -> ProxyScore | None:
    return session.scalars(select(ProxyScore).where(ProxyScore.architecture_id == architecture_id,
                                                     key.as_filter())).first()


def save_score(session: Session, architecture_id: int, key: ScoreKey, value: float | None,
               error: str | None, seconds: float, transient: bool = False) -> ProxyScore:
    """Store a score unless an identical key exists (then the stored one wins: a cache hit).

    ``transient``: a failure that may not recur (see :attr:`ProxyScore.transient`)."""
    insert_ignore(session, ProxyScore, [{
        "architecture_id": architecture_id, "proxy": key.proxy, "dataset": key.dataset, "data": key.data,
        "batch_size": key.batch_size, "seed": key.seed, "device_type": key.device_type,
        "model": key.model, "value": value, "error": error, "seconds": seconds,
        "transient": bool(transient and error is not None), "created_at": utcnow()}])
    stored = get_score(session, architecture_id, key)
    assert stored is not None
    return stored


def forget_transient(session: Session, key: ScoreKey, architecture_ids: Sequence[int]) -> int:
    """Delete the transient failures stored under ``key`` for these architectures, so that they
    are scored again (a new search asks for them); returns how many there were."""
    gone = 0
    ids = list(architecture_ids)
    for start in range(0, len(ids), 500):
        # a DELETE gives a CursorResult (SQLAlchemy types execute() as the general Result)
        result = cast(CursorResult[Any], session.execute(delete(ProxyScore).where(
            ProxyScore.architecture_id.in_(ids[start:start + 500]), key.as_filter(),
            ProxyScore.transient.is_(True))))
        gone += result.rowcount or 0
    return gone


def refresh_counters(session: Session, search: Search, keys: Keys) -> None:
    """Recompute ``scored`` (candidates with a row under every key) and ``failed`` (those with
    an error under any key) from the rows: correct with any number of workers."""
    key_list = _key_list(keys)
    base = select(func.count()).select_from(SearchCandidate).where(SearchCandidate.search_id == search.id)
    search.scored = session.scalar(base.where(*[_has_score(k) for k in key_list])) or 0
    failed = [select(ProxyScore.id).where(ProxyScore.architecture_id == SearchCandidate.architecture_id,
                                          k.as_filter(), ProxyScore.error.is_not(None)).exists()
              for k in key_list]
    search.failed = session.scalar(base.where(or_(*failed))) or 0
    search.updated_at = utcnow()


def candidate_scores(session: Session, search_id: int,
                     key: ScoreKey) -> list[tuple[SearchCandidate, ProxyScore]]:
    rows = session.execute(
        select(SearchCandidate, ProxyScore)
        .join(ProxyScore, and_(ProxyScore.architecture_id == SearchCandidate.architecture_id,
                               key.as_filter()))
        .where(SearchCandidate.search_id == search_id).order_by(SearchCandidate.position))
    return [(c, s) for c, s in rows]


def member_scores(session: Session, search_id: int, keys: Sequence[ScoreKey]
                  ) -> dict[int, dict[str, ProxyScore]]:
    """``{candidate id: {proxy: score row}}`` of a search under each key (one per proxy); a
    candidate or proxy without a row is absent. One query per key."""
    out: dict[int, dict[str, ProxyScore]] = {}
    for key in keys:
        rows = session.execute(
            select(SearchCandidate.id, ProxyScore)
            .join(ProxyScore, and_(ProxyScore.architecture_id == SearchCandidate.architecture_id,
                                   key.as_filter()))
            .where(SearchCandidate.search_id == search_id))
        for cand_id, score in rows:
            out.setdefault(cand_id, {})[key.proxy] = score
    return out


def best_scored(session: Session, search_id: int, key: ScoreKey, higher_is_better: bool = True
                ) -> tuple[Architecture, float] | None:
    order = ProxyScore.value.desc() if higher_is_better else ProxyScore.value.asc()
    row = session.execute(
        select(Architecture, ProxyScore.value)
        .join(SearchCandidate, SearchCandidate.architecture_id == Architecture.id)
        .join(ProxyScore, and_(ProxyScore.architecture_id == Architecture.id, key.as_filter()))
        .where(SearchCandidate.search_id == search_id, ProxyScore.value.is_not(None))
        .order_by(order).limit(1)).first()
    return (row[0], float(row[1])) if row and row[1] is not None else None


# --- training ---------------------------------------------------------------------------------

def get_or_create_training_run(session: Session, architecture_id: int, dataset: str, epochs: int,
                               seed: int, setup: str, device: str) -> TrainingRun:
    insert_ignore(session, TrainingRun, [{
        "architecture_id": architecture_id, "dataset": dataset, "epochs": epochs, "seed": seed,
        "setup": setup, "status": TrainingStatus.RUNNING, "history": [], "device": device,
        "created_at": utcnow(), "updated_at": utcnow()}])
    return session.scalars(select(TrainingRun).where(
        TrainingRun.architecture_id == architecture_id, TrainingRun.dataset == dataset,
        TrainingRun.epochs == epochs, TrainingRun.seed == seed, TrainingRun.setup == setup)).one()


# --- ground truth -----------------------------------------------------------------------------

def ensure_benchmark_accuracies(session: Session, rows: Iterable[tuple[int, str, str, float]]) -> None:
    """Store ``(architecture_id, dataset, metric, value)`` ground-truth rows (idempotent)."""
    batch = [{"architecture_id": a, "dataset": d, "metric": m, "value": float(v)} for a, d, m, v in rows]
    for start in range(0, len(batch), 2000):
        insert_ignore(session, BenchmarkAccuracy, batch[start:start + 2000])


def load_ground_truth(session: Session, truth: GroundTruth, space: str = "nb201",
                      indices: Sequence[int] | None = None) -> int:
    """Store the architectures of ``truth`` (all, or those at ``indices``) with all their
    accuracies; returns the number of accuracy rows given."""
    from knas_core.groundtruth import DATASETS, METRICS

    frame = truth.frame if indices is None else truth.frame.loc[list(indices)]
    ids = ensure_architectures(session, space, [(a, int(i)) for i, a in zip(frame.index, frame["arch"])])
    rows = []
    for dataset in DATASETS:
        for metric in METRICS:
            values = truth.accuracy(dataset, metric).loc[frame.index]
            rows += [(ids[a], dataset, metric, float(v)) for a, v in zip(frame["arch"], values)]
    ensure_benchmark_accuracies(session, rows)
    return len(rows)


def benchmark_accuracy(session: Session, architecture_id: int, dataset: str, metric: str) -> float | None:
    return session.scalar(select(BenchmarkAccuracy.value).where(
        BenchmarkAccuracy.architecture_id == architecture_id, BenchmarkAccuracy.dataset == dataset,
        BenchmarkAccuracy.metric == metric))
