"""The verdict: text and a claims table generated from the comparisons table
(`xlir.report.compare`), never written by hand.

`verdict_lines` says, per benchmark x setting, whether each variant is
better than, worse than or indistinguishable from its uniform counterpart, as
the comparisons table's `outcome` column decides it (`xlir.report.compare`,
`decide_outcomes`: Holm-adjusted p < `report.alpha`, the Holm-adjusted
interval excluding 0, an improvement of at least `report.min_effect`, and,
with two or more seeds, every seed's difference of the same sign; the reason
is in `outcome_reason`). Every interval printed here is that Holm-adjusted
interval (`ci_adj_low`, `ci_adj_high`). `glance_table` is the compact
variant x setting x benchmark table the report opens with.

`claims_table` checks the seed claims of the hybrid-batch paper and the
research question, each with its criterion and the numbers it rests on. The
research question (C5) is judged per benchmark x setting (`claim_layerwise`),
on the headline metric under hybrid batches, over the layer-wise variants
against their like-for-like uniform counterpart (uniform learning rate for a
learning-rate profile, the uniform-rank LoRA of the same budget for a rank
profile), grouped into families (learning-rate profiles: decay, grow; frozen
lower layers: freeze; LoRA rank profiles: each against its matched uniform-rank
LoRA):

- supported: some family has a variant that is better and none that is worse;
- contradicted: some variant is worse and none is better;
- not supported: otherwise (all indistinguishable, or mixed: a family with a
  better and a worse variant);
- not tested by this run: no layer-wise variant was compared in the setting."""

from __future__ import annotations

import math

import pandas as pd

from xlir.report.grid import SETTINGS, Study, metric_label

SUPPORTED, NOT_SUPPORTED, NOT_TESTED = "supported", "not supported", "not tested by this run"
CONTRADICTED = "contradicted"

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
    "C5": "per benchmark and setting, headline metric, hybrid batches, each layer-wise variant against its "
    "like-for-like uniform counterpart (uniform learning rate for learning-rate profiles, uniform LoRA rank at the "
    "same budget for rank profiles); outcomes as decided in comparisons.csv (Holm p < alpha, Holm-adjusted "
    "interval excluding 0, |Δ| >= min effect, seeds agreeing in sign): supported if a family (learning-rate "
    "profiles; LoRA rank profiles) has a better variant and no worse one; contradicted if a variant is worse and "
    "none better; not supported otherwise (indistinguishable, or mixed within a family); families: learning-rate "
    "profiles (decay, grow), frozen lower layers (freeze), LoRA rank profiles",
    "C5-largest": "as C5, for the model with the most parameters",
}


# ------------------------------------------------------------------ formatting
OUTCOME_WORDS = {
    "better": "significantly better",
    "worse": "significantly worse",
    "indistinguishable": "indistinguishable",
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
    """`significantly better` / `indistinguishable (below the minimum effect)`."""
    words = OUTCOME_WORDS[row["outcome"]]
    reason = row.get("outcome_reason")
    if row["outcome"] == "indistinguishable" and isinstance(reason, str) and reason in REASON_WORDS:
        words += f" ({REASON_WORDS[reason]})"
    return words


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
    """Variant x setting x benchmark: Δ, the Holm-adjusted interval, the outcome and the rule
    that decided it (one row per comparison of `glance_rows`)."""
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
        f"Each variant against `{study.baseline}` (or, for a layer-wise LoRA rank profile, `vs` the "
        f"uniform-rank LoRA variant of the same budget): Δ = variant − counterpart, macro-averaged over "
        f"language pairs, [Holm-adjusted interval at the level Holm tests the row at], Holm-adjusted p. "
        f"Better or worse only when Holm p < {study.alpha:g}, the adjusted interval excludes 0, "
        f"|Δ| >= the minimum effect ({fmt_min_effect(comparisons)}) and, with two or more seeds, every seed's Δ "
        "has the same sign; otherwise indistinguishable, with the rule that decided it."
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
                parts.append(f"{name} {fmt_outcome(row)}, {fmt_delta(row)}")
            lines.append(
                f"- {setting} ({_count(int(rows.n_queries.max()), 'query', 'queries')} x "
                f"{_count(int(rows.n_pairs.max()), 'pair')}): " + "; ".join(parts) + "."
            )
        lines.extend(resolution_lines(block, study.alpha))
        layerwise = block[block.treatment_variant.map(study.is_layerwise)]
        counts = layerwise.outcome.value_counts()
        lines.append(
            f"Layer-wise variants over all settings: {counts.get('better', 0)} significantly better, "
            f"{counts.get('worse', 0)} significantly worse, {counts.get('indistinguishable', 0)} "
            f"indistinguishable, of {len(layerwise)} comparisons."
        )
    return lines


# ------------------------------------------------------------------ claims
def _pick(comparisons: pd.DataFrame, **conditions) -> pd.DataFrame:
    mask = pd.Series(True, index=comparisons.index)
    for column, value in conditions.items():
        mask &= comparisons[column] == value
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


def variant_family(study: Study, variant: str) -> str:
    """The family a layer-wise variant is judged with: LoRA rank profiles, frozen lower layers
    (kind freeze), or learning-rate profiles (decay, grow)."""
    spec = study.variant_spec(variant)
    if spec is not None and spec.is_lora:
        return "LoRA rank profiles"
    if spec is not None and spec.kind == "freeze":
        return "frozen lower layers"
    return "learning-rate profiles"


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


def judge_layerwise(rows: pd.DataFrame, study: Study) -> tuple[str, str]:
    """(verdict, summary) of the research question over the like-for-like rows of one setting
    (module docstring)."""
    like = rows.apply(
        lambda r: r["control_variant"] == (study.matched_uniform_lora(r["treatment_variant"]) or study.baseline), axis=1
    )
    like_for_like = rows[like]
    families = like_for_like.treatment_variant.map(lambda v: variant_family(study, v))
    clean, mixed = [], []
    for family, block in like_for_like.groupby(families, sort=True):
        better, worse = (block.outcome == "better").any(), (block.outcome == "worse").any()
        if better and not worse:
            clean.append(family)
        elif better and worse:
            mixed.append(family)
    any_better, any_worse = (like_for_like.outcome == "better").any(), (like_for_like.outcome == "worse").any()
    if clean:
        status = SUPPORTED
    elif any_worse and not any_better:
        status = CONTRADICTED
    else:
        status = NOT_SUPPORTED
    summary = []
    if mixed:
        summary.append(f"mixed: within {', '.join(mixed)} one variant is better and another worse")
    for outcome, words in (
        ("better", "better than its uniform counterpart"),
        ("worse", "worse than its uniform counterpart"),
        ("indistinguishable", "indistinguishable from its uniform counterpart"),
    ):
        names = []
        for _, r in like_for_like[like_for_like.outcome == outcome].iterrows():
            name = f"{r['treatment_variant']} (vs {r['control_variant']})"
            reason = r.get("outcome_reason")
            if outcome == "indistinguishable" and isinstance(reason, str) and reason in REASON_WORDS:
                name += f" [{REASON_WORDS[reason]}]"
            names.append(name)
        if names:
            summary.append(f"{words}: {', '.join(names)}")
    behind = rows[~like & (rows.outcome == "worse")]
    if not behind.empty:
        summary.append(
            f"but still significantly worse than {study.baseline} (full fine-tuning, uniform learning "
            f"rate): {', '.join(behind.treatment_variant)}"
        )
    if rows.single_seed.all():
        summary.append(
            "single seed: two checkpoints compared, not two recipes; a difference between training runs cannot be "
            "excluded"
        )
    return status, "; ".join(summary)


def claim_layerwise(comparisons, study, benchmark, model, claim: str = "C5") -> list[dict]:
    """One row per setting: the research question judged there (module docstring)."""
    out = []
    present = set(comparisons[comparisons.benchmark == benchmark].setting) if len(comparisons) else set()
    sampling = study.hybrid_sampling() or study.main_sampling
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
        evidence = summary + ". Numbers: " + "; ".join(_describe(row, study) for _, row in rows.iterrows())
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
            lines.append(f"- {r.setting}: {r.verdict}; {summary}")
    return lines


CLAIM_COLUMNS = ["claim", "statement", "benchmark", "model", "setting", "verdict", "criterion", "evidence"]


def claims_table(comparisons: pd.DataFrame, study: Study, model_sizes: dict[str, int]) -> pd.DataFrame:
    """One row per claim x benchmark x model, and for C5 per setting (C5-largest: the
    largest model only); `setting` is empty for the claims that span settings."""
    models = sorted({r.model for r in study.runs if r.trained})
    rows: list[dict] = []
    for benchmark in study.benchmarks:
        for model in models:
            rows.append(claim_best_multilingual(comparisons, study, benchmark, model))
            rows.append(claim_language_bias(comparisons, study, benchmark, model))
            rows.append(claim_all_settings(comparisons, study, benchmark, model))
            rows.append(claim_unseen_languages(comparisons, study, benchmark, model))
            rows.extend(claim_layerwise(comparisons, study, benchmark, model))
        if models:
            largest = max(models, key=lambda m: (model_sizes.get(m, 0), m))
            note = f"largest model run: {largest} ({fmt_parameters(model_sizes.get(largest))})"
            if len(models) == 1:
                note += "; it is the only model size in this run, so this repeats C5"
            for row in claim_layerwise(comparisons, study, benchmark, largest, "C5-largest"):
                row["evidence"] = note + "; " + row["evidence"]
                rows.append(row)
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS)
