"""The store, run against SQLite and PostgreSQL alike."""

import threading

import pytest
from sqlalchemy import func, inspect, select, text

from db import repository as repo
from db.migrate import current_revision, head_revision
from db.models import Architecture, BenchmarkAccuracy, ProxyScore, SearchCandidate
from db.session import get_engine, session_scope

KEY = repo.ScoreKey("knas", "cifar10", 64, 0, "cpu", "C=16,N=5",
                    "npz:cifar10_scoring_2k500-train:0123456789ab")
A1 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
A2 = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


def test_migrations_create_every_table(db_url):
    tables = set(inspect(get_engine(db_url)).get_table_names())
    assert {"searches", "architectures", "proxy_scores", "training_runs", "search_candidates",
            "benchmark_accuracies", "alembic_version", "discovery_runs", "discovery_generations",
            "discovered_proxies"} <= tables
    assert current_revision(db_url) == head_revision() == "0006"


def test_sqlite_runs_in_wal_mode(tmp_path):
    from db.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'wal.db'}"
    upgrade(url)
    with get_engine(url).connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30000


def test_architectures_are_unique(db_url):
    with session_scope(db_url) as s:
        first = repo.ensure_architectures(s, "nb201", [(A1, 1), (A2, 7)])
    with session_scope(db_url) as s:
        again = repo.ensure_architectures(s, "nb201", [(A2, 7), (A1, 1)])
        assert again == first
        assert s.scalar(select(func.count()).select_from(Architecture)) == 2


def test_a_repeated_score_is_a_cache_hit(db_url):
    with session_scope(db_url) as s:
        arch_id = repo.ensure_architectures(s, "nb201", [(A1, 1)])[A1]
        stored = repo.save_score(s, arch_id, KEY, 1.5, None, 0.2)
    with session_scope(db_url) as s:
        again = repo.save_score(s, arch_id, KEY, 9.9, None, 0.3)
        assert again.id == stored.id and again.value == 1.5
        other_seed = repo.save_score(s, arch_id, repo.ScoreKey(**{**KEY.__dict__, "seed": 1}), 2.0, None, 0.1)
        assert other_seed.id != stored.id
        failed = repo.save_score(s, arch_id, repo.ScoreKey(**{**KEY.__dict__, "proxy": "grasp"}),
                                 None, "out of memory: boom", 0.1)
        assert failed.value is None and failed.error.startswith("out of memory")
        assert s.scalar(select(func.count()).select_from(ProxyScore)) == 3


def test_scores_on_other_images_are_other_scores(db_url):
    """The images are part of a score's identity: a synthetic-input score never answers for a
    CIFAR one, and a search's unscored candidates are counted against its own images."""
    synthetic = repo.ScoreKey(**{**KEY.__dict__, "data": "synthetic:cifar10:normal"})
    with session_scope(db_url) as s:
        arch_id = repo.ensure_architectures(s, "nb201", [(A1, 1)])[A1]
        search = repo.create_search(s, {"dataset": "cifar10"})
        repo.add_candidates(s, search.id, [arch_id])
        repo.save_score(s, arch_id, synthetic, 3.0, None, 0.1)
        assert repo.get_score(s, arch_id, KEY) is None
        assert [c.architecture_id for c in repo.unscored_candidates(s, search.id, KEY)] == [arch_id]
        cifar = repo.save_score(s, arch_id, KEY, 1.0, None, 0.1)
        assert cifar.value == 1.0 and cifar.data == KEY.data
        assert repo.get_score(s, arch_id, synthetic).value == 3.0
        assert repo.unscored_candidates(s, search.id, KEY) == []


def test_upgrade_from_0002_keeps_scores_under_an_empty_identity(tmp_path):
    """Scores stored before the images joined the key survive the migration, labelled unknown."""
    from db.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0002")
    with get_engine(url).begin() as conn:
        conn.execute(text("INSERT INTO architectures (id, space, arch, \"index\") "
                          "VALUES (1, 'nb201', :a, 1)"), {"a": A1})
        conn.execute(text("INSERT INTO proxy_scores (architecture_id, proxy, dataset, batch_size, seed, "
                          "device_type, model, value, seconds, created_at) VALUES "
                          "(1, 'knas', 'cifar10', 64, 0, 'cpu', 'C=16,N=5', 2.5, 0.1, '2026-11-01')"))
    upgrade(url)
    with session_scope(url) as s:
        old = repo.get_score(s, 1, repo.ScoreKey(**{**KEY.__dict__, "data": ""}))
        assert old is not None and old.value == 2.5
        assert repo.get_score(s, 1, KEY) is None
    get_engine(url).dispose()


def test_concurrent_writers_do_not_duplicate(db_url):
    with session_scope(db_url) as s:
        arch_id = repo.ensure_architectures(s, "nb201", [(A1, 1)])[A1]
    errors = []

    def write(value: float) -> None:
        try:
            with session_scope(db_url) as s:
                repo.save_score(s, arch_id, KEY, value, None, 0.0)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(float(i),)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with session_scope(db_url) as s:
        assert s.scalar(select(func.count()).select_from(ProxyScore)) == 1


def test_search_lifecycle_counters_and_cancel(db_url):
    with session_scope(db_url) as s:
        search = repo.create_search(s, {"samples": 2}, "t")
        ids = repo.ensure_architectures(s, "nb201", [(A1, 1), (A2, 7)])
        repo.add_candidates(s, search.id, [ids[A1], ids[A2]])
        repo.add_candidates(s, search.id, [ids[A1]])  # idempotent
        repo.set_stage(s, search, "score", total=2)
        assert search.status == "running" and search.started_at is not None
        repo.save_score(s, ids[A1], KEY, 3.0, None, 0.1)
        repo.save_score(s, ids[A2], KEY, None, "ValueError: x", 0.1)
        repo.refresh_counters(s, search, KEY)
        assert (search.scored, search.failed) == (2, 1)
        assert repo.unscored_candidates(s, search.id, KEY) == []
        best = repo.best_scored(s, search.id, KEY)
        assert best[0].arch == A1 and best[1] == 3.0
        search_id = search.id
    with session_scope(db_url) as s:
        assert repo.request_cancel(s, search_id).cancel_requested
        assert repo.cancel_requested(s, search_id)
        queued = repo.create_search(s, {}, "q")
        assert repo.request_cancel(s, queued.id).status == "cancelled"
        assert search_id in repo.incomplete_searches(s) and queued.id not in repo.incomplete_searches(s)


def test_a_search_or_discovery_run_keeps_its_first_ending(db_url):
    from db import discovery as runs

    with session_scope(db_url) as s:
        search = repo.create_search(s, {"samples": 2}, "t")
        run = runs.create_run(s, {"population": 4}, "r")
        assert search.finish("done", result={"best": 1}) and search.stage == "done"
        assert not search.finish("failed", error="late")  # a later ending is ignored
        assert run.finish("done", result={"formula": "sum(A)", "heldout_kendall": 0.4})
        assert not run.finish("cancelled")
        ids = search.id, run.id
    with session_scope(db_url) as s:
        search, run = repo.get_search(s, ids[0]), runs.get_run(s, ids[1])
        assert (search.status, search.error, search.result) == ("done", None, {"best": 1})
        assert search.finished_at is not None
        assert (run.status, run.best_formula, run.heldout_kendall) == ("done", "sum(A)", 0.4)


def test_ground_truth_rows(db_url, truth):
    with session_scope(db_url) as s:
        ids = repo.ensure_architectures(s, "nb201", [(A1, 1)])
        value = float(truth.accuracy("cifar10", "valid_12ep").loc[1])
        repo.ensure_benchmark_accuracies(s, [(ids[A1], "cifar10", "valid_12ep", value)] * 2)
        assert repo.benchmark_accuracy(s, ids[A1], "cifar10", "valid_12ep") == pytest.approx(value)
        assert s.scalar(select(func.count()).select_from(BenchmarkAccuracy)) == 1


def test_load_ground_truth_is_complete_and_idempotent(db_url, truth):
    from knas_core.groundtruth import GroundTruth

    part = GroundTruth(truth.frame.iloc[:40])
    with session_scope(db_url) as s:
        assert repo.load_ground_truth(s, part) == 40 * 3 * 3
    with session_scope(db_url) as s:
        repo.load_ground_truth(s, part)
        assert s.scalar(select(func.count()).select_from(BenchmarkAccuracy)) == 40 * 9
        arch_id = repo.ensure_architectures(s, "nb201", [(truth.frame.loc[7, "arch"], 7)])
        value = repo.benchmark_accuracy(s, next(iter(arch_id.values())), "cifar100", "test")
        assert value == pytest.approx(truth.frame.loc[7, "cifar100_test_acc"])


@pytest.mark.integration
def test_cli_loads_the_whole_table(tmp_path, truth):
    import subprocess
    import sys
    from pathlib import Path

    from db.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'gt.db'}"
    upgrade(url)  # `knas db upgrade`: load-groundtruth never migrates
    knas = str(Path(sys.executable).with_name("knas"))
    proc = subprocess.run([knas, "db", "load-groundtruth"], capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "KNAS_DATABASE_URL": url})
    assert proc.returncode == 0, proc.stderr
    assert "stored 15625 architectures and 140625 accuracies" in proc.stdout
    with session_scope(url) as s:
        assert s.scalar(select(func.count()).select_from(Architecture)) == 15625


@pytest.mark.integration
def test_concurrent_upgrades_are_serialised(tmp_path):
    """Workers starting together each run the migrations: none of them may fail."""
    import subprocess
    import sys

    from .services import postgres_database

    for url_factory in ("sqlite", "postgresql"):
        ctx = postgres_database() if url_factory == "postgresql" else None
        url = ctx.__enter__() if ctx else f"sqlite:///{tmp_path / 'race.db'}"
        try:
            code = f"from db.migrate import upgrade; upgrade({url!r})"
            procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
                     for _ in range(3)]
            for p in procs:
                _, err = p.communicate(timeout=120)
                assert p.returncode == 0, err[-2000:]
            assert current_revision(url) == head_revision()
        finally:
            if ctx:
                ctx.__exit__(None, None, None)


def test_upgrade_from_0003_marks_stored_out_of_memory_failures_transient(tmp_path):
    """0004: failures stored before it that ran out of memory become transient (no cache entry);
    candidates start with no attempts."""
    from alembic import command

    from db.migrate import alembic_config, upgrade

    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0003")
    with get_engine(url).begin() as conn:
        conn.execute(text("INSERT INTO architectures (id, space, arch, \"index\") "
                          "VALUES (1, 'nb201', :a, 1), (2, 'nb201', :b, 2)"), {"a": A1, "b": A2})
        for arch, error in ((1, "out of memory: CUDA out of memory."), (2, "ValueError: x")):
            conn.execute(text("INSERT INTO proxy_scores (architecture_id, proxy, dataset, data, batch_size, "
                              "seed, device_type, model, error, seconds, created_at) VALUES "
                              "(:a, 'knas', 'cifar10', :d, 64, 0, 'cpu', 'C=16,N=5', :e, 0.1, '2026-11-01')"),
                         {"a": arch, "d": KEY.data, "e": error})
    upgrade(url)
    with session_scope(url) as s:
        assert repo.get_score(s, 1, KEY).transient and not repo.get_score(s, 2, KEY).transient
        assert repo.forget_transient(s, KEY, [1, 2]) == 1
    command.downgrade(alembic_config(url), "0003")  # and back
    upgrade(url)
    get_engine(url).dispose()


def test_upgrade_to_0005_drops_scores_of_the_redefined_proxies(tmp_path):
    """0005: fisher and flops changed definition; their cached values go, the others stay."""
    from db.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0004")
    with get_engine(url).begin() as conn:
        conn.execute(text("INSERT INTO architectures (id, space, arch, \"index\") "
                          "VALUES (1, 'nb201', :a, 1)"), {"a": A1})
        for proxy in ("fisher", "flops", "synflow"):
            conn.execute(text("INSERT INTO proxy_scores (architecture_id, proxy, dataset, data, batch_size, "
                              "seed, device_type, model, value, seconds, created_at) VALUES "
                              "(1, :p, 'cifar10', :d, 64, 0, 'cpu', 'C=16,N=5', 1.5, 0.1, '2026-11-01')"),
                         {"p": proxy, "d": KEY.data})
    upgrade(url)
    with get_engine(url).begin() as conn:
        left = conn.execute(text("SELECT proxy FROM proxy_scores")).scalars().all()
    assert left == ["synflow"]
    get_engine(url).dispose()


def test_0006_adds_search_tags_and_note_and_takes_them_away(tmp_path):
    """0006: searches stored before it get no tags and an empty note; a downgrade drops both
    columns and keeps the searches."""
    from alembic import command

    from db.migrate import alembic_config, upgrade

    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0005")
    with get_engine(url).begin() as conn:
        conn.execute(text("INSERT INTO searches (id, name, config, status, stage, total, scored, failed, "
                          "evaluated, cancel_requested, created_at, updated_at) VALUES (1, 'old', '{}', "
                          "'done', 'done', 0, 0, 0, 0, 0, '2026-11-01', '2026-11-01')"))
    upgrade(url)
    with session_scope(url) as s:
        search = repo.get_search(s, 1)
        assert search is not None and (search.tags, search.note) == ([], "")
        assert repo.annotate_search(s, 1, ["baseline", "seed=0"], "kept")
        assert not repo.annotate_search(s, 2, ["x"], "")
    with session_scope(url) as s:
        search = repo.get_search(s, 1)
        assert search is not None and (search.tags, search.note) == (["baseline", "seed=0"], "kept")
    command.downgrade(alembic_config(url), "0005")
    columns = {c["name"] for c in inspect(get_engine(url)).get_columns("searches")}
    assert "tags" not in columns and "note" not in columns
    with get_engine(url).begin() as conn:
        assert conn.execute(text("SELECT name FROM searches")).scalars().all() == ["old"]
    upgrade(url)  # and up again
    assert current_revision(url) == head_revision()
    get_engine(url).dispose()


def test_a_search_of_the_whole_space_stores_its_candidates(db_url):
    """15,625 candidates (every NAS-Bench-201 cell) in one insert exceeded PostgreSQL's 65,535
    bound parameters once candidates gained a column with a default; inserts go in batches."""
    archs = [(f"|arch~{i}|", i) for i in range(15625)]
    with session_scope(db_url) as s:
        ids = repo.ensure_architectures(s, "test", archs)
        search = repo.create_search(s, {"samples": 15625})
        repo.add_candidates(s, search.id, [ids[a] for a, _ in archs])
        assert s.scalar(select(func.count()).select_from(SearchCandidate)
                        .where(SearchCandidate.search_id == search.id)) == 15625
