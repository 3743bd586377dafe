"""NASI's two variants (issue 15, item 4): straight-through hard Gumbel-softmax sampling and
``nu = gamma * n / eta`` (Shu et al. 2022, Sec. 3.3), on tiny supernets and random data."""

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

import knas_core.search.nasi as nasi
from knas_core.errors import ConfigError
from knas_core.models.nb201 import NB201SuperNetwork
from knas_core.search import SearchContext, get_strategy
from knas_core.search.config import SearchConfig
from knas_core.search.nasi import (
    CE_LIPSCHITZ,
    gumbel_weights,
    nasi_alpha,
    nu_from_learning_rate,
    uniform_supernet_nu,
)
from knas_core.spaces import get_space
from knas_core.spaces.nb201 import OPS


def gumbel_noise(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    u = torch.rand(shape, generator=torch.Generator().manual_seed(seed))
    return -torch.log(-torch.log(u))


def tiny_supernet(seed: int = 0) -> NB201SuperNetwork:
    torch.manual_seed(seed)
    return NB201SuperNetwork(OPS, num_classes=10, C=4, N=1).train()


def random_batches(t: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(100 + t)
    return torch.randn(4, 3, 32, 32, generator=gen), torch.randint(0, 10, (4,), generator=gen)


# --- straight-through hard Gumbel-softmax ----------------------------------------------------------

def test_hard_weights_are_one_hot_with_the_soft_gradient():
    g = gumbel_noise((6, 5), 0)
    coeff = torch.randn(6, 5, generator=torch.Generator().manual_seed(1))
    alpha_soft = torch.zeros(6, 5, requires_grad=True)
    alpha_hard = torch.zeros(6, 5, requires_grad=True)
    soft = gumbel_weights(alpha_soft, g, tau=1.0)
    hard = gumbel_weights(alpha_hard, g, tau=1.0, hard=True)
    assert torch.equal(hard.detach(), F.one_hot(g.argmax(dim=-1), 5).float())  # argmax(alpha_0 + g)
    assert not torch.equal(soft.detach(), hard.detach())
    (soft * coeff).sum().backward()
    (hard * coeff).sum().backward()
    assert alpha_hard.grad is not None and alpha_soft.grad is not None
    assert alpha_hard.grad.abs().sum() > 0
    torch.testing.assert_close(alpha_hard.grad, alpha_soft.grad)  # straight-through: the soft gradient


def test_hard_weights_equal_torch_gumbel_softmax_for_the_same_noise():
    """The well-kept implementation: ``F.gumbel_softmax(hard=True)`` draws its noise as
    ``-log(Exp(1))`` from the global generator; given that noise ours returns the same value and
    the same gradient."""
    logits = torch.randn(6, 5, generator=torch.Generator().manual_seed(2))
    coeff = torch.randn(6, 5, generator=torch.Generator().manual_seed(3))
    torch.manual_seed(7)
    noise = -torch.empty_like(logits).exponential_().log()
    ours_in = logits.clone().requires_grad_(True)
    ours = gumbel_weights(ours_in, noise, tau=0.5, hard=True)
    torch.manual_seed(7)
    theirs_in = logits.clone().requires_grad_(True)
    theirs = F.gumbel_softmax(theirs_in, tau=0.5, hard=True)
    torch.testing.assert_close(ours, theirs)
    (ours * coeff).sum().backward()
    (theirs * coeff).sum().backward()
    torch.testing.assert_close(ours_in.grad, theirs_in.grad)


def test_hard_sampling_feeds_one_hot_architectures_and_reaches_alpha():
    seen: dict[bool, list[torch.Tensor]] = {False: [], True: []}
    alphas = {}
    for hard in (False, True):
        net = tiny_supernet()
        net.register_forward_pre_hook(lambda m, args, hard=hard: seen[hard].append(args[1].detach().clone()))
        alphas[hard] = nasi_alpha(net, random_batches, steps=2, nu=1e9, seed=0, hard=hard)
    for weights in seen[True]:  # the sampled architecture of each step: one operation per edge
        assert set(weights.unique().tolist()) == {0.0, 1.0} and torch.equal(weights.sum(-1), torch.ones(6))
    assert all(not set(w.unique().tolist()) <= {0.0, 1.0} for w in seen[False])
    assert alphas[True].abs().sum() > 0  # the gradient reached the architecture logits
    assert not torch.allclose(alphas[True], alphas[False])


# --- nu = gamma * n / eta ----------------------------------------------------------------------------

def test_nu_from_the_learning_rate_is_the_papers_definition():
    assert nu_from_learning_rate(0.1, 10) == pytest.approx(math.sqrt(2) * 10 / 0.1)
    assert nu_from_learning_rate(0.025, 100, gamma=1.0) == pytest.approx(4000.0)
    for bad in (0.0, -0.1, float("inf")):
        with pytest.raises(ValueError, match="eta"):
            nu_from_learning_rate(bad, 10)


def test_gamma_is_the_lipschitz_constant_of_softmax_cross_entropy():
    """``|| d CE / d f || <= sqrt(2)`` for any logits, approached when the softmax picks a wrong class."""
    f = torch.randn(2000, 10, generator=torch.Generator().manual_seed(4)) * 5
    y = torch.randint(0, 10, (2000,), generator=torch.Generator().manual_seed(5))
    f.requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(f, y, reduction="sum"), f)
    assert grad.norm(dim=1).max() <= CE_LIPSCHITZ + 1e-6
    wrong = torch.zeros(1, 10)
    wrong[0, 3] = 50.0
    wrong.requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(wrong, torch.tensor([0])), wrong)
    assert float(grad.norm()) == pytest.approx(CE_LIPSCHITZ, rel=1e-6)


def test_nu_decides_the_sign_of_each_step():
    """With ``mu = 2`` the penalised trace is ``T`` below ``nu`` and ``2 nu - T`` above it: a
    large ``eta`` (small ``nu``) turns every step's gradient around."""
    loose = nasi_alpha(tiny_supernet(), random_batches, steps=2, mu=2.0, seed=0,
                       nu=nu_from_learning_rate(1e-9, 10))
    tight = nasi_alpha(tiny_supernet(), random_batches, steps=2, mu=2.0, seed=0,
                       nu=nu_from_learning_rate(1e9, 10))
    assert loose.abs().sum() > 0
    torch.testing.assert_close(tight, -loose)


def test_the_strategy_derives_nu_from_eta_or_from_the_uniform_supernet(monkeypatch):
    """``eta`` given: ``nu = sqrt(2) * classes / eta`` reaches Algorithm 1; otherwise ``nu`` is
    left to it (the uniform supernet's trace on the first batch), and ``hard`` is passed on."""
    calls = []
    monkeypatch.setattr(nasi, "nasi_alpha", lambda *a, **k: calls.append((a, k)) or torch.zeros(6, 5))

    def batch(size, seed):
        x, y = random_batches(seed)
        return SimpleNamespace(inputs=x, targets=y, num_classes=100)

    ctx = SearchContext(get_space("nb201"), score=lambda a: [], evaluate=lambda a: 0.0, seed=0, batch=batch)
    get_strategy("nasi", steps=1, C=4, N=1, eta=0.1, hard=1).run(ctx)
    get_strategy("nasi", steps=1, C=4, N=1).run(ctx)
    (_, with_eta), (_, default) = calls
    assert with_eta["nu"] == pytest.approx(math.sqrt(2) * 100 / 0.1) and with_eta["hard"] is True
    assert default["nu"] is None and default["hard"] is False
    with pytest.raises(ValueError, match="not both"):
        get_strategy("nasi", nu=5.0, eta=0.1)


def test_the_default_nu_is_the_uniform_supernet_trace():
    net = tiny_supernet()
    x, y = random_batches(0)
    uniform = torch.full((6, 5), 0.2)
    expected = float(nasi.trace_norm(net, x, y, uniform).detach())
    assert uniform_supernet_nu(net, x, y) == pytest.approx(expected)


# --- the config ----------------------------------------------------------------------------------------

def test_the_config_takes_both_options():
    cfg = SearchConfig(strategy="nasi", strategy_options={"hard": True, "eta": 0.1})
    assert cfg.strategy_options == {"hard": 1, "eta": 0.1}
    strategy = get_strategy("nasi", **cfg.strategy_kwargs())
    assert strategy.hard is True and strategy.eta == 0.1 and strategy.nu is None
    assert SearchConfig(strategy="nasi", strategy_options={"hard": 0}).strategy_kwargs()["hard"] == 0


@pytest.mark.parametrize("options, message", [
    ({"hard": 2}, "hard: expected true or false (or 1 or 0), got 2"),
    ({"hard": "yes"}, "hard: expected true or false (or 1 or 0), got 'yes'"),
    ({"hard": None}, "hard: expected true or false"),
    ({"eta": 0}, "eta: must be > 0 and <= 1000, got 0"),
    ({"eta": float("nan")}, "eta: expected a finite number, got nan"),
    ({"eta": 0.1, "nu": 3.0}, "give nu or eta (nu = sqrt(2) * classes / eta), not both"),
])
def test_the_config_refuses_bad_options(options, message):
    with pytest.raises(ConfigError) as info:
        SearchConfig(strategy="nasi", strategy_options=options)
    assert f"strategy_options: {message}" in str(info.value)


def test_knas_search_flags_set_the_options_and_name_themselves_in_errors():
    from knas_cli import search
    from knas_cli.fields import parse_config
    from knas_cli.main import build_parser

    args = build_parser().parse_args(["search", "--strategy", "nasi", "--hard", "--eta", "0.1"])
    cfg = parse_config(SearchConfig, search.config_from_args(args), search.FLAGS)
    assert cfg.strategy_options == {"hard": 1, "eta": 0.1}
    plain = build_parser().parse_args(["search", "--strategy", "nasi"])
    assert search.config_from_args(plain)["strategy_options"] == {}
    bad = build_parser().parse_args(["search", "--strategy", "nasi", "--eta", "-1"])
    with pytest.raises(ConfigError) as info:
        parse_config(SearchConfig, search.config_from_args(bad), search.FLAGS)
    assert dict(info.value.problems) == {"--eta": "must be > 0 and <= 1000, got -1.0"}
