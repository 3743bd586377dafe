"""``knas atlas``: export the stored scores as a score atlas file, import one (see
:mod:`knas_core.atlas` for the format, :mod:`db.atlas` for what an import does)."""

from __future__ import annotations

import argparse
import sys

from knas_cli.errors import UsageError
from knas_core.atlas import PACKAGED_NAME


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The actions of ``knas atlas`` and their options."""
    p.description = ("A score atlas is a gzip CSV of precomputed proxy scores, one row per architecture "
                     "and proxy with the set-up that determines it. `knas atlas export` writes the store's "
                     "scores as one; `knas atlas import` loads one (by default the packaged atlas).")
    actions = p.add_subparsers(dest="atlas_command", required=True, metavar="ACTION")

    export = actions.add_parser(
        "export", help="write the stored scores as an atlas file",
        description="One row per architecture, proxy and set-up (dataset, images, batch size, seed, device "
                    "type, network), sorted by index then proxy; the same scores give the same bytes. "
                    "Transient failures and architectures without an index are left out.")
    export.add_argument("--out", default="knas-atlas.csv.gz", metavar="F.csv.gz",
                        help="the file to write (default: knas-atlas.csv.gz)")
    export.add_argument("--space", default="nb201", help="search space (default: nb201)")
    export.add_argument("--dataset", action="append", default=None, metavar="DATASET",
                        help="only this dataset's scores (repeat for several; default: all)")
    export.add_argument("--proxies", default=None, metavar="P1,P2",
                        help="only these proxies' scores (comma-separated; default: all)")
    export.add_argument("--torch", default=None, metavar="VERSION",
                        help="the torch version the scores were computed with, written on every row: the "
                             "store does not record it, so the default is the torch running this command")
    export.set_defaults(run=run_export)

    imp = actions.add_parser(
        "import", help="load an atlas file into the store (default: the packaged atlas)",
        description="Stores the file's architectures, their benchmark accuracies and its scores; a score "
                    "already stored under the same set-up is kept (re-importing is a no-op) and one that "
                    "differs is reported, not overwritten. The import is recorded, and the dashboard labels "
                    "its scores as precomputed. A search on the same set-up takes its scores from them.")
    imp.add_argument("file", nargs="?", default=None,
                     help=f"atlas file (.csv.gz or .csv); default: the packaged atlas ({PACKAGED_NAME} "
                          "through the data look-up order)")
    imp.set_defaults(run=run_import)


def _names(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UsageError("--proxies: give at least one proxy name")
    return names


def run_export(args: argparse.Namespace) -> int:
    from db.atlas import export_rows
    from db.migrate import check_schema
    from db.session import session_scope
    from knas_core.atlas import write_atlas
    from knas_core.groundtruth import canonical_dataset

    datasets = [canonical_dataset(d) for d in args.dataset] if args.dataset else None
    proxies = _names(args.proxies)
    if args.torch is not None and not args.torch.strip():
        raise UsageError("--torch: give a version, e.g. 2.14.1")
    if args.torch is None:
        import torch

        torch_version = str(torch.__version__)
    else:
        torch_version = args.torch.strip()
    check_schema()
    with session_scope() as session:
        rows, left_out = export_rows(session, torch_version, space=args.space, datasets=datasets,
                                     proxies=proxies)
    if not rows:
        raise UsageError(f"no stored {args.space} scores match (dataset {datasets or 'any'}, proxies "
                         f"{proxies or 'any'}): nothing to export")
    write_atlas(rows, args.out)
    from knas_core.atlas import read_atlas

    atlas = read_atlas(args.out)  # what an import will read: checked now
    size = atlas.path.stat().st_size
    note = f"; left out {left_out:,} transient failure(s) or unindexed architecture(s)" if left_out else ""
    print(f"wrote {len(atlas.rows):,} scores ({atlas.describe()}) to {args.out} "
          f"({size / 1024:.0f} KiB){note}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from db.atlas import import_file
    from db.migrate import check_schema
    from knas_core.atlas import packaged_atlas

    path = args.file
    if path is None:
        path = packaged_atlas()
        if path is None:
            raise UsageError(f"this install has no packaged atlas ({PACKAGED_NAME} in knas_core/bundled or a "
                             "data root): give an atlas file")
    check_schema()
    report = import_file(path)
    print(report.summary())
    line = report.conflict_line()
    if line:
        print(f"knas: warning: {line}", file=sys.stderr)
    return 0
