"""Few-shot calibration: the model learns a known ranking and not a shuffled one, reloads to the
same predictions, becomes a proxy that names its labels, and ``knas calibrate`` refuses bad input
with one line (in-process ``main``)."""

from __future__ import annotations

import json
import zipfile
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy.stats import kendalltau

from knas_cli import main as cli
from knas_core.calibration import (
    FORMAT,
    PRIOR_BELOW,
    CalibrationError,
    EnsemblePrior,
    LabelSource,
    fit_calibration,
    load_model,
    read_header,
    save_calibrated,
    save_model,
    winsorised,
)
from knas_core.cell_features import (
    cell_encoding,
    cell_structure,
    live_edges,
    live_paths,
    path_encoding,
    path_names,
    structure_names,
    summary_and_path_names,
    summary_and_paths,
)
from knas_core.gaussian_process import GaussianProcess, column_groups, matern32
from knas_core.proxies import PROXIES, Proxy, get_proxy
from knas_core.scoring import Scorer
from knas_core.search.config import SearchConfig
from knas_core.search.ensemble import log_rank_aggregate
from knas_core.spaces.nb201 import all_archs_lexicographic
from knas_core.warping import LAMBDAS, box_cox_error

from .conftest import SMALL

ALL_ARCHS = list(all_archs_lexicographic())


def synthetic(n: int, seed: int = 0):
    """``n`` cells with made-up params/synflow values and a label that is a known function of
    them: log10(params) + the cell's 3x3 convolutions - 2 if the input->output edge is none."""
    rng = np.random.default_rng(seed)
    archs = [ALL_ARCHS[i] for i in rng.choice(len(ALL_ARCHS), n, replace=False)]
    params = 10 ** rng.uniform(4, 7, n)  # spans three orders of magnitude: read as log10
    synflow = rng.normal(0, 1, n)  # noise the model should learn to ignore
    conv = np.array([cell_encoding(a).reshape(6, 5)[:, 3].sum() for a in archs])
    cut = np.array([cell_encoding(a)[3 * 5 + 0] for a in archs])  # edge 0->3 is 'none'
    label = np.log10(params) + conv - 2 * cut
    return archs, {"params": params, "synflow": synflow}, label


def fit_and_rank(labels_of, k: int = 100, n: int = 300, prior: bool = True, method: str = "gp"):
    archs, values, label = synthetic(n)
    y = labels_of(label)
    model = fit_calibration(archs[:k], {p: v[:k] for p, v in values.items()}, y[:k], prior=prior,
                            labels_from=LabelSource("file", "synthetic.csv", "accuracy"), method=method)
    predicted = model.predict(archs[k:], {p: v[k:] for p, v in values.items()})
    return model, kendalltau(predicted, label[k:]).statistic


def test_a_known_function_of_the_features_is_ranked_well():
    model, tau = fit_and_rank(lambda y: y)
    assert tau > 0.7
    assert list(model.features.offsets) == ["params"]  # three orders of magnitude


@pytest.mark.parametrize("method", ["gp", "trees"])
def test_shuffled_labels_teach_no_ranking(method):
    """Without the prior (which ranks by the proxies whatever the labels say), everything the
    model knows comes from the labels: shuffled, they teach nothing (on average over shuffles;
    one shuffle can correlate with a feature by chance), and the Gaussian process finds no
    evidence of structure in them, unlike in the true labels."""
    rng = np.random.default_rng(1)
    shuffles = 3 if method == "gp" else 1  # the trees' cross-validated fit is the slow one
    fits = [fit_and_rank(lambda y: rng.permutation(y), prior=False, method=method) for _ in range(shuffles)]
    assert abs(np.mean([tau for _, tau in fits])) < (0.1 if shuffles > 1 else 0.15)
    if method == "gp":
        # nats over pure noise: a shuffle finds a few by chance in 44 cell columns (up to 6.5
        # in 6 shuffles of this seed), the true labels about 70
        assert max(model.provenance.fit["evidence"] for model, _ in fits) < 10
        assert fit_and_rank(lambda y: y, prior=False)[0].provenance.fit["evidence"] > 30


@pytest.mark.parametrize("method", ["gp", "trees"])
def test_without_a_prior_the_model_still_learns_the_function(method):
    archs, values, label = synthetic(300)
    model = fit_calibration(archs[:100], {p: v[:100] for p, v in values.items()}, label[:100], prior=False,
                            method=method)
    predicted = model.predict(archs[100:], {p: v[100:] for p, v in values.items()})
    assert model.prior is None and model.provenance.fit["method"] == method
    if method == "trees":
        assert model.provenance.fit["rounds"] > 0
    else:  # the fitted noise is well below the signal: the labels are a function of the features
        assert model.provenance.fit["noise"] < model.provenance.fit["signal"]
    assert kendalltau(predicted, label[100:]).statistic > 0.7


def test_the_prior_is_the_log_rank_ensemble_of_its_population():
    _, values, _ = synthetic(300)
    prior = EnsemblePrior.fit(["params", "synflow"], values)
    ensemble = log_rank_aggregate({p: list(v) for p, v in values.items()})
    assert kendalltau(prior(values), ensemble).statistic > 0.99
    # a lower-is-better member is turned round, as the ensemble does
    PROXIES.add("lower_test", Proxy("lower_test", lambda model, batch: 0.0, higher_is_better=False))
    try:
        flipped = {"params": values["params"], "lower_test": -values["synflow"]}
        assert np.allclose(EnsemblePrior.fit(["params", "lower_test"], flipped)(flipped), prior(values))
    finally:
        PROXIES.remove("lower_test")


@pytest.mark.parametrize("method", ["gp", "trees"])
def test_the_saved_model_reloads_and_predicts_identically(tmp_path, method):
    archs, values, label = synthetic(60)
    model = fit_calibration(archs[:40], {p: v[:40] for p, v in values.items()}, label[:40], method=method)
    path = save_model(model, tmp_path / "m.calib.zip")
    again = load_model(path)
    rest = {p: v[40:] for p, v in values.items()}
    assert np.array_equal(model.predict(archs[40:], rest), again.predict(archs[40:], rest))
    assert again.provenance == model.provenance
    assert again.features == model.features and again.prior == model.prior
    assert (again.path_view is not None) == (method == "gp")
    with zipfile.ZipFile(path) as z:  # a Gaussian process is saved as arrays, not a pickle
        assert ("model.npz" in z.namelist()) == ("path_view.npz" in z.namelist()) == (method == "gp")


def test_the_model_is_the_mean_of_its_process_and_the_path_view():
    """The default process averages its prediction with a second process that reads the cell
    alone (structure summary and path encoding: no proxy, no prior); ``path_view=False`` and
    the trees have none."""
    archs, values, label = synthetic(80)
    train = {p: v[:60] for p, v in values.items()}
    rest = {p: v[60:] for p, v in values.items()}
    model = fit_calibration(archs[:60], train, label[:60])
    view = model.path_view
    assert view is not None and view.features.proxies == () and view.features.cell == "summary_paths"
    single = replace(model, path_view=None).predict(archs[60:], rest)
    assert np.allclose(model.predict(archs[60:], rest), (single + view.predict(archs[60:])) / 2)
    assert not np.allclose(single, view.predict(archs[60:]))
    # the labels (2-13) read as percent accuracies: the view learns their warped error, with the
    # power it records, and its output is put in the ranks' standard units
    lam = view.how["box_cox_lambda"]
    assert view.how["error_ceiling"] == 100.0 and lam in LAMBDAS
    assert view.regressor.y_mean == pytest.approx(box_cox_error(label[:60], lam, 100.0).mean())
    raw = view.regressor.predict(view.features.matrix(archs[60:], {}))
    z = (raw - view.regressor.y_mean) / view.regressor.y_scale
    assert np.allclose(view.predict(archs[60:]), 30.5 / 60 + np.std(np.arange(1, 61) / 60) * z)
    assert "averaged with a Gaussian process on the cell's structure summary" in model.describe()
    alone = fit_calibration(archs[:60], train, label[:60], path_view=False)
    assert alone.path_view is None and np.allclose(alone.predict(archs[60:], rest), single)
    assert fit_calibration(archs[:60], train, label[:60], method="trees").path_view is None


@pytest.mark.parametrize("shift, warped", [(0.0, True), (-10.0, False)])
def test_only_accuracy_labels_are_warped_and_both_processes_learn_the_labels(shift, warped):
    """From PRIOR_BELOW labels on, both processes learn the labels rather than their ranks: as
    accuracies (here 2-13, read as percent) through the Box-Cox-warped error; labels that cannot
    be accuracies (some negative) winsorised for the view and as ranks for the main process.
    Either way the model ranks the held-out cells by the known function."""
    archs, values, label = synthetic(160)
    y = label + shift
    model = fit_calibration(archs[:100], {p: v[:100] for p, v in values.items()}, y[:100])
    fit = model.provenance.fit
    assert model.prior is None and ("box_cox_lambda" in fit) == warped == (model.rank_units is not None)
    assert ("box_cox_lambda" in fit["path_view"]) == warped
    assert ("Box-Cox" in model.describe()) == warped
    if warped:
        warped_y = box_cox_error(y[:100], fit["box_cox_lambda"], 100.0)
        assert model.regressor.y_mean == pytest.approx(warped_y.mean())
        assert model.rank_units == pytest.approx((50.5 / 100, np.std(np.arange(1, 101) / 100)))
    else:
        assert model.path_view.regressor.y_mean == pytest.approx(winsorised(y[:100]).mean())
    rest = {p: v[100:] for p, v in values.items()}
    assert kendalltau(model.predict(archs[100:], rest), label[100:]).statistic > 0.7
    assert not warped or "box_cox_lambda" not in fit_calibration(
        archs[:100], {p: v[:100] for p, v in values.items()}, y[:100], warp=False).provenance.fit


def test_winsorising_raises_only_the_lowest_labels_to_the_percentile():
    labels = np.array([10.0, 60.0, 85.0, 86.0, 88.0, 90.0, 91.0, 92.0, 93.0, 93.5])
    out = winsorised(labels)  # the 10th percentile of ten: 0.9 of the way from 10 to 60
    assert out[0] == pytest.approx(55.0) and np.array_equal(out[1:], labels[1:])


def test_a_format_3_file_still_loads_as_its_single_process(tmp_path):
    """Format 3 held one process on the same columns as this version's: it predicts as before."""
    archs, values, label = synthetic(40)
    model = fit_calibration(archs[:30], {p: v[:30] for p, v in values.items()}, label[:30], path_view=False)
    path = save_model(model, tmp_path / "three.calib.zip")
    header = read_header(path)
    with zipfile.ZipFile(path) as z:
        arrays = z.read("model.npz")
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("calibration.json", json.dumps({**{k: v for k, v in header.items() if k != "path_view"},
                                                  "format": 3}))
        z.writestr("model.npz", arrays)
    again = load_model(path)
    rest = {p: v[30:] for p, v in values.items()}
    assert again.path_view is None
    assert np.array_equal(again.predict(archs[30:], rest), model.predict(archs[30:], rest))


@pytest.mark.parametrize("old, what", [(1, "gradient-boosted trees"), (2, "10-column structure summary")])
def test_an_earlier_format_is_refused_with_the_command_to_refit(tmp_path, old, what):
    """Format 1 held trees, format 2 a process on fewer structure columns than this version
    computes: either would predict from the wrong columns, so it is refused."""
    archs, values, label = synthetic(30)
    path = save_model(fit_calibration(archs, values, label), tmp_path / "old.calib.zip")
    header = read_header(path)
    assert header["format"] == FORMAT == 5
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("calibration.json", json.dumps({**header, "format": old}))
    with pytest.raises(CalibrationError, match=rf"format {old}: .*{what}.*Fit it again with knas"):
        load_model(path)


@pytest.mark.parametrize("k, method, starts_from_prior", [
    (PRIOR_BELOW - 1, "gp", True), (PRIOR_BELOW, "gp", False), (PRIOR_BELOW, "trees", True)])
def test_by_default_the_process_starts_from_the_prior_only_below_the_threshold(k, method, starts_from_prior):
    archs, values, label = synthetic(k)
    model = fit_calibration(archs, values, label, method=method)
    assert (model.prior is not None) == starts_from_prior == model.provenance.fit["prior"]
    assert ("log-rank ensemble" in model.describe()) == starts_from_prior


# --- the cell's features, on hand-worked cells --------------------------------------------------

#: 0->1 conv3x3, 0->2 conv1x1, 1->2 avg_pool, 0->3 skip, 1->3 none, 2->3 conv3x3: live paths
#: 0->3 (skip), 0->2->3 (conv1x1, conv3x3) and 0->1->2->3 (conv3x3, avg_pool, conv3x3).
WORKED = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
#: Only 0->3 (skip) reaches the output; the 3x3 convolution on 0->1 is dead (1->2, 1->3 none).
DEAD_CONV = "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"
#: Every path holds a none: the output is cut off from the input.
CUT = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|"


def test_live_paths_and_edges_of_hand_worked_cells():
    assert live_paths(WORKED) == [("skip_connect",), ("nor_conv_1x1", "nor_conv_3x3"),
                                  ("nor_conv_3x3", "avg_pool_3x3", "nor_conv_3x3")]
    assert live_edges(WORKED) == (True, True, True, True, False, True)
    assert live_paths(DEAD_CONV) == [("skip_connect",)]
    assert live_edges(DEAD_CONV) == (False, False, False, True, False, False)
    assert live_paths(CUT) == [] and not any(live_edges(CUT))


def test_the_path_encoding_has_one_indicator_per_live_path():
    """BANANAS (White et al., AAAI 2021): 4 + 16 + 64 columns, one per sequence of operations."""
    assert len(path_names()) == 84
    on = [name for name, v in zip(path_names(), path_encoding(WORKED)) if v]
    assert on == ["path:skip_connect", "path:nor_conv_1x1>nor_conv_3x3",
                  "path:nor_conv_3x3>avg_pool_3x3>nor_conv_3x3"]
    assert path_encoding(CUT).sum() == 0


def test_the_cell_structure_of_hand_worked_cells():
    def named(arch):
        return {n: v for n, v in zip(structure_names(), cell_structure(arch), strict=True) if v}

    assert named(WORKED) == {
        "live skip_connect": 1, "live nor_conv_1x1": 1, "live nor_conv_3x3": 2, "live avg_pool_3x3": 1,
        "live paths": 3, "most convs on a path": 2, "most 3x3 convs on a path": 2, "longest path": 3,
        # fewest convs on a path: 0 (the skip), so absent
        "conv-free paths": 1, "identity path": 1,  # the skip; the middle path pools, the others do not
        "live 0->1:nor_conv_3x3": 1, "live 0->2:nor_conv_1x1": 1, "live 1->2:avg_pool_3x3": 1,
        "live 0->3:skip_connect": 1, "live 1->3:none": 1, "live 2->3:nor_conv_3x3": 1}
    # the dead convolution counts nowhere: the cell reads as the bare skip 0->3
    skip_only = "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"
    assert np.array_equal(cell_structure(DEAD_CONV), cell_structure(skip_only))
    assert not np.array_equal(cell_encoding(DEAD_CONV), cell_encoding(skip_only))
    cut = named(CUT)
    assert cut["cut off"] == 1 and "live paths" not in cut and "live nor_conv_3x3" not in cut
    assert "every path pools" not in cut and "conv-free paths" not in cut  # no path: nothing passes


def test_the_cell_structure_says_when_every_path_pools_first():
    """Live paths: 0->3 (a pool alone) and 0->1->2->3 (pool, 3x3, 1x1); 0->1->3 and 0->2->3 are
    dead. Every path pools and starts with the pool; one holds no convolution; none is an
    identity. Moving the long path's pool after its 3x3 keeps "every path pools" only."""
    pooled = "|avg_pool_3x3~0|+|none~0|nor_conv_3x3~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|"
    assert live_paths(pooled) == [("avg_pool_3x3",), ("avg_pool_3x3", "nor_conv_3x3", "nor_conv_1x1")]
    named = dict(zip(structure_names(), cell_structure(pooled), strict=True))
    assert (named["conv-free paths"], named["identity path"]) == (1, 0)
    assert (named["every path pools"], named["every path starts with a pool"]) == (1, 1)
    later = "|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|"
    named = dict(zip(structure_names(), cell_structure(later), strict=True))
    assert (named["every path pools"], named["every path starts with a pool"]) == (1, 0)


def test_the_path_view_reads_one_graph_with_nodes_1_and_2_swapped_alike():
    """With edge 1->2 none, swapping nodes 1 and 2 gives the same graph: the one-hot differs (the
    operations sit on other edges), the summary and path encoding do not."""
    cell = "|nor_conv_3x3~0|+|avg_pool_3x3~0|none~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|"
    swapped = "|avg_pool_3x3~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    assert not np.array_equal(cell_encoding(cell), cell_encoding(swapped))
    assert np.array_equal(summary_and_paths(cell), summary_and_paths(swapped))
    on = [n for n, v in zip(summary_and_path_names(), summary_and_paths(cell), strict=True) if v]
    assert on[-3:] == ["path:skip_connect", "path:nor_conv_3x3>nor_conv_1x1",
                       "path:avg_pool_3x3>nor_conv_3x3"]


# --- the Gaussian process -------------------------------------------------------------------------


def test_matern32_and_column_groups():
    assert matern32(np.array([0.0]))[0] == 1.0
    r = 0.7
    assert matern32(np.array([r]))[0] == pytest.approx((1 + np.sqrt(3) * r) * np.exp(-np.sqrt(3) * r))
    assert column_groups([2, 0, 3]) == ((0, 1), (2, 3, 4))


def test_the_gaussian_process_learns_each_group_s_own_length_scale():
    """y depends smoothly on column 0 and not on columns 1-2: the noise column group gets the
    longer length scale, and the fit interpolates a held-out point."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, (80, 3))
    y = np.sin(x[:, 0])
    gp = GaussianProcess(((0,), (1, 2))).fit(x, y)
    short, long = gp.hyperparameters()["length_scales"]
    assert long > 3 * short
    test = rng.uniform(-1.5, 1.5, (50, 3))
    assert np.abs(gp.predict(test) - np.sin(test[:, 0])).max() < 0.1


@pytest.mark.parametrize("k, labels, message", [
    (3, [1.0, 2.0, 3.0], "at least 5"),
    (6, [50.0] * 6, "every label is the same"),
    (6, [1.0, 2.0, float("nan"), 4.0, 5.0, 6.0], "not a finite number"),
])
def test_fitting_refuses_what_cannot_be_learned(k, labels, message):
    archs, values, _ = synthetic(k)
    with pytest.raises(CalibrationError, match=message):
        fit_calibration(archs, values, labels)


@pytest.fixture()
def state(tmp_path, monkeypatch):
    """A fresh state folder; the calibrated proxies registered by a test are removed after it."""
    monkeypatch.setenv("KNAS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    before = set(PROXIES.names())
    yield tmp_path
    for name in set(PROXIES.names()) - before:
        PROXIES.remove(name)


@pytest.fixture(scope="module")
def data_free():
    """A model on params and flops (data-free, cheap) of 30 real small networks: made-up
    labels, real member names, so that the Scorer can compute its members."""
    archs, _, label = synthetic(30, seed=2)
    scorer = Scorer("cifar10", batch_size=8, model_options=SMALL)
    rows = [scorer.score(a, ["params", "flops"]).results for a in archs]
    values = {p: np.array([r[p].value for r in rows]) for p in ("params", "flops")}
    source = LabelSource("file", "lab-accuracies.csv", "accuracy")
    return fit_calibration(archs, values, label, labels_from=source, scores={"batch_size": 8}), scorer


def test_a_saved_model_is_a_proxy_that_names_its_labels_and_k(state, data_free):
    model, scorer = data_free
    save_calibrated(model, "lab")
    proxy = get_proxy("calibrated:lab")
    for text in (proxy.summary, proxy.reference):
        assert "trained on 30 labels" in text and "lab-accuracies.csv" in text
    assert proxy.members == ("params", "flops")
    arch = ALL_ARCHS[123]
    scores = scorer.score(arch, ["calibrated:lab", "params"]).results
    members = scorer.score(arch, ["params", "flops"]).results
    expected = model.predict_one(arch, {p: r.value for p, r in members.items()})
    assert scores["calibrated:lab"].value == expected
    assert scores["params"].value == members["params"].value
    assert scorer.score_one(arch, "calibrated:lab").value == expected
    # a search config takes it like any proxy
    assert SearchConfig.parse({"proxy": "calibrated:lab", "samples": 5, "topk": 2}).proxy == "calibrated:lab"


def test_a_saved_name_is_not_overwritten_unless_asked(state, data_free):
    model, _ = data_free
    save_calibrated(model, "once")
    with pytest.raises(CalibrationError, match="exists"):
        save_calibrated(model, "once")
    save_calibrated(model, "once", replace=True)


def test_an_unknown_calibrated_name_lists_the_saved_ones(state, data_free):
    model, _ = data_free
    save_calibrated(model, "mine")
    with pytest.raises(Exception, match=r"no calibration 'other'.*saved: calibrated:mine"):
        get_proxy("calibrated:other")


# --- the command --------------------------------------------------------------------------------


@pytest.fixture()
def scores_file(state, truth):
    """A long-format scores file of 60 architectures (params from the table, a noisy synflow)."""
    rng = np.random.default_rng(0)
    indices = rng.choice(len(truth.frame), 60, replace=False)
    rows = []
    for i in indices:
        params = float(truth.frame.loc[i, "params_mb_cifar10"])
        rows.append({"index": i, "proxy": "params", "value": params, "dataset": "cifar10"})
        synflow = params * 1e3 + rng.uniform(0, 1)
        rows.append({"index": i, "proxy": "synflow", "value": synflow, "dataset": "cifar10"})
    path = state / "scores.csv.gz"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path, [int(i) for i in indices]


def test_calibrate_with_looked_up_labels_saves_a_proxy_and_ranks_the_rest(scores_file, capsys):
    path, indices = scores_file
    assert cli.main(["calibrate", "lab", "--scores", str(path), "--lookup", "20", "--out", "r.csv"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["proxy"] == "calibrated:lab" and out["k"] == 20 and out["ranked"] == 40
    assert "trained on 20 labels from the benchmark table look-up of cifar10_test_acc" in out["description"]
    ranking = pd.read_csv("r.csv")
    assert list(ranking.columns) == ["rank", "index", "arch", "predicted"]
    assert set(ranking["index"]) < set(indices) and ranking["predicted"].is_monotonic_decreasing
    assert get_proxy("calibrated:lab").members == ("params", "synflow")


def test_calibrate_with_a_labels_file(scores_file, truth, capsys):
    path, indices = scores_file
    labels = pd.DataFrame({"arch": [truth.frame.loc[i, "arch"] for i in indices[:12]],
                           "accuracy": np.arange(12.0)})
    labels.to_csv("labels.csv", index=False)
    assert cli.main(["calibrate", "mine", "--scores", str(path), "--labels", "labels.csv",
                     "--proxies", "params"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["k"] == 12 and out["ranked"] == 48 and "the user's file labels.csv" in out["description"]


BAD_ARCH = "|nor_conv_3x3~0|+|bad~0|none~1|+|none~0|none~1|none~2|"


@pytest.mark.parametrize("setup, argv, fragment", [
    ("labels_bad_arch", ["--labels", "labels.csv"], "row 3: unknown architecture"),
    ("labels_unscored", ["--labels", "labels.csv"], "have no scores in"),
    ("labels_text", ["--labels", "labels.csv"], "accuracy 'high' is not a number"),
    (None, ["--labels", "nope.csv"], "labels file 'nope.csv' not found"),
    (None, ["--lookup", "3"], "need at least 5 labelled architectures, got 3"),
    (None, ["--lookup", "60"], "--lookup must be between 1 and 59"),
    (None, ["--lookup", "10", "--proxies", "params,eznas"], "has no scores of eznas; it has params, synflow"),
    ("no_proxy_column", ["--lookup", "10"], "missing column(s) proxy"),
    (None, ["--lookup", "10", "--metric", "best"], "unknown metric 'best'"),
])
def test_calibrate_rejects_bad_input_with_one_line(scores_file, truth, capsys, setup, argv, fragment):
    path, indices = scores_file
    arch = lambda i: truth.frame.loc[i, "arch"]  # noqa: E731
    if setup == "labels_bad_arch":
        rows = [arch(indices[0]), BAD_ARCH]
        pd.DataFrame({"arch": rows, "accuracy": [1, 2]}).to_csv("labels.csv", index=False)
    elif setup == "labels_unscored":
        other = next(i for i in range(len(truth.frame)) if i not in indices)
        rows = [arch(i) for i in indices[:6]] + [arch(other)]
        pd.DataFrame({"arch": rows, "accuracy": range(7)}).to_csv("labels.csv", index=False)
    elif setup == "labels_text":
        pd.DataFrame({"index": indices[:2], "accuracy": ["1", "high"]}).to_csv("labels.csv", index=False)
    elif setup == "no_proxy_column":
        pd.read_csv(path).drop(columns=["proxy"]).to_csv(path, index=False)
    assert cli.main(["calibrate", "x", "--scores", str(path), *argv]) == 2
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("knas: error:"), captured.err
    assert fragment in lines[0]
    assert not (path.parent / "state" / "calibrated").exists()  # nothing saved
