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
import time
from datetime import timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from db import repository as repo
from db.models import TERMINAL, Search, SearchCandidate, TrainingRun, as_utc, utcnow
from db.session import session_scope
from knas_core.groundtruth import GroundTruth, canonical_dataset
from knas_core.proxies import get_proxy
from knas_core.scoring import Scorer, describe_exception
from knas_core.spaces import get_space
from tasks.celery_app import app
from tasks.progress import ProgressThrottle
from tasks.schema import SearchConfig, validate_config

log = logging.getLogger(__name__)
RETRY = {"autoretry_for": (OperationalError, ConnectionError), "retry_backoff": True,
         "retry_backoff_max": 60, "retry_jitter": True, "max_retries": 8}


def score_key(cfg: SearchConfig, device_type: str, data: str, proxy: str | None = None) -> repo.ScoreKey:
    """The cache key of ``proxy`` (default: the search's proxy) under this search's set-up, on
    the images whose identity is ``data``."""
    name = proxy or cfg.proxy
    return repo.ScoreKey(name, canonical_dataset(cfg.dataset), get_proxy(name).batch_size or cfg.batch_size,
                         cfg.seed, device_type, cfg.model.key(), data)


@lru_cache(maxsize=4)
def _scorer(dataset: str, data_source: str, data_dir: str | None, batch_size: int, seed: int,
            device: str, channels: int, cells: int) -> Scorer:
    return Scorer(dataset, batch_size=batch_size, seed=seed, device=device, data_source=data_source,
                  data_dir=data_dir, model_options={"C": channels, "N": cells})


def scorer_for(cfg: SearchConfig) -> Scorer:
    return _scorer(cfg.dataset, cfg.data_source, cfg.data_dir, cfg.batch_size, cfg.seed, cfg.device,
                   cfg.model.C, cfg.model.N)


def device_type(cfg: SearchConfig) -> str:
    from knas_core.device import resolve_device

    return resolve_device(cfg.device).type


@lru_cache(maxsize=2)
def ground_truth(data_dir: str | None = None) -> GroundTruth:
    return GroundTruth.load(data_dir)


def _fail(search_id: int, reason: str) -> None:
    with session_scope() as session:
        search = repo.get_search(session, search_id)
        if search is not None:
            search.finish("failed", error=reason)
    log.warning("search %s failed: %s", search_id, reason)


# --- the orchestrator ---------------------------------------------------------------------------

@app.task(name="knas.advance_search", **RETRY)
def advance_search(search_id: int, force: bool = False) -> str:
    """Move search ``search_id`` forward; ``force`` re-dispatches all unfinished work."""
    outbox: list[tuple[Any, list[Any]]] = []
    try:
        with session_scope() as session:
            state = _advance(session, search_id, force, outbox)
    except OperationalError:
        raise
    except Exception as exc:  # noqa: BLE001 - a broken search must not take the worker down
        _fail(search_id, describe_exception(exc))
        return "failed"
    for task, args in outbox:  # only after the commit, so workers see what we wrote
        task.apply_async(args=args)
    return state


def _advance(session: Session, search_id: int, force: bool, outbox: list) -> str:
    search = repo.get_search(session, search_id, lock=True)
    if search is None:
        return "missing"
    if search.status in TERMINAL:
        return search.status
    if search.cancel_requested:
        search.finish("cancelled")
        return "cancelled"
    cfg = validate_config(search.config)
    if not cfg.staged:
        if search.stage == "queued" or force:
            repo.set_stage(session, search, "search")
            outbox.append((run_strategy, [search.id]))
        return "searching"
    if search.stage in ("queued", "sample"):
        _sample(session, search, cfg)
    if search.stage == "score":
        if not _dispatch_scoring(session, search, cfg, force, outbox):
            return "scoring"
        _select(session, search, cfg)
    if search.stage == "evaluate":
        if not _evaluate(session, search, cfg, force, outbox):
            return "evaluating"
    return search.status


def _sample(session: Session, search: Search, cfg: SearchConfig) -> None:
    repo.set_stage(session, search, "sample")
    space = get_space(cfg.space, data_dir=cfg.data_dir)
    archs = [space.validate(a) for a in cfg.archs] if cfg.archs else space.sample(cfg.samples, cfg.seed)
    pairs = [(a, space.index_of(a)) for a in archs]
    ids = repo.ensure_architectures(session, cfg.space, pairs)
    repo.add_candidates(session, search.id, [ids[a] for a in archs])
    source = scorer_for(cfg).source  # the images every chunk of this search must score on
    search.data_id, search.data_description = source.identity, source.description
    repo.load_ground_truth(session, ground_truth(cfg.data_dir), cfg.space, [i for _, i in pairs])
    repo.set_stage(session, search, "score", total=len(archs), score_started_at=utcnow())


def _dispatch_scoring(session: Session, search: Search, cfg: SearchConfig, force: bool, outbox: list) -> bool:
    """Queue chunks for unscored candidates; True when every candidate has a score row."""
    key = score_key(cfg, device_type(cfg), search.data_id or "")
    repo.refresh_counters(session, search, key)
    lease = None if force else timedelta(seconds=cfg.lease_seconds)
    todo = repo.unscored_candidates(session, search.id, key, lease=lease)
    if todo:
        ids = [c.id for c in todo]
        repo.claim(session, ids)
        for start in range(0, len(ids), cfg.chunk_size):
            outbox.append((score_chunk, [search.id, ids[start:start + cfg.chunk_size]]))
        return False
    return not repo.unscored_candidates(session, search.id, key)


def _select(session: Session, search: Search, cfg: SearchConfig) -> None:
    repo.set_stage(session, search, "select")
    key = score_key(cfg, device_type(cfg), search.data_id or "")
    higher = get_proxy(cfg.proxy).higher_is_better
    rows = repo.candidate_scores(session, search.id, key)
    ok = [(c, s) for c, s in rows if s.value is not None]
    for cand, s in rows:
        cand.score = s.value
        cand.stage = "scored"
        cand.claimed_at = None  # the claim was for scoring; evaluation claims afresh
    if not ok:
        first = next((s.error for _, s in rows if s.error), "no scores")
        raise RuntimeError(f"every architecture failed to score ({first})")
    ok.sort(key=lambda cs: cs[1].value if higher else -cs[1].value, reverse=True)
    for rank, (cand, _) in enumerate(ok, start=1):
        cand.rank = rank
        if rank <= cfg.topk:
            cand.stage = "selected"
    repo.set_stage(session, search, "evaluate")


def _evaluate(session: Session, search: Search, cfg: SearchConfig, force: bool, outbox: list) -> bool:
    """Evaluate the top-k (look-up or training); True once the search is finished."""
    selected = [c for c in repo.candidates(session, search.id) if c.rank is not None and c.rank <= cfg.topk]
    dataset = canonical_dataset(cfg.dataset)
    if cfg.eval == "lookup":
        for cand in selected:
            cand.accuracy = repo.benchmark_accuracy(session, cand.architecture_id, dataset, "valid_12ep")
            cand.eval_source, cand.stage = "lookup", "evaluated"
    else:
        waiting = [c for c in selected if c.stage != "evaluated"]
        lease = timedelta(seconds=cfg.lease_seconds)
        now = utcnow()
        for cand in waiting:
            if force or cand.claimed_at is None or as_utc(cand.claimed_at) < now - lease:
                cand.claimed_at = now
                outbox.append((train_candidate, [search.id, cand.id]))
        if waiting:
            search.evaluated = len(selected) - len(waiting)
            return False
    search.evaluated = len(selected)
    best = max(selected, key=lambda c: (c.accuracy if c.accuracy is not None else -math.inf, -c.rank))
    search.finish("done", result=_result(session, best, cfg))
    return True


def _result(session: Session, best: SearchCandidate, cfg: SearchConfig) -> dict[str, Any]:
    arch = best.architecture
    test = {ds: repo.benchmark_accuracy(session, arch.id, ds, "test")
            for ds in ("cifar10", "cifar100", "imagenet16-120")}
    dataset = canonical_dataset(cfg.dataset)
    truth = ground_truth(cfg.data_dir)
    acc = test.get(dataset)
    return {"arch": arch.arch, "index": arch.index, "score": best.score, "rank": best.rank,
            "accuracy": best.accuracy, "eval": best.eval_source,
            "test_acc": {k: v for k, v in test.items() if v is not None},
            "percentile": truth.percentile(acc, dataset) if acc is not None else None}


# --- workers' tasks -----------------------------------------------------------------------------

@app.task(name="knas.score_chunk", **RETRY)
def score_chunk(search_id: int, candidate_ids: list[int]) -> int:
    """Score candidates one by one; stops between architectures when the search is cancelled."""
    with session_scope() as session:
        search = repo.get_search(session, search_id)
        if search is None or search.status in TERMINAL:
            return 0
        if search.cancel_requested:
            search.finish("cancelled")
            return 0
        cfg = validate_config(search.config)
        data_id = search.data_id or ""
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
    key = score_key(cfg, scorer.device.type, data_id)
    done = 0
    for cand_id in candidate_ids:
        with session_scope() as session:
            if repo.cancel_requested(session, search_id):
                # Mark it here, not through the queue: the queue may hold many chunks before
                # an advance_search message, and the user should see the stop at once.
                repo.get_search(session, search_id).finish("cancelled")
                return done
            cand = session.get(SearchCandidate, cand_id)
            if cand is None or repo.get_score(session, cand.architecture_id, key) is not None:
                continue  # already scored (a cache hit, or another worker got there first)
            arch_id, arch = cand.architecture_id, cand.architecture.arch
        start = time.perf_counter()
        try:
            result = scorer.score_one(scorer.space.validate(arch), cfg.proxy)
            value, error, seconds = result.value, result.error, result.seconds
        except Exception as exc:  # noqa: BLE001 - e.g. a malformed architecture row
            value, error, seconds = None, describe_exception(exc), time.perf_counter() - start
        with session_scope() as session:
            repo.save_score(session, arch_id, key, value, error, seconds)
            search = repo.get_search(session, search_id)
            repo.refresh_counters(session, search, key)
        done += 1
    advance_search.apply_async(args=[search_id])
    return done


@app.task(name="knas.train_candidate", **RETRY)
def train_candidate(search_id: int, candidate_id: int) -> float | None:
    """Train one selected candidate (resuming from its checkpoint), then advance the search."""
    from knas_core.training import TrainConfig, TrainingCancelled, train_architecture
    from tasks.settings import checkpoint_dir

    with session_scope() as session:
        search = repo.get_search(session, search_id)
        cand = session.get(SearchCandidate, candidate_id)
        if search is None or cand is None or search.status in TERMINAL:
            return None
        cfg = validate_config(search.config)
        if cand.stage == "evaluated":
            advance_search.apply_async(args=[search_id])
            return cand.accuracy
        arch_id, arch = cand.architecture_id, cand.architecture.arch
        tcfg = TrainConfig(epochs=cfg.epochs, seed=cfg.seed, device=cfg.device, train_subset=cfg.train_subset)
        setup = f"{cfg.model.key()},subset={cfg.train_subset},bs={tcfg.batch_size}"
        run = repo.get_or_create_training_run(session, arch_id, canonical_dataset(cfg.dataset), cfg.epochs,
                                              cfg.seed, setup, device_type(cfg))
        run_id, run_done, run_acc = run.id, run.status == "done", run.final_test_acc

    if not run_done:
        def on_epoch(epoch: Any) -> None:
            with session_scope() as s:
                r = s.get(TrainingRun, run_id)
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
                repo.get_search(s, search_id).finish("cancelled")
            return None
        except Exception as exc:  # noqa: BLE001 - record why, keep serving
            with session_scope() as s:
                r = s.get(TrainingRun, run_id)
                r.status, r.error = "failed", describe_exception(exc)
            _fail(search_id, f"training {arch} failed: {describe_exception(exc)}")
            return None
        with session_scope() as s:
            r = s.get(TrainingRun, run_id)
            r.status, r.final_test_acc, r.seconds, r.device = "done", result.final_test_acc, result.seconds, \
                result.device
            r.history = [_plain(e) for e in result.epochs]
            run_acc = result.final_test_acc
    with session_scope() as session:
        cand = session.get(SearchCandidate, candidate_id)
        cand.accuracy, cand.eval_source, cand.stage = run_acc, "train", "evaluated"
        cand.training_run_id = run_id
    advance_search.apply_async(args=[search_id])
    return run_acc


def _plain(epoch: Any) -> dict[str, Any]:
    from dataclasses import asdict, is_dataclass

    return asdict(epoch) if is_dataclass(epoch) else dict(epoch)


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
            if cached is not None:
                values[p] = cached.value
    missing = [p for p in proxies if p not in values]
    if missing:
        fresh = scorer.score(arch, missing).results
        with session_scope() as s:
            for p in missing:
                r = fresh[p]
                values[p] = repo.save_score(s, arch_id, keys[p], r.value, r.error, r.seconds).value
    return values


class _Cancelled(Exception):
    pass


@app.task(name="knas.run_strategy", **RETRY)
def run_strategy(search_id: int) -> str:
    """Run a whole strategy (NASI, evolution, random, ensemble KNAS) in this worker.

    Scores go through the database (cache hits are reused, new ones stored); progress and the
    cancel flag are synchronised with the search row at most once a second.
    """
    from knas_core.search.run import SearchRun

    with session_scope() as session:
        search = repo.get_search(session, search_id)
        if search is None or search.status in TERMINAL:
            return "skipped"
        cfg = validate_config(search.config)
    run = SearchRun(cfg.strategy, cfg.dataset, len(cfg.archs) if cfg.archs else cfg.samples, cfg.topk,
                    tuple(cfg.proxy_list()), cfg.eval, cfg.epochs, cfg.train_subset, cfg.batch_size,
                    cfg.seed, cfg.device, cfg.data_source, cfg.data_dir,
                    {"C": cfg.model.C, "N": cfg.model.N},
                    {**cfg.strategy_options, "C": cfg.model.C, "N": cfg.model.N})
    throttle = ProgressThrottle()

    def progress(stage: str, done: int, total: int) -> None:
        if not throttle.due(done, total):
            return
        with session_scope() as s:
            row = repo.get_search(s, search_id)
            if row.cancel_requested:
                raise _Cancelled
            row.stage = "evaluate" if stage == "evaluate" else "score"
            if stage != "evaluate":
                row.scored, row.total = done, total
                if row.score_started_at is None:  # the rate and ETA count from the first report
                    row.score_started_at = utcnow()
            else:
                row.evaluated = done

    try:
        result = run.run(progress, lambda scorer, arch, names: stored_scores(cfg, scorer, arch, names))
    except _Cancelled:
        with session_scope() as s:
            repo.get_search(s, search_id).finish("cancelled")
        return "cancelled"
    except Exception as exc:  # noqa: BLE001 - the reason goes on the search; the worker lives
        _fail(search_id, describe_exception(exc))
        return "failed"
    with session_scope() as session:
        search = repo.get_search(session, search_id)
        if search.status in TERMINAL:
            return search.status
        evaluated = [t["arch"] for t in result["trace"]]
        space = get_space(cfg.space, data_dir=cfg.data_dir)
        ids = repo.ensure_architectures(session, cfg.space, [(a, space.index_of(a)) for a in evaluated])
        repo.add_candidates(session, search_id, [ids[a] for a in evaluated])
        accuracy = {t["arch"]: t["accuracy"] for t in result["trace"]}
        for cand in repo.candidates(session, search_id):
            cand.accuracy = accuracy.get(cand.architecture.arch)
            cand.stage, cand.eval_source = "evaluated", cfg.eval
            cand.rank = cand.position + 1
        search.evaluated = len(evaluated)
        summary = {k: result[k] for k in ("arch", "index", "score", "accuracy", "test_acc", "percentile",
                                          "scored", "evaluated", "seconds")}
        search.data_id, search.data_description = result["data"], result["data_description"]
        summary["eval"] = cfg.eval
        summary["trace"] = result["trace"]
        search.finish("done", result=summary)
    return "done"
