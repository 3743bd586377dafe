"""Repository of proxy discovery: runs, per-generation progress and promoted programs.

Promoted programs are registered as proxies by :func:`register_discovered_proxies`, which the
CLI, the workers and the dashboard call at start-up (``knas_core`` only knows formula strings).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import DiscoveredProxy, DiscoveryGeneration, DiscoveryRun, utcnow
from db.repository import insert_ignore
from db.status import DiscoveryStage, Status
from knas_core.errors import ConfigError

log = logging.getLogger(__name__)


def create_run(session: Session, config: dict[str, Any], name: str = "") -> DiscoveryRun:
    run = DiscoveryRun(config=config, name=name, status=Status.QUEUED, stage=DiscoveryStage.QUEUED,
                       total=int(config.get("archs", 0)) + int(config.get("heldout", 0)))
    session.add(run)
    session.flush()
    return run


def get_run(session: Session, run_id: int) -> DiscoveryRun | None:
    return session.get(DiscoveryRun, run_id)


def list_runs(session: Session, limit: int = 100) -> list[DiscoveryRun]:
    return list(session.scalars(select(DiscoveryRun).order_by(DiscoveryRun.id.desc()).limit(limit)))


def incomplete_runs(session: Session) -> list[int]:
    active = DiscoveryRun.status.in_(Status.ACTIVE)
    return list(session.scalars(select(DiscoveryRun.id).where(active)))


def set_stage(run: DiscoveryRun, stage: DiscoveryStage) -> None:
    """Move ``run`` to ``stage`` (a queued one is running from now)."""
    run.stage = stage
    if run.status == Status.QUEUED:
        run.status = Status.RUNNING
        run.started_at = run.started_at or utcnow()
    run.updated_at = utcnow()


def record_generation(session: Session, run: DiscoveryRun, gen: dict[str, Any]) -> None:
    """Store one generation (idempotent) and make it the run's resume point."""
    insert_ignore(session, DiscoveryGeneration, [{
        "run_id": run.id, "generation": gen["generation"], "best_fitness": gen["best_fitness"],
        "mean_fitness": gen["mean_fitness"], "heldout_kendall": gen["heldout_kendall"],
        "best_formula": gen["best_formula"], "nonfinite_blocks": gen["nonfinite_blocks"],
        "seconds": gen["seconds"], "created_at": utcnow()}])
    set_stage(run, DiscoveryStage.EVOLVE)
    run.generation = gen["generation"]
    run.best_formula = gen["best_formula"]
    run.train_kendall = gen["best_fitness"]
    run.heldout_kendall = gen["heldout_kendall"]
    run.state = gen


def generations(session: Session, run_id: int) -> list[DiscoveryGeneration]:
    return list(session.scalars(select(DiscoveryGeneration).where(DiscoveryGeneration.run_id == run_id)
                                .order_by(DiscoveryGeneration.generation)))


def request_cancel(session: Session, run_id: int) -> DiscoveryRun | None:
    run = get_run(session, run_id)
    if run is not None:
        run.request_cancel()
    return run


# --- promoted programs ---------------------------------------------------------------------------

def list_discovered(session: Session) -> list[DiscoveredProxy]:
    return list(session.scalars(select(DiscoveredProxy).order_by(DiscoveredProxy.id)))


def promote(session: Session, name: str, formula: str, *, run_id: int | None = None,
            images: int | None = None, batch_size: int = 16, train_kendall: float | None = None,
            heldout_kendall: float | None = None) -> DiscoveredProxy:
    """Store ``formula`` as proxy ``name`` and register it in this process.

    Raises ``ValueError`` (one line) for an invalid name or program, or a name already in use.
    """
    from knas_core.discovery.proxy import register_formula_proxy

    name = name.strip()
    if not name or not name.replace("_", "").replace("-", "").isalnum() or len(name) > 64:
        raise ConfigError(f"proxy name {name!r} must be 1-64 letters, digits, '_' or '-'")
    existing = session.scalar(select(DiscoveredProxy).where(DiscoveredProxy.name == name))
    if existing is not None and existing.formula != formula:
        raise ConfigError(f"a discovered proxy named {name!r} already exists; choose another name")
    register_formula_proxy(name, formula, images=images, batch_size=batch_size)  # validates both
    if existing is not None:
        return existing
    row = DiscoveredProxy(name=name, formula=formula, run_id=run_id, images=images, batch_size=batch_size,
                          train_kendall=train_kendall, heldout_kendall=heldout_kendall)
    session.add(row)
    session.flush()
    return row


def register_discovered_proxies(url: str | None = None) -> list[str]:
    """Register every promoted program of the database at ``url`` (default
    ``KNAS_DATABASE_URL``) as a proxy in this process; returns the names registered.

    Never raises: a database that is absent, not migrated or unreachable registers nothing (a
    warning is logged), and a row whose name or program is invalid here is skipped.
    """
    import os

    from db.session import database_url, session_scope

    url = database_url(url)
    if url.startswith("sqlite:///") and not os.path.exists(url.removeprefix("sqlite:///")):
        return []  # do not create an empty database just to look
    try:
        from sqlalchemy import inspect

        from db.session import get_engine

        if not inspect(get_engine(url)).has_table(DiscoveredProxy.__tablename__):
            return []
        with session_scope(url) as session:
            rows = [(r.name, r.formula, r.images, r.batch_size) for r in list_discovered(session)]
    except Exception as exc:  # noqa: BLE001 - start-up must not fail because of the store
        log.warning("discovered proxies not loaded from %s: %s", url, exc)
        return []
    if not rows:
        return []
    from knas_core.optional import MissingExtraError

    try:
        from knas_core.discovery.proxy import register_formula_proxy
    except MissingExtraError as exc:  # the built-in proxies still work without DEAP
        log.warning("%d discovered proxies not loaded: %s", len(rows), exc)
        return []
    names = []
    for name, formula, images, batch_size in rows:
        try:
            register_formula_proxy(name, formula, images=images, batch_size=batch_size)
            names.append(name)
        except ValueError as exc:
            log.warning("discovered proxy %r skipped: %s", name, exc)
    return names
