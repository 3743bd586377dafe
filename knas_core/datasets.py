"""Full data sets on disk: fetching them (``knas data fetch``) and reporting what is where
(``knas data status``, the dashboard's New-search page).

:func:`fetch_dataset` downloads CIFAR-10/100 with torchvision into a data root (``dest``, else
``$KNAS_DATA_DIR``, else the user cache of :mod:`knas_core.paths`); an archive already in that
root (copied there by hand, e.g. on a machine without internet) is checked and extracted without
network. :func:`data_status` lists, for every root of the look-up order, the benchmark table, the
npz subsets, the torchvision folders and archives it holds, and which images a search would use.
"""

from __future__ import annotations

import functools
import gzip
import os
import socket
import sys
import urllib.error
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from knas_core.errors import ConfigError
from knas_core.groundtruth import DATASETS, TABLE_NAMES, canonical_dataset
from knas_core.paths import DataNotFoundError, DataRoot, candidate_roots, find_data_in, user_cache_dir
from knas_core.settings import get_settings

#: Data sets ``knas data fetch`` can download, and their torchvision classes.
FETCHABLE: dict[str, str] = {"cifar10": "CIFAR10", "cifar100": "CIFAR100"}

#: Seconds a connection attempt or a stalled read may take before the fetch gives up.
FETCH_TIMEOUT = 15.0


class FetchError(RuntimeError):
    """A download or extraction failed; the message says what to do instead (one line)."""


def _dataset_class(name: str) -> Any:  # a torchvision dataset class (untyped)
    from torchvision import datasets

    return getattr(datasets, FETCHABLE[name])


def fetch_root(dest: str | os.PathLike[str] | None = None) -> Path:
    """Where :func:`fetch_dataset` puts data: ``dest``, else ``$KNAS_DATA_DIR``, else the user
    cache (so that the fetched set is found first by the look-up order)."""
    if dest is not None:
        return Path(dest).expanduser()
    env = get_settings().data_dir
    return env if env is not None else user_cache_dir()


@dataclass(frozen=True)
class Fetched:
    """A fetched data set: its torchvision folder, the root it lies in and its image counts."""

    dataset: str
    path: Path
    root: Path
    train_images: int
    test_images: int


def fetch_dataset(name: str, dest: str | os.PathLike[str] | None = None, *,
                  timeout: float = FETCH_TIMEOUT) -> Fetched:
    """Download (or extract an archive already in the root) and check the full ``name``
    (``cifar10`` or ``cifar100``), train and test splits, with a progress bar on stderr.

    Raises :class:`FetchError` (one line saying what to do) when the download, the checksum or
    the extraction fails; a connection attempt or a stalled read gives up after ``timeout`` s.
    """
    ds = canonical_dataset(name)
    if ds not in FETCHABLE:
        raise ConfigError(f"{ds} cannot be fetched (its images are not public in a fetchable form); "
                         f"choose one of {', '.join(FETCHABLE)}, or score it with data_source "
                         "synthetic or imagefolder")
    root = fetch_root(dest)
    cls = _dataset_class(ds)
    archive = root / cls.filename
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FetchError(f"cannot create the data directory {root}: {exc.strerror or exc}; "
                         "pass a writable one with --dir") from None
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        with _labelled_progress(cls.filename):
            train = cls(str(root), train=True, download=True)
        test = cls(str(root), train=False, download=False)
    except urllib.error.URLError as exc:  # before OSError: URLError is one
        raise FetchError(_network_advice(ds, cls, root, archive, getattr(exc, "reason", exc))) from None
    except (TimeoutError, ConnectionError) as exc:
        raise FetchError(_network_advice(ds, cls, root, archive, exc)) from None
    except RuntimeError as exc:  # torchvision: checksum mismatch, or a folder it cannot read
        bad = archive if archive.is_file() else root / cls.base_folder
        raise FetchError(f"{bad} is incomplete or corrupt ({exc}); delete it and rerun "
                         f"`knas data fetch {ds} --dir {root}`, or put a good copy of "
                         f"{cls.filename} there") from None
    except OSError as exc:  # disk full, permissions, a broken archive
        raise FetchError(f"cannot write {ds} into {root}: {exc}; free space or pass another "
                         "directory with --dir") from None
    finally:
        socket.setdefaulttimeout(previous)
    return Fetched(ds, root / cls.base_folder, root, len(train), len(test))


def _network_advice(ds: str, cls: Any, root: Path, archive: Path, reason: object) -> str:
    note = ""
    if archive.is_file():
        note = f" ({archive} is there but does not match the official checksum; replace it)"
    return (f"cannot download {cls.url} ({reason}){note}; on a machine with internet download "
            f"{cls.filename}, put it in {root} and rerun `knas data fetch {ds} --dir {root}` (it is "
            f"checked and extracted without network), or point --data-dir or KNAS_DATA_DIR at a "
            f"folder that holds {cls.base_folder}/")


class _labelled_progress:
    """torchvision's download bar, labelled with the file name and written to stderr."""

    def __init__(self, label: str) -> None:
        self.label = label

    def __enter__(self) -> None:
        from torchvision.datasets import utils
        from tqdm import tqdm

        self.utils, self.saved = utils, getattr(utils, "tqdm", None)
        if self.saved is not None:
            utils.tqdm = functools.partial(tqdm, desc=self.label, file=sys.stderr)

    def __exit__(self, *exc: object) -> None:
        if self.saved is not None:
            self.utils.tqdm = self.saved


# --- status ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Item:
    """One thing found in a data root.

    ``kind``: ``table``, ``npz``, ``torchvision`` (an extracted folder) or ``archive`` (a
    downloaded ``.tar.gz`` not necessarily extracted); ``count``: rows of the table or images per
    split where that is cheap to read (``None`` otherwise); ``note``: anything missing.
    """

    kind: str
    dataset: str | None
    path: str
    size_mb: float
    count: dict[str, int] | None = None
    note: str = ""


def _size_mb(path: Path) -> float:
    if path.is_dir():
        total = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    else:
        total = path.stat().st_size
    return round(total / 1e6, 1)


def table_rows(path: Path) -> int:
    """Data rows of the (plain or gzip) table, counted without parsing it."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        return max(sum(1 for line in fh if line.strip()) - 1, 0)


def npz_counts(path: Path) -> dict[str, int]:
    """Images per split of an npz subset (``{"train": n, "test": m}``), read from the array
    headers only (nothing is decompressed)."""
    counts: dict[str, int] = {}
    with zipfile.ZipFile(path) as zf:
        for member in zf.namelist():
            if not (member.startswith("y_") and member.endswith(".npy")):
                continue
            with zf.open(member) as fh:
                version = np.lib.format.read_magic(fh)
                reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                          else np.lib.format.read_array_header_2_0)
                shape = reader(fh)[0]
            counts[member[2:-4]] = int(shape[0]) if shape else 0
    return counts


def _torchvision_item(root: Path, dataset: str) -> list[Item]:
    cls = _dataset_class(dataset)
    items = []
    folder = root / cls.base_folder
    if folder.is_dir():
        expected = [name for name, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
        missing = [name for name in expected if not (folder / name).is_file()]
        items.append(Item("torchvision", dataset, str(folder), _size_mb(folder),
                          note=f"incomplete: missing {', '.join(missing)}" if missing else ""))
    archive = root / cls.filename
    if archive.is_file():
        note = "" if folder.is_dir() else \
            f"not extracted: `knas data fetch {dataset} --dir {root}` extracts it"
        items.append(Item("archive", dataset, str(archive), _size_mb(archive), note=note))
    return items


def root_items(root: Path) -> list[Item]:
    """The table, npz subsets, torchvision folders and archives found in one data root."""
    from knas_core.data import NPZ_SUBSETS

    if not root.is_dir():
        return []
    items: list[Item] = []
    for name in TABLE_NAMES:
        path = root / name
        if path.is_file():
            items.append(Item("table", None, str(path), _size_mb(path), {"rows": table_rows(path)}))
    for dataset, names in NPZ_SUBSETS.items():
        for name in names:
            path = root / name
            if path.is_file():
                try:
                    counts, note = npz_counts(path), ""
                except (OSError, ValueError, zipfile.BadZipFile) as exc:
                    counts, note = None, f"unreadable: {exc}"
                items.append(Item("npz", dataset, str(path), _size_mb(path), counts, note))
    for dataset in FETCHABLE:
        items.extend(_torchvision_item(root, dataset))
    return items


def images_used(dataset: str, source: str = "auto",
                data_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Which images a search on ``dataset`` would score: ``{"dataset", "source", "identity",
    "description"}``, or ``{"dataset", "source", "error"}`` with the reason none are found."""
    from knas_core.data import load_source

    out: dict[str, Any] = {"dataset": dataset, "source": source}
    try:
        images = load_source(dataset, source, data_dir or None)
    except (DataNotFoundError, RuntimeError, ValueError, OSError) as exc:
        return {**out, "error": str(exc)}
    return {**out, "identity": images.identity, "description": images.description}


def data_status(data_dir: str | os.PathLike[str] | None = None, *,
                datasets: tuple[str, ...] = tuple(DATASETS)) -> dict[str, Any]:
    """What is found where, as plain data (JSON-ready).

    ``roots``: the look-up order (``origin``, ``path``, ``exists``, ``items``: see :class:`Item`);
    ``table``: the benchmark table the commands would read (``path``, ``origin``, ``size_mb``,
    ``rows``) or ``{"error": ...}``; ``datasets``: :func:`images_used` per dataset (source
    ``auto``; with ``data_dir`` only that folder is searched for images, as in a search).
    """
    roots: list[DataRoot] = candidate_roots(data_dir)
    table: dict[str, Any]
    try:
        path, root = find_data_in(TABLE_NAMES, data_dir)
        table = {"path": str(path), "origin": root.origin, "size_mb": _size_mb(path),
                 "rows": table_rows(path)}
    except DataNotFoundError as exc:
        table = {"error": str(exc)}
    return {
        "roots": [{"origin": r.origin, "path": str(r.path), "exists": r.path.is_dir(),
                   "items": [asdict(item) for item in root_items(r.path)]} for r in roots],
        "table": table,
        "datasets": [images_used(ds, "auto", data_dir) for ds in datasets],
    }


__all__ = ["FETCHABLE", "FETCH_TIMEOUT", "FetchError", "Fetched", "Item", "data_status",
           "fetch_dataset", "fetch_root", "images_used", "npz_counts", "root_items", "table_rows"]
