"""Rule `compare`: paired significance tests between runs, from per-query scores.

Comparisons (treatment - control, same model, same benchmark, same queries):

- family `scaling`: every variant against the baseline variant (`uniform`)
  under the same sampling and seed set; a layer-wise LoRA rank profile also
  against the uniform-rank LoRA variant of the same budget and against its
  step-size control (`Study.step_size_controls`: the same rank profile with
  another `alpha_mode`, which separates the rank profile from the step size),
  and a decay / grow profile also against its mean-lr-matched uniform control
  (`match_mean_lr_of`), which separates the profile's shape from its overall
  learning rate. These rows share the Holm family of every other scaling row;
- family `sampling`: the main (hybrid) sampling against every other sampling,
  baseline variant, same seed set;
- family `zeroshot`: the main sampling's baseline run against the model before
  fine-tuning (one run: the treatment's seeds are averaged).

For each benchmark x setting x metric (and, for the headline metric and the
rank distance, the language-pair subsets `unseen` / `seen`: pairs with /
without a language never trained on), queries are paired by (qid, query_lang,
cand_lang), and per seed: treatment seed s against control seed s (against the
one untrained run for `zeroshot`). Arms with different seed sets are compared
on the seeds they share; the others are left out and `seed_handling` says so.
The per-query deltas stay per seed, `deltas[seed, question id, language pair]`,
and `xlir.report.stats.compare_seeds` gives the macro-averaged delta (mean per
language pair, then mean over pairs, the setting's headline number, of the
seed-averaged deltas) with

- two or more seeds (`seed_level` true, `inference` "recipes (n seeds)"): a t
  interval and t-test whose variance has a seed part (the per-seed macro
  deltas, listed in `seed_deltas`) and a question-id part (see stats), and the
  two-level bootstrap (seeds, then question ids) interval beside it in
  `boot_ci_low` / `boot_ci_high`;
- one seed (`seed_level` false, `inference` "checkpoints (1 seed)"): the
  percentile bootstrap over question ids and the sign-flip randomisation test.
  This compares two checkpoints, not two recipes: the variation between
  training runs is not in the interval or the p-value.

Question ids are resampled together across language pairs (parallel
questions share an id). Holm's correction runs over the rows of one table,
the family `holm_family` = benchmark|family|subset|metric of `family_size`
rows. The sign-flip test's random sign vectors are sized from that family so
that its smallest attainable Holm p, family_size / (R + 1), is at most alpha / 10:
R = max(report.permutations, ceil(10 * m / alpha) - 1), with m bounded before the
tests by (comparisons of the family) x (settings). `p_holm_floor` is the
smallest Holm-adjusted p a row can reach (family size x the test's smallest p:
1/(R+1) or the exact test's 2/2^ids; 0 for the continuous t-test) and
`resolution_ok` is false, with a logged warning, when it exceeds alpha / 10.

The outcome column is decided in one place, `decide_outcomes` (called by
`finish`), by these rules, in this order (`outcome_reason` names the first
that fails):

1. "p": the Holm-adjusted p (`p_holm`) must be < alpha (`significant`);
2. "interval includes 0": the Holm-adjusted interval (`ci_adj_low`,
   `ci_adj_high`, below) must exclude 0 (always so for the t-test when rule 1
   holds; for one seed the bootstrap interval and the randomisation test can
   disagree, and then the row is not decided);
3. "below min effect": the improvement (Δ, or −Δ for a lower-is-better metric)
   must be at least `min_effect` in absolute value (`report.min_effect` for
   every metric but rank distance, whose rows get 0: its unit is ranks);
4. "seeds disagree": with two or more seeds every per-seed Δ (`seed_deltas`)
   must have the sign of Δ (`seeds_agree`).

A row that passes all four is "better" or "worse" by the sign of the
improvement (`outcome_reason` "significant"). Any other row is "equivalent"
when its Holm-adjusted interval lies strictly inside ±`min_effect`
(`outcome_reason` "inside min effect"): two one-sided tests, each at half the
level Holm tests the row at, so the one printed interval decides every
outcome (more conservative than the (1 − 2 alpha) convention; rank distance,
with `min_effect` 0, is never equivalent). The rest are "inconclusive", and
`outcome_reason` names the first rule that failed.

Power (`power_columns`, `xlir.report.stats`), for every row with two or more
seeds: `seed_sd` (sd of the per-seed Δ), `question_variance` (se² − seed_sd² /
n), `power_alpha` = alpha / family_size (Holm's strictest step: a row with this
minimum detectable effect is found whatever its place in the Holm order),
`mde` the true difference the row's t-test (n − 1 df) finds with probability
`power_target` (`report.power`, 0.8) at `power_alpha`, and `seeds_to_detect` /
`seeds_to_equivalence` the seeds that would detect `min_effect` / establish
equivalence within ±`min_effect` at a true difference of 0, at the same power
(NaN for one seed, where the seed variance is not measured, and beyond
`xlir.report.stats.MAX_PLANNED_SEEDS`). `xlir plan-seeds` prints them.

The adjusted interval is the one the decision uses: at
confidence 1 − the level Holm tests the row at (`ci_adj_level`;
`xlir.report.stats.holm_levels`: alpha / (m − k) at step k, frozen at the
first step that fails), so it excludes 0 exactly when the t-test's Holm p is
< alpha. `ci_adj_method` says how it was computed: the t interval at that
level (several seeds), the percentile interval of the same bootstrap samples
(one seed; with 2000 samples and a tail of alpha / 2m the extreme quantiles
rest on a few samples), or, where the samples are not at hand (a table read
back or built by hand), the unadjusted interval widened around Δ by the ratio
of the normal quantiles (an approximation)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from xlir.common.config_files import schema_defaults
from xlir.common.io import InputError, atomic_open, get_logger
from xlir.report.aggregate import read_csv_with_columns
from xlir.report.grid import KEY_COLUMNS, SETTINGS, Run, Study, aggregate_name, higher_is_better, metric_order
from xlir.report.stats import (
    compare_seeds,
    holm,
    holm_levels,
    macro_mean,
    minimum_detectable_effect,
    percentile_ci,
    permutations_for,
    projected_se,
    seeds_to_detect,
    seeds_to_equivalence,
    smallest_holm_p,
    smallest_p,
    t_interval,
)

log = get_logger(__name__)

SUBSETS = ("all", "unseen", "seen")
REQUIRED_COLUMNS = [
    "benchmark",
    "family",
    "subset",
    "setting",
    "metric",
    "headline",
    "higher_is_better",
    "model",
    "treatment",
    "control",
    "treatment_variant",
    "treatment_sampling",
    "control_variant",
    "control_sampling",
    "seeds",
    "n_seeds",
    "single_seed",
    "seed_handling",
    "treatment_value",
    "control_value",
    "delta",
    "ci_low",
    "ci_high",
    "ci_level",
    "p_value",
    "p_holm",
    "alpha",
    "significant",
    "outcome",
    "n_queries",
    "n_pairs",
    "n_measurements",
    "unmatched",
    "seed_deltas",
    "bootstrap_samples",
    "permutations",
    "resampling_unit",
    "seed_level",
    "inference",
    "ci_method",
    "test",
    "se",
    "df",
    "boot_ci_low",
    "boot_ci_high",
    "holm_family",
    "family_size",
    "p_floor",
    "p_holm_floor",
    "resolution_ok",
    "min_effect",
    "seeds_agree",
    "ci_adj_level",
    "ci_adj_low",
    "ci_adj_high",
    "ci_adj_method",
    "outcome_reason",
]
#: the power columns (`power_columns`); a table written before them is completed when read
POWER_COLUMNS = [
    "power_target",
    "power_alpha",
    "seed_sd",
    "question_variance",
    "mde",
    "seeds_to_detect",
    "seeds_to_equivalence",
]
COLUMNS = REQUIRED_COLUMNS + POWER_COLUMNS
OUTCOMES = ("better", "worse", "equivalent", "inconclusive")
#: report.power and report.min_effect (in the units of the headline metric) when a table lacks them:
#: config/schema.yaml's defaults
DEFAULT_POWER = schema_defaults("report")["power"]
DEFAULT_MIN_EFFECT = schema_defaults("report")["min_effect"]
RESOLUTION_FACTOR = 10.0  # the smallest attainable Holm p must be at most alpha / this


@dataclass(frozen=True)
class Arm:
    model: str
    variant: str
    sampling: str
    seeds: tuple[int, ...]

    @property
    def label(self) -> str:
        return "zero-shot" if self.variant == "zeroshot" else f"{self.variant}/{self.sampling}"


@dataclass(frozen=True)
class Plan:
    family: str
    treatment: Arm
    control: Arm
    paired_seeds: bool  # same seeds in both arms (False: the control is a single untrained run)
    left_out: tuple[int, ...] = ()  # seeds only one arm has (not compared)

    @property
    def model(self) -> str:
        return self.treatment.model


def _seeds(runs: list[Run]) -> dict[tuple[str, str, str], set[int]]:
    seeds: dict[tuple[str, str, str], set[int]] = {}
    for run in runs:
        seeds.setdefault((run.model, run.variant, run.sampling), set()).add(run.seed)
    return seeds


def plan_comparisons(study: Study) -> list[Plan]:
    """Every comparison the report tests (see the module docstring)."""
    seeds = _seeds(study.runs)
    models = sorted({run.model for run in study.runs if run.trained})
    plans: list[Plan] = []

    def add(family: str, model: str, treatment: tuple[str, str], control: tuple[str, str]) -> None:
        t_seeds, c_seeds = seeds.get((model, *treatment)), seeds.get((model, *control))
        if not t_seeds or not c_seeds:
            return
        if control[0] == "zeroshot":
            plans.append(
                Plan(
                    family,
                    Arm(model, *treatment, tuple(sorted(t_seeds))),
                    Arm(model, *control, tuple(sorted(c_seeds))),
                    paired_seeds=False,
                )
            )
            return
        shared = tuple(sorted(t_seeds & c_seeds))
        if not shared:
            log.warning("%s: %s and %s share no seed; not compared", model, treatment, control)
            return
        left_out = tuple(sorted(t_seeds ^ c_seeds))
        if left_out:
            log.warning(
                "%s: %s and %s are compared on their shared seeds %s; seeds %s are left out",
                model,
                treatment,
                control,
                shared,
                left_out,
            )
        plans.append(
            Plan(
                family,
                Arm(model, *treatment, shared),
                Arm(model, *control, shared),
                paired_seeds=True,
                left_out=left_out,
            )
        )

    samplings = list(study.config.get("samplings", {}))
    for model in models:
        for sampling in samplings:
            for variant in study.config.get("variants", {}):
                if variant == study.baseline:
                    continue
                add("scaling", model, (variant, sampling), (study.baseline, sampling))
                matched = study.matched_uniform_lora(variant)
                if matched and matched != study.baseline:
                    add("scaling", model, (variant, sampling), (matched, sampling))
                for control in study.mean_lr_controls(variant) + study.step_size_controls(variant):
                    if control != study.baseline:
                        add("scaling", model, (variant, sampling), (control, sampling))
        main = study.hybrid_sampling() or study.main_sampling
        for sampling in samplings:
            if sampling != main:
                add("sampling", model, (study.baseline, main), (study.baseline, sampling))
        add("zeroshot", model, (study.baseline, main), ("zeroshot", "none"))
    return plans


# ------------------------------------------------------------------ per-query data
def read_per_query(path: Path, parallel: bool) -> pd.DataFrame:
    """per_query.tsv with numeric metric columns, a `pair` and the resampling `unit`
    (the id after `lang:` for parallel benchmarks, the qid otherwise)."""
    if not path.exists():
        raise InputError(f"{path}: missing (rule evaluate writes it for every run x benchmark)")
    # keys as Python strings (object), not pandas' Arrow strings: the merges, pivots and group-bys
    # below take rows by the thousand, and an Arrow take per call cost more than the statistics
    table = pd.read_csv(path, sep="\t", dtype={c: object for c in KEY_COLUMNS}, keep_default_na=False, na_values=[""])
    missing = [c for c in KEY_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"{path}: missing columns {', '.join(missing)}")
    for column in metric_columns(table):
        table[column] = pd.to_numeric(table[column], errors="coerce")
    table["pair"] = pd.Series(
        [f"{q}-{c}" for q, c in zip(table["query_lang"], table["cand_lang"])], index=table.index, dtype=object
    )
    units = [qid.split(":", 1)[-1] for qid in table["qid"]] if parallel else list(table["qid"])
    table["unit"] = pd.Series(units, index=table.index, dtype=object)
    if table.duplicated(["setting", "qid", "cand_lang"]).any():
        raise InputError(f"{path}: a (setting, qid, cand_lang) appears twice")
    return table


def metric_columns(table: pd.DataFrame) -> list[str]:
    """Every per-query column that is not a key: ap, recall_k, ndcg_cut_k, rank_distance, ..."""
    return [c for c in table.columns if c not in (*KEY_COLUMNS, "pair", "unit", "seed", "row")]


class PerQuery:
    """Per-query tables of the runs, read once each."""

    def __init__(self, study: Study) -> None:
        self.study = study
        self.dirs = {(r.model, r.variant, r.sampling, r.seed): r.dir for r in study.runs}
        self._tables: dict[tuple[str, str], pd.DataFrame] = {}
        self._means: dict[tuple, pd.DataFrame] = {}
        self._rows: dict[str, pd.Index] = {}
        self._settings: dict[int, tuple[pd.DataFrame, dict[str, pd.DataFrame]]] = {}

    def setting_rows(self, table: pd.DataFrame, setting: str) -> pd.DataFrame:
        """`table[table.setting == setting]`, split once per table (a run's rows are taken by
        setting in every plan it is part of)."""
        cached = self._settings.get(id(table))
        if cached is None or cached[0] is not table:
            cached = (table, {name: rows for name, rows in table.groupby("setting", sort=False)})
            self._settings[id(table)] = cached
        return cached[1].get(setting, table.iloc[0:0])

    def run(self, model: str, variant: str, sampling: str, seed: int, benchmark: str) -> pd.DataFrame:
        run_dir = self.dirs[(model, variant, sampling, seed)]
        if (run_dir, benchmark) not in self._tables:
            table = read_per_query(Path(run_dir) / benchmark / "per_query.tsv", self.study.parallel(benchmark))
            table["row"] = self._row_codes(benchmark, table)
            self._tables[(run_dir, benchmark)] = table
        return self._tables[(run_dir, benchmark)]

    def _row_codes(self, benchmark: str, table: pd.DataFrame) -> np.ndarray:
        """One integer per (setting, qid, cand_lang), the same in every run of the benchmark:
        the runs are joined on it (PairedTables), an integer join instead of three string keys."""
        keys = np.array(
            [f"{s}\t{q}\t{c}" for s, q, c in zip(table["setting"], table["qid"], table["cand_lang"])], dtype=object
        )
        known = self._rows.get(benchmark, pd.Index([], dtype=object))
        codes = known.get_indexer(keys)
        if (codes < 0).any():
            known = known.append(pd.Index(pd.unique(keys[codes < 0]), dtype=object))
            self._rows[benchmark] = known
            codes = known.get_indexer(keys)
        return codes.astype(np.int64)

    def arm(self, arm: Arm, benchmark: str, seeds: tuple[int, ...] | None = None) -> pd.DataFrame:
        """The arm's per-query scores averaged over `seeds` (default: all of its seeds)."""
        seeds = tuple(seeds or arm.seeds)
        frames = [self.run(arm.model, arm.variant, arm.sampling, seed, benchmark) for seed in seeds]
        if len(frames) == 1:
            return frames[0]
        key = (arm.model, arm.variant, arm.sampling, seeds, benchmark)
        if key not in self._means:  # an arm is the control of several plans: averaged once
            stacked = pd.concat(frames, ignore_index=True)
            metrics = metric_columns(frames[0])
            self._means[key] = stacked.groupby(
                ["setting", "qid", "query_lang", "cand_lang", "pair", "unit", "row"], as_index=False, sort=False
            )[metrics].mean()
        return self._means[key]


# ------------------------------------------------------------------ pairing
PAIR_KEYS = ["setting", "qid", "cand_lang"]


class PairedTables:
    """A treatment and a control per-query table joined once on (setting, qid, candidate
    language), every metric column at a time; `merged(column)` gives one metric's pairs
    (both measured), in the treatment's row order."""

    def __init__(self, treatment: pd.DataFrame, control: pd.DataFrame, columns: list[str]) -> None:
        keys = ["row"] if "row" in treatment.columns and "row" in control.columns else PAIR_KEYS
        left = treatment[[*keys, "unit", "pair", *columns]]
        right = control[[*keys, *columns]]
        self.joined = left.merge(right, on=keys, suffixes=("_t", "_c"))
        self.measured = {c: int(treatment[c].notna().sum()) + int(control[c].notna().sum()) for c in columns}

    def merged(self, column: str) -> tuple[pd.DataFrame, int]:
        """(the pairs both arms measured, with `delta`; measurements left unmatched)."""
        t, c = f"{column}_t", f"{column}_c"
        both = self.joined[t].notna() & self.joined[c].notna()
        merged = self.joined.loc[both, ["unit", "pair", t, c]].reset_index(drop=True)
        merged["delta"] = merged[t] - merged[c]
        return merged, self.measured[column] - 2 * len(merged)


def paired_deltas(treatment: pd.DataFrame, control: pd.DataFrame, column: str) -> tuple[np.ndarray, float, float, int]:
    """(unit x pair matrix of treatment - control, treatment macro, control macro,
    number of unmatched measurements) for the queries both arms measured."""
    return paired_deltas_of(PairedTables(treatment, control, [column]), column)


def paired_deltas_of(paired: PairedTables, column: str) -> tuple[np.ndarray, float, float, int]:
    """`paired_deltas` of tables joined once (PairedTables)."""
    merged, unmatched = paired.merged(column)
    if merged.empty:
        return np.empty((0, 0)), float("nan"), float("nan"), unmatched
    _, _, wide = unit_by_pair(merged, ("delta", f"{column}_t", f"{column}_c"))
    return wide["delta"], macro_mean(wide[f"{column}_t"]), macro_mean(wide[f"{column}_c"]), unmatched


def unit_by_pair(merged: pd.DataFrame, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(sorted units, sorted pairs, {name: unit x pair matrix, NaN where not measured}): what
    `merged.pivot(index="unit", columns="pair", values=name)` gives, without a pandas reshape
    per matrix ((unit, pair) is unique in a merged table)."""
    unit_index, units = pd.factorize(merged["unit"].to_numpy(dtype=object), sort=True)
    pair_index, pairs = pd.factorize(merged["pair"].to_numpy(dtype=object), sort=True)
    wide = {}
    for name in names:
        matrix = np.full((len(units), len(pairs)), np.nan)
        matrix[unit_index, pair_index] = merged[name].to_numpy(dtype=np.float64)
        wide[name] = matrix
    return units, pairs, wide


def seed_deltas_cube(pairs: list[PairedTables], column: str) -> np.ndarray:
    """(seed x unit x pair) array of treatment - control, one joined (treatment, control)
    pair of tables per seed, on the union of the units and pairs any seed measured
    (NaN where a seed's arms do not both have the query)."""
    wides = []
    for paired in pairs:
        merged, _ = paired.merged(column)
        wides.append(unit_by_pair(merged, ("delta",)))
    units = sorted(set().union(*(w[0] for w in wides)))
    groups = sorted(set().union(*(w[1] for w in wides)))
    if not units or not groups:
        return np.empty((len(pairs), 0, 0))
    unit_at = {unit: i for i, unit in enumerate(units)}
    group_at = {group: j for j, group in enumerate(groups)}
    cube = np.full((len(pairs), len(units), len(groups)), np.nan)
    for seed, (seed_units, seed_groups, wide) in enumerate(wides):
        rows = np.array([unit_at[u] for u in seed_units], dtype=np.intp)
        cols = np.array([group_at[g] for g in seed_groups], dtype=np.intp)
        cube[seed][np.ix_(rows, cols)] = wide["delta"]
    return cube


def subset_pairs(table: pd.DataFrame, subset: str, unseen: set[str]) -> pd.DataFrame:
    if subset == "all":
        return table
    involves_unseen = table["query_lang"].isin(unseen) | table["cand_lang"].isin(unseen)
    return table[involves_unseen] if subset == "unseen" else table[~involves_unseen]


def _rng(seed: int, key: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(key.encode())])


def _seed_handling(plan: Plan) -> str:
    seeds = plan.treatment.seeds
    if plan.paired_seeds:
        text = (
            f"single seed ({seeds[0]}): two checkpoints compared, not two recipes"
            if len(seeds) == 1
            else f"{len(seeds)} paired seeds (treatment seed s vs control seed s): seed and question variance"
        )
    elif len(seeds) == 1:
        text = f"single seed ({seeds[0]}) vs the untrained model: one checkpoint, not the recipe"
    else:
        text = f"{len(seeds)} treatment seeds vs the untrained model: seed and question variance"
    if plan.left_out:
        text += f"; seeds {', '.join(str(s) for s in plan.left_out)} only one arm has are left out"
    return text


def _inference(n_seeds: int) -> str:
    return "checkpoints (1 seed)" if n_seeds == 1 else f"recipes ({n_seeds} seeds)"


def family_bounds(plans: list[Plan]) -> dict[str, int]:
    """An upper bound on the rows of each Holm family (benchmark x family x subset x
    metric), known before any test: the family's comparisons x the settings."""
    bounds: dict[str, int] = {}
    for plan in plans:
        bounds[plan.family] = bounds.get(plan.family, 0) + len(SETTINGS)
    return bounds


def compare_plan(plan: Plan, benchmark: str, data: PerQuery, settings: dict) -> list[dict]:
    """The rows of one plan on one benchmark: every setting x subset x metric."""
    study = data.study
    treatment, control = data.arm(plan.treatment, benchmark), data.arm(plan.control, benchmark)
    per_seed = [
        (
            data.arm(plan.treatment, benchmark, (seed,)),
            data.arm(plan.control, benchmark, (seed,)) if plan.paired_seeds else control,
        )
        for seed in plan.treatment.seeds
    ]
    bound = settings.get("family_bounds", {}).get(plan.family, len(SETTINGS))
    permutations = permutations_for(bound, settings["alpha"], settings["permutations"], RESOLUTION_FACTOR)
    unseen = set(study.unseen_languages(benchmark))
    subsets = SUBSETS if study.has_seen_and_unseen(benchmark) else ("all",)
    columns = sorted(metric_columns(treatment), key=metric_order)
    headline = study.headline_metric(benchmark, [aggregate_name(c) for c in columns])
    rows = []
    for setting in SETTINGS:
        t_setting, c_setting = data.setting_rows(treatment, setting), data.setting_rows(control, setting)
        if t_setting.empty or c_setting.empty:
            continue
        for subset in subsets:
            t_sub, c_sub = subset_pairs(t_setting, subset, unseen), subset_pairs(c_setting, subset, unseen)
            wanted = [c for c in columns if subset == "all" or aggregate_name(c) in (headline, "rank_distance")]
            if not wanted:
                continue
            pooled = PairedTables(t_sub, c_sub, wanted)
            seeds_paired = [
                PairedTables(
                    subset_pairs(data.setting_rows(t_seed, setting), subset, unseen),
                    subset_pairs(data.setting_rows(c_seed, setting), subset, unseen),
                    wanted,
                )
                for t_seed, c_seed in per_seed
            ]
            for column in wanted:
                metric = aggregate_name(column)
                deltas, t_value, c_value, unmatched = paired_deltas_of(pooled, column)
                if deltas.size == 0 or np.isnan(deltas).all():
                    continue
                key = "|".join(
                    [
                        benchmark,
                        plan.family,
                        subset,
                        setting,
                        metric,
                        plan.model,
                        plan.treatment.label,
                        plan.control.label,
                    ]
                )
                cube = seed_deltas_cube(seeds_paired, column)
                result = compare_seeds(
                    cube,
                    settings["bootstrap_samples"],
                    permutations,
                    1 - settings["alpha"],
                    _rng(settings["seed"], key),
                )
                seed_deltas = [macro_mean(d) for d in cube] if len(per_seed) > 1 else []
                rows.append(
                    {
                        "benchmark": benchmark,
                        "family": plan.family,
                        "subset": subset,
                        "setting": setting,
                        "metric": metric,
                        "headline": metric == headline,
                        "higher_is_better": higher_is_better(metric),
                        "model": plan.model,
                        "treatment": plan.treatment.label,
                        "control": plan.control.label,
                        "treatment_variant": plan.treatment.variant,
                        "treatment_sampling": plan.treatment.sampling,
                        "control_variant": plan.control.variant,
                        "control_sampling": plan.control.sampling,
                        "seeds": ",".join(str(s) for s in plan.treatment.seeds),
                        "n_seeds": len(plan.treatment.seeds),
                        "single_seed": len(plan.treatment.seeds) == 1,
                        "seed_handling": _seed_handling(plan),
                        "treatment_value": t_value,
                        "control_value": c_value,
                        "delta": result.delta,
                        "ci_low": result.ci_low,
                        "ci_high": result.ci_high,
                        "ci_level": result.ci_level,
                        "p_value": result.p_value,
                        "alpha": settings["alpha"],
                        "n_queries": result.n_units,
                        "n_pairs": result.n_groups,
                        "n_measurements": result.n_measurements,
                        "unmatched": unmatched,
                        "seed_deltas": ";".join(f"{d:.6g}" for d in seed_deltas),
                        "bootstrap_samples": result.bootstrap_samples,
                        "permutations": result.permutations,
                        "resampling_unit": ("seed, " if result.seed_level else "")
                        + ("question id (parallel questions together)" if study.parallel(benchmark) else "question"),
                        "seed_level": result.seed_level,
                        "inference": _inference(result.n_seeds),
                        "ci_method": result.ci_method,
                        "test": result.test,
                        "se": result.se,
                        "df": result.df,
                        "boot_ci_low": result.boot_ci_low,
                        "boot_ci_high": result.boot_ci_high,
                        "min_effect": 0.0 if metric == "rank_distance" else settings["min_effect"],
                        "power_target": settings["power"],
                        "_boot_samples": result.boot_samples,
                    }
                )
    return rows


def finish(rows: list[dict]) -> pd.DataFrame:
    """Holm per table (benchmark x family x subset x metric), significance and outcome,
    the family and its size, and whether the p-values can resolve it (module docstring)."""
    samples = [r.get("_boot_samples") for r in rows]
    table = pd.DataFrame(rows, columns=COLUMNS)
    if table.empty:
        return table
    table["seed_level"] = table["seed_level"].fillna(False).astype(bool)
    table["p_holm"] = np.nan
    family_keys = ["benchmark", "family", "subset", "metric"]
    table["holm_family"] = table[family_keys].astype(str).agg("|".join, axis=1)
    for _, index in table.groupby(family_keys).groups.items():
        table.loc[index, "p_holm"] = holm(table.loc[index, "p_value"].to_numpy(dtype=float))
        table.loc[index, "family_size"] = int(table.loc[index, "p_value"].notna().sum())
    table["family_size"] = table["family_size"].astype(int)
    table["p_floor"] = [
        smallest_p(None if pd.isna(r) else int(r), int(n), bool(seed))
        for r, n, seed in zip(table["permutations"], table["n_queries"], table["seed_level"])
    ]
    table["p_holm_floor"] = [smallest_holm_p(m, p) for m, p in zip(table["family_size"], table["p_floor"])]
    table["resolution_ok"] = table["p_holm_floor"] <= table["alpha"] / RESOLUTION_FACTOR
    for family, block in table[~table["resolution_ok"]].groupby("holm_family"):
        log.warning(
            "compare: %s (%d rows): the smallest attainable Holm-adjusted p is %.3g > alpha / %g = %.3g%s",
            family,
            int(block["family_size"].iloc[0]),
            block["p_holm_floor"].min(),
            RESOLUTION_FACTOR,
            block["alpha"].iloc[0] / RESOLUTION_FACTOR,
            " (no difference can be significant)" if (block["p_holm_floor"] >= block["alpha"]).all() else "",
        )
    table["significant"] = table["p_holm"] < table["alpha"]
    adjusted_intervals(table, samples)
    decide_outcomes(table)
    power_columns(table)
    return table


def _per_seed(text: object) -> list[float]:
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return []
    return [float(v) for v in str(text).split(";") if v.strip()]


def adjusted_intervals(table: pd.DataFrame, samples: list[np.ndarray | None] | None = None) -> None:
    """`ci_adj_level`, `ci_adj_low`, `ci_adj_high`, `ci_adj_method`: the interval at
    confidence 1 − the row's Holm step level (module docstring), per `holm_family`."""
    samples = samples if samples is not None else [None] * len(table)
    levels = pd.Series(np.nan, index=table.index)
    for _, index in table.groupby("holm_family").groups.items():
        alpha = float(table.loc[index, "alpha"].iloc[0])
        levels.loc[index] = holm_levels(table.loc[index, "p_value"].to_numpy(dtype=float), alpha)
    lows, highs, methods = [], [], []
    for position, (index, row) in enumerate(table.iterrows()):
        level = 1 - float(levels.loc[index]) if not np.isnan(levels.loc[index]) else float(row["ci_level"])
        delta = float(row["delta"])
        se, df = pd.to_numeric(row["se"], errors="coerce"), pd.to_numeric(row["df"], errors="coerce")
        boot = samples[position] if position < len(samples) else None
        if bool(row["seed_level"]) and not (pd.isna(se) or pd.isna(df)):
            low, high = t_interval(delta, float(se), float(df), level)
            method = "t interval at the Holm step's level"
        elif boot is not None and not bool(row["seed_level"]):
            low, high = percentile_ci(boot, level)
            method = "bootstrap percentile interval at the Holm step's level (same samples)"
        else:
            base = scipy_stats.norm.ppf(1 - (1 - float(row["ci_level"])) / 2)
            scale = scipy_stats.norm.ppf(1 - (1 - level) / 2) / base
            low = delta - (delta - float(row["ci_low"])) * scale
            high = delta + (float(row["ci_high"]) - delta) * scale
            method = "unadjusted interval widened by the normal quantile ratio (approximation)"
        lows.append(low)
        highs.append(high)
        methods.append(method)
    table["ci_adj_level"] = 1 - levels.where(levels.notna(), 1 - table["ci_level"])
    table["ci_adj_low"], table["ci_adj_high"], table["ci_adj_method"] = lows, highs, methods


def decide_outcomes(table: pd.DataFrame) -> None:
    """The outcome column and the rule that decided it (module docstring): `min_effect`
    (missing: `DEFAULT_MIN_EFFECT`, 0 for rank distance), `seeds_agree`, `outcome`,
    `outcome_reason`. Needs `significant` and the adjusted interval."""
    default = np.where(table["metric"] == "rank_distance", 0.0, DEFAULT_MIN_EFFECT)
    table["min_effect"] = pd.to_numeric(table["min_effect"], errors="coerce").fillna(pd.Series(default, table.index))
    improvement = np.where(table["higher_is_better"], table["delta"], -table["delta"]).astype(float)
    table["seeds_agree"] = [
        all(np.sign(d) == np.sign(delta) for d in per_seed) if len(per_seed) >= 2 else True
        for per_seed, delta in zip(map(_per_seed, table["seed_deltas"]), table["delta"])
    ]
    excludes_zero = (table["ci_adj_low"] > 0) | (table["ci_adj_high"] < 0)
    large = np.abs(improvement) >= table["min_effect"] - 1e-12
    inside = (table["ci_adj_low"] > -table["min_effect"]) & (table["ci_adj_high"] < table["min_effect"])
    reasons = np.select(
        [~table["significant"], ~excludes_zero, ~large, ~table["seeds_agree"]],
        ["p", "interval includes 0", "below min effect", "seeds disagree"],
        default="significant",
    )
    decided = reasons == "significant"
    equivalent = ~decided & inside.to_numpy()
    table["outcome_reason"] = np.where(equivalent, "inside min effect", reasons)
    table["outcome"] = np.select(
        [decided & (improvement > 0), decided, equivalent], ["better", "worse", "equivalent"], default="inconclusive"
    )


def power_columns(table: pd.DataFrame) -> None:
    """`power_target`, `power_alpha`, `seed_sd`, `question_variance`, `mde`, `seeds_to_detect`
    and `seeds_to_equivalence` (module docstring) from each row's per-seed Δ and se."""
    power = pd.to_numeric(table.get("power_target"), errors="coerce") if "power_target" in table else None
    table["power_target"] = DEFAULT_POWER if power is None else power.fillna(DEFAULT_POWER)
    table["power_alpha"] = table["alpha"].astype(float) / table["family_size"].clip(lower=1).astype(float)
    figures = [row_power(row) for _, row in table.iterrows()]
    for position, column in enumerate(POWER_COLUMNS[2:]):
        table[column] = [values[position] for values in figures]


def row_power(row: pd.Series) -> tuple[float, float, float, float, float]:
    """(seed sd, question variance, mde, seeds to detect, seeds to equivalence) of one row."""
    nan = float("nan")
    per_seed = _per_seed(row.get("seed_deltas"))
    n_seeds = len(per_seed)
    if n_seeds < 2:
        return nan, nan, nan, nan, nan
    seed_sd = float(np.std(per_seed, ddof=1))
    se = pd.to_numeric(row.get("se"), errors="coerce")
    question_variance = max(0.0, float(se) ** 2 - seed_sd**2 / n_seeds) if bool(row.get("seed_level")) else 0.0
    question_variance = 0.0 if np.isnan(question_variance) else question_variance
    alpha, power, effect = float(row["power_alpha"]), float(row["power_target"]), float(row["min_effect"])
    se_now = projected_se(seed_sd, question_variance, n_seeds)
    return (
        seed_sd,
        question_variance,
        minimum_detectable_effect(se_now, n_seeds - 1, alpha, power),
        seeds_to_detect(seed_sd, question_variance, effect, alpha, power),
        seeds_to_equivalence(seed_sd, question_variance, effect, alpha, power),
    )


def comparison_settings(study: Study) -> dict:
    cfg = study.report_cfg
    settings = {
        "bootstrap_samples": int(cfg["bootstrap_samples"]),
        "permutations": int(cfg["permutations"]),
        "alpha": float(cfg["alpha"]),
        "seed": int(cfg["seed"]),
        "min_effect": float(cfg["min_effect"]),
        "power": float(cfg["power"]),
    }
    if not 0 < settings["power"] < 1:
        raise InputError(f"config key report.power: expected a probability in (0, 1), got {settings['power']}")
    if settings["min_effect"] < 0:
        raise InputError(f"config key report.min_effect: expected a difference >= 0, got {settings['min_effect']}")
    if not 0 < settings["alpha"] <= 0.5:  # as config/schema.yaml's report.alpha
        raise InputError(f"config key report.alpha: expected a level in (0, 0.5], got {settings['alpha']}")
    return settings


def run_comparisons(manifest: dict) -> pd.DataFrame:
    study = Study(manifest)
    settings = comparison_settings(study)
    data = PerQuery(study)
    rows: list[dict] = []
    plans = plan_comparisons(study)
    settings["family_bounds"] = family_bounds(plans)
    for benchmark in study.benchmarks:
        for plan in plans:
            rows.extend(compare_plan(plan, benchmark, data, settings))
    return finish(rows)


def compare_runs(manifest: dict, out_csv: str | Path) -> pd.DataFrame:
    table = run_comparisons(manifest)
    with atomic_open(out_csv) as handle:
        table.to_csv(handle, index=False)
    log.info(
        "compare: %d comparisons (%d significant after Holm) -> %s",
        len(table),
        int(table["significant"].sum()) if len(table) else 0,
        out_csv,
    )
    return table


def read_comparisons(path: str | Path) -> pd.DataFrame:
    """comparisons.csv; a table written before the four outcomes and the power columns gets
    its outcomes decided again and its power columns computed (from the columns it has)."""
    table = read_csv_with_columns(path, REQUIRED_COLUMNS, {"seeds": str, "seed_deltas": str}, "compare")
    for column in (
        "headline",
        "higher_is_better",
        "single_seed",
        "significant",
        "seed_level",
        "resolution_ok",
        "seeds_agree",
    ):
        table[column] = table[column].astype(str).str.lower() == "true"
    if len(table) and (any(c not in table for c in POWER_COLUMNS) or not table["outcome"].isin(OUTCOMES).all()):
        decide_outcomes(table)
        power_columns(table)
    return table
