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


def test_rank_correlation_interval_covers_the_population_value():
    """95% intervals (Fisher z with the Fieller-Hartley-Pearson / Bonett-Wright standard errors)
    hold the population Kendall tau and Spearman rho of a bivariate normal in about 95% of
    samples: tau = 2/pi asin(r), rho_s = 6/pi asin(r/2) (Kendall & Gibbons 1990)."""
    from knas_core.stats import correlation_interval

    rng = np.random.default_rng(1)
    r, n, trials = 0.6, 60, 400
    population = {"kendall": 2 / np.pi * np.arcsin(r), "spearman": 6 / np.pi * np.arcsin(r / 2)}
    covered = {"kendall": 0, "spearman": 0}
    cov = [[1.0, r], [r, 1.0]]
    for _ in range(trials):
        x, y = rng.multivariate_normal([0.0, 0.0], cov, size=n).T
        for kind, estimate in (("kendall", sps.kendalltau(x, y).statistic),
                               ("spearman", sps.spearmanr(x, y).statistic)):
            low, high = correlation_interval(estimate, n, kind)
            assert low < estimate < high
            covered[kind] += low <= population[kind] <= high
    for kind, hits in covered.items():
        assert 0.92 <= hits / trials <= 0.985, (kind, hits / trials)


def test_rank_correlation_interval_edges():
    from knas_core.stats import correlation_interval

    wide, narrow = correlation_interval(0.5, 20, "spearman"), correlation_interval(0.5, 2000, "spearman")
    assert wide[0] < narrow[0] < 0.5 < narrow[1] < wide[1]
    wider = correlation_interval(0.5, 20, "kendall", level=0.99)
    assert wider[0] < correlation_interval(0.5, 20, "kendall")[0]
    assert correlation_interval(1.0, 30, "kendall") == (1.0, 1.0)
    assert correlation_interval(0.3, 4, "kendall") is None  # too few pairs for the standard error
    assert correlation_interval(None, 100, "spearman") is None
    with pytest.raises(ValueError, match="pearson"):
        correlation_interval(0.3, 100, "pearson")
    c = correlate(np.arange(50.0) ** 2, np.arange(50.0) + np.sin(np.arange(50.0)))
    assert c.interval("spearman") == correlation_interval(c.spearman, c.n, "spearman")
