"""Search strategies on small settings, with look-up evaluation."""

import numpy as np
import pytest
import torch

from knas_core.data import load_source
from knas_core.models.nb201 import NB201SuperNetwork
from knas_core.search import STRATEGIES, SearchContext, get_strategy
from knas_core.search.ensemble import log_rank_aggregate
from knas_core.search.evolution import mutate
from knas_core.search.nasi import nasi_alpha
from knas_core.spaces.nb201 import OPS, parse_arch


@pytest.fixture()
def oracle(space, truth):
    """A context whose 'proxy' is the true test accuracy and evaluation the 12-epoch look-up."""
    test = truth.accuracy("cifar10", "test")
    short = truth.accuracy("cifar10", "valid_12ep")
    return SearchContext(space, score=lambda archs: [float(test.loc[space.index_of(a)]) for a in archs],
                         evaluate=lambda a: float(short.loc[space.index_of(a)]), seed=1)


def test_registry():
    assert set(STRATEGIES.names()) >= {"knas", "nasi", "evolution", "random"}


def test_knas_keeps_the_best_evaluated_of_the_top_k(oracle, space, truth):
    result = get_strategy("knas", samples=40, topk=5).run(oracle)
    sample = space.sample(40, 1)
    test = truth.accuracy("cifar10", "test")
    top5 = sorted(sample, key=lambda a: test.loc[space.index_of(a)], reverse=True)[:5]
    assert result.scored == 40 and result.evaluated == 5
    assert [t["arch"] for t in result.trace] == top5
    short = truth.accuracy("cifar10", "valid_12ep")
    assert result.arch == max(top5, key=lambda a: short.loc[space.index_of(a)])
    assert result.trace[-1]["best_accuracy"] == result.accuracy


def test_random_search_spends_only_evaluations(oracle):
    result = get_strategy("random", topk=7).run(oracle)
    assert result.scored == 0 and result.evaluated == 7
    assert result.accuracy == max(t["accuracy"] for t in result.trace)


def test_evolution_improves_on_its_initial_population(oracle, space, truth):
    result = get_strategy("evolution", samples=60, population=10, tournament=3, topk=3).run(oracle)
    assert result.scored == 60 and result.evaluated == 3
    test = truth.accuracy("cifar10", "test")
    initial_best = max(test.loc[space.index_of(a)] for a in space.sample(10, 1))
    assert max(test.loc[space.index_of(t["arch"])] for t in result.trace) >= initial_best


def test_mutation_changes_exactly_one_edge():
    rng = np.random.default_rng(0)
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    for _ in range(20):
        child = mutate(arch, rng)
        assert sum(a != b for a, b in zip(parse_arch(arch), parse_arch(child))) == 1


def test_log_rank_ensemble():
    scores = log_rank_aggregate({"a": [1.0, 2.0, 3.0, None], "b": [30.0, 10.0, 20.0, 5.0]})
    # ranks a: 1,2,3 ; b: 3,1,2 (over the 3 valid) -> sums of log(rank/3)
    expected = [np.log(1 / 3) + np.log(3 / 3), np.log(2 / 3) + np.log(1 / 3), np.log(3 / 3) + np.log(2 / 3)]
    assert scores[:3] == pytest.approx(expected) and scores[3] is None
    flipped = log_rank_aggregate({"b": [30.0, 10.0, 20.0]}, {"b": False})
    assert np.argmax(flipped) == 1
    with pytest.raises(ValueError):
        log_rank_aggregate({"a": [1.0], "b": [1.0, 2.0]})


def test_weighted_log_rank_ensemble():
    members = {"a": [1.0, 2.0, 3.0, None], "b": [30.0, 10.0, 20.0, 5.0]}
    weighted = log_rank_aggregate(members, weights={"a": 2.0})  # b not named: weight 1
    expected = [2 * np.log(1 / 3) + np.log(3 / 3), 2 * np.log(2 / 3) + np.log(1 / 3),
                2 * np.log(3 / 3) + np.log(2 / 3)]
    assert weighted[:3] == pytest.approx(expected) and weighted[3] is None
    # the weight changes the order: equal weights put candidate 0 ahead of 1, a's weight 2 does not
    equal = log_rank_aggregate(members)
    assert equal[0] > equal[1] and weighted[0] < weighted[1]
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="positive and finite"):
            log_rank_aggregate(members, weights={"b": bad})


def test_supernet_mixes_operations():
    torch.manual_seed(0)
    net = NB201SuperNetwork(OPS, num_classes=10, C=4, N=1)
    x = torch.randn(2, 3, 32, 32)
    zero = torch.zeros(6, 5)
    zero[:, 0] = 1.0  # every edge 'none': the signal is cut in each cell
    assert torch.allclose(net.eval()(x, zero), net(torch.randn(2, 3, 32, 32), zero))
    assert net(x, torch.full((6, 5), 0.2)).shape == (2, 10)


@pytest.mark.slow
def test_nasi_update_rule_and_determinism():
    source = load_source("cifar10")
    torch.manual_seed(0)
    net = NB201SuperNetwork(OPS, num_classes=10, C=4, N=1).train()

    def batches(t):
        b = source.batch(8, t)
        return b.inputs, b.targets

    one = nasi_alpha(net, batches, steps=1, xi=1.0, seed=0)
    assert float(one.norm()) == pytest.approx(1.0, rel=1e-5)  # alpha* = G_1 / ||G_1||
    a = nasi_alpha(net, batches, steps=3, seed=0)
    b = nasi_alpha(net, batches, steps=3, seed=0)
    assert torch.equal(a, b) and a.shape == (6, 5)
    assert float(a.norm()) <= 1.0 + 1e-6  # each term has norm <= 1/T


def test_nasi_strategy_returns_a_valid_architecture(space, truth):
    source = load_source("cifar10")
    short = truth.accuracy("cifar10", "valid_12ep")
    ctx = SearchContext(space, score=lambda a: [], evaluate=lambda a: float(short.loc[space.index_of(a)]),
                        seed=0, batch=source.batch)
    result = get_strategy("nasi", steps=2, batch_size=8, C=4, N=1).run(ctx)
    assert parse_arch(result.arch) and result.evaluated == 1
    assert result.accuracy == short.loc[space.index_of(result.arch)]


def test_an_ensemble_run_reports_each_scored_architecture():
    """Strategies that run as one task report scoring progress per architecture, so a worker
    can show the count, rate and ETA (and the evaluation of the top-k after it)."""
    from knas_core.search.config import SearchConfig
    from knas_core.search.run import SearchRun

    reports = []
    run = SearchRun(SearchConfig(strategy="knas", dataset="cifar10", samples=6, topk=2,
                                 proxies=["synflow", "params"], batch_size=8, device="cpu",
                                 model={"C": 4, "N": 1}))
    result = run.run(lambda stage, done, total: reports.append((stage, done, total)))
    scoring = [r for r in reports if r[0] == "score"]
    assert scoring == [("score", i, 6) for i in range(1, 7)]
    assert [r for r in reports if r[0] == "evaluate"][-1] == ("evaluate", 2, 2)
    assert result["scored"] == 6 and result["data"].startswith(("npz:", "torchvision:"))


def test_proxy_scorer_ranks_by_the_weighted_ensemble():
    """An in-process search ranks with the config's weights: the same member values, weighted,
    change which architecture the ensemble puts first."""
    from knas_core.search.run import ProxyScorer

    values = {"a1": {"synflow": 1.0, "params": 3.0}, "a2": {"synflow": 3.0, "params": 1.0},
              "a3": {"synflow": 2.0, "params": 2.0}}
    fake = lambda arch, names: {p: values[arch][p] for p in names}  # noqa: E731 - a stand-in scorer
    archs = list(values)
    members = ["synflow", "params"]
    equal = ProxyScorer(None, members, fake)(archs)  # type: ignore[arg-type]
    heavy = ProxyScorer(None, members, fake, weights={"synflow": 3.0})(archs)  # type: ignore[arg-type]
    assert equal[0] == pytest.approx(equal[1])  # a tie: each member puts one of them first
    table = {p: [values[a][p] for a in archs] for p in members}
    assert heavy == pytest.approx(log_rank_aggregate(table, weights={"synflow": 3.0}))
    assert max(range(3), key=lambda i: heavy[i]) == 1  # synflow's favourite wins


def test_search_config_weights_name_members():
    from knas_core.errors import ConfigError
    from knas_core.search.config import SearchConfig

    cfg = SearchConfig(proxies=["synflow", "eznas", "params"], weights={"eznas": 1.5})
    assert cfg.proxy_weights() == {"synflow": 1.0, "eznas": 1.5, "params": 1.0}
    assert SearchConfig(proxy="knas").proxy_weights() == {"knas": 1.0}
    for bad, message in [({"proxies": ["synflow"], "weights": {"synflow": 2.0}}, "need an ensemble"),
                         ({"proxies": ["synflow", "eznas"], "weights": {"params": 2.0}}, "not a member"),
                         ({"proxies": ["synflow", "eznas"], "weights": {"eznas": 101.0}}, "<= 100")]:
        with pytest.raises(ConfigError, match=message):
            SearchConfig.parse(bad)
