"""Build the data that ships inside ``knas_core`` (``knas_core/bundled/``) from a data folder
laid out as ``../shared/data`` is, and check that what ships equals its sources.

What it writes (all of it, together, must stay under 15 MB):

* ``nb201/nb201_accuracies.csv.gz``: the NAS-Bench-201 table, all 15,625 rows, the columns
  :class:`knas_core.groundtruth.GroundTruth` reads (every column but the authors' training
  seconds), each field's text copied as it is, gzip with a fixed time stamp (reproducible bytes).
* ``cifar10/cifar10_scoring_2k500.npz``: a class-balanced CIFAR-10 scoring set, 200 training
  and 50 test images per class, drawn by ``numpy.random.default_rng(0)`` from each class of the
  shared 10k/2k subset and kept in the subset's order.
* ``cifar100/cifar100_subset.npz``: the shared CIFAR-100 subset, every array unchanged.
* ``MANIFEST.json``: the SHA-256 of every source and every output, the selection rule, and the
  sources' credits (NAS-Bench-201 (Dong & Yang, ICLR 2020; MIT) as republished by RoBoT,
  NASLib / NAS-Bench-Suite-Zero and constrained-tpe (Apache-2.0); CIFAR (Krizhevsky, 2009)).
  Entries of files this script does not build (the score atlas, built from a results store by
  ``scripts/build_atlas.py``) are kept as they are.

Usage::

    python scripts/build_package_data.py --source ../shared/data          # rebuild in place
    python scripts/build_package_data.py --source ../shared/data --check  # rebuild in a temporary
                                                                          # folder and compare

``--check`` exits with status 1 and names the file when the shipped data differs from what the
sources give (the table compared value by value, the images array by array).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "knas_core" / "bundled"
TABLE_SOURCE = "nb201/nb201_accuracies.csv"
TABLE_OUT = "nb201/nb201_accuracies.csv.gz"
CIFAR10_SOURCE = "cifar10/cifar10_10k_2k.npz"
CIFAR10_OUT = "cifar10/cifar10_scoring_2k500.npz"
CIFAR100_SOURCE = "cifar100/cifar100_subset.npz"
CIFAR100_OUT = "cifar100/cifar100_subset.npz"
DROPPED_COLUMNS = ("train_seconds_200ep_cifar10",)
PER_CLASS = {"train": 200, "test": 50}
LIMIT_BYTES = 15 * 1024 * 1024
CREDITS = {
    "nb201": "NAS-Bench-201 (Dong & Yang, ICLR 2020; MIT licence), values as republished by the RoBoT "
             "(Apache-2.0), NASLib / NAS-Bench-Suite-Zero (Apache-2.0) and constrained-tpe (Apache-2.0) "
             "repositories, joined by index and architecture string",
    "cifar": "CIFAR-10 and CIFAR-100 (Krizhevsky, Learning Multiple Layers of Features from Tiny Images, "
             "2009); "
             "the CIFAR-10 pixels went through a JPEG round trip (mean absolute error about 5.8/255)",
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_table(source: Path, out: Path) -> None:
    """Copy the table's fields as text, without :data:`DROPPED_COLUMNS`, into a gzip file."""
    with open(source, newline="") as fh:
        rows = list(csv.reader(fh))
    keep = [i for i, name in enumerate(rows[0]) if name not in DROPPED_COLUMNS]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    for row in rows:
        writer.writerow([row[i] for i in keep])
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=9,
                                               filename="") as gz:
        gz.write(text.getvalue().encode())


def balanced_selection(labels: np.ndarray, per_class: int, seed: int = 0) -> np.ndarray:
    """Indices of ``per_class`` items of every class, drawn by ``seed``, in their original order."""
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False)
              for c in np.unique(labels)]
    return np.sort(np.concatenate(chosen))


def build_cifar10(source: Path, out: Path) -> dict[str, list[int]]:
    with np.load(source, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    picked: dict[str, np.ndarray] = {}
    result: dict[str, np.ndarray] = {"classes": arrays["classes"]}
    for split, n in PER_CLASS.items():
        picked[split] = balanced_selection(arrays[f"y_{split}"], n)
        result[f"x_{split}"] = arrays[f"x_{split}"][picked[split]]
        result[f"y_{split}"] = arrays[f"y_{split}"][picked[split]]
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **result)
    return {split: idx.tolist() for split, idx in picked.items()}


def build_cifar100(source: Path, out: Path) -> None:
    with np.load(source, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)


#: Manifest sections written by other scripts (kept when this one rewrites the manifest).
OTHER_SECTIONS = ("atlas",)


def kept_entries(dest: Path) -> tuple[dict[str, object], dict[str, object]]:
    """The output entries and sections of ``dest``'s manifest that other scripts wrote (their
    files still there), to carry into the rewritten manifest."""
    path = dest / "MANIFEST.json"
    if not path.exists():
        return {}, {}
    old = json.loads(path.read_text())
    outputs = {name: entry for name, entry in old.get("outputs", {}).items()
               if name not in (TABLE_OUT, CIFAR10_OUT, CIFAR100_OUT) and (dest / name).is_file()}
    return outputs, {key: old[key] for key in OTHER_SECTIONS if key in old}


def build(source: Path, dest: Path) -> dict[str, object]:
    """Write every shipped file under ``dest`` from the data folder ``source``; returns the manifest."""
    other_outputs, other_sections = kept_entries(dest)
    build_table(source / TABLE_SOURCE, dest / TABLE_OUT)
    picked = build_cifar10(source / CIFAR10_SOURCE, dest / CIFAR10_OUT)
    build_cifar100(source / CIFAR100_SOURCE, dest / CIFAR100_OUT)
    outputs = {name: {"sha256": sha256(dest / name), "bytes": (dest / name).stat().st_size}
               for name in (TABLE_OUT, CIFAR10_OUT, CIFAR100_OUT)}
    outputs.update(other_outputs)  # type: ignore[arg-type]
    manifest = {
        "built_by": "scripts/build_package_data.py",
        "sources": {name: sha256(source / name) for name in (TABLE_SOURCE, CIFAR10_SOURCE, CIFAR100_SOURCE)},
        "outputs": outputs,
        "table": {"from": TABLE_SOURCE, "dropped_columns": list(DROPPED_COLUMNS)},
        "cifar10_scoring": {"from": CIFAR10_SOURCE, "per_class": PER_CLASS,
                            "rule": "numpy.random.default_rng(0).choice per class (classes in order, "
                                    "train then test), sorted",
                            "counts": {k: len(v) for k, v in picked.items()}},
        "cifar100_subset": {"from": CIFAR100_SOURCE, "rule": "every array unchanged"},
        "credits": CREDITS,
        **other_sections,
    }
    (dest / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    total = sum(o["bytes"] for o in outputs.values())
    if total > LIMIT_BYTES:
        raise SystemExit(f"package data is {total / 2**20:.1f} MB, over the 15 MB limit")
    return manifest


def compare(shipped: Path, rebuilt: Path, source: Path) -> list[str]:
    """Differences between the shipped files and a rebuild (and between the table and its source)."""
    problems: list[str] = []
    table = pd.read_csv(shipped / TABLE_OUT)
    original = pd.read_csv(source / TABLE_SOURCE).drop(columns=list(DROPPED_COLUMNS))
    if not table.equals(original):
        problems.append(f"{TABLE_OUT}: differs from {TABLE_SOURCE}")
    for name in (CIFAR10_OUT, CIFAR100_OUT):
        if not (shipped / name).exists():
            problems.append(f"{name}: missing")
            continue
        with np.load(shipped / name, allow_pickle=False) as a, \
                np.load(rebuilt / name, allow_pickle=False) as b:
            if sorted(a.files) != sorted(b.files):
                problems.append(f"{name}: arrays {sorted(a.files)} != {sorted(b.files)}")
                continue
            for key in a.files:
                if a[key].dtype != b[key].dtype or not np.array_equal(a[key], b[key]):
                    problems.append(f"{name}: array {key!r} differs from a rebuild")
    if (shipped / TABLE_OUT).read_bytes() != (rebuilt / TABLE_OUT).read_bytes():
        problems.append(f"{TABLE_OUT}: bytes differ from a rebuild")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=ROOT.parent / "shared" / "data",
                        help="data folder laid out as ../shared/data (default: ../shared/data)")
    parser.add_argument("--dest", type=Path, default=BUNDLED,
                        help="output folder (default: knas_core/bundled)")
    parser.add_argument("--check", action="store_true",
                        help="compare --dest with a rebuild instead of writing")
    args = parser.parse_args(argv)
    if not (args.source / TABLE_SOURCE).exists():
        print(f"build_package_data: no {TABLE_SOURCE} under {args.source}; pass --source", file=sys.stderr)
        return 2
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            build(args.source, Path(tmp))
            problems = compare(args.dest, Path(tmp), args.source)
        for p in problems:
            print(f"build_package_data: {p}", file=sys.stderr)
        print("package data matches its sources" if not problems else f"{len(problems)} difference(s)")
        return 1 if problems else 0
    manifest = build(args.source, args.dest)
    for name, out in manifest["outputs"].items():  # type: ignore[union-attr]
        print(f"{name}: {out['bytes'] / 2**20:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
