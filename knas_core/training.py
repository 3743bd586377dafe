"""Train a candidate network the way NAS-Bench-201 trained its networks, and the cheap alternative.

Hyper-parameters (Dong & Yang, ICLR 2020, Sec. 2.3 and Table 2): SGD with Nesterov momentum 0.9,
weight decay 5e-4, batch size 256, initial learning rate 0.1 annealed to 0 by a cosine schedule,
cross-entropy loss, random crop (padding 4) + horizontal flip augmentation. The benchmark reports
12-epoch and 200-epoch schedules; ``TrainConfig.epochs`` (default 12) and ``train_subset`` make
shorter, cheaper runs. The learning rate follows the cosine per optimisation step
(``torch.optim.lr_scheduler.CosineAnnealingLR`` with ``T_max = epochs * steps_per_epoch``).

A run is a pure function of (architecture, dataset, data, :class:`TrainConfig`, model options):
the initialisation is seeded by ``config.seed``, the data order of epoch ``e`` by
``(seed, e)`` and the augmentation of step ``s`` by ``(seed, e, s)``. A checkpoint therefore
only has to hold the weights, optimiser, scheduler and the partial epoch statistics: a killed
run resumed from it ends with the same history and weights as an uninterrupted one (bit for bit
on the CPU; CUDA kernels may be non-deterministic).

Instead of training, :func:`knas_core.groundtruth.benchmark_lookup` reads the benchmark's own
accuracies (the standard NAS-Bench-201 protocol for search methods: query the 12-epoch
validation accuracy, report the 200-epoch test accuracy).
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import ConfigDict, Field
from torch import nn

from knas_core.config import Device, RunConfig, at_least
from knas_core.data import _MEAN_STD, IMAGE_SIZE, NUM_CLASSES, ImageSource, SyntheticSource, load_source
from knas_core.device import resolve_device
from knas_core.errors import Cancelled, ConfigError
from knas_core.groundtruth import canonical_dataset
from knas_core.scoring import seed_everything
from knas_core.spaces import SearchSpace, get_space

#: Images per forward pass when evaluating (no gradients, so larger than training batches).
EVAL_BATCH_SIZE = 512
#: Checkpoint format; bump when the saved dict changes incompatibly.
CHECKPOINT_VERSION = 1
# Stream tags so the data order and the augmentation draw from independent seed sequences.
_ORDER_STREAM, _AUGMENT_STREAM, _SUBSET_STREAM = 1, 2, 3


class TrainingCancelled(Cancelled):
    """``should_stop()`` returned True; the run was checkpointed (when a path was given) and stopped.

    ``epoch`` is the 0-based epoch in progress and ``step`` the optimisation steps completed in it.
    """

    def __init__(self, checkpoint_path: Path | None, epoch: int, step: int) -> None:
        where = f"checkpoint saved to {checkpoint_path}" if checkpoint_path else "no checkpoint path"
        super().__init__(f"training cancelled in epoch {epoch + 1} after step {step} ({where})")
        self.checkpoint_path, self.epoch, self.step = checkpoint_path, epoch, step


class TrainConfig(RunConfig):
    """How to train. Defaults are NAS-Bench-201's 12-epoch schedule (Dong & Yang 2020, Table 2).

    Attributes:
        epochs: passes over the training images.
        batch_size: images per optimisation step (the last step of an epoch may be smaller).
        lr: initial learning rate, cosine-annealed to 0 over ``epochs * steps_per_epoch`` steps.
        momentum, nesterov, weight_decay: SGD settings.
        seed: initialisation, training subset, data order and augmentation.
        device: ``auto`` | ``cpu`` | ``cuda`` (see :func:`knas_core.device.resolve_device`).
        train_subset: number of training images (a seeded sample without replacement);
            ``None`` = all. For synthetic data the training set has ``train_subset or 512`` images.
        test_subset: number of ``test`` images evaluated after each epoch (a seeded sample, the
            same every epoch); ``None`` = the whole split, as the benchmark reports.
        augment: random crop with zero padding (4 pixels at 32x32, 2 at 16x16; in pixel space,
            i.e. black) and a horizontal flip with probability 1/2.
        num_workers: kept for loader-based sources; images are held in memory and batched in the
            training process, so it has no effect yet.
        checkpoint_every_steps: also checkpoint mid-epoch every this many steps (0 = epoch ends only).

    ``device``, ``num_workers`` and ``checkpoint_every_steps`` do not change the result, so a
    checkpoint may be resumed with other values for them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: ClassVar[str] = "training"

    epochs: Annotated[int, at_least(1)] = 12
    batch_size: Annotated[int, at_least(1)] = 256
    lr: Annotated[float, Field(gt=0)] = 0.1
    momentum: Annotated[float, at_least(0)] = 0.9
    nesterov: bool = True
    weight_decay: Annotated[float, at_least(0)] = 5e-4
    seed: Annotated[int, at_least(0)] = 0
    device: Device = "auto"
    train_subset: Annotated[int | None, at_least(1)] = None
    test_subset: Annotated[int | None, at_least(1)] = None
    augment: bool = True
    num_workers: Annotated[int, at_least(0)] = 0
    checkpoint_every_steps: Annotated[int, at_least(0)] = 50

    #: Fields that do not change the result (a checkpoint may be resumed with other values).
    NOT_IDENTITY: ClassVar[tuple[str, ...]] = ("device", "num_workers", "checkpoint_every_steps")

    def identity(self) -> dict[str, Any]:
        """The fields that determine the result (everything but device, workers, checkpointing)."""
        return {name: getattr(self, name) for name in type(self).model_fields
                if name not in self.NOT_IDENTITY}


@dataclass(frozen=True)
class EpochResult:
    """One epoch: mean training loss/accuracy over its steps, test loss/accuracy after it.

    Losses are mean cross-entropy per image (nats); accuracies are percentages in [0, 100];
    ``lr`` is the learning rate after the epoch's last step; ``seconds`` is wall time (training
    plus evaluation, summed over resumed segments). ``epoch`` is 1-based.
    """

    epoch: int
    train_loss: float
    train_acc: float
    test_loss: float
    test_acc: float
    lr: float
    seconds: float


@dataclass
class TrainResult:
    """A finished run: per-epoch history, total wall seconds (all segments) and the device used."""

    arch: str
    dataset: str
    epochs: list[EpochResult] = field(default_factory=list)
    seconds: float = 0.0
    device: str = "cpu"
    final_test_acc: float = float("nan")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class DataSplit:
    """Indexable labelled images: ``take(positions)`` -> normalised ``(n, 3, H, W)``, labels ``(n,)``.

    ``description`` names the source and sizes (checked when resuming); ``synthetic`` marks
    standard-normal inputs.
    """

    take: Callable[[np.ndarray], tuple[torch.Tensor, torch.Tensor]]
    size: int
    description: str
    synthetic: bool = False


def _tensor_split(x: torch.Tensor, y: torch.Tensor, description: str) -> DataSplit:
    return DataSplit(lambda idx: (x[torch.from_numpy(idx)], y[torch.from_numpy(idx)]), len(y), description,
                     synthetic=True)


def _source_split(source: ImageSource, subset: int | None, seed: int, split: str) -> DataSplit:
    description = f"{type(source).__name__}:{split}:{len(source)}:{subset}"
    if subset is None:
        return DataSplit(source.take, len(source), description)
    if subset > len(source):
        raise ConfigError(f"{split}_subset={subset} exceeds the {len(source)} {split} images available")
    rng = np.random.default_rng([seed, _SUBSET_STREAM, int(split == "test")])
    chosen = np.sort(rng.choice(len(source), subset, replace=False))
    return DataSplit(lambda idx: source.take(chosen[idx]), subset, description)


def load_splits(dataset: str, config: TrainConfig, data_source: str = "auto",
                data_dir: str | os.PathLike[str] | None = None) -> tuple[DataSplit, DataSplit]:
    """Training images and test images (``config.train_subset`` / ``test_subset`` of them, or all).

    Synthetic data (see :class:`knas_core.data.SyntheticSource`) is a fixed set of
    ``train_subset or 512`` images drawn with ``seed`` and a test set of ``test_subset`` or as
    many images drawn with ``seed + 1``. An ImageFolder source has no splits: both come from
    the same folder.
    """
    train_source = load_source(dataset, data_source, data_dir, "train")
    if isinstance(train_source, SyntheticSource):
        n = config.train_subset or 512
        n_test = config.test_subset or n
        train, test = train_source.batch(n, config.seed), train_source.batch(n_test, config.seed + 1)
        return (_tensor_split(train.inputs, train.targets, f"SyntheticSource:train:{n}"),
                _tensor_split(test.inputs, test.targets, f"SyntheticSource:test:{n_test}"))
    test_source = load_source(dataset, data_source, data_dir, "test")
    return (_source_split(train_source, config.train_subset, config.seed, "train"),
            _source_split(test_source, config.test_subset, config.seed, "test"))


def derived_seed(*keys: int) -> int:
    """A 64-bit seed that is a fixed function of non-negative integer ``keys`` (NumPy SeedSequence)."""
    words = np.random.SeedSequence([int(k) for k in keys]).generate_state(2, dtype=np.uint32)
    return int(words[0]) << 32 | int(words[1])


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The training order of 0-based ``epoch``: a permutation of ``range(n)`` fixed by (seed, epoch)."""
    return np.random.default_rng(derived_seed(seed, epoch, _ORDER_STREAM)).permutation(n)


def augment_generator(seed: int, epoch: int, step: int) -> torch.Generator:
    """The CPU generator for the augmentation of one step, fixed by (seed, epoch, step)."""
    return torch.Generator().manual_seed(derived_seed(seed, epoch, step, _AUGMENT_STREAM))


def normalised_black(dataset: str) -> torch.Tensor:
    """The per-channel value ``(3,)`` of a black pixel after the dataset's normalisation."""
    mean, std = _MEAN_STD[canonical_dataset(dataset)]
    return -torch.tensor(mean) / torch.tensor(std)


def random_crop_flip(images: torch.Tensor, generator: torch.Generator, padding: int | None = None,
                     fill: torch.Tensor | float = 0.0) -> torch.Tensor:
    """Random crop after padding, then a random horizontal flip, on a normalised batch.

    The tensor form of torchvision's ``RandomCrop(H, padding)`` + ``RandomHorizontalFlip()`` used
    by NAS-Bench-201 (Dong & Yang 2020, Sec. 2.3), applied independently to each image.

    Args:
        images: ``(B, C, H, W)`` float, any device.
        generator: CPU generator drawing the offsets ``(B, 2)`` in ``[0, 2 * padding]`` and the
            flips ``(B,)``.
        padding: pixels added on each side; default ``H // 8`` (4 at 32x32, 2 at 16x16).
        fill: value of the padded pixels: a scalar or per-channel ``(C,)`` (normalised black for
            zero padding in pixel space, see :func:`normalised_black`).

    Returns a new ``(B, C, H, W)`` tensor.
    """
    b, c, h, w = images.shape
    pad = h // 8 if padding is None else padding
    offsets = torch.randint(0, 2 * pad + 1, (b, 2), generator=generator)
    flips = torch.rand(b, generator=generator) < 0.5
    fill_t = torch.as_tensor(fill, dtype=images.dtype, device=images.device).reshape(-1)
    padded = fill_t.reshape(1, -1, 1, 1).expand(b, c, h + 2 * pad, w + 2 * pad).clone()
    padded[:, :, pad:pad + h, pad:pad + w] = images
    rows = offsets[:, :1] + torch.arange(h)                                       # (B, H)
    cols = torch.where(flips[:, None], torch.arange(w - 1, -1, -1), torch.arange(w)) + offsets[:, 1:]
    rows, cols = rows.to(images.device), cols.to(images.device)
    batch = torch.arange(b, device=images.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]   # (B, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()


# --------------------------------------------------------------------------- training


@torch.no_grad()
def evaluate(model: nn.Module, split: DataSplit, device: torch.device,
             batch_size: int = EVAL_BATCH_SIZE) -> tuple[float, float]:
    """Mean cross-entropy (nats per image) and accuracy (%) of ``model`` in eval mode on ``split``."""
    was_training = model.training
    model.eval()
    loss_sum, correct = 0.0, 0
    for start in range(0, split.size, batch_size):
        x, y = split.take(np.arange(start, min(start + batch_size, split.size)))
        x, y = x.to(device), y.to(device)
        logits = model(x)
        loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
        correct += int((logits.argmax(1) == y).sum())
    model.train(was_training)
    return loss_sum / split.size, 100.0 * correct / split.size


@dataclass
class _Progress:
    """Where a run stands: ``epoch`` (0-based) in progress, ``step`` steps done in it, partial sums."""

    epoch: int = 0
    step: int = 0
    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    seconds: float = 0.0
    history: list[EpochResult] = field(default_factory=list)

    def next_epoch(self) -> None:
        self.epoch, self.step, self.loss_sum, self.correct, self.seen, self.seconds = \
            self.epoch + 1, 0, 0.0, 0, 0, 0.0


def _rng_states() -> dict[str, Any]:
    state = np.random.get_state(legacy=True)
    assert isinstance(state, tuple)  # legacy=True: the tuple form, not the dict
    name, keys, pos, has_gauss, cached = state
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": (name, keys.tolist(), pos, has_gauss, cached),
            "python": random.getstate()}


def _set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])
    name, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    random.setstate(tuple(x if not isinstance(x, list) else tuple(x) for x in states["python"]))


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` with ``torch.save`` atomically: a temporary file, fsync, ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _load_checkpoint(path: Path, identity: dict[str, Any]) -> dict[str, Any]:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"checkpoint {path} cannot be read ({type(exc).__name__}: {exc}); "
                         "delete it to start afresh") from exc
    if not isinstance(payload, dict) or payload.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"checkpoint {path} is not a version-{CHECKPOINT_VERSION} training checkpoint")
    saved = payload["identity"]
    diffs = [f"{k}: checkpoint {saved.get(k)!r} vs requested {v!r}"
             for k, v in identity.items() if saved.get(k) != v]
    if diffs:
        raise ValueError(f"checkpoint {path} belongs to another run ({'; '.join(diffs)}); "
                         "use another checkpoint path or delete it")
    return payload


def train_architecture(arch: str, dataset: str, config: TrainConfig, *,
                       space: str | SearchSpace = "nb201",
                       model_options: dict[str, Any] | None = None,
                       data_source: str = "auto",
                       data_dir: str | os.PathLike[str] | None = None,
                       checkpoint_path: str | os.PathLike[str] | None = None,
                       on_epoch: Callable[[EpochResult], None] | None = None,
                       should_stop: Callable[[], bool] | None = None) -> TrainResult:
    """Train ``arch`` on ``dataset`` from scratch (or from ``checkpoint_path``) and test every epoch.

    Args:
        arch: architecture string of ``space``.
        dataset: ``cifar10``, ``cifar100`` or ``imagenet16-120``.
        config: hyper-parameters, see :class:`TrainConfig`.
        space: search-space name or instance; builds the network with ``model_options``
            (e.g. ``{"C": 16, "N": 5}``, the benchmark's size).
        data_source / data_dir: see :func:`knas_core.data.load_source`; training uses the
            ``train`` split, the test accuracy the ``test`` split (batches of 512).
        checkpoint_path: resume from this file when it exists, and write it (atomically) after
            every epoch, every ``config.checkpoint_every_steps`` steps and on cancellation. The
            final file holds the trained weights (``payload["model"]``).
        on_epoch: called with each newly finished epoch's :class:`EpochResult` (after it is
            checkpointed; epochs finished before a resume are not reported again).
        should_stop: polled before every step; when it returns True the run is checkpointed and
            :class:`TrainingCancelled` raised.

    Returns the :class:`TrainResult`, identical (bar ``seconds``) whether or not the run was resumed.
    Raises ``ValueError`` when the checkpoint was written for another arch, dataset, config,
    model options or data.
    """
    ds = canonical_dataset(dataset)
    search_space = get_space(space) if isinstance(space, str) else space
    arch = search_space.validate(arch)
    options = dict(model_options or {})
    device = resolve_device(config.device)
    train, test = load_splits(ds, config, data_source, data_dir)
    steps_per_epoch = math.ceil(train.size / config.batch_size)
    identity = {"arch": arch, "dataset": ds, "space": search_space.name, "model_options": options,
                "config": config.identity(), "data": [train.description, test.description]}

    seed_everything(config.seed)
    model = search_space.build_model(arch, NUM_CLASSES[ds], **options).to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                nesterov=config.nesterov, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=config.epochs * steps_per_epoch, eta_min=0.0)
    progress = _Progress()
    path = Path(checkpoint_path) if checkpoint_path is not None else None
    if path is not None and path.exists():
        payload = _load_checkpoint(path, identity)
        model.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        scheduler.load_state_dict(payload["scheduler"])
        p = payload["progress"]
        progress = _Progress(p["epoch"], p["step"], p["loss_sum"], p["correct"], p["seen"], p["seconds"],
                             [EpochResult(**e) for e in payload["history"]])
        if p["order_seed"] != derived_seed(config.seed, progress.epoch, _ORDER_STREAM):
            raise ValueError(f"checkpoint {path}: data order seed does not match this code's")
        _set_rng_states(payload["rng"])

    def checkpoint() -> None:
        if path is None:
            return
        p = {k: v for k, v in asdict(progress).items() if k != "history"}
        p["order_seed"] = derived_seed(config.seed, progress.epoch, _ORDER_STREAM)
        save_checkpoint(path, {
            "version": CHECKPOINT_VERSION, "identity": identity, "model": model.state_dict(),
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "progress": p, "history": [asdict(e) for e in progress.history], "rng": _rng_states()})

    # Zero padding in pixel space (black) for images; the mean (0) for standard-normal inputs.
    fill = 0.0 if train.synthetic else normalised_black(ds)
    while progress.epoch < config.epochs:
        started = time.perf_counter()
        order = epoch_order(config.seed, progress.epoch, train.size)
        model.train()
        for step in range(progress.step, steps_per_epoch):
            if should_stop is not None and should_stop():
                progress.seconds += time.perf_counter() - started
                checkpoint()
                raise TrainingCancelled(path, progress.epoch, progress.step)
            x, y = train.take(order[step * config.batch_size:(step + 1) * config.batch_size])
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if config.augment:
                x = random_crop_flip(x, augment_generator(config.seed, progress.epoch, step),
                                     padding=IMAGE_SIZE[ds] // 8, fill=fill)
            optimizer.zero_grad(set_to_none=True)
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            loss.backward()
            optimizer.step()
            scheduler.step()
            progress.step = step + 1
            progress.loss_sum += loss.item() * len(y)
            progress.correct += int((logits.argmax(1) == y).sum())
            progress.seen += len(y)
            every = config.checkpoint_every_steps
            if every and progress.step % every == 0 and progress.step < steps_per_epoch:
                progress.seconds += time.perf_counter() - started
                started = time.perf_counter()
                checkpoint()
        test_loss, test_acc = evaluate(model, test, device)
        result = EpochResult(epoch=progress.epoch + 1, train_loss=progress.loss_sum / progress.seen,
                             train_acc=100.0 * progress.correct / progress.seen, test_loss=test_loss,
                             test_acc=test_acc, lr=float(scheduler.get_last_lr()[0]),
                             seconds=progress.seconds + time.perf_counter() - started)
        progress.history.append(result)
        progress.next_epoch()
        checkpoint()
        if on_epoch is not None:
            on_epoch(result)
    history = list(progress.history)
    return TrainResult(arch=arch, dataset=ds, epochs=history, seconds=sum(e.seconds for e in history),
                       device=str(device), final_test_acc=history[-1].test_acc)


__all__ = ["CHECKPOINT_VERSION", "EVAL_BATCH_SIZE", "DataSplit", "EpochResult", "TrainConfig", "TrainResult",
           "TrainingCancelled", "augment_generator", "derived_seed", "epoch_order",
           "evaluate", "load_splits", "normalised_black", "random_crop_flip", "save_checkpoint",
           "train_architecture"]
