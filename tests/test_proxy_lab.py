"""The Proxy lab page (AppTest on a seeded SQLite store) and its data and figure functions."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.views import proxy_lab as lab
from db import discovery as repo
from db.session import session_scope

PAGE = str(Path(__file__).resolve().parents[1] / "app" / "screens" / "6_Proxy_lab.py")
FORMULA = "frob(sigmoid(logdet(sign(data_A_grad))))"
HISTORY = [(0, 0.21, -0.30, 0.18, "l1(data_Y)"), (1, 0.35, 0.02, 0.31, FORMULA),
           (2, 0.35, 0.12, 0.31, FORMULA)]


def _seed(url: str) -> dict[str, int]:
    from db.migrate import upgrade

    upgrade(url)
    with session_scope(url) as s:
        done = repo.create_run(s, {"archs": 20, "heldout": 30, "generations": 2, "images": 2,
                                   "batch_size": 16}, "seeded")
        for g, best, mean, held, formula in HISTORY:
            repo.record_generation(s, done, {"generation": g, "best_fitness": best, "mean_fitness": mean,
                                             "heldout_kendall": held, "best_formula": formula,
                                             "nonfinite_blocks": 3, "seconds": 1.5})
        done.finish("done", result={"formula": FORMULA, "train_kendall": 0.35,
                                              "heldout_kendall": 0.31})
        failed = repo.create_run(s, {"archs": 5, "heldout": 0, "generations": 1}, "broken")
        repo.set_stage(failed, "gather")
        failed.finish("failed", error="DataNotFoundError: no cifar10 images")
        return {"done": done.id, "failed": failed.id}


@pytest.fixture()
def sent(monkeypatch) -> list:
    """The arguments of every discovery task the page sends (nothing reaches a broker)."""
    from tasks import discovery as tasks_discovery

    messages: list = []
    monkeypatch.setattr("tasks.common.check_broker", lambda timeout=5.0: None)
    monkeypatch.setattr(tasks_discovery.discover, "apply_async", lambda args=None, **_: messages.append(args))
    return messages


@pytest.fixture()
def store(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'knas.db'}"
    ids = _seed(url)
    monkeypatch.setenv("KNAS_DATABASE_URL", url)
    yield url, ids
    from db.session import dispose_engine

    dispose_engine(url)


def test_data_functions(store):
    url, ids = store
    runs = lab.runs(url)
    assert [r["id"] for r in runs] == [ids["failed"], ids["done"]]
    assert runs[1]["status"] == "done" and runs[1]["generation"] == 2 and runs[1]["train_kendall"] == 0.35
    detail = lab.run_detail(ids["done"], url)
    assert detail["readable"] == "||sigmoid(logdet(sign(dL/dA[data])))||_F"
    assert [h["best_fitness"] for h in detail["history"]] == [0.21, 0.35, 0.35]
    assert lab.discovered(url) == []
    import uuid

    name = f"pl_{uuid.uuid4().hex[:8]}"
    assert lab.promote(ids["done"], name, url)["formula"] == FORMULA
    assert [(p["name"], p["run_id"], p["images"]) for p in lab.discovered(url)] == [(name, ids["done"], 2)]
    with pytest.raises(ValueError, match="no program yet"):
        with session_scope(url) as s:
            empty = repo.create_run(s, {"archs": 5}).id
        lab.promote(empty, "x_" + name, url)


def test_figures():
    fig = lab.fitness_figure([{"generation": g, "best_fitness": b, "mean_fitness": m, "heldout_kendall": h}
                              for g, b, m, h, _ in HISTORY])
    assert [t.name for t in fig.data] == ["best (train)", "mean (train)", "best (held-out)"]
    assert list(fig.data[0].y) == [0.21, 0.35, 0.35] and list(fig.data[2].y) == [0.18, 0.31, 0.31]
    tree = lab.tree_figure(FORMULA)
    assert list(tree.data[1].text) == ["frob", "sigmoid", "logdet", "sign", "dL/dA[data]"]
    assert list(tree.data[1].y) == [0, -1, -2, -3, -4]
    assert sum(v is None for v in tree.data[0].x) == 4  # one line segment per edge


def test_page_shows_a_run_and_promotes_its_program(store):
    url, ids = store
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value == "Proxy lab"
    assert at.subheader[0].value == f"#{ids['failed']} broken · failed · stage gather"  # the newest first
    assert at.query_params["run"] == str(ids["failed"])  # the address names the run shown
    assert "DataNotFoundError" in at.error[0].value
    at.selectbox(key="pl-select").set_value(ids["done"]).run()
    assert at.query_params["run"] == str(ids["done"])
    assert "Status" not in [m.label for m in at.metric]  # in the heading: a metric cut it to "qu..."
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Train Kendall tau"] == "0.350" and metrics["Held-out Kendall tau"] == "0.310"
    assert metrics["Generation"] == "2 / 2"
    assert [c.value for c in at.code] == ["||sigmoid(logdet(sign(dL/dA[data])))||_F", FORMULA]
    assert len(at.get("plotly_chart")) == 2  # fitness and tree
    import uuid

    name = f"lab_{uuid.uuid4().hex[:8]}"
    at.text_input(key="pl-proxy-name").input(name)
    at.button[-1].click().run()  # the promote form's submit button
    assert not at.exception
    assert any(name in s.value for s in at.success)
    assert [p["name"] for p in lab.discovered(url)] == [name]
    at.text_input(key="pl-proxy-name").input("bad name!")
    at.button[-1].click().run()
    assert any("Not promoted" in e.value for e in at.error)


def test_page_starts_a_run(store, sent):
    url, ids = store
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.query_params["run"] = str(ids["done"])
    at.run()
    assert at.selectbox(key="pl-select").value == ids["done"]  # a link opens its run
    at.number_input(key="pl-archs").set_value(12)
    at.number_input(key="pl-heldout").set_value(8)
    at.text_input(key="pl-name").input("from the page")
    at.button[0].click().run()
    assert not at.exception
    run = lab.runs(url)[0]
    assert sent == [[run["id"]]] and run["name"] == "from the page" and run["status"] == "queued"
    assert any(f"run {run['id']} queued" in s.value for s in at.success)
    # the new run is the one shown (not the previous one beside its message), and in the address
    assert at.selectbox(key="pl-select").value == run["id"] and at.query_params["run"] == str(run["id"])
    assert at.subheader[0].value.startswith(f"#{run['id']} from the page · queued")


def test_page_shows_a_refused_field_under_its_widget(store, sent):
    url, _ = store
    before = len(lab.runs(url))
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.number_input(key="pl-images").set_value(40)  # more than the batch of 16 images
    at.button[0].click().run()
    assert not at.exception and sent == [] and len(lab.runs(url)) == before
    from app.views.markup import md_text

    messages = [e.value for e in at.error]
    assert md_text("must lie in 1..16 (the batch size), got 40") in messages  # under its widget
    assert any(m.startswith("Not started") for m in messages) and not any("images:" in m for m in messages)
    at.number_input(key="pl-images").set_value(2)
    at.button[0].click().run()
    assert not at.exception and len(sent) == 1
    assert not any(e.value.startswith(("Not started", "must")) for e in at.error)


def test_page_fails_closed_without_the_access_check(store, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "app.ui", None)  # `from app.ui import writable` raises ImportError
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    start = next(b for b in at.button if b.label == "Start")
    assert start.disabled


def test_page_renders_stored_text_as_text(store):
    url, ids = store
    pixel = "![px](http://127.0.0.1:8799/pixel.png)"
    with session_scope(url) as s:
        run = repo.create_run(s, {"archs": 5, "heldout": 0, "generations": 1}, pixel)
        run.finish("failed", error=f"ValueError: {pixel}")
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    failed = [e.value for e in at.error if "ValueError" in e.value]
    assert failed and all("![" not in e and "](" not in e for e in failed), failed


@pytest.mark.parametrize(("field", "key", "value", "words"), [
    ("generations", "pl-gens", 0, "nothing is evolved"),
    ("heldout", "pl-heldout", 0, "nothing is held out"),
    ("archs", "pl-archs", 0, "must be at least 3, got 0"),  # the widget has no bounds: 0 reaches the check
])
def test_page_refuses_a_run_that_measures_nothing(store, sent, field, key, value, words):
    url, _ = store
    before = len(lab.runs(url))
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.number_input(key=key).set_value(value)
    at.button[0].click().run()
    assert not at.exception and sent == [] and len(lab.runs(url)) == before
    from app.views.markup import md_text

    messages = [e.value for e in at.error]
    assert any(md_text(words) in m for m in messages), messages  # under its widget, as text
    assert "Not started: see the message under each field marked above." in messages


def test_lab_problems_name_the_lab_minimums():
    assert lab.lab_problems({"generations": 1, "heldout": 2}) == []
    problems = dict(lab.lab_problems({"generations": 0, "heldout": 1, "archs": 0}))
    assert set(problems) == {"generations", "heldout"}  # archs is the config's own check
    assert problems["heldout"].startswith("must be at least 2 here, got 1")
    assert lab.lab_problems({"generations": None, "heldout": "x"}) == []  # left to the config's check
    with pytest.raises(lab.ConfigError) as refused:
        lab.start_run({"archs": 1, "generations": 0})
    assert {f for f, _ in refused.value.problems} == {"archs", "generations"}


def test_promotion_concerns():
    done = {"status": "done", "train_kendall": 0.35, "heldout_kendall": 0.31}
    assert lab.promotion_concerns(done) == []
    [inverse] = lab.promotion_concerns({**done, "train_kendall": -1 / 3})
    assert "training Kendall tau is -0.333" in inverse and "in reverse" in inverse
    [chance] = lab.promotion_concerns({**done, "heldout_kendall": 0.0})
    assert "held-out Kendall tau is 0.000" in chance and "no better than chance" in chance
    assert "not measured" in lab.promotion_concerns({**done, "heldout_kendall": None})[0]
    assert "still running" in lab.promotion_concerns({**done, "status": "running"})[0]
    assert "ended cancelled" in lab.promotion_concerns({**done, "status": "cancelled"})[0]


def test_page_asks_before_promoting_a_program_that_ranks_in_reverse(store):
    import uuid

    url, _ = store
    with session_scope(url) as s:
        run = repo.create_run(s, {"archs": 20, "heldout": 30, "generations": 1}, "inverse")
        repo.record_generation(s, run, {"generation": 0, "best_fitness": -0.333, "mean_fitness": -0.5,
                                        "heldout_kendall": -0.2, "best_formula": FORMULA,
                                        "nonfinite_blocks": 0, "seconds": 1.0})
        run.finish("done", result={"formula": FORMULA, "train_kendall": -0.333, "heldout_kendall": -0.2})
        run_id = run.id
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.query_params["run"] = str(run_id)
    at.run()
    assert any("training Kendall tau is -0.333" in w.value for w in at.warning)
    name = f"inv_{uuid.uuid4().hex[:8]}"
    at.text_input(key="pl-proxy-name").input(name)
    at.button[-1].click().run()
    assert not at.exception
    assert any(e.value.startswith("Not promoted") and "-0.333" in e.value for e in at.error)
    assert name not in [p["name"] for p in lab.discovered(url)]  # nothing promoted without a word
    at.checkbox(key="pl-promote-anyway").check()
    at.button[-1].click().run()
    assert any(name in s.value for s in at.success)
    assert name in [p["name"] for p in lab.discovered(url)]
    with pytest.raises(lab.PromotionRefused, match="-0.333"):
        lab.promote(run_id, "x" + name, url)
