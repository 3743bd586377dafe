"""Build the packaged score atlas (``knas_core/bundled/atlas/nb201_atlas.csv.gz``) from a results
store that holds it, e.g. the store ``benchmarks/atlas.py`` filled, and enter it in
``knas_core/bundled/MANIFEST.json``.

What it does:

1. snapshots an SQLite store (SQLite's backup API: a consistent copy, even of a store in use;
   the original is only read) and brings the copy to this version's schema;
2. exports its scores (``knas atlas export``: one row per architecture, proxy and set-up) with
   the torch version given, and checks that every proxy covers the whole space (``--partial``
   allows less);
3. checks the file: it reads back, it is at most 2 MB, and imported into an empty store it
   exports to the same bytes;
4. writes it under ``--dest`` and records its SHA-256, size, set-ups and row counts in the
   manifest (the package data as a whole stays under 15 MB).

Usage::

    python scripts/build_atlas.py --db sqlite:///benchmarks/out/atlas/knas.db --torch 2.14.1
    python scripts/build_atlas.py --db sqlite:///x.db --dest /tmp/bundled --partial   # a trial
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from knas_core.atlas import PACKAGED_MAX_BYTES, PACKAGED_NAME, Atlas, read_atlas, write_atlas  # noqa: E402

BUNDLED = ROOT / "knas_core" / "bundled"
LIMIT_BYTES = 15 * 1024 * 1024  # all package data together (as scripts/build_package_data.py)


def snapshot(url: str, folder: Path) -> str:
    """A copy of the store at ``url`` in ``folder`` (SQLite: through the backup API, opened
    read-only), migrated to this version's schema; another database is used as it is."""
    from sqlalchemy import make_url

    from db.migrate import upgrade

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return url
    source = Path(parsed.database or "")
    if not source.is_file():
        raise SystemExit(f"build_atlas: no SQLite store at {source}")
    copy = folder / "snapshot.db"
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    snap = f"sqlite:///{copy}"
    upgrade(snap)
    return snap


def export(url: str, out: Path, torch_version: str, datasets: list[str] | None,
           proxies: list[str] | None) -> tuple[int, int]:
    """Write the store's scores as an atlas at ``out``; returns (rows, left out)."""
    from db.atlas import export_rows
    from db.session import session_scope

    with session_scope(url) as session:
        rows, left_out = export_rows(session, torch_version, datasets=datasets, proxies=proxies)
    if not rows:
        raise SystemExit("build_atlas: the store holds no scores to export")
    return write_atlas(rows, out), left_out


def coverage(atlas: Atlas, space_size: int) -> tuple[list[str], int]:
    """One line per proxy and set-up (architectures covered, failures), and how many of them
    cover less than the whole space."""
    counts = Counter((r.proxy, r.setup) for r in atlas.rows)
    failed = Counter((r.proxy, r.setup) for r in atlas.rows if r.value is None)
    lines = [f"{proxy} ({setup.describe()}): {n:,} of {space_size:,} architectures, "
             f"{failed[(proxy, setup)]:,} failed" for (proxy, setup), n in sorted(counts.items())]
    return lines, sum(n < space_size for n in counts.values())


def round_trip(path: Path, torch_version: str, folder: Path) -> None:
    """Import ``path`` into an empty store and export it again: the bytes must not change."""
    from db.atlas import import_atlas
    from db.migrate import upgrade
    from db.session import session_scope

    url = f"sqlite:///{folder / 'round-trip.db'}"
    upgrade(url)
    with session_scope(url) as session:
        report = import_atlas(session, read_atlas(path))
    if report.inserted != report.rows:
        raise SystemExit(f"build_atlas: the round trip stored {report.inserted} of {report.rows} rows")
    again = folder / "again.csv.gz"
    export(url, again, torch_version, None, None)
    if again.read_bytes() != path.read_bytes():
        raise SystemExit("build_atlas: imported into an empty store, the atlas exports to other bytes")


def record(dest: Path, atlas: Atlas, source: str, lines: list[str]) -> dict[str, object]:
    """Enter the atlas in ``dest/MANIFEST.json`` (its output entry and an ``atlas`` section)."""
    manifest_path = dest / "MANIFEST.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"outputs": {}}
    path = dest / PACKAGED_NAME
    manifest.setdefault("outputs", {})[PACKAGED_NAME] = {
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "bytes": path.stat().st_size}
    manifest["atlas"] = {
        "built_by": "scripts/build_atlas.py", "from": source, "rows": len(atlas.rows),
        "architectures": len({(r.space, r.index) for r in atlas.rows}), "proxies": atlas.proxies,
        "setups": [s.as_dict() for s in atlas.setups], "coverage": lines,
        "format": "knas_core/atlas.py (long-format gzip CSV, one row per architecture, proxy and set-up)",
    }
    total = sum(int(o["bytes"]) for o in manifest["outputs"].values())
    if total > LIMIT_BYTES:
        raise SystemExit(f"build_atlas: package data would be {total / 2**20:.1f} MB, over the 15 MB limit")
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True, help="SQLAlchemy URL of the store holding the atlas's scores")
    parser.add_argument("--dest", type=Path, default=BUNDLED,
                        help="package data folder (default: knas_core/bundled)")
    parser.add_argument("--torch", default=None, metavar="VERSION",
                        help="torch version the scores were computed with (the store does not record it; "
                             "default: the torch running this script)")
    parser.add_argument("--dataset", action="append", default=None, help="only this dataset (repeatable)")
    parser.add_argument("--proxies", default=None, help="only these proxies (comma-separated)")
    parser.add_argument("--partial", action="store_true",
                        help="accept proxies that cover only part of the space (a trial)")
    args = parser.parse_args(argv)
    if args.torch is None:
        import torch

        args.torch = str(torch.__version__)
    proxies = [p.strip() for p in args.proxies.split(",") if p.strip()] if args.proxies else None
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = snapshot(args.db, folder)
        built = folder / "atlas.csv.gz"
        rows, left_out = export(url, built, args.torch, args.dataset, proxies)
        atlas = read_atlas(built)
        from knas_core.spaces import open_space

        size = min(open_space(s).size for s in atlas.spaces)
        lines, short = coverage(atlas, size)
        for line in lines:
            print(line)
        if short and not args.partial:
            raise SystemExit(f"build_atlas: {short} proxy set-up(s) do not cover the space "
                             "(pass --partial for a trial)")
        if built.stat().st_size > PACKAGED_MAX_BYTES:
            raise SystemExit(f"build_atlas: {built.stat().st_size / 2**20:.2f} MB, over the "
                             f"{PACKAGED_MAX_BYTES / 2**20:.0f} MB the packaged atlas may take")
        round_trip(built, args.torch, folder)
        out = args.dest / PACKAGED_NAME
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(built.read_bytes())
    source = args.db if "@" not in args.db else "a database"  # no credentials in the manifest
    record(args.dest, read_atlas(out), source, lines)
    note = f"; {left_out:,} transient failure(s) or unindexed architecture(s) left out" if left_out else ""
    print(f"{out}: {rows:,} rows, {out.stat().st_size / 2**20:.2f} MB{note}; MANIFEST.json updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
