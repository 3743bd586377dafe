"""Join proxy score records with ground truth and summarise the agreement per proxy.

A *record* is the CLI's JSON-lines object: ``{"index", "arch", "scores": {proxy: float|null},
"errors": {proxy: str}, "seconds": {proxy: float}}``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from knas_core.errors import DataFileError
from knas_core.groundtruth import GroundTruth
from knas_core.proxies import PROXIES
from knas_core.stats import correlate


def read_records(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Records of a JSON-lines file; a malformed line raises :class:`~knas_core.errors.DataFileError`
    (a ``ValueError``) naming its number."""
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataFileError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict) or "scores" not in record or "arch" not in record:
                raise DataFileError(f"{path}:{lineno}: expected an object with 'arch' and 'scores'")
            yield record


def correlate_records(records: Iterable[dict[str, Any]], truth: GroundTruth, dataset: str,
                      metric: str = "test") -> dict[str, Any]:
    """``{"n": archs, "proxies": {proxy: {"kendall", "spearman", "top10_precision", "dropped"}}}``.

    Architectures are matched by ``index`` when present, else by ``arch`` string.
    """
    acc = truth.accuracy(dataset, metric)
    rows = list(records)
    accuracies: list[float] = []
    per_proxy: dict[str, list[float | None]] = {}
    for record in rows:
        index = record.get("index")
        if index is None:
            index = truth.index_of(record["arch"])
        accuracies.append(float(acc.loc[int(index)]))
        for proxy in record["scores"]:
            per_proxy.setdefault(proxy, [None] * len(rows))
    for i, record in enumerate(rows):
        for proxy, value in record["scores"].items():
            per_proxy[proxy][i] = value
    out: dict[str, Any] = {"n": len(rows), "proxies": {}}
    for proxy, values in per_proxy.items():
        higher = PROXIES.get(proxy).higher_is_better if proxy in PROXIES else True
        c = correlate(values, accuracies, higher_is_better=higher)
        out["proxies"][proxy] = {"kendall": c.kendall, "spearman": c.spearman,
                                 "top10_precision": c.top10_precision, "dropped": c.dropped}
    return out


def median_seconds(records: Iterable[dict[str, Any]]) -> dict[str, float]:
    """Median wall seconds per architecture for each proxy."""
    times: dict[str, list[float]] = {}
    for record in records:
        for proxy, sec in record.get("seconds", {}).items():
            times.setdefault(proxy, []).append(float(sec))
    return {p: float(np.median(v)) for p, v in times.items()}
