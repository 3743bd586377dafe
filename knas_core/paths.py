"""Where data lives: one look-up order used by every loader.

Order (first hit wins): an explicit option, ``$KNAS_DATA_DIR``, ``./data``,
``../shared/data`` (relative to the working directory, then to the repository root).
"""

from __future__ import annotations

import os
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parents[1]


class DataNotFoundError(FileNotFoundError):
    """The data a command needs is in none of the places we look; the message says where we looked."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "data not found"


def candidate_roots(explicit: str | os.PathLike[str] | None = None) -> list[Path]:
    """Data roots in look-up order (an explicit option alone when it is given)."""
    if explicit is not None:
        return [Path(explicit).expanduser()]
    roots: list[Path] = []
    env = os.environ.get("KNAS_DATA_DIR")
    if env:
        roots.append(Path(env).expanduser())
    roots += [Path("data"), Path("..") / "shared" / "data", _REPO_ROOT / "data",
              _REPO_ROOT.parent / "shared" / "data"]
    unique: list[Path] = []
    for root in roots:
        if root.resolve() not in {r.resolve() for r in unique}:
            unique.append(root)
    return unique


def find_data(relative: str, explicit: str | os.PathLike[str] | None = None) -> Path:
    """Return ``root / relative`` for the first root in look-up order where it exists.

    Raises :class:`DataNotFoundError` naming every place tried and how to point us at the data.
    """
    roots = candidate_roots(explicit)
    if explicit is not None and not roots[0].exists():
        raise DataNotFoundError(f"data directory {str(explicit)!r} does not exist; "
                                "pass an existing directory with --data-dir")
    for root in roots:
        path = root / relative
        if path.exists():
            return path
    tried = ", ".join(str(r / relative) for r in roots)
    raise DataNotFoundError(f"cannot find {relative!r} (looked in: {tried}); "
                            "pass --data-dir DIR or set KNAS_DATA_DIR")
