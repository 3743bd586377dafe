"""Box-Cox warping of accuracy labels for the few-shot calibration's Gaussian processes.

An accuracy ``y`` (in percent, or as a fraction) is read through its error ``e = c - y``
(``c`` = 100, or 1: :func:`error_ceiling`) and the Box-Cox power transform (Box & Cox, "An
analysis of transformations", J. R. Statist. Soc. B 26, 1964, eq. 1), negated so that higher
is still better:

    z = -(e^lam - 1) / lam   (lam != 0),        z = -log e   (lam = 0).

``lam = 1`` is the labels themselves (up to an affine map, which the process's standardisation
removes); ``lam < 1`` stretches the small errors of good networks and squeezes the few
collapsed ones near chance, whose raw accuracies would otherwise set the regression's scale.

``lam`` is chosen from :data:`LAMBDAS` by the likelihood of the *labels*, not of ``z``: a
process fitted to the standardised ``z`` (its log marginal likelihood, GPML eq. 2.30) plus the
log Jacobian of ``y -> (z - mean) / sd``, ``sum log |dz/dy| - n log sd = (lam - 1) sum log e -
n log sd`` (:func:`log_jacobian`). This is the warped Gaussian process of Snelson, Rasmussen &
Ghahramani ("Warped Gaussian processes", NIPS 2004, eq. 8) with a one-parameter warping, its
parameter chosen on a grid (:func:`fit_warped`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: The Box-Cox powers among which :func:`fit_warped` chooses.
LAMBDAS: tuple[float, ...] = (-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0)


def error_ceiling(labels: Sequence[float] | np.ndarray) -> float | None:
    """The accuracy a label's error is measured from: 100 for labels in percent (all in
    ``[0, 100)``, some above 1), 1 for fractions (all in ``[0, 1)``), ``None`` for labels that
    are neither (negative, or at or above the ceiling: no error to take the power of).

    >>> error_ceiling([93.1, 88.0, 10.0]), error_ceiling([0.93, 0.1]), error_ceiling([-1.0, 3.0])
    (100.0, 1.0, None)
    """
    y = np.asarray(labels, dtype=np.float64)
    if y.size == 0 or not np.isfinite(y).all() or y.min() < 0:
        return None
    if y.max() < 1.0:
        return 1.0
    if y.max() < 100.0:
        return 100.0
    return None


def box_cox_error(labels: Sequence[float] | np.ndarray, lam: float, ceiling: float) -> np.ndarray:
    """``z`` of each label (module docstring): the negated Box-Cox transform of ``ceiling - y``;
    increasing in ``y``."""
    e = ceiling - np.asarray(labels, dtype=np.float64)
    if lam == 0:
        return np.asarray(-np.log(e))
    return np.asarray(-(np.power(e, lam) - 1.0) / lam)


def log_jacobian(labels: Sequence[float] | np.ndarray, lam: float, ceiling: float) -> float:
    """``sum_i log |dz_i / dy_i| = (lam - 1) sum_i log(ceiling - y_i)``."""
    e = ceiling - np.asarray(labels, dtype=np.float64)
    return float((lam - 1.0) * np.log(e).sum())


@dataclass
class WarpedFit:
    """The process fitted to the warped labels, the power chosen, the ceiling and the labels'
    log likelihood under it (up to a constant shared by every power)."""

    regressor: Any  # knas_core.gaussian_process.GaussianProcess, fitted to box_cox_error(y, lam, ceiling)
    lam: float
    ceiling: float
    log_likelihood: float

    def describe(self) -> dict[str, float]:
        return {"box_cox_lambda": self.lam, "error_ceiling": self.ceiling,
                "warped_log_likelihood": round(self.log_likelihood, 3)}


def fit_warped(make: Callable[[int], Any], x: np.ndarray, labels: Sequence[float] | np.ndarray,
               lambdas: Sequence[float] = LAMBDAS, restarts: int = 3) -> WarpedFit | None:
    """Fit ``make(r)`` (an unfitted :class:`~knas_core.gaussian_process.GaussianProcess` with
    ``r`` starts of its likelihood maximisation) to ``box_cox_error(labels, lam, c)`` for each
    ``lam`` of ``lambdas``, with one start each, and keep the power under which the labels are
    likeliest (module docstring); that power's process is then fitted again with ``restarts``
    starts (so a choice among seven powers costs about three times one fit, not seven).
    ``None`` when the labels have no :func:`error_ceiling` (they are not accuracies)."""
    ceiling = error_ceiling(labels)
    if ceiling is None:
        return None
    y = np.asarray(labels, dtype=np.float64)

    def fit(lam: float, starts: int) -> WarpedFit:
        gp = make(starts).fit(x, box_cox_error(y, lam, ceiling))
        ll = gp.log_likelihood - len(y) * np.log(gp.y_scale) + log_jacobian(y, lam, ceiling)
        return WarpedFit(gp, float(lam), ceiling, float(ll))

    best = max((fit(lam, 1) for lam in lambdas), key=lambda f: f.log_likelihood)
    return fit(best.lam, restarts) if restarts > 1 else best


__all__ = ["LAMBDAS", "WarpedFit", "box_cox_error", "error_ceiling", "fit_warped", "log_jacobian"]
