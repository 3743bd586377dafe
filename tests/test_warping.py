"""Box-Cox warping of accuracy labels (knas_core.warping): the transform and its Jacobian against
their definitions, and the likelihood choosing the power that made the data."""

from __future__ import annotations

import numpy as np
import pytest

from knas_core.gaussian_process import GaussianProcess
from knas_core.warping import LAMBDAS, box_cox_error, error_ceiling, fit_warped, log_jacobian


@pytest.mark.parametrize("labels, ceiling", [
    ([93.5, 10.0, 88.2], 100.0), ([0.935, 0.1], 1.0), ([0.2, 45.0], 100.0),
    ([-0.5, 0.9], None), ([100.0, 93.0], None), ([250.0, 3.0], None), ([1.0, 0.5], 100.0)])
def test_the_error_ceiling_reads_percent_or_fraction(labels, ceiling):
    assert error_ceiling(labels) == ceiling


def test_box_cox_of_the_error_is_its_definition_and_increases_with_accuracy():
    y = np.array([10.0, 60.0, 85.0, 93.5])
    e = 100.0 - y
    assert np.allclose(box_cox_error(y, 0.0, 100.0), -np.log(e))
    assert np.allclose(box_cox_error(y, -0.5, 100.0), -(e ** -0.5 - 1) / -0.5)
    assert np.allclose(box_cox_error(y, 1.0, 100.0), y - 99.0)  # lam = 1: the labels, shifted
    for lam in LAMBDAS:
        assert np.all(np.diff(box_cox_error(y, lam, 100.0)) > 0)
    # lam -> 0 meets the log continuously
    assert np.allclose(box_cox_error(y, 1e-7, 100.0), box_cox_error(y, 0.0, 100.0), atol=1e-5)


@pytest.mark.parametrize("lam", [-1.5, 0.0, 0.5])
def test_the_log_jacobian_is_the_sum_of_log_derivatives(lam):
    y = np.array([12.0, 55.0, 91.0])
    h = 1e-6
    numeric = (box_cox_error(y + h, lam, 100.0) - box_cox_error(y - h, lam, 100.0)) / (2 * h)
    assert log_jacobian(y, lam, 100.0) == pytest.approx(np.log(numeric).sum(), rel=1e-6)


@pytest.mark.parametrize("true_lam", [-1.5, 1.0])
def test_the_likelihood_chooses_the_power_that_made_the_labels(true_lam):
    """Labels whose warped error is a smooth function of x plus a little noise: the power under
    which they are likeliest is the one that made them, and
    another power's fit explains them less well."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, (80, 1))
    # z runs between the warped errors of 60 and 3 points, smoothly in x; e inverts
    # z = -(e^lam - 1)/lam: e = (1 - lam z)^(1/lam)
    lo, hi = (-(e ** true_lam - 1) / true_lam for e in (60.0, 3.0))
    z = lo + (hi - lo) * (0.5 + 0.45 * np.sin(1.5 * x[:, 0]) + 0.01 * rng.normal(size=80))
    e = (1 - true_lam * z) ** (1 / true_lam)
    assert e.min() > 2 and e.max() < 61
    y = 100.0 - e
    fit = fit_warped(lambda r: GaussianProcess(((0,),), restarts=r, seed=0), x, y)
    assert fit is not None and fit.ceiling == 100.0
    assert fit.lam == true_lam  # without the Jacobian term the grid's end, -2, wins both
    assert fit.describe()["box_cox_lambda"] == fit.lam
    far = 1.0 if true_lam < 0 else -2.0
    other = fit_warped(lambda r: GaussianProcess(((0,),), restarts=r, seed=0), x, y, lambdas=(far,))
    assert other is not None and other.log_likelihood < fit.log_likelihood


def test_labels_that_are_not_accuracies_are_not_warped():
    x = np.linspace(0, 1, 10)[:, None]
    assert fit_warped(lambda r: GaussianProcess(((0,),), restarts=r), x, np.linspace(-5, 5, 10)) is None
