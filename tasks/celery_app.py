"""The Celery application, configured from the settings (:mod:`knas_core.settings`,
:mod:`tasks.settings`) when its configuration is first used, not at import: importing this
module touches no database and creates no file. A starting worker checks the store's schema and
registers the proxies promoted into it (:func:`_start_worker`).

Reliability settings: late acknowledgement (a task is acknowledged after it ran), prefetch 1,
re-queue on worker loss, exponential-backoff retries for transient database errors, and time
limits. The database, not the queue, is the source of truth: every task is idempotent, a
starting worker advances every unfinished search, and every worker sweeps for expired leases
every ``KNAS_SWEEP_SECONDS`` (see :func:`tasks.search.sweep`), so work lost with a killed
worker (e.g. on the embedded broker, which cannot re-deliver) is picked up again while any
worker lives, without queueing work that is still in flight.
"""

from __future__ import annotations

import logging
import os
import threading

from knas_core.optional import missing_extra
from knas_core.plugins import PluginError, load_plugins
from knas_core.settings import get_settings
from tasks import settings

try:
    from celery import Celery
    from celery.signals import task_failure, worker_init, worker_process_init, worker_ready, worker_shutdown
    from kombu import Queue
except ImportError as exc:
    raise missing_extra(exc, "workers", "the task queue (knas worker, submit, status, cancel, up)") from None

log = logging.getLogger(__name__)

SCORE_QUEUE, TRAIN_QUEUE = "score", "train"

app = Celery("knas", include=["tasks.search", "tasks.discovery"])
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_default_queue=SCORE_QUEUE,
    task_queues=(Queue(SCORE_QUEUE), Queue(TRAIN_QUEUE)),
    task_routes={"knas.train_candidate": {"queue": TRAIN_QUEUE}, "knas.*": {"queue": SCORE_QUEUE}},
    task_ignore_result=True,
    task_store_errors_even_if_ignored=True,
    broker_connection_retry_on_startup=True,
    worker_cancel_long_running_tasks_on_connection_loss=True,
)


#: Seconds between two polls of the embedded (SQLite) broker while its queue is empty. kombu's
#: default, 1 s, left each worker process idle 0.8 s between two tasks on average: 11.5 % of
#: the score atlas's process time with 25-architecture chunks (docs/RESULTS.md, "Score atlas").
#: A poll is one query on a small table.
EMBEDDED_POLLING_SECONDS = 0.1


def _from_settings() -> dict[str, object]:
    """The configuration that depends on the settings; Celery calls this when the configuration
    is first used (sending, connecting, starting a worker), so that importing this module
    creates no state folder."""
    limit = get_settings().task_time_limit
    if settings.broker_url().startswith(("sqla+", "sqlalchemy+")):
        # kombu's SQLAlchemy transport hands every transport option to create_engine, so the
        # interval is set on its Transport class (an attribute kombu documents as configurable)
        from kombu.transport import sqlalchemy as kombu_sqlalchemy

        kombu_sqlalchemy.Transport.polling_interval = EMBEDDED_POLLING_SECONDS
    return {"broker_url": settings.broker_url(), "result_backend": settings.result_backend(),
            "task_time_limit": limit, "task_soft_time_limit": max(1, limit - 60),
            "broker_transport_options": settings.transport_options()}


app.add_defaults(_from_settings)
try:
    load_plugins()  # $KNAS_PLUGINS and the knas.proxies / knas.spaces entry points
except PluginError as exc:  # serve what loaded; searches naming a missing plugin fail with the reason
    log.error("%s", exc)


def apply_thread_budget() -> int | None:
    """Set torch's intra-op threads from ``KNAS_TORCH_THREADS`` (``knas worker --threads``).

    Returns the number set, or None when the variable is absent (torch's default stays).
    """
    threads = get_settings().torch_threads
    if threads is None:
        return None
    import torch

    torch.set_num_threads(threads)
    log.info("torch threads per worker process: %s", threads)
    return threads


_IN_WORKER = {"yes": False}  # a worker process (not eager tasks in a client or a test)


@worker_init.connect
def _start_worker(**_: object) -> None:
    """Refuse to start on a store whose schema is not this version's (``knas db upgrade``
    migrates it), then register the programs promoted into it as proxies (searches validate
    proxy names). The forked pool processes inherit both."""
    from db.discovery import register_discovered_proxies
    from db.migrate import SchemaOutOfDateError, check_schema

    try:
        check_schema()
    except SchemaOutOfDateError as exc:
        log.critical("%s", exc)
        raise SystemExit(f"knas: error: {exc}") from None
    register_discovered_proxies()
    _IN_WORKER["yes"] = True  # inherited by the forked pool processes


@task_failure.connect
def _stop_on_lost_database(exception: BaseException | None = None, **_: object) -> None:
    """The SQLite file was deleted or replaced: every further task would fail, or worse write
    into an unlinked file, so the worker stops (warm shutdown of the main process)."""
    from db.session import DatabaseFileGoneError

    if not isinstance(exception, DatabaseFileGoneError) or not _IN_WORKER["yes"]:
        return
    import multiprocessing
    import signal

    log.critical("stopping the worker: %s", exception)
    main = os.getpid() if multiprocessing.current_process().name == "MainProcess" else os.getppid()
    os.kill(main, signal.SIGTERM)


@worker_process_init.connect
def _fresh_connections(**_: object) -> None:
    """A forked pool child must not reuse the parent's database connections, and takes its
    share of the CPU cores (see :func:`knas_core.device.thread_budget`)."""
    from db.session import dispose_engines

    dispose_engines()
    apply_thread_budget()


@worker_ready.connect
def _resume_unfinished(sender: object = None, **_: object) -> None:
    """Advance every queued or running search: work held by a dead worker is redone.

    Chunked scoring sends only candidates no live claim holds (never sent, lease expired, or
    taken by a process of this host that is gone), within the dispatch window, so starting
    workers never duplicates the messages in flight; a whole-strategy task or training is
    sent again (it resumes from what it stored)."""
    from db.discovery import incomplete_runs
    from db.repository import incomplete_searches
    from db.session import session_scope
    from tasks.discovery import discover
    from tasks.search import advance_search

    with session_scope() as session:
        ids = incomplete_searches(session)
        runs = incomplete_runs(session)
    for search_id in ids:
        advance_search.apply_async(args=[search_id], kwargs={"restart": True})
    for run_id in runs:
        discover.apply_async(args=[run_id])
    if ids or runs:
        log.info("resumed searches %s, discovery runs %s", ids, runs)


_SWEEPER_STOP = threading.Event()


def _sweep_forever(interval: float) -> None:
    from tasks.search import sweep

    while not _SWEEPER_STOP.wait(interval):
        try:
            due = sweep()
        except Exception:  # e.g. the database is briefly away: try next time
            log.exception("lease sweep failed")
            continue
        if due:
            log.info("lease sweep: advancing searches %s", due)


@worker_ready.connect
def _start_sweeper(sender: object = None, **_: object) -> None:
    """Enforce leases while this worker lives: every ``KNAS_SWEEP_SECONDS`` a thread of the
    main process advances the running searches whose chunks are lost (see
    :func:`tasks.search.sweep`), so a chunk that died with another worker is sent again even
    when nothing else would call the orchestrator."""
    interval = get_settings().sweep_seconds
    if interval <= 0:
        return
    _SWEEPER_STOP.clear()
    threading.Thread(target=_sweep_forever, args=(interval,), name="knas-lease-sweeper", daemon=True).start()
    log.info("lease sweeper: every %s s", interval)


@worker_shutdown.connect
def _stop_sweeper(**_: object) -> None:
    _SWEEPER_STOP.set()
