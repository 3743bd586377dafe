"""Real worker processes (``knas worker``) on the embedded broker and on Redis + PostgreSQL:
crash recovery, two workers, failures, invalid input, broker down."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from db.models import ProxyScore, Search, SearchCandidate
from db.session import session_scope

from .processes import KNAS, ROOT, Stack
from .processes import SMALL_SEARCH as SMALL
from .services import postgres_database, redis_url

QUICK = ROOT / "examples" / "quick-search.yaml"


@pytest.fixture()
def embedded(tmp_path):
    stack = Stack(tmp_path, f"sqlite:///{tmp_path / 'knas.db'}", broker=None)
    yield stack
    stack.close()


@pytest.fixture()
def scaled(tmp_path):
    broker = redis_url()
    with postgres_database() as url:
        stack = Stack(tmp_path, url, broker=broker)
        yield stack
        stack.close()


def done(status: dict) -> bool:
    return status["status"] in ("done", "failed", "cancelled")


def _check_quick_search(stack: Stack) -> None:
    """The example's search on small networks (.ci/run's fresh-clone step runs it at full size
    through `make quick`)."""
    stack.start_worker("w1")
    search_id = stack.submit({**yaml.safe_load(QUICK.read_text()), **SMALL})
    status = stack.wait(search_id, done)
    assert status["status"] == "done", status
    assert status["scored"] == status["total"] == 20 and status["failed"] == 0
    assert status["best"]["arch"] and status["best"]["index"] is not None
    assert stack.rows(search_id) == (20, 20, 20)


@pytest.mark.integration
def test_quick_search_on_the_embedded_default(embedded):
    _check_quick_search(embedded)
    assert (embedded.tmp / "state" / "broker.sqlite").exists()  # no server involved


@pytest.mark.integration
def test_quick_search_on_redis_and_postgresql(scaled):
    _check_quick_search(scaled)


@pytest.mark.integration
def test_sigkill_mid_search_then_a_new_worker_finishes_it(scaled):
    # a proxy that takes 0.5 s per architecture on tiny networks: the kill lands mid-search
    scaled.env.update(KNAS_PLUGINS=FAULTY, KNAS_TEST_SLOW_SECONDS="0.5")
    first = scaled.start_worker("doomed")
    # 30 architectures (15 s of scoring): a `knas status` poll on a loaded machine takes seconds
    search_id = scaled.submit({**SMALL, "proxy": "slow_proxy", "samples": 30, "topk": 3, "chunk_size": 2,
                               "model": {"C": 4, "N": 1}})
    scaled.wait(search_id, lambda s: s["scored"] >= 4)
    scaled.kill(first)
    before = scaled.status(search_id)
    assert before["status"] == "running" and before["scored"] < 30
    scaled.start_worker("rescuer")
    status = scaled.wait(search_id, done)
    assert status["status"] == "done" and status["scored"] == 30
    assert scaled.rows(search_id) == (30, 30, 30)  # every architecture exactly once, none missing


@pytest.mark.integration
def test_two_workers_share_a_search_without_duplicates(scaled):
    scaled.start_worker("a")
    scaled.start_worker("b")
    scaled.wait_ready("a", "b")  # otherwise the first one up may finish before the second starts
    search_id = scaled.submit({**SMALL, "samples": 20, "topk": 3, "chunk_size": 2,
                               "model": {"C": 8, "N": 1}})
    status = scaled.wait(search_id, done)
    assert status["status"] == "done" and status["scored"] == status["total"] == 20
    assert scaled.rows(search_id) == (20, 20, 20)
    worked = [(scaled.tmp / f"{n}.log").read_text().count("knas.score_chunk") for n in ("a", "b")]
    assert all(w > 0 for w in worked), worked  # both workers took chunks


@pytest.mark.integration
def test_failing_tasks_are_recorded_and_the_worker_keeps_serving(scaled):
    plugin = {"KNAS_PLUGINS": "tests.plugins.faulty"}
    scaled.start_worker("w", **plugin)
    failing = scaled.knas("submit", str(_write(scaled.tmp, {**SMALL, "samples": 4, "topk": 1,
                                                             "proxy": "oom_proxy"})), "--json", **plugin)
    assert failing.returncode == 0, failing.stderr
    search_id = json.loads(failing.stdout)["id"]
    status = scaled.wait(search_id, done)
    assert status["status"] == "failed" and "out of memory" in status["error"]
    with session_scope(scaled.db_url) as s:
        errors = list(s.scalars(select(ProxyScore.error).where(ProxyScore.proxy == "oom_proxy")))
    assert len(errors) == 4 and all(e.startswith("out of memory") for e in errors)
    healthy = scaled.submit({**SMALL, "samples": 4, "topk": 1})
    assert scaled.wait(healthy, done)["status"] == "done"


def _write(tmp: Path, config: dict) -> Path:
    path = tmp / f"cfg-{len(list(tmp.glob('cfg-*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.integration
def test_invalid_config_is_rejected_at_submit(embedded):
    proc = embedded.knas("submit", str(_write(embedded.tmp, {"samples": 20, "topk": 50})))
    assert proc.returncode == 2 and "topk (50) cannot exceed" in proc.stderr
    proc = embedded.knas("submit", str(_write(embedded.tmp, {"samples": "many"})))
    assert proc.returncode == 2 and "samples:" in proc.stderr
    assert "Traceback" not in proc.stderr
    _assert_no_searches(embedded)


@pytest.mark.integration
def test_broker_down_at_submit_writes_nothing(embedded):
    proc = embedded.knas("submit", str(QUICK), KNAS_BROKER_URL="redis://127.0.0.1:1/0")
    assert proc.returncode == 2
    assert "cannot reach the task broker" in proc.stderr and "Traceback" not in proc.stderr
    _assert_no_searches(embedded)


def _assert_no_searches(stack: Stack) -> None:
    with session_scope(stack.db_url) as s:
        assert s.scalar(select(func.count()).select_from(Search)) == 0


@pytest.mark.integration
@pytest.mark.slow
def test_cancel_stops_a_running_search(embedded):
    embedded.start_worker("w")
    search_id = embedded.submit({**SMALL, "samples": 300, "topk": 3, "chunk_size": 5})
    embedded.wait(search_id, lambda s: s["scored"] >= 2)
    proc = embedded.knas("cancel", str(search_id))
    assert proc.returncode == 0, proc.stderr
    status = embedded.wait(search_id, done, timeout=60)
    assert status["status"] == "cancelled"
    time.sleep(3)
    after = embedded.status(search_id)
    assert after["scored"] == status["scored"] < 300  # nothing scored after the stop


def test_thread_budget_shares_the_cores():
    from knas_core.device import thread_budget

    assert thread_budget(1, cores=2) == 2
    assert thread_budget(2, cores=2) == 1
    assert thread_budget(3, cores=2) == 1  # never below one thread
    assert thread_budget(4, cores=16) == 4
    with pytest.raises(ValueError, match="concurrency"):
        thread_budget(0, cores=2)


def test_worker_processes_apply_the_thread_budget(monkeypatch):
    import torch

    from tasks.celery_app import apply_thread_budget

    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("KNAS_TORCH_THREADS", raising=False)
        assert apply_thread_budget() is None and torch.get_num_threads() == before
        monkeypatch.setenv("KNAS_TORCH_THREADS", "1")
        assert apply_thread_budget() == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.integration
def test_worker_rejects_a_bad_thread_count(tmp_path):
    proc = subprocess.run([KNAS, "worker", "--threads", "0"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 2 and "--threads must be at least 1" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_progress_throttle_lets_one_report_a_second_and_always_the_last():
    from tasks.progress import ProgressThrottle

    now = [100.0]
    throttle = ProgressThrottle(1.0, clock=lambda: now[0])
    assert throttle.due(1, 10)          # the first report
    now[0] += 0.5
    assert not throttle.due(2, 10)      # too soon
    assert throttle.due(10, 10)         # the final count is never held back
    now[0] += 0.2
    assert not throttle.due(3, 10)
    now[0] += 1.0
    assert throttle.due(4, 10)


FAULTY = "tests.plugins.faulty"


def _finished_a_chunk(stack: Stack, name: str) -> bool:
    text = (stack.tmp / f"{name}.log").read_text()
    return any("knas.score_chunk[" in line and "succeeded" in line for line in text.splitlines())


@pytest.mark.integration
def test_a_lost_chunk_is_redone_while_another_worker_lives(embedded):
    """Issue 14.1: a chunk dies with its worker after the other worker finished its own chunk
    (within the lease); nothing else would call the orchestrator, so the survivor's lease
    sweeper must (it sees the dead process at once, or the lease expire)."""
    embedded.env.update(KNAS_PLUGINS=FAULTY, KNAS_SWEEP_SECONDS="1", KNAS_TEST_SLOW_SECONDS="2")
    workers = {}
    for name in ("a", "b"):  # one after the other: the embedded broker creates its tables once
        workers[name] = embedded.start_worker(name)
        embedded.wait_ready(name)
    search_id = embedded.submit({**SMALL, "proxy": "slow_proxy", "samples": 7, "topk": 1, "chunk_size": 5,
                                 "lease_seconds": 20, "model": {"C": 4, "N": 1}})
    deadline = time.monotonic() + 90  # until the chunk of 2 is done (the logs: faster than `knas status`)
    while time.monotonic() < deadline and not any(_finished_a_chunk(embedded, n) for n in workers):
        time.sleep(0.2)
    short = [n for n in workers if _finished_a_chunk(embedded, n)]
    assert len(short) == 1, short
    busy = next(n for n in workers if n not in short)
    embedded.kill(workers[busy])  # mid-chunk: the survivor is idle from now on
    assert embedded.rows(search_id)[1] < 7
    status = embedded.wait(search_id, done, timeout=60)
    assert status["status"] == "done" and status["scored"] == 7
    assert embedded.rows(search_id) == (7, 7, 7)


@pytest.mark.integration
def test_a_poison_architecture_fails_after_max_attempts_and_the_search_goes_on(embedded):
    """Issue 14.2: a proxy whose process is SIGKILLed on one architecture (as the OOM killer
    does) is re-delivered only KNAS_MAX_ATTEMPTS times; then that architecture fails with the
    reason and the others are scored."""
    from knas_core.spaces import get_space

    space = get_space("nb201")
    poison = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
    good = ["|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
            "|nor_conv_1x1~0|+|nor_conv_1x1~0|nor_conv_1x1~1|+|nor_conv_1x1~0|nor_conv_1x1~1|nor_conv_1x1~2|"]
    params = sum(p.numel() for p in space.build_model(poison, 10, C=4, N=1).parameters())
    embedded.env.update(KNAS_PLUGINS=FAULTY, KNAS_MAX_ATTEMPTS="2", KNAS_TEST_POISON_PARAMS=str(params))
    embedded.start_worker("w")
    search_id = embedded.submit({**SMALL, "proxy": "poison_proxy", "archs": [good[0], poison, good[1]],
                                 "topk": 1, "chunk_size": 3, "model": {"C": 4, "N": 1}})
    status = embedded.wait(search_id, done, timeout=90)
    assert status["status"] == "done" and status["scored"] == 3 and status["failed"] == 1, status
    with session_scope(embedded.db_url) as s:
        rows = {r.architecture.arch: r for r in s.scalars(select(ProxyScore))}
        cand = s.scalars(select(SearchCandidate).join(SearchCandidate.architecture)
                         .where(SearchCandidate.search_id == search_id)).all()
    assert rows[poison].error == "worker died 2 times scoring this architecture"
    assert rows[poison].value is None and all(rows[a].value for a in good)
    assert {c.architecture.arch: c.attempts for c in cand}[poison] == 2
