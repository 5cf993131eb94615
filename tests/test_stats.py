"""xlir.report.stats on synthetic per-query differences with a known answer."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from xlir.report.stats import compare_paired, holm, macro_mean, paired_bootstrap, percentile_ci, sign_flip_test


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
