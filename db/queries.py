"""Read-only queries of the dashboard (``app/``), aggregated in SQL where the database can.

Every function takes a session and returns plain Python values (dicts, tuples, floats), so
the caller may cache them and no ORM object outlives its session.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

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

if TYPE_CHECKING:
    from db.repository import ScoreKey


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


def candidate_rows(session: Session, search_id: int) -> list[dict[str, Any]]:
    """Every candidate of a search in sampling order, as stored: ``architecture_id, index, arch,
    position, stage, score, rank, accuracy, eval`` (``score`` and ``rank`` are written when the
    search selects; :mod:`app.views.scores` reads the scores as they are stored before that)."""
    stmt = (select(SearchCandidate.architecture_id, Architecture.index, Architecture.arch,
                   SearchCandidate.position, SearchCandidate.stage, SearchCandidate.score,
                   SearchCandidate.rank, SearchCandidate.accuracy, SearchCandidate.eval_source)
            .join(Architecture, Architecture.id == SearchCandidate.architecture_id)
            .where(SearchCandidate.search_id == search_id).order_by(SearchCandidate.position))
    keys = ("architecture_id", "index", "arch", "position", "stage", "score", "rank", "accuracy", "eval")
    return [dict(zip(keys, r)) for r in session.execute(stmt)]


def search_scoring(session: Session, search_id: int) -> dict[str, Any] | None:
    """What the score keys and the pace of a search need: ``config, data_id, status, stage,
    total, scored, evaluated, score_started_at`` (None for an unknown id)."""
    row = session.execute(select(Search.config, Search.data_id, Search.status, Search.stage, Search.total,
                                 Search.scored, Search.evaluated, Search.score_started_at)
                          .where(Search.id == search_id)).first()
    keys = ("config", "data_id", "status", "stage", "total", "scored", "evaluated", "score_started_at")
    return dict(zip(keys, row)) if row else None


def _setup_filter(key: ScoreKey, *, device: bool = True, data: bool = True) -> Any:
    """``key``'s columns as a filter, leaving out the device type and / or the images."""
    conds = [ProxyScore.proxy == key.proxy, ProxyScore.dataset == key.dataset,
             ProxyScore.batch_size == key.batch_size, ProxyScore.seed == key.seed,
             ProxyScore.model == key.model]
    if device:
        conds.append(ProxyScore.device_type == key.device_type)
    if data:
        conds.append(ProxyScore.data == key.data)
    return and_(*conds)


def scores_under_key(session: Session, search_id: int, key: ScoreKey, *,
                     any_device: bool = False) -> dict[int, tuple[float | None, str | None]]:
    """``architecture_id -> (value, error)`` of the search's candidates stored under ``key``.

    ``any_device``: the key's device type is not known to this process (a search on ``auto``
    devices, read by a dashboard without the workers' GPU); the device type holding the most
    of the candidates' scores is used."""
    stmt = (select(ProxyScore.architecture_id, ProxyScore.value, ProxyScore.error, ProxyScore.device_type)
            .join(SearchCandidate, SearchCandidate.architecture_id == ProxyScore.architecture_id)
            .where(SearchCandidate.search_id == search_id, _setup_filter(key, device=not any_device))
            .order_by(ProxyScore.id))
    rows = session.execute(stmt).all()
    if any_device and rows:
        devices = Counter(r[3] for r in rows)
        chosen = max(devices, key=lambda d: devices[d])
        rows = [r for r in rows if r[3] == chosen]
    return {r[0]: (None if r[1] is None else float(r[1]), r[2]) for r in rows}


def fresh_architectures(session: Session, keys: Sequence[ScoreKey], since: datetime, *,
                        any_data: bool = False, any_device: bool = False) -> int:
    """Architectures with a score stored under any of ``keys`` at or after ``since``: the work
    done since then, cache hits (scores stored before) left out. ``any_data`` / ``any_device``
    leave the images / the device type out of the keys (not known yet, or not to this process)."""
    if not keys:
        return 0
    match = or_(*(_setup_filter(k, device=not any_device, data=not any_data) for k in keys))
    return int(session.scalar(select(func.count(func.distinct(ProxyScore.architecture_id)))
                              .where(match, ProxyScore.created_at >= since)) or 0)


def candidate_values(session: Session,
                     search_id: int) -> list[tuple[int, float | None, float | None, int | None]]:
    """``(position, score, accuracy, rank)`` of every candidate, in sampling order."""
    rows = session.execute(select(SearchCandidate.position, SearchCandidate.score, SearchCandidate.accuracy,
                                  SearchCandidate.rank)
                           .where(SearchCandidate.search_id == search_id).order_by(SearchCandidate.position))
    return [tuple(r) for r in rows]  # type: ignore[misc]


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


class ScoreSetup(NamedTuple):
    """Everything besides the proxy, the data set and the architecture that a stored score
    depends on (the rest of :class:`db.repository.ScoreKey`): scores of different set-ups are
    never mixed. ``data`` is the images' identity (empty for scores stored before revision 0003)."""

    batch_size: int
    seed: int
    device_type: str
    model: str
    data: str

    def as_filter(self) -> Any:
        return and_(ProxyScore.batch_size == self.batch_size, ProxyScore.seed == self.seed,
                    ProxyScore.device_type == self.device_type, ProxyScore.model == self.model,
                    ProxyScore.data == self.data)


_SETUP_COLUMNS = (ProxyScore.batch_size, ProxyScore.seed, ProxyScore.device_type, ProxyScore.model,
                  ProxyScore.data)


def _core(session: Session) -> Connection:
    """The session's connection, for column queries of many rows: SQLAlchemy Core hands back
    its rows without the ORM's per-row processing."""
    return session.connection()


def all_score_setups(session: Session, dataset: str | None = None
                     ) -> dict[tuple[str, str], list[tuple[ScoreSetup, int]]]:
    """:func:`score_setups` of every stored (proxy, dataset) pair (of ``dataset`` only when
    given) in one grouped query: ``(proxy, dataset) -> [(set-up, scores)]``, most scores first
    (ties: the earliest stored first)."""
    stmt = (select(ProxyScore.proxy, ProxyScore.dataset, *_SETUP_COLUMNS, func.count(),
                   func.min(ProxyScore.id))
            .where(ProxyScore.value.is_not(None))
            .group_by(ProxyScore.proxy, ProxyScore.dataset, *_SETUP_COLUMNS))
    if dataset is not None:
        stmt = stmt.where(ProxyScore.dataset == dataset)
    found: dict[tuple[str, str], list[tuple[int, int, ScoreSetup]]] = {}
    for proxy, ds, batch, seed, device, model, data, n, first in _core(session).execute(stmt).all():
        setup = ScoreSetup(int(batch), int(seed), device, model, data)
        found.setdefault((proxy, ds), []).append((-int(n), int(first), setup))
    return {pair: [(setup, -neg) for neg, _, setup in sorted(rows)] for pair, rows in found.items()}


def score_setups(session: Session, proxy: str, dataset: str) -> list[tuple[ScoreSetup, int]]:
    """The set-ups holding successful scores of ``proxy`` on ``dataset`` with their counts, most
    scores first (ties: the earliest stored first)."""
    rows = session.execute(select(*_SETUP_COLUMNS, func.count(), func.min(ProxyScore.id))
                           .where(ProxyScore.proxy == proxy, ProxyScore.dataset == dataset,
                                  ProxyScore.value.is_not(None))
                           .group_by(*_SETUP_COLUMNS)).all()
    ordered = sorted(rows, key=lambda r: (-r[5], r[6]))
    return [(ScoreSetup(int(r[0]), int(r[1]), r[2], r[3], r[4]), int(r[5])) for r in ordered]


def _main_setup(session: Session, proxy: str, dataset: str) -> ScoreSetup | None:
    found = score_setups(session, proxy, dataset)
    return found[0][0] if found else None


def proxy_scores(session: Session, proxy: str, dataset: str,
                 setup: ScoreSetup | None = None) -> dict[int, float]:
    """``architecture_id -> value`` of one proxy on one dataset under one set-up: ``setup``, or
    by default the one holding the most scores (:func:`score_setups`' first)."""
    setup = setup or _main_setup(session, proxy, dataset)
    if setup is None:
        return {}
    rows = _core(session).execute(select(ProxyScore.architecture_id, ProxyScore.value)
                                  .where(ProxyScore.proxy == proxy, ProxyScore.dataset == dataset,
                                         ProxyScore.value.is_not(None), setup.as_filter())).all()
    return {a: float(v) for a, v in rows if v is not None}


def scored_accuracies(session: Session, proxy: str, dataset: str, metric: str = "test",
                      setup: ScoreSetup | None = None, *, names: bool = True) -> list[tuple[Any, ...]]:
    """One query for a proxy's scores under ``setup`` (default: the set-up holding the most)
    joined with each architecture's benchmark accuracy on ``dataset``: ``(architecture_id,
    index, arch, score, accuracy)`` rows in index order, only architectures with both;
    ``names=False`` gives ``(score, accuracy, atlas_import_id)`` (for statistics: no
    architecture strings to carry, and where each score came from)."""
    setup = setup or _main_setup(session, proxy, dataset)
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
                   setup.as_filter()))
    if names:
        stmt = (stmt.join(Architecture, Architecture.id == ProxyScore.architecture_id)
                .order_by(Architecture.index.is_(None), Architecture.index, ProxyScore.architecture_id))
    return [tuple(r) for r in _core(session).execute(stmt).all()]


def score_sources(session: Session, proxy: str, dataset: str,
                  setup: ScoreSetup | None = None) -> dict[int | None, int]:
    """How many of a proxy's scores under ``setup`` (default: the set-up holding the most) each
    atlas import stored (``None``: computed in this store)."""
    setup = setup or _main_setup(session, proxy, dataset)
    if setup is None:
        return {}
    rows = session.execute(select(ProxyScore.atlas_import_id, func.count())
                           .where(ProxyScore.proxy == proxy, ProxyScore.dataset == dataset,
                                  ProxyScore.value.is_not(None), setup.as_filter())
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
