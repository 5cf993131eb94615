"""The verdict and the claims table are generated from the comparisons, by stated criteria."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from tests.report_fixture import write_study
from xlir.report.compare import COLUMNS, compare_runs, finish
from xlir.report.grid import Study
from xlir.report.verdict import (
    INCONCLUSIVE,
    MIXED,
    NOT_SUPPORTED,
    NOT_TESTED,
    SUPPORTED,
    claims_table,
    fmt_delta,
    research_answer,
    verdict_lines,
)


def manifest(variants: dict | None = None, samplings: dict | None = None, seeds=(1,)) -> dict:
    return {
        "config": {
            "variants": variants
            or {
                "uniform": {"kind": "uniform"},
                "decay-0.8": {"kind": "decay", "gamma": 0.8},
                "lora-uniform": {"kind": "lora", "profile": "uniform", "rank": 8, "alpha": 16},
                "lora-linear": {"kind": "lora", "profile": "linear", "rank": 8, "alpha": 16},
            },
            "samplings": samplings or {"hybrid": {"alpha": 0.5}, "xx": {"alpha": 1.0}, "xy": {"alpha": 0.0}},
            "grid": {"baseline_variant": "uniform", "main_sampling": "hybrid"},
            "seeds": list(seeds),
            "training": {"languages": ["en", "es"]},
            "benchmarks": {"demo": {"kind": "demo", "languages": ["en", "es", "gl"]}},
            "report": {"alpha": 0.05},
        },
        "runs": [{"model": "m", "variant": "uniform", "sampling": "hybrid", "seed": 1, "dir": "x"}],
        "benchmarks": ["demo"],
    }


def row(
    family: str,
    setting: str,
    treatment: tuple[str, str],
    control: tuple[str, str],
    delta: float,
    p: float,
    metric: str = "map",
    subset: str = "all",
    n_seeds: int = 3,
) -> dict:
    values = dict.fromkeys(COLUMNS)
    values.update(
        benchmark="demo",
        family=family,
        subset=subset,
        setting=setting,
        metric=metric,
        headline=metric == "map",
        higher_is_better=metric != "rank_distance",
        model="m",
        treatment="zero-shot" if treatment[0] == "zeroshot" else "/".join(treatment),
        control="zero-shot" if control[0] == "zeroshot" else "/".join(control),
        treatment_variant=treatment[0],
        treatment_sampling=treatment[1],
        control_variant=control[0],
        control_sampling=control[1],
        seeds=",".join(str(s) for s in range(1, n_seeds + 1)),
        n_seeds=n_seeds,
        single_seed=n_seeds == 1,
        treatment_value=0.5 + delta,
        control_value=0.5,
        delta=delta,
        ci_low=delta - 0.01,
        ci_high=delta + 0.01,
        ci_level=0.95,
        p_value=p,
        alpha=0.05,
        n_queries=100,
        n_pairs=6,
        n_measurements=600,
        unmatched=0,
        seed_deltas="",
        bootstrap_samples=1000,
        permutations=1000,
    )
    return values


SETTINGS = ("monolingual", "cross-lingual", "multilingual")
H, XX, XY, Z = ("uniform", "hybrid"), ("uniform", "xx"), ("uniform", "xy"), ("zeroshot", "none")


def claims_of(rows: list[dict], study_manifest: dict | None = None) -> pd.DataFrame:
    """Claims indexed by claim; C5 and C5-largest are indexed `C5@setting` (one row per setting)."""
    study = Study(study_manifest or manifest())
    claims = claims_table(finish(rows), study, {"m": 1_000_000})
    claims["claim"] = [c if not s else f"{c}@{s}" for c, s in zip(claims.claim, claims.setting)]
    return claims.set_index("claim")


C5X = "C5@cross-lingual"


def test_claims_follow_their_criteria():
    rows = []
    for setting in SETTINGS:
        rows += [
            row("sampling", setting, H, XX, 0.03, 0.001),
            row("sampling", setting, H, XY, 0.05, 0.001),
            row("zeroshot", setting, H, Z, 0.1, 0.001),
            row("zeroshot", setting, H, Z, 0.1, 0.001, subset="unseen"),
            row("scaling", setting, ("decay-0.8", "hybrid"), H, 0.02, 0.001),
        ]
    rows.append(row("sampling", "multilingual", H, XX, -12.0, 0.001, metric="rank_distance"))
    claims = claims_of(rows)
    assert claims.loc["C1", "verdict"] == SUPPORTED
    assert claims.loc["C2", "verdict"] == SUPPORTED  # lower rank distance is better
    assert claims.loc["C3", "verdict"] == SUPPORTED
    assert claims.loc["C4", "verdict"] == SUPPORTED
    for setting in SETTINGS:
        assert claims.loc[f"C5@{setting}", "verdict"] == SUPPORTED
    assert not claims.index.str.startswith("C5-largest").any()  # one model size: C5 is not repeated
    assert "better than every comparator: decay-0.8 (better than uniform (the baseline))" in claims.loc[C5X, "evidence"]
    assert "Δ +0.0200 [+0.0" in claims.loc[C5X, "evidence"] and "Holm-adjusted)" in claims.loc[C5X, "evidence"]
    assert "100 queries x 6 pairs, 3 seeds" in claims.loc[C5X, "evidence"]


def test_one_seed_cannot_decide_the_research_question():
    """C5 is about recipes: with every row on one seed the checkpoints' reading is reported, but
    the verdict is inconclusive (the seed variance is not measured)."""
    rows = [row("scaling", s, ("decay-0.8", "hybrid"), H, 0.02, 0.001, n_seeds=1) for s in SETTINGS]
    claims = claims_of(rows)
    for setting in SETTINGS:
        assert claims.loc[f"C5@{setting}", "verdict"] == INCONCLUSIVE
    evidence = claims.loc[C5X, "evidence"]
    assert evidence.startswith("one seed: the checkpoints alone read supported, but the seed variance is not measured")
    assert "100 queries x 6 pairs, 1 seed" in evidence and "single seed: two checkpoints compared" in evidence


def test_claims_are_not_supported_without_significance():
    rows = []
    for setting in SETTINGS:
        rows += [
            row("sampling", setting, H, XX, 0.01, 0.4),
            row("sampling", setting, H, XY, 0.05, 0.001),
            row("zeroshot", setting, H, Z, 0.1, 0.001),
            row("zeroshot", setting, H, Z, 0.01, 0.2, subset="unseen"),
            row("scaling", setting, ("decay-0.8", "hybrid"), H, 0.004, 0.3),
        ]
    rows[0] = row("sampling", "monolingual", H, XX, -0.05, 0.001)  # hybrid worse than X-X, monolingual
    rows.append(row("sampling", "multilingual", H, XX, 3.0, 0.001, metric="rank_distance"))  # more bias
    claims = claims_of(rows)
    assert claims.loc["C1", "verdict"] == NOT_SUPPORTED
    assert "highest mean" in claims.loc["C1", "evidence"]
    assert claims.loc["C2", "verdict"] == NOT_SUPPORTED
    assert (
        claims.loc["C3", "verdict"] == NOT_SUPPORTED
        and "monolingual: worse than uniform/xx" in claims.loc["C3", "evidence"]
    )
    assert claims.loc["C4", "verdict"] == NOT_SUPPORTED  # unseen-language pairs: not significantly better
    assert claims.loc[C5X, "verdict"] == INCONCLUSIVE  # not "not supported": nothing shows equivalence
    evidence = claims.loc[C5X, "evidence"]
    assert "inconclusive: decay-0.8 (inconclusive against uniform (the baseline) [Holm p >= alpha])" in evidence
    assert "no minimum detectable effect can be given" in evidence  # one seed: the seed variance is unmeasured


def test_layerwise_lora_is_judged_against_the_uniform_rank_budget():
    lora = ("lora-linear", "hybrid")
    rows = [
        row("scaling", "cross-lingual", lora, H, -0.05, 0.001),
        row("scaling", "cross-lingual", lora, ("lora-uniform", "hybrid"), 0.015, 0.001),
        row("scaling", "cross-lingual", ("lora-uniform", "hybrid"), H, -0.065, 0.001),
    ]
    claims = claims_of(rows)
    assert claims.loc[C5X, "verdict"] == SUPPORTED  # worse than uniform full fine-tuning does not count against it
    evidence = claims.loc[C5X, "evidence"]
    assert "lora-linear (better than lora-uniform (the uniform-rank LoRA of its budget and scale))" in evidence
    assert "still significantly worse than uniform" in evidence
    assert "lora-uniform/hybrid vs uniform/hybrid" not in evidence  # uniform LoRA is not layer-wise


def test_missing_runs_are_not_tested():
    claims = claims_of(
        [row("scaling", "monolingual", ("decay-0.8", "hybrid"), H, 0.01, 0.5)],
        manifest(samplings={"hybrid": {"alpha": 0.5}}),
    )
    for claim in ("C1", "C2", "C3", "C4"):
        assert claims.loc[claim, "verdict"] == NOT_TESTED, claim
    assert claims.loc["C2", "evidence"] == "no X-X sampling (alpha = 1) in the config"
    assert claims.loc["C3", "evidence"].startswith("the benchmark has only the monolingual setting")
    assert claims.loc[C5X, "verdict"] == NOT_TESTED and "no cross-lingual setting" in claims.loc[C5X, "evidence"]
    assert claims.loc["C5@monolingual", "verdict"] == INCONCLUSIVE  # Holm p 0.5, interval beyond ±min effect


def test_verdict_text_names_every_variant_per_setting():
    rows = [
        row("scaling", s, ("decay-0.8", "hybrid"), H, d, p, n_seeds=1)
        for s, d, p in (("monolingual", 0.01, 0.3), ("cross-lingual", 0.03, 0.001), ("multilingual", -0.04, 0.001))
    ]
    table = finish(rows)
    lines = verdict_lines(table, Study(manifest()))
    text = "\n".join(lines)
    assert "- monolingual (100 queries x 6 pairs): decay-0.8 inconclusive (Holm p >= alpha), Δ +0.0100" in text
    assert "- cross-lingual (100 queries x 6 pairs): decay-0.8 significantly better" in text
    assert "- multilingual (100 queries x 6 pairs): decay-0.8 significantly worse" in text
    assert "single seed (1): this compares two checkpoints, not two recipes" in text
    assert "1 significantly better, 1 significantly worse, 0 equivalent, 1 inconclusive, of 3" in text
    assert fmt_delta(table.iloc[1]) in text
    # the same differences over three seeds decide the research question per setting
    seeds3 = [
        row("scaling", s, ("decay-0.8", "hybrid"), H, d, p)
        for s, d, p in (("monolingual", 0.01, 0.3), ("cross-lingual", 0.03, 0.001), ("multilingual", -0.04, 0.001))
    ]
    claims = claims_table(finish(seeds3), Study(manifest()), {})
    answer = research_answer(claims)
    assert answer[0].startswith("**Research question** (demo, m): layer-wise beats uniform in 1 of 3 tested settings")
    assert "monolingual: **inconclusive**; cross-lingual: **supported**; multilingual: **contradicted**" in answer[0]
    assert any(a.startswith("- cross-lingual: supported; better than every comparator: decay-0.8") for a in answer)


def test_claims_on_a_synthetic_study_with_known_answers(tmp_path):
    study_manifest = write_study(tmp_path, seeds=[1, 2, 3])  # with 2 seeds the t-test has 1 df
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        table = compare_runs(study_manifest, tmp_path / "c.csv")
    finally:
        os.chdir(cwd)
    claims = claims_table(table, Study(study_manifest), {"tiny": 1_000_000})
    claims["claim"] = [c if not s else f"{c}@{s}" for c, s in zip(claims.claim, claims.setting)]
    claims = claims.set_index("claim")
    assert claims.loc["C1", "verdict"] == SUPPORTED
    assert claims.loc["C2", "verdict"] == SUPPORTED
    assert claims.loc["C3", "verdict"] == SUPPORTED
    assert claims.loc["C4", "verdict"] == SUPPORTED and "gl" in claims.loc["C4", "evidence"]
    for setting in SETTINGS:  # decay-0.9 better; freeze-4 worse; decay-0.95 inconclusive: one better, one worse
        evidence = claims.loc[f"C5@{setting}", "evidence"]
        assert claims.loc[f"C5@{setting}", "verdict"] == MIXED
        assert evidence.startswith("mixed: decay-0.9 better than every comparator, freeze-4 worse")
        assert "worse than every comparator: freeze-4" in evidence and "3 seeds" in evidence
    c5 = table[(table.family == "scaling") & table.headline & (table.subset == "all")]
    assert set(c5[c5.treatment_variant == "decay-0.95"].outcome) <= {"inconclusive", "equivalent"}
    assert (c5.ci_adj_method == "t interval at the Holm step's level").all()


@pytest.mark.parametrize("p, expected", [(0.2, "inconclusive"), (0.001, "better")])
def test_outcome_uses_the_holm_adjusted_p(p, expected):
    rows = [
        row("scaling", "cross-lingual", ("decay-0.8", "hybrid"), H, 0.02, p),
        row("scaling", "monolingual", ("decay-0.8", "hybrid"), H, 0.02, 0.03),
    ]
    table = finish(rows)
    assert table.iloc[0].outcome == expected
    assert table.iloc[1].p_holm == pytest.approx(min(1.0, 0.03 * (2 if p > 0.03 else 1)))


def test_verdict_says_when_too_few_questions_can_reach_significance():
    rows = [row("scaling", "cross-lingual", ("decay-0.8", "hybrid"), H, 0.02, 0.125)]
    rows[0]["n_queries"] = 4  # 2 / 2**4 = 0.125: no sign-flip p-value can fall below alpha
    table = finish(rows)
    assert table.iloc[0].p_holm_floor == pytest.approx(0.125) and not table.iloc[0].resolution_ok
    text = "\n".join(verdict_lines(table, Study(manifest())))
    assert "With 4 question ids and a Holm family of 1 rows (demo|scaling|all|map)" in text
    assert "smallest attainable Holm-adjusted p-value is 0.12 >= alpha: no difference can be significant" in text
    assert "(4 queries x 6 pairs)" in text


def _family(n_rows: int, permutations: int, n_queries: int = 100) -> list[dict]:
    variants = [f"decay-0.{i}" for i in range(1, n_rows + 1)]
    rows = [row("scaling", "cross-lingual", (v, "hybrid"), H, 0.02, 0.3) for v in variants]
    for values in rows:
        values.update(permutations=permutations, n_queries=n_queries)
    return rows


def test_resolution_warning_uses_the_holm_family_size_and_the_permutations(caplog):
    """Holm multiplies the smallest p by the family size m: with R sign vectors the smallest
    attainable adjusted p is m / (R + 1), whatever the number of question ids."""
    with caplog.at_level("WARNING"):
        table = finish(_family(20, 199))  # 20 / 200 = 0.1 >= alpha
    assert (table.family_size == 20).all() and set(table.holm_family) == {"demo|scaling|all|map"}
    assert table.p_holm_floor.tolist() == pytest.approx([0.1] * 20) and not table.resolution_ok.any()
    assert (
        "smallest attainable Holm-adjusted p is 0.1" in caplog.text
        and "no difference can be significant" in caplog.text
    )
    text = "\n".join(verdict_lines(table, Study(manifest())))
    assert "With 199 random sign vectors and a Holm family of 20 rows" in text
    assert "no difference can be significant" in text

    coarse = finish(_family(20, 1999))  # 20 / 2000 = 0.01: reachable, but coarse near alpha
    assert coarse.p_holm_floor.iloc[0] == pytest.approx(0.01) and not coarse.resolution_ok.any()
    assert "> alpha / 10: p-values near alpha = 0.05 are coarse" in "\n".join(verdict_lines(coarse, Study(manifest())))


def test_no_resolution_warning_when_the_permutations_are_sized_from_the_family():
    from xlir.report.stats import permutations_for

    r = permutations_for(20, 0.05, 2000)
    assert r == 3999  # 20 / (R + 1) = 0.005 = alpha / 10
    table = finish(_family(20, r))
    assert table.resolution_ok.all() and table.p_holm_floor.max() <= 0.005
    assert not any("smallest attainable" in line for line in verdict_lines(table, Study(manifest())))


def test_seed_level_rows_have_no_permutation_floor():
    rows = _family(3, 0)
    for values in rows:
        values.update(seed_level=True, n_seeds=3, single_seed=False, seeds="1,2,3", n_queries=4)
    table = finish(rows)
    assert (table.p_floor == 0).all() and table.resolution_ok.all()
    text = "\n".join(verdict_lines(table, Study(manifest())))
    assert "3 seeds (1, 2, 3): intervals and tests include the variation between seeds" in text
    assert "smallest attainable" not in text
