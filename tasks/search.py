"""Search tasks: the orchestrator that moves a search through its stages, chunked scoring and
candidate training.

Stages: ``sample -> score -> select -> evaluate -> done``. :func:`advance_search` is
idempotent: it reads the search from the database, does what the current stage needs (or
dispatches it as ``score_chunk`` / ``train_candidate`` tasks, which call it again when they
finish) and returns. Because it only looks at rows, it resumes a search after any crash.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from db import repository as repo
from db.models import Search, SearchCandidate, TrainingRun, as_utc, utcnow
from db.session import session_scope
from db.status import CandidateStage, SearchStage, Status, TrainingStatus
from knas_core.errors import InputError
from knas_core.groundtruth import GroundTruth, canonical_dataset
from knas_core.proxies import get_proxy
from knas_core.scoring import Scorer, describe_exception, is_transient
from knas_core.search.base import ProgressStage
from knas_core.settings import get_settings
from knas_core.spaces import get_space, open_space
from tasks.celery_app import app
from tasks.common import RETRY, Cancelled, fail
from tasks.progress import ProgressThrottle
from tasks.schema import ConfigError, SearchConfig, load_config

log = logging.getLogger(__name__)


def score_key(cfg: SearchConfig, device_type: str, data: str, proxy: str | None = None) -> repo.ScoreKey:
    """The cache key of ``proxy`` (default: the search's proxy) under this search's set-up, on
    the images whose identity is ``data``."""
    name = proxy or cfg.proxy
    return repo.ScoreKey(name, canonical_dataset(cfg.dataset), get_proxy(name).batch_size or cfg.batch_size,
                         cfg.seed, device_type, cfg.model.key(), data)


def score_keys(cfg: SearchConfig, device_type: str, data: str) -> list[repo.ScoreKey]:
    """One :func:`score_key` per proxy of the search (one for a single proxy, one per member of
    an ensemble), in the order of :meth:`SearchConfig.proxy_list`."""
    return [score_key(cfg, device_type, data, p) for p in cfg.proxy_list()]


@dataclass(frozen=True)
class SearchKeys:
    """The score key of each proxy of a search (in the search's order), whether this process
    knows the keys' device type, each proxy's direction and its ensemble weight."""

    keys: dict[str, repo.ScoreKey]
    device_known: bool
    higher_is_better: dict[str, bool]
    weights: dict[str, float] = field(default_factory=dict)

    @property
    def proxies(self) -> list[str]:
        return list(self.keys)


def search_keys(config: Mapping[str, Any], data_id: str | None) -> SearchKeys | None:
    """The score keys of a search with this stored ``config`` scoring the images ``data_id``,
    or None when this process cannot read the config (e.g. a plugin's proxy it has not loaded).

    A search on ``device: auto`` has the device type of the worker that scored it, which this
    process (the dashboard) may not share: ``device_known`` is then False and the readers use
    the device type holding the scores."""
    from knas_core.plugins import load_plugins

    try:
        load_plugins()
        cfg = load_config(dict(config))
        higher = {p: get_proxy(p).higher_is_better for p in cfg.proxy_list()}
    except InputError:
        return None
    keys = dict(zip(cfg.proxy_list(), score_keys(cfg, device_type(cfg), data_id or ""), strict=True))
    return SearchKeys(keys, cfg.device != "auto", higher, cfg.proxy_weights())


def ranking_values(session: Session, search_id: int, keys: list[repo.ScoreKey],
                   weights: Mapping[str, float] | None = None,
                   ) -> tuple[dict[int, float | None], dict[int, str | None], bool]:
    """The value each scored candidate is ranked by, its first error, and whether higher is better.

    One proxy: its stored value. Several: the log-rank ensemble of the members' stored values
    over the candidates every member has scored (Lee & Ham 2024, AZ-NAS; see
    :mod:`knas_core.search.ensemble`; ``weights`` by member, 1 if not named), so a candidate that
    failed under any member gets None. Candidates that some member has not scored yet are left out.
    """
    from knas_core.search.ensemble import log_rank_aggregate

    names = [k.proxy for k in keys]
    members = repo.member_scores(session, search_id, keys)
    complete = {c: m for c, m in members.items() if len(m) == len(names)}
    errors = {c: next((m[p].error for p in names if m[p].error), None) for c, m in complete.items()}
    if len(names) == 1:
        only = names[0]
        return {c: m[only].value for c, m in complete.items()}, errors, get_proxy(only).higher_is_better
    ids = list(complete)
    combined = log_rank_aggregate({p: [complete[c][p].value for c in ids] for p in names},
                                  {p: get_proxy(p).higher_is_better for p in names}, weights)
    return dict(zip(ids, combined, strict=True)), errors, True


@lru_cache(maxsize=4)
def _scorer(dataset: str, data_source: str, data_dir: str | None, batch_size: int, seed: int,
            device: str, channels: int, cells: int, space: str = "nb201") -> Scorer:
    return Scorer(dataset, space=space, batch_size=batch_size, seed=seed, device=device,
                  data_source=data_source, data_dir=data_dir, model_options={"C": channels, "N": cells})


def scorer_for(cfg: SearchConfig) -> Scorer:
    return _scorer(cfg.dataset, cfg.data_source, cfg.data_dir, cfg.batch_size, cfg.seed, cfg.device,
                   cfg.model.C, cfg.model.N, cfg.space)


def device_type(cfg: SearchConfig) -> str:
    """The device type part of the score key: ``cpu`` or ``cuda`` as configured, ``auto`` as
    this machine resolves it. Never raises, so a reader without a GPU (the dashboard) can show a
    ``cuda`` search; the worker that scores fails the search if it has no GPU."""
    if cfg.device in ("cpu", "cuda"):
        return cfg.device
    from knas_core.device import resolve_device

    return resolve_device(cfg.device).type


@lru_cache(maxsize=2)
def ground_truth(data_dir: str | None = None) -> GroundTruth:
    return GroundTruth.load(data_dir)


def _fail(search_id: int, reason: str) -> None:
    """End search ``search_id`` as failed with ``reason``, its scored/failed counters recounted
    from the rows first (the transaction that met the failure, which may have recounted, is
    rolled back)."""
    with session_scope() as session:
        search = repo.get_search(session, search_id)
        if search is not None and search.status not in Status.ENDED and search.data_id:
            try:
                cfg = load_config(search.config)
            except InputError:
                cfg = None  # an unreadable config (or a plugin not loaded here): counters as they are
            if cfg is not None and cfg.staged:
                repo.refresh_counters(session, search, score_keys(cfg, device_type(cfg), search.data_id))
    fail(repo.get_search, search_id, reason, "search")


# --- the orchestrator ---------------------------------------------------------------------------

@app.task(name="knas.advance_search", **RETRY)
def advance_search(search_id: int, force: bool = False, restart: bool = False) -> str:
    """Move search ``search_id`` forward.

    ``force`` re-dispatches unfinished work whatever its claims (an operator's override);
    ``restart`` (a worker started) re-dispatches a whole-strategy task and training, whose
    progress is not tracked per item, while chunked scoring sends only what no live claim holds.

    Returns the search's :class:`~db.status.Status` once it has ended, else what it waits for
    (``searching``, ``scoring``, ``evaluating``; ``missing`` for an unknown id): a task result
    for logs, not a stored value.
    """
    outbox: list[tuple[Any, list[Any]]] = []
    try:
        with session_scope() as session:
            state = _advance(session, search_id, force, outbox, restart)
    except OperationalError:
        raise
    except Exception as exc:  # noqa: BLE001 - a broken search must not take the worker down
        _fail(search_id, describe_exception(exc))
        return Status.FAILED
    for task, args in outbox:  # only after the commit, so workers see what we wrote
        task.apply_async(args=args)
    return state


def _advance(session: Session, search_id: int, force: bool, outbox: list, restart: bool = False) -> str:
    search = repo.get_search(session, search_id, lock=True)
    if search is None:
        return "missing"
    if search.status in Status.ENDED:
        return search.status
    if search.cancel_requested:
        search.finish(Status.CANCELLED)
        return Status.CANCELLED
    cfg = load_config(search.config)
    if not cfg.staged:
        if search.stage == SearchStage.QUEUED or force or restart:
            # handed to a worker: queued (in the stage of the whole strategy) until one starts it,
            # so seeds waiting behind each other do not all read "running"
            search.stage, search.updated_at = SearchStage.SEARCH, utcnow()
            outbox.append((run_strategy, [search.id]))
        return "searching"
    if search.stage in (SearchStage.QUEUED, SearchStage.SAMPLE):
        _sample(session, search, cfg)
    if search.stage == SearchStage.SCORE:
        if not _dispatch_scoring(session, search, cfg, force, outbox):
            return "scoring"
        _select(session, search, cfg)
    if search.stage == SearchStage.EVALUATE and not _evaluate(session, search, cfg, force or restart, outbox):
        return "evaluating"
    return search.status


def _sample(session: Session, search: Search, cfg: SearchConfig) -> None:
    repo.set_stage(session, search, SearchStage.SAMPLE)
    space = open_space(cfg.space, data_dir=cfg.data_dir)
    archs = [space.validate(a) for a in cfg.archs] if cfg.archs else space.sample(cfg.samples, cfg.seed)
    pairs = [(a, space.index_of(a)) for a in archs]
    ids = repo.ensure_architectures(session, cfg.space, pairs)
    repo.add_candidates(session, search.id, [ids[a] for a in archs])
    source = scorer_for(cfg).source  # the images every chunk of this search must score on
    search.data_id, search.data_description = source.identity, source.description
    # a failure that may not recur (out of memory, a dead worker) is no cache entry: try again
    for key in score_keys(cfg, device_type(cfg), source.identity):
        repo.forget_transient(session, key, list(ids.values()))
    if space.has_benchmark:  # the benchmark's accuracies of the sample, for look-up and the report
        repo.load_ground_truth(session, ground_truth(cfg.data_dir), cfg.space, [i for _, i in pairs])
    repo.set_stage(session, search, SearchStage.SCORE, total=len(archs), score_started_at=utcnow())


@lru_cache(maxsize=1)
def _host() -> str:
    """This host's name, with its PID namespace where known (containers that share a host name
    do not share process ids)."""
    try:
        namespace = "".join(ch for ch in os.readlink("/proc/self/ns/pid") if ch.isdigit())
    except OSError:
        namespace = ""
    return f"{socket.gethostname()}/{namespace}" if namespace else socket.gethostname()


def worker_identity() -> str:
    """``host:pid`` of this process, as recorded on the candidates it scores."""
    return f"{_host()}:{os.getpid()}"


def _process_gone(pid: int) -> bool:
    if os.path.isdir("/proc/self"):
        try:
            with open(f"/proc/{pid}/stat") as handle:
                state = handle.read().rsplit(")", 1)[1].split()[0]
            return state in ("Z", "X")  # a zombie no longer works
        except FileNotFoundError:
            return True
        except (OSError, IndexError):
            pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def claimant_dead(claimed_by: str | None) -> bool:
    """Whether the worker process that took a candidate is known to be gone: it ran on this
    host and its process no longer runs. Claims from other hosts live out their lease."""
    host, _, pid = (claimed_by or "").rpartition(":")
    return bool(host) and host == _host() and pid.isdigit() and _process_gone(int(pid))


def live_claim(cand: Any, lease: timedelta) -> bool:
    """Whether a candidate is held by a chunk in flight: claimed within the lease by a worker
    not known to be dead (or sent and waiting in the queue)."""
    if cand.claimed_at is None or as_utc(cand.claimed_at) < utcnow() - lease:
        return False
    return not claimant_dead(cand.claimed_by)


def _plan_scoring(session: Session, search: Search, cfg: SearchConfig, keys: list[repo.ScoreKey],
                  force: bool) -> tuple[list[list[int]], bool]:
    """The chunks to send now (candidate ids), and whether every candidate has a score row.

    At most ``KNAS_DISPATCH_WINDOW`` chunks of a search are in flight; only
    candidates no live claim holds (never sent, lease expired, worker dead) are sent."""
    unscored = repo.unscored_claims(session, search.id, keys)
    if not unscored:
        return [], True
    lease = timedelta(seconds=cfg.lease_seconds)
    live = [] if force else [c for c in unscored if live_claim(c, lease)]
    held = {c.id for c in live}
    free = get_settings().dispatch_window - len({c.chunk for c in live})
    todo = [c.id for c in unscored if c.id not in held][:max(free, 0) * cfg.chunk_size]
    return [todo[i:i + cfg.chunk_size] for i in range(0, len(todo), cfg.chunk_size)], False


def _dispatch_scoring(session: Session, search: Search, cfg: SearchConfig, force: bool, outbox: list) -> bool:
    """Fill the window of chunks for unscored candidates; True when every candidate has a score row."""
    keys = score_keys(cfg, device_type(cfg), search.data_id or "")
    repo.refresh_counters(session, search, keys)
    chunks, finished = _plan_scoring(session, search, cfg, keys, force)
    number = repo.last_chunk(session, search.id)
    for ids in chunks:
        number += 1
        repo.claim(session, ids, chunk=number)  # sent, not yet taken: claimed by nobody
        outbox.append((score_chunk, [search.id, ids]))
    return finished


def _select(session: Session, search: Search, cfg: SearchConfig) -> None:
    repo.set_stage(session, search, SearchStage.SELECT)
    keys = score_keys(cfg, device_type(cfg), search.data_id or "")
    values, errors, higher = ranking_values(session, search.id, keys, cfg.proxy_weights())
    cands = {c.id: c for c in repo.candidates(session, search.id)}
    for cand_id, value in values.items():
        cand = cands[cand_id]
        cand.score = value
        cand.stage = CandidateStage.SCORED
        cand.claimed_at = cand.claimed_by = None  # the claim was for scoring; evaluation claims afresh
    ok = [(cands[c], v) for c, v in values.items() if v is not None]
    if not ok:
        first = next((e for e in errors.values() if e), "no scores")
        raise RuntimeError(f"every architecture failed to score ({first})")
    ok.sort(key=lambda cv: (cv[1] if higher else -cv[1], -cv[0].position), reverse=True)
    for rank, (cand, _) in enumerate(ok, start=1):
        cand.rank = rank
        if rank <= cfg.topk:
            cand.stage = CandidateStage.SELECTED
    repo.set_stage(session, search, SearchStage.EVALUATE)


def _evaluate(session: Session, search: Search, cfg: SearchConfig, force: bool, outbox: list) -> bool:
    """Evaluate the top-k (look-up or training); True once the search is finished."""
    selected = [c for c in repo.candidates(session, search.id) if c.rank is not None and c.rank <= cfg.topk]
    dataset = canonical_dataset(cfg.dataset)
    if cfg.eval == "lookup":
        for cand in selected:
            cand.accuracy = repo.benchmark_accuracy(session, cand.architecture_id, dataset, "valid_12ep")
            cand.eval_source, cand.stage = "lookup", CandidateStage.EVALUATED
    else:
        waiting = [c for c in selected if c.stage != CandidateStage.EVALUATED]
        lease = timedelta(seconds=cfg.lease_seconds)
        now = utcnow()
        for cand in waiting:
            if force or not live_claim(cand, lease):
                cand.claimed_at, cand.claimed_by = now, None
                outbox.append((train_candidate, [search.id, cand.id]))
        if waiting:
            search.evaluated = len(selected) - len(waiting)
            return False
    search.evaluated = len(selected)
    best = max(selected, key=lambda c: (c.accuracy if c.accuracy is not None else -math.inf,
                                        -(c.rank or 0)))  # rank: set, filtered above
    search.finish(Status.DONE, result=_result(session, best, cfg))
    return True


def _result(session: Session, best: SearchCandidate, cfg: SearchConfig) -> dict[str, Any]:
    """The search's result; ``test_acc`` and ``percentile`` are None for a space without a
    benchmark table."""
    arch = best.architecture
    found = {"arch": arch.arch, "index": arch.index, "score": best.score, "rank": best.rank,
             "accuracy": best.accuracy, "eval": best.eval_source}
    if not get_space(cfg.space).has_benchmark:
        return {**found, "test_acc": None, "percentile": None}
    test = {ds: repo.benchmark_accuracy(session, arch.id, ds, "test")
            for ds in ("cifar10", "cifar100", "imagenet16-120")}
    dataset = canonical_dataset(cfg.dataset)
    truth = ground_truth(cfg.data_dir)
    acc = test.get(dataset)
    return {**found, "test_acc": {k: v for k, v in test.items() if v is not None},
            "percentile": truth.percentile(acc, dataset) if acc is not None else None}


def sweep() -> list[int]:
    """Advance every running search that has work no live claim holds: a chunk whose worker
    died or whose lease expired, room in the window, or training whose claim expired.

    Each worker runs this every ``KNAS_SWEEP_SECONDS`` (:mod:`tasks.celery_app`), so leases are
    enforced while any worker lives, not only when a chunk finishes or a worker starts.
    Returns the ids of the searches it sent ``advance_search`` for.
    """
    due: list[int] = []
    with session_scope() as session:
        for search in repo.running_searches(session):
            try:
                cfg = load_config(search.config)
            except ConfigError:  # e.g. a plugin proxy this worker lacks; another worker's job
                continue
            if not cfg.staged or search.cancel_requested:
                if search.cancel_requested:
                    due.append(search.id)
                continue
            lease = timedelta(seconds=cfg.lease_seconds)
            if search.stage == SearchStage.SCORE:
                keys = score_keys(cfg, device_type(cfg), search.data_id or "")
                chunks, finished = _plan_scoring(session, search, cfg, keys, force=False)
                if chunks or finished:
                    due.append(search.id)
            elif search.stage == SearchStage.EVALUATE and cfg.eval == "train":
                selected = repo.candidates(session, search.id, CandidateStage.SELECTED)
                if any(not live_claim(c, lease) for c in selected):
                    due.append(search.id)
    for search_id in due:
        advance_search.apply_async(args=[search_id])
    return due


# --- workers' tasks -----------------------------------------------------------------------------

@app.task(name="knas.score_chunk", **RETRY)
def score_chunk(search_id: int, candidate_ids: list[int]) -> int:
    """Score candidates one by one; stops between architectures when the search is cancelled."""
    with session_scope() as session:
        search = repo.get_search(session, search_id)
        if search is None or search.status in Status.ENDED:
            return 0
        if search.cancel_requested:
            search.finish(Status.CANCELLED)
            return 0
        cfg = load_config(search.config)
        data_id = search.data_id or ""
        me = worker_identity()
        repo.claim(session, candidate_ids, by=me)  # taken: the lease runs from now, held by this process
    try:
        scorer = scorer_for(cfg)
    except Exception as exc:  # noqa: BLE001 - e.g. data not found: the search fails, the worker lives
        _fail(search_id, describe_exception(exc))
        return 0
    if scorer.source.identity != data_id:
        _fail(search_id, f"this worker's images ({scorer.source.identity}: {scorer.source.description}) "
                         f"differ from the ones the search scores on ({data_id}); give every worker "
                         "the same data (KNAS_DATA_DIR or the search's data_dir)")
        return 0
    keys = {k.proxy: k for k in score_keys(cfg, scorer.device.type, data_id)}
    limit = get_settings().max_attempts
    done = 0
    counted, counting = time.monotonic(), 0.0  # when the counters were last refreshed, and how long it took
    for cand_id in candidate_ids:
        with session_scope() as session:
            if repo.cancel_requested(session, search_id):
                # Mark it here, not through the queue: the queue may hold many chunks before
                # an advance_search message, and the user should see the stop at once.
                row = session.get_one(Search, search_id)
                repo.refresh_counters(session, row, list(keys.values()))
                row.finish(Status.CANCELLED)
                return done
            cand = session.get(SearchCandidate, cand_id)
            if cand is None:
                continue
            missing = [p for p, k in keys.items() if repo.get_score(session, cand.architecture_id, k) is None]
            if not missing:
                continue  # already scored (a cache hit, or another worker got there first)
            arch_id, arch, attempts = cand.architecture_id, cand.architecture.arch, cand.attempts
            if attempts < limit:  # counted before scoring: a delivery that dies leaves it counted
                cand.attempts += 1
                cand.claimed_at, cand.claimed_by = utcnow(), me
        results = _score_missing(scorer, arch, missing, attempts, limit)
        with session_scope() as session:
            for proxy, (value, error, seconds) in results.items():
                repo.save_score(session, arch_id, keys[proxy], value, error, seconds,
                                transient=is_transient(error))
            if time.monotonic() - counted >= max(_COUNTER_SECONDS, counting / _COUNTER_SHARE):
                # a count over every candidate: at most ~1% of the time of a large search
                began = time.monotonic()
                repo.refresh_counters(session, session.get_one(Search, search_id), list(keys.values()))
                counted, counting = time.monotonic(), time.monotonic() - began
        done += 1
    advance_search.apply_async(args=[search_id])  # it recounts first (_dispatch_scoring)
    return done


#: Least seconds between two recounts of a search's ``scored``/``failed`` while a chunk runs,
#: and the most of a chunk's time they may take: a recount of a whole-space search (15,625
#: candidates x 5 proxies) takes 0.11 s, so it runs every 11 s there (20 times the recount, as
#: before, cost 5 % of the scoring time of the score atlas: docs/RESULTS.md).
_COUNTER_SECONDS = 2.0
_COUNTER_SHARE = 0.01


def _score_missing(scorer: Scorer, arch: str, missing: list[str], attempts: int,
                   limit: int) -> dict[str, tuple[float | None, str | None, float]]:
    """``{proxy: (value, error, seconds)}`` for the proxies ``arch`` lacks: several together on
    one network with shared passes (:meth:`Scorer.score`), one alone as :meth:`Scorer.score_one`
    (the same values); every proxy fails alike once ``attempts`` reached ``limit``."""
    if attempts >= limit:  # every earlier delivery died on it (e.g. the OOM killer): give up
        return {p: (None, f"worker died {attempts} times scoring this architecture", 0.0) for p in missing}
    start = time.perf_counter()
    try:
        arch = scorer.space.validate(arch)
        if len(missing) == 1:
            results = {missing[0]: scorer.score_one(arch, missing[0])}
        else:
            results = scorer.score(arch, missing).results
    except Exception as exc:  # noqa: BLE001 - e.g. a malformed architecture row
        seconds = (time.perf_counter() - start) / len(missing)
        return {p: (None, describe_exception(exc), seconds) for p in missing}
    return {p: (r.value, r.error, r.seconds) for p, r in results.items()}


@app.task(name="knas.train_candidate", **RETRY)
def train_candidate(search_id: int, candidate_id: int) -> float | None:
    """Train one selected candidate (resuming from its checkpoint), then advance the search."""
    from knas_core.training import TrainingCancelled, train_architecture
    from tasks.settings import checkpoint_dir

    with session_scope() as session:
        search = repo.get_search(session, search_id)
        cand = session.get(SearchCandidate, candidate_id)
        if search is None or cand is None or search.status in Status.ENDED:
            return None
        cfg = load_config(search.config)
        if cand.stage == CandidateStage.EVALUATED:
            advance_search.apply_async(args=[search_id])
            return cand.accuracy
        arch_id, arch = cand.architecture_id, cand.architecture.arch
        tcfg = cfg.train_config()
        setup = f"{cfg.model.key()},subset={cfg.train_subset},bs={tcfg.batch_size}"
        run = repo.get_or_create_training_run(session, arch_id, canonical_dataset(cfg.dataset), cfg.epochs,
                                              cfg.seed, setup, device_type(cfg))
        run_id, run_done, run_acc = run.id, run.status == TrainingStatus.DONE, run.final_test_acc

    if not run_done:
        def on_epoch(epoch: Any) -> None:
            with session_scope() as s:
                r = s.get_one(TrainingRun, run_id)
                r.history = [*r.history, _plain(epoch)]

        def should_stop() -> bool:
            with session_scope() as s:
                return repo.cancel_requested(s, search_id)

        try:
            result = train_architecture(arch, cfg.dataset, tcfg, space=cfg.space,
                                        model_options={"C": cfg.model.C, "N": cfg.model.N},
                                        data_source=cfg.data_source, data_dir=cfg.data_dir,
                                        checkpoint_path=checkpoint_dir() / f"run-{run_id}.pt",
                                        on_epoch=on_epoch, should_stop=should_stop)
        except TrainingCancelled:
            with session_scope() as s:
                s.get_one(Search, search_id).finish(Status.CANCELLED)
            return None
        except Exception as exc:  # noqa: BLE001 - record why, keep serving
            with session_scope() as s:
                r = s.get_one(TrainingRun, run_id)
                r.status, r.error = TrainingStatus.FAILED, describe_exception(exc)
            _fail(search_id, f"training {arch} failed: {describe_exception(exc)}")
            return None
        with session_scope() as s:
            r = s.get_one(TrainingRun, run_id)
            r.status, r.final_test_acc = TrainingStatus.DONE, result.final_test_acc
            r.seconds, r.device = result.seconds, result.device
            r.history = [_plain(e) for e in result.epochs]
            run_acc = result.final_test_acc
    with session_scope() as session:
        cand = session.get_one(SearchCandidate, candidate_id)
        cand.accuracy, cand.eval_source, cand.stage = run_acc, "train", CandidateStage.EVALUATED
        cand.training_run_id = run_id
    advance_search.apply_async(args=[search_id])
    return run_acc


def _plain(epoch: Any) -> dict[str, Any]:
    from dataclasses import asdict, is_dataclass

    return asdict(epoch) if is_dataclass(epoch) and not isinstance(epoch, type) else dict(epoch)


def stored_scores(cfg: SearchConfig, scorer: Scorer, arch: str,
                  proxies: list[str]) -> dict[str, float | None]:
    """``{proxy: value}`` for ``arch``: stored scores are reused (the unique score key), the
    missing ones computed together by one :meth:`Scorer.score` call (one network, shared
    passes) and stored; a failed score is ``None``."""
    keys = {p: score_key(cfg, scorer.device.type, scorer.source.identity, p) for p in proxies}
    values: dict[str, float | None] = {}
    with session_scope() as s:
        arch_id = repo.ensure_architectures(s, cfg.space, [(arch, scorer.space.index_of(arch))])[arch]
        for p, key in keys.items():
            cached = repo.get_score(s, arch_id, key)
            if cached is not None and not cached.transient:  # a transient failure is tried again
                values[p] = cached.value
    missing = [p for p in proxies if p not in values]
    if missing:
        fresh = scorer.score(arch, missing).results
        with session_scope() as s:
            for p in missing:
                r = fresh[p]
                repo.forget_transient(s, keys[p], [arch_id])
                values[p] = repo.save_score(s, arch_id, keys[p], r.value, r.error, r.seconds,
                                            transient=is_transient(r.error)).value
    return values


@app.task(name="knas.run_strategy", **RETRY)
def run_strategy(search_id: int) -> str:
    """Run a whole strategy (NASI, evolution, random, ensemble KNAS) in this worker.

    Scores go through the database (cache hits are reused, new ones stored); progress and the
    cancel flag are synchronised with the search row at most once a second.
    """
    from knas_core.search.run import SearchRun

    with session_scope() as session:
        search = repo.get_search(session, search_id)
        if search is None or search.status in Status.ENDED:
            return "skipped"
        cfg = load_config(search.config)
        # running from now (a queued one); the pace counts from this attempt's first report
        repo.set_stage(session, search, SearchStage.SEARCH, score_started_at=None)
    run = SearchRun(cfg)
    throttle = ProgressThrottle()

    def progress(stage: str, done: int, total: int) -> None:
        if not throttle.due(done, total):
            return
        with session_scope() as s:
            row = s.get_one(Search, search_id)
            if row.cancel_requested:
                raise Cancelled
            evaluating = stage == ProgressStage.EVALUATE  # scoring, or NASI's steps, otherwise
            row.stage = SearchStage.EVALUATE if evaluating else SearchStage.SCORE
            if row.score_started_at is None:  # the rate and ETA (tasks.pace) count from the first
                row.score_started_at = utcnow()  # report: random search's first is an evaluation
            if not evaluating:
                row.scored, row.total = done, total
            else:
                row.evaluated = done

    try:
        result = run.run(progress, lambda scorer, arch, names: stored_scores(cfg, scorer, arch, names))
    except Cancelled:
        with session_scope() as s:
            s.get_one(Search, search_id).finish(Status.CANCELLED)
        return Status.CANCELLED
    except Exception as exc:  # noqa: BLE001 - the reason goes on the search; the worker lives
        _fail(search_id, describe_exception(exc))
        return Status.FAILED
    with session_scope() as session:
        search = session.get_one(Search, search_id)
        if search.status in Status.ENDED:
            return search.status
        evaluated = [t["arch"] for t in result["trace"]]
        space = open_space(cfg.space, data_dir=cfg.data_dir)
        ids = repo.ensure_architectures(session, cfg.space, [(a, space.index_of(a)) for a in evaluated])
        repo.add_candidates(session, search_id, [ids[a] for a in evaluated])
        accuracy = {t["arch"]: t["accuracy"] for t in result["trace"]}
        for cand in repo.candidates(session, search_id):
            cand.accuracy = accuracy.get(cand.architecture.arch)
            cand.stage, cand.eval_source = CandidateStage.EVALUATED, cfg.eval
            cand.rank = cand.position + 1
        search.evaluated = len(evaluated)
        summary = {k: result[k] for k in ("arch", "index", "score", "accuracy", "test_acc", "percentile",
                                          "scored", "evaluated", "seconds")}
        search.data_id, search.data_description = result["data"], result["data_description"]
        summary["eval"] = cfg.eval
        summary["trace"] = result["trace"]
        search.finish(Status.DONE, result=summary)
    return Status.DONE
