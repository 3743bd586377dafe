"""Zero-cost proxies behind a registry: one module per proxy, ``@register_proxy`` in each.

>>> from knas_core.proxies import get_proxy
>>> get_proxy("knas").higher_is_better
True
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from knas_core.proxies.base import Proxy, ProxyFn
from knas_core.registry import Registry

PROXIES: Registry[Proxy] = Registry("proxy")


def register_proxy(name: str, *, higher_is_better: bool = True, needs_labels: bool = True,
                   batch_size: int | None = None, reference: str = "",
                   shares_network: bool = False) -> Callable[[ProxyFn], ProxyFn]:
    """Decorator registering ``fn(model, batch) -> float`` as proxy ``name``.

    ``shares_network=True`` promises that ``fn`` leaves the network as it found it (see
    :class:`~knas_core.proxies.base.Proxy`), so :class:`~knas_core.scoring.Scorer` may score it
    on a network shared with other proxies of the same architecture.
    """
    return PROXIES.decorator(name, lambda fn: Proxy(name, fn, higher_is_better, needs_labels,
                                                    batch_size, reference, shares_network))


#: Names of the few-shot calibrated models saved in the user state folder
#: (:mod:`knas_core.calibration`): ``calibrated:NAME`` is registered on first look-up.
CALIBRATED_PREFIX = "calibrated:"


def get_proxy(name: str) -> Proxy:
    """The proxy registered as ``name``; a ``calibrated:NAME`` proxy saved by ``knas calibrate``
    is loaded from the state folder (and registered) on its first look-up."""
    if name not in PROXIES and name.startswith(CALIBRATED_PREFIX):
        from knas_core.calibration import register_calibrated

        return register_calibrated(name)
    return PROXIES.get(name)


def proxy_names() -> list[str]:
    """The registered proxies, then the calibrated models saved in the state folder that are not
    registered yet (listing them reads no model)."""
    from knas_core.calibration import saved_calibrated_names

    return PROXIES.names() + [n for n in saved_calibrated_names() if n not in PROXIES]


#: The proxies shipped with knas_core (plugins and promoted programs register more).
BUILTIN_PROXIES = ("knas", "knas_official", "nasi", "eznas", "grad_norm", "snip", "grasp", "fisher",
            "synflow", "jacob_cov", "naswot", "params", "flops")
for _module in BUILTIN_PROXIES:
    importlib.import_module(f"knas_core.proxies.{_module}")

__all__ = ["BUILTIN_PROXIES", "CALIBRATED_PREFIX", "PROXIES", "Proxy", "get_proxy", "proxy_names",
           "register_proxy"]
