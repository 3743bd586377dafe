"""Compare searches (Optuna's compare view for NAS): best-so-far curves of several searches on one
chart, and the mean +- std over seeds of the architecture each found, grouped by what was searched.

The table is the one ``benchmarks/search.py`` prints (docs/RESULTS.md, "Search strategies"), made
from the searches in the store: the found architecture's 200-epoch test accuracy on the searched
data set, its percentile in the space and the search seconds. Groups are (data set, strategy,
proxies) and the budget (architectures scored, top-k evaluated, evaluation, strategy options), so
runs of different budgets are never averaged together. The standard deviation is the population
one (``numpy.std``, ddof 0), as the benchmark prints it. No Plotly here (drawing:
:mod:`app.views.plots`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from app.views.detail import best_so_far
from app.views.searches import duration_seconds, proxies_label, search_proxies
from db import queries
from db.session import session_scope
from db.status import Status

#: Columns that make a group of the summary table, in display order.
GROUP_KEYS = ("dataset", "strategy", "proxies", "samples", "topk", "eval", "options")


def choices(limit: int | None = 500) -> list[dict[str, Any]]:
    """Searches to pick from, newest first: ``id, label, status`` (the label names strategy,
    proxies, data set, seed and tags)."""
    with session_scope() as session:
        rows = queries.search_rows(session, limit)
    out = []
    for s in rows:
        cfg = s["config"]
        proxies = proxies_label(cfg)
        what = f"{cfg.get('strategy', 'knas')}{f' ({proxies})' if proxies else ''}"
        tags = f" [{', '.join(s['tags'])}]" if s["tags"] else ""
        out.append({"id": s["id"], "status": s["status"],
                    "label": f"#{s['id']} {s['name'] or what}: {what}, {cfg.get('dataset')}, "
                             f"seed {cfg.get('seed')}{tags}"})
    return out


def _options(config: dict[str, Any]) -> str:
    opts = config.get("strategy_options") or {}
    return ",".join(f"{k}={opts[k]}" for k in sorted(opts) if opts[k] is not None)


def search_outcome(search: dict[str, Any]) -> dict[str, Any]:
    """One search's row of the comparison: its group columns (:data:`GROUP_KEYS`), ``id, name,
    seed, tags, status``, and what it found: ``test_acc`` (% on its data set), ``percentile`` and
    ``seconds`` (the strategy's own count where it kept one, else start to end)."""
    cfg, result = search["config"], search["result"] or {}
    proxies = search_proxies(cfg)
    dataset = cfg.get("dataset", "cifar10")
    test = (result.get("test_acc") or {}).get(dataset)
    seconds = result.get("seconds")
    if seconds is None:
        seconds = duration_seconds(search.get("started_at"), search.get("finished_at"))
    samples = len(cfg["archs"]) if cfg.get("archs") else cfg.get("samples")
    return {"id": search["id"], "name": search["name"], "status": search["status"], "dataset": dataset,
            "strategy": cfg.get("strategy", "knas"), "proxies": proxies_label(cfg),
            "samples": samples if proxies else None, "topk": cfg.get("topk"), "eval": cfg.get("eval"),
            "options": _options(cfg), "seed": cfg.get("seed"), "tags": ",".join(search.get("tags") or []),
            "test_acc": test, "percentile": result.get("percentile"), "seconds": seconds}


def outcomes(search_ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """:func:`search_outcome` of every finished (``done``) search, or of those of ``search_ids``
    that finished; oldest first."""
    with session_scope() as session:
        rows = queries.search_rows(session, None, ids=search_ids, status=Status.DONE)
    return [search_outcome(s) for s in reversed(rows)]


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std())


def summary(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Group :func:`search_outcome` rows by :data:`GROUP_KEYS`: ``test_acc_mean, test_acc_std``
    (population std), ``percentile_mean, seconds_mean``, ``n`` (searches), ``seeds`` (distinct)
    and ``searches`` (their ids). Rows without a test accuracy count in ``n`` but not in the means
    (a space without a benchmark table). Sorted by data set, then as first met."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in GROUP_KEYS), []).append(r)
    out = []
    for key, members in groups.items():
        acc_mean, acc_std = _mean_std([r["test_acc"] for r in members if r["test_acc"] is not None])
        pct, _ = _mean_std([r["percentile"] for r in members if r["percentile"] is not None])
        secs, _ = _mean_std([r["seconds"] for r in members if r["seconds"] is not None])
        out.append({**dict(zip(GROUP_KEYS, key)), "test_acc_mean": acc_mean, "test_acc_std": acc_std,
                    "percentile_mean": pct, "seconds_mean": secs, "n": len(members),
                    "seeds": len({r["seed"] for r in members}),
                    "searches": ",".join(str(r["id"]) for r in members)})
    order = {d: i for i, d in enumerate(dict.fromkeys(r["dataset"] for r in out))}
    return sorted(out, key=lambda r: order[r["dataset"]])


def incumbent_by_scored(search_id: int, metric: str = "test") -> list[dict[str, Any]]:
    """Anytime view of a scoring search: after the first ``scored`` architectures (sampling
    order), the one it would choose (best rank among them: the proxy's order, its direction
    included) and that architecture's benchmark accuracy (``metric`` on the search's data set, %).

    Rows ``scored, position, arch, index, accuracy`` (None without a benchmark value), one where
    the choice changes and one for the last architecture. Empty for a search that stores no
    per-architecture scores (strategies that keep only the architectures they evaluated)."""
    with session_scope() as session:
        config = queries.search_config(session, search_id) or {}
        cands = [c for c in queries.candidate_rows(session, search_id)
                 if c["score"] is not None and c["rank"] is not None]
        truth = queries.benchmark_values(session, config.get("dataset", "cifar10"), metric,
                                         [c["architecture_id"] for c in cands])
    rows: list[dict[str, Any]] = []
    chosen: dict[str, Any] | None = None
    for n, cand in enumerate(cands, start=1):
        changed = chosen is None or cand["rank"] < chosen["rank"]
        if changed:
            chosen = cand
        if changed or n == len(cands):
            assert chosen is not None
            rows.append({"scored": n, "position": chosen["position"], "arch": chosen["arch"],
                         "index": chosen["index"], "accuracy": truth.get(chosen["architecture_id"])})
    return rows


def evaluated_curve(search_id: int) -> list[dict[str, Any]]:
    """Best accuracy so far against architectures evaluated (every strategy stores these):
    :func:`app.views.detail.best_so_far`."""
    return best_so_far(search_id)


#: The overlay's x axes: ``name -> (x column, y column, axis title)``.
CURVES = {"evaluated": ("evaluated", "best", "architectures evaluated (look-ups or trainings)"),
          "scored": ("scored", "accuracy", "architectures scored (sampling order)")}


def curves(search_ids: Sequence[int], x: str = "evaluated") -> dict[int, list[dict[str, Any]]]:
    """``search id -> rows`` of the chosen curve (:data:`CURVES`): ``evaluated``
    (:func:`evaluated_curve`) or ``scored`` (:func:`incumbent_by_scored`)."""
    if x not in CURVES:
        raise ValueError(f"unknown x axis {x!r}; choose one of {', '.join(CURVES)}")
    fn = evaluated_curve if x == "evaluated" else incumbent_by_scored
    return {i: fn(i) for i in search_ids}
