"""Shared passes: several proxies of one architecture from one network and the fewest passes.

Scored one by one, ``knas``, ``nasi``, ``grad_norm``, ``snip``, ``naswot``, ``jacob_cov`` and
``flops`` each run their own forward (and most their own backward) pass. Scored together on one
network (see :func:`shared_scores`), they need:

* **one batch-statistics pass**: a forward of the batch with BatchNorm over the mini-batch (as
  every proxy above except ``knas`` uses), during which ReLU forward pre-hooks accumulate the
  ``naswot`` kernel (:class:`~knas_core.proxies.naswot.HammingKernel`) and Conv/Linear forward
  hooks count ``flops``; then one backward of the mean cross-entropy to the parameters, from
  which ``nasi`` (``||g||^2``), ``grad_norm`` and ``snip`` are read; then, if ``jacob_cov`` is
  asked for, one more backward through the same graph to the input only (cotangent of ones,
  no weight gradients);
* **one per-sample pass** for ``knas``, whose BatchNorm normalises each sample by its own
  statistics (Xu et al. 2021; see :func:`~knas_core.proxies.knas.per_sample_batchnorm`): a
  different forward, which cannot be shared with the batch-statistics proxies without changing
  what ``knas`` means (docs/RESULTS.md: knas vs nasi);
* **no pass** for ``params`` (a sum over parameter sizes).

Every value is computed by the same function the proxy uses on its own (``nasi_of``,
``grad_norm_of``, ``snip_of``, ``jacob_cov_of``, ``HammingKernel.logdet``,
``knas_mean_gradient``), from the same quantities, so the shared values equal the separate
ones up to floating-point summation order (checked by ``tests/test_shared_pass.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import SupportsFloat

import torch
import torch.nn.functional as F
from torch import nn

from knas_core.data import Batch
from knas_core.proxies.flops import MacCounter
from knas_core.proxies.flops import flops as flops_proxy
from knas_core.proxies.grad_norm import grad_norm_of
from knas_core.proxies.jacob_cov import jacob_cov_of
from knas_core.proxies.knas import knas_mean_gradient
from knas_core.proxies.nasi import nasi_of
from knas_core.proxies.naswot import HammingKernel
from knas_core.proxies.params import params as params_proxy
from knas_core.proxies.snip import snip_of

GRADIENT_PROXIES = frozenset({"nasi", "grad_norm", "snip"})
#: Proxies :func:`shared_scores` computes; all use the caller's batch size.
SHARED_PROXIES = frozenset({"knas", "naswot", "jacob_cov", "params", "flops"} | GRADIENT_PROXIES)

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
    batch_pass = wanted & (GRADIENT_PROXIES | {"jacob_cov", "naswot"})
    if batch_pass:
        try:
            out.update(_batch_statistics_pass(model, batch, batch_pass | (wanted & {"flops"})))
        except Exception as exc:  # noqa: BLE001 - the pass failed for every proxy it serves
            out.update(dict.fromkeys(batch_pass | (wanted & {"flops"}), exc))
    elif "flops" in wanted:
        out["flops"] = _attempt(flops_proxy, model, batch)
    if "knas" in wanted:
        out["knas"] = _attempt(knas_mean_gradient, model, batch)
    return out


def _batch_statistics_pass(model: nn.Module, batch: Batch, wanted: set[str]) -> dict[str, Outcome]:
    """One forward with batch statistics (naswot and flops hooked in), the loss backward to the
    parameters, and the input backward for ``jacob_cov``; see the module docstring."""
    out: dict[str, Outcome] = {}
    gradient = wanted & GRADIENT_PROXIES
    jacobian = "jacob_cov" in wanted
    kernel = HammingKernel(model, len(batch), batch.inputs.device) if "naswot" in wanted else None
    macs = MacCounter(model) if "flops" in wanted else None
    x = batch.inputs.detach().requires_grad_(True) if jacobian else batch.inputs
    try:
        with torch.set_grad_enabled(bool(gradient) or jacobian):
            logits = model(x)
        if kernel is not None:
            kernel.see_output(logits)
    finally:
        for hooks in (kernel, macs):
            if hooks is not None:
                hooks.remove()
    if gradient:
        params = [p for p in model.parameters() if p.requires_grad]
        loss = F.cross_entropy(logits, batch.targets)
        grads = dict(zip(map(id, params), torch.autograd.grad(
            loss, params, retain_graph=jacobian, allow_unused=True), strict=True))
        finishers = {"nasi": lambda: nasi_of(grads), "grad_norm": lambda: grad_norm_of(model, grads),
                     "snip": lambda: snip_of(model, grads)}
        for name in sorted(gradient):
            out[name] = _attempt(finishers[name])
        del grads
    if jacobian:
        (jac,) = torch.autograd.grad(logits, x, torch.ones_like(logits))
        out["jacob_cov"] = _attempt(jacob_cov_of, jac)
    del logits
    if kernel is not None:
        out["naswot"] = _attempt(kernel.logdet)
    if macs is not None:
        out["flops"] = float(macs.total)
    return out
