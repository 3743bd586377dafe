"""What a proxy is, and the helpers several proxies share."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from knas_core.data import Batch

ProxyFn = Callable[[nn.Module, Batch], float]
#: ``combine(arch, member_values) -> float``: a proxy computed from other proxies' values.
CombineFn = Callable[[str, Mapping[str, float]], float]


@dataclass(frozen=True)
class Proxy:
    """A registered zero-cost proxy.

    Attributes:
        name: registry key.
        fn: ``fn(model, batch) -> float``; ``model`` is freshly initialised, in train mode,
            on the batch's device.
        shares_network: ``fn`` leaves the network's weights, structure and mode as it found
            them (it may write ``.grad`` and BatchNorm running statistics, which a train-mode
            pass never reads), so several such proxies can score one network built once per
            architecture with the values each would get from its own fresh network. ``False``
            (the default, e.g. for plugins) gives the proxy its own freshly built network.
        higher_is_better: direction used by rankings and statistics.
        needs_labels: whether ``batch.targets`` are used.
        batch_size: the batch size the method prescribes, or ``None`` for the caller's.
        reference: paper and equation the formula comes from.
        members / combine: a *derived* proxy (e.g. a ``calibrated:NAME`` model of
            :mod:`knas_core.calibration`) has no network formula of its own: its value for an
            architecture is ``combine(arch, {member: value})`` of the values of the proxies
            ``members`` on that architecture, which :meth:`knas_core.scoring.Scorer.score`
            computes first (sharing their network and passes). ``fn`` of such a proxy raises.
    """

    name: str
    fn: ProxyFn
    higher_is_better: bool = True
    needs_labels: bool = True
    batch_size: int | None = None
    reference: str = ""
    shares_network: bool = False
    members: tuple[str, ...] = ()
    combine: CombineFn | None = None

    @property
    def derived(self) -> bool:
        """Whether the value comes from other proxies' values (``members``, ``combine``)."""
        return self.combine is not None

    @property
    def summary(self) -> str:
        doc = (self.fn.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""

    def __call__(self, model: nn.Module, batch: Batch) -> float:
        return self.fn(model, batch)


@contextmanager
def batchnorm_forward(model: nn.Module,
                      forward: Callable[[nn.modules.batchnorm._BatchNorm, torch.Tensor], torch.Tensor]
                      ) -> Iterator[nn.Module]:
    """Within the block, every train-mode BatchNorm layer ``m`` of ``model`` computes
    ``forward(m, x)`` instead of its own forward; the layers are restored on exit.

    Used by :func:`knas_core.proxies.knas.per_sample_batchnorm` and
    :func:`knas_core.proxies.second_order.twice_differentiable_batchnorm`."""
    patched = [m for m in model.modules()
               if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]
    for m in patched:
        # an instance attribute shadows the class's method until `del m.forward` below
        m.forward = functools.partial(forward, m)  # type: ignore[method-assign]
    try:
        yield model
    finally:
        for m in patched:
            del m.forward


def prunable_layers(model: nn.Module) -> Iterator[nn.Conv2d | nn.Linear]:
    """Conv2d and Linear layers: the units the zero-cost literature scores (Abdelfattah et al., 2021)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            yield m


def loss_gradients(model: nn.Module, batch: Batch) -> dict[int, torch.Tensor | None]:
    """Gradients of the mean cross-entropy of ``batch``, keyed by ``id(parameter)``.

    One forward and one backward pass (``torch.autograd.grad``: ``.grad`` is left untouched);
    a parameter the loss does not reach maps to ``None``.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    loss = F.cross_entropy(model(batch.inputs), batch.targets)
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return {id(p): g for p, g in zip(params, grads, strict=True)}


def backward_cross_entropy(model: nn.Module, batch: Batch) -> torch.Tensor:
    """Zero gradients, then back-propagate the mean cross-entropy of ``batch``; returns the loss."""
    model.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(batch.inputs), batch.targets)
    loss.backward()
    return loss.detach()

