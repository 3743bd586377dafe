"""Mini-batches for scoring: npz image subsets (the shipped scoring sets among them), torchvision
CIFAR folders, ImageFolder directories, or synthetic Gaussian inputs. The same seed gives the
same batch.

Look-up order for data roots: explicit ``data_dir``, ``$KNAS_DATA_DIR``, the user cache, the
package data (see :mod:`knas_core.paths`); an explicit ``data_dir`` is the only place searched for
images. Within a root a full torchvision folder wins over an npz subset.

Every source carries an ``identity``: a label of the images it holds (kind, name and a hash of
the pixels and labels), stored with every score so that scores computed on different images never
mix. Ground truth lives in :mod:`knas_core.groundtruth` and is re-exported here.
"""

from __future__ import annotations

import hashlib
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import numpy as np
import torch

from knas_core.errors import ConfigError, DataFileError
from knas_core.groundtruth import DATASETS, GroundTruth, canonical_dataset
from knas_core.paths import DataNotFoundError, DataRoot, candidate_roots

NUM_CLASSES: dict[str, int] = {"cifar10": 10, "cifar100": 100, "imagenet16-120": 120}
IMAGE_SIZE: dict[str, int] = {"cifar10": 32, "cifar100": 32, "imagenet16-120": 16}
# Per-channel mean/std in pixel units, as in the NAS-Bench-201 training pipeline.
_MEAN_STD: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cifar10": ((125.3, 123.0, 113.9), (63.0, 62.1, 66.7)),
    "cifar100": ((129.3, 124.1, 112.4), (68.2, 65.4, 70.4)),
    "imagenet16-120": ((122.68, 116.66, 104.01), (63.22, 61.26, 65.09)),
}
#: npz subsets per dataset, in order of preference within one data root: the 10k/2k CIFAR-10
#: subset of a data folder, then the 2,000 + 500 image scoring set that ships as package data.
NPZ_SUBSETS: dict[str, tuple[str, ...]] = {
    "cifar10": ("cifar10/cifar10_10k_2k.npz", "cifar10/cifar10_scoring_2k500.npz"),
    "cifar100": ("cifar100/cifar100_subset.npz",),
}
TORCHVISION_FOLDERS: dict[str, str] = {"cifar10": "cifar-10-batches-py",
                                       "cifar100": "cifar-100-python"}
SOURCES = ("auto", "npz", "torchvision", "imagefolder", "synthetic")


@dataclass(frozen=True)
class Batch:
    """A labelled mini-batch.

    ``inputs``: ``(B, 3, H, W)`` float32, normalised; ``targets``: ``(B,)`` int64 in
    ``[0, num_classes)``.
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    num_classes: int

    def to(self, device: torch.device | str) -> Batch:
        return Batch(self.inputs.to(device), self.targets.to(device), self.num_classes)

    def __len__(self) -> int:
        return int(self.inputs.shape[0])


class ImageSource(ABC):
    """A finite, indexable set of labelled images for one dataset.

    ``identity``: what the images are (``kind:name:hash``), the part of a score's key that
    says which images it was computed on; ``description``: the same for people (where the
    images came from and how many there are).
    """

    identity: str = ""
    description: str = ""

    def __init__(self, dataset: str) -> None:
        self.dataset = canonical_dataset(dataset)
        self.num_classes = NUM_CLASSES[self.dataset]

    def labelled(self, kind: str, name: str, description: str) -> Self:
        """Set :attr:`identity` (``kind:name:<hash of the content>``) and :attr:`description`."""
        self.identity = f"{kind}:{name}:{self.content_hash()}"
        self.description = description
        return self

    def content_hash(self) -> str:
        """12 hex digits that change with the images or their labels (subclasses refine it)."""
        return hashlib.sha256(f"{type(self).__name__}:{self.dataset}:{len(self)}".encode()).hexdigest()[:12]

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def take(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised ``(len(indices), 3, H, W)`` images and their labels."""

    def batch(self, batch_size: int, seed: int) -> Batch:
        """``batch_size`` images drawn without replacement by ``seed`` (deterministic)."""
        if batch_size < 1:
            raise ConfigError(f"batch size must be positive, got {batch_size}")
        if batch_size > len(self):
            raise ConfigError(f"batch size {batch_size} exceeds the {len(self)} images available")
        idx = np.sort(np.random.default_rng(seed).choice(len(self), batch_size, replace=False))
        x, y = self.take(idx)
        return Batch(x, y, self.num_classes)

    def _normalise(self, uint8_nhwc: np.ndarray) -> torch.Tensor:
        mean, std = _MEAN_STD[self.dataset]
        x = torch.from_numpy(np.ascontiguousarray(uint8_nhwc)).float().permute(0, 3, 1, 2)
        return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


class ArraySource(ImageSource):
    """Images held in memory as ``(N, H, W, 3)`` uint8 with integer labels."""

    def __init__(self, dataset: str, images: np.ndarray, labels: np.ndarray) -> None:
        super().__init__(dataset)
        if images.ndim != 4 or images.shape[-1] != 3:
            raise DataFileError(f"images must be (N, H, W, 3), got {images.shape}")
        labels = np.asarray(labels, dtype=np.int64)
        if labels.min() < 0 or labels.max() >= self.num_classes:
            raise DataFileError(f"labels must lie in [0, {self.num_classes}) for {self.dataset}")
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return self._normalise(self.images[indices]), torch.from_numpy(self.labels[indices])

    def content_hash(self) -> str:
        """SHA-256 of the pixels and labels (and their shapes), first 12 hex digits."""
        h = hashlib.sha256(f"{self.dataset}:{self.images.shape}:{self.images.dtype}".encode())
        h.update(np.ascontiguousarray(self.images).data)
        h.update(np.ascontiguousarray(self.labels).data)
        return h.hexdigest()[:12]


def npz_source(dataset: str, path: str | os.PathLike[str], split: str = "train",
               origin: str = "") -> ArraySource:
    """An npz subset: arrays ``x_<split>`` (N, 32, 32, 3) uint8 and ``y_<split>``."""
    path = Path(path)
    with np.load(path, allow_pickle=False) as z:
        source = ArraySource(dataset, z[f"x_{split}"], z[f"y_{split}"])
    where = f"{origin}: {path}" if origin else str(path)
    return source.labelled("npz", f"{path.stem}-{split}",
                           f"{len(source):,} {split} images of {path.name} ({where})")


def torchvision_source(dataset: str, root: str | os.PathLike[str], split: str = "train",
                       origin: str = "") -> ArraySource:
    """A torchvision CIFAR folder (``cifar-10-batches-py`` / ``cifar-100-python`` under ``root``)."""
    from torchvision import datasets

    ds_name = canonical_dataset(dataset)
    cls = {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}[ds_name]
    ds = cls(str(root), train=(split == "train"), download=False)
    source = ArraySource(dataset, np.asarray(ds.data), np.asarray(ds.targets))
    where = f"{origin}: {root}" if origin else str(root)
    return source.labelled("torchvision", f"{ds_name}-{split}",
                           f"{len(source):,} {split} images of the full {ds_name} ({where})")


class ImageFolderSource(ImageSource):
    """An ``ImageFolder`` directory (one sub-folder per class), resized to the dataset's size."""

    def __init__(self, dataset: str, root: str | os.PathLike[str]) -> None:
        super().__init__(dataset)
        from torchvision import datasets, transforms

        size = IMAGE_SIZE[self.dataset]
        self.folder = datasets.ImageFolder(
            str(root), transform=transforms.Compose([
                transforms.Resize((size, size)), transforms.PILToTensor()]))
        if len(self.folder.classes) > self.num_classes:
            raise DataFileError(f"{root}: {len(self.folder.classes)} classes, more than the "
                             f"{self.num_classes} outputs of a {self.dataset} network")

    def __len__(self) -> int:
        return len(self.folder)

    def content_hash(self) -> str:
        """SHA-256 of the files' relative paths, sizes and labels (not of every pixel)."""
        root = Path(self.folder.root)
        h = hashlib.sha256(f"{self.dataset}".encode())
        for path, label in self.folder.samples:
            p = Path(path)
            h.update(f"{p.relative_to(root)}:{p.stat().st_size}:{label}\n".encode())
        return h.hexdigest()[:12]

    def take(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        items = [self.folder[int(i)] for i in indices]
        images = torch.stack([img for img, _ in items]).permute(0, 2, 3, 1).numpy()
        return self._normalise(images), torch.tensor([lbl for _, lbl in items], dtype=torch.int64)


class SyntheticSource(ImageSource):
    """Standard-normal inputs and uniform labels, e.g. for ImageNet16-120 (no images here)."""

    def __init__(self, dataset: str, size: int = 100_000) -> None:
        super().__init__(dataset)
        self.size = size
        self.identity = f"synthetic:{self.dataset}:normal"
        self.description = "standard-normal inputs with uniform labels (no images)"

    def __len__(self) -> int:
        return self.size

    def batch(self, batch_size: int, seed: int) -> Batch:
        if batch_size < 1:
            raise ConfigError(f"batch size must be positive, got {batch_size}")
        g = torch.Generator().manual_seed(seed)
        side = IMAGE_SIZE[self.dataset]
        x = torch.randn(batch_size, 3, side, side, generator=g)
        y = torch.randint(0, self.num_classes, (batch_size,), generator=g)
        return Batch(x, y, self.num_classes)

    def take(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError("synthetic inputs are drawn per batch")


def load_source(dataset: str, source: str = "auto", data_dir: str | os.PathLike[str] | None = None,
                split: str = "train") -> ImageSource:
    """Open the images for ``dataset``.

    ``source``: ``npz`` (image subsets), ``torchvision`` (CIFAR python folders),
    ``imagefolder`` (``data_dir`` is the folder), ``synthetic``, or ``auto``: ImageNet16-120
    -> synthetic; CIFAR -> the first data root (see :mod:`knas_core.paths`) holding a torchvision
    folder or an npz subset (the folder first within a root). With ``data_dir`` only that folder
    is searched. Raises :class:`DataNotFoundError` with the places searched when nothing is found.
    """
    ds = canonical_dataset(dataset)
    if source not in SOURCES:
        raise ConfigError(f"unknown data source {source!r}; choose one of {', '.join(SOURCES)}")
    if source == "synthetic" or (source == "auto" and ds == "imagenet16-120"):
        return SyntheticSource(ds)
    if source == "imagefolder":
        if data_dir is None:
            raise DataNotFoundError("data_source imagefolder needs data_dir: the folder of images")
        if not Path(data_dir).is_dir():
            raise DataNotFoundError(f"image folder {str(data_dir)!r} does not exist")
        folder = ImageFolderSource(ds, data_dir)
        return folder.labelled("imagefolder", Path(data_dir).name,
                               f"{len(folder):,} images of the folder {data_dir}")
    if ds not in NPZ_SUBSETS:
        raise DataNotFoundError(f"no images for {ds}; use data_source synthetic or imagefolder")
    if data_dir is not None and not Path(data_dir).expanduser().is_dir():
        raise DataNotFoundError(f"data directory {str(data_dir)!r} does not exist; "
                                "set data_dir to an existing directory")
    roots = candidate_roots(data_dir, fallback=data_dir is None)
    for root in roots:
        found = _source_in(root, ds, source, split)
        if found is not None:
            return found
    names = ([TORCHVISION_FOLDERS[ds] + "/"] if source != "npz" else []) + \
        (list(NPZ_SUBSETS[ds]) if source != "torchvision" else [])
    tried = ", ".join(str(r.path) for r in roots)
    raise DataNotFoundError(f"no {ds} images ({' or '.join(names)}) in: {tried}; "
                            f"run `knas data fetch {ds}`, set data_dir or KNAS_DATA_DIR")


def _source_in(root: DataRoot, dataset: str, source: str, split: str) -> ImageSource | None:
    """The images of ``dataset`` in one data root, or None when it holds none of the kind asked for."""
    if source in ("auto", "torchvision") and (root / TORCHVISION_FOLDERS[dataset]).is_dir():
        return torchvision_source(dataset, root.path, split, origin=root.origin)
    if source in ("auto", "npz"):
        for name in NPZ_SUBSETS[dataset]:
            if (root / name).is_file():
                return npz_source(dataset, root / name, split, origin=root.origin)
    return None


__all__ = ["DATASETS", "IMAGE_SIZE", "NUM_CLASSES", "SOURCES", "ArraySource", "Batch",
           "DataNotFoundError", "GroundTruth", "ImageFolderSource", "ImageSource",
           "SyntheticSource", "load_source", "npz_source", "torchvision_source"]
