"""Tables to CSV and JSON bytes (every dashboard table offers both downloads)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and value != value:  # NaN -> null
        return None
    return value


def _needs_plain(value: Any) -> bool:
    return isinstance(value, datetime) or (isinstance(value, float) and value != value)


def to_csv(rows: Sequence[dict[str, Any]]) -> bytes:
    return pd.DataFrame(list(rows)).to_csv(index=False).encode("utf-8")


def to_json(rows: Sequence[dict[str, Any]]) -> bytes:
    """A JSON array of objects, one row per line; timestamps as ISO 8601, NaN as null.

    Each row goes through the json module's C encoder (``indent`` would switch it to the pure
    Python one: seconds for a 15,625-row ranking); only rows holding a timestamp or a NaN are
    copied first."""
    lines = []
    for r in rows:
        if any(_needs_plain(v) for v in r.values()):
            r = {k: _plain(v) for k, v in r.items()}
        lines.append(json.dumps(r, default=str))
    return ("[\n" + ",\n".join(lines) + "\n]\n").encode("utf-8") if lines else b"[]\n"
