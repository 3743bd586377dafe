"""Tables to CSV and JSON bytes (every dashboard table offers both downloads)."""

from __future__ import annotations

import json
import numbers
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and value != value:  # NaN -> null
        return None
    return value


def _whole(values: Sequence[Any]) -> bool:
    """Whether every present value is an integer (booleans are not: they stay booleans)."""
    present = [v for v in values if v is not None]
    return bool(present) and all(isinstance(v, numbers.Integral) and not isinstance(v, bool | np.bool_)
                                   for v in present)


def to_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """``rows`` as a frame whose integer columns stay integers where values are missing
    (pandas' nullable ``Int64``; a plain frame turns ``[None, 12476]`` into ``12476.0``)."""
    rows = list(rows)
    frame = pd.DataFrame(rows)
    for column in frame.columns:
        if _whole([r.get(column) for r in rows]):
            frame[column] = frame[column].astype("Int64")
    return frame


def to_csv(rows: Sequence[dict[str, Any]]) -> bytes:
    return to_frame(rows).to_csv(index=False).encode("utf-8")


def to_json(rows: Sequence[dict[str, Any]]) -> bytes:
    """A JSON array of objects (one per row); timestamps as ISO 8601, NaN as null."""
    return json.dumps([{k: _plain(v) for k, v in r.items()} for r in rows], indent=1,
                      default=str).encode("utf-8")
