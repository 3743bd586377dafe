"""Discovered programs as proxies: :func:`register_formula_proxy` turns a program string into a
registered :class:`~knas_core.proxies.base.Proxy`, usable in searches, correlations and
ensembles like a built-in one. The database (``db.discovery``) stores the strings and registers
them at start-up; this module knows nothing about it.
"""

from __future__ import annotations

import math

from torch import nn

from knas_core.data import Batch
from knas_core.discovery.language import Program, used_kinds
from knas_core.discovery.tensors import gather
from knas_core.proxies import PROXIES, Proxy

_FORMULAS: dict[str, str] = {}


def formula_proxy(name: str, formula: str, *, images: int | None = None, batch_size: int | None = 16,
                  reference: str = "") -> Proxy:
    """A proxy evaluating ``formula`` (a program of :mod:`knas_core.discovery.language`).

    Each call runs one forward/backward pass per input kind the formula uses, keeping the first
    ``images`` images of each activation (the set-up the program was evolved with).
    """
    program = Program(formula)
    kinds = used_kinds(program) or ("data",)  # a leafless program still needs a network pass

    def fn(model: nn.Module, batch: Batch) -> float:
        blocks = gather(model, batch, kinds=kinds, images=images)
        value = program(blocks)
        if not math.isfinite(value):
            raise FloatingPointError(f"program gave no finite block value ({program.nonfinite_blocks} "
                                     "non-finite blocks)")
        return value

    fn.__doc__ = f"Discovered program: {formula}"
    return Proxy(name, fn, higher_is_better=True, needs_labels=False, batch_size=batch_size,
                 reference=reference or "evolved by knas evolve (EZNAS-style program search)")


def register_formula_proxy(name: str, formula: str, *, images: int | None = None,
                           batch_size: int | None = 16, reference: str = "") -> Proxy:
    """Register ``formula`` as proxy ``name``. Registering the same name and formula again is a
    no-op; a name taken by another proxy is an error."""
    if name in PROXIES:
        if _FORMULAS.get(name) == formula:
            return PROXIES.get(name)
        raise ValueError(f"proxy {name!r} is already registered; choose another name")
    proxy = formula_proxy(name, formula, images=images, batch_size=batch_size, reference=reference)
    PROXIES.add(name, proxy)
    _FORMULAS[name] = formula
    return proxy


def registered_formulas() -> dict[str, str]:
    """Name -> program of every formula proxy registered in this process."""
    return dict(_FORMULAS)
