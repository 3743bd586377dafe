"""Worker settings from the environment.

| variable | default |
|---|---|
| ``KNAS_BROKER_URL`` | ``sqla+sqlite:///$KNAS_STATE_DIR/broker.sqlite`` (embedded, no server) |
| ``KNAS_RESULT_BACKEND`` | ``db+sqlite:///$KNAS_STATE_DIR/results.sqlite`` |
| ``KNAS_DATABASE_URL`` | ``sqlite:///knas.db`` (see :mod:`db.session`) |
| ``KNAS_STATE_DIR`` | ``.knas`` (broker, results, training checkpoints) |
| ``KNAS_VISIBILITY_TIMEOUT`` | ``3600`` s: Redis re-delivers an unacknowledged task after it |
| ``KNAS_TASK_TIME_LIMIT`` | ``86400`` s hard limit per task (soft limit 60 s earlier) |
| ``KNAS_DISPATCH_WINDOW`` | ``4`` chunk messages in flight per search (refilled as chunks finish) |
| ``KNAS_MAX_ATTEMPTS`` | ``3`` deliveries of an architecture whose worker died; then it fails |
| ``KNAS_SWEEP_SECONDS`` | ``60`` s between a worker's checks for expired leases (0: none) |

The embedded default keeps broker, result backend and app tables in three SQLite files (one
writer each) and is meant for one machine; use Redis and PostgreSQL to scale out.
"""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    path = Path(os.environ.get("KNAS_STATE_DIR", ".knas")).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def broker_url() -> str:
    return os.environ.get("KNAS_BROKER_URL") or f"sqla+sqlite:///{(state_dir() / 'broker.sqlite').resolve()}"


def result_backend() -> str:
    return (os.environ.get("KNAS_RESULT_BACKEND")
            or f"db+sqlite:///{(state_dir() / 'results.sqlite').resolve()}")


def visibility_timeout() -> int:
    return int(os.environ.get("KNAS_VISIBILITY_TIMEOUT", "3600"))


def task_time_limit() -> int:
    return int(os.environ.get("KNAS_TASK_TIME_LIMIT", "86400"))


def dispatch_window() -> int:
    """Chunk messages of one search in flight at once (at least 1)."""
    return max(1, int(os.environ.get("KNAS_DISPATCH_WINDOW", "4")))


def max_attempts() -> int:
    """Deliveries of one architecture that may die with their worker before it is failed."""
    return max(1, int(os.environ.get("KNAS_MAX_ATTEMPTS", "3")))


def sweep_seconds() -> float:
    """Interval of a worker's lease sweeper; 0 turns it off."""
    return max(0.0, float(os.environ.get("KNAS_SWEEP_SECONDS", "60")))


def checkpoint_dir() -> Path:
    path = state_dir() / "checkpoints"
    path.mkdir(parents=True, exist_ok=True)
    return path


def transport_options() -> dict[str, object]:
    """Broker transport options: Redis re-delivers unacknowledged tasks after the visibility
    timeout; kombu's SQLAlchemy transport passes its options to ``create_engine`` instead."""
    if broker_url().startswith(("redis", "rediss")):
        return {"visibility_timeout": visibility_timeout()}
    return {}
