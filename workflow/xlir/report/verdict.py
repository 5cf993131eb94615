"""The verdict: text and a claims table generated from the comparisons table
(`xlir.report.compare`), never written by hand.

`verdict_lines` says, per benchmark x setting, whether each variant is
better than, worse than, equivalent to its counterpart or inconclusive, as
the comparisons table's `outcome` column decides it (`xlir.report.compare`,
`decide_outcomes`: better / worse when Holm-adjusted p < `report.alpha`, the
Holm-adjusted interval excludes 0, the improvement is at least
`report.min_effect` and, with two or more seeds, every seed's difference has
the same sign; equivalent when that interval lies inside ±min_effect (two
one-sided tests at half the row's Holm level); inconclusive otherwise, the
reason in `outcome_reason`). Every interval printed here is that
Holm-adjusted interval (`ci_adj_low`, `ci_adj_high`). `glance_table` is the
compact variant x setting x benchmark table the report opens with, and
`design_lines` the warnings above it: whether the study was powered for its
minimum effect, and whether the learning rate was selected on test seeds.

`claims_table` checks the seed claims of the hybrid-batch paper and the
research question, each with its criterion and the rows it rests on. The
research question (C5) is judged per benchmark x setting (`claim_layerwise`)
on the headline metric under hybrid batches. Each layer-wise variant has its
comparators (`comparators`), all of which it must beat:

- a learning-rate profile (decay, grow): the baseline `uniform` and, where one
  is configured, its mean-lr-matched uniform control (`match_mean_lr_of`), so
  that an overall learning-rate effect is not read as the profile's shape;
- frozen lower layers: the baseline;
- a LoRA rank profile: the uniform-rank LoRA variant of the same budget and
  scale (same top rank, same LoRA scaling at it: `grid.top_rank_scale`, so an
  rsLoRA profile matches the proportional uniform-rank LoRA of equal scaling);
  its row against full fine-tuning is shown, not judged. Without such a
  variant in the config, the profile is inconclusive: beating full
  fine-tuning measures LoRA against full fine-tuning. A step-size control
  (the same rank profile with another `alpha_mode`) is reported beside it:
  that row separates the rank profile from the step size.

A variant is better (worse) when it is better (worse) than every comparator,
mixed when it is better than one and worse than another, equivalent when it
is equivalent to at least one comparator (so not better than all of them),
and inconclusive otherwise (a missing comparator row counts as inconclusive).
Over the variants of a setting:

- mixed: a variant is mixed, or one variant is better and another worse;
- supported: a variant is better and every other one better or equivalent;
- contradicted: a variant is worse and every other one worse or equivalent;
- not supported: every variant is equivalent (evidence that layer-wise
  scaling does not beat uniform by the minimum effect);
- inconclusive: otherwise; the summary gives the rows' minimum detectable
  effect and the seeds min_effect would need (`xlir.report.compare`,
  `power_columns`);
- not tested by this run: no layer-wise variant was compared in the setting.

C5-largest repeats C5 for the model with the most parameters, only when more
than one model size ran."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from xlir.report.grid import SETTINGS, Study, metric_label
from xlir.report.stats import MAX_PLANNED_SEEDS

SUPPORTED, NOT_SUPPORTED, NOT_TESTED = "supported", "not supported", "not tested by this run"
CONTRADICTED, MIXED, INCONCLUSIVE = "contradicted", "mixed", "inconclusive"

CLAIMS = {
    "C1": "Hybrid batch sampling achieves the best multilingual retrieval performance.",
    "C2": "Hybrid batch training reduces language bias compared with monolingual (X-X) training.",
    "C3": "Hybrid batch training simultaneously serves monolingual, cross-lingual and multilingual retrieval.",
    "C4": "Hybrid batch training enables strong zero-shot retrieval across languages never seen in training.",
    "C5": "Layer-wise scaling beats uniform scaling in this setting (the research question; judged per setting).",
    "C5-largest": "C5 holds for the largest model size run (per setting).",
}
CRITERIA = {
    "C1": "multilingual setting, headline metric: the hybrid sampling is significantly better than every other "
    "sampling run (uniform variant, Holm-adjusted p < alpha)",
    "C2": "multilingual rank distance (lower = less language bias): hybrid significantly lower than X-X",
    "C3": "in each of the three settings: hybrid significantly better than the model before fine-tuning and not "
    "significantly worse than any other sampling",
    "C4": "on the language pairs that involve a language never trained on, in every setting: hybrid significantly "
    "better than the model before fine-tuning",
    "C5": "per benchmark and setting, headline metric, hybrid batches; each layer-wise variant against all of its "
    "comparators (learning-rate profiles: uniform and, where configured, the mean-lr-matched uniform control; "
    "frozen layers: uniform; LoRA rank profiles: the uniform-rank LoRA of the same budget, with the step-size "
    "control (same ranks, another alpha_mode) reported beside it); row outcomes as decided in comparisons.csv "
    "(better / worse: Holm p < alpha, Holm-adjusted interval excluding 0, |Δ| >= min effect, seeds agreeing in "
    "sign; equivalent: that interval inside ±min effect; else inconclusive); a variant is better (worse) when it "
    "is better (worse) than every comparator, mixed when better than one and worse than another, equivalent when "
    "equivalent to one; mixed if a variant is mixed or one is better and another worse; supported if a variant is "
    "better and every other better or equivalent; contradicted if a variant is worse and every other worse or "
    "equivalent; not supported if every variant is equivalent; inconclusive otherwise (with the minimum "
    "detectable effect at the report's power)",
    "C5-largest": "as C5, for the model with the most parameters (only when more than one model size ran)",
}


# ------------------------------------------------------------------ formatting
OUTCOME_WORDS = {
    "better": "significantly better",
    "worse": "significantly worse",
    "equivalent": "equivalent (adjusted interval inside ±min effect)",
    "inconclusive": "inconclusive",
    "indistinguishable": "inconclusive",  # a table written before the four outcomes
}
REASON_WORDS = {
    "p": "Holm p >= alpha",
    "interval includes 0": "adjusted interval includes 0",
    "below min effect": "below the minimum effect",
    "seeds disagree": "seeds disagree in sign",
}


def fmt_p(p: float) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "n/a"
    return f"{p:.2g}" if p >= 0.001 else f"{p:.1e}"


def adjusted_ci(row: pd.Series) -> tuple[float, float, float]:
    """(low, high, confidence level) of the Holm-adjusted interval the outcome uses; the
    unadjusted one for a table without the adjusted columns."""
    low, high = row.get("ci_adj_low"), row.get("ci_adj_high")
    if low is None or pd.isna(low) or high is None or pd.isna(high):
        return float(row["ci_low"]), float(row["ci_high"]), float(row["ci_level"])
    return float(low), float(high), float(row["ci_adj_level"])


def fmt_level(level: float) -> str:
    """`99.2%`."""
    return f"{100 * level:.3g}%"


def fmt_outcome(row: pd.Series) -> str:
    """`significantly better` / `inconclusive (below the minimum effect)`."""
    words = OUTCOME_WORDS[row["outcome"]]
    reason = row.get("outcome_reason")
    if row["outcome"] == "inconclusive" and isinstance(reason, str) and reason in REASON_WORDS:
        words += f" ({REASON_WORDS[reason]})"
    return words


def fmt_mde(row: pd.Series) -> str:
    """`MDE 0.0310` (the row's minimum detectable effect) or `MDE n/a` (one seed)."""
    mde = row.get("mde")
    return "MDE n/a" if mde is None or pd.isna(mde) else f"MDE {float(mde):.4f}"


def fmt_delta(row: pd.Series) -> str:
    """`Δ +0.0123 [+0.0050, +0.0190] (99.2% Holm-adjusted), Holm p 0.004`: the interval the outcome uses."""
    low, high, level = adjusted_ci(row)
    interval = f"[{low:+.4f}, {high:+.4f}] ({fmt_level(level)} Holm-adjusted)"
    return f"Δ {row['delta']:+.4f} {interval}, Holm p {fmt_p(row['p_holm'])}"


def _count(n: int, noun: str, plural: str | None = None) -> str:
    return f"{n} {noun if n == 1 else (plural or noun + 's')}"


def fmt_size(row: pd.Series) -> str:
    """`186 queries x 20 pairs, 1 seed`."""
    return (
        f"{_count(int(row['n_queries']), 'query', 'queries')} x {_count(int(row['n_pairs']), 'pair')}, "
        f"{_count(int(row['n_seeds']), 'seed')}"
    )


def fmt_parameters(n: int | None) -> str:
    if not n:
        return "size unknown"
    if n >= 1e9:
        return f"{n / 1e9:.1f}B parameters"
    if n >= 1e6:
        return f"{n / 1e6:.0f}M parameters"
    return f"{n:,} parameters"


def _values(row: pd.Series) -> str:
    return f"{row['treatment_value']:.3f} vs {row['control_value']:.3f}"


def fmt_min_effect(comparisons: pd.DataFrame) -> str:
    if "min_effect" not in comparisons or comparisons.empty:
        return "n/a"
    values = sorted({float(v) for v in comparisons.loc[comparisons.headline, "min_effect"].dropna()})
    return " / ".join(f"{v:g}" for v in values) or "0"


# ------------------------------------------------------------------ at a glance
def glance_rows(comparisons: pd.DataFrame) -> pd.DataFrame:
    """The scaling comparisons the report opens with: headline metric, every language pair."""
    if comparisons.empty:
        return comparisons
    rows = comparisons[(comparisons.family == "scaling") & (comparisons.subset == "all") & comparisons.headline]
    order = {s: i for i, s in enumerate(SETTINGS)}
    return rows.sort_values(
        ["benchmark", "model", "treatment_sampling", "treatment_variant", "control_variant", "setting"],
        key=lambda c: c.map(order) if c.name == "setting" else c,
        kind="stable",
    )


def glance_table(comparisons: pd.DataFrame, study: Study) -> pd.DataFrame:
    """Variant x setting x benchmark: Δ, the Holm-adjusted interval, the minimum detectable effect,
    the outcome and the rule that decided it (one row per comparison of `glance_rows`)."""
    rows = glance_rows(comparisons)
    if rows.empty:
        return pd.DataFrame()
    out = pd.DataFrame(
        {
            "benchmark": rows.benchmark,
            "model": rows.model,
            "sampling": rows.treatment_sampling,
            "variant": [
                f"{t} ({study.variant_note(t)})" + ("" if c == study.baseline else f" vs {c}")
                for t, c in zip(rows.treatment_variant, rows.control_variant)
            ],
            "setting": rows.setting,
            "metric": rows.metric.map(metric_label),
            "Δ": rows.delta,
            "adjusted interval": [fmt_interval(r) for _, r in rows.iterrows()],
            "Holm p": rows.p_holm,
            "seeds": rows.n_seeds.astype(int),
            "MDE": rows.get("mde", pd.Series(float("nan"), index=rows.index)),
            "outcome": rows.outcome,
            "decided by": rows.get("outcome_reason", pd.Series("", index=rows.index)).fillna(""),
        }
    )
    return out.reset_index(drop=True)


def fmt_interval(row: pd.Series) -> str:
    """`[+0.0050, +0.0190] (99.2%)`."""
    low, high, level = adjusted_ci(row)
    return f"[{low:+.4f}, {high:+.4f}] ({fmt_level(level)})"


# ------------------------------------------------------------------ verdict text
def resolution_lines(rows: pd.DataFrame, alpha: float) -> list[str]:
    """A warning when the p-values of `rows` cannot resolve their Holm family: the
    smallest attainable Holm-adjusted p (`p_holm_floor` = family size x the test's
    smallest p, written by `xlir.report.compare.finish`) is >= alpha (nothing can be
    significant) or above alpha / 10 (p-values near alpha are coarse)."""
    if rows.empty or "p_holm_floor" not in rows:
        return []
    floors = rows.p_holm_floor.astype(float)
    worst = rows.loc[floors.idxmax()]
    floor = float(worst["p_holm_floor"])
    if floor <= alpha / 10:
        return []
    cause = (
        f"{int(worst['n_queries'])} question ids"
        if not bool(worst["seed_level"]) and 2 / 2 ** int(worst["n_queries"]) >= 1 / (int(worst["permutations"]) + 1)
        else f"{int(worst['permutations'])} random sign vectors"
    )
    lines = [
        f"With {cause} and a Holm family of {int(worst['family_size'])} rows ({worst['holm_family']}) the smallest "
        f"attainable Holm-adjusted p-value is {floor:.2g}"
        + (
            " >= alpha: no difference can be significant on this benchmark."
            if floor >= alpha
            else f" > alpha / 10: p-values near alpha = {alpha:g} are coarse."
        )
    ]
    return lines


def verdict_lines(comparisons: pd.DataFrame, study: Study) -> list[str]:
    """Markdown lines: a header per benchmark x model x sampling, one bullet per setting."""
    if comparisons.empty:
        return [
            "No comparison could be made: the grid has no variant run beside the baseline "
            f"`{study.baseline}` with a shared seed."
        ]
    lines = [
        f"Each variant against `{study.baseline}` (and, named with `vs`, against its other comparators: the "
        "mean-lr-matched uniform control of a learning-rate profile, the uniform-rank LoRA variant of the same "
        "budget and the step-size control of a LoRA rank profile): Δ = variant − counterpart, macro-averaged over "
        "language pairs, [Holm-adjusted interval at the level Holm tests the row at], Holm-adjusted p, MDE (the "
        "difference the row's test finds with the report's power at alpha / Holm family size). "
        f"Better or worse only when Holm p < {study.alpha:g}, the adjusted interval excludes 0, "
        f"|Δ| >= the minimum effect ({fmt_min_effect(comparisons)}) and, with two or more seeds, every seed's Δ "
        "has the same sign; equivalent when the adjusted interval lies inside ± the minimum effect; otherwise "
        "inconclusive, with the rule that decided it."
    ]
    scaling = comparisons[(comparisons.family == "scaling") & (comparisons.subset == "all") & comparisons.headline]
    if scaling.empty:
        lines.append("No scaling variant was compared with the uniform baseline in this run.")
        return lines
    for (benchmark, model, sampling), block in scaling.groupby(
        ["benchmark", "model", "treatment_sampling"], sort=False
    ):
        metric = metric_label(block.iloc[0]["metric"])
        seeds = sorted({s for value in block.seeds for s in str(value).split(",")}, key=int)
        seed_note = (
            f"single seed ({seeds[0]}): this compares two checkpoints, not two recipes (variation between "
            "training runs is not measured)"
            if len(seeds) == 1
            else f"{len(seeds)} seeds ({', '.join(seeds)}): intervals and tests include the variation between "
            "seeds and between questions"
        )
        kind = study.sampling_kind(sampling)
        batches = f"{sampling} batches" + ("" if kind == sampling else f" ({kind})")
        lines.append(f"**{benchmark}**: {model}, {batches}, {metric}; {seed_note}.")
        for setting in SETTINGS:
            rows = block[block.setting == setting]
            if rows.empty:
                continue
            parts = []
            for _, row in rows.iterrows():
                variant = row["treatment_variant"]
                name = variant if study.is_layerwise(variant) else f"{variant} ({study.variant_note(variant)})"
                if row["control_variant"] != study.baseline:
                    name += f" vs {row['control_variant']}"
                parts.append(f"{name} {fmt_outcome(row)}, {fmt_delta(row)}, {fmt_mde(row)}")
            lines.append(
                f"- {setting} ({_count(int(rows.n_queries.max()), 'query', 'queries')} x "
                f"{_count(int(rows.n_pairs.max()), 'pair')}): " + "; ".join(parts) + "."
            )
        lines.extend(resolution_lines(block, study.alpha))
        layerwise = block[block.treatment_variant.map(study.is_layerwise)]
        counts = layerwise.outcome.value_counts()
        lines.append(
            f"Layer-wise variants over all settings: {counts.get('better', 0)} significantly better, "
            f"{counts.get('worse', 0)} significantly worse, {counts.get('equivalent', 0)} equivalent, "
            f"{counts.get('inconclusive', 0) + counts.get('indistinguishable', 0)} inconclusive, "
            f"of {len(layerwise)} comparisons."
        )
    return lines


# ------------------------------------------------------------------ claims
def _pick(comparisons: pd.DataFrame, **conditions) -> pd.DataFrame:
    mask = np.ones(len(comparisons), dtype=bool)
    for column, value in conditions.items():
        mask &= comparisons[column].to_numpy() == value
    return comparisons[mask]


def _claim(claim: str, benchmark: str, model: str, status: str, evidence: str, setting: str = "") -> dict:
    return {
        "claim": claim,
        "statement": CLAIMS[claim],
        "benchmark": benchmark,
        "model": model,
        "setting": setting,
        "verdict": status,
        "criterion": CRITERIA[claim],
        "evidence": evidence,
    }


def _sampling_rows(comparisons: pd.DataFrame, benchmark: str, model: str) -> pd.DataFrame:
    return _pick(comparisons, benchmark=benchmark, model=model, family="sampling", subset="all")


def _describe(row: pd.Series, study: Study) -> str:
    control = row["control"]
    if row["family"] == "sampling" and study.sampling_kind(row["control_sampling"]) != row["control_sampling"]:
        control += f" ({study.sampling_kind(row['control_sampling'])})"
    return (
        f"{row['setting']} {metric_label(row['metric'])}, {row['treatment']} vs {control}: {_values(row)}, "
        f"{fmt_delta(row)} ({fmt_size(row)}) -> {row['outcome']}"
    )


def claim_best_multilingual(comparisons, study, benchmark, model) -> dict:
    rows = _pick(_sampling_rows(comparisons, benchmark, model), setting="multilingual", headline=True)
    if study.hybrid_sampling() is None:
        return _claim("C1", benchmark, model, NOT_TESTED, "no hybrid sampling (0 < alpha < 1) in the config")
    if rows.empty:
        why = (
            "only one sampling was run"
            if _sampling_rows(comparisons, benchmark, model).empty
            else "the benchmark has no multilingual setting"
        )
        return _claim("C1", benchmark, model, NOT_TESTED, why)
    status = SUPPORTED if (rows.outcome == "better").all() else NOT_SUPPORTED
    evidence = "; ".join(_describe(row, study) for _, row in rows.iterrows())
    if status == NOT_SUPPORTED and (rows.delta > 0).all():
        evidence += " (hybrid has the highest mean, but not significantly so against every sampling)"
    return _claim("C1", benchmark, model, status, evidence)


def claim_language_bias(comparisons, study, benchmark, model) -> dict:
    xx = study.samplings_of_kind("X-X")
    if not xx:
        return _claim("C2", benchmark, model, NOT_TESTED, "no X-X sampling (alpha = 1) in the config")
    rows = _sampling_rows(comparisons, benchmark, model)
    rows = rows[(rows.metric == "rank_distance") & rows.control_sampling.isin(xx)]
    if rows.empty:
        return _claim(
            "C2",
            benchmark,
            model,
            NOT_TESTED,
            "no multilingual rank distance for hybrid and X-X runs of this benchmark",
        )
    status = SUPPORTED if (rows.outcome == "better").all() else NOT_SUPPORTED
    return _claim("C2", benchmark, model, status, "; ".join(_describe(row, study) for _, row in rows.iterrows()))


def claim_all_settings(comparisons, study, benchmark, model) -> dict:
    base = _pick(comparisons, benchmark=benchmark, model=model, subset="all", headline=True)
    zeroshot, sampling = base[base.family == "zeroshot"], base[base.family == "sampling"]
    present = [s for s in SETTINGS if s in set(base.setting)]
    if len(present) < len(SETTINGS):
        return _claim(
            "C3", benchmark, model, NOT_TESTED, f"the benchmark has only the {', '.join(present) or 'no'} setting(s)"
        )
    if zeroshot.empty and sampling.empty:
        return _claim(
            "C3",
            benchmark,
            model,
            NOT_TESTED,
            "neither the model before fine-tuning nor another sampling was run to compare the hybrid run with",
        )
    failures, evidence = [], []
    for setting in SETTINGS:
        z = zeroshot[zeroshot.setting == setting]
        s = sampling[sampling.setting == setting]
        if not z.empty and (z.outcome != "better").any():
            failures.append(f"{setting}: not significantly better than zero-shot")
        if (s.outcome == "worse").any():
            failures.append(f"{setting}: worse than {', '.join(s[s.outcome == 'worse'].control)}")
        evidence += [_describe(row, study) for _, row in pd.concat([z, s]).iterrows()]
    missing = []
    if zeroshot.empty:
        missing.append("no zero-shot run: improvement over the untrained model not tested")
    if sampling.empty:
        missing.append("no other sampling run: only the comparison with the untrained model")
    status = NOT_SUPPORTED if failures else SUPPORTED
    text = "; ".join(failures + evidence + missing)
    return _claim("C3", benchmark, model, status, text)


def claim_unseen_languages(comparisons, study, benchmark, model) -> dict:
    unseen = study.unseen_languages(benchmark)
    if not unseen:
        return _claim("C4", benchmark, model, NOT_TESTED, "every language of the benchmark was trained on")
    rows = _pick(comparisons, benchmark=benchmark, model=model, family="zeroshot", headline=True)
    if rows.empty:
        return _claim("C4", benchmark, model, NOT_TESTED, "no zero-shot (untrained) run to compare with")
    unseen_rows = rows[rows.subset == ("unseen" if study.has_seen_and_unseen(benchmark) else "all")]
    if unseen_rows.empty:
        return _claim("C4", benchmark, model, NOT_TESTED, "no comparison on the pairs with an unseen language")
    status = SUPPORTED if (unseen_rows.outcome == "better").all() else NOT_SUPPORTED
    evidence = [f"languages never trained on: {', '.join(unseen)}"]
    for _, row in unseen_rows.iterrows():
        evidence.append(f"unseen-language pairs, {_describe(row, study)}")
        seen = rows[(rows.subset == "seen") & (rows.setting == row["setting"])]
        if not seen.empty:
            evidence.append(
                f"{row['setting']} on seen-language pairs: {seen.iloc[0]['treatment']} "
                f"{seen.iloc[0]['treatment_value']:.3f} (unseen {row['treatment_value']:.3f})"
            )
    return _claim("C4", benchmark, model, status, "; ".join(evidence))


#: the comparator of a LoRA rank profile whose config has no uniform-rank LoRA of the same budget
#: and scale: it has no row, so the profile is inconclusive (beating full fine-tuning would
#: measure LoRA against full fine-tuning, not a rank profile against uniform ranks)
NO_LORA_CONTROL = "(none configured)"


def comparators(study: Study, variant: str) -> list[str]:
    """The variants a layer-wise `variant` must beat for C5 (module docstring)."""
    spec = study.variant_spec(variant)
    if spec is not None and spec.is_lora:
        matched = study.matched_uniform_lora(variant)
        return [matched] if matched else [study.baseline, NO_LORA_CONTROL]
    controls = [c for c in study.mean_lr_controls(variant) if c != study.baseline]
    return [study.baseline, *controls]


def comparator_role(study: Study, variant: str, control: str) -> str:
    """How `control` relates to `variant`, in words for the summary."""
    if control in study.mean_lr_controls(variant):
        return "its mean-lr-matched control"
    if control == study.matched_uniform_lora(variant) or control == NO_LORA_CONTROL:
        return "the uniform-rank LoRA of its budget and scale"
    if control in study.step_size_controls(variant):
        return "its step-size control (same ranks, another alpha_mode)"
    return "the baseline" if control == study.baseline else "a comparator"


def layerwise_rows(comparisons: pd.DataFrame, study: Study, benchmark: str, model: str, setting: str) -> pd.DataFrame:
    """The C5 comparisons of one benchmark x model x setting: headline metric, every pair,
    main (hybrid) sampling, layer-wise treatment (against any control)."""
    rows = _pick(
        comparisons,
        benchmark=benchmark,
        model=model,
        family="scaling",
        subset="all",
        setting=setting,
        headline=True,
        treatment_sampling=study.hybrid_sampling() or study.main_sampling,
    )
    return rows[rows.treatment_variant.map(study.is_layerwise)] if len(rows) else rows


def comparator_mask(rows: pd.DataFrame, study: Study) -> np.ndarray:
    """Which rows compare a layer-wise variant with one of its comparators."""
    pairs = zip(rows.treatment_variant, rows.control_variant)
    return np.array([c in comparators(study, t) for t, c in pairs], dtype=bool)


def step_size_mask(rows: pd.DataFrame, study: Study) -> np.ndarray:
    """Which rows compare a LoRA rank profile with its step-size control."""
    pairs = zip(rows.treatment_variant, rows.control_variant)
    return np.array([c in study.step_size_controls(t) for t, c in pairs], dtype=bool)


def c5_rows(comparisons: pd.DataFrame, study: Study) -> pd.DataFrame:
    """Every row a C5 verdict rests on: a layer-wise variant against one of its comparators,
    headline metric, every pair, main sampling (all benchmarks, models and settings)."""
    if comparisons.empty:
        return comparisons
    rows = comparisons[
        (comparisons.family == "scaling")
        & (comparisons.subset == "all")
        & comparisons.headline
        & (comparisons.treatment_sampling == (study.hybrid_sampling() or study.main_sampling))
    ]
    rows = rows[rows.treatment_variant.map(study.is_layerwise)]
    return rows[comparator_mask(rows, study)]


def variant_status(outcomes: list[str]) -> str:
    """A variant's standing from its rows against its comparators (`missing` for a comparator
    without a row): better / worse against all, mixed, equivalent to one, else inconclusive."""
    if outcomes and all(o == "better" for o in outcomes):
        return "better"
    if outcomes and all(o == "worse" for o in outcomes):
        return "worse"
    if "better" in outcomes and "worse" in outcomes:
        return MIXED
    return "equivalent" if "equivalent" in outcomes else INCONCLUSIVE


def claim_status(statuses: list[str]) -> str:
    """The setting's verdict from its variants' standings (module docstring)."""
    if not statuses:
        return NOT_TESTED
    if MIXED in statuses or ("better" in statuses and "worse" in statuses):
        return MIXED
    if "better" in statuses and set(statuses) <= {"better", "equivalent"}:
        return SUPPORTED
    if "worse" in statuses and set(statuses) <= {"worse", "equivalent"}:
        return CONTRADICTED
    if set(statuses) == {"equivalent"}:
        return NOT_SUPPORTED
    return INCONCLUSIVE


def _outcome_phrase(row: pd.Series, study: Study) -> str:
    """`better than uniform-lr (its mean-lr-matched control)`."""
    words = {
        "better": "better than",
        "worse": "worse than",
        "equivalent": "equivalent to",
    }.get(row["outcome"], "inconclusive against")
    role = comparator_role(study, row["treatment_variant"], row["control_variant"])
    phrase = f"{words} {row['control_variant']} ({role})"
    reason = row.get("outcome_reason")
    if words == "inconclusive against" and isinstance(reason, str) and reason in REASON_WORDS:
        phrase += f" [{REASON_WORDS[reason]}]"
    return phrase


def variant_standings(rows: pd.DataFrame, study: Study) -> list[tuple[str, str, str]]:
    """(variant, standing, how it stands against each comparator) for each layer-wise variant of `rows`."""
    out = []
    for variant in dict.fromkeys(rows.treatment_variant):
        own = rows[rows.treatment_variant == variant]
        outcomes, phrases = [], []
        for control in comparators(study, variant):
            match = own[own.control_variant == control]
            if match.empty:
                outcomes.append("missing")
                phrases.append(f"no row against {control} ({comparator_role(study, variant, control)})")
                continue
            outcomes.append(str(match.iloc[0]["outcome"]))
            phrases.append(_outcome_phrase(match.iloc[0], study))
        out.append((variant, variant_status(outcomes), "; ".join(phrases)))
    return out


def power_summary(rows: pd.DataFrame) -> str:
    """What the rows could detect: `these rows detect differences of 0.0210-0.0340 at 80% power (...); min
    effect 0.01 needs 14 seeds to detect and 18 to establish equivalence (3 seeds run)`."""
    if "mde" not in rows or rows.mde.isna().all():
        return "the seed variance is not measured (one seed), so no minimum detectable effect can be given"
    mde = rows.mde.dropna()
    span = f"{mde.min():.4f}" if mde.min() == mde.max() else f"{mde.min():.4f}-{mde.max():.4f}"
    power = float(rows.power_target.dropna().iloc[0]) if rows.power_target.notna().any() else 0.8
    alphas = rows.power_alpha.dropna()
    text = (
        f"these rows detect differences of {span} at {100 * power:.0f}% power "
        f"(t-test on seeds - 1 df at Holm's strictest level alpha / family size = {alphas.min():.2g})"
    )
    effect = float(rows.min_effect.max())

    def seeds(column: str) -> str:
        needed = rows[column]
        return f">{MAX_PLANNED_SEEDS}" if needed.isna().any() else str(int(needed.max()))

    return (
        text + f"; min effect {effect:g} needs {seeds('seeds_to_detect')} seeds to detect and "
        f"{seeds('seeds_to_equivalence')} to establish equivalence ({int(rows.n_seeds.max())} seeds run)"
    )


def judge_layerwise(rows: pd.DataFrame, study: Study) -> tuple[str, str]:
    """(verdict, summary) of the research question over the rows of one setting (module docstring)."""
    compared = rows[comparator_mask(rows, study)]
    standings = variant_standings(rows, study)
    status = claim_status([standing for _, standing, _ in standings])
    summary = []
    if status == MIXED:
        summary.append(_mixed_lead(standings))
    for standing in ("better", "worse", MIXED, "equivalent", INCONCLUSIVE):
        names = [f"{v} ({phrases})" for v, s, phrases in standings if s == standing]
        if names:
            summary.append(f"{STANDING_WORDS[standing]}: {', '.join(names)}")
    summary.extend(_context_lines(rows, study))
    if status == INCONCLUSIVE:
        summary.append(power_summary(compared if len(compared) else rows))
    if rows.single_seed.all():
        summary.append(
            "single seed: two checkpoints compared, not two recipes; a difference between training runs cannot be "
            "excluded"
        )
        if status != INCONCLUSIVE:  # the claim is about recipes: one seed cannot decide it either way
            summary.insert(0, f"one seed: the checkpoints alone read {status}, but the seed variance is not measured")
            status = INCONCLUSIVE
    return status, "; ".join(summary)


def _mixed_lead(standings: list[tuple[str, str, str]]) -> str:
    """`mixed: decay-0.8 beats one comparator and loses to another` / `mixed: decay-0.9 is better than
    every comparator, lora-linear worse`."""
    of = {standing: [v for v, s, _ in standings if s == standing] for standing in ("better", "worse", MIXED)}
    parts = []
    if of[MIXED]:
        parts.append(f"{', '.join(of[MIXED])} beats one comparator and loses to another")
    if of["better"] and of["worse"]:
        parts.append(f"{', '.join(of['better'])} better than every comparator, {', '.join(of['worse'])} worse")
    return "mixed: " + "; ".join(parts)


STANDING_WORDS = {
    "better": "better than every comparator",
    "worse": "worse than every comparator",
    MIXED: "better than one comparator, worse than another",
    "equivalent": "equivalent to a comparator (not better than all)",
    INCONCLUSIVE: "inconclusive",
}


def _context_lines(rows: pd.DataFrame, study: Study) -> list[str]:
    """The rows that are shown, not judged: step-size pairs, and a LoRA profile against full
    fine-tuning (not its comparator)."""
    lines = []
    steps = rows[step_size_mask(rows, study)]
    for _, r in steps.iterrows():
        lines.append(
            f"step size (same ranks, another alpha_mode): {r['treatment_variant']} vs {r['control_variant']} "
            f"{OUTCOME_WORDS.get(r['outcome'], r['outcome'])}"
        )
    behind = rows[(rows.control_variant == study.baseline) & (rows.outcome == "worse") & ~comparator_mask(rows, study)]
    if not behind.empty:
        lines.append(
            f"not judged against it, but still significantly worse than {study.baseline} (full fine-tuning, "
            f"uniform learning rate): {', '.join(behind.treatment_variant)}"
        )
    return lines


def _evidence_rows(comparisons: pd.DataFrame, rows: pd.DataFrame, study: Study) -> pd.DataFrame:
    """The rows a C5 verdict names: its layer-wise rows, and each mean-lr-matched control against the
    baseline (what the learning rate alone does)."""
    controls = {c for v in rows.treatment_variant for c in study.mean_lr_controls(v)}
    if not controls or rows.empty:
        return rows
    first = rows.iloc[0]
    lr_alone = _pick(
        comparisons,
        benchmark=first["benchmark"],
        model=first["model"],
        family="scaling",
        subset="all",
        setting=first["setting"],
        headline=True,
        treatment_sampling=first["treatment_sampling"],
        control_variant=study.baseline,
    )
    return pd.concat([rows, lr_alone[lr_alone.treatment_variant.isin(controls)]])


def claim_layerwise(comparisons, study, benchmark, model, claim: str = "C5") -> list[dict]:
    """One row per setting: the research question judged there (module docstring)."""
    out = []
    present = set(comparisons[comparisons.benchmark == benchmark].setting) if len(comparisons) else set()
    sampling = study.hybrid_sampling() or study.main_sampling
    if len(comparisons):  # once: the rows any setting's judgement can use
        comparisons = _pick(comparisons, benchmark=benchmark, model=model, family="scaling", subset="all")
    for setting in SETTINGS:
        rows = layerwise_rows(comparisons, study, benchmark, model, setting)
        if rows.empty:
            why = (
                f"the benchmark has no {setting} setting"
                if setting not in present
                else f"no layer-wise variant was run beside a uniform one under {sampling} batches"
            )
            out.append(_claim(claim, benchmark, model, NOT_TESTED, why, setting))
            continue
        status, summary = judge_layerwise(rows, study)
        evidence_rows = _evidence_rows(comparisons, rows, study)
        evidence = summary + ". Numbers: " + "; ".join(_describe(row, study) for _, row in evidence_rows.iterrows())
        out.append(_claim(claim, benchmark, model, status, evidence, setting))
    return out


def research_answer(claims: pd.DataFrame) -> list[str]:
    """The research question per benchmark x model (claims C5 and C5-largest): one line
    with the verdict of every setting, then one line per tested setting with its summary."""
    lines = []
    rows = claims[claims.claim.isin(["C5", "C5-largest"])]
    for (claim, benchmark, model), block in rows.groupby(["claim", "benchmark", "model"], sort=False):
        who = "largest model, " if claim == "C5-largest" else ""
        verdicts = "; ".join(f"{r.setting}: **{r.verdict}**" for r in block.itertuples())
        tested = block[block.verdict != NOT_TESTED]
        supported = int((tested.verdict == SUPPORTED).sum())
        lines.append(
            f"**Research question** ({benchmark}, {who}{model}): layer-wise beats uniform in {supported} of "
            f"{len(tested)} tested settings. {verdicts}."
        )
        for r in tested.itertuples():
            summary = str(r.evidence).split(" Numbers: ")[0]
            joined = summary if summary.startswith(f"{r.verdict}:") else f"{r.verdict}; {summary}"
            lines.append(f"- {r.setting}: {joined}")
    return lines


# ------------------------------------------------------------------ design warnings
def powered_line(comparisons: pd.DataFrame, study: Study) -> str | None:
    """`Powered: 2 of 9 research-question rows have MDE <= min effect ...`, or None without C5 rows."""
    rows = c5_rows(comparisons, study)
    if rows.empty:
        return None
    if "mde" not in rows:
        return None
    powered = rows.mde <= rows.min_effect + 1e-12
    power = float(rows.power_target.dropna().iloc[0]) if rows.power_target.notna().any() else 0.8
    verdict = "powered" if powered.all() else "not powered"
    text = (
        f"Study {verdict} for its minimum effect ({fmt_min_effect(comparisons)}): {int(powered.sum())} of "
        f"{len(rows)} research-question (C5) rows have MDE <= min effect (MDE: the difference a row's t-test on "
        f"seeds - 1 df finds with {100 * power:.0f}% power at Holm's strictest level, alpha / family size)."
    )
    if rows.mde.isna().all():
        return text + " Every C5 row rests on one seed: the seed variance, and so the power, is not measured."
    unpowered = rows[~powered & rows.mde.notna()]
    if len(unpowered):
        text += (
            f" The others detect {unpowered.mde.min():.4f}-{unpowered.mde.max():.4f}; "
            + power_summary(unpowered).split("; ", 1)[-1]
            + ". Where such a row is inconclusive it means not measured, not no effect."
        )
    return text


def seed_overlap_line(manifest: dict) -> str | None:
    """A warning when the learning rate was selected on seeds that are also test seeds."""
    if not manifest.get("seed_overlap"):
        return None
    seeds = manifest.get("selection_seeds") or []
    which = f" ({', '.join(str(s) for s in seeds)})" if seeds else ""
    return (
        f"**Warning: winner's curse.** The learning rate was selected on seeds{which} that are also test seeds: "
        "the selected variants' test scores carry a winner's-curse bias (the selection favoured the seeds on which "
        "they happened to do well), so their differences may be overstated."
    )


def design_lines(comparisons: pd.DataFrame, study: Study) -> list[str]:
    """The lines above the answer at a glance: the seed-overlap warning, then the power statement."""
    return [line for line in (seed_overlap_line(study.manifest), powered_line(comparisons, study)) if line]


CLAIM_COLUMNS = ["claim", "statement", "benchmark", "model", "setting", "verdict", "criterion", "evidence"]


def claims_table(comparisons: pd.DataFrame, study: Study, model_sizes: dict[str, int]) -> pd.DataFrame:
    """One row per claim x benchmark x model, and for C5 per setting (C5-largest: the largest
    model, only when more than one model ran); `setting` is empty for the claims that span settings."""
    models = sorted({r.model for r in study.runs if r.trained})
    rows: list[dict] = []
    for benchmark in study.benchmarks:
        for model in models:
            rows.append(claim_best_multilingual(comparisons, study, benchmark, model))
            rows.append(claim_language_bias(comparisons, study, benchmark, model))
            rows.append(claim_all_settings(comparisons, study, benchmark, model))
            rows.append(claim_unseen_languages(comparisons, study, benchmark, model))
            rows.extend(claim_layerwise(comparisons, study, benchmark, model))
        if len(models) > 1:
            largest = max(models, key=lambda m: (model_sizes.get(m, 0), m))
            note = f"largest model run: {largest} ({fmt_parameters(model_sizes.get(largest))})"
            for row in claim_layerwise(comparisons, study, benchmark, largest, "C5-largest"):
                row["evidence"] = note + "; " + row["evidence"]
                rows.append(row)
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS)
