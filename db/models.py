"""Typed SQLAlchemy 2.0 models of the results store.

A proxy score is unique on everything that determines its value (architecture, proxy,
dataset, batch size, seed, device type, network options), so storing a score twice is a
no-op and a stored score is a cache entry for every later search.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

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
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(ts: datetime) -> datetime:
    """SQLite hands back naive datetimes; every timestamp we store is UTC."""
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


SEARCH_STATUSES = ("queued", "running", "done", "failed", "cancelled")
SEARCH_STAGES = ("queued", "sample", "score", "select", "evaluate", "search", "done")
CANDIDATE_STAGES = ("sampled", "scored", "selected", "evaluated")


class Search(Base):
    """One search: its configuration, lifecycle and progress counters."""

    __tablename__ = "searches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    stage: Mapped[str] = mapped_column(String(16), default="queued")
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
        UniqueConstraint("architecture_id", "proxy", "dataset", "batch_size", "seed", "device_type",
                         "model", name="uq_proxy_score"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    architecture_id: Mapped[int] = mapped_column(ForeignKey("architectures.id", ondelete="CASCADE"))
    proxy: Mapped[str] = mapped_column(String(64))
    dataset: Mapped[str] = mapped_column(String(32))
    batch_size: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(Integer)
    device_type: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(64), default="")
    value: Mapped[float | None] = mapped_column(Float, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
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
    status: Mapped[str] = mapped_column(String(16), default="running")
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
    stage: Mapped[str] = mapped_column(String(16), default="sampled")
    score: Mapped[float | None] = mapped_column(Float, default=None)
    rank: Mapped[int | None] = mapped_column(Integer, default=None)
    accuracy: Mapped[float | None] = mapped_column(Float, default=None)
    eval_source: Mapped[str | None] = mapped_column(String(16), default=None)
    training_run_id: Mapped[int | None] = mapped_column(ForeignKey("training_runs.id"), default=None)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)

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
