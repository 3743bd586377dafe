"""The Architecture page: one cell across everything stored about it."""

from __future__ import annotations

from typing import Any

from db import queries
from db.session import session_scope
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


def profile(architecture_id: int) -> dict[str, Any]:
    """``scores`` (every proxy x set-up), ``training`` runs, ``benchmark`` accuracies with
    percentiles, and the ``searches`` that sampled it."""
    with session_scope() as session:
        return {"scores": queries.architecture_scores(session, architecture_id),
                "training": queries.architecture_training(session, architecture_id),
                "benchmark": queries.architecture_benchmark(session, architecture_id),
                "searches": queries.architecture_searches(session, architecture_id)}
