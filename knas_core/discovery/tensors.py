"""Per-block tensors of ReLU-Conv-BN blocks, gathered once per architecture and input kind, and
their on-disk cache (the expensive half of proxy discovery; Akhauri et al., NeurIPS 2022, Sec. 3).

This module imports only torch, numpy and the scoring helpers (no DEAP, Celery or SQLAlchemy),
so it can run alone on a GPU machine: ``benchmarks/discovery.py gather``.

For every block ``ReLU -> Conv2d -> BatchNorm2d`` and every input kind we keep (names are the
leaves of the program language, prefixed by the kind, e.g. ``data_A_grad``):

=========  ==============================================  =====================
name       tensor                                          shape
=========  ==============================================  =====================
``W``      conv weight                                     ``(Cout, Cin, k, k)``
``W_grad`` d sum(logits) / d W                             ``(Cout, Cin, k, k)``
``A``      ReLU input                                      ``(b, Cin, H, W)``
``A_grad`` d sum(logits) / d A                             ``(b, Cin, H, W)``
``X``      conv input (= ReLU output)                      ``(b, Cin, H, W)``
``X_grad`` d sum(logits) / d X                             ``(b, Cin, H, W)``
``Y``      BN output                                       ``(b, Cout, H', W')``
``Y_grad`` d sum(logits) / d Y                             ``(b, Cout, H', W')``
=========  ==============================================  =====================

Input kinds: ``data`` (the real batch), ``noise`` (standard Gaussian of the batch's shape) and
``mixed`` (data + 0.1 x the same noise). Gradients are of the sum of logits: no labels.

Memory reduction (documented in the README): the pass always uses the whole batch (BatchNorm
statistics, as the proxies do), but only the first ``images`` images of each activation are
kept (``b = images``); weights are kept whole. On disk every tensor is stored as float16
scaled by its max-abs value (kept in float32), so signs and relative magnitudes down to ~1e-7
of the tensor's maximum survive. With ``images=None`` and ``dtype=float32`` nothing is reduced,
which is what the test comparing against the ``eznas`` proxy uses.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, overload

import torch
from torch import nn

from knas_core.data import Batch
from knas_core.proxies.eznas import relu_conv_bn_blocks

KINDS: tuple[str, ...] = ("data", "noise", "mixed")
TENSORS: tuple[str, ...] = ("W", "W_grad", "A", "A_grad", "X", "X_grad", "Y", "Y_grad")
NOISE_SCALE = 0.1

#: One block: leaf name (``<kind>_<tensor>``) -> tensor.
Block = dict[str, torch.Tensor]


def check_kinds(kinds: Sequence[str]) -> tuple[str, ...]:
    """``kinds`` as a tuple if it names one or more of :data:`KINDS`, else a ``ValueError``."""
    if not kinds or set(kinds) - set(KINDS):
        raise ValueError(f"must be among {', '.join(KINDS)}, got {', '.join(kinds) or 'none'}")
    return tuple(kinds)


def leaf_names(kinds: Sequence[str] = KINDS) -> list[str]:
    """Every leaf name for ``kinds``, in a fixed order (``data_W``, ``data_W_grad``, ...)."""
    return [f"{k}_{t}" for k in kinds for t in TENSORS]


def kind_inputs(batch: Batch, kind: str, noise_seed: int = 0) -> torch.Tensor:
    """The network input for one kind; the noise is drawn by ``noise_seed`` on the CPU."""
    if kind == "data":
        return batch.inputs
    g = torch.Generator().manual_seed(noise_seed)
    noise = torch.randn(batch.inputs.shape, generator=g).to(batch.inputs.device)
    if kind == "noise":
        return noise
    if kind == "mixed":
        return batch.inputs + NOISE_SCALE * noise
    raise ValueError(f"unknown input kind {kind!r}; choose from {', '.join(KINDS)}")


def _keep_input(store: dict[str, torch.Tensor]) -> Callable[..., None]:
    def hook(_m: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        inputs[0].retain_grad()
        store["A"] = inputs[0]
    return hook


def _keep_output(store: dict[str, torch.Tensor], name: str) -> Callable[..., None]:
    def hook(_m: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        output.retain_grad()
        store[name] = output
    return hook


def gather(model: nn.Module, batch: Batch, *, kinds: Sequence[str] = KINDS, images: int | None = None,
           noise_seed: int = 0) -> list[Block]:
    """One forward/backward pass of ``sum(logits)`` per kind; returns one :data:`Block` per
    ReLU-Conv-BN block that received a gradient, tensors detached on the CPU (float32).

    ``model`` is used as given (train mode, its device); its gradients are overwritten.
    """
    blocks = relu_conv_bn_blocks(model)
    if not blocks:
        raise ValueError("network has no ReLU-Conv-BN blocks")
    out: list[Block] = [{} for _ in blocks]
    dropped: set[int] = set()
    keep = slice(None) if images is None else slice(0, images)
    for kind in kinds:
        seen: list[dict[str, torch.Tensor]] = [{} for _ in blocks]
        handles = []
        for i, b in enumerate(blocks):
            handles.append(b[0].register_forward_pre_hook(_keep_input(seen[i])))
            handles.append(b[0].register_forward_hook(_keep_output(seen[i], "X")))
            handles.append(b[2].register_forward_hook(_keep_output(seen[i], "Y")))
        try:
            model.zero_grad(set_to_none=True)
            model(kind_inputs(batch, kind, noise_seed)).sum().backward()
        finally:
            for h in handles:
                h.remove()
        for i, b in enumerate(blocks):
            s, conv = seen[i], b[1]
            assert isinstance(conv, nn.Conv2d)  # relu_conv_bn_blocks: ReLU, Conv2d, BatchNorm2d
            grads = {n: g for n in ("A", "X", "Y") if n in s and (g := s[n].grad) is not None}
            if len(grads) < 3 or conv.weight.grad is None:
                dropped.add(i)  # no gradient reached this block: dropped for every kind
                continue
            out[i].update({
                f"{kind}_W": conv.weight.detach().cpu().clone(),
                f"{kind}_W_grad": conv.weight.grad.detach().cpu().clone(),
                **{f"{kind}_{n}": s[n].detach()[keep].cpu().clone() for n in ("A", "X", "Y")},
                **{f"{kind}_{n}_grad": g.detach()[keep].cpu().clone() for n, g in grads.items()},
            })
    model.zero_grad(set_to_none=True)
    return [b for i, b in enumerate(out) if i not in dropped]


# --- the on-disk cache ---------------------------------------------------------------------------

@dataclass(frozen=True)
class GatherSetup:
    """Everything that determines the cached tensors of an architecture."""

    dataset: str = "cifar10"
    C: int = 16
    N: int = 5
    batch_size: int = 16
    images: int | None = None
    seed: int = 0
    kinds: tuple[str, ...] = KINDS
    device_type: str = "cpu"
    data_source: str = "auto"
    half: bool = True
    space: str = "nb201"

    def key(self) -> str:
        """The cache folder's name; the space is named only when it is not ``nb201`` (so caches
        gathered before spaces were configurable keep their names)."""
        img = "all" if self.images is None else str(self.images)
        dtype = "f16" if self.half else "f32"
        space = "" if self.space == "nb201" else f"{self.space}-"
        return (f"{space}{self.dataset}-C{self.C}N{self.N}-b{self.batch_size}-img{img}-s{self.seed}-"
                f"{'+'.join(self.kinds)}-{self.device_type}-{self.data_source}-{dtype}")


def _pack(t: torch.Tensor, half: bool) -> dict[str, Any]:
    if not half:
        return {"t": t.float()}
    scale = float(t.abs().max()) if t.numel() else 0.0
    scale = scale if scale > 0 and torch.isfinite(torch.tensor(scale)) else 1.0
    return {"t": (t.double() / scale).half(), "s": scale}


def _unpack(d: dict[str, Any]) -> torch.Tensor:
    t = d["t"].float()
    return t * d["s"] if "s" in d else t


@dataclass
class TensorCache:
    """``root/<setup key>/manifest.json`` and one ``<index>.pt`` per architecture.

    A file holds ``{"arch", "index", "blocks": [...]}`` or ``{"arch", "index", "error"}`` (the
    pass failed: e.g. out of memory); writes go through a temporary file and a rename, so a
    killed process leaves no half-written entry and gathering resumes where it stopped.
    """

    root: Path
    setup: GatherSetup
    _memory: dict[int, list[Block] | str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.dir = self.root / self.setup.key()
        self.dir.mkdir(parents=True, exist_ok=True)
        manifest = self.dir / "manifest.json"
        if not manifest.exists():
            manifest.write_text(json.dumps({**asdict(self.setup), "leaves": leaf_names(self.setup.kinds)}))

    def path(self, index: int) -> Path:
        return self.dir / f"{int(index)}.pt"

    def has(self, index: int) -> bool:
        return self.path(index).exists()

    def put(self, index: int, arch: str, blocks: list[Block] | None, error: str | None = None) -> None:
        payload: dict[str, Any] = {"arch": arch, "index": int(index)}
        if error is not None:
            payload["error"] = error
        else:
            payload["blocks"] = [{k: _pack(v, self.setup.half) for k, v in b.items()} for b in blocks or []]
        tmp = self.path(index).with_suffix(f".tmp{os.getpid()}")
        torch.save(payload, tmp)
        os.replace(tmp, self.path(index))

    def get(self, index: int, *, keep: bool = False) -> list[Block] | str:
        """The blocks of ``index`` as float32 tensors, or the error string of a failed pass.

        ``keep`` holds the result in memory (the training sample is read every generation).
        """
        if index in self._memory:
            return self._memory[index]
        if not self.has(index):
            raise KeyError(f"architecture {index} is not in the tensor cache {self.dir}; gather it first")
        payload = torch.load(self.path(index), map_location="cpu", weights_only=True)
        value: list[Block] | str = payload["error"] if "error" in payload else \
            [{k: _unpack(v) for k, v in b.items()} for b in payload["blocks"]]
        if keep:
            self._memory[index] = value
        return value


class CachedArchs(Sequence[list[Block] | str]):
    """The cached blocks of ``indices`` as a sequence; ``keep`` holds them in memory once read,
    otherwise each access loads from disk (a streamed sample: one architecture in memory)."""

    def __init__(self, cache: TensorCache, indices: Sequence[int], keep: bool) -> None:
        self.cache, self.indices, self.keep = cache, list(indices), keep
        self.failed: set[int] = set()  # indices whose gather failed, as they are read

    def __len__(self) -> int:
        return len(self.indices)

    @overload
    def __getitem__(self, j: int) -> list[Block] | str: ...
    @overload
    def __getitem__(self, j: slice) -> list[list[Block] | str]: ...
    def __getitem__(self, j: int | slice) -> list[Block] | str | list[list[Block] | str]:
        if isinstance(j, slice):
            return [self[i] for i in range(*j.indices(len(self)))]
        value = self.cache.get(self.indices[j], keep=self.keep)
        if isinstance(value, str):
            self.failed.add(self.indices[j])
        return value


def gather_archs(archs: Iterable[tuple[int, str]], cache: TensorCache, *, device: str = "auto",
                 data_dir: str | os.PathLike[str] | None = None,
                 progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
    """Gather and cache every ``(index, arch)`` not cached yet; failures are cached as errors.

    Returns ``{"gathered", "cached", "failed"}`` counts. The network of each architecture is
    built exactly as :class:`knas_core.scoring.Scorer` builds it (same seed, same batch).
    """
    from knas_core.scoring import Scorer, describe_exception, seed_everything

    s = cache.setup
    scorer = Scorer(s.dataset, space=s.space, batch_size=s.batch_size, seed=s.seed, device=device,
                    data_source=s.data_source, data_dir=data_dir, model_options={"C": s.C, "N": s.N})
    items = list(archs)
    counts = {"gathered": 0, "cached": 0, "failed": 0}
    for n, (index, arch) in enumerate(items, start=1):
        if cache.has(index):
            counts["cached"] += 1
        else:
            try:
                batch = scorer.batch(s.batch_size)
                seed_everything(s.seed)
                model = scorer.space.build_model(arch, batch.num_classes, C=s.C, N=s.N)
                model = model.to(scorer.device).train()
                blocks = gather(model, batch, kinds=s.kinds, images=s.images, noise_seed=s.seed)
                cache.put(index, arch, blocks)
                counts["gathered"] += 1
            except Exception as exc:  # noqa: BLE001 - a failed pass is data, recorded in the cache
                if scorer.device.type == "cuda":
                    torch.cuda.empty_cache()
                cache.put(index, arch, None, error=describe_exception(exc))
                counts["failed"] += 1
        if progress is not None:
            progress(n, len(items))
    return counts
