"""A search's progress before its top-k are evaluated: each architecture's proxy score in the order
it was sampled, and the best score so far. No Plotly here (drawing: :mod:`app.views.plots`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from db import queries
from db.session import session_scope


def best_score_trace(candidates: Sequence[dict[str, Any]], higher_is_better: bool = True
                     ) -> list[dict[str, Any]]:
    """``candidates`` (rows with ``position, score, rank``, in sampling order) -> one row per
    scored one: ``sampled`` (1-based count of architectures sampled so far), ``position``,
    ``score`` and ``best`` (the best score so far). Once scoring ends every scored architecture
    has a rank, and "best" is the search's own order (ties as it broke them); until then it is
    the highest score, or the lowest for a proxy where lower is better."""
    scored = [c for c in candidates if c["score"] is not None]
    ranked = bool(scored) and all(c["rank"] is not None for c in scored)
    sign = 1.0 if higher_is_better else -1.0
    rows: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    for n, cand in enumerate(candidates, start=1):
        if cand["score"] is None:
            continue
        if best is None or (cand["rank"] < best["rank"] if ranked
                            else sign * cand["score"] > sign * best["score"]):
            best = cand
        rows.append({"sampled": n, "position": cand["position"], "score": cand["score"],
                     "best": best["score"]})
    return rows


def score_trace(search_id: int) -> list[dict[str, Any]]:
    """:func:`best_score_trace` of a search (empty when it stores no per-architecture scores:
    strategies other than single-proxy KNAS keep only the architectures they evaluated)."""
    from app.views.correlation import higher_is_better
    from app.views.searches import search_proxies

    with session_scope() as session:
        config = queries.search_config(session, search_id) or {}
        cands = queries.candidate_rows(session, search_id)
    proxies = search_proxies(config)
    return best_score_trace(cands, higher_is_better(proxies[0]) if len(proxies) == 1 else True)
