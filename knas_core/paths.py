"""Where data lives: one look-up order used by every loader.

Order (first hit wins):

1. an explicit option (``--data-dir``, a config's ``data_dir``);
2. ``$KNAS_DATA_DIR``;
3. the user cache, where ``knas data fetch`` puts full data sets
   (``platformdirs.user_cache_path("knas-studio") / "data"``; ``$KNAS_CACHE_DIR`` moves it);
4. the package data that ships inside ``knas_core`` (``knas_core/bundled``): the NAS-Bench-201
   table and small scoring image sets, built by ``scripts/build_package_data.py``.

Each root is searched for a list of relative names (e.g. the plain CSV, then its gzip form), so a
user's own copy in an earlier root always wins over what ships.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from knas_core.errors import InputError
from knas_core.settings import get_settings

#: The package data folder (inside the installed ``knas_core``).
PACKAGE_DATA = Path(__file__).resolve().parent / "bundled"


class DataNotFoundError(FileNotFoundError, InputError):
    """The data a command needs is in none of the places we look; the message says where we looked."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "data not found"


@dataclass(frozen=True)
class DataRoot:
    """A folder that may hold data, and why we look there (``option``, ``KNAS_DATA_DIR``,
    ``user cache`` or ``package``)."""

    path: Path
    origin: str

    def __truediv__(self, relative: str) -> Path:
        return self.path / relative


def user_cache_dir() -> Path:
    """Where ``knas data fetch`` downloads to by default: ``$KNAS_CACHE_DIR``, else the
    platform's per-user cache folder (``~/.cache/knas-studio/data`` on Linux)."""
    env = get_settings().cache_dir
    if env is not None:
        return env
    from platformdirs import user_cache_path

    return user_cache_path("knas-studio", appauthor=False) / "data"


def candidate_roots(explicit: str | os.PathLike[str] | None = None, *,
                    fallback: bool = True) -> list[DataRoot]:
    """Data roots in look-up order. With ``fallback=False`` an explicit folder is the only root
    (a user who names a folder of images means that folder)."""
    roots: list[DataRoot] = []
    if explicit is not None:
        roots.append(DataRoot(Path(explicit).expanduser(), "option"))
        if not fallback:
            return roots
    env = get_settings().data_dir
    if env is not None:
        roots.append(DataRoot(env, "KNAS_DATA_DIR"))
    roots += [DataRoot(user_cache_dir(), "user cache"), DataRoot(PACKAGE_DATA, "package")]
    unique: list[DataRoot] = []
    seen: set[Path] = set()
    for root in roots:
        key = root.path.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(root)
    return unique


def find_data_in(names: str | Sequence[str], explicit: str | os.PathLike[str] | None = None, *,
                 fallback: bool = True) -> tuple[Path, DataRoot]:
    """``(path, root)`` of the first of ``names`` (relative paths, tried in order within each
    root) found in look-up order.

    Raises :class:`DataNotFoundError` naming every place tried and how to point us at the data.
    """
    names = [names] if isinstance(names, str) else list(names)
    if explicit is not None and not Path(explicit).expanduser().exists():
        raise DataNotFoundError(f"data directory {str(explicit)!r} does not exist; "
                                "set data_dir to an existing directory")
    roots = candidate_roots(explicit, fallback=fallback)
    for root in roots:
        for name in names:
            path = root / name
            if path.exists():
                return path, root
    tried = ", ".join(str(r / n) for r in roots for n in names)
    raise DataNotFoundError(f"cannot find {names[0]!r} (looked in: {tried}); "
                            "set data_dir or KNAS_DATA_DIR")


def find_data(names: str | Sequence[str], explicit: str | os.PathLike[str] | None = None, *,
              fallback: bool = True) -> Path:
    """The path of :func:`find_data_in`."""
    return find_data_in(names, explicit, fallback=fallback)[0]
