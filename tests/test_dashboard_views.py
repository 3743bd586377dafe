"""The comparison, Pareto, operations and sampling-order views, and search tags and notes: their
data functions against a small seeded store (tests/dashboard_seed.py, plus the searches of
:func:`~tests.dashboard_seed.seed_comparison`), and their pages through AppTest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from app.views.markup import md_text
from tests.dashboard_seed import INDICES, KNAS_SEED1, RANDOM_SEEDS, seed, seed_comparison

MAIN = str(Path(__file__).resolve().parent.parent / "app" / "main.py")


@pytest.fixture(scope="module")
def seeded(tmp_path_factory, truth):
    url = f"sqlite:///{tmp_path_factory.mktemp('views') / 'knas.db'}"
    ids = seed(url, truth)
    return url, {**ids, **seed_comparison(url, truth)}


@pytest.fixture()
def store(seeded, monkeypatch):
    url, ids = seeded
    monkeypatch.setenv("KNAS_DATABASE_URL", url)
    monkeypatch.delenv("KNAS_READ_ONLY", raising=False)
    monkeypatch.delenv("KNAS_LAB_TOKEN", raising=False)
    import streamlit as st

    st.cache_data.clear()
    return url, ids


def page(path: str, **params: str) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=60)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    at.switch_page(f"screens/{path}")
    return at.run()


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


# --- searches list: proxies, duration, tags and note -----------------------------------------------

def test_search_proxies_name_the_ensemble_and_nothing_for_proxy_free_strategies():
    from app.views.searches import search_proxies

    assert search_proxies({"strategy": "knas", "proxy": "synflow"}) == ["synflow"]
    assert search_proxies({"strategy": "evolution", "proxy": "knas", "proxies": ["synflow", "eznas"]}) \
        == ["synflow", "eznas"]
    assert search_proxies({"strategy": "knas"}) == ["knas"]  # SearchConfig's default proxy
    assert search_proxies({"strategy": "random", "proxy": "synflow"}) == []
    assert search_proxies({"strategy": "nasi", "proxies": ["synflow", "eznas"]}) == []


def test_proxies_label_names_the_weights_other_than_1():
    from app.views.searches import proxies_label

    weighted = {"strategy": "knas", "proxies": ["synflow", "eznas", "params"],
                "weights": {"synflow": 0.75, "eznas": 1.5, "params": 1.0}}
    assert proxies_label(weighted) == "synflow*0.75+eznas*1.5+params"
    assert proxies_label({**weighted, "weights": None}) == "synflow+eznas+params"
    assert proxies_label({**weighted, "strategy": "random"}) == ""


def test_tags_are_parsed_checked_and_saved(store):
    from app.views import annotations
    from app.views.searches import overview_rows

    assert annotations.parse_tags(" baseline, seed=3 ,, baseline,v1.2 ") == ["baseline", "seed=3", "v1.2"]
    assert annotations.parse_tags("") == []
    with pytest.raises(annotations.AnnotationError, match="letters, digits"):
        annotations.parse_tags("two words")
    with pytest.raises(annotations.AnnotationError, match="longer than 40"):
        annotations.parse_tags("x" * 41)
    with pytest.raises(annotations.AnnotationError, match="at most 20"):
        annotations.parse_tags(",".join(f"t{i}" for i in range(21)))
    with pytest.raises(annotations.AnnotationError, match="at most 4000"):
        annotations.check_note("n" * 4001)
    _, ids = store
    before = {r["id"]: r for r in overview_rows()}[ids["done"]]
    assert (before["tags"], before["note"]) == ([], "")
    saved = annotations.save(ids["done"], "baseline, seed-0", "  first run  ")
    assert saved == (["baseline", "seed-0"], "first run")
    rows = {r["id"]: r for r in overview_rows()}
    assert (rows[ids["done"]]["tags"], rows[ids["done"]]["note"]) == (["baseline", "seed-0"], "first run")
    assert rows[ids["done"]]["proxies"] == "synflow" and rows[ids["random"][0]]["proxies"] == ""
    assert rows[ids["random"][1]]["seed"] == 1
    assert rows[ids["done"]]["duration_s"] is not None and rows[ids["done"]]["duration_s"] >= 0
    with pytest.raises(KeyError):
        annotations.save(99_999, "x", "")
    annotations.save(ids["done"], "", "")


def test_duration_runs_to_now_while_the_search_runs():
    from datetime import UTC, datetime, timedelta

    from app.views.searches import duration_seconds

    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert duration_seconds(None, None) is None
    assert duration_seconds(start, start + timedelta(seconds=90)) == 90.0
    assert duration_seconds(start.replace(tzinfo=None), None, now=start + timedelta(minutes=2)) == 120.0


def test_searches_page_shows_the_columns_and_saves_tags_with_write_access(store, monkeypatch):
    _, ids = store
    at = page("1_Searches.py")
    no_exception(at)
    table = at.dataframe[0].value
    assert {"seed", "proxies", "duration_s", "tags", "note"} <= set(table.columns)
    at.selectbox(key="action-search").set_value(ids["done"]).run()
    at.text_input(key=f"tags-{ids['done']}").set_value("paper, seed-0")
    at.text_area(key=f"note-{ids['done']}").set_value("the seeded run")
    next(b for b in at.button if b.label == "Save tags and note").click().run()
    no_exception(at)
    assert any(md_text("tags (paper, seed-0) and note saved") in i.value for i in at.info)
    table = at.dataframe[0].value
    row = table[table["id"] == ids["done"]].iloc[0]
    assert list(row["tags"]) == ["paper", "seed-0"] and row["note"] == "the seeded run"
    at.text_input(key=f"tags-{ids['done']}").set_value("two words")
    next(b for b in at.button if b.label == "Save tags and note").click().run()
    assert any(md_text("not saved: tag 'two words'") in i.value for i in at.info)
    from app.views import annotations

    annotations.save(ids["done"], "", "")
    monkeypatch.setenv("KNAS_READ_ONLY", "1")
    at = page("1_Searches.py")
    no_exception(at)
    assert "Save tags and note" not in [b.label for b in at.button]


# --- compare searches ------------------------------------------------------------------------------

def test_comparison_groups_seeds_with_mean_and_population_std(store, truth):
    from app.views import compare

    _, ids = store
    rows = compare.outcomes()
    assert {r["id"] for r in rows} == {ids["done"], *ids["random"], *ids["knas"]}  # running: left out
    table = {(r["strategy"], r["proxies"]): r for r in compare.summary(rows)}
    assert set(table) == {("random", ""), ("knas", "synflow")}
    test = truth.accuracy("cifar10", "test")
    valid = truth.accuracy("cifar10", "valid_12ep")
    found = [float(test.loc[max(ix, key=lambda i: valid.loc[i])]) for ix in RANDOM_SEEDS.values()]
    random = table[("random", "")]
    assert random["test_acc_mean"] == pytest.approx(sum(found) / 3)
    mean = sum(found) / 3
    assert random["test_acc_std"] == pytest.approx((sum((f - mean) ** 2 for f in found) / 3) ** 0.5)
    assert random["seconds_mean"] == pytest.approx(2.0)  # 1, 2 and 3 s
    assert (random["n"], random["seeds"], random["samples"], random["topk"]) == (3, 3, None, 4)
    knas = table[("knas", "synflow")]
    assert (knas["n"], knas["seeds"], knas["samples"], knas["topk"], knas["eval"]) == (2, 2, 12, 3, "lookup")
    accs = [r["test_acc"] for r in rows if r["strategy"] == "knas"]
    assert accs[0] == pytest.approx(float(test.loc[ids["best_index"]]))
    assert knas["test_acc_mean"] == pytest.approx(np.mean(accs))
    assert knas["test_acc_std"] == pytest.approx(np.std(accs))
    assert knas["searches"] == f"{ids['done']},{ids['knas'][0]}"
    only = compare.summary(compare.outcomes([ids["random"][0], ids["running"]]))
    assert len(only) == 1 and only[0]["n"] == 1 and only[0]["test_acc_std"] == 0.0


def test_incumbent_after_each_architecture_scored(store, truth):
    from app.views import compare

    _, ids = store
    test = truth.accuracy("cifar10", "test").loc[INDICES].to_numpy()
    rows = compare.incumbent_by_scored(ids["done"])
    # the seeded score is 10 x test accuracy: the incumbent is the most accurate so far
    changes = [n for n in range(1, 13) if n == 1 or test[n - 1] > test[:n - 1].max()]
    assert [r["scored"] for r in rows] == sorted(set(changes) | {12})
    for r in rows:
        assert r["accuracy"] == pytest.approx(test[:r["scored"]].max())
        assert r["index"] == INDICES[int(np.argmax(test[:r["scored"]]))]
    assert compare.incumbent_by_scored(ids["random"][0]) == []  # no per-architecture scores
    curves = compare.curves([ids["done"], ids["random"][0]], "evaluated")
    assert [r["best"] for r in curves[ids["random"][0]]] == list(np.maximum.accumulate(
        truth.accuracy("cifar10", "valid_12ep").loc[RANDOM_SEEDS[0]].to_numpy()))
    with pytest.raises(ValueError, match="unknown x axis"):
        compare.curves([ids["done"]], "time")


def test_compare_page_draws_curves_and_exports_the_table(store):
    _, ids = store
    picked = f"{ids['done']},{ids['knas'][0]},{ids['random'][0]}"
    at = page("7_Compare_searches.py", searches=picked)
    no_exception(at)
    assert at.multiselect(key="cmp-searches").value == [ids["done"], ids["knas"][0], ids["random"][0]]
    summary = at.dataframe[0].value
    assert sorted(summary["strategy"]) == ["knas", "random"]
    assert int(summary.loc[summary["strategy"] == "knas", "n"].iloc[0]) == 2
    assert "Export CSV" in [b.label for b in at.get("download_button")]
    at.radio(key="cmp-x").set_value("scored").run()
    no_exception(at)
    assert any("no per-architecture scores" in c.value for c in at.caption)
    at.toggle(key="cmp-all").set_value(True).run()
    summary = at.dataframe[0].value
    assert int(summary.loc[summary["strategy"] == "random", "n"].iloc[0]) == 3


# --- Pareto front ------------------------------------------------------------------------------------

def _dominated(x: np.ndarray, y: np.ndarray, i: int) -> bool:
    return bool(np.any((x <= x[i]) & (y >= y[i]) & ((x < x[i]) | (y > y[i]))))


def test_pareto_mask_matches_the_definition():
    from app.views.pareto import pareto_mask

    rng = np.random.default_rng(0)
    x = rng.integers(0, 8, 300).astype(float)  # many ties in both coordinates
    y = rng.integers(0, 8, 300).astype(float)
    mask = pareto_mask(x, y)
    assert mask.tolist() == [not _dominated(x, y, i) for i in range(len(x))]
    assert pareto_mask([1, 2, 3, 1], [5, 6, 4, 5]).tolist() == [True, True, False, True]  # twins both on it
    with pytest.raises(ValueError, match="differ in length"):
        pareto_mask([1.0], [1.0, 2.0])


@pytest.mark.parametrize("cost", ["params", "flops"])
def test_pareto_front_of_the_space_and_of_a_search(store, truth, cost):
    from app.views import pareto

    _, ids = store
    rows = pareto.pareto("cifar10", "test", cost, truth=truth)
    assert len(rows) == len(truth.frame)
    x = np.array([r["cost"] for r in rows])
    y = np.array([r["accuracy"] for r in rows])
    front = [i for i, r in enumerate(rows) if r["on_front"]]
    assert front == list(range(len(front)))  # the front comes first, by cost
    assert all(not _dominated(x, y, i) for i in front)
    fx, fy = x[front], y[front]  # every other architecture is beaten by a front one
    others = np.arange(len(front), len(rows))
    assert all(np.any((fx <= x[i]) & (fy >= y[i])) for i in others)
    top = [i for i in range(len(rows)) if y[i] == y.max()]  # the most accurate, cheapest first: on it
    assert min(top, key=lambda i: x[i]) in front
    mine = pareto.pareto("cifar10", "test", cost, search_id=ids["done"], truth=truth)
    assert sorted(r["index"] for r in mine) == sorted(INDICES)
    mx, my = np.array([r["cost"] for r in mine]), np.array([r["accuracy"] for r in mine])
    assert [r["on_front"] for r in mine] == [not _dominated(mx, my, i) for i in range(len(mine))]


def test_params_come_from_the_table_and_flops_from_the_counter(truth):
    from app.views.pareto import space_points
    from knas_core.costs import count_flops

    points = space_points("cifar100", cost="params", truth=truth)
    assert points["cost"].equals(truth.frame["params_mb_cifar100"].rename("cost"))
    flops = space_points("cifar10", cost="flops", truth=truth)
    for index in (0, 8000):
        assert flops.at[index, "cost"] == pytest.approx(count_flops(truth.frame.at[index, "arch"], "cifar10"))
    with pytest.raises(ValueError, match="unknown cost"):
        space_points("cifar10", cost="latency", truth=truth)


def test_pareto_page_highlights_the_front(store):
    _, ids = store
    at = page("8_Pareto_front.py", search=str(ids["done"]))
    no_exception(at)
    assert at.selectbox(key="pa-search").value == ids["done"]
    front = at.dataframe[0].value
    assert 1 <= len(front) <= len(INDICES)
    at.radio(key="pa-cost").set_value("flops").run()
    no_exception(at)
    assert any("flops" in c.value for c in at.caption)


# --- which operations matter ------------------------------------------------------------------------

def test_accuracy_is_grouped_by_the_operation_on_each_edge(store, truth):
    from app.views import operations
    from knas_core.spaces.nb201 import parse_arch

    _, ids = store
    points = operations.search_points(ids["done"], "cifar10", truth=truth)
    long = operations.edge_frame(points)
    assert len(long) == 6 * len(INDICES)
    stats = {(s["edge"], s["op"]): s for s in operations.edge_op_stats(long)}
    acc = truth.accuracy("cifar10", "test")
    for e, edge in enumerate(operations.EDGE_LABELS):
        for op in {parse_arch(truth.frame.at[i, "arch"])[e] for i in INDICES}:
            values = [acc.loc[i] for i in INDICES if parse_arch(truth.frame.at[i, "arch"])[e] == op]
            s = stats[(edge, op)]
            assert (s["n"], s["mean"], s["median"]) == (len(values), pytest.approx(np.mean(values)),
                                                        pytest.approx(np.median(values)))
            assert s["lowerfence"] >= s["min"] and s["upperfence"] <= s["max"]
    assert sum(s["n"] for s in stats.values()) == 6 * len(INDICES)
    importance = operations.edge_importance(long)
    assert [r["eta2"] for r in importance] == sorted((r["eta2"] for r in importance), reverse=True)
    for r in importance:  # eta^2 = 1 - SS_within / SS_total
        mine = long[long["edge"] == r["edge"]]
        within = sum(((g - g.mean()) ** 2).sum() for _, g in mine.groupby("op")["value"])
        total = ((mine["value"] - mine["value"].mean()) ** 2).sum()
        assert r["eta2"] == pytest.approx(1 - within / total)
        assert r["spread"] == pytest.approx(stats[(r["edge"], r["best_op"])]["mean"]
                                            - stats[(r["edge"], r["worst_op"])]["mean"])
    scores = operations.search_points(ids["done"], "cifar10", value="score")
    assert len(operations.edge_frame(scores, "score")) == 6 * len(INDICES)


def test_on_the_whole_space_every_operation_fills_a_fifth_of_each_edge(truth):
    from app.views import operations
    from app.views.pareto import space_points

    long = operations.edge_frame(space_points("cifar10", truth=truth))
    stats = operations.edge_op_stats(long)
    assert len(stats) == 30 and {s["n"] for s in stats} == {len(truth.frame) // 5}
    assert all(0.0 <= r["eta2"] <= 1.0 for r in operations.edge_importance(long))


def test_box_stats_whiskers_stop_at_the_last_value_within_the_fences():
    from app.views.operations import box_stats

    s = box_stats(np.array([1.0, 2, 3, 4, 5, 6, 7, 8, 100]))
    assert (s["q1"], s["median"], s["q3"]) == (3.0, 5.0, 7.0)
    assert (s["lowerfence"], s["upperfence"], s["max"]) == (1.0, 8.0, 100.0)  # 100 > 7 + 1.5 * 4


def test_operations_page_draws_the_space_and_a_search(store):
    _, ids = store
    at = page("9_Operations.py")
    no_exception(at)
    importance = at.dataframe[0].value
    assert len(importance) == 6
    at = page("9_Operations.py", search=str(ids["done"]))
    no_exception(at)
    at.radio(key="op-value").set_value("score").run()
    no_exception(at)
    assert len(at.dataframe[0].value) == 6


# --- score by sampling order ------------------------------------------------------------------------

def test_best_score_follows_rank_once_scored_and_the_direction_before():
    from app.views.sampling import best_score_trace

    cands = [{"position": p, "score": s, "rank": None} for p, s in enumerate([3.0, None, 1.0, 5.0, 2.0])]
    assert [r["best"] for r in best_score_trace(cands)] == [3.0, 3.0, 5.0, 5.0]
    assert [r["best"] for r in best_score_trace(cands, higher_is_better=False)] == [3.0, 1.0, 1.0, 1.0]
    assert [r["sampled"] for r in best_score_trace(cands)] == [1, 3, 4, 5]
    ranked = [{**c, "rank": r} for c, r in zip(cands, [2, None, 1, 4, 3])]  # a lower-is-better order
    assert [r["best"] for r in best_score_trace(ranked)] == [3.0, 1.0, 1.0, 1.0]


def test_score_trace_of_the_seeded_searches(store, truth):
    from app.views.sampling import score_trace

    _, ids = store
    trace = score_trace(ids["done"])
    test = truth.accuracy("cifar10", "test").loc[INDICES].to_numpy() * 10
    assert [r["score"] for r in trace] == pytest.approx(list(test))
    assert [r["best"] for r in trace] == pytest.approx(list(np.maximum.accumulate(test)))
    assert score_trace(ids["running"]) == [] and score_trace(ids["random"][0]) == []
    assert len(score_trace(ids["knas"][0])) == len(KNAS_SEED1)


def test_search_detail_shows_the_score_order_chart(store):
    _, ids = store
    at = page("3_Search_detail.py", search=str(ids["done"]))
    no_exception(at)
    charts = at.get("plotly_chart")
    assert any("Score by sampling order" in str(c.proto.spec) for c in charts)


def test_views_draw_their_numbers(store, truth):
    from app.views import compare, operations, pareto, plots
    from app.views.pareto import space_points
    from knas_core.spaces.nb201 import OPS

    _, ids = store
    rows = compare.curves([ids["done"]], "evaluated")
    fig = plots.compare_figure(rows, {ids["done"]: "seeded"}, "evaluated", "best", "evaluated")
    assert list(fig.data[0].y) == [r["best"] for r in rows[ids["done"]]]
    mine = pareto.pareto("cifar10", search_id=ids["done"], truth=truth)
    fig = plots.pareto_figure([], "params", "acc", mine)
    assert len(fig.data[1].x) == sum(r["on_front"] for r in mine)
    stats = operations.edge_op_stats(operations.edge_frame(space_points("cifar10", truth=truth)))
    fig = plots.operations_figure(stats, "acc")
    assert [t.name for t in fig.data] == list(OPS)
    assert list(fig.data[0].median) == [s["median"] for s in stats if s["op"] == "none"]
