"""The Architecture page: one cell across everything stored about it."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from db import queries
from db.atlas import score_label
from db.session import session_scope
from knas_core.groundtruth import GroundTruth
from knas_core.spaces.nb201 import parse_arch


def lookup(ref: str) -> dict[str, Any] | None:
    """Find an architecture by official index (``"1234"``) or canonical string.

    Raises ``ValueError`` with a one-line message when ``ref`` is neither."""
    ref = ref.strip()
    with session_scope() as session:
        if ref.isdigit():
            return queries.find_architecture(session, index=int(ref))
        parse_arch(ref)  # a readable message for a malformed string
        return queries.find_architecture(session, arch=ref)


@lru_cache(maxsize=1)
def _space_table() -> GroundTruth | None:
    try:
        return GroundTruth.load()
    except Exception:  # noqa: BLE001 - no table file: percentiles stay those of the store
        return None


def score_source(row: dict[str, Any], records: dict[int, dict[str, Any]]) -> str:
    """``computed``, or for a score an atlas import stored, ``precomputed atlas: <set-up>,
    imported <date> from <file>`` (``row`` as :func:`db.queries.architecture_scores` gives;
    ``records``: the imports by id)."""
    record = records.get(row["atlas_import"]) if row["atlas_import"] is not None else None
    if record is None:
        return "computed"
    key = {"dataset": row["dataset"], "data": row["data"], "batch_size": row["batch_size"],
           "seed": row["seed"], "device_type": row["device"], "model": row["model"]}
    return score_label(record, key)


def profile(architecture_id: int) -> dict[str, Any]:
    """``scores`` (every proxy x set-up, with its ``source``: see :func:`score_source`),
    ``training`` runs, ``benchmark`` accuracies with percentiles, and the ``searches`` that
    sampled it.

    A search stores the benchmark rows of the architectures it sampled only; when the store
    holds fewer rows than the benchmark table, the percentile is taken over the whole space
    from the table file (``n`` says over how many architectures)."""
    with session_scope() as session:
        out = {"scores": queries.architecture_scores(session, architecture_id),
               "training": queries.architecture_training(session, architecture_id),
               "benchmark": queries.architecture_benchmark(session, architecture_id),
               "searches": queries.architecture_searches(session, architecture_id)}
        imported = any(r["atlas_import"] is not None for r in out["scores"])
        records = queries.atlas_imports(session) if imported else {}
    for row in out["scores"]:
        row["source"] = score_source(row, records)
        del row["atlas_import"]
    table = _space_table()
    for row in out["benchmark"]:
        if table is not None and row["n"] < len(table.frame):
            row["percentile"] = table.percentile(row["accuracy"], row["dataset"], row["metric"])
            row["n"] = len(table.frame)
    return out
