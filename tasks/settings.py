"""Worker settings from the environment.

| variable | default |
|---|---|
| ``KNAS_BROKER_URL`` | ``sqla+sqlite:///$KNAS_STATE_DIR/broker.sqlite`` (embedded, no server) |
| ``KNAS_RESULT_BACKEND`` | ``db+sqlite:///$KNAS_STATE_DIR/results.sqlite`` |
| ``KNAS_DATABASE_URL`` | ``sqlite:///knas.db`` (see :mod:`db.session`) |
| ``KNAS_STATE_DIR`` | ``.knas`` (broker, results, training checkpoints) |
| ``KNAS_VISIBILITY_TIMEOUT`` | ``3600`` s: Redis re-delivers an unacknowledged task after it |
| ``KNAS_TASK_TIME_LIMIT`` | ``86400`` s hard limit per task (soft limit 60 s earlier) |

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
