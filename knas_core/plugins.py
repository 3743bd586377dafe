"""User plugins: modules that register their own proxies or spaces (``@register_proxy`` /
``@register_space``) when imported, in every process that loads plugins (the ``knas`` command,
the workers, the dashboard).

Two ways to name them, both read by :func:`load_plugins`:

* ``KNAS_PLUGINS=pkg.module,other.module``: modules imported in this order;
* entry points of an installed distribution, in the groups :data:`ENTRY_POINT_GROUPS`
  (``knas.proxies``, ``knas.spaces``). The convention: **an entry point names a module**, and
  loading it imports that module, whose decorators register what it defines. Nothing is
  called; an entry point naming an object (``pkg.module:obj``) is refused, so that a
  registering function is never silently left uncalled. In ``pyproject.toml``::

      [project.entry-points."knas.spaces"]
      toy = "my_pkg.toy_space"

      [project.entry-points."knas.proxies"]
      my_proxy = "my_pkg.my_proxies"

Each module is imported once per process, and the installed entry points are looked up once per
process. A plugin that fails to load (an import error, a name registered twice) is reported as a
:class:`PluginError`: one line naming the plugin and where it was named, not a traceback.
"""

from __future__ import annotations

import importlib
from importlib.metadata import EntryPoint, entry_points

from knas_core.errors import InputError
from knas_core.settings import get_settings

#: The entry-point groups whose modules :func:`load_plugins` imports.
ENTRY_POINT_GROUPS: tuple[str, ...] = ("knas.proxies", "knas.spaces")

_loaded: set[str] = set()
#: Whether the installed entry points were looked up in this process.
_scanned = False
#: Why a plugin failed to load, by where it was named (reported again by every later call).
_failures: dict[str, str] = {}


class PluginError(InputError):
    """A plugin that could not be loaded; ``str()`` is one line per plugin (``; ``-joined),
    each naming the plugin and where it was named (``KNAS_PLUGINS`` or an entry point)."""


def _reason(exc: BaseException) -> str:
    """``Type: first line of the message``: one line, whatever the plugin raised."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _import(module: str, where: str) -> bool:
    """Import ``module`` once; a failure is recorded under ``where``. True when it is loaded."""
    if module in _loaded:
        return True
    try:
        importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - any failure of a user's module is reported, not raised
        _failures[where] = f"{where}: cannot import {module}: {_reason(exc)}"
        return False
    _loaded.add(module)
    _failures.pop(where, None)  # a module that failed before and imports now
    return True


def _describe(entry: EntryPoint) -> str:
    """``plugin 'toy' (entry point knas.spaces of my-dist)``."""
    dist = getattr(entry, "dist", None)
    source = f" of {dist.name}" if dist is not None and getattr(dist, "name", None) else ""
    return f"plugin {entry.name!r} (entry point {entry.group}{source})"


def _load_entry_point(entry: EntryPoint) -> None:
    where = _describe(entry)
    if entry.attr:
        _failures[where] = (f"{where} names {entry.value!r}; a knas entry point names a module (no "
                            f"':object'), whose import registers its proxies or spaces")
        return
    _import(entry.module, where)


def load_entry_points(groups: tuple[str, ...] = ENTRY_POINT_GROUPS) -> None:
    """Import the module of every installed entry point in ``groups`` (once per process)."""
    global _scanned
    if _scanned:
        return
    _scanned = True
    installed = entry_points()  # one look at the installed distributions (~0.1 s), then selections
    for group in groups:
        for entry in sorted(installed.select(group=group), key=lambda e: e.name):
            _load_entry_point(entry)


def load_plugins(spec: str | None = None) -> list[str]:
    """Import the comma-separated modules in ``spec`` (default ``$KNAS_PLUGINS``) and the modules
    of the installed ``knas.proxies`` / ``knas.spaces`` entry points, each once per process.

    Returns the modules of ``spec``. Raises :class:`PluginError` when any plugin failed to load
    (now or in an earlier call of this process); the others are loaded all the same.
    """
    if spec is None:
        names: tuple[str, ...] | list[str] = get_settings().plugins
    else:
        names = [n.strip() for n in spec.split(",")]
    loaded = []
    for name in filter(None, names):
        if _import(name, f"plugin module {name!r} (KNAS_PLUGINS)"):
            loaded.append(name)
    load_entry_points()
    if _failures:
        raise PluginError("; ".join(_failures.values()))
    return loaded


__all__ = ["ENTRY_POINT_GROUPS", "PluginError", "load_entry_points", "load_plugins"]
