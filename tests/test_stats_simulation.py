"""Calibration of the comparison statistics under seed noise (issue: seed variance was not in the
uncertainty): a null effect between two recipes whose checkpoints differ by seed.

Model (per checkpoint; a comparison's delta is treatment - control, seed s against seed s):
score[arm, seed, id, pair] = q[id, pair] + u[arm, seed] + e[arm, seed, id] + w[arm, seed, id, pair] (+ b[id] + mu
for the treatment), with u ~ N(0, sd_seed) the checkpoint's offset (so a seed's macro delta varies with
sd_seed * sqrt 2), e ~ N(0, 0.02) a checkpoint x question effect shared by a question id's language pairs,
w ~ N(0, 0.03) per measurement and b ~ N(0, 0.01) a recipe x question effect with mean 0. 40 question ids x 4
language pairs: question-level standard error about 0.004 with 3 seeds, below the seed noise, as at paper scale.

Each cell (seed noise sd 0.005 / 0.01 x 3 / 5 seeds) runs `compare_seeds` (what rule compare runs) on
REPLICATIONS null data sets and REPLICATIONS with an effect of 0.01 (for the coverage of the interval) and
asserts a false-positive rate <= alpha + 0.03 and a coverage >= 0.92. The old method (seed-averaged scores,
question-id resampling only) is run beside it on the same data: it must fail, or the simulation would not
test anything. Fixed RNG seeds: deterministic. About 10 s on one core."""

from __future__ import annotations

import numpy as np
import pytest

from xlir.report.stats import compare_seeds, seed_average, sign_flip_test

ALPHA = 0.05
REPLICATIONS = 600
N_IDS, N_PAIRS = 40, 4
EFFECT = 0.01


def simulate(rng: np.random.Generator, n_seeds: int, sd_seed: float, mu: float) -> np.ndarray:
    """deltas[seed, id, pair] of one comparison (see the module docstring)."""
    offsets = rng.normal(0, sd_seed, size=(2, n_seeds))
    checkpoint = rng.normal(0, 0.02, size=(2, n_seeds, N_IDS))
    measurement = rng.normal(0, 0.03, size=(2, n_seeds, N_IDS, N_PAIRS))
    recipe = rng.normal(0, 0.01, size=N_IDS)
    return (
        mu
        + (offsets[0] - offsets[1])[:, None, None]
        + recipe[None, :, None]
        + (checkpoint[0] - checkpoint[1])[:, :, None]
        + (measurement[0] - measurement[1])
    )


def run_cell(n_seeds: int, sd_seed: float) -> dict[str, float]:
    rng = np.random.default_rng([n_seeds, int(round(sd_seed * 10_000))])
    false_positives = covered = bootstrap_covered = old_false_positives = 0
    for _ in range(REPLICATIONS):
        null = simulate(rng, n_seeds, sd_seed, 0.0)
        result = compare_seeds(null, 100, 0, 1 - ALPHA, rng)
        assert result.seed_level and result.n_seeds == n_seeds
        false_positives += result.p_value < ALPHA
        old_false_positives += sign_flip_test(seed_average(null), 199, rng) < ALPHA
        shifted = compare_seeds(simulate(rng, n_seeds, sd_seed, EFFECT), 100, 0, 1 - ALPHA, rng)
        covered += shifted.ci_low <= EFFECT <= shifted.ci_high
        bootstrap_covered += shifted.boot_ci_low <= EFFECT <= shifted.boot_ci_high
    return {
        "false_positive_rate": false_positives / REPLICATIONS,
        "coverage": covered / REPLICATIONS,
        "two_level_bootstrap_coverage": bootstrap_covered / REPLICATIONS,
        "old_false_positive_rate": old_false_positives / REPLICATIONS,
    }


@pytest.mark.parametrize("n_seeds", [3, 5])
@pytest.mark.parametrize("sd_seed", [0.005, 0.01])
def test_null_comparisons_are_calibrated_with_seed_noise(n_seeds: int, sd_seed: float):
    rates = run_cell(n_seeds, sd_seed)
    print(f"\n{n_seeds} seeds, seed sd {sd_seed}: {rates}")
    assert rates["false_positive_rate"] <= ALPHA + 0.03, rates
    assert rates["coverage"] >= 0.92, rates
    assert rates["old_false_positive_rate"] > ALPHA + 0.05, rates  # the old method is fooled by seed noise


def test_a_real_recipe_difference_is_still_found():
    """Power: a difference of 0.02 (4x the seed sd) with 5 seeds."""
    rng = np.random.default_rng(12)
    found = sum(compare_seeds(simulate(rng, 5, 0.005, 0.02), 50, 0, 1 - ALPHA, rng).p_value < ALPHA for _ in range(200))
    print(f"\npower at 0.02, 5 seeds, seed sd 0.005: {found / 200}")
    assert found / 200 >= 0.8
