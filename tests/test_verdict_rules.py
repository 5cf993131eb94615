"""Each rule of the strict verdict on constructed comparison tables: the outcome rules of
`xlir.report.compare.decide_outcomes` (Holm p, adjusted interval, minimum effect, seed signs),
the Holm-adjusted intervals, and the per-setting research-question judgement of `claim_layerwise`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.test_verdict import SETTINGS, H, claims_of, manifest, row
from xlir.report.compare import finish
from xlir.report.grid import Study
from xlir.report.stats import holm_levels
from xlir.report.verdict import CONTRADICTED, INCONCLUSIVE, MIXED, NOT_SUPPORTED, NOT_TESTED, SUPPORTED, glance_table

DECAY, LORA = ("decay-0.8", "hybrid"), ("lora-linear", "hybrid")
LORA_U = ("lora-uniform", "hybrid")
GROW = ("grow-0.9", "hybrid")


def rules_manifest() -> dict:
    study = manifest(
        variants={
            "uniform": {"kind": "uniform"},
            "decay-0.8": {"kind": "decay", "gamma": 0.8},
            "grow-0.9": {"kind": "grow", "gamma": 0.9},
            "lora-uniform": {"kind": "lora", "profile": "uniform", "rank": 8, "alpha": 16},
            "lora-linear": {"kind": "lora", "profile": "linear", "rank": 8, "alpha": 16},
        }
    )
    return study


def seed_row(setting: str, treatment, control, delta: float, p: float, seed_deltas: list[float]) -> dict:
    values = row("scaling", setting, treatment, control, delta, p, n_seeds=len(seed_deltas))
    values.update(seed_level=True, seed_deltas=";".join(f"{d:g}" for d in seed_deltas))
    return values


# ------------------------------------------------------------------ outcome rules
def narrow(values: dict, half_width: float = 0.002) -> dict:
    values.update(ci_low=values["delta"] - half_width, ci_high=values["delta"] + half_width)
    return values


def test_a_significant_tiny_difference_inside_the_min_effect_is_equivalent():
    table = finish(
        [
            narrow(row("scaling", "cross-lingual", DECAY, H, 0.005, 1e-6)),
            row("scaling", "monolingual", DECAY, H, -0.02, 1e-6),
        ]
    )
    assert table.min_effect.tolist() == [0.01, 0.01]  # the default report.min_effect
    assert table.iloc[0].significant and table.iloc[0].outcome == "equivalent"
    assert table.iloc[0].outcome_reason == "inside min effect"
    assert -0.01 < table.iloc[0].ci_adj_low and table.iloc[0].ci_adj_high < 0.01
    assert (table.iloc[1].outcome, table.iloc[1].outcome_reason) == ("worse", "significant")


def test_min_effect_comes_from_the_row_and_exempts_rank_distance():
    big = row("scaling", "cross-lingual", DECAY, H, 0.02, 1e-6)
    big["min_effect"] = 0.05
    ranks = row("sampling", "multilingual", H, ("uniform", "xx"), -0.5, 1e-6, metric="rank_distance")
    table = finish([big, ranks])
    assert (table.iloc[0].outcome, table.iloc[0].outcome_reason) == ("equivalent", "inside min effect")
    assert table.iloc[1].min_effect == 0 and table.iloc[1].outcome == "better"  # lower rank distance


def test_seeds_that_disagree_in_sign_make_the_row_inconclusive():
    table = finish(
        [
            seed_row("cross-lingual", DECAY, H, 0.03, 1e-6, [0.05, 0.045, -0.005]),
            seed_row("monolingual", DECAY, H, 0.03, 1e-6, [0.02, 0.03, 0.04]),
        ]
    )
    assert not table.iloc[0].seeds_agree and table.iloc[0].outcome_reason == "seeds disagree"
    assert table.iloc[0].outcome == "inconclusive"
    assert table.iloc[1].seeds_agree and table.iloc[1].outcome == "better"


def test_the_holm_adjusted_p_decides_not_the_raw_p():
    # raw p 0.02 < alpha, but Holm over three rows: 0.02 x 2 = 0.04 < alpha at step 2, 0.03 x 1 ... ; here
    # the third row's raw p 0.04 < alpha yet Holm stops at it: 0.04 x 1 = 0.04 after 0.03 x 2 = 0.06 fails
    table = finish(
        [
            row("scaling", "monolingual", DECAY, H, 0.05, 0.001),
            row("scaling", "cross-lingual", DECAY, H, 0.05, 0.03),
            row("scaling", "multilingual", DECAY, H, 0.05, 0.04),
        ]
    )
    assert table.p_value.lt(0.05).all()
    assert table.outcome.tolist() == ["better", "inconclusive", "inconclusive"]
    assert table.outcome_reason.tolist() == ["significant", "p", "p"]


# ------------------------------------------------------------------ adjusted intervals
def test_holm_levels_freeze_at_the_first_failing_step():
    assert holm_levels([0.001, 0.03, 0.04], 0.05) == pytest.approx([0.05 / 3, 0.025, 0.025])
    assert holm_levels([0.001, 0.002, 0.003], 0.05) == pytest.approx([0.05 / 3, 0.025, 0.05])
    assert np.isnan(holm_levels([np.nan, 0.01], 0.05)[0])


def test_t_intervals_at_the_holm_level_exclude_zero_exactly_when_holm_rejects():
    """Seed-level rows: the adjusted t interval is built from the same se and df as the test."""
    from scipy import stats

    rows, df, se = [], 4.0, 0.01
    for setting, delta in zip(SETTINGS, (0.08, 0.05, 0.025)):
        p = float(2 * stats.t.sf(delta / se, df))
        values = seed_row(setting, DECAY, H, delta, p, [delta] * 3)
        values.update(se=se, df=df)
        rows.append(values)
    table = finish(rows)
    assert (table.ci_adj_method == "t interval at the Holm step's level").all()
    excludes = (table.ci_adj_low > 0) | (table.ci_adj_high < 0)
    assert excludes.tolist() == table.significant.tolist()
    assert table.significant.tolist() == [True, True, False]  # t = 2.5 on 4 df: p 0.067 > alpha at the last step
    assert (table.ci_adj_high - table.ci_adj_low >= 2 * stats.t.ppf(0.975, df) * se - 1e-12).all()
    assert table.ci_adj_level.tolist() == pytest.approx([1 - 0.05 / 3, 1 - 0.025, 1 - 0.05])


def test_bootstrap_intervals_come_from_the_same_samples():
    values = row("scaling", "cross-lingual", DECAY, H, 0.02, 1e-4)
    values["_boot_samples"] = np.random.default_rng(0).normal(0.02, 0.004, 20_000)
    table = finish([values, row("scaling", "monolingual", DECAY, H, 0.02, 0.5)])
    first = table.iloc[0]
    assert first.ci_adj_method.startswith("bootstrap percentile")
    assert first.ci_adj_level == pytest.approx(1 - 0.05 / 2)
    assert (first.ci_adj_low, first.ci_adj_high) == pytest.approx((0.02 - 2.24 * 0.004, 0.02 + 2.24 * 0.004), abs=5e-4)
    assert "_boot_samples" not in table.columns
    assert table.iloc[1].ci_adj_method.startswith("unadjusted interval widened")


def test_a_bootstrap_interval_covering_zero_blocks_the_decision():
    values = row("scaling", "cross-lingual", DECAY, H, 0.02, 1e-4)
    values.update(ci_low=-0.001, ci_high=0.041)  # the randomisation test and the bootstrap disagree
    table = finish([values])
    assert table.iloc[0].significant and table.iloc[0].ci_adj_low < 0
    assert (table.iloc[0].outcome, table.iloc[0].outcome_reason) == ("inconclusive", "interval includes 0")


def test_the_verdict_prints_the_adjusted_interval():
    from xlir.report.verdict import fmt_delta

    table = finish(
        [row("scaling", "cross-lingual", DECAY, H, 0.02, 1e-4), row("scaling", "monolingual", DECAY, H, 0, 1)]
    )
    text = fmt_delta(table.iloc[0])
    low, high = table.iloc[0].ci_adj_low, table.iloc[0].ci_adj_high
    assert f"[{low:+.4f}, {high:+.4f}] (97.5% Holm-adjusted)" in text and low < 0.01  # wider than [0.01, 0.03]
    glance = glance_table(table, Study(manifest()))
    assert list(glance.columns) == [
        "benchmark",
        "model",
        "sampling",
        "variant",
        "setting",
        "metric",
        "Δ",
        "adjusted interval",
        "Holm p",
        "seeds",
        "MDE",
        "outcome",
        "decided by",
    ]
    assert glance.setting.tolist() == ["monolingual", "cross-lingual"]
    assert glance.iloc[1]["adjusted interval"].startswith(f"[{low:+.4f}, {high:+.4f}]")
    assert glance["decided by"].tolist() == ["p", "significant"]


# ------------------------------------------------------------------ the research question per setting
def test_a_family_with_one_better_and_one_worse_variant_is_mixed():
    rows = [
        row("scaling", "cross-lingual", DECAY, H, 0.03, 1e-4),
        row("scaling", "cross-lingual", GROW, H, -0.03, 1e-4),
    ]
    claims = claims_of(rows, rules_manifest())
    assert claims.loc["C5@cross-lingual", "verdict"] == MIXED
    assert claims.loc["C5@cross-lingual", "evidence"].startswith("mixed: decay-0.8 better than every comparator, grow")


def test_a_better_and_a_worse_variant_in_different_families_are_mixed_not_supported():
    rows = [
        row("scaling", "cross-lingual", DECAY, H, 0.03, 1e-4),
        row("scaling", "cross-lingual", GROW, H, 0.005, 0.5),
        row("scaling", "cross-lingual", LORA, LORA_U, -0.03, 1e-4),
    ]
    claims = claims_of(rows, rules_manifest())
    assert claims.loc["C5@cross-lingual", "verdict"] == MIXED
    assert (
        "worse than every comparator: lora-linear (worse than lora-uniform "
        "(the uniform-rank LoRA of its budget and scale))" in claims.loc["C5@cross-lingual", "evidence"]
    )


def test_worse_and_the_others_equivalent_is_contradicted():
    rows = [
        row("scaling", "cross-lingual", LORA, LORA_U, -0.03, 1e-4),
        narrow(row("scaling", "cross-lingual", DECAY, H, 0.001, 0.5)),
    ]
    claims = claims_of(rows, rules_manifest())
    assert claims.loc["C5@cross-lingual", "verdict"] == CONTRADICTED
    rows[1] = row("scaling", "cross-lingual", DECAY, H, 0.03, 0.5)  # inconclusive: decay-0.8 might be better
    assert claims_of(rows, rules_manifest()).loc["C5@cross-lingual", "verdict"] == INCONCLUSIVE


def test_the_research_question_is_judged_per_setting_and_benchmark():
    rows = [
        row("scaling", "monolingual", DECAY, H, 0.03, 1e-4),
        narrow(row("scaling", "cross-lingual", DECAY, H, 0.005, 1e-4)),  # inside ± the minimum effect
        row("scaling", "multilingual", DECAY, H, -0.03, 1e-4),
    ]
    claims = claims_of(rows, rules_manifest())
    c5 = claims.loc[[f"C5@{s}" for s in SETTINGS]]
    assert c5.verdict.tolist() == [SUPPORTED, NOT_SUPPORTED, CONTRADICTED]  # cross-lingual: equivalent
    assert "equivalent to uniform (the baseline)" in claims.loc["C5@cross-lingual", "evidence"]
    assert set(c5.benchmark) == {"demo"} and c5.setting.tolist() == list(SETTINGS)
    other = manifest()
    other["config"]["benchmarks"]["second"] = {"kind": "demo", "languages": ["en", "es"]}
    other["benchmarks"] = ["demo", "second"]
    both = claims_of(rows, other)
    second = both[both.benchmark == "second"]
    assert set(second.loc[second.index.str.startswith("C5@"), "verdict"]) == {NOT_TESTED}


def test_only_like_for_like_rows_count_for_the_research_question():
    rows = [
        row("scaling", "cross-lingual", LORA, H, -0.05, 1e-4),  # vs full fine-tuning: not like for like
        row("scaling", "cross-lingual", LORA, LORA_U, 0.002, 0.6),
    ]
    claims = claims_of(rows, rules_manifest())
    assert claims.loc["C5@cross-lingual", "verdict"] == INCONCLUSIVE
    assert "still significantly worse than uniform" in claims.loc["C5@cross-lingual", "evidence"]


def test_claims_table_has_a_setting_column():
    claims = claims_of([row("scaling", "cross-lingual", DECAY, H, 0.03, 1e-4)])
    assert claims.loc["C1", "setting"] == "" and isinstance(claims, pd.DataFrame)
