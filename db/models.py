"""Typed SQLAlchemy 2.0 models of the results store.

A proxy score is unique on everything that determines its value (architecture, proxy,
dataset, the images it was computed on, batch size, seed, device type, network options), so
storing a score twice is a no-op and a stored score is a cache entry for every later search.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from db.status import CandidateStage, DiscoveryStage, SearchStage, Status, TrainingStatus


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(ts: datetime) -> datetime:
    """SQLite hands back naive datetimes; every timestamp we store is UTC."""
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


class Lifecycle:
    """The ending shared by searches and discovery runs (queued -> running -> a terminal status).

    The classes that mix it in declare ``status`` (a :class:`~db.status.Status` value),
    ``stage``, ``cancel_requested``, ``error``, ``result``, ``finished_at`` and ``updated_at``
    columns, and ``final_stage``, the stage a successful run ends in.
    """

    if TYPE_CHECKING:  # declared as columns by each model (annotations here would map columns)
        final_stage: ClassVar[str]
        status: str
        stage: str
        cancel_requested: bool
        error: str | None
        result: dict[str, Any] | None
        finished_at: datetime | None
        updated_at: datetime

    def request_cancel(self) -> None:
        """Set the cooperative cancel flag (the worker stops at its next progress report); one
        still queued is cancelled at once, one that has ended is left as it is."""
        if self.status in Status.ENDED:
            return
        self.cancel_requested = True
        if self.status == Status.QUEUED:
            self.finish(Status.CANCELLED)

    def finish(self, status: Status, error: str | None = None,
               result: dict[str, Any] | None = None) -> bool:
        """End with ``status`` (one of :attr:`Status.ENDED`, with its error or result); one that
        has already ended keeps its first ending. Returns whether this call ended it."""
        if status not in Status.ENDED:
            raise ValueError(f"{status!r} is not a status a run ends with")
        if self.status in Status.ENDED:
            return False
        self.status = status
        if status == Status.DONE:
            self.stage = self.final_stage
        if error is not None:
            self.error = error
        if result is not None:
            self.result = result
        self.finished_at = self.updated_at = utcnow()
        return True


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Search(Lifecycle, Base):
    """One search: its configuration, lifecycle and progress counters."""

    __tablename__ = "searches"
    final_stage: ClassVar[str] = SearchStage.DONE

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: A :class:`~db.status.Status` value.
    status: Mapped[str] = mapped_column(String(16), default=Status.QUEUED.value, index=True)
    #: A :class:`~db.status.SearchStage` value.
    stage: Mapped[str] = mapped_column(String(16), default=SearchStage.QUEUED.value)
    total: Mapped[int] = mapped_column(Integer, default=0)
    scored: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    evaluated: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    score_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    #: Identity of the images the search scores on, fixed by the worker that samples it.
    data_id: Mapped[str | None] = mapped_column(String(128), default=None)
    #: The same for people (where the images came from, how many).
    data_description: Mapped[str | None] = mapped_column(Text, default=None)
    #: Labels people give a search (e.g. ``baseline``, ``seed-sweep``), a JSON list of strings.
    tags: Mapped[list[Any]] = mapped_column(JSON, default=list, server_default="[]")
    #: A free-text note about the search (what it was run for, what was seen).
    note: Mapped[str] = mapped_column(Text, default="", server_default="")

    candidates: Mapped[list[SearchCandidate]] = relationship(back_populates="search")


class Architecture(Base):
    """An architecture of a search space (unique per space and canonical string)."""

    __tablename__ = "architectures"
    __table_args__ = (UniqueConstraint("space", "arch", name="uq_architecture"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    space: Mapped[str] = mapped_column(String(32))
    arch: Mapped[str] = mapped_column(String(255))
    index: Mapped[int | None] = mapped_column(Integer, default=None)


class ProxyScore(Base):
    """A proxy value (or the reason it failed) for one architecture and scoring set-up."""

    __tablename__ = "proxy_scores"
    __table_args__ = (
        UniqueConstraint("architecture_id", "proxy", "dataset", "data", "batch_size", "seed", "device_type",
                         "model", name="uq_proxy_score"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    architecture_id: Mapped[int] = mapped_column(ForeignKey("architectures.id", ondelete="CASCADE"))
    proxy: Mapped[str] = mapped_column(String(64))
    dataset: Mapped[str] = mapped_column(String(32))
    #: The images the score was computed on (:attr:`knas_core.data.ImageSource.identity`, e.g.
    #: ``npz:cifar10_scoring_2k500-train:6468a266f5e4``); empty for scores stored before 0003.
    data: Mapped[str] = mapped_column(String(128), default="", server_default="")
    batch_size: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(Integer)
    device_type: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(64), default="")
    value: Mapped[float | None] = mapped_column(Float, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    #: A failure that may not recur (out of memory, a dead worker; see
    #: :func:`knas_core.scoring.is_transient`): it fails its search, but is no cache entry for a
    #: later one, which scores the architecture again.
    transient: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    architecture: Mapped[Architecture] = relationship()


class TrainingRun(Base):
    """Real training of one architecture: per-epoch history, timing and device."""

    __tablename__ = "training_runs"
    __table_args__ = (
        UniqueConstraint("architecture_id", "dataset", "epochs", "seed", "setup", name="uq_training_run"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    architecture_id: Mapped[int] = mapped_column(ForeignKey("architectures.id", ondelete="CASCADE"))
    dataset: Mapped[str] = mapped_column(String(32))
    epochs: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(Integer)
    setup: Mapped[str] = mapped_column(String(255), default="")
    #: A :class:`~db.status.TrainingStatus` value.
    status: Mapped[str] = mapped_column(String(16), default=TrainingStatus.RUNNING.value)
    history: Mapped[list[Any]] = mapped_column(JSON, default=list)
    final_test_acc: Mapped[float | None] = mapped_column(Float, default=None)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    device: Mapped[str] = mapped_column(String(32), default="")
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    architecture: Mapped[Architecture] = relationship()


class SearchCandidate(Base):
    """An architecture a search sampled, with its score, rank and evaluation."""

    __tablename__ = "search_candidates"
    __table_args__ = (
        UniqueConstraint("search_id", "architecture_id", name="uq_search_candidate"),
        Index("ix_candidate_search_stage", "search_id", "stage"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    search_id: Mapped[int] = mapped_column(ForeignKey("searches.id", ondelete="CASCADE"))
    architecture_id: Mapped[int] = mapped_column(ForeignKey("architectures.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    #: A :class:`~db.status.CandidateStage` value.
    stage: Mapped[str] = mapped_column(String(16), default=CandidateStage.SAMPLED.value)
    score: Mapped[float | None] = mapped_column(Float, default=None)
    rank: Mapped[int | None] = mapped_column(Integer, default=None)
    accuracy: Mapped[float | None] = mapped_column(Float, default=None)
    eval_source: Mapped[str | None] = mapped_column(String(16), default=None)
    training_run_id: Mapped[int | None] = mapped_column(ForeignKey("training_runs.id"), default=None)
    #: When it was last sent or taken for work; the claim lasts the search's ``lease_seconds``.
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    #: ``host:pid`` of the worker process scoring it (None while its chunk waits in the queue);
    #: a claim of a process that no longer runs on this host has expired.
    claimed_by: Mapped[str | None] = mapped_column(String(255), default=None)
    #: The chunk message (numbered per search) that was last sent with it.
    chunk: Mapped[int | None] = mapped_column(Integer, default=None)
    #: How often a worker started scoring it; after ``KNAS_MAX_ATTEMPTS`` it fails.
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    search: Mapped[Search] = relationship(back_populates="candidates")
    architecture: Mapped[Architecture] = relationship(lazy="joined")


class BenchmarkAccuracy(Base):
    """Ground truth from the benchmark table: one (architecture, dataset, metric) value (%)."""

    __tablename__ = "benchmark_accuracies"
    __table_args__ = (UniqueConstraint("architecture_id", "dataset", "metric", name="uq_benchmark_acc"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    architecture_id: Mapped[int] = mapped_column(ForeignKey("architectures.id", ondelete="CASCADE"))
    dataset: Mapped[str] = mapped_column(String(32))
    metric: Mapped[str] = mapped_column(String(16))
    value: Mapped[float] = mapped_column(Float)


# --- proxy discovery (knas_core.discovery) --------------------------------------------------------

class DiscoveryRun(Lifecycle, Base):
    """A proxy-discovery run: its configuration, lifecycle, best program and resume state.

    ``state`` is the last finished generation with its population and random state, so a run
    whose worker died continues from there (the tensor cache on disk spares the network passes).
    """

    __tablename__ = "discovery_runs"
    final_stage: ClassVar[str] = DiscoveryStage.DONE

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: A :class:`~db.status.Status` value.
    status: Mapped[str] = mapped_column(String(16), default=Status.QUEUED.value, index=True)
    #: A :class:`~db.status.DiscoveryStage` value.
    stage: Mapped[str] = mapped_column(String(16), default=DiscoveryStage.QUEUED.value)
    gathered: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    generation: Mapped[int | None] = mapped_column(Integer, default=None)
    best_formula: Mapped[str | None] = mapped_column(Text, default=None)
    train_kendall: Mapped[float | None] = mapped_column(Float, default=None)
    heldout_kendall: Mapped[float | None] = mapped_column(Float, default=None)
    state: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)

    generations: Mapped[list[DiscoveryGeneration]] = relationship(
        back_populates="run", order_by="DiscoveryGeneration.generation", cascade="all, delete-orphan")

    def finish(self, status: Status, error: str | None = None,
               result: dict[str, Any] | None = None) -> bool:
        """As :meth:`Lifecycle.finish`; a result also sets the best program and its taus."""
        if not super().finish(status, error, result):
            return False
        if result is not None:
            self.best_formula = result.get("formula", self.best_formula)
            self.train_kendall = result.get("train_kendall", self.train_kendall)
            self.heldout_kendall = result.get("heldout_kendall", self.heldout_kendall)
        return True


class DiscoveryGeneration(Base):
    """Progress of one generation: best and mean training tau, held-out tau of the best."""

    __tablename__ = "discovery_generations"
    __table_args__ = (UniqueConstraint("run_id", "generation", name="uq_discovery_generation"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("discovery_runs.id", ondelete="CASCADE"))
    generation: Mapped[int] = mapped_column(Integer)
    best_fitness: Mapped[float] = mapped_column(Float)
    mean_fitness: Mapped[float] = mapped_column(Float)
    heldout_kendall: Mapped[float | None] = mapped_column(Float, default=None)
    best_formula: Mapped[str] = mapped_column(Text)
    nonfinite_blocks: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    run: Mapped[DiscoveryRun] = relationship(back_populates="generations")


class DiscoveredProxy(Base):
    """A promoted program: registered as proxy ``name`` in every CLI and worker process."""

    __tablename__ = "discovered_proxies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    formula: Mapped[str] = mapped_column(Text)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("discovery_runs.id", ondelete="SET NULL"),
                                               default=None)
    images: Mapped[int | None] = mapped_column(Integer, default=None)
    batch_size: Mapped[int] = mapped_column(Integer, default=16)
    train_kendall: Mapped[float | None] = mapped_column(Float, default=None)
    heldout_kendall: Mapped[float | None] = mapped_column(Float, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
