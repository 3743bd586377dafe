"""Proxy discovery on the workers: the ``knas.discover`` task (queue ``score``) and its Python
API (submit, progress, cancel, promote).

The database is the source of truth. Every generation is stored with its population and random
state before the next begins, and the tensor cache on disk is written architecture by
architecture, so a run whose worker dies is re-delivered (late acknowledgement) or re-dispatched
by the next worker that starts, and continues from its last generation; an error ends the run
as ``failed`` with a one-line reason.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.exc import OperationalError

from db import discovery as repo
from db.models import TERMINAL, DiscoveryRun
from db.session import session_scope
from knas_core.scoring import describe_exception
from tasks.celery_app import app
from tasks.progress import ProgressThrottle

log = logging.getLogger(__name__)
RETRY = {"autoretry_for": (OperationalError, ConnectionError), "retry_backoff": True,
         "retry_backoff_max": 60, "retry_jitter": True, "max_retries": 8}


class _Cancelled(Exception):
    pass


def _fail(run_id: int, reason: str) -> None:
    with session_scope() as session:
        run = repo.get_run(session, run_id)
        if run is not None:
            run.finish("failed", error=reason)
    log.warning("discovery run %s failed: %s", run_id, reason)


@app.task(name="knas.discover", **RETRY)
def discover(run_id: int) -> str:
    """Run (or continue) discovery run ``run_id``; returns its final status."""
    from knas_core.discovery.evolve import Cancelled, Generation
    from knas_core.discovery.run import DiscoveryConfig, run_discovery

    with session_scope() as session:
        run = repo.get_run(session, run_id)
        if run is None:
            return "missing"
        if run.status in TERMINAL:
            return run.status
        if run.cancel_requested:
            run.finish("cancelled")
            return "cancelled"
        try:
            cfg = DiscoveryConfig.from_dict(run.config)
        except (TypeError, ValueError) as exc:
            run.finish("failed", error=describe_exception(exc))
            return "failed"
        resume = Generation(**run.state) if run.state else None
        repo.set_stage(run, "gather")
    throttle = ProgressThrottle()

    def progress(stage: str, done: int, total: int) -> None:
        if stage != "gather" or not throttle.due(done, total):
            return
        with session_scope() as s:
            row = s.get_one(DiscoveryRun, run_id)
            if row.cancel_requested:
                raise _Cancelled
            row.gathered, row.total = done, total

    def on_generation(gen: Generation) -> None:
        with session_scope() as s:
            row = s.get_one(DiscoveryRun, run_id)
            repo.record_generation(s, row, gen.to_dict(with_state=True))
            if row.cancel_requested:
                raise Cancelled

    try:
        result = run_discovery(cfg, progress, on_generation, resume)
    except (_Cancelled, Cancelled):
        with session_scope() as s:
            s.get_one(DiscoveryRun, run_id).finish("cancelled")
        return "cancelled"
    except OperationalError:
        raise
    except Exception as exc:  # noqa: BLE001 - the reason goes on the run; the worker lives
        _fail(run_id, describe_exception(exc))
        return "failed"
    with session_scope() as s:
        run = s.get_one(DiscoveryRun, run_id)
        result.pop("history", None)  # stored row by row already
        run.finish("done", result=result)
        return run.status


# --- API --------------------------------------------------------------------------------------

def submit_discovery(config: dict[str, Any], name: str = "") -> int:
    """Validate ``config`` (fields of :class:`~knas_core.discovery.run.DiscoveryConfig`), store a
    queued run and enqueue it; returns the run id. Nothing is left behind if the broker is down."""
    from knas_core.discovery.run import DiscoveryConfig
    from tasks.api import _check_broker

    cfg = DiscoveryConfig.from_dict(config)
    _check_broker()
    with session_scope() as session:
        run_id = repo.create_run(session, cfg.to_dict(), name).id
    try:
        discover.apply_async(args=[run_id], retry=False)
    except Exception as exc:  # noqa: BLE001
        with session_scope() as session:
            session.delete(repo.get_run(session, run_id))
        from tasks.api import BrokerUnavailableError

        raise BrokerUnavailableError(f"could not enqueue the discovery run: {exc}") from None
    return run_id


def cancel_discovery(run_id: int) -> str:
    """Ask a run to stop (it stops between architectures or generations); returns its status."""
    with session_scope() as session:
        run = repo.request_cancel(session, run_id)
        if run is None:
            raise KeyError(f"no discovery run with id {run_id}")
        return run.status


def discovery_progress(run_id: int, url: str | None = None) -> dict[str, Any]:
    """Status, stage, counters, best program and the per-generation rows of a run."""
    with session_scope(url) as session:
        run = repo.get_run(session, run_id)
        if run is None:
            raise KeyError(f"no discovery run with id {run_id}")
        return {
            "id": run.id, "name": run.name, "status": run.status, "stage": run.stage,
            "gathered": run.gathered, "total": run.total, "generation": run.generation,
            "generations": run.config.get("generations"), "best_formula": run.best_formula,
            "train_kendall": run.train_kendall, "heldout_kendall": run.heldout_kendall,
            "error": run.error, "config": run.config,
            "history": [{"generation": g.generation, "best_fitness": g.best_fitness,
                         "mean_fitness": g.mean_fitness, "heldout_kendall": g.heldout_kendall,
                         "best_formula": g.best_formula, "nonfinite_blocks": g.nonfinite_blocks,
                         "seconds": g.seconds} for g in repo.generations(session, run_id)],
        }


def promote_run(run_id: int, name: str, url: str | None = None) -> dict[str, Any]:
    """Promote the best program of run ``run_id`` to proxy ``name`` (stored and registered)."""
    with session_scope(url) as session:
        run = repo.get_run(session, run_id)
        if run is None:
            raise KeyError(f"no discovery run with id {run_id}")
        if not run.best_formula:
            raise ValueError(f"discovery run {run_id} has no program yet")
        row = repo.promote(session, name, run.best_formula, run_id=run.id, images=run.config.get("images"),
                           batch_size=int(run.config.get("batch_size", 16)),
                           train_kendall=run.train_kendall, heldout_kendall=run.heldout_kendall)
        return {"name": row.name, "formula": row.formula}
