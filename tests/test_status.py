"""The status and stage enums: what they define covers every value the code writes, unknown
words are refused, members behave as their strings, and no status or stage literal is back."""

from __future__ import annotations

import ast
import json
from collections import defaultdict
from enum import StrEnum
from pathlib import Path

import pytest
from sqlalchemy import event, select

from db.status import CandidateStage, DiscoveryStage, SearchStage, Status, TrainingStatus
from knas_core.discovery.run import DiscoveryProgress
from knas_core.search.base import ProgressStage

from .conftest import eager_tasks

ROOT = Path(__file__).resolve().parent.parent
ENUMS = (Status, SearchStage, CandidateStage, TrainingStatus, DiscoveryStage,
         ProgressStage, DiscoveryProgress)
TINY = {"name": "tiny", "samples": 8, "topk": 3, "chunk_size": 3, "batch_size": 16,
        "model": {"C": 4, "N": 1}, "device": "cpu", "seed": 5}


@pytest.mark.parametrize("enum", ENUMS, ids=lambda e: e.__name__)
def test_members_are_their_strings_and_unknown_words_are_refused(enum):
    for member in enum:
        assert member == member.value and isinstance(member, str)
        assert f"{member}" == str(member) == member.value
        assert json.dumps({"s": member}) == json.dumps({"s": member.value})
        assert enum(member.value) is member
    with pytest.raises(ValueError, match="bogus"):
        enum("bogus")
    with pytest.raises(ValueError):
        enum("DONE")  # the member name is not a value


def test_ended_and_active_split_the_statuses():
    assert set(Status.ENDED) == {"done", "failed", "cancelled"}
    assert set(Status.ACTIVE) == {"queued", "running"}
    assert set(Status.ENDED) | set(Status.ACTIVE) == set(Status)
    assert not set(Status.ENDED) & set(Status.ACTIVE)
    assert [s.ended for s in Status] == [s in Status.ENDED for s in Status]
    assert "ENDED" not in Status.__members__ and "ACTIVE" not in Status.__members__


def test_the_core_progress_stages_are_store_stages():
    # run_strategy stores evaluate as evaluate and any other report (score, NASI's steps) as score
    assert {ProgressStage.SCORE, ProgressStage.EVALUATE} <= set(SearchStage)
    assert set(DiscoveryProgress) <= set(DiscoveryStage)
    assert SearchStage.DONE == DiscoveryStage.DONE == Status.DONE  # Lifecycle.finish's final stage


def test_finish_takes_only_an_ending():
    from db.models import DiscoveryRun, Search

    for row in (Search(status=Status.RUNNING), DiscoveryRun(status=Status.RUNNING)):
        with pytest.raises(ValueError, match="running"):
            row.finish(Status.RUNNING)
        assert row.finish(Status.DONE) and row.stage == "done" and row.status == "done"


# --- every value written belongs to its enum ---------------------------------------------------

@pytest.fixture()
def written(tmp_path, monkeypatch):
    """Every status and stage value the code assigns on a model or bulk-inserts, by column, while
    tasks run eagerly on a fresh SQLite store."""
    from db import repository
    from db.migrate import upgrade
    from db.models import DiscoveryRun, Search, SearchCandidate, TrainingRun
    from db.session import dispose_engine

    columns = {(Search, "status"): Status, (Search, "stage"): SearchStage,
               (SearchCandidate, "stage"): CandidateStage, (TrainingRun, "status"): TrainingStatus,
               (DiscoveryRun, "status"): Status, (DiscoveryRun, "stage"): DiscoveryStage}
    seen: dict[tuple[type, str], set[str]] = defaultdict(set)
    listeners = []
    for model, name in columns:
        def record(target, value, old, initiator, key=(model, name)):
            seen[key].add(value)
        event.listen(getattr(model, name), "set", record)
        listeners.append((getattr(model, name), record))
    insert_ignore = repository.insert_ignore

    def recording_insert(session, model, rows):
        for row in rows:
            for name in ("status", "stage"):
                if name in row:
                    seen[model, name].add(row[name])
        return insert_ignore(session, model, rows)

    monkeypatch.setattr(repository, "insert_ignore", recording_insert)
    monkeypatch.setattr("db.discovery.insert_ignore", recording_insert)
    url = f"sqlite:///{tmp_path / 'knas.db'}"
    upgrade(url)
    try:
        for _ in eager_tasks(url, monkeypatch):  # sets the store and eager mode, then resets them
            yield url, columns, seen
    finally:
        for attr, fn in listeners:
            event.remove(attr, "set", fn)
        dispose_engine(url)


def test_every_status_and_stage_written_belongs_to_its_enum(written, monkeypatch, tmp_path):
    from db import discovery as discovery_repo
    from db import repository as repo
    from db.models import DiscoveryRun, Search, SearchCandidate, TrainingRun
    from db.session import session_scope
    from knas_core.scoring import ProxyResult
    from tasks import search as tasks_search
    from tasks.api import search_progress, submit_search
    from tasks.discovery import discover, discovery_progress, submit_discovery
    from tasks.schema import validate_config

    url, columns, seen = written
    statuses = {}
    statuses["lookup"] = submit_search(TINY)
    statuses["train"] = submit_search({**TINY, "samples": 4, "topk": 2, "eval": "train", "epochs": 1,
                                       "train_subset": 64})
    statuses["whole"] = submit_search({**TINY, "strategy": "random", "topk": 2, "batch_size": 8})
    with session_scope() as s:  # cancelled by the orchestrator before it starts
        search = repo.create_search(s, validate_config(TINY).model_dump(mode="json"))
        search.cancel_requested, statuses["cancelled"] = True, search.id
    assert tasks_search.advance_search(statuses["cancelled"]) == Status.CANCELLED
    with session_scope() as s:  # cancelled while queued, by the row itself
        statuses["queued-cancel"] = repo.create_search(s, {"name": "queued"}).id
        repo.request_cancel(s, statuses["queued-cancel"])

    def broken(*args, **kwargs):
        raise RuntimeError("simulated training failure")

    monkeypatch.setattr("knas_core.training.train_architecture", broken)
    statuses["train-fails"] = submit_search({**TINY, "samples": 4, "topk": 1, "eval": "train", "epochs": 1,
                                             "train_subset": 64, "seed": 6})
    monkeypatch.setattr(tasks_search.Scorer, "score_one",
                        lambda self, arch, proxy: ProxyResult(proxy, None, "simulated", 0.0, 16))
    statuses["scores-fail"] = submit_search({**TINY, "seed": 7})
    progress = {k: search_progress(i)["status"] for k, i in statuses.items()}
    assert progress == {"lookup": "done", "train": "done", "whole": "done", "cancelled": "cancelled",
                        "queued-cancel": "cancelled", "train-fails": "failed", "scores-fail": "failed"}

    tiny = {"archs": 6, "heldout": 3, "generations": 1, "population": 4, "seed": 2, "C": 4, "N": 1,
            "device": "cpu", "cache_dir": str(tmp_path / "tensors")}
    runs = {"done": submit_discovery(tiny),
            "failed": submit_discovery({**tiny, "data_source": "npz", "data_dir": "/nonexistent"})}
    with session_scope() as s:
        run = discovery_repo.create_run(s, tiny)
        run.cancel_requested, runs["cancelled"] = True, run.id
    assert discover(runs["cancelled"]) == Status.CANCELLED
    assert {k: discovery_progress(i)["status"] for k, i in runs.items()} == {k: k for k in runs}

    with session_scope() as s:  # what is stored, defaults included
        for model, name in columns:
            seen[model, name] |= set(s.scalars(select(getattr(model, name))))
    for (model, name), enum in columns.items():
        values = seen[model, name]
        assert values <= set(enum), f"{model.__name__}.{name}: {values - set(enum)} not in {enum.__name__}"
    # ... and these runs wrote every value each enum defines
    assert seen[Search, "status"] == set(Status)
    assert seen[Search, "stage"] == set(SearchStage)
    assert seen[SearchCandidate, "stage"] == set(CandidateStage)
    assert seen[TrainingRun, "status"] == set(TrainingStatus)
    assert seen[DiscoveryRun, "status"] == set(Status)
    assert seen[DiscoveryRun, "stage"] == set(DiscoveryStage)


# --- no literal comes back -----------------------------------------------------------------------

WORDS = {m.value for enum in ENUMS for m in enum}
FIELDS = {"status", "stage"}
#: Calls whose positional arguments are statuses or stages (``Search.status.in_(...)``,
#: ``repo.candidates(session, id, stage)``, a progress callback's stage).
CALLS = {"finish", "set_stage", "candidates", "in_", "report", "progress"}


def _is_field(node: ast.AST) -> bool:
    """``x.status``, ``x["stage"]``, ``x.get("status")`` or a plain ``status`` / ``stage``."""
    if isinstance(node, ast.Attribute):
        return node.attr in FIELDS
    if isinstance(node, ast.Name):
        return node.id in FIELDS
    if isinstance(node, ast.Subscript):
        return isinstance(node.slice, ast.Constant) and node.slice.value in FIELDS
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
        return bool(node.args) and isinstance(node.args[0], ast.Constant) and node.args[0].value in FIELDS
    return False


def _words(node: ast.AST) -> set[str]:
    """The status/stage words among a literal string or a tuple/list/set of them."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value} & WORDS
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return set().union(*(_words(e) for e in node.elts)) if node.elts else set()
    return set()


def _literals(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(_is_field(s) for s in sides) and any(_words(s) for s in sides):
                found.append((node.lineno, "comparison"))
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                pairs = (zip(target.elts, node.value.elts, strict=False)
                         if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple)
                         else [(target, node.value)])
                found += [(node.lineno, "assignment") for t, v in pairs if _is_field(t) and _words(v)]
        elif isinstance(node, ast.Call):
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            if name in CALLS and any(_words(a) for a in node.args):
                found.append((node.lineno, f"{name}()"))
            found += [(node.lineno, f"{k.arg}=") for k in node.keywords
                      if k.arg in FIELDS and _words(k.value)]
        elif isinstance(node, ast.Dict):
            found += [(node.lineno, "dict") for k, v in zip(node.keys, node.values, strict=True)
                      if isinstance(k, ast.Constant) and k.value in FIELDS and _words(v)]
    return sorted(found)


def test_no_status_or_stage_literal_in_the_code():
    hits = []
    for package in ("knas_core", "knas_cli", "db", "tasks", "app", "benchmarks"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue  # a migration is history: it keeps the words it was written with
            hits += [f"{path.relative_to(ROOT)}:{line}: {kind}"
                     for line, kind in _literals(ast.parse(path.read_text(), str(path)))]
    assert not hits, ("use the enums of db.status and knas_core (a member equals its string):\n"
                      + "\n".join(hits))


def test_the_literal_check_finds_what_it_looks_for():
    code = """
if search.status in ("done", "failed"): pass
if p["stage"] == "evaluate": pass
r.status, r.error = "failed", "x"
search.finish("cancelled")
repo.set_stage(s, search, "score")
select(Search.id).where(Search.status.in_(("queued", "running")))
ctx.report("evaluate", 1, 2)
Search(status="queued")
rows = [{"stage": "sampled"}]
if p.get("stage") == "evaluate": pass
"""
    assert [kind for _, kind in _literals(ast.parse(code))] == [
        "comparison", "comparison", "assignment", "finish()", "set_stage()", "in_()", "report()", "status=",
        "dict", "comparison"]
    assert issubclass(Status, StrEnum)
