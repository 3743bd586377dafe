"""Searches end to end in one process (Celery eager mode), against SQLite and PostgreSQL."""

import pytest
from sqlalchemy import func, select

from db import repository as repo
from db.models import ProxyScore, SearchCandidate
from db.session import session_scope
from tasks.schema import ConfigError, validate_config

from .conftest import ARCH

TINY = {"name": "tiny", "samples": 8, "topk": 3, "chunk_size": 3, "batch_size": 16,
        "model": {"C": 4, "N": 1}, "device": "cpu", "seed": 5}


def _counts(url, search_id):
    with session_scope(url) as s:
        cands = repo.candidates(s, search_id)
        rows = s.scalar(select(func.count()).select_from(ProxyScore))
        return cands, rows


def test_lookup_search_runs_through_every_stage(eager, truth):
    from tasks.api import search_progress, submit_search

    search_id = submit_search(TINY)
    p = search_progress(search_id)
    assert p["status"] == "done" and p["stage"] == "done"
    assert p["scored"] == p["total"] == 8 and p["failed"] == 0 and p["evaluated"] == 3
    cands, rows = _counts(eager, search_id)
    assert rows == 8 and len(cands) == 8
    ranked = sorted((c for c in cands if c.rank), key=lambda c: c.rank)
    assert [c.rank for c in ranked] == list(range(1, 9))
    assert all(a.score >= b.score for a, b in zip(ranked, ranked[1:]))  # knas: higher is better
    top = [c for c in cands if c.stage == "evaluated"]
    assert sorted(c.rank for c in top) == [1, 2, 3]
    best = p["best"]
    expected = max(top, key=lambda c: c.accuracy)
    assert best["index"] == expected.architecture.index
    assert best["accuracy"] == pytest.approx(truth.accuracy("cifar10", "valid_12ep").loc[best["index"]])
    assert best["test_acc"]["cifar10"] == pytest.approx(truth.accuracy("cifar10").loc[best["index"]])
    assert 0 < best["percentile"] <= 100


def test_identical_search_reuses_stored_scores(eager):
    from tasks.api import search_progress, submit_search

    first = submit_search(TINY)
    with session_scope(eager) as s:
        stamps = {r.id: r.created_at for r in s.scalars(select(ProxyScore))}
    second = submit_search({**TINY, "name": "again"})
    assert search_progress(second)["status"] == "done"
    with session_scope(eager) as s:
        assert {r.id: r.created_at for r in s.scalars(select(ProxyScore))} == stamps
    assert search_progress(first)["best"]["arch"] == search_progress(second)["best"]["arch"]


def test_resume_after_a_crash_mid_scoring(eager, monkeypatch):
    """Work dispatched to a worker that died never ran; a forced advance redoes exactly it."""
    from tasks import search as tasks_search
    from tasks.api import search_progress, submit_search

    lost = []
    real = tasks_search.score_chunk.apply_async
    monkeypatch.setattr(tasks_search.score_chunk, "apply_async",
                        lambda args=None, **kw: lost.append(args) if len(lost) < 2 else real(args=args, **kw))
    search_id = submit_search(TINY)
    p = search_progress(search_id)
    assert p["status"] == "running" and p["scored"] == 8 - 6  # two chunks of 3 were lost
    monkeypatch.setattr(tasks_search.score_chunk, "apply_async", real)
    tasks_search.advance_search(search_id, force=True)
    p = search_progress(search_id)
    assert p["status"] == "done" and p["scored"] == 8
    _, rows = _counts(eager, search_id)
    assert rows == 8


def test_cancel_stops_between_architectures(eager, monkeypatch):
    from tasks import search as tasks_search
    from tasks.api import cancel_search, search_progress, submit_search

    real = tasks_search.Scorer.score_one
    calls = []

    def score_then_cancel(self, arch, proxy):
        calls.append(arch)
        if len(calls) == 2:  # the user presses cancel while the second architecture is scored
            with session_scope(eager) as s:
                repo.request_cancel(s, repo.incomplete_searches(s)[0])
        return real(self, arch, proxy)

    monkeypatch.setattr(tasks_search.Scorer, "score_one", score_then_cancel)
    search_id = submit_search({**TINY, "chunk_size": 8})
    p = search_progress(search_id)
    assert p["status"] == "cancelled" and p["scored"] == 2
    assert len(calls) == 2
    assert cancel_search(search_id)["status"] == "cancelled"


def test_all_failures_fail_the_search_with_the_reason(eager, monkeypatch):
    from knas_core.scoring import ProxyResult
    from tasks import search as tasks_search
    from tasks.api import search_progress, submit_search

    def out_of_memory(self, arch, proxy):
        return ProxyResult(proxy, None, "out of memory: simulated", 0.0, 16)

    monkeypatch.setattr(tasks_search.Scorer, "score_one", out_of_memory)
    search_id = submit_search(TINY)
    p = search_progress(search_id)
    assert p["status"] == "failed" and "out of memory: simulated" in p["error"]
    assert p["failed"] == 8


def test_a_malformed_architecture_row_is_recorded_on_its_score(eager):
    from tasks.search import score_chunk, scorer_for

    with session_scope(eager) as s:
        search = repo.create_search(s, validate_config(TINY).model_dump(mode="json"))
        search.data_id = scorer_for(validate_config(TINY)).source.identity
        repo.set_stage(s, search, "score", total=1)
        ids = repo.ensure_architectures(s, "nb201", [("|bogus~0|", None)])
        repo.add_candidates(s, search.id, [ids["|bogus~0|"]])
        cand_id = s.scalar(select(SearchCandidate.id).where(SearchCandidate.search_id == search.id))
        search_id = search.id
    score_chunk(search_id, [cand_id])
    with session_scope(eager) as s:
        row = s.scalars(select(ProxyScore)).one()
        assert row.value is None and "InvalidArchitectureError" in row.error
        assert repo.get_search(s, search_id).status == "failed"


def test_a_worker_with_other_images_fails_the_search_and_stores_nothing(eager):
    """Chunks of one search score on the images the search was sampled with: a worker that
    finds other images (another KNAS_DATA_DIR) stops the search with the reason."""
    from tasks.search import score_chunk

    with session_scope(eager) as s:
        search = repo.create_search(s, validate_config(TINY).model_dump(mode="json"))
        search.data_id = "npz:some-other-images:000000000000"
        repo.set_stage(s, search, "score", total=1)
        ids = repo.ensure_architectures(s, "nb201", [(ARCH, 1)])
        repo.add_candidates(s, search.id, [ids[ARCH]])
        cand_id = s.scalar(select(SearchCandidate.id).where(SearchCandidate.search_id == search.id))
        search_id = search.id
    assert score_chunk(search_id, [cand_id]) == 0
    with session_scope(eager) as s:
        assert s.scalars(select(ProxyScore)).all() == []
        search = repo.get_search(s, search_id)
        assert search.status == "failed" and "differ from the ones the search scores on" in search.error


def test_a_search_records_its_images_and_its_scores_carry_them(eager):
    from knas_core.data import load_source
    from tasks.api import search_progress, submit_search

    search_id = submit_search(TINY)
    p = search_progress(search_id)
    source = load_source(TINY.get("dataset", "cifar10"))
    assert p["status"] == "done" and p["data"] == source.identity
    assert p["data_description"] == source.description
    with session_scope(eager) as s:
        assert {row.data for row in s.scalars(select(ProxyScore))} == {source.identity}


def test_a_synthetic_search_does_not_reuse_scores_computed_on_images(eager):
    """The same architectures, proxy, seed and set-up on other inputs are other scores (issue:
    a synthetic-data search finished at once on the CIFAR scores of an earlier search)."""
    from tasks.api import search_progress, submit_search

    first = search_progress(submit_search(TINY))
    second = search_progress(submit_search({**TINY, "data_source": "synthetic"}))
    assert first["status"] == second["status"] == "done"
    assert second["data"].startswith("synthetic:") and first["data"] != second["data"]
    with session_scope(eager) as s:
        rows = s.scalars(select(ProxyScore)).all()
    assert len(rows) == 16 and {r.data for r in rows} == {first["data"], second["data"]}
    by_arch: dict[int, set[float]] = {}
    for r in rows:
        by_arch.setdefault(r.architecture_id, set()).add(r.value)
    assert all(len(values) == 2 for values in by_arch.values())  # two values per architecture


@pytest.mark.parametrize("raw, fragment", [
    ({"samples": 0}, "samples: Input should be greater than or equal to 1"),
    ({"samples": 5, "topk": 9}, "topk (9) cannot exceed"),
    ({"proxy": "nope"}, "proxy: unknown proxy 'nope'"),
    ({"dataset": "mnist"}, "dataset: unknown dataset 'mnist'; choose one of cifar10"),
    ({"archs": ["|x~0|"]}, "archs: item 0:"),
    ({"model": {"C": 0}}, "model.C:"),
    ({"colour": "red"}, "colour: Extra inputs are not permitted"),
])
def test_invalid_configs_name_the_field(raw, fragment):
    with pytest.raises(ConfigError) as info:
        validate_config(raw)
    assert fragment in str(info.value)


def test_train_evaluation_trains_the_top_k(eager):
    from db.models import TrainingRun
    from tasks.api import search_progress, submit_search

    search_id = submit_search({**TINY, "samples": 4, "topk": 2, "eval": "train", "epochs": 1,
                               "train_subset": 64})
    p = search_progress(search_id)
    assert p["status"] == "done" and p["evaluated"] == 2, p
    with session_scope(eager) as s:
        runs = list(s.scalars(select(TrainingRun)))
        assert len(runs) == 2 and all(r.status == "done" and len(r.history) == 1 for r in runs)
        trained = [c for c in repo.candidates(s, search_id) if c.eval_source == "train"]
        assert sorted(c.rank for c in trained) == [1, 2]
        assert {c.accuracy for c in trained} == {r.final_test_acc for r in runs}
    assert p["best"]["accuracy"] == max(r.final_test_acc for r in runs)


@pytest.mark.parametrize("strategy, extra", [
    ("evolution", {"samples": 10, "topk": 2, "strategy_options": {"population": 4, "tournament": 2}}),
    ("random", {"topk": 3}),
    pytest.param("nasi", {"topk": 1, "strategy_options": {"steps": 2}}, marks=pytest.mark.slow),
])
def test_other_strategies_run_as_one_task(eager, strategy, extra, truth):
    from tasks.api import search_progress, submit_search

    search_id = submit_search({**TINY, "strategy": strategy, **extra, "batch_size": 8})
    p = search_progress(search_id)
    assert p["status"] == "done", p
    best = p["best"]
    assert best["test_acc"]["cifar10"] == pytest.approx(truth.accuracy("cifar10").loc[best["index"]])
    with session_scope(eager) as s:
        cands = repo.candidates(s, search_id)
        assert cands and all(c.stage == "evaluated" and c.accuracy is not None for c in cands)
        assert best["accuracy"] == max(c.accuracy for c in cands)
        if strategy == "evolution":
            scored = s.scalar(select(func.count()).select_from(ProxyScore))
            assert scored >= extra["samples"]  # every proxy value landed in the store


def test_a_strategy_task_waiting_for_a_worker_is_queued_not_running(eager, monkeypatch):
    """One worker runs seeds in turn: a whole-strategy search handed to the queue reads queued
    (stage search) until a worker starts it, and one cancelled meanwhile never runs."""
    from tasks import search as tasks_search
    from tasks.api import cancel_search, search_progress, submit_search

    handed: list[int] = []
    monkeypatch.setattr(tasks_search.run_strategy, "apply_async", lambda args, **_: handed.append(args[0]))
    first, second = (submit_search({**TINY, "strategy": "random", "topk": 2, "seed": s}) for s in (1, 2))
    assert handed == [first, second]
    for search_id in handed:
        p = search_progress(search_id)
        assert (p["status"], p["stage"]) == ("queued", "search")
    assert tasks_search.run_strategy(first) == "done"  # the worker takes the first
    with session_scope(eager) as s:
        row = repo.get_search(s, first)
        assert row.status == "done" and row.started_at is not None
    assert cancel_search(second)["status"] == "cancelled"  # still queued: cancelled at once
    assert tasks_search.run_strategy(second) == "skipped"
    assert search_progress(second)["evaluated"] == 0


@pytest.mark.parametrize("weights", [None, {"naswot": 2.0, "params": 0.5}])
def test_an_ensemble_search_is_scored_in_chunks_one_row_per_member(eager, truth, weights):
    """A knas search with several proxies runs staged: every candidate gets one score row per
    member, ranks follow the (weighted) log-rank ensemble of the stored rows, and the found
    architecture is the one the in-process search finds with the same config."""
    from knas_core.proxies import get_proxy
    from knas_core.search.ensemble import log_rank_aggregate
    from knas_core.search.run import SearchRun
    from tasks.api import search_progress, submit_search

    config = {**TINY, "proxies": ["synflow", "naswot", "params"], "samples": 7, "topk": 2, "weights": weights}
    search_id = submit_search(config)
    p = search_progress(search_id)
    assert p["status"] == "done", p
    assert p["scored"] == p["total"] == 7 and p["failed"] == 0
    with session_scope(eager) as s:
        cands = repo.candidates(s, search_id)
        assert max(c.chunk or 0 for c in cands) == 3  # 7 candidates in chunks of 3
        rows = {(r.architecture_id, r.proxy): r.value for r in s.scalars(select(ProxyScore))}
        assert len(rows) == 7 * 3
        members = {m: [rows[(c.architecture_id, m)] for c in cands] for m in config["proxies"]}
        expected = log_rank_aggregate(members, {m: get_proxy(m).higher_is_better for m in members}, weights)
        assert [c.score for c in cands] == pytest.approx(expected)
        by_rank = sorted(cands, key=lambda c: c.rank)
        assert [c.score for c in by_rank] == sorted(expected, reverse=True)
        assert {c.stage for c in by_rank[:2]} == {"evaluated"}
    alone = SearchRun(validate_config(config)).run()
    assert p["best"]["arch"] == alone["arch"]


def test_strategy_options_are_checked():
    with pytest.raises(ConfigError, match="strategy_options: unknown option"):
        validate_config({"strategy": "evolution", "strategy_options": {"populace": 3}})


def _claimed(url, search_id):
    with session_scope(url) as s:
        return s.scalar(select(func.count()).select_from(SearchCandidate)
                        .where(SearchCandidate.search_id == search_id,
                               SearchCandidate.claimed_at.is_not(None)))


def test_dispatch_keeps_a_bounded_window_of_chunks_in_flight(eager, monkeypatch):
    """Issue 14.3: at most KNAS_DISPATCH_WINDOW chunk messages per search are out; a finished
    chunk tops the window up; a starting worker does not queue work in flight again; a
    cancel leaves at most the window to drain."""
    from tasks import search as tasks_search
    from tasks.api import cancel_search, search_progress, submit_search
    from tasks.celery_app import _resume_unfinished

    monkeypatch.setenv("KNAS_DISPATCH_WINDOW", "3")
    queued = []  # chunk messages sent and not yet run (a broker's queue)
    monkeypatch.setattr(tasks_search.score_chunk, "apply_async", lambda args=None, **kw: queued.append(args))
    search_id = submit_search({**TINY, "samples": 30, "chunk_size": 2})
    assert len(queued) == 3 and _claimed(eager, search_id) == 6
    _resume_unfinished()  # a worker starts: nothing in flight is sent again
    _resume_unfinished()
    assert len(queued) == 3 and _claimed(eager, search_id) == 6
    tasks_search.score_chunk(*queued.pop(0))  # one chunk done: the window is topped up
    assert len(queued) == 3 and _claimed(eager, search_id) == 8
    assert search_progress(search_id)["scored"] == 2
    cancel_search(search_id)
    assert search_progress(search_id)["status"] == "cancelled"
    assert len(queued) <= 3  # all that is left to drain
    for args in queued:
        assert tasks_search.score_chunk(*args) == 0


@pytest.mark.parametrize("error, cached", [("out of memory: simulated", False),
                                           ("MemoryError: no message", False),
                                           ("ValueError: a deterministic failure", True)])
def test_only_deterministic_failures_are_cached(eager, monkeypatch, error, cached):
    """Issue 14.4: a transient failure (out of memory, a dead worker) fails its search with the
    reason, but the next identical search scores the architectures again."""
    from knas_core.scoring import ProxyResult
    from tasks import search as tasks_search
    from tasks.api import search_progress, submit_search

    calls = []
    real = tasks_search.Scorer.score_one

    def failing(self, arch, proxy):
        calls.append(arch)
        return ProxyResult(proxy, None, error, 0.0, 16)

    monkeypatch.setattr(tasks_search.Scorer, "score_one", failing)
    first = search_progress(submit_search(TINY))
    assert first["status"] == "failed" and error in first["error"] and first["failed"] == 8
    assert len(calls) == 8

    def counting(self, arch, proxy):
        calls.append(arch)
        return real(self, arch, proxy)

    monkeypatch.setattr(tasks_search.Scorer, "score_one", counting)
    second = search_progress(submit_search({**TINY, "name": "again"}))
    if cached:
        assert second["status"] == "failed" and len(calls) == 8  # no retry of a deterministic failure
    else:
        assert second["status"] == "done" and second["failed"] == 0 and second["scored"] == 8
        assert len(calls) == 16


def test_a_candidate_out_of_attempts_fails_with_the_reason_as_a_transient_failure(eager, monkeypatch):
    """Issue 14.2 in one process: a delivery that finds the architecture started
    KNAS_MAX_ATTEMPTS times without a score records the failure instead of scoring it."""
    from tasks.search import score_chunk, scorer_for

    monkeypatch.setenv("KNAS_MAX_ATTEMPTS", "2")
    with session_scope(eager) as s:
        search = repo.create_search(s, validate_config(TINY).model_dump(mode="json"))
        search.data_id = scorer_for(validate_config(TINY)).source.identity
        repo.set_stage(s, search, "score", total=1)
        ids = repo.ensure_architectures(s, "nb201", [(ARCH, 1)])
        repo.add_candidates(s, search.id, [ids[ARCH]])
        cand = s.scalars(select(SearchCandidate).where(SearchCandidate.search_id == search.id)).one()
        cand.attempts = 2  # two deliveries died on it
        search_id, cand_id = search.id, cand.id
    score_chunk(search_id, [cand_id])
    with session_scope(eager) as s:
        row = s.scalars(select(ProxyScore)).one()
        assert row.value is None and row.error == "worker died 2 times scoring this architecture"
        assert row.transient
        assert repo.get_search(s, search_id).status == "failed"


def test_a_claim_of_a_gone_process_on_this_host_has_expired():
    import os
    import subprocess
    import sys
    from datetime import timedelta
    from types import SimpleNamespace

    from db.models import utcnow
    from tasks.search import claimant_dead, live_claim, worker_identity

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    host = worker_identity().rpartition(":")[0]
    assert worker_identity() == f"{host}:{os.getpid()}"
    assert claimant_dead(f"{host}:{gone.pid}")
    assert not claimant_dead(f"{host}:{os.getpid()}")
    assert not claimant_dead(f"another-host:{gone.pid}")  # lives out its lease
    assert not claimant_dead(None)
    lease = timedelta(seconds=60)
    assert live_claim(SimpleNamespace(claimed_at=utcnow(), claimed_by=None), lease)  # queued
    assert not live_claim(SimpleNamespace(claimed_at=utcnow() - 2 * lease, claimed_by=None), lease)
    assert not live_claim(SimpleNamespace(claimed_at=utcnow(), claimed_by=f"{host}:{gone.pid}"), lease)
    assert not live_claim(SimpleNamespace(claimed_at=None, claimed_by=None), lease)
