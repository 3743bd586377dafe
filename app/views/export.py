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


def to_csv(rows: Sequence[dict[str, Any]]) -> bytes:
    return pd.DataFrame(list(rows)).to_csv(index=False).encode("utf-8")


def to_json(rows: Sequence[dict[str, Any]]) -> bytes:
    """A JSON array of objects (one per row); timestamps as ISO 8601, NaN as null."""
    return json.dumps([{k: _plain(v) for k, v in r.items()} for r in rows], indent=1,
                      default=str).encode("utf-8")
