"""Shared passes: several proxies of one architecture from one network and the fewest passes.

Scored one by one, ``knas``, ``nasi``, ``grad_norm``, ``snip``, ``grasp``, ``fisher``,
``naswot``, ``jacob_cov`` and ``flops`` each run their own forward (and most their own
backward) pass. Scored together on one network (see :func:`shared_scores`), they need:

* **one batch-statistics pass**: a forward of the batch with BatchNorm over the mini-batch (as
  every proxy above except ``knas`` uses), during which ReLU forward pre-hooks accumulate the
  ``naswot`` kernel (:class:`~knas_core.proxies.naswot.HammingKernel`), Conv/Linear forward
  hooks count ``flops`` and record the layer outputs for ``fisher``
  (:class:`~knas_core.proxies.second_order.LayerOutputs`); then one backward of the mean
  cross-entropy to the parameters and the recorded layer outputs, from which ``nasi``
  (``||g||^2``), ``grad_norm``, ``snip`` and ``fisher`` are read; then, if ``jacob_cov`` is
  asked for, one more backward through the same graph to the input only (cotangent of ones,
  no weight gradients); then, if ``grasp`` is asked for, the Hessian-gradient product: the loss
  backward is run with ``create_graph=True`` and its weight gradients ``g`` are differentiated
  once more, ``d/dW <stop_grad(g), g>``
  (:func:`~knas_core.proxies.second_order.hessian_gradient_product`), which costs no forward
  and no first backward of grasp's own (BatchNorm layers then run through
  :func:`~knas_core.proxies.second_order.twice_differentiable_batchnorm`: the same forward and
  first backward, a faster double backward);
* **one per-sample pass** for ``knas``, whose BatchNorm normalises each sample by its own
  statistics (Xu et al. 2021; see :func:`~knas_core.proxies.knas.per_sample_batchnorm`): a
  different forward, which cannot be shared with the batch-statistics proxies without changing
  what ``knas`` means (docs/RESULTS.md: knas vs nasi);
* **no pass** for ``params`` (a sum over parameter sizes).

Every value is computed by the same function the proxy uses on its own (``nasi_of``,
``grad_norm_of``, ``snip_of``, ``grasp_of``, ``fisher_of``, ``jacob_cov_of``,
``HammingKernel.logdet``, ``knas_mean_gradient``), from the same quantities, so the shared
values equal the separate ones up to floating-point summation order (checked by
``tests/test_shared_pass.py``). ``create_graph`` and the retained graphs cost memory: if the
batch pass fails with ``grasp`` in it (e.g. out of memory), it is run again without, so that
only ``grasp`` fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import nullcontext
from typing import SupportsFloat

import torch
import torch.nn.functional as F
from torch import nn

from knas_core.data import Batch
from knas_core.proxies.base import prunable_layers
from knas_core.proxies.flops import MacCounter
from knas_core.proxies.flops import flops as flops_proxy
from knas_core.proxies.grad_norm import grad_norm_of
from knas_core.proxies.jacob_cov import jacob_cov_of
from knas_core.proxies.knas import knas_mean_gradient
from knas_core.proxies.nasi import nasi_of
from knas_core.proxies.naswot import HammingKernel
from knas_core.proxies.params import params as params_proxy
from knas_core.proxies.second_order import (
    LayerOutputs,
    fisher_of,
    grasp_of,
    hessian_gradient_product,
    twice_differentiable_batchnorm,
)
from knas_core.proxies.snip import snip_of

#: Proxies read from the parameters' loss gradients.
GRADIENT_PROXIES = frozenset({"nasi", "grad_norm", "snip"})
#: Proxies of the batch-statistics pass (see the module docstring).
BATCH_PASS_PROXIES = GRADIENT_PROXIES | {"grasp", "fisher", "jacob_cov", "naswot"}
#: Proxies :func:`shared_scores` computes; all use the caller's batch size.
SHARED_PROXIES = frozenset(BATCH_PASS_PROXIES | {"knas", "params", "flops"})

Outcome = float | Exception


def _attempt(fn: Callable[..., SupportsFloat], *args: object) -> Outcome:  # a finisher and its inputs
    try:
        return float(fn(*args))
    except Exception as exc:  # noqa: BLE001 - one proxy's failure must not cost the others
        return exc


def shared_scores(model: nn.Module, batch: Batch, names: Iterable[str]) -> dict[str, Outcome]:
    """Score ``names`` (a subset of :data:`SHARED_PROXIES`) on one network with shared passes.

    Args:
        model: freshly initialised network in train mode on the batch's device; left as found
            apart from ``.grad`` (untouched) and BatchNorm running statistics.
        batch: inputs ``(n, 3, H, W)`` and targets ``(n,)``.
        names: proxy names.

    Returns:
        ``{name: value}``, or ``{name: exception}`` for a proxy that failed: its own last step
        (a singular NASWOT kernel, zero-variance Jacobians) or the pass it shares (e.g. out of
        memory: then every proxy of that pass gets the exception).

    Raises:
        ValueError: a name without a shared pass (see :data:`SHARED_PROXIES`).
    """
    wanted = set(names)
    unknown = wanted - SHARED_PROXIES
    if unknown:
        raise ValueError(f"no shared pass for {', '.join(sorted(unknown))}")
    out: dict[str, Outcome] = {}
    if "params" in wanted:
        out["params"] = _attempt(params_proxy, model, batch)
    batch_pass = wanted & BATCH_PASS_PROXIES
    if batch_pass:
        out.update(_attempt_batch_pass(model, batch, batch_pass | (wanted & {"flops"})))
    elif "flops" in wanted:
        out["flops"] = _attempt(flops_proxy, model, batch)
    if "knas" in wanted:
        out["knas"] = _attempt(knas_mean_gradient, model, batch)
    return out


def _attempt_batch_pass(model: nn.Module, batch: Batch, wanted: set[str]) -> dict[str, Outcome]:
    """:func:`_batch_statistics_pass`, or every proxy of it failed with the pass's exception;
    a pass with ``grasp`` that fails is run again without it (its graph of the gradients is
    the memory the others do not need), so only ``grasp`` gets the exception."""
    try:
        return _batch_statistics_pass(model, batch, wanted)
    except Exception as exc:  # noqa: BLE001 - the pass failed for every proxy it serves
        if "grasp" not in wanted or not wanted - {"grasp"}:
            return dict.fromkeys(wanted, exc)
        failed = exc
    if batch.inputs.is_cuda:
        torch.cuda.empty_cache()
    return {"grasp": failed, **_attempt_batch_pass(model, batch, wanted - {"grasp"})}


def _batch_statistics_pass(model: nn.Module, batch: Batch, wanted: set[str]) -> dict[str, Outcome]:
    """One forward with batch statistics (naswot, flops and fisher hooked in), the loss backward
    to the parameters and the layer outputs (with ``create_graph`` for grasp), the input
    backward for ``jacob_cov``, and grasp's Hessian-gradient product; see the module docstring."""
    out: dict[str, Outcome] = {}
    gradient = wanted & GRADIENT_PROXIES
    second_order = "grasp" in wanted
    jacobian = "jacob_cov" in wanted
    backward = bool(gradient) or second_order or "fisher" in wanted
    kernel = HammingKernel(model, len(batch), batch.inputs.device) if "naswot" in wanted else None
    macs = MacCounter(model) if "flops" in wanted else None
    outputs = LayerOutputs(model) if "fisher" in wanted else None
    x = batch.inputs.detach().requires_grad_(True) if jacobian else batch.inputs
    try:
        with torch.set_grad_enabled(backward or jacobian), \
                twice_differentiable_batchnorm(model) if second_order else nullcontext():
            logits = model(x)
        if kernel is not None:
            kernel.see_output(logits)
    finally:
        for hooks in (kernel, macs, outputs):
            if hooks is not None:
                hooks.remove()
    grads: dict[int, torch.Tensor | None] = {}  # loss gradients; with a graph for grasp
    if backward:
        params = [p for p in model.parameters() if p.requires_grad] if gradient or second_order else []
        acts = outputs.tensors if outputs is not None else []
        loss = F.cross_entropy(logits, batch.targets)
        found = torch.autograd.grad(loss, [*params, *acts], retain_graph=jacobian or second_order,
                                    create_graph=second_order, allow_unused=True)
        grads = dict(zip(map(id, params), found[:len(params)], strict=True))
        act_grads = found[len(params):]
        del found, loss
        if gradient:
            plain = {k: None if g is None else g.detach() for k, g in grads.items()}
            finishers = {"nasi": lambda: nasi_of(plain),
                         "grad_norm": lambda: grad_norm_of(model, plain),
                         "snip": lambda: snip_of(model, plain)}
            for name in sorted(gradient):
                out[name] = _attempt(finishers[name])
            del plain
        if outputs is not None:
            out["fisher"] = _attempt(fisher_of, outputs, act_grads)
            outputs.calls.clear()
        del act_grads
    if jacobian:
        (jac,) = torch.autograd.grad(logits, x, torch.ones_like(logits), retain_graph=second_order)
        out["jacob_cov"] = _attempt(jacob_cov_of, jac)
        del jac
    if second_order:
        weights = [m.weight for m in prunable_layers(model)]
        weight_grads = [grads.get(id(w)) for w in weights]
        grads.clear()  # only the weights' gradients are differentiated again
        out["grasp"] = _attempt(lambda: grasp_of(weights, hessian_gradient_product(weights, weight_grads)))
        del weight_grads
    del logits, grads
    if kernel is not None:
        out["naswot"] = _attempt(kernel.logdet)
    if macs is not None:
        out["flops"] = float(macs.total)
    return out
