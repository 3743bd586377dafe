"""Every registered proxy (looped, as timm does for models) plus formula checks on toy networks."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from knas_core.data import Batch
from knas_core.proxies import PROXIES, get_proxy, proxy_names
from knas_core.proxies import naswot as naswot_module
from knas_core.proxies.eznas import relu_conv_bn_blocks
from knas_core.proxies.knas import (
    _ChannelsLastInstanceNorm,
    gradient_gram,
    knas_gram,
    knas_mean_gradient,
)
from knas_core.proxies.knas_official import knas_official
from knas_core.proxies.nasi import nasi_trace, penalised_trace
from knas_core.proxies.naswot import _code_agreements
from knas_core.proxies.second_order import _BatchNormTrain, twice_differentiable_batchnorm
from knas_core.proxies.synflow import synflow
from knas_core.scoring import Scorer

from .conftest import ARCH, SMALL

ALL = proxy_names()
#: Proxies whose full check takes a minute on a loaded 2-core machine (50 images, per-sample passes).
SLOW = {"knas_official"}
# Proxies that only read the architecture (sizes), not weight values or data.
STRUCTURAL = {"params", "flops"}


@pytest.fixture(scope="module")
def scorer(space, cifar10):
    return Scorer("cifar10", space=space, source=cifar10, batch_size=16, seed=0,
                  device="cpu", model_options=SMALL)


def test_registry_has_the_issue_proxies():
    assert set(ALL) >= {"knas", "knas_official", "nasi", "eznas", "grad_norm", "snip", "grasp",
                        "fisher", "synflow", "jacob_cov", "naswot", "params", "flops"}


@pytest.mark.parametrize("name", ALL)
def test_every_proxy_documents_itself(name):
    proxy = get_proxy(name)
    assert proxy.summary, f"{name} needs a docstring"
    assert proxy.reference, f"{name} must cite its paper/equation"
    assert isinstance(proxy.higher_is_better, bool)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in ALL])
def test_every_proxy_scores_and_is_deterministic(scorer, name):
    first = scorer.score_one(ARCH, name)
    assert first.ok, first.error
    assert math.isfinite(first.value)
    again = scorer.score_one(ARCH, name)
    assert again.value == first.value
    other = Scorer("cifar10", space=scorer.space, source=scorer.source, batch_size=16, seed=1,
                   device="cpu", model_options=SMALL).score_one(ARCH, name)
    if name in STRUCTURAL:
        assert other.value == first.value
    else:
        assert other.value != first.value  # another seed: another init and batch


@pytest.mark.parametrize("name", ALL)
def test_every_proxy_fails_cleanly_when_the_network_cannot_be_built(space, cifar10, name):
    broken = Scorer("cifar10", space=space, source=cifar10, batch_size=16, device="cpu",
                    model_options={"C": 0, "N": 1})
    result = broken.score_one(ARCH, name)
    assert result.value is None and "C >= 1" in result.error


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n
                                  for n in ALL if n not in STRUCTURAL])
def test_every_proxy_reports_a_diverged_network_as_failure(space, cifar10, name, monkeypatch):
    scorer = Scorer("cifar10", space=space, source=cifar10, batch_size=16, device="cpu",
                    model_options=SMALL)
    build = space.build_model

    def corrupted(arch, num_classes, **options):
        model = build(arch, num_classes, **options)
        with torch.no_grad():
            model.stem[0].weight.fill_(float("nan"))
        return model

    monkeypatch.setattr(space, "build_model", corrupted)
    result = scorer.score_one(ARCH, name)
    assert result.value is None
    assert result.error


# --- KNAS -------------------------------------------------------------------------------------

def test_knas_gram_and_mean_gradient_forms_agree(small_model, cifar10):
    batch = cifar10.batch(12, seed=0)
    gram = knas_gram(small_model(), batch)
    mean = knas_mean_gradient(small_model(), batch)
    assert gram == pytest.approx(mean, rel=1e-5)


def test_knas_equals_brute_force_batch_size_one_gradients(small_model, cifar10):
    batch = cifar10.batch(6, seed=2)
    model = small_model()
    grads = []
    for i in range(len(batch)):
        model.zero_grad()
        F.cross_entropy(model(batch.inputs[i:i + 1]), batch.targets[i:i + 1]).backward()
        grads.append(torch.cat([p.grad.reshape(-1) for p in model.parameters()]).double())
    g = torch.stack(grads)
    expected_gram = g @ g.T
    gram = gradient_gram(small_model(), batch)
    assert torch.allclose(gram, expected_gram, rtol=1e-4, atol=1e-10)
    assert torch.allclose(gram, gram.T)
    assert torch.linalg.eigvalsh(gram).min() > -1e-8 * gram.abs().max()  # PSD
    assert knas_mean_gradient(small_model(), batch) == pytest.approx(
        float(g.mean(0).pow(2).sum()), rel=1e-4)


@pytest.mark.parametrize("affine", [True, False])
def test_channels_last_instance_norm_equals_instance_norm(affine):
    """The knas pass's normalisation for channels-last activations: instance_norm's values and
    gradients (float64, so exact to rounding), in the input's own layout."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, 5, 6, dtype=torch.float64, generator=gen) * 3 + 1
    x = x.contiguous(memory_format=torch.channels_last).requires_grad_(True)
    w = (torch.rand(4, dtype=torch.float64, generator=gen) + 0.5).requires_grad_(True) if affine else None
    b = torch.randn(4, dtype=torch.float64, generator=gen).requires_grad_(True) if affine else None
    y = _ChannelsLastInstanceNorm.apply(x, w, b, 1e-5)
    expected = F.instance_norm(x, None, None, w, b, use_input_stats=True, eps=1e-5)
    assert y.is_contiguous(memory_format=torch.channels_last) and not y.is_contiguous()
    assert torch.allclose(y, expected, rtol=1e-12, atol=1e-12)
    g = torch.randn(y.shape, dtype=torch.float64, generator=gen)
    inputs = [t for t in (x, w, b) if t is not None]
    ours = torch.autograd.grad(y, inputs, g)
    theirs = torch.autograd.grad(expected, inputs, g)
    for a, e in zip(ours, theirs, strict=True):
        assert torch.allclose(a, e, rtol=1e-10, atol=1e-12)
    assert torch.autograd.gradcheck(lambda *t: _ChannelsLastInstanceNorm.apply(*t, 1e-5),
                                    (x, w, b))


@pytest.mark.slow
def test_knas_official_matches_a_literal_transcription(small_model, cifar10):
    batch = cifar10.batch(50, seed=0)
    model = small_model()
    stored: dict[str, list[torch.Tensor]] = {}
    for k in range(50):  # the released loop, name by name
        model.zero_grad()
        F.cross_entropy(model(batch.inputs[k:k + 1]), batch.targets[k:k + 1]).backward()
        taken = 0
        for name, p in model.named_parameters():
            if p.grad is None:
                continue
            if taken > 10:
                break
            if p.numel() < 50:
                continue
            taken += 1
            stored.setdefault(name, []).append(p.grad.reshape(-1)[:100].clone())
    expected = 0.0
    for vectors in stored.values():
        for i in range(50):
            a = np.array([float(vectors[k][i]) for k in range(25)])
            b = np.array([float(vectors[k][i]) for k in range(25, 50)])
            expected += float(np.dot(a - a.mean(), b - b.mean())) / 2500
    assert len(stored) == 11
    assert knas_official(small_model(), batch) == pytest.approx(expected, rel=1e-6, abs=1e-15)


def test_knas_official_needs_fifty_samples(small_model, cifar10):
    with pytest.raises(ValueError, match="50 samples"):
        knas_official(small_model(), cifar10.batch(10, seed=0))


# --- NASI -------------------------------------------------------------------------------------

def test_nasi_is_squared_norm_of_minibatch_gradient(small_model, cifar10):
    batch = cifar10.batch(16, seed=0)
    model = small_model()
    loss = F.cross_entropy(model(batch.inputs), batch.targets)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    expected = sum(float(g.double().pow(2).sum()) for g in grads)
    assert nasi_trace(small_model(), batch) == pytest.approx(expected, rel=1e-6)


def test_nasi_penalty():
    assert penalised_trace(3.0, mu=2.0, nu=5.0) == 3.0          # below nu: unchanged
    assert penalised_trace(10.0, mu=2.0, nu=4.0) == 10.0 - 2.0 * 6.0
    t = torch.tensor([1.0, 9.0], requires_grad=True)
    r = penalised_trace(t, mu=1.5, nu=5.0)
    r.sum().backward()
    assert r.tolist() == [1.0, 9.0 - 1.5 * 4.0]
    assert t.grad.tolist() == [1.0, 1.0 - 1.5]


# --- zero-cost proxies on toy networks with hand-derivable values ------------------------------

def _linear_batch(n=5, d=4, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return Batch(torch.randn(n, d, generator=g), torch.randint(0, classes, (n,), generator=g), classes)


def _two_layer(seed=0, bn=False):
    torch.manual_seed(seed)
    middle = [nn.BatchNorm1d(6)] if bn else []
    return nn.Sequential(nn.Linear(4, 6, bias=False), *middle, nn.Linear(6, 3, bias=False))


def test_synflow_of_a_linear_chain_is_depth_times_path_sum():
    model = _two_layer()
    w1, w2 = model[0].weight.detach().double().abs(), model[1].weight.detach().double().abs()
    r = float(torch.ones(3, dtype=torch.float64) @ w2 @ w1 @ torch.ones(4, dtype=torch.float64))
    assert synflow(model, _linear_batch()) == pytest.approx(2 * r, rel=1e-12)
    # BatchNorm is removed, so a BN between the layers changes nothing.
    with_bn = _two_layer(bn=True)
    with torch.no_grad():
        with_bn[0].weight.copy_(model[0].weight)
        with_bn[2].weight.copy_(model[1].weight)
    assert synflow(with_bn, _linear_batch()) == pytest.approx(2 * r, rel=1e-12)


def test_grad_norm_and_snip_on_a_toy_network():
    batch = _linear_batch()
    model = _two_layer()
    loss = F.cross_entropy(model(batch.inputs), batch.targets)
    grads = torch.autograd.grad(loss, [model[0].weight, model[1].weight])
    expected_norm = sum(float(g.norm()) for g in grads)
    expected_snip = sum(float((g * w.detach()).abs().sum())
                        for g, w in zip(grads, [model[0].weight, model[1].weight]))
    assert get_proxy("grad_norm")(_two_layer(), batch) == pytest.approx(expected_norm, rel=1e-5)
    assert get_proxy("snip")(_two_layer(), batch) == pytest.approx(expected_snip, rel=1e-5)


def test_grasp_uses_the_hessian_gradient_product():
    batch = _linear_batch()
    model = _two_layer()
    weights = (model[0].weight.detach().clone(), model[1].weight.detach().clone())

    def loss_of(w1, w2):
        return F.cross_entropy(batch.inputs @ w1.T @ w2.T, batch.targets)

    g = torch.autograd.grad(loss_of(*[w.requires_grad_() for w in weights]), weights)
    _, hg = torch.autograd.functional.hvp(loss_of, tuple(w.detach() for w in weights),
                                          tuple(x.detach() for x in g))
    expected = sum(float((-w.detach() * h).sum()) for w, h in zip(weights, hg))
    assert get_proxy("grasp")(_two_layer(), batch) == pytest.approx(expected, rel=1e-4)


def _released_grasp(model: nn.Module, batch: Batch) -> float:
    """GraSP as the code released with Abdelfattah et al. (``compute_grasp_per_weight``) runs it,
    transcribed: the constant gradient from a first forward+backward, the differentiated one
    from a second forward with ``create_graph``, ``z.backward()`` into ``.grad``, then
    ``sum -W * W.grad``."""
    weights = [m.weight for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    model.zero_grad()
    loss = F.cross_entropy(model(batch.inputs), batch.targets)
    grad_w = [g.detach() for g in torch.autograd.grad(loss, weights, allow_unused=True)]
    loss = F.cross_entropy(model(batch.inputs), batch.targets)
    grad_f = torch.autograd.grad(loss, weights, create_graph=True, allow_unused=True)
    z = sum((gw * gf).sum() for gw, gf in zip(grad_w, grad_f) if gw is not None)
    z.backward()
    return sum(float((-w.detach() * w.grad).double().sum()) for w in weights if w.grad is not None)


@pytest.mark.parametrize("dtype, rel", [(torch.float64, 1e-10), (torch.float32, 1e-4)])
@pytest.mark.parametrize("arch", [ARCH, "|avg_pool_3x3~0|+|none~0|nor_conv_1x1~1|+|skip_connect~0|"
                                        "nor_conv_3x3~1|nor_conv_1x1~2|"])
def test_grasp_equals_the_released_two_pass_procedure(small_model, cifar10, arch, dtype, rel):
    """One forward and one create_graph backward (the gradient serves as its own constant), with
    BatchNorm's written-out double backward, give the values of the released code's two forwards
    and PyTorch's double backward: to 1e-10 in float64; in float32 the two double backwards
    round differently (1e-6 to 1e-5 relative on these networks)."""
    batch = cifar10.batch(8, seed=0)
    batch = Batch(batch.inputs.to(dtype), batch.targets, batch.num_classes)
    expected = _released_grasp(small_model(arch, seed=3).to(dtype), batch)
    assert expected != 0.0
    value = get_proxy("grasp")(small_model(arch, seed=3).to(dtype), batch)
    assert value == pytest.approx(expected, rel=rel)


@pytest.mark.parametrize("shape, channels_last", [((6, 3, 5, 4), False), ((6, 3, 5, 4), True),
                                                  ((7, 3), False)])
def test_batchnorm_double_backward_is_pytorchs(shape, channels_last):
    """The written-out double backward of a train-mode BatchNorm (second_order._BatchNormBackward)
    passes gradgradcheck and equals PyTorch's (batchnorm_double_backward) in float64, for
    upstream gradients of all three outputs of the first backward (dx, dw, db)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=gen, dtype=torch.float64) * 3 + 1
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    w, b = (torch.randn(shape[1], generator=gen, dtype=torch.float64) for _ in range(2))
    inputs = tuple(t.requires_grad_() for t in (x, w, b))

    def ours(x, w, b):
        return _BatchNormTrain.apply(x, w, b, 1e-5)

    def pytorch(x, w, b):
        return F.batch_norm(x, None, None, w, b, training=True, eps=1e-5)

    assert torch.autograd.gradgradcheck(ours, inputs)
    g = torch.randn(shape, generator=gen, dtype=torch.float64).requires_grad_()
    up = [torch.randn(t.shape, generator=gen, dtype=torch.float64) for t in inputs]
    first, second = {}, {}
    for f in (ours, pytorch):
        first[f] = torch.autograd.grad(f(*inputs), inputs, g, create_graph=True)
        z = sum((d * v).sum() for d, v in zip(first[f], up))  # upstream for dx, dw and db
        second[f] = torch.autograd.grad(z, (*inputs, g), allow_unused=True, materialize_grads=True)
    for a, c in zip(first[ours], first[pytorch]):
        assert torch.allclose(a, c, rtol=0, atol=1e-12)  # forward and first backward: PyTorch's
    for a, c in zip(second[ours], second[pytorch]):
        assert torch.allclose(a, c, rtol=0, atol=1e-10)
    assert all(float(t.abs().max()) > 1e-3 for t in second[ours][:2])  # d/dx, d/dw not trivially 0


def test_twice_differentiable_batchnorm_keeps_the_forward_and_restores_the_layers(small_model, cifar10):
    model = small_model(seed=1)
    batch = cifar10.batch(8, seed=0)
    expected = model(batch.inputs)
    with twice_differentiable_batchnorm(model):
        got = model(batch.inputs)
    assert torch.equal(got, expected)
    assert all("forward" not in vars(m) for m in model.modules())


def test_fisher_on_a_single_linear_layer():
    batch = _linear_batch()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3, bias=False))
    act = model(batch.inputs)
    act.retain_grad()
    F.cross_entropy(act, batch.targets).backward()
    per_channel = 0.5 * (act.detach() * act.grad).pow(2).mean(0)
    expected = float(per_channel.sum()) * 4  # every channel counts once per weight (fan-in 4)
    torch.manual_seed(0)
    value = get_proxy("fisher")(nn.Sequential(nn.Linear(4, 3, bias=False)), batch)
    assert value == pytest.approx(expected, rel=1e-5)


def _reference_fisher(model: nn.Module, batch: Batch) -> float:
    """Abdelfattah et al.'s fisher as their released code computes it, transcribed: a
    backward hook per layer takes ``0.5 * mean_n (sum_hw act * grad)^2`` per channel, the
    channel value is copied onto every weight of the channel (shape of ``weight``), and all
    entries are summed."""
    saliency: dict[nn.Module, torch.Tensor] = {}
    acts: dict[nn.Module, torch.Tensor] = {}
    layers = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]

    def forward_hook(m, _inp, out):
        acts[m] = out.detach()

    def backward_hook(m, _gin, gout):
        act, grad = acts[m], gout[0].detach()
        g_nk = (act * grad).sum(dim=list(range(2, act.dim()))) if act.dim() > 2 else act * grad
        saliency[m] = saliency.get(m, 0) + g_nk.pow(2).mean(0).mul(0.5)

    handles = [m.register_forward_hook(forward_hook) for m in layers]
    handles += [m.register_full_backward_hook(backward_hook) for m in layers]
    model.zero_grad()
    F.cross_entropy(model(batch.inputs), batch.targets).backward()
    for h in handles:
        h.remove()
    total = 0.0
    for m in layers:
        channel = saliency.get(m, torch.zeros(m.weight.shape[0])).abs()
        per_weight = channel.view(-1, *([1] * (m.weight.dim() - 1))).expand_as(m.weight)
        total += float(per_weight.double().sum())
    return total


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
def test_fisher_equals_the_reference_per_weight_sum(small_model, cifar10):
    batch = cifar10.batch(8, seed=0)
    expected = _reference_fisher(small_model(seed=3), batch)
    assert get_proxy("fisher")(small_model(seed=3), batch) == pytest.approx(expected, rel=1e-6)


def test_jacob_cov_of_a_linear_model():
    # A linear model has the same Jacobian for every sample: correlation matrix of ones,
    # eigenvalues (n, 0, ..., 0).
    batch = _linear_batch(n=5)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3))
    jac_rows = model[0].weight.sum(0).repeat(5, 1)
    assert torch.allclose(jac_rows[0], jac_rows[1])
    k = 1e-5
    v = np.array([5.0, 0, 0, 0, 0])
    expected = -np.sum(np.log(v + k) + 1 / (v + k))
    assert get_proxy("jacob_cov")(model, batch) == pytest.approx(expected, rel=1e-6)


def test_naswot_is_logdet_of_hamming_kernel():
    batch = _linear_batch(n=6, d=8)
    model = nn.Sequential(nn.ReLU(), nn.Linear(8, 3))
    codes = (batch.inputs > 0).numpy().astype(int)
    hamming = (codes[:, None, :] != codes[None, :, :]).sum(-1)
    kernel = codes.shape[1] - hamming
    sign, logdet = np.linalg.slogdet(kernel.astype(float))
    assert sign != 0
    assert get_proxy("naswot")(model, batch) == pytest.approx(logdet, rel=1e-9)


def test_naswot_on_channels_last_feature_maps_counts_every_unit():
    """Convolutional ReLU inputs in channels-last memory (as CPU convolutions give them): the
    kernel of the flattened codes, whatever order the units are read in."""
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, padding=1)
    model = nn.Sequential(conv, nn.ReLU(), nn.Flatten(), nn.Linear(4 * 5 * 5, 3))
    inputs = torch.randn(7, 3, 5, 5).contiguous(memory_format=torch.channels_last)
    batch = Batch(inputs, torch.zeros(7, dtype=torch.long), 3)
    with torch.no_grad():
        codes = (conv(inputs) > 0).reshape(7, -1).numpy().astype(int)
    hamming = (codes[:, None, :] != codes[None, :, :]).sum(-1)
    sign, logdet = np.linalg.slogdet((codes.shape[1] - hamming).astype(float))
    assert sign != 0
    assert get_proxy("naswot")(model, batch) == pytest.approx(logdet, rel=1e-9)


def test_code_agreements_are_exact_counts(monkeypatch):
    """The int8 and the float32 products count agreements exactly, in either memory layout."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(9, 5, 6, 7, generator=gen).contiguous(memory_format=torch.channels_last)
    codes = (x > 0).reshape(9, -1).double()
    expected = codes @ codes.T
    for fast_int8 in (True, False):  # both products, whatever this CPU chooses
        monkeypatch.setattr(naswot_module, "_fast_int8", lambda fast=fast_int8: fast)
        assert torch.equal(_code_agreements(x, 9), expected)
        assert torch.equal(_code_agreements(x.contiguous(), 9), expected)


def test_eznas_blocks_and_range(small_model, cifar10):
    model = small_model(N=2)
    conv_edges = 3  # ARCH has three nor_conv edges
    assert len(relu_conv_bn_blocks(model)) == 3 * 2 * conv_edges + 2 * 2
    value = get_proxy("eznas")(small_model(N=2), cifar10.batch(16, seed=0))
    widest = math.sqrt(16 * 16)  # B * C at the widest stage (C = 4 * 4)
    assert 0.0 <= value <= widest


def test_params_and_flops_count_the_network(space):
    model = space.build_model(ARCH, 10)
    batch = Batch(torch.zeros(2, 3, 32, 32), torch.zeros(2, dtype=torch.long), 10)
    assert get_proxy("params")(model, batch) == sum(p.numel() for p in model.parameters())
    stem = 32 * 32 * 16 * 3 * 9
    classifier = 64 * 10 + 10  # with its bias
    only_skip = space.build_model("|skip_connect~0|+|skip_connect~0|skip_connect~1|+"
                                  "|skip_connect~0|skip_connect~1|skip_connect~2|", 10)
    # reduction blocks: conv_a (3x3, stride 2), conv_b (3x3), shortcut AvgPool 2x2 + Conv 1x1
    residual = (16 * 16 * 32 * 16 * 9 + 16 * 16 * 32 * 32 * 9 + 16 * 16 * 16 * 4 + 16 * 16 * 32 * 16
                + 8 * 8 * 64 * 32 * 9 + 8 * 8 * 64 * 64 * 9 + 8 * 8 * 32 * 4 + 8 * 8 * 64 * 32)
    assert get_proxy("flops")(only_skip, batch) == stem + classifier + residual
    # An avg_pool_3x3 edge (0->1) instead of skip adds 9 reads per output element in each of
    # the 5 cells of the three stages; a 3x3 convolution adds C*C*9 per output position.
    pooled = space.build_model("|avg_pool_3x3~0|+|skip_connect~0|skip_connect~1|+"
                               "|skip_connect~0|skip_connect~1|skip_connect~2|", 10)
    pool_edge = 5 * 9 * (16 * 32 * 32 + 32 * 16 * 16 + 64 * 8 * 8)
    assert get_proxy("flops")(pooled, batch) == stem + classifier + residual + pool_edge
    conv = space.build_model("|nor_conv_3x3~0|+|skip_connect~0|skip_connect~1|+"
                             "|skip_connect~0|skip_connect~1|skip_connect~2|", 10)
    conv_edge = 5 * 9 * (16 * 16 * 32 * 32 + 32 * 32 * 16 * 16 + 64 * 64 * 8 * 8)
    assert get_proxy("flops")(conv, batch) == stem + classifier + residual + conv_edge
    assert pool_edge == 1_290_240 and conv_edge == 35_389_440  # the 1.3 vs 35.4 MFLOPs quoted


def test_flops_counts_biases_and_max_pooling():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=True), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(4 * 4 * 4, 5, bias=False))
    batch = Batch(torch.zeros(1, 3, 8, 8), torch.zeros(1, dtype=torch.long), 5)
    conv = 4 * 8 * 8 * 3 * 9 + 4 * 8 * 8
    pool = 4 * 4 * 4 * 2 * 2
    linear = 64 * 5
    assert get_proxy("flops")(model, batch) == conv + pool + linear


def test_direction_metadata():
    assert all(PROXIES.get(n).higher_is_better for n in ALL)
    assert not get_proxy("eznas").needs_labels and get_proxy("eznas").batch_size == 16
    assert get_proxy("knas_official").batch_size == 50
