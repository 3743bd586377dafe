import numpy as np
import pytest
from scipy import stats as sps

from knas_core.stats import clean_pairs, correlate, top_fraction_precision


def test_matches_scipy_on_random_data():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=200)
    scores = truth + rng.normal(scale=2.0, size=200)
    c = correlate(scores, truth)
    assert c.kendall == pytest.approx(sps.kendalltau(scores, truth).statistic)
    assert c.spearman == pytest.approx(sps.spearmanr(scores, truth).statistic)
    assert 0.0 < c.spearman < 1.0 and c.n == 200 and c.dropped == 0


def test_perfect_and_reversed_rankings():
    truth = np.arange(30.0)
    assert correlate(truth ** 3, truth).to_dict()["spearman"] == pytest.approx(1.0)
    rev = correlate(-truth, truth)
    assert rev.kendall == pytest.approx(-1.0) and rev.top10_precision == 0.0
    # A lower-is-better proxy is negated before ranking.
    assert correlate(-truth, truth, higher_is_better=False).kendall == pytest.approx(1.0)


def test_failed_scores_are_dropped_and_counted():
    truth = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    scores = [1.0, None, 3.0, float("nan"), 5.0, float("inf")]
    s, t, dropped = clean_pairs(scores, truth)
    assert dropped == 3 and s.tolist() == [1.0, 3.0, 5.0] and t.tolist() == [1.0, 3.0, 5.0]
    c = correlate(scores, truth)
    assert c.n == 3 and c.dropped == 3 and c.kendall == pytest.approx(1.0)


def test_top10_precision_by_hand():
    truth = np.arange(20.0)           # true top 10%: indices 19, 18
    scores = np.zeros(20)
    scores[19], scores[3] = 10.0, 9.0  # proxy top 2: indices 19, 3 -> one of two correct
    assert top_fraction_precision(scores, truth) == 0.5
    assert correlate(scores, truth).top10_precision == 0.5


def test_degenerate_inputs():
    c = correlate([1.0, 1.0, 1.0], [1.0, 2.0, 3.0])
    assert c.kendall is None and c.spearman is None
    with pytest.raises(ValueError, match="differ in length"):
        correlate([1.0], [1.0, 2.0])
