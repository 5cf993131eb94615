"""xlir.report.stats on synthetic per-query differences with a known answer (the calibration of the
seed-level statistics under seed noise: tests/test_stats_simulation.py)."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
from scipy import stats

from xlir.report.stats import (
    QUESTION_TEST,
    SEED_LEVEL_CI,
    compare_paired,
    compare_seeds,
    holm,
    macro_mean,
    paired_bootstrap,
    percentile_ci,
    permutations_for,
    seed_average,
    seed_level_test,
    sign_flip_test,
    smallest_holm_p,
    smallest_p,
    two_level_bootstrap,
    unit_variance,
)


def test_macro_mean_averages_groups_not_queries():
    deltas = np.full((100, 2), np.nan)
    deltas[:10, 0] = 1.0  # group A: 10 queries, delta 1
    deltas[:, 1] = 0.0  # group B: 100 queries, delta 0
    assert macro_mean(deltas) == pytest.approx(0.5)  # macro: (1 + 0) / 2
    assert np.nanmean(deltas) == pytest.approx(10 / 110)  # not the micro average
    assert compare_paired(deltas, 200, 200).delta == pytest.approx(0.5)


def test_constant_shift_has_a_point_interval_and_the_smallest_p():
    deltas = np.full((60, 4), 0.05)
    result = compare_paired(deltas, bootstrap_samples=500, permutations=999, rng=np.random.default_rng(1))
    assert result.delta == pytest.approx(0.05)
    assert result.ci_low == pytest.approx(0.05) and result.ci_high == pytest.approx(0.05)
    assert result.p_value == pytest.approx(1 / 1000)
    assert (result.n_units, result.n_groups, result.n_measurements) == (60, 4, 240)


def test_no_difference_gives_p_one():
    result = compare_paired(np.zeros((30, 3)), 100, 100)
    assert result.delta == 0 and result.p_value == 1.0


def test_missing_measurements_and_empty_units_are_left_out():
    deltas = np.array([[1.0, np.nan], [np.nan, np.nan], [3.0, 2.0]])
    assert macro_mean(deltas) == pytest.approx((2.0 + 2.0) / 2)
    result = compare_paired(deltas, 50, 50)
    assert (result.n_units, result.n_groups, result.n_measurements) == (2, 2, 3)


def test_bootstrap_resamples_question_ids_shared_by_every_language_pair():
    """Parallel questions share an id: a difference driven by the id alone must get
    the standard error of a mean over ids (not over ids x pairs)."""
    rng = np.random.default_rng(7)
    n_units, n_groups = 300, 20
    per_id = rng.normal(0.02, 0.1, size=n_units)
    deltas = per_id[:, None] + rng.normal(0, 0.001, size=(n_units, n_groups))
    samples = paired_bootstrap(deltas, 2000, np.random.default_rng(3))
    expected_se = per_id.std(ddof=1) / np.sqrt(n_units)
    assert samples.std() == pytest.approx(expected_se, rel=0.12)
    assert samples.std() > 3 * per_id.std(ddof=1) / np.sqrt(n_units * n_groups)


def test_sign_flip_p_matches_the_exact_randomisation_distribution():
    deltas = np.array([0.30, 0.25, -0.05, 0.20, 0.10, 0.15, -0.10, 0.40])[:, None]
    observed = abs(deltas.mean())
    flips = np.array(list(itertools.product([-1.0, 1.0], repeat=len(deltas))))
    exact = np.mean(np.abs((flips * deltas[:, 0]).mean(axis=1)) >= observed - 1e-12)
    estimate = sign_flip_test(deltas, 20000, np.random.default_rng(11))
    assert 0.01 < exact < 0.1  # small enough to be a real test of the tail
    assert estimate == pytest.approx(exact, abs=0.005)


def test_randomisation_test_is_calibrated_under_the_null():
    rng = np.random.default_rng(5)
    rejections = 0
    trials = 300
    for _ in range(trials):
        deltas = rng.normal(0, 0.1, size=(40, 3))
        rejections += sign_flip_test(deltas, 199, rng) < 0.05
    assert 0.02 <= rejections / trials <= 0.09


def test_bootstrap_interval_covers_the_true_difference():
    rng = np.random.default_rng(9)
    covered = 0
    trials = 200
    for _ in range(trials):
        deltas = rng.normal(0.1, 0.2, size=(80, 2))
        low, high = percentile_ci(paired_bootstrap(deltas, 400, rng), 0.95)
        covered += low <= 0.1 <= high
    assert 0.88 <= covered / trials <= 0.99


def test_a_real_effect_is_detected_and_the_interval_excludes_zero():
    rng = np.random.default_rng(2)
    deltas = rng.normal(0.03, 0.1, size=(1000, 5))
    result = compare_paired(deltas, 1000, 1000, rng=rng)
    assert result.p_value < 0.01
    assert 0 < result.ci_low < 0.03 < result.ci_high


def test_holm_adjustment():
    assert holm([0.01, 0.04, 0.03]).tolist() == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.001]).tolist() == pytest.approx([0.5, 0.002])
    assert holm([0.4, 0.4, 0.4]).tolist() == pytest.approx([1.0, 1.0, 1.0])
    adjusted = holm([0.02, np.nan, 0.01])
    assert np.isnan(adjusted[1]) and adjusted[[0, 2]].tolist() == pytest.approx([0.02, 0.02])
    assert holm([]).size == 0


def test_results_are_reproducible_with_the_same_seed():
    deltas = np.random.default_rng(0).normal(0, 1, size=(50, 3))
    first = compare_paired(deltas, 300, 300, rng=np.random.default_rng(42))
    second = compare_paired(deltas, 300, 300, rng=np.random.default_rng(42))
    assert first == second


def test_fast_enough_for_a_full_xquad_r_cross_lingual_setting():
    rng = np.random.default_rng(0)
    deltas = rng.normal(0, 0.2, size=(1190, 110))  # 1190 question ids x 110 language pairs
    started = time.perf_counter()
    result = compare_paired(deltas, 2000, 2000, rng=rng)
    assert time.perf_counter() - started < 30
    assert result.n_measurements == 1190 * 110


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="2-D"):
        macro_mean(np.zeros(3))
    with pytest.raises(ValueError, match="level"):
        percentile_ci(np.zeros(3), 1.5)


# ------------------------------------------------------------------ seed level
def test_unit_variance_is_the_bootstrap_variance_without_its_noise():
    rng = np.random.default_rng(4)
    deltas = rng.normal(0.01, 0.2, size=(200, 5)) + rng.normal(0, 0.1, size=(200, 1))
    deltas[rng.random(deltas.shape) < 0.2] = np.nan  # missing measurements: macro mean is a ratio
    samples = paired_bootstrap(deltas, 4000, np.random.default_rng(1))
    assert unit_variance(deltas) == pytest.approx(samples.var(), rel=0.08)
    one = rng.normal(0, 1, size=(50, 1))
    assert unit_variance(one) == pytest.approx(one.var(ddof=1) / 50)


def test_two_level_bootstrap_resamples_seeds_then_question_ids():
    rng = np.random.default_rng(8)
    seed_effects = np.array([-0.02, 0.0, 0.03])
    deltas = seed_effects[:, None, None] + rng.normal(0, 0.001, size=(3, 100, 4))
    samples = two_level_bootstrap(deltas, 3000, np.random.default_rng(2))
    # the seed mean over 3 seeds drawn with replacement: variance (S-1)/S * s^2 / S (too small)
    expected = seed_effects.var(ddof=0) / 3
    assert samples.var() == pytest.approx(expected, rel=0.1)
    one_seed = two_level_bootstrap(deltas[:1], 2000, np.random.default_rng(2))
    assert one_seed.std() == pytest.approx(paired_bootstrap(deltas[0], 2000, np.random.default_rng(2)).std(), rel=0.1)


def test_seed_level_test_adds_seed_variance_to_question_variance():
    rng = np.random.default_rng(3)
    deltas = np.array([0.01, -0.01, 0.02])[:, None, None] + rng.normal(0, 0.05, size=(3, 80, 2))
    result = seed_level_test(deltas, 0.95)
    per_seed = [macro_mean(d) for d in deltas]
    assert result.seed_deltas == pytest.approx(per_seed)
    assert result.delta == pytest.approx(np.mean(per_seed))
    assert result.seed_variance == pytest.approx(np.var(per_seed, ddof=1) / 3)
    assert result.question_variance == pytest.approx(unit_variance(deltas.mean(axis=0)))
    assert result.se**2 == pytest.approx(result.seed_variance + result.question_variance)
    assert 2 <= result.df <= 79
    assert result.ci_low < result.delta < result.ci_high
    assert (result.ci_high - result.delta) / result.se > 1.96  # a t quantile, not a normal one


def test_seed_level_df_is_seeds_minus_one_when_seeds_dominate():
    seed_effects = np.array([0.05, -0.02, 0.01, 0.04])
    deltas = seed_effects[:, None, None] + np.random.default_rng(0).normal(0, 1e-5, size=(4, 30, 3))
    result = seed_level_test(deltas)
    assert result.df == pytest.approx(3, abs=0.01)
    expected = stats.ttest_1samp([macro_mean(d) for d in deltas], 0.0)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-3)


def test_compare_seeds_with_one_seed_is_the_question_level_comparison():
    deltas = np.random.default_rng(6).normal(0.01, 0.1, size=(1, 40, 3))
    one = compare_seeds(deltas, 300, 300, rng=np.random.default_rng(5))
    assert one == compare_paired(deltas[0], 300, 300, rng=np.random.default_rng(5))
    assert not one.seed_level and one.n_seeds == 1 and one.test == QUESTION_TEST
    several = compare_seeds(np.concatenate([deltas, deltas + 0.01]), 300, 300, rng=np.random.default_rng(5))
    assert several.seed_level and several.n_seeds == 2 and several.permutations == 0
    assert several.ci_method == SEED_LEVEL_CI and several.delta == pytest.approx(macro_mean(deltas[0]) + 0.005)
    assert several == compare_seeds(np.concatenate([deltas, deltas + 0.01]), 300, 300, rng=np.random.default_rng(5))


def test_a_seed_missing_a_query_is_left_out_of_that_cell_only():
    deltas = np.full((2, 3, 1), 0.1)
    deltas[1] = 0.3
    deltas[1, 0, 0] = np.nan
    result = seed_level_test(deltas)
    assert result.seed_deltas == pytest.approx((0.1, 0.3))
    assert result.delta == pytest.approx((0.1 + 0.2 + 0.2) / 3)  # unit 0 has seed 0 only


def test_permutations_are_sized_from_the_holm_family():
    assert permutations_for(96, 0.05, 2000) == 19199  # 96 / 19200 = 0.005 = alpha / 10
    assert permutations_for(1, 0.05, 2000) == 2000  # the configured minimum
    assert smallest_holm_p(96, smallest_p(2000, 1000, False)) == pytest.approx(96 / 2001)
    assert smallest_holm_p(96, smallest_p(19199, 1000, False)) == pytest.approx(0.005)
    assert smallest_p(10**6, 4, False) == pytest.approx(0.125)  # the exact test's floor, 2 / 2^4
    assert smallest_p(2000, 4, True) == 0.0  # continuous t-test


@pytest.mark.parametrize("same_queries", [True, False])
def test_two_level_bootstrap_replicates_are_the_statistic_on_resampled_seeds_and_ids(same_queries):
    rng = np.random.default_rng(10)
    deltas = rng.normal(0, 0.2, size=(3, 12, 2))
    deltas[:, 4, 1] = np.nan
    if not same_queries:
        deltas[0, 7, 0] = np.nan  # one seed lacks a query: the general path
    samples = two_level_bootstrap(deltas, 50, np.random.default_rng(3))
    draws = np.random.default_rng(3)
    seeds = draws.integers(0, 3, size=(50, 3))
    units = draws.integers(0, 12, size=(50, 12))
    expected = [macro_mean(seed_average(deltas[s][:, u])) for s, u in zip(seeds, units)]
    assert samples == pytest.approx(expected)


def test_sign_flip_test_equals_flipping_every_cell():
    """The one-dot-product form of the sign-flip statistic gives the p-value of flipping the
    units x groups table itself (same draws), with missing cells."""
    from xlir.report.stats import _prepare, sign_flip_test

    rng = np.random.default_rng(3)
    deltas = rng.normal(0.01, 0.05, size=(60, 7))
    deltas[rng.random(deltas.shape) < 0.2] = np.nan
    values, present = _prepare(deltas)
    counts = present.sum(axis=0)
    observed = abs(float(np.mean(values.sum(axis=0) / counts)))
    signs = np.random.default_rng(9).integers(0, 2, size=(500, values.shape[0])).astype(np.float64) * 2.0 - 1.0
    brute = np.abs(((signs @ values) / counts).mean(axis=1))
    expected = (1 + int(np.count_nonzero(brute >= observed - 1e-12 * max(1.0, observed)))) / 501
    assert sign_flip_test(deltas, 500, np.random.default_rng(9)) == expected
