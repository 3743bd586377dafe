"""Optional dependencies: the packages of pyproject.toml's extras, and one clear line when one
is missing.

The core (``pip install knas-studio``) scores, correlates and searches in-process on the SQLite
store. The rest comes with extras: ``workers`` (Celery), ``web`` (Streamlit, Plotly),
``postgres`` (psycopg), ``discovery`` (DEAP), ``nb201`` (the NAS-Bench-201 ``.pth`` reader),
``calibration`` (scikit-learn: ``knas calibrate`` and ``calibrated:NAME`` proxies);
``all`` is every one of them. An entry point that needs one calls :func:`require` (or re-raises
an ``ImportError`` through :func:`missing_extra`), so a user reads what to install::

    knas: error: the task queue (knas worker, submit, status, cancel, up) needs the package
    'celery', which is not installed: pip install 'knas-studio[workers]'

(one line in reality).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from knas_core.errors import InputError

#: The top-level module of each optional package, by the extra that installs it.
EXTRAS = {
    "workers": ("celery", "kombu", "redis"),
    "web": ("streamlit", "plotly"),
    "postgres": ("psycopg",),
    "discovery": ("deap",),
    "nb201": ("nas_201_api",),
    "calibration": ("sklearn",),
}


class MissingExtraError(InputError, ImportError):
    """An optional package is not installed; ``str()`` names the ``pip install`` to run."""

    def __init__(self, module: str, extra: str, purpose: str) -> None:
        super().__init__(f"{purpose} needs the package {module!r}, which is not installed: "
                         f"pip install 'knas-studio[{extra}]'", name=module)
        self.extra = extra


def _absent(exc: ImportError, module: str) -> bool:
    """Whether ``exc`` says that ``module`` itself (or its top-level package) is missing, rather
    than something broken inside an installed package."""
    name = getattr(exc, "name", None)
    return isinstance(exc, ModuleNotFoundError) and name is not None and (
        module == name or module.startswith(name + "."))


def missing_extra(exc: ImportError, extra: str, purpose: str) -> ImportError:
    """The error to raise for ``exc``, an ``ImportError`` caught around the imports of an
    optional package of ``extra``: a :class:`MissingExtraError` when one of that extra's packages
    is absent, ``exc`` itself otherwise (a genuine bug keeps its traceback)."""
    for module in EXTRAS.get(extra, ()):
        if _absent(exc, module):
            return MissingExtraError(module, extra, purpose)
    return exc


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import and return ``module``; raise :class:`MissingExtraError` (an ``ImportError`` and an
    :class:`~knas_core.errors.InputError`, one line) naming ``extra`` when it is not installed.

    >>> require("json", "web", "the dashboard").__name__
    'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if _absent(exc, module):
            raise MissingExtraError(module, extra, purpose) from None
        raise
