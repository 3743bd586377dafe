"""A small Gaussian-process regressor for few-shot calibration (numpy and scipy only).

Rasmussen & Williams, *Gaussian Processes for Machine Learning*, MIT Press 2006 (GPML):

* kernel: a Matern 3/2 covariance (GPML eq. 4.17) of a distance in which each *group* of columns
  has its own length scale, ``r^2 = sum_g ||x_g - x'_g||^2 / l_g^2``, times a signal variance
  ``s^2``, plus independent noise ``sigma^2`` on the training targets;
* hyperparameters ``(l_g, s^2, sigma^2)``: maximum of the log marginal likelihood (GPML eq. 2.30,
  "type-II maximum likelihood") by L-BFGS-B from a few starts, on the training rows only;
* prediction: the posterior mean ``k(x, X) alpha`` with ``alpha = (K + sigma^2 I)^-1 y`` through a
  Cholesky factor (GPML Algorithm 2.1).

Columns are standardised with the training rows' mean and standard deviation (a column constant on
them is only centred) and the targets likewise, so the starting length scale ``sqrt(|g|)`` is
the typical distance within a group. The fitted state is a handful of arrays
(:meth:`GaussianProcess.state`), saved without pickle.

Why not scikit-learn's ``GaussianProcessRegressor``: its kernels take one length scale for all
columns or one per column, not one per group (the proxies, the cell summary and the one-hot
encoding are column groups of very different sizes), and a fitted estimator is saved by pickle,
which a lab should not load from a colleague's file; these arrays load with
``allow_pickle=False``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Bounds of the log hyperparameters: length scales, signal variance, noise variance (of the
#: standardised targets).
LOG_LENGTH = (np.log(0.05), np.log(1e3))
LOG_SIGNAL = (np.log(1e-3), np.log(1e2))
LOG_NOISE = (np.log(1e-4), np.log(2.0))
#: Jitter added to the diagonal for a stable Cholesky factor.
JITTER = 1e-6
#: Rows predicted at once (the cross-covariance block is rows x k).
BLOCK = 4096


def matern32(r: np.ndarray) -> np.ndarray:
    """Matern covariance with nu = 3/2 at scaled distance ``r`` (GPML eq. 4.17):
    ``(1 + sqrt(3) r) exp(-sqrt(3) r)``."""
    s = np.sqrt(3.0) * r
    return np.asarray((1.0 + s) * np.exp(-s))


def _sq_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances between the rows of ``a`` and ``b`` (never negative)."""
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.asarray(np.maximum(d, 0.0))


@dataclass
class GaussianProcess:
    """GP regression with one length scale per column group (see the module docstring).

    ``groups``: the column indices of each group; columns in no group are not read.
    ``restarts``: starts of the likelihood maximisation (the first at the default
    hyperparameters, the others jittered by ``seed``)."""

    groups: tuple[tuple[int, ...], ...]
    restarts: int = 3
    seed: int = 0
    #: Fitted state: column means and scales, standardised training rows, ``alpha``, the log
    #: hyperparameters ``(log l_1..log l_G, log s^2, log sigma^2)``, the targets' mean and scale,
    #: and the log marginal likelihood reached.
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    scale: np.ndarray = field(default_factory=lambda: np.zeros(0))
    rows: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    alpha: np.ndarray = field(default_factory=lambda: np.zeros(0))
    theta: np.ndarray = field(default_factory=lambda: np.zeros(0))
    y_mean: float = 0.0
    y_scale: float = 1.0
    log_likelihood: float = float("nan")

    def _kernel(self, theta: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``s^2 matern32(r)`` between standardised rows ``a`` and ``b``."""
        d2 = np.zeros((a.shape[0], b.shape[0]))
        for g, log_l in zip(self.groups, theta):
            cols = list(g)
            d2 += _sq_dist(a[:, cols], b[:, cols]) / np.exp(2.0 * log_l)
        return np.exp(theta[len(self.groups)]) * matern32(np.sqrt(d2))

    def _neg_log_likelihood(self, theta: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
        """``-log p(y | X, theta)`` up to the constant ``n/2 log 2 pi`` (GPML eq. 2.30)."""
        from scipy.linalg import cho_factor, cho_solve

        k = self._kernel(theta, x, x) + (np.exp(theta[-1]) + JITTER) * np.eye(len(x))
        try:
            factor = cho_factor(k, lower=True)
        except np.linalg.LinAlgError:
            return 1e10
        return float(0.5 * y @ cho_solve(factor, y) + np.log(np.diag(factor[0])).sum())

    def fit(self, x: np.ndarray, y: np.ndarray) -> GaussianProcess:
        """Fit to rows ``x`` (n x columns) and targets ``y``; returns ``self``."""
        from scipy.linalg import cho_factor, cho_solve
        from scipy.optimize import minimize

        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        self.mean = x.mean(0)
        sd = x.std(0)
        self.scale = np.where(sd > 0, sd, 1.0)
        self.rows = (x - self.mean) / self.scale
        self.y_mean = float(y.mean())
        self.y_scale = float(y.std()) or 1.0
        target = (y - self.y_mean) / self.y_scale
        n_groups = len(self.groups)
        start = np.array([*(0.5 * np.log(len(g)) for g in self.groups), 0.0, np.log(0.1)])
        bounds = [LOG_LENGTH] * n_groups + [LOG_SIGNAL, LOG_NOISE]
        rng = np.random.default_rng(self.seed)
        best: Any = None
        for attempt in range(max(1, self.restarts)):
            theta0 = start.copy()
            if attempt:
                theta0[:n_groups] += rng.normal(0.0, 0.5, n_groups)
            result = minimize(self._neg_log_likelihood, theta0, args=(self.rows, target),
                              method="L-BFGS-B", bounds=bounds)
            if best is None or result.fun < best.fun:
                best = result
        self.theta = np.asarray(best.x, dtype=np.float64)
        self.log_likelihood = -float(best.fun)
        k = self._kernel(self.theta, self.rows, self.rows)
        k += (np.exp(self.theta[-1]) + JITTER) * np.eye(len(self.rows))
        self.alpha = cho_solve(cho_factor(k, lower=True), target)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The posterior mean at rows ``x`` (GPML Algorithm 2.1, line 4), in the targets' units."""
        if self.alpha.size == 0:
            raise ValueError("the Gaussian process is not fitted")
        x = (np.asarray(x, dtype=np.float64) - self.mean) / self.scale
        out = np.empty(len(x))
        for s in range(0, len(x), BLOCK):
            out[s:s + BLOCK] = self._kernel(self.theta, x[s:s + BLOCK], self.rows) @ self.alpha
        return out * self.y_scale + self.y_mean

    def evidence(self) -> float:
        """How much likelier the targets are under the fitted process than as pure noise: the
        log marginal likelihood minus that of independent unit-variance noise on the
        standardised targets (``-n/2`` in the same units), in nats. Near 0: the inputs explain
        nothing (e.g. shuffled labels); large: a structure the inputs carry."""
        return self.log_likelihood + 0.5 * len(self.rows)

    def hyperparameters(self) -> dict[str, Any]:
        """The fitted length scales (one per group, in standardised units), signal and noise
        variances (of the standardised targets), the log marginal likelihood and
        :meth:`evidence`, rounded."""
        n = len(self.groups)
        return {"length_scales": [round(float(np.exp(t)), 4) for t in self.theta[:n]],
                "signal": round(float(np.exp(self.theta[n])), 4),
                "noise": round(float(np.exp(self.theta[-1])), 4),
                "log_marginal_likelihood": round(self.log_likelihood, 3),
                "evidence": round(self.evidence(), 3)}

    def state(self) -> dict[str, np.ndarray]:
        """The fitted arrays, for ``numpy.savez`` (with :meth:`settings` in JSON)."""
        return {"mean": self.mean, "scale": self.scale, "rows": self.rows, "alpha": self.alpha,
                "theta": self.theta}

    def settings(self) -> dict[str, Any]:
        """The JSON-ready rest of the model: groups, restarts, seed, target scaling."""
        return {"groups": [list(g) for g in self.groups], "restarts": self.restarts, "seed": self.seed,
                "y_mean": self.y_mean, "y_scale": self.y_scale, "log_likelihood": self.log_likelihood}

    @classmethod
    def restore(cls, settings: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> GaussianProcess:
        """The model :meth:`settings` and :meth:`state` describe."""
        groups = tuple(tuple(int(c) for c in g) for g in settings["groups"])
        def read(name: str) -> np.ndarray:
            return np.asarray(arrays[name], dtype=np.float64)

        return cls(groups, int(settings["restarts"]), int(settings["seed"]), mean=read("mean"),
                   scale=read("scale"), rows=read("rows"), alpha=read("alpha"), theta=read("theta"),
                   y_mean=float(settings["y_mean"]), y_scale=float(settings["y_scale"]),
                   log_likelihood=float(settings["log_likelihood"]))


def column_groups(sizes: Sequence[int]) -> tuple[tuple[int, ...], ...]:
    """Consecutive groups of ``sizes`` columns (empty ones left out): ``(2, 3) -> ((0, 1), (2, 3, 4))``."""
    out, start = [], 0
    for n in sizes:
        if n:
            out.append(tuple(range(start, start + n)))
        start += n
    return tuple(out)


__all__ = ["GaussianProcess", "column_groups", "matern32"]
