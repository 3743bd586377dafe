"""A search's scores as they are stored, for the pages that show a search while it runs.

A staged search writes each candidate's score and rank (``SearchCandidate.score``/``rank``) only
when it selects, after every candidate is scored; until then its scores are the
:class:`~db.models.ProxyScore` rows under the search's score keys
(:func:`tasks.search.score_keys`, one per proxy of :meth:`SearchConfig.proxy_list`). This
module finds those keys (:func:`tasks.search.search_keys`), reads the rows and combines several
proxies into the log-rank ensemble of the rows scored so far
(:func:`knas_core.search.ensemble.log_rank_aggregate`). The pace of a search is
:mod:`tasks.pace`'s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from db import queries
from db.session import session_scope
from db.status import CandidateStage
from knas_core.search.ensemble import log_rank_aggregate

#: ``architecture_id -> (value, error)`` of one proxy.
Values = Mapping[int, tuple[float | None, str | None]]


def proxy_column(proxy: str) -> str:
    """The ranking column holding one proxy's score (searches with several proxies)."""
    return f"{proxy} score"


def live_rows(rows: Sequence[Mapping[str, Any]], values: Mapping[str, Values],
              higher_is_better: Mapping[str, bool],
              weights: Mapping[str, float] | None = None) -> list[dict[str, Any]]:
    """The candidates ``rows`` (as :func:`db.queries.candidate_rows`) with the scores stored so
    far: ``values[proxy]`` holds each proxy's stored ``(value, error)`` by architecture id, and
    ``weights[proxy]`` its ensemble weight (1 if not named).

    * ``score``: the stored ``SearchCandidate.score`` once the search has selected, else the
      proxy's value (one proxy) or the log-rank ensemble of the candidates every proxy has
      scored so far (several; higher is better);
    * one column per proxy (:func:`proxy_column`) when there are several;
    * ``rank``: the stored rank, else the order of the scores so far (ties: sampling order),
      when no candidate has a stored rank yet;
    * ``stage``: ``scored`` for a sampled candidate that every proxy has a row for;
    * ``error``: the proxies' errors, ``"proxy: error"`` joined by ``"; "``, or None.
    """
    proxies = list(values)
    got = [{p: values[p].get(r["architecture_id"]) for p in proxies} for r in rows]
    if len(proxies) > 1:
        members = {p: [g[p][0] if g[p] else None for g in got] for p in proxies}
        live = log_rank_aggregate(members, dict(higher_is_better), weights)
    elif proxies:
        live = [g[proxies[0]][0] if g[proxies[0]] else None for g in got]
    else:
        live = [None] * len(rows)
    out = []
    for r, g, value in zip(rows, got, live):
        row = dict(r)
        if len(proxies) > 1:
            row.update({proxy_column(p): g[p][0] if g[p] else None for p in proxies})
        if row.get("score") is None:
            row["score"] = value
        if row.get("stage") == CandidateStage.SAMPLED and proxies and all(g[p] for p in proxies):
            row["stage"] = CandidateStage.SCORED.value
        row["error"] = "; ".join(f"{p}: {g[p][1]}" for p in proxies if g[p] and g[p][1]) or None
        out.append(row)
    if not any(r.get("rank") is not None for r in out):
        higher = len(proxies) != 1 or higher_is_better.get(proxies[0], True)
        scored = [r for r in out if r["score"] is not None]
        scored.sort(key=lambda r: (-r["score"] if higher else r["score"], r["position"]))
        for rank, row in enumerate(scored, start=1):
            row["rank"] = rank
    return out


def candidates_with_scores(search_id: int) -> tuple[list[str], list[dict[str, Any]]]:
    """``(proxies, rows)``: the search's proxies and every candidate with its scores as stored
    (:func:`live_rows`), in sampling order. A search whose config this process cannot read
    shows the candidates' stored scores only (and no proxies)."""
    with session_scope() as session:
        search = queries.search_scoring(session, search_id)
        if search is None:
            return [], []
        rows = queries.candidate_rows(session, search_id)
        from tasks.search import search_keys

        found = search_keys(search["config"], search["data_id"])
        if found is None:
            return [], [dict(r, error=None) for r in rows]
        values = {p: queries.scores_under_key(session, search_id, k, any_device=not found.device_known)
                  for p, k in found.keys.items()}
    return found.proxies, live_rows(rows, values, found.higher_is_better, found.weights)
