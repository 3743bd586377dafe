"""Published Spearman rank correlations on NAS-Bench-201, used as reference marks.

Spearman rho between a proxy and CIFAR-10 test accuracy over the whole NAS-Bench-201 space
(15,625 cells), as listed in docs/RESULTS.md:

* Abdelfattah et al., *Zero-Cost Proxies for Lightweight NAS*, ICLR 2021, Table 2
  (grad_norm, snip, grasp, fisher, synflow, jacob_cov);
* Mellor et al., *Neural Architecture Search without Training*, ICML 2021 (naswot: 0.78-0.80
  depending on the batch; the range is kept as ``(low, high)``);
* Akhauri et al., *EZNAS: Evolving Zero-Cost Proxies*, NeurIPS 2022 (eznas).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Published:
    proxy: str
    dataset: str
    spearman: float          # the mark shown (the midpoint when a range was published)
    low: float
    high: float
    source: str


_C10 = "cifar10"
_ZC = "Abdelfattah et al., ICLR 2021"

PUBLISHED: tuple[Published, ...] = (
    Published("grad_norm", _C10, 0.59, 0.59, 0.59, _ZC),
    Published("snip", _C10, 0.59, 0.59, 0.59, _ZC),
    Published("grasp", _C10, 0.51, 0.51, 0.51, _ZC),
    Published("fisher", _C10, 0.36, 0.36, 0.36, _ZC),
    Published("synflow", _C10, 0.74, 0.74, 0.74, _ZC),
    Published("jacob_cov", _C10, 0.73, 0.73, 0.73, _ZC),
    Published("naswot", _C10, 0.79, 0.78, 0.80, "Mellor et al., ICML 2021"),
    Published("eznas", _C10, 0.81, 0.81, 0.81, "Akhauri et al., NeurIPS 2022"),
)


def published_spearman(proxy: str, dataset: str) -> Published | None:
    """The published mark for ``proxy`` on ``dataset``, or ``None`` when none was published."""
    return next((p for p in PUBLISHED if p.proxy == proxy and p.dataset == dataset), None)
