"""Shared passes (knas_core/proxies/shared.py) give the values of separate scoring, with fewer
network builds and passes; stored scores are not recomputed."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from knas_core.proxies import BUILTIN_PROXIES, get_proxy, proxy_names
from knas_core.proxies.shared import SHARED_PROXIES, shared_scores
from knas_core.scoring import Scorer

from .conftest import ARCH, SMALL

BUNDLE = ["knas", "nasi", "grad_norm", "snip", "naswot", "jacob_cov", "params", "flops"]
#: The measures of zero-cost-nas's find_measures (Abdelfattah et al. 2021); synflow has its own pass.
ZERO_COST_NAS = ["grad_norm", "snip", "grasp", "fisher", "jacob_cov"]
# A cell with a cut edge ("none") and pooling, besides the conv-heavy ARCH.
OTHER = "|avg_pool_3x3~0|+|none~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
RTOL = 1e-5


@pytest.fixture(scope="module")
def scorer(space, cifar10):
    return Scorer("cifar10", space=space, source=cifar10, batch_size=16, seed=3, device="cpu",
                  model_options=SMALL)


def _separate(scorer: Scorer, arch: str, names: list[str]) -> dict[str, float]:
    """Each proxy on its own freshly built network (the reference)."""
    out = {}
    for name in names:
        result = scorer.score_one(arch, name)
        assert result.ok, f"{name}: {result.error}"
        out[name] = result.value
    return out


def test_the_bundle_is_the_issue_list():
    assert {*BUNDLE, "grasp", "fisher"} == SHARED_PROXIES
    assert all(get_proxy(n).batch_size is None for n in SHARED_PROXIES)


@pytest.mark.slow
@pytest.mark.parametrize("arch", [ARCH, OTHER])
def test_shared_values_equal_separate_values(scorer, arch):
    names = proxy_names()  # the bundle plus the proxies on their own path, one network for all
    shared = scorer.score(arch, names)
    separate = _separate(scorer, arch, names)
    for name in names:
        result = shared.results[name]
        assert result.ok, f"{name}: {result.error}"
        assert result.value == pytest.approx(separate[name], rel=RTOL, abs=1e-12), name


@pytest.mark.parametrize("subset", [
    ["knas", "nasi"],                                  # per-sample and batch pass, no Jacobian
    ["grad_norm", "snip", "jacob_cov"],                # retained graph for the input backward
    ["naswot", "flops"],                               # forward only, no gradient
    ["params", "flops"],                               # no batch pass: flops on one image
    ["grasp", "fisher"],                               # create_graph, layer outputs, no weight-only proxy
    ["grasp", "jacob_cov", "naswot"],                  # input backward through the create_graph pass
    ["fisher", "flops"],                               # two kinds of Conv/Linear hooks at once
    ["grasp", "nasi", "snip", "fisher", "knas"],       # grasp's gradient serves nasi and snip
])
def test_every_subset_of_the_bundle_matches(scorer, subset):
    separate = _separate(scorer, ARCH, subset)
    assert scorer.score(ARCH, subset).to_record()["scores"] == pytest.approx(separate, rel=RTOL)
    # the shared function on its own, on a network it must leave as found
    model = scorer.build(ARCH, 10)
    before = {k: v.clone() for k, v in model.named_parameters()}
    values = shared_scores(model, scorer.batch(16), subset)
    assert values == pytest.approx(separate, rel=RTOL)
    assert all(torch.equal(p, before[k]) for k, p in model.named_parameters())
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.slow  # every built-in proxy, knas_official's 50 images included
def test_every_sharing_proxy_leaves_the_network_as_found(scorer):
    model = scorer.build(ARCH, 10)
    kinds = [type(m) for m in model.modules()]
    weights = {k: v.clone() for k, v in model.named_parameters()}
    for name in BUILTIN_PROXIES:  # plugins and promoted programs default to their own network
        proxy = get_proxy(name)
        assert proxy.shares_network, name
        proxy(model, scorer.batch(proxy.batch_size or 16))
        assert [type(m) for m in model.modules()] == kinds, name
        assert all(torch.equal(p, weights[k]) for k, p in model.named_parameters()), name
        assert model.training and all("forward" not in vars(m) for m in model.modules()), name


def test_the_network_is_built_once_and_the_bundle_runs_two_forwards(scorer, monkeypatch):
    builds: list[nn.Module] = []
    forwards = []
    build = scorer.space.build_model

    def counting(arch, num_classes, **options):
        model = build(arch, num_classes, **options)
        model.register_forward_pre_hook(lambda _m, inp: forwards.append(inp[0].shape[0]))
        builds.append(model)
        return model

    monkeypatch.setattr(scorer.space, "build_model", counting)
    result = scorer.score(ARCH, BUNDLE)
    assert all(r.ok for r in result.results.values())
    assert len(builds) == 1
    # one batch-statistics forward (naswot, flops, gradients, Jacobian), one per-sample (knas)
    assert forwards == [16, 16]
    builds.clear()
    forwards.clear()
    scorer.score(ARCH, [*BUNDLE, "synflow", "grasp", "fisher", "eznas"])
    assert len(builds) == 1
    # grasp and fisher join the batch-statistics pass; synflow and eznas run their own forward
    assert forwards[:2] == [16, 16] and forwards[2:] == [1, 16]


@pytest.fixture(scope="module")
def tiny(space, cifar10):
    """The issue's tiny set-up: C=4 N=1, batch 8."""
    return Scorer("cifar10", space=space, source=cifar10, batch_size=8, seed=5, device="cpu",
                  model_options=SMALL)


@pytest.mark.parametrize("arch", [ARCH, OTHER])
def test_grasp_and_fisher_on_the_shared_passes_equal_their_own(tiny, arch):
    """grasp's Hessian-gradient product from the shared create_graph backward and fisher's
    layer-output gradients from the shared loss backward give the values each computes on its
    own network with its own passes, and so do the proxies pooled with them."""
    names = sorted(SHARED_PROXIES)
    separate = _separate(tiny, arch, names)
    model = tiny.build(arch, 10)
    shared = shared_scores(model, tiny.batch(8), names)
    assert shared == pytest.approx(separate, rel=1e-6, abs=1e-12)
    assert separate["grasp"] != 0.0 and separate["fisher"] > 0.0
    assert all(p.grad is None for p in model.parameters())
    # zero-cost-nas's five on the batch pass, as the Scorer pools them
    five = tiny.score(arch, ZERO_COST_NAS).to_record()
    assert five["errors"] == {}
    assert five["scores"] == pytest.approx({n: separate[n] for n in ZERO_COST_NAS}, rel=1e-6)


def test_the_batch_pass_with_grasp_runs_one_forward(tiny, monkeypatch):
    model = tiny.build(ARCH, 10)
    forwards: list[int] = []
    model.register_forward_pre_hook(lambda _m, inp: forwards.append(inp[0].shape[0]))
    grads = []
    grad = torch.autograd.grad
    monkeypatch.setattr(torch.autograd, "grad", lambda *a, **k: grads.append(k) or grad(*a, **k))
    values = shared_scores(model, tiny.batch(8), ZERO_COST_NAS)
    assert all(isinstance(v, float) for v in values.values())
    assert forwards == [8]
    # the loss backward (create_graph), the input backward (jacob_cov), grasp's second backward
    assert [k.get("create_graph", False) for k in grads] == [True, False, False]


@pytest.mark.parametrize("where", ["loss backward", "hessian"])
def test_a_failing_grasp_step_costs_grasp_only(tiny, monkeypatch, where):
    """Out of memory in the create_graph backward (the memory grasp adds) or in grasp's own
    second backward fails grasp; the proxies sharing the pass keep their values."""
    import knas_core.proxies.shared as shared_module

    names = ["grasp", "nasi", "snip", "fisher", "jacob_cov"]
    separate = _separate(tiny, ARCH, names[1:])
    if where == "loss backward":
        grad = torch.autograd.grad

        def no_memory_for_graphs(*args, **kwargs):
            if kwargs.get("create_graph"):
                raise RuntimeError("out of memory (simulated)")
            return grad(*args, **kwargs)

        monkeypatch.setattr(torch.autograd, "grad", no_memory_for_graphs)
    else:
        def no_memory(*_args):
            raise RuntimeError("out of memory (simulated)")

        monkeypatch.setattr(shared_module, "hessian_gradient_product", no_memory)
    values = shared_scores(tiny.build(ARCH, 10), tiny.batch(8), names)
    assert isinstance(values["grasp"], RuntimeError) and "out of memory" in str(values["grasp"])
    assert {n: values[n] for n in names[1:]} == pytest.approx(separate, rel=1e-6)


def test_a_proxy_that_does_not_share_gets_its_own_network(scorer, monkeypatch):
    from knas_core.proxies import PROXIES
    from knas_core.proxies.base import Proxy

    def mutating(model: nn.Module, batch) -> float:
        """Test proxy that scales the weights (so it must not share)."""
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(2.0)
        return 1.0

    monkeypatch.setitem(PROXIES._items, "mutating", Proxy("mutating", mutating, reference="test"))
    builds = []
    build = scorer.space.build_model
    monkeypatch.setattr(scorer.space, "build_model",
                        lambda *a, **k: builds.append(1) or build(*a, **k))
    shared = scorer.score(ARCH, ["mutating", "nasi", "grad_norm"])
    assert len(builds) == 2
    assert shared.results["nasi"].value == pytest.approx(scorer.score_one(ARCH, "nasi").value, rel=RTOL)


def test_a_failed_shared_pass_fails_its_proxies_only(scorer, monkeypatch):
    build = scorer.space.build_model

    def diverged(arch, num_classes, **options):
        model = build(arch, num_classes, **options)
        with torch.no_grad():
            model.stem[0].weight.fill_(float("nan"))
        return model

    monkeypatch.setattr(scorer.space, "build_model", diverged)
    result = scorer.score(ARCH, BUNDLE)
    for name in BUNDLE:
        if name in ("params", "flops"):  # structural: no weight values read
            assert result.results[name].ok
        else:
            assert result.results[name].value is None and result.results[name].error, name


@pytest.fixture()
def sqlite_store(tmp_path, monkeypatch):
    pytest.importorskip("sqlalchemy")
    from db.migrate import upgrade
    from db.session import dispose_engine

    url = f"sqlite:///{tmp_path / 'knas.db'}"
    upgrade(url)
    monkeypatch.setenv("KNAS_DATABASE_URL", url)
    yield url
    dispose_engine(url)


def test_stored_scores_are_not_recomputed(sqlite_store, scorer, monkeypatch):
    from tasks.schema import validate_config
    from tasks.search import stored_scores

    cfg = validate_config({"proxies": ["knas", "nasi", "synflow"], "batch_size": 16, "seed": 3,
                           "model": SMALL, "device": "cpu", "samples": 4, "topk": 1})
    requested: list[list[str]] = []
    score = scorer.score
    monkeypatch.setattr(scorer, "score",
                        lambda arch, names: requested.append(list(names)) or score(arch, names))
    first = stored_scores(cfg, scorer, ARCH, ["knas", "nasi"])
    assert requested == [["knas", "nasi"]]
    again = stored_scores(cfg, scorer, ARCH, ["knas", "nasi", "synflow"])
    assert requested == [["knas", "nasi"], ["synflow"]]  # only the missing proxy is computed
    assert {k: again[k] for k in first} == first
    stored_scores(cfg, scorer, ARCH, ["synflow", "knas", "nasi"])
    assert len(requested) == 2  # everything cached: no network built, no pass run


def test_a_stored_transient_failure_is_scored_again(sqlite_store, scorer, monkeypatch):
    """Issue 14.4 for the whole-strategy searches: an out-of-memory failure in the store is no
    cache entry; a deterministic failure is."""
    from knas_core.scoring import ArchScores, ProxyResult
    from tasks.schema import validate_config
    from tasks.search import stored_scores

    cfg = validate_config({"proxies": ["knas", "nasi"], "batch_size": 16, "seed": 3,
                           "model": SMALL, "device": "cpu", "samples": 4, "topk": 1})
    errors = {"knas": "out of memory: simulated", "nasi": "ValueError: deterministic"}
    score = scorer.score
    monkeypatch.setattr(scorer, "score", lambda arch, names: ArchScores(arch, None, {
        n: ProxyResult(n, None, errors[n], 0.0, 16) for n in names}))
    assert stored_scores(cfg, scorer, ARCH, ["knas", "nasi"]) == {"knas": None, "nasi": None}
    requested: list[list[str]] = []
    monkeypatch.setattr(scorer, "score",
                        lambda arch, names: requested.append(list(names)) or score(arch, names))
    again = stored_scores(cfg, scorer, ARCH, ["knas", "nasi"])
    assert requested == [["knas"]] and again["knas"] is not None and again["nasi"] is None
