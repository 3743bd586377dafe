"""What the search and discovery tasks share (tasks.common): one cancel signal, failing a row,
and submitting a row with its message all or nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from db.models import DiscoveryRun, Search
from db.session import session_scope


def test_one_cancel_signal():
    from knas_core.discovery import evolve
    from knas_core.errors import Cancelled
    from knas_core.training import TrainingCancelled
    from tasks import common, discovery, search

    assert evolve.Cancelled is Cancelled and common.Cancelled is Cancelled
    assert issubclass(TrainingCancelled, Cancelled)
    assert search.RETRY is common.RETRY and discovery.RETRY is common.RETRY


def _refuse(*args: object, **kwargs: object) -> None:
    raise ConnectionError("the broker went away")


def _count(url: str, model: type) -> int:
    with session_scope(url) as s:
        return s.scalar(select(func.count()).select_from(model))


def test_a_search_that_cannot_be_sent_is_not_stored(eager, monkeypatch):
    from tasks.api import BrokerUnavailableError, submit_search
    from tasks.search import advance_search

    monkeypatch.setattr(advance_search, "apply_async", _refuse)
    with pytest.raises(BrokerUnavailableError, match="could not enqueue the search: the broker went away"):
        submit_search({"samples": 3, "topk": 1})
    assert _count(eager, Search) == 0


def test_a_discovery_run_that_cannot_be_sent_is_not_stored(eager, monkeypatch):
    from tasks.common import BrokerUnavailableError
    from tasks.discovery import discover, submit_discovery

    monkeypatch.setattr(discover, "apply_async", _refuse)
    with pytest.raises(BrokerUnavailableError, match="could not enqueue the discovery run: the broker went"):
        submit_discovery({"archs": 3, "heldout": 0, "generations": 1, "population": 2})
    assert _count(eager, DiscoveryRun) == 0


def test_fail_ends_the_row_with_its_reason(eager):
    from db import repository as repo
    from tasks.common import fail
    from tasks.schema import validate_config

    with session_scope(eager) as s:
        search_id = repo.create_search(s, validate_config({}).model_dump(mode="json"), "x").id
    fail(repo.get_search, search_id, "ValueError: broken", "search")
    fail(repo.get_search, 10**6, "nothing to fail", "search")  # a row that is gone: nothing happens
    with session_scope(eager) as s:
        search = repo.get_search(s, search_id)
        assert (search.status, search.error) == ("failed", "ValueError: broken")


def test_the_embedded_broker_is_polled_every_tenth_of_a_second(monkeypatch, tmp_path):
    """kombu's SQLAlchemy transport polls an empty queue every second by default, which left
    each worker idle 0.8 s between two tasks; the embedded broker's connections poll faster."""
    from kombu import Connection
    from kombu.transport import sqlalchemy as kombu_sqlalchemy

    from tasks import celery_app

    url = f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}"
    monkeypatch.setattr(kombu_sqlalchemy.Transport, "polling_interval", 1.0)  # kombu's default
    monkeypatch.setenv("KNAS_BROKER_URL", "redis://127.0.0.1:6379/0")
    celery_app._from_settings()  # a Redis broker leaves the SQLAlchemy transport as it is
    assert kombu_sqlalchemy.Transport.polling_interval == 1.0
    monkeypatch.setenv("KNAS_BROKER_URL", url)
    assert celery_app._from_settings()["broker_url"] == url
    with Connection(url) as conn:
        assert conn.transport.polling_interval == celery_app.EMBEDDED_POLLING_SECONDS == 0.1
