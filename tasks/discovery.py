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
from db.models import DiscoveryRun
from db.session import session_scope
from db.status import DiscoveryStage, Status
from knas_core.scoring import describe_exception
from tasks.celery_app import app
from tasks.common import RETRY, Cancelled, fail, submit_with_rollback
from tasks.progress import ProgressThrottle

log = logging.getLogger(__name__)


@app.task(name="knas.discover", **RETRY)
def discover(run_id: int) -> str:
    """Run (or continue) discovery run ``run_id``; returns its final status."""
    from knas_core.discovery.evolve import Generation
    from knas_core.discovery.run import DiscoveryConfig, DiscoveryProgress, run_discovery

    with session_scope() as session:
        run = repo.get_run(session, run_id)
        if run is None:
            return "missing"
        if run.status in Status.ENDED:
            return run.status
        if run.cancel_requested:
            run.finish(Status.CANCELLED)
            return Status.CANCELLED
        try:
            cfg = DiscoveryConfig.from_dict(run.config)
        except (TypeError, ValueError) as exc:
            run.finish(Status.FAILED, error=describe_exception(exc))
            return Status.FAILED
        resume = Generation(**run.state) if run.state else None
        repo.set_stage(run, DiscoveryStage.GATHER)
    throttle = ProgressThrottle()

    def progress(stage: str, done: int, total: int) -> None:
        if stage != DiscoveryProgress.GATHER or not throttle.due(done, total):
            return
        with session_scope() as s:
            row = s.get_one(DiscoveryRun, run_id)
            if row.cancel_requested:
                raise Cancelled
            row.gathered, row.total = done, total

    def on_generation(gen: Generation) -> None:
        with session_scope() as s:
            row = s.get_one(DiscoveryRun, run_id)
            repo.record_generation(s, row, gen.to_dict(with_state=True))
            if row.cancel_requested:
                raise Cancelled

    try:
        result = run_discovery(cfg, progress, on_generation, resume)
    except Cancelled:
        with session_scope() as s:
            s.get_one(DiscoveryRun, run_id).finish(Status.CANCELLED)
        return Status.CANCELLED
    except OperationalError:
        raise
    except Exception as exc:  # noqa: BLE001 - the reason goes on the run; the worker lives
        fail(repo.get_run, run_id, describe_exception(exc), "discovery run")
        return Status.FAILED
    with session_scope() as s:
        run = s.get_one(DiscoveryRun, run_id)
        result.pop("history", None)  # stored row by row already
        run.finish(Status.DONE, result=result)
        return run.status


# --- API --------------------------------------------------------------------------------------

def submit_discovery(config: dict[str, Any], name: str = "") -> int:
    """Validate ``config`` (fields of :class:`~knas_core.discovery.run.DiscoveryConfig`), store a
    queued run and enqueue it; returns the run id. Nothing is left behind if the broker is down
    (:class:`~tasks.common.BrokerUnavailableError`)."""
    from knas_core.discovery.run import DiscoveryConfig

    cfg = DiscoveryConfig.from_dict(config)
    return submit_with_rollback(lambda session: repo.create_run(session, cfg.to_dict(), name).id, discover,
                                lambda session, run_id: session.delete(repo.get_run(session, run_id)),
                                "discovery run")


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
