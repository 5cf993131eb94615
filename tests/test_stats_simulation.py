"""Calibration of the comparison statistics under seed noise (issue: seed variance was not in the
uncertainty): a null effect between two recipes whose checkpoints differ by seed; and (issue 22, a verdict
that cannot be fooled) the false-positive rate of the seed-level t-test on seeds - 1 df, the power its
minimum detectable effect promises, and the research-question verdict under designed nulls.

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
test anything.

Issue 22 (`simulate_arms`: the same model, every arm and replication drawn at once):
- false-positive rate of `seed_level_test` (and of a better / worse outcome from `decide_outcomes`) <=
  alpha + 0.01 with 3 and 5 seeds over FPR_REPLICATIONS nulls (the Welch-Satterthwaite df it replaced
  is printed beside it);
- the minimum detectable effect (`minimum_detectable_effect`) is found with about its 80% power;
- C5 through the planner, `compare_seeds`, `finish` and `claim_layerwise` on C5_REPLICATIONS studies
  of 3 seeds (each its own Holm family; a quieter benchmark, C5_NOISE): "supported" at most 5% under
  (a) a pure learning-rate effect (+0.015 for decay and its mean-lr-matched control alike) and (b) mixed
  signs (decay +0.02 over uniform, lora-linear -0.02 against lora-uniform), and at least 50% for (c) a
  real shape effect (+0.03 over both comparators). Each test prints and records (`record_property`)
  the rates and the power it measured.
Fixed RNG seeds: deterministic. About 30 s on one core."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xlir.report.compare import COLUMNS, decide_outcomes, finish, plan_comparisons
from xlir.report.grid import Study
from xlir.report.stats import (
    compare_seeds,
    macro_mean,
    minimum_detectable_effect,
    seed_average,
    seed_level_test,
    sign_flip_test,
)
from xlir.report.verdict import SUPPORTED, claim_layerwise

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


# ------------------------------------------------------------------ the verdict under designed nulls (issue 22)
FPR_REPLICATIONS = 3000
C5_REPLICATIONS = 200
C5_SEEDS = 3
#: sd of (seed offset, checkpoint x question, measurement, recipe x question), as in `simulate`
NULL_NOISE = (0.01, 0.02, 0.03, 0.01)
#: a quieter benchmark, on which the old rule (decay against uniform only) called a pure lr effect of
#: +0.015 "supported" about a third of the time with 3 seeds, as the audit found
C5_NOISE = (0.0028, 0.0065, 0.013, 0.0028)


def simulate_arms(
    rng: np.random.Generator,
    reps: int,
    n_seeds: int,
    effects: dict[str, float],
    noise: tuple[float, float, float, float] = NULL_NOISE,
) -> dict[str, np.ndarray]:
    """scores[arm][rep, seed, id, pair] of each arm, up to the question difficulty every arm shares:
    the arm's effect + a per-seed random effect + a checkpoint x question effect + per-measurement
    noise + an arm x question effect shared by the arm's seeds (sds: `noise`). Drawn for every
    replication at once."""
    sd_seed, sd_checkpoint, sd_measurement, sd_recipe = noise
    scores = {}
    for arm, effect in effects.items():
        offsets = rng.normal(0, sd_seed, size=(reps, n_seeds, 1, 1))
        checkpoint = rng.normal(0, sd_checkpoint, size=(reps, n_seeds, N_IDS, 1))
        recipe = rng.normal(0, sd_recipe, size=(reps, 1, N_IDS, 1))
        measurement = rng.normal(0, sd_measurement, size=(reps, n_seeds, N_IDS, N_PAIRS))
        scores[arm] = effect + offsets + checkpoint + recipe + measurement
    return scores


def welch_p(result) -> float:
    """The p-value of the seed-level t-test as it was before issue 22 (Welch-Satterthwaite df with the
    seed part at its median-unbiased value), for comparison only."""
    from scipy import stats

    n = len(result.seed_deltas)
    seed_part = result.seed_variance * (n - 1) / stats.chi2.median(n - 1)
    denominator = seed_part**2 / (n - 1) + result.question_variance**2 / (N_IDS - 1)
    df = (seed_part + result.question_variance) ** 2 / denominator
    return float(2 * stats.t.sf(abs(result.delta) / result.se, df))


def null_rows(n_seeds: int, effect: float = 0.0, reps: int = FPR_REPLICATIONS) -> pd.DataFrame:
    """One comparison row per replication of `effect` between two arms: the seed-level test
    (`seed_level_test`), its interval at 1 - alpha and the outcome `decide_outcomes` gives a
    family of one row."""
    rng = np.random.default_rng([22, n_seeds, int(effect * 1e6)])
    scores = simulate_arms(rng, reps, n_seeds, {"treatment": effect, "control": 0.0})
    cube = scores["treatment"] - scores["control"]
    results = [seed_level_test(cube[rep], 1 - ALPHA) for rep in range(reps)]
    table = pd.DataFrame(
        {
            "metric": "map",
            "higher_is_better": True,
            "delta": [r.delta for r in results],
            "se": [r.se for r in results],
            "p_value": [r.p_value for r in results],
            "welch_p": [welch_p(r) for r in results],
            "seed_deltas": [";".join(f"{d:.6g}" for d in r.seed_deltas) for r in results],
            "min_effect": 0.01,
            "ci_adj_low": [r.ci_low for r in results],
            "ci_adj_high": [r.ci_high for r in results],
        }
    )
    table["significant"] = table["p_value"] < ALPHA
    decide_outcomes(table)
    return table


@pytest.mark.parametrize("n_seeds", [3, 5])
def test_seed_level_false_positive_rate_is_at_most_alpha(n_seeds: int, record_property):
    table = null_rows(n_seeds)
    rates = {
        "false_positive_rate": float(table.significant.mean()),
        "better_or_worse_rate": float(table.outcome.isin(["better", "worse"]).mean()),
        "welch_df_false_positive_rate": float((table.welch_p < ALPHA).mean()),
    }
    record_property(f"null_{n_seeds}_seeds", rates)
    print(f"\nnull, {n_seeds} seeds (seed sd 0.01), {FPR_REPLICATIONS} replications: {rates}")
    assert rates["false_positive_rate"] <= ALPHA + 0.01, rates
    assert rates["better_or_worse_rate"] <= rates["false_positive_rate"]


@pytest.mark.parametrize("n_seeds", [3, 5])
def test_the_minimum_detectable_effect_is_found_with_its_power(n_seeds: int, record_property):
    """The MDE (at alpha, 80% power) for the rows' standard error is found about 80% of the time. The
    se is the root mean square over replications (the expected variance): one pilot's se is itself an
    estimate on seeds - 1 df, so an MDE planned from it is optimistic about as often as pessimistic."""
    null = null_rows(n_seeds, reps=400)
    se = float(np.sqrt(np.mean(null.se**2)))
    mde = minimum_detectable_effect(se, n_seeds - 1, ALPHA, 0.8)
    found = float(null_rows(n_seeds, effect=mde, reps=1000).significant.mean())
    record_property(f"power_at_mde_{n_seeds}_seeds", {"mde": mde, "power": found})
    print(f"\n{n_seeds} seeds: MDE {mde:.4f} (rms se {se:.4f}); measured power there {found:.3f} (target 0.8)")
    assert 0.75 <= found <= 0.95


def c5_manifest(variants: dict) -> dict:
    return {
        "config": {
            "variants": variants,
            "samplings": {"hybrid": {"alpha": 0.5}},
            "grid": {"baseline_variant": "uniform", "main_sampling": "hybrid"},
            "seeds": list(range(1, C5_SEEDS + 1)),
            "training": {"languages": ["en"]},
            "benchmarks": {},
            "report": {"alpha": ALPHA},
        },
        "runs": [
            {"model": "m", "variant": v, "sampling": "hybrid", "seed": s, "dir": "x"}
            for v in variants
            for s in range(1, C5_SEEDS + 1)
        ],
        "benchmarks": [],
    }


LR_PROFILE_VARIANTS = {
    "uniform": {"kind": "uniform"},
    "decay-0.8": {"kind": "decay", "gamma": 0.8},
    "uniform-lr": {"kind": "uniform", "match_mean_lr_of": "decay-0.8"},
}
MIXED_SIGN_VARIANTS = {
    "uniform": {"kind": "uniform"},
    "decay-0.8": {"kind": "decay", "gamma": 0.8},
    "lora-uniform": {"kind": "lora", "profile": "uniform", "rank": 8, "alpha": 16},
    "lora-linear": {"kind": "lora", "profile": "linear", "rank": 8, "alpha": 16},
}


def c5_verdicts(
    variants: dict, effects: dict[str, float], reps: int = C5_REPLICATIONS
) -> tuple[pd.Series, pd.DataFrame]:
    """The C5 verdict of `reps` simulated studies (one setting each; each replication its own
    benchmark, so its own Holm family), through the project's planner (`plan_comparisons`), test
    (`compare_seeds`), table (`finish`: Holm, outcomes, power) and judgement (`claim_layerwise`)."""
    study = Study(c5_manifest(variants))
    plans = [p for p in plan_comparisons(study) if p.family == "scaling"]
    rng = np.random.default_rng([22, len(variants), int(1e6 * sum(map(abs, effects.values())))])
    scores = simulate_arms(rng, reps, C5_SEEDS, effects, C5_NOISE)
    rows = []
    for rep in range(reps):
        for plan in plans:
            cube = scores[plan.treatment.variant][rep] - scores[plan.control.variant][rep]
            result = compare_seeds(cube, 10, 0, 1 - ALPHA, rng)
            values = dict.fromkeys(COLUMNS)
            values.update({k: v for k, v in result.as_dict().items() if k in COLUMNS})
            values.update(
                benchmark=f"r{rep}",
                family="scaling",
                subset="all",
                setting="cross-lingual",
                metric="map",
                headline=True,
                higher_is_better=True,
                model="m",
                treatment=plan.treatment.label,
                control=plan.control.label,
                treatment_variant=plan.treatment.variant,
                treatment_sampling="hybrid",
                control_variant=plan.control.variant,
                control_sampling="hybrid",
                seeds=",".join(map(str, plan.treatment.seeds)),
                n_seeds=C5_SEEDS,
                single_seed=False,
                treatment_value=0.5 + result.delta,
                control_value=0.5,
                alpha=ALPHA,
                seed_deltas=";".join(f"{macro_mean(d):.6g}" for d in cube),
                min_effect=0.01,
                n_queries=result.n_units,
                n_pairs=result.n_groups,
            )
            rows.append(values)
    table = finish(rows)
    verdicts = pd.Series(
        [
            claim_layerwise(block, study, benchmark, "m")[1]["verdict"]  # [1]: the cross-lingual setting
            for benchmark, block in table.groupby("benchmark", sort=False)
        ]
    )
    return verdicts, table


def _rate(table: pd.DataFrame, treatment: str, control: str, outcome: str) -> float:
    rows = table[(table.treatment_variant == treatment) & (table.control_variant == control)]
    return float((rows.outcome == outcome).mean())


def test_a_pure_learning_rate_effect_is_not_read_as_layer_wise_scaling(record_property):
    """(a) decay and its mean-lr-matched uniform control are both +0.015 over uniform (the shape does nothing)."""
    verdicts, table = c5_verdicts(LR_PROFILE_VARIANTS, {"uniform": 0.0, "decay-0.8": 0.015, "uniform-lr": 0.015})
    supported = float((verdicts == SUPPORTED).mean())
    figures = {
        "supported": supported,
        "verdicts": verdicts.value_counts(normalize=True).round(3).to_dict(),
        "decay better than uniform (the old rule's supported rate)": _rate(table, "decay-0.8", "uniform", "better"),
        "decay better than its matched control": _rate(table, "decay-0.8", "uniform-lr", "better"),
    }
    record_property("c5_pure_lr_effect", figures)
    print(f"\n(a) pure lr effect, {C5_SEEDS} seeds, {C5_REPLICATIONS} studies: {figures}")
    assert supported <= 0.05, figures


def test_mixed_signs_across_layer_wise_variants_are_not_supported(record_property):
    """(b) decay +0.02 over uniform, lora-linear -0.02 against lora-uniform."""
    effects = {"uniform": 0.0, "decay-0.8": 0.02, "lora-uniform": -0.03, "lora-linear": -0.05}
    verdicts, table = c5_verdicts(MIXED_SIGN_VARIANTS, effects)
    supported = float((verdicts == SUPPORTED).mean())
    figures = {
        "supported": supported,
        "verdicts": verdicts.value_counts(normalize=True).round(3).to_dict(),
        "power: decay (+0.02) better than uniform (the old rule's supported rate)": _rate(
            table, "decay-0.8", "uniform", "better"
        ),
        "power: lora-linear (-0.02) worse than lora-uniform": _rate(table, "lora-linear", "lora-uniform", "worse"),
        "median MDE of the C5 rows": float(table.mde.median()),
    }
    record_property("c5_mixed_sign", figures)
    print(f"\n(b) mixed sign, {C5_SEEDS} seeds, {C5_REPLICATIONS} studies: {figures}")
    assert supported <= 0.05, figures


def test_a_real_shape_effect_is_still_supported(record_property):
    """(c) the power of the stricter rule: decay +0.03 over uniform and over its matched control."""
    effects = {"uniform": 0.0, "decay-0.8": 0.03, "uniform-lr": 0.0}
    verdicts, table = c5_verdicts(LR_PROFILE_VARIANTS, effects, reps=100)
    figures = {
        "supported": float((verdicts == SUPPORTED).mean()),
        "verdicts": verdicts.value_counts(normalize=True).round(3).to_dict(),
        "median MDE of the C5 rows": float(table[table.treatment_variant == "decay-0.8"].mde.median()),
    }
    record_property("c5_shape_effect", figures)
    print(f"\n(c) shape effect +0.03, {C5_SEEDS} seeds, 100 studies: {figures}")
    assert figures["supported"] >= 0.5, figures
