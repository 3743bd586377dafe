"""What the workers derive from the settings (:func:`knas_core.settings.get_settings`; every
variable is in the README's Configuration table): the state folder, the broker and result
backend URLs and the broker's transport options.

The embedded default keeps broker, result backend and app tables in three SQLite files (one
writer each) and is meant for one machine; use Redis and PostgreSQL to scale out.
"""

from __future__ import annotations

from pathlib import Path

from knas_core.settings import get_settings


def state_dir() -> Path:
    """``KNAS_STATE_DIR``, created if missing."""
    path = get_settings().state_dir
    path.mkdir(parents=True, exist_ok=True)
    return path


def broker_url() -> str:
    """``KNAS_BROKER_URL``, else the embedded broker file in the state folder."""
    return get_settings().broker_url or f"sqla+sqlite:///{(state_dir() / 'broker.sqlite').resolve()}"


def result_backend() -> str:
    """``KNAS_RESULT_BACKEND``, else the results file in the state folder."""
    return get_settings().result_backend or f"db+sqlite:///{(state_dir() / 'results.sqlite').resolve()}"


def checkpoint_dir() -> Path:
    """Training checkpoints, in the state folder (created if missing)."""
    path = state_dir() / "checkpoints"
    path.mkdir(parents=True, exist_ok=True)
    return path


def transport_options() -> dict[str, object]:
    """Broker transport options: Redis re-delivers unacknowledged tasks after the visibility
    timeout; kombu's SQLAlchemy transport passes its options to ``create_engine`` instead."""
    if broker_url().startswith(("redis", "rediss")):
        return {"visibility_timeout": get_settings().visibility_timeout}
    return {}
