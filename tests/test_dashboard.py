"""The dashboard: its data functions (plain asserts, no browser) and every page through
``streamlit.testing.v1.AppTest`` against a seeded SQLite store (see tests/dashboard_seed.py).

Submitting goes through ``tasks.api.submit_search`` with the broker check and the publisher
monkeypatched: the search row is written, the enqueued message is recorded instead of sent.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.views.markup import md_text
from tests.dashboard_seed import INDICES, seed

MAIN = str(Path(__file__).resolve().parent.parent / "app" / "main.py")


@pytest.fixture(scope="module")
def seeded_url(tmp_path_factory, truth):
    url = f"sqlite:///{tmp_path_factory.mktemp('dash') / 'knas.db'}"
    return url, seed(url, truth)


@pytest.fixture()
def store(seeded_url, monkeypatch):
    url, ids = seeded_url
    monkeypatch.setenv("KNAS_DATABASE_URL", url)
    monkeypatch.delenv("KNAS_READ_ONLY", raising=False)
    monkeypatch.delenv("KNAS_LAB_TOKEN", raising=False)
    import streamlit as st

    st.cache_data.clear()
    return url, ids


@pytest.fixture()
def published(monkeypatch):
    """Record enqueued searches instead of sending them (the row is still written)."""
    from tasks import search as tasks_search

    sent: list[list] = []
    monkeypatch.setattr("tasks.common.check_broker", lambda timeout=5.0: None)
    monkeypatch.setattr(tasks_search.advance_search, "apply_async", lambda args=None, **kw: sent.append(args))
    return sent


def page(path: str, **params: str) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=30)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()  # registers the st.navigation pages (custom URLs), as AppTest.switch_page requires
    at.switch_page(f"screens/{path}")
    return at.run()


def texts(at: AppTest, kind: str) -> list[str]:
    return [e.value for e in getattr(at, kind)]


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


# --- data functions ---------------------------------------------------------------------------------

def test_ranking_is_filtered_sorted_and_paged(store, truth):
    from app.views import detail
    from app.views.detail import RankingFilter

    _, ids = store
    rows, total = detail.ranking(ids["done"], page_size=None)
    assert total == len(rows) == 12 and [r["rank"] for r in rows] == list(range(1, 13))
    acc = truth.accuracy("cifar10").loc[INDICES]
    assert rows[0]["index"] == int(acc.idxmax())  # seeded score follows accuracy
    page2, total = detail.ranking(ids["done"], page=2, page_size=5)
    assert total == 12 and [r["rank"] for r in page2] == [6, 7, 8, 9, 10]
    pooled, n_pool = detail.ranking(ids["done"], RankingFilter(ops=("avg_pool_3x3",)), page_size=None)
    expected = sum("avg_pool_3x3" in truth.frame.at[i, "arch"] for i in INDICES)
    assert n_pool == len(pooled) == expected and all("avg_pool_3x3~" in r["arch"] for r in pooled)
    mid = sorted(r["score"] for r in rows)[3:9]
    flt = RankingFilter(score_min=mid[0], score_max=mid[-1])
    ranged, _ = detail.ranking(ids["done"], flt, page_size=None)
    assert sorted(r["score"] for r in ranged) == mid
    evaluated, n_eval = detail.ranking(ids["done"], RankingFilter(acc_min=0.0), sort="accuracy",
                                       descending=True)
    assert n_eval == 3 and [r["accuracy"] for r in evaluated] == sorted((r["accuracy"] for r in evaluated),
                                                                         reverse=True)
    with pytest.raises(ValueError, match="unknown sort column"):
        detail.ranking(ids["done"], sort="colour")


def test_best_so_far_histogram_and_training_curves(store):
    from app.views import detail

    _, ids = store
    trace = detail.best_so_far(ids["done"])
    assert [r["evaluated"] for r in trace] == [1, 2, 3] and [r["rank"] for r in trace] == [1, 2, 3]
    assert all(r["best"] == max(t["accuracy"] for t in trace[:k + 1]) for k, r in enumerate(trace))
    scores, accs = detail.score_range(ids["done"])
    assert len(scores) == 12 and len(accs) == 3
    curves = detail.training_curves(ids["done"])
    assert [(r["rank"], r["epoch"], r["test_acc"]) for r in curves] == [(1, 1, 40.0), (1, 2, 61.0)]
    fig = detail.best_so_far_figure(trace)
    assert list(fig.data[1].y) == [r["best"] for r in trace]


def test_scores_spanning_many_decades_are_drawn_on_a_log_scale():
    from app.views import detail, plots

    synflow = [2.5e35, 8.9e36, 1.3e39, 4.0e35]
    fig = detail.score_histogram_figure(synflow, "synflow score")
    assert fig.layout.xaxis.title.text == "log10(synflow score)"
    assert list(fig.data[0].x) == pytest.approx([35.398, 36.949, 39.114, 35.602], abs=1e-3)
    with_zeros = detail.score_histogram_figure([0.0, *synflow, 0.0], "synflow score")
    assert len(with_zeros.data[0].x) == 4
    assert with_zeros.layout.title.text == "Score distribution (2 scores of 0 left out)"
    plain = detail.score_histogram_figure([1.0, 2.0, 300.0], "params score")
    assert plain.layout.xaxis.title.text == "params score" and list(plain.data[0].x) == [1.0, 2.0, 300.0]
    rows = [{"sampled": i + 1, "score": v, "best": max(synflow[:i + 1])} for i, v in enumerate(synflow)]
    assert plots.score_order_figure(rows, "synflow score", log_y=True).layout.yaxis.type == "log"
    assert plots.score_order_figure(rows, "synflow score").layout.yaxis.type == "linear"


def test_correlation_statistics_match_knas_core_and_carry_published_marks(store):
    from app.views import correlation
    from knas_core.stats import correlate

    rows = {(r["proxy"], r["dataset"]): r for r in correlation.statistics_rows()}
    assert set(rows) == {("synflow", "cifar10"), ("params", "cifar10"), ("snip", "cifar10")}
    assert rows[("synflow", "cifar10")]["spearman"] == pytest.approx(1.0)   # seeded as 10 x accuracy
    assert rows[("params", "cifar10")]["kendall"] == pytest.approx(-1.0)    # seeded as -accuracy
    pairs = correlation.scatter_rows("snip", "cifar10")
    ref = correlate([p["score"] for p in pairs], [p["accuracy"] for p in pairs])
    assert rows[("snip", "cifar10")]["spearman"] == pytest.approx(ref.spearman)
    assert rows[("synflow", "cifar10")]["published_spearman"] == 0.74
    assert rows[("params", "cifar10")]["published_spearman"] is None
    assert all(p["params_mb"] is not None and p["params_mb"] > 0 for p in pairs)
    refs = {r["proxy"]: r for r in correlation.reference_rows(list(rows.values()))}
    assert refs["naswot"]["measured"] is None
    assert (refs["naswot"]["low"], refs["naswot"]["high"]) == (0.78, 0.80)
    names, matrix, n, used = correlation.proxy_matrix("cifar10")
    assert names == ["params", "snip", "synflow"] and (n == 12).all() and set(used) == set(names)
    assert matrix[names.index("synflow"), names.index("params")] == pytest.approx(-1.0)
    assert (abs(matrix - matrix.T) < 1e-12).all()
    assert all(matrix[i, i] == pytest.approx(1.0) for i in range(3))
    fig = correlation.scatter_figure(pairs, "snip", "cifar10", log_x=True)
    assert "n=12" in fig.layout.title.text


def test_published_marks_are_those_of_results_md():
    from pathlib import Path

    from app.views.reference import PUBLISHED

    table = Path(__file__).resolve().parent.parent.joinpath("docs/RESULTS.md").read_text()
    for p in PUBLISHED:
        published = f"{p.low:.2f}" if p.low == p.high else f"{p.low:.2f}-{p.high:.2f}"
        assert f"| {p.proxy} |" in table and table.split(f"| {p.proxy} |")[1].split("\n")[0].rstrip(" |") \
            .endswith(published), p


def test_cell_dag_has_four_nodes_and_six_labelled_edges():
    from app.views.cell import cell_edges, cell_figure
    from knas_core.spaces.nb201 import parse_arch

    arch = "|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|skip_connect~2|"
    edges = cell_edges(arch)
    assert [(e.src, e.dst) for e in edges] == [(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3)]
    assert [e.op for e in edges] == list(parse_arch(arch))
    fig = cell_figure(arch)
    labels = [a.text for a in fig.layout.annotations if a.text]
    assert sorted(labels) == sorted(parse_arch(arch))
    assert len(fig.data[-1].x) == 4  # the nodes


def configs_weights(configs: list[dict]) -> dict | None:
    """The ``weights`` of the one config the form would submit."""
    [config] = configs
    return config.get("weights")


def test_new_search_form_validation_and_clone():
    from app.views import newsearch
    from tasks.schema import SearchConfig

    configs, errors = newsearch.validate(newsearch.defaults())
    assert not errors and len(configs) == 1 and configs[0]["samples"] == newsearch.FORM_SAMPLES
    configs, errors = newsearch.validate({**newsearch.defaults(), "samples": 5, "topk": 8, "seeds": "0,x"})
    assert configs == [] and "cannot exceed" in errors["topk"] and "'x'" in errors["seeds"]
    _, errors = newsearch.validate({**newsearch.defaults(), "C": 0})
    assert "C" in errors
    assert configs_weights(newsearch.validate(newsearch.defaults())[0]) == (
        {p: w for p, w in newsearch.FORM_WEIGHTS.items() if w != 1.0} or None)  # 1s are not stored
    _, errors = newsearch.validate({**newsearch.defaults(), "weights": {"synflow": 0.0}})
    assert "weight must be > 0" in errors["weights"]
    one = newsearch.validate({**newsearch.defaults(), "proxies": ["synflow"]})[0]  # a weight of no member
    assert configs_weights(one) is None and one[0]["proxy"] == "synflow"
    stored = {"name": "mine", "strategy": "evolution", "proxies": ["synflow", "naswot"], "samples": 40,
              "topk": 4,
              "strategy_options": {"population": 10, "tournament": 3}, "seed": 7, "model": {"C": 8, "N": 2}}
    values = newsearch.values_from_config(stored)
    assert values["proxies"] == ["synflow", "naswot"] and values["seeds"] == "7"
    assert values["population"] == 10
    assert values["weights"] == {"synflow": 1.0, "naswot": 1.0}
    weighted = newsearch.values_from_config({**stored, "weights": {"naswot": 2.5}})
    assert weighted["weights"] == {"synflow": 1.0, "naswot": 2.5}
    assert configs_weights(newsearch.validate({**weighted, "name": "w"})[0]) == {"naswot": 2.5}
    [again], errors = newsearch.validate({**values, "name": "mine"})
    assert not errors
    # the same search; with an ensemble, "proxy" is unused and set to the ensemble's first
    assert (SearchConfig.model_validate(again).model_dump(exclude={"proxy"})
            == SearchConfig.model_validate(stored).model_dump(exclude={"proxy"}))
    configs, _ = newsearch.validate({**newsearch.defaults(), "seeds": "1, 2"})
    assert [c["seed"] for c in configs] == [1, 2]


def test_new_search_names_the_images_it_will_use(tmp_path, monkeypatch):
    from app.views import newsearch
    from knas_core.data import load_source

    monkeypatch.delenv("KNAS_DATA_DIR", raising=False)
    monkeypatch.setenv("KNAS_CACHE_DIR", str(tmp_path))  # empty: the package data is what is left
    found, text = newsearch.images_note("cifar10", "auto", "")
    assert found and text.startswith("Images: 2,000 train images of cifar10_scoring_2k500.npz (package: ")
    assert text.endswith(f"identity {load_source('cifar10').identity}")
    found, text = newsearch.images_note("cifar10", "npz", str(tmp_path / "nope"))
    assert not found and "data_dir: no usable data under the given path" in text  # not "does not exist"
    found, text = newsearch.images_note("cifar100", "torchvision", "")
    assert not found and "knas data fetch cifar100" in text
    found, text = newsearch.images_note("imagenet16-120", "auto", "")
    assert found and text.endswith("identity synthetic:imagenet16-120:normal")


def test_write_access_rules():
    from app.views.access import can_write, read_only_query

    assert can_write({}, environ={})
    assert not can_write({}, environ={"KNAS_READ_ONLY": "1"})
    assert not can_write({"view": "readonly"}, environ={})
    lab = {"KNAS_LAB_TOKEN": "s3cret"}
    assert not can_write({}, environ=lab) and not can_write({}, "wrong", environ=lab)
    assert can_write({}, "s3cret", environ=lab) and can_write({"token": "s3cret"}, environ=lab)
    assert not can_write({"token": "s3cret", "view": "readonly"}, environ=lab)
    assert read_only_query({"search": "3", "token": "s3cret"}) == "search=3&view=readonly"


def test_exports_round_trip(store):
    import io

    import pandas as pd

    from app.views import detail
    from app.views.export import to_csv, to_json

    _, ids = store
    rows, _ = detail.ranking(ids["done"], page_size=None)
    assert json.loads(to_json(rows)) == [{k: v for k, v in r.items()} for r in rows]
    frame = pd.read_csv(io.BytesIO(to_csv(rows)))
    assert list(frame.columns) == list(rows[0]) and frame["arch"].tolist() == [r["arch"] for r in rows]


# --- pages (AppTest) ----------------------------------------------------------------------------------

def test_searches_page_lists_offers_actions_and_cancels(store, published):
    url, ids = store
    at = page("1_Searches.py")
    no_exception(at)
    table = at.dataframe[0].value
    assert table["id"].tolist() == [ids["running"], ids["done"]]
    assert table["status"].tolist() == ["running", "done"] and table["progress"].tolist()[1] == 1.0
    labels = [b.label for b in at.button]
    assert {"Open", "Cancel", "Clone as new"} <= set(labels)
    at.selectbox(key="action-search").set_value(ids["running"]).run()
    at.button(key="cancel").click().run()
    no_exception(at)
    from tasks.api import search_progress

    assert search_progress(ids["running"])["cancel_requested"]
    assert any(f"search {ids['running']}" in t for t in texts(at, "info"))


def test_read_only_mode_hides_and_refuses_write_actions(store, monkeypatch):
    monkeypatch.setenv("KNAS_READ_ONLY", "1")
    at = page("1_Searches.py")
    no_exception(at)
    assert "Open" in [b.label for b in at.button]
    assert not {"Cancel", "Clone as new"} & {b.label for b in at.button}
    at = page("2_New_search.py")
    assert "Submit search" not in [b.label for b in at.button]
    assert any("Read-only" in t for t in texts(at, "info"))
    monkeypatch.delenv("KNAS_READ_ONLY")
    monkeypatch.setenv("KNAS_LAB_TOKEN", "s3cret")
    at = page("2_New_search.py")
    assert "Submit search" not in [b.label for b in at.button]
    at = page("2_New_search.py", token="s3cret")
    assert "Submit search" in [b.label for b in at.button]


def test_new_search_shows_messages_next_to_fields_and_submits(store, published):
    from sqlalchemy import select

    from app.views import newsearch
    from db.models import Search
    from db.session import session_scope

    url, _ = store
    at = page("2_New_search.py")
    no_exception(at)
    widgets = {"selectbox": ("ns_space", "ns_dataset", "ns_data_source", "ns_strategy", "ns_device"),
               "multiselect": ("ns_proxies",), "radio": ("ns_eval",), "text_input": ("ns_name", "ns_seeds"),
               "number_input": ("ns_samples", "ns_topk", "ns_batch_size", "ns_C", "ns_N", "ns_chunk_size")}
    for kind, keys in widgets.items():
        for key in keys:
            getattr(at, kind)(key=key)  # KeyError when the widget is missing
    at.selectbox(key="ns_strategy").set_value("evolution").run()
    assert at.number_input(key="ns_population").value >= 2  # strategy parameters follow the strategy
    at.radio(key="ns_eval").set_value("train").run()
    assert at.number_input(key="ns_epochs").value == 12
    at.selectbox(key="ns_strategy").set_value("knas")
    at.radio(key="ns_eval").set_value("lookup").run()
    assert at.number_input(key="ns_samples").value == newsearch.FORM_SAMPLES
    assert at.multiselect(key="ns_proxies").value == list(newsearch.FORM_PROXIES)
    shown = {p: at.number_input(key=f"ns_weight_{p}").value for p in newsearch.FORM_PROXIES}
    assert shown == newsearch.FORM_WEIGHTS
    at.number_input(key="ns_weight_params").set_value(2.0)
    at.number_input(key="ns_samples").set_value(5)
    at.number_input(key="ns_topk").set_value(8)
    at.button(key="ns_submit").click().run()
    no_exception(at)
    assert any("cannot exceed" in e for e in texts(at, "error"))
    assert published == []
    at.number_input(key="ns_topk").set_value(3)
    at.text_input(key="ns_name").set_value("from the dashboard")
    at.button(key="ns_submit").click().run()
    no_exception(at)
    with session_scope(url) as s:
        row = s.scalars(select(Search).where(Search.name == "from the dashboard")).one()
        assert (row.status, row.config["samples"], row.config["topk"]) == ("queued", 5, 3)
        assert row.config["weights"] == {**{p: w for p, w in newsearch.FORM_WEIGHTS.items() if w != 1.0},
                                         "params": 2.0}
        assert published == [[row.id]]


def test_new_search_refuses_sample_size_0_under_its_own_field(store, published):
    """A 0 the user typed is the value checked (the widget has no bounds of its own, which kept
    the old 100 and submitted it), refused under Sample size, and nothing is submitted."""
    from sqlalchemy import func, select

    from app.views import newsearch
    from db.models import Search
    from db.session import session_scope

    url, _ = store
    with session_scope(url) as s:
        before = s.scalar(select(func.count()).select_from(Search))
    at = page("2_New_search.py")
    samples = at.number_input(key="ns_samples")
    assert samples.min is None and samples.max is None
    samples.set_value(0)
    at.number_input(key="ns_topk").set_value(3)
    at.button(key="ns_submit").click().run()
    no_exception(at)
    errors = texts(at, "error")
    assert md_text("must be at least 1, got 0") in errors  # the field's own message, with its value
    assert md_text(newsearch.refused({"samples": "x"})) in errors  # and at the button, naming the field
    assert not any("cannot exceed" in e for e in errors)  # no top-k message about a hidden value
    assert published == []
    with session_scope(url) as s:
        assert s.scalar(select(func.count()).select_from(Search)) == before
    at.number_input(key="ns_samples").set_value(5).run()  # the message goes with the value it named
    assert not any("got 0" in e for e in texts(at, "error"))


def test_form_messages_in_the_forms_words():
    from app.views import newsearch

    plain = newsearch.plain_message
    assert plain("Input should be greater than or equal to 1", 0) == "must be at least 1, got 0"
    assert plain("Input should be greater than or equal to 0", -1) == "cannot be negative, got -1"
    assert plain("Input should be less than or equal to 15625", 20000) == "must be at most 15625, got 20000"
    assert plain("Input should be a valid integer", None) == "give a whole number"
    assert plain("topk (10) cannot exceed", 10) == "topk (10) cannot exceed"
    _, errors = newsearch.validate({**newsearch.defaults(), "samples": 0, "topk": 0})
    assert errors == {"samples": "must be at least 1, got 0", "topk": "must be at least 1, got 0"}
    assert newsearch.refused(errors) == \
        "Not submitted: change the fields marked above: Sample size; Top-k evaluated."
    _, errors = newsearch.validate({**newsearch.defaults(), "eval": "train", "train_subset": -5})
    assert errors == {"train_subset": "cannot be negative (0: all images), got -5"}


def test_a_submit_warning_is_shown_before_leaving_the_page(store, published, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    at = page("2_New_search.py")
    at.selectbox(key="ns_device").set_value("cuda")
    at.number_input(key="ns_samples").set_value(5)
    at.number_input(key="ns_topk").set_value(3)
    at.button(key="ns_submit").click().run()
    no_exception(at)
    assert len(published) == 1  # submitted all the same: the workers may have a GPU
    assert any(w.startswith("device: cuda requested but this machine sees no CUDA GPU")
               for w in texts(at, "warning"))


def test_new_search_page_shows_the_images(store):
    from app.views import newsearch

    at = page("2_New_search.py")
    no_exception(at)
    expected = newsearch.images_note("cifar10", "auto", "")
    assert expected[0] and md_text(expected[1]) in texts(at, "caption")
    at.text_input(key="ns_data_dir").set_value("/definitely/missing").run()
    no_exception(at)
    missing = [w for w in texts(at, "warning") if w.startswith("No images for this search\\:")]
    at.text_input(key="ns_data_dir").set_value("/etc").run()  # exists, holds no data: the same words
    no_exception(at)
    assert len(missing) == 1 and "no usable data under the given path" in missing[0]
    assert missing == [w for w in texts(at, "warning") if w.startswith("No images for this search\\:")]
    at.text_input(key="ns_data_dir").set_value("")
    at.selectbox(key="ns_dataset").set_value("imagenet16-120").run()
    assert md_text(newsearch.images_note("imagenet16-120", "auto", "")[1]) in texts(at, "caption")
    assert not any(w.startswith("No images") for w in texts(at, "warning"))


def test_clone_prefills_the_form(store):
    _, ids = store
    at = page("2_New_search.py", clone=str(ids["done"]))
    no_exception(at)
    assert at.multiselect(key="ns_proxies").value == ["synflow"]
    assert at.number_input(key="ns_samples").value == 12 and at.number_input(key="ns_topk").value == 3
    assert at.text_input(key="ns_name").value == "seeded (clone)"


def _title(layout: dict) -> str | None:
    """A Plotly layout's (or axis') title text, as the figure's JSON holds it."""
    title = layout.get("title")
    return title.get("text") if isinstance(title, dict) else title


def test_search_detail_page(store):
    _, ids = store
    at = page("3_Search_detail.py", search=str(ids["done"]))
    no_exception(at)
    ranking = at.table[0].value
    assert ranking["rank"].tolist() == [str(r) for r in range(1, 13)]
    assert len(at.get("plotly_chart")) == 5  # cell, histogram, best-so-far, score order, training curves
    # the score axes name the proxy's score once ("synflow score", not "synflow score score")
    axes = {_title(f["layout"]): (_title(f["layout"].get("xaxis", {})), _title(f["layout"].get("yaxis", {})))
            for f in (json.loads(c.proto.spec) for c in at.get("plotly_chart"))}
    assert axes["Score distribution"][0] == "synflow score"
    assert axes["Score by sampling order"][1] == "synflow score"
    at.multiselect(key="rk-ops").set_value(["avg_pool_3x3"]).run()
    no_exception(at)
    assert all("avg_pool_3x3~" in a for a in at.table[0].value["architecture"])
    assert len(at.table[0].value) < 12
    running = page("3_Search_detail.py", search=str(ids["running"]))
    no_exception(running)
    assert "Cancel this search" in [b.label for b in running.button]
    assert running.get("progress")[0].value == round(100 * 0.9 * 2 / 6)  # 2 of 6 scored (percent)
    missing = page("3_Search_detail.py", search="999")
    assert any("No search with id 999" in e for e in texts(missing, "error"))
    none = page("3_Search_detail.py")
    assert any("No search chosen" in t for t in texts(none, "info"))


def test_correlation_page_follows_the_url(store):
    at = page("4_Correlation.py", proxy="snip", dataset="cifar10")
    no_exception(at)
    assert at.selectbox(key="co-proxy").value == "snip"
    assert len(at.get("plotly_chart")) == 4  # scatter, heatmap, published marks, proxy matrix
    stats = at.dataframe[0].value
    assert sorted(stats["proxy"]) == ["params", "snip", "synflow"]
    at.selectbox(key="co-proxy").set_value("synflow").run()
    assert at.query_params["proxy"] == "synflow"  # the URL now reopens this view


def test_architecture_page(store, truth):
    _, ids = store
    at = page("5_Architecture.py", arch=str(ids["best_index"]))
    no_exception(at)
    bench = at.dataframe[0].value
    assert {"cifar10", "cifar100", "imagenet16-120"} == set(bench["dataset"]) and len(bench) == 9
    # the store holds 12 architectures' rows: percentiles come from the whole space's table
    row = bench[(bench["dataset"] == "cifar100") & (bench["metric"] == "test")].iloc[0]
    assert row["n"] == len(truth.frame)
    assert row["percentile"] == pytest.approx(truth.percentile(row["accuracy"], "cifar100"))
    assert sorted(at.dataframe[1].value["proxy"]) == ["params", "snip", "synflow"]
    assert at.dataframe[2].value["final_test_acc"].tolist() == [61.0]
    bad = page("5_Architecture.py", arch="|conv~0|")
    assert any("Not an architecture" in e for e in texts(bad, "error"))


def test_empty_database_says_what_to_do(tmp_path, monkeypatch):
    from db.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'empty.db'}"
    upgrade(url)
    monkeypatch.setenv("KNAS_DATABASE_URL", url)
    import streamlit as st

    st.cache_data.clear()
    at = page("1_Searches.py")
    no_exception(at)
    assert any("No searches yet: start one" in t for t in texts(at, "info"))
    at = page("4_Correlation.py")
    assert any("No proxy scores yet" in t for t in texts(at, "info"))


def test_stored_benchmark_percentile(store, truth):
    from db import queries
    from db.session import session_scope

    url, ids = store
    with session_scope(url) as s:
        stored = queries.architecture_benchmark(s, ids["best_arch_id"])
    rows = {(r["dataset"], r["metric"]): r for r in stored}
    acc = truth.accuracy("cifar100").loc[INDICES]
    mine = rows[("cifar100", "test")]
    assert mine["n"] == 12 and mine["accuracy"] == pytest.approx(acc.loc[ids["best_index"]])
    assert mine["percentile"] == pytest.approx(100.0 * (acc <= mine["accuracy"]).mean())
    assert rows[("cifar10", "test")]["percentile"] == 100.0  # seeded as the best on CIFAR-10


# --- sharing: access that holds for the visit, user text rendered as text ---------------------------

def labels(at: AppTest) -> list[str]:
    return [b.label for b in at.button]


def visit(**params) -> AppTest:
    """A browser session opening ``/?params`` (the Searches page), not yet switched anywhere."""
    at = AppTest.from_file(MAIN, default_timeout=30)
    for key, value in params.items():
        at.query_params[key] = value
    return at.run()


def go(at: AppTest, path: str) -> AppTest:
    """Follow a sidebar link: the page changes, the link's query string does not follow."""
    at.query_params.clear()
    at.switch_page(f"screens/{path}")
    return at.run()


def test_read_only_link_stays_read_only_on_every_page(store):
    at = visit(view="readonly")
    no_exception(at)
    assert not {"Cancel", "Clone as new"} & set(labels(at))
    at = go(at, "2_New_search.py")
    no_exception(at)
    assert "Submit search" not in labels(at)
    assert any("Read-only" in t for t in texts(at, "info"))
    assert at.query_params.get("view") == "readonly"  # the address (and its share link) says so too
    at = go(at, "1_Searches.py")
    assert not {"Cancel", "Clone as new"} & set(labels(at))


def test_lab_token_link_grants_the_session_and_leaves_the_address(store, monkeypatch):
    monkeypatch.setenv("KNAS_LAB_TOKEN", "s3cret")
    at = visit(token="s3cret")
    no_exception(at)
    assert "token" not in at.query_params  # not left in the address bar, history or a screenshot
    assert {"Cancel", "Clone as new"} <= set(labels(at))
    at = go(at, "2_New_search.py")
    assert "Submit search" in labels(at)  # one entry: writing lasts for the session
    at = go(at, "1_Searches.py")
    assert "Cancel" in labels(at)
    wrong = visit(token="nope")
    assert "token" not in wrong.query_params and "Cancel" not in labels(wrong)
    assert "Submit search" not in labels(go(wrong, "2_New_search.py"))


@pytest.mark.parametrize("tokens", [["x", "s3cret"], ["s3cret", "s3cret"]])
def test_a_token_given_more_than_once_grants_nothing(store, monkeypatch, tokens):
    monkeypatch.setenv("KNAS_LAB_TOKEN", "s3cret")
    at = visit(token=tokens)
    no_exception(at)
    assert "token" not in at.query_params
    assert "Cancel" not in labels(at)
    assert "Submit search" not in labels(go(at, "2_New_search.py"))


def test_read_only_link_wins_over_a_lab_token(store, monkeypatch):
    monkeypatch.setenv("KNAS_LAB_TOKEN", "s3cret")
    at = visit(view="readonly", token="s3cret")
    assert "Cancel" not in labels(at)
    at = go(at, "2_New_search.py")
    at.query_params["token"] = "s3cret"  # a token later in the visit does not lift it
    assert "Submit search" not in labels(at.run())


PIXEL = "![px](http://127.0.0.1:8799/pixel.png)"


def markdown_bodies(at: AppTest) -> list[str]:
    """The Markdown source of every element Streamlit renders as Markdown."""
    kinds = ("title", "header", "subheader", "markdown", "caption", "error", "warning", "info", "success")
    return [str(e.value) for kind in kinds for e in getattr(at, kind)]


def assert_text_only(at: AppTest, needle: str = "127.0.0.1:8799", shown: bool = True) -> None:
    """``needle`` is shown (escaped; unless ``shown`` is False) and no image or link syntax
    around it survives."""
    bodies = [b for b in markdown_bodies(at) if needle.replace(".", "\\.").replace(":", "\\:") in b
              or needle in b]
    assert bodies or not shown, markdown_bodies(at)
    for body in bodies:
        assert "![" not in body and "](" not in body and "<img" not in body, body


@pytest.fixture()
def hostile_store(tmp_path, monkeypatch):
    """A store whose user text is Markdown that fetches a URL when rendered."""
    from db import repository as repo
    from db.migrate import upgrade
    from db.session import session_scope

    url = f"sqlite:///{tmp_path / 'hostile.db'}"
    upgrade(url)
    with session_scope(url) as s:
        search = repo.create_search(s, {"name": PIXEL, "space": "nb201", "strategy": "knas",
                                        "dataset": "cifar10", "proxy": "synflow", "samples": 4, "topk": 1,
                                        "eval": "lookup", "seed": 0, "device": "cpu",
                                        "data_source": "npz", "data_dir": f"/tmp/{PIXEL}"})
        search.finish("failed", error=f"ValueError: {PIXEL.replace('px', 'err')}")
        search_id = search.id
    monkeypatch.setenv("KNAS_DATABASE_URL", url)
    monkeypatch.delenv("KNAS_READ_ONLY", raising=False)
    monkeypatch.delenv("KNAS_LAB_TOKEN", raising=False)
    import streamlit as st

    st.cache_data.clear()
    yield search_id
    from db.session import dispose_engine

    dispose_engine(url)


def test_search_names_and_errors_render_as_text(hostile_store):
    at = page("3_Search_detail.py", search=str(hostile_store))
    no_exception(at)
    heading = at.subheader[0].value
    assert "\\!\\[px\\]\\(http" in heading and "![" not in heading  # the name, escaped
    assert_text_only(at)
    errors = [e for e in texts(at, "error") if "err" in e]
    assert errors and all("![" not in e for e in errors)


def test_store_and_link_text_render_as_text_on_other_pages(hostile_store):
    # the stored data_dir fills the form; the images note does not repeat a server path
    clone = page("2_New_search.py", clone=str(hostile_store))
    no_exception(clone)
    assert_text_only(clone, shown=False)
    assert any("no usable data under the given path" in w for w in texts(clone, "warning"))
    arch = page("5_Architecture.py", arch=PIXEL)  # a link's text comes back in the error
    no_exception(arch)
    assert any("Not an architecture" in e for e in texts(arch, "error"))
    assert_text_only(arch)


def test_typed_lab_token_still_grants_writing(store, monkeypatch):
    monkeypatch.setenv("KNAS_LAB_TOKEN", "s3cret")
    at = page("2_New_search.py")
    assert "Submit search" not in labels(at)
    at.text_input(key="lab_token").input("s3cret").run()
    assert "Submit search" in labels(at)


def test_markup_helpers_make_user_text_inert():
    import string

    from app.views.markup import md_code, md_text

    escaped = md_text(PIXEL)
    assert escaped == "\\!\\[px\\]\\(http\\:\\/\\/127\\.0\\.0\\.1\\:8799\\/pixel\\.png\\)"
    assert md_text("a_b") == "a\\_b" and md_text("plain words 12") == "plain words 12"
    # CommonMark drops the backslash before any ASCII punctuation: the reader sees the text
    assert all(md_text(c) == "\\" + c for c in string.punctuation)
    assert md_code("|nor_conv_3x3~0|") == "`|nor_conv_3x3~0|`"
    assert md_code("a`b") == "``a`b``" and md_code("``x") == "``` ``x ```"
    assert md_code("two\nlines") == "`two lines`" and md_code("") == ""


# --- issue #16: the numbers shown -------------------------------------------------------------------

def test_csv_keeps_whole_number_columns_whole():
    """A column of integers with gaps (best_index of a search without a result) stays integers."""
    import io

    import pandas as pd

    from app.views.export import to_csv, to_frame

    rows = [{"id": 2, "best_index": None, "rate": 0.5, "flag": True},
            {"id": 1, "best_index": 12476, "rate": None, "flag": False}]
    text = to_csv(rows).decode()
    assert "12476.0" not in text and text.splitlines()[2].startswith("1,12476,")
    back = pd.read_csv(io.StringIO(text))
    assert back["best_index"].dropna().tolist() == [12476]
    frame = to_frame(rows)
    assert str(frame["best_index"].dtype) == "Int64" and str(frame["rate"].dtype) == "float64"
    assert frame["flag"].tolist() == [True, False]


def test_cell_arrows_lie_on_their_edges():
    """Each edge is drawn as a polyline whose last segment carries the arrowhead: no arrow shaft
    leaves the drawn edge (the 0->3 edge curves below node 2; a straight shaft from its label to
    node 3 was an extra line)."""
    import numpy as np

    from app.views.cell import NODE_XY, cell_figure

    arch = "|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|skip_connect~2|"
    fig = cell_figure(arch)
    edges = [t for t in fig.data if t.mode == "lines"]
    arrows = [a for a in fig.layout.annotations if a.showarrow]
    assert len(edges) == len(arrows) == 6
    for trace, arrow in zip(edges, arrows):
        assert trace.line.shape in (None, "linear")  # drawn as given: the polyline is what shows
        xs, ys = np.array(trace.x, dtype=float), np.array(trace.y, dtype=float)
        assert (arrow.x, arrow.y) == (xs[-1], ys[-1])
        assert (arrow.ax, arrow.ay) == (xs[-2], ys[-2])  # the shaft is the path's last segment
        length = np.hypot(np.diff(xs), np.diff(ys)).sum()
        assert np.hypot(xs[-1] - xs[-2], ys[-1] - ys[-2]) <= 0.25 * length
    long = next(t for t in edges if (t.x[0], t.y[0]) == NODE_XY[0] and (t.x[-1], t.y[-1]) == NODE_XY[3])
    assert min(long.y) < NODE_XY[2][1]  # passes below node 2, not through it
    label = next(a for a in fig.layout.annotations if not a.showarrow and a.text == "skip_connect"
                 and a.y < NODE_XY[2][1])
    assert any(np.isclose(label.x, x) and np.isclose(label.y, y) for x, y in zip(long.x, long.y))


@pytest.fixture(scope="module")
def live_url(tmp_path_factory, truth):
    from tests.dashboard_seed import seed_live

    url = f"sqlite:///{tmp_path_factory.mktemp('live') / 'knas.db'}"
    return url, seed_live(url, truth)


@pytest.fixture()
def live(live_url, monkeypatch):
    url, ids = live_url
    monkeypatch.setenv("KNAS_DATABASE_URL", url)
    monkeypatch.delenv("KNAS_READ_ONLY", raising=False)
    monkeypatch.delenv("KNAS_LAB_TOKEN", raising=False)
    import streamlit as st

    st.cache_data.clear()
    return ids


def test_live_ranking_reads_the_scores_stored_so_far(live):
    """While a staged search scores, its candidates hold no score yet: the ranking shows the
    ProxyScore rows under the search's keys, ranked by them."""
    from app.views import detail

    rows, total = detail.ranking(live["single"], page_size=None)
    values = live["values"]["single"]["synflow"]
    assert total == 8
    by_arch = {r["architecture_id"]: r for r in rows}
    assert {a: by_arch[a]["score"] for a in values} == values
    assert [r["score"] for r in rows[:3]] == sorted(values.values(), reverse=True)  # rank order
    assert [r["rank"] for r in rows] == [1, 2, 3, None, None, None, None, None]
    assert [r["stage"] for r in rows].count("scored") == 3
    table = detail.ranking_table(live["single"])
    assert table.proxies == ("synflow",) and not table.proxy_columns and len(table.scores()) == 3


def test_live_ranking_of_an_ensemble_has_a_column_per_proxy(live):
    from app.views import detail
    from knas_core.search.ensemble import log_rank_aggregate
    from tests.dashboard_seed import ENSEMBLE, ENSEMBLE_WEIGHTS

    table = detail.ranking_table(live["ensemble"])
    assert table.proxies == ENSEMBLE and table.score_label == "ensemble score"
    assert table.proxy_columns == ["synflow score", "snip score", "params score"]
    assert set(table.proxy_columns) <= set(table.sorts)
    rows = {r["architecture_id"]: r for r in table.rows}
    values = live["values"]["ensemble"]
    for proxy in ENSEMBLE:
        assert {a: rows[a][f"{proxy} score"] for a in values[proxy]} == values[proxy]
    arch_ids = live["arch_ids"]
    members = {p: [values[p].get(a) for a in arch_ids] for p in ENSEMBLE}
    expected = log_rank_aggregate(members, weights=ENSEMBLE_WEIGHTS)  # of the rows scored so far
    assert expected != log_rank_aggregate(members)  # the weights change the scores
    assert [rows[a]["score"] for a in arch_ids] == expected
    assert sum(v is not None for v in expected) == 3  # 0-2: scored by all three, params failed on 3
    assert "params: out of memory" in rows[arch_ids[3]]["error"]
    assert rows[arch_ids[4]]["stage"] == "sampled"  # synflow only so far
    by_synflow, _ = detail.select_rows(table, sort="synflow score", descending=True, page_size=3)
    assert [r["architecture_id"] for r in by_synflow] == [arch_ids[4], arch_ids[3], arch_ids[2]]
    # the same values the search will rank by when it selects (tasks.search.ranking_values)
    from db import repository as repo
    from db.session import session_scope
    from tasks.schema import load_config
    from tasks.search import ranking_values, score_keys
    from tests.dashboard_seed import LIVE_DATA

    with session_scope() as s:
        search = repo.get_search(s, live["ensemble"])
        config = load_config(search.config)
        keys = score_keys(config, "cpu", LIVE_DATA)
        selected, _, higher = ranking_values(s, search.id, keys, config.proxy_weights())
        by_candidate = {c.id: c.architecture_id for c in repo.candidates(s, search.id)}
    assert higher and {by_candidate[c]: v for c, v in selected.items()} == \
        {a: rows[a]["score"] for a in arch_ids if rows[a]["stage"] == "scored"}


def test_scores_show_every_digit():
    from app.views.detail import RankingTable, display_rows, format_score

    values = [1662.4216, 1410.8136, 1.2345678e36, -3.25, 0.00012345, None]
    texts_ = [format_score(v) for v in values]
    assert texts_[:3] == ["1662.42", "1410.81", "1.23457e+36"] and texts_[-1] == ""
    for v, t in zip(values[:-1], texts_):
        assert float(t) == pytest.approx(v, rel=1e-5)  # nothing cut: the text reads back
    rows = [{"architecture_id": 1, "index": 7, "arch": "|a~0|", "position": 0, "stage": "scored",
             "score": -0.5, "rank": 1, "accuracy": 77.444, "eval": None, "error": None,
             "synflow score": 1.2345678e36, "snip score": 1662.4216}]
    [shown] = display_rows(rows, RankingTable(("synflow", "snip"), tuple(rows)))
    assert shown == {"rank": "1", "index": "7", "architecture": "|a~0|", "synflow score": "1.23457e+36",
                     "snip score": "1662.42", "ensemble score": "-0.5", "accuracy (%)": "77.44",
                     "stage": "scored", "eval": "", "position": "0"}


def test_headline_is_the_found_architectures_test_accuracy(store):
    from app.views import detail
    from tasks.api import search_progress

    _, ids = store
    p = search_progress(ids["done"])
    config = detail.search_config(ids["done"])
    figures = {m.label: m.value for m in detail.headline(p, config)}
    first = detail.headline(p, config)[0]
    assert first.label == "test accuracy, 200 epochs (%)"
    assert first.value == f"{p['best']['test_acc']['cifar10']:.2f}"
    assert figures["percentile"] == f"{p['best']['percentile']:.1f}"
    assert figures["12-epoch validation (look-up, %)"] == f"{p['best']['accuracy']:.2f}"
    trained = detail.headline(p, {**config, "eval": "train", "epochs": 30})
    assert trained[2].label == "test after 30 epochs trained (%)"
    running = detail.headline(search_progress(ids["running"]), config)
    assert running[0].value == "-" and running[1].value == "-"


def test_search_detail_headline_and_one_sort_one_export(store):
    _, ids = store
    at = page("3_Search_detail.py", search=str(ids["done"]))
    no_exception(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["test accuracy, 200 epochs (%)"] != "-" and "best accuracy (%)" not in metrics
    assert "12-epoch validation (look-up, %)" in metrics
    assert "scored/s" not in metrics  # a done search has no pace
    # no grid with its own header sort and CSV of the page: the table is static, "Sort by" and
    # the Export buttons cover the whole filtered ranking
    assert len(at.dataframe) == 0 and len(at.table) == 1
    assert [b.proto.label for b in at.get("download_button")] == ["Export CSV", "Export JSON"]
    at.selectbox(key="rk-sort").set_value("score")
    at.toggle(key="rk-desc").set_value(False).run()
    shown = at.table[0].value
    assert [float(v) for v in shown["synflow score"]] == sorted(float(v) for v in shown["synflow score"])


def test_live_search_detail_shows_scores_as_they_come(live):
    at = page("3_Search_detail.py", search=str(live["ensemble"]))
    no_exception(at)
    shown = at.table[0].value
    assert {"synflow score", "snip score", "params score", "ensemble score"} <= set(shown.columns)
    assert (shown["ensemble score"] != "").sum() == 3 and "1.3e+36" in set(shown["synflow score"])
    assert not any("No scores yet" in t for t in texts(at, "info"))
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["scored/s"] != "-"
    # the headline's architecture while it runs is the ranking's first: the ensemble's leader,
    # not synflow's best alone
    from app.views import detail

    table = detail.ranking_table(live["ensemble"])
    synflow_best = max(table.rows, key=lambda r: r["synflow score"] or 0.0)
    assert metrics["index"] == str(detail.leader(table)["index"]) != str(synflow_best["index"])
    single = page("3_Search_detail.py", search=str(live["single"]))
    no_exception(single)
    assert single.table[0].value["synflow score"].tolist()[:3] == ["1.23457e+36", "1662.42", "1410.81"]


def test_pace_counts_only_what_the_search_scored(live):
    from db.models import utcnow
    from tasks.pace import pace, search_pace

    started = live["started"]
    now = utcnow()
    ensemble = search_pace(live["ensemble"])
    elapsed = (now - started).total_seconds()
    # 2-5 were scored since the start (0, 1 were cache hits); 4 of 8 are scored, 4 left
    assert ensemble.rate == pytest.approx(4 / elapsed, rel=0.05)
    assert ensemble.eta_seconds == pytest.approx(4 / ensemble.rate)
    for status, stage in (("cancelled", "score"), ("failed", "score"), ("done", "done"),
                          ("running", "evaluate")):
        assert pace(status, stage, 8, 3, 3, started, now).rate is None
    assert pace("running", "score", 8, 2, 0, started, now).eta_seconds is None  # cache hits only so far
    assert search_pace(live["cancelled"]).rate is None


def test_pace_of_strategies_without_proxies(live):
    """NASI's pace is its optimisation steps, random search's its evaluations (neither scores an
    architecture); `knas status` (tasks.api) and the pages show the same figures."""
    from db.models import utcnow
    from tasks.api import search_progress
    from tasks.pace import search_pace

    elapsed = (utcnow() - live["started"]).total_seconds()
    nasi, random = search_pace(live["nasi"]), search_pace(live["random"])
    # 25 steps since the first report (step 1), 74 left; 4 evaluations since the first, 5 left
    assert (nasi.unit, random.unit) == ("steps", "evaluated")
    assert nasi.rate == pytest.approx(25 / elapsed, rel=0.05)
    assert nasi.eta_seconds == pytest.approx(74 / nasi.rate)
    assert random.rate == pytest.approx(4 / elapsed, rel=0.05)
    assert random.eta_seconds == pytest.approx(5 / random.rate)
    shown = search_progress(live["nasi"])
    assert (shown["rate_unit"], shown["rate"]) == ("steps", pytest.approx(nasi.rate, rel=0.05))
    assert search_progress(live["cancelled"])["rate"] is None


def test_knas_status_names_the_unit_of_the_rate(live, capsys):
    import argparse

    from knas_cli.workers import run_status

    for search, unit in (("nasi", "steps/s"), ("random", "evaluated/s"), ("ensemble", "scored/s")):
        assert run_status(argparse.Namespace(id=live[search], json=False)) == 0
        line = capsys.readouterr().out.splitlines()[0]
        assert re.search(rf", \d+\.\d\d {unit}, ETA \d+ s$", line), line
    run_status(argparse.Namespace(id=live["cancelled"], json=False))
    assert capsys.readouterr().out.splitlines()[0].endswith(", -, ETA -")


def test_search_detail_names_the_pace_of_each_strategy(live):
    nasi = page("3_Search_detail.py", search=str(live["nasi"]))
    no_exception(nasi)
    metrics = {m.label: m.value for m in nasi.metric}
    assert metrics["steps/s"] != "-" and metrics["ETA"].endswith(" s")
    assert nasi.get("progress")[0].proto.text == "NASI steps 26/100, evaluated 0"
    random = page("3_Search_detail.py", search=str(live["random"]))
    assert {m.label: m.value for m in random.metric}["evaluated/s"] != "-"


def test_ended_searches_show_where_they_ended(live):
    from app.views.searches import overview_rows

    rows = {r["id"]: r for r in overview_rows()}
    cancelled, failed = rows[live["cancelled"]], rows[live["failed"]]
    assert (cancelled["status"], cancelled["stage"], cancelled["rate"], cancelled["eta_s"]) == \
        ("cancelled", "score", None, None)
    assert (failed["status"], failed["stage"]) == ("failed", "not started")
    assert rows[live["ensemble"]]["rate"] is not None


def test_cancel_is_offered_only_for_searches_that_have_not_ended(store):
    _, ids = store
    at = page("1_Searches.py")
    at.selectbox(key="action-search").set_value(ids["done"]).run()
    no_exception(at)
    assert "Cancel" not in [b.label for b in at.button]
    assert any("nothing to cancel" in c for c in texts(at, "caption"))
    at.selectbox(key="action-search").set_value(ids["running"]).run()
    assert "Cancel" in [b.label for b in at.button]


def test_correlation_statistics_keep_set_ups_apart_with_intervals(live):
    """synflow was scored under two set-ups (seed 0: 6 architectures, seed 1: 3): one row each,
    never mixed, each with its n and confidence intervals."""
    from app.views import correlation
    from knas_core.stats import correlation_interval

    rows = [r for r in correlation.statistics_rows() if r["proxy"] == "synflow"]
    assert [r["n"] for r in rows] == [6, 3]
    assert ["seed 0" in rows[0]["setup"], "seed 1" in rows[1]["setup"]] == [True, True]
    assert all("images npz:seeded-live" in r["setup"] for r in rows)
    first = rows[0]
    interval = correlation_interval(first["kendall"], 6, "kendall")
    assert (first["kendall_low"], first["kendall_high"]) == interval
    assert first["spearman_low"] < first["spearman"] < first["spearman_high"]
    seeds = {correlation.parse_setup(r["setup_param"]).seed for r in rows}
    assert seeds == {0, 1}
    labels = {correlation.heatmap_label(r, rows) for r in rows}
    assert labels == {"synflow (seed 0)", "synflow (seed 1)"}
    names, rho, n, used = correlation.proxy_matrix("cifar10")
    values = live["values"]["ensemble"]
    both = {(a, b): sum(1 for x in values[a] if values[a][x] is not None and values[b].get(x) is not None)
            for a in names for b in names}
    assert [[n[i, j] for j in range(len(names))] for i in range(len(names))] == \
        [[both[(a, b)] for b in names] for a in names]
    assert n[names.index("synflow"), names.index("params")] == 3 < n[names.index("synflow")].max()
    assert used["synflow"].seed == 0  # the set-up with the most scores, and the caption says so


def test_correlation_against_12_epoch_validation_has_no_published_marks(store):
    from app.views import correlation

    rows = correlation.statistics_rows("valid_12ep")
    assert rows and all(r["published_spearman"] is None for r in rows)
    fig = correlation.scatter_figure(correlation.scatter_rows("synflow", "cifar10", "valid_12ep"),
                                     "synflow", "cifar10", metric="valid_12ep")
    assert fig.layout.yaxis.title.text == "cifar10 12-epoch valid accuracy (%)"
    assert "12-epoch valid" in fig.layout.title.text
    at = page("4_Correlation.py", proxy="synflow", dataset="cifar10", metric="valid_12ep", log="1")
    no_exception(at)
    assert at.selectbox(key="co-metric").value == "valid_12ep" and at.toggle(key="co-log").value
    assert len(at.get("plotly_chart")) == 3  # scatter, heatmap, matrix: no published marks
    assert "published_spearman" not in at.dataframe[0].value.columns
    assert any("choose that ground truth" in c for c in texts(at, "caption"))
    at.selectbox(key="co-metric").set_value("test")
    at.toggle(key="co-log").set_value(False).run()
    assert (at.query_params["metric"], at.query_params["log"]) == ("test", "0")  # the URL follows
    assert len(at.get("plotly_chart")) == 4


def test_correlation_page_lets_the_set_up_be_chosen(live):
    from app.views import correlation

    at = page("4_Correlation.py", proxy="synflow", dataset="cifar10")
    no_exception(at)
    chooser = at.selectbox(key="co-setup-synflow-cifar10")
    assert len(chooser.options) == 2 and "(6 scores)" in chooser.options[0]
    assert any("n = 6 architectures" in c and "seed 0" in c for c in texts(at, "caption"))
    second = correlation.setups("synflow", "cifar10")[1][0]
    chooser.set_value(second).run()
    no_exception(at)
    assert any("n = 3 architectures" in c and "seed 1" in c for c in texts(at, "caption"))
    assert correlation.parse_setup(at.query_params["setup"]) == second
    again = page("4_Correlation.py", proxy="synflow", dataset="cifar10",
                 setup=correlation.setup_param(second))
    assert any("n = 3 architectures" in c for c in texts(again, "caption"))
