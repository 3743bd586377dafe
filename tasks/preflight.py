"""Submit-time checks of a valid config against the submitting machine.

:func:`tasks.schema.validate_config` checks a config on its own (workers re-run it on stored
configs); :func:`preflight` also looks at this machine: whether ``data_dir`` holds data the search
can use (an error: a worker would fail on it, or, for an ImageFolder at ``/``, walk the whole disk),
and whether a requested GPU is visible (a warning only: the workers may be other machines).

Errors about ``data_dir`` are one message whatever the reason (missing, not a data folder,
unreadable), so that a dashboard user cannot probe which files exist on the server.
"""

from __future__ import annotations

import os
from pathlib import Path

from tasks.schema import ConfigError, SearchConfig

#: File endings torchvision's ``ImageFolder`` reads.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
#: Entries looked at per class folder before deciding it holds no images (bounds the time of a
#: check on a huge or hostile folder such as ``/``).
SCAN_LIMIT = 2000


def _expected(cfg: SearchConfig) -> str:
    """What a usable ``data_dir`` holds for this config (depends on the config only)."""
    from knas_core.data import NPZ_SUBSETS, NUM_CLASSES, TORCHVISION_FOLDERS
    from knas_core.groundtruth import TABLE_NAMES

    if cfg.data_source == "imagefolder":
        return (f"an ImageFolder: one sub-folder of images per class, at most "
                f"{NUM_CLASSES[cfg.dataset]} classes")
    if _images_from_data_dir(cfg):
        names = ([TORCHVISION_FOLDERS[cfg.dataset] + "/"] if cfg.data_source != "npz" else []) + \
            (list(NPZ_SUBSETS[cfg.dataset]) if cfg.data_source != "torchvision" else [])
        return f"{cfg.dataset} images: {' or '.join(names)}"
    return f"the NAS-Bench-201 table {TABLE_NAMES[0]}"


def _images_from_data_dir(cfg: SearchConfig) -> bool:
    from knas_core.data import NPZ_SUBSETS

    # synthetic inputs (ImageNet16-120 on auto): data_dir only holds the table
    return cfg.data_source != "synthetic" and cfg.dataset in NPZ_SUBSETS


def _holds_images(folder: str) -> bool:
    """Whether a bounded walk of ``folder`` finds an image file (no symlinks followed)."""
    seen = 0
    for _root, _dirs, files in os.walk(folder, onerror=None, followlinks=False):
        for name in files:
            if name.lower().endswith(IMAGE_EXTENSIONS):
                return True
        seen += len(files) + len(_dirs)
        if seen > SCAN_LIMIT:
            return False
    return False


def _image_folder_usable(root: Path, num_classes: int) -> bool:
    classes = [e.path for e in os.scandir(root) if e.is_dir(follow_symlinks=True)]
    if not 1 <= len(classes) <= num_classes:
        return False
    return all(_holds_images(c) for c in classes)


def _usable(cfg: SearchConfig) -> bool:
    from knas_core.data import NPZ_SUBSETS, NUM_CLASSES, TORCHVISION_FOLDERS
    from knas_core.groundtruth import TABLE_NAMES

    root = Path(cfg.data_dir).expanduser()  # type: ignore[arg-type]
    if not root.is_dir() or not os.access(root, os.R_OK | os.X_OK):
        return False
    if cfg.data_source == "imagefolder":
        return _image_folder_usable(root, NUM_CLASSES[cfg.dataset])
    if _images_from_data_dir(cfg):
        # With a data_dir only that folder is searched for images (knas_core.data.load_source).
        folder = cfg.data_source in ("auto", "torchvision") and \
            (root / TORCHVISION_FOLDERS[cfg.dataset]).is_dir()
        npz = cfg.data_source in ("auto", "npz") and \
            any((root / name).is_file() for name in NPZ_SUBSETS[cfg.dataset])
        return bool(folder or npz)
    return any((root / name).is_file() for name in TABLE_NAMES)


def check_data_dir(cfg: SearchConfig) -> None:
    """Raise :class:`ConfigError` unless ``cfg.data_dir`` (when given) holds what the search reads."""
    if cfg.data_dir is None:
        return
    try:
        usable = _usable(cfg)
    except (OSError, ValueError):  # unreadable, a loop, a name the OS rejects: all the same to the user
        usable = False
    if not usable:
        raise ConfigError(f"data_dir: no usable data under the given path (expected {_expected(cfg)})")


def device_warnings(cfg: SearchConfig) -> list[str]:
    if cfg.device != "cuda":
        return []
    import torch

    if torch.cuda.is_available():
        return []
    return ["device: cuda requested but this machine sees no CUDA GPU; the search fails on any "
            "worker without one (use device auto to take a GPU where there is one)"]


def preflight(cfg: SearchConfig) -> list[str]:
    """Check ``cfg`` against this machine: raises :class:`ConfigError`; returns warnings."""
    check_data_dir(cfg)
    return device_warnings(cfg)
