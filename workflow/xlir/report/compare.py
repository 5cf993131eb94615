"""Rule `compare`: paired significance tests between runs, from per-query scores.

Comparisons (treatment - control, same model, same benchmark, same queries):

- family `scaling`: every variant against the baseline variant (`uniform`)
  under the same sampling and seed set; a layer-wise LoRA rank profile also
  against the uniform-rank LoRA variant of the same budget;
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
`resolution_ok` is false, with a logged warning, when it exceeds alpha / 10."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from xlir.common.io import InputError, atomic_open, get_logger
from xlir.report.aggregate import read_csv_with_columns
from xlir.report.grid import KEY_COLUMNS, SETTINGS, Run, Study, aggregate_name, higher_is_better, metric_order
from xlir.report.stats import compare_seeds, holm, macro_mean, permutations_for, smallest_holm_p, smallest_p

log = get_logger(__name__)

SUBSETS = ("all", "unseen", "seen")
COLUMNS = [
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
]
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
    table = pd.read_csv(path, sep="\t", dtype={c: str for c in KEY_COLUMNS}, keep_default_na=False, na_values=[""])
    missing = [c for c in KEY_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"{path}: missing columns {', '.join(missing)}")
    for column in metric_columns(table):
        table[column] = pd.to_numeric(table[column], errors="coerce")
    table["pair"] = table["query_lang"] + "-" + table["cand_lang"]
    table["unit"] = table["qid"].str.split(":", n=1).str[-1] if parallel else table["qid"]
    if table.duplicated(["setting", "qid", "cand_lang"]).any():
        raise InputError(f"{path}: a (setting, qid, cand_lang) appears twice")
    return table


def metric_columns(table: pd.DataFrame) -> list[str]:
    """Every per-query column that is not a key: ap, recall_k, ndcg_cut_k, rank_distance, ..."""
    return [c for c in table.columns if c not in (*KEY_COLUMNS, "pair", "unit", "seed")]


class PerQuery:
    """Per-query tables of the runs, read once each."""

    def __init__(self, study: Study) -> None:
        self.study = study
        self.dirs = {(r.model, r.variant, r.sampling, r.seed): r.dir for r in study.runs}
        self._tables: dict[tuple[str, str], pd.DataFrame] = {}

    def run(self, model: str, variant: str, sampling: str, seed: int, benchmark: str) -> pd.DataFrame:
        run_dir = self.dirs[(model, variant, sampling, seed)]
        if (run_dir, benchmark) not in self._tables:
            self._tables[(run_dir, benchmark)] = read_per_query(
                Path(run_dir) / benchmark / "per_query.tsv", self.study.parallel(benchmark)
            )
        return self._tables[(run_dir, benchmark)]

    def arm(self, arm: Arm, benchmark: str, seeds: tuple[int, ...] | None = None) -> pd.DataFrame:
        """The arm's per-query scores averaged over `seeds` (default: all of its seeds)."""
        frames = [self.run(arm.model, arm.variant, arm.sampling, seed, benchmark) for seed in (seeds or arm.seeds)]
        if len(frames) == 1:
            return frames[0]
        stacked = pd.concat(frames, ignore_index=True)
        metrics = metric_columns(frames[0])
        return stacked.groupby(
            ["setting", "qid", "query_lang", "cand_lang", "pair", "unit"], as_index=False, sort=False
        )[metrics].mean()


# ------------------------------------------------------------------ pairing
def _merged(treatment: pd.DataFrame, control: pd.DataFrame, column: str) -> tuple[pd.DataFrame, int]:
    keys = ["setting", "qid", "cand_lang"]
    left = treatment[[*keys, "unit", "pair", column]].dropna(subset=[column])
    right = control[[*keys, column]].dropna(subset=[column])
    merged = left.merge(right, on=keys, suffixes=("_t", "_c"))
    merged["delta"] = merged[f"{column}_t"] - merged[f"{column}_c"]
    return merged, len(left) + len(right) - 2 * len(merged)


def paired_deltas(treatment: pd.DataFrame, control: pd.DataFrame, column: str) -> tuple[np.ndarray, float, float, int]:
    """(unit x pair matrix of treatment - control, treatment macro, control macro,
    number of unmatched measurements) for the queries both arms measured."""
    merged, unmatched = _merged(treatment, control, column)
    if merged.empty:
        return np.empty((0, 0)), float("nan"), float("nan"), unmatched
    wide = {
        name: merged.pivot(index="unit", columns="pair", values=name).to_numpy(dtype=np.float64)
        for name in ("delta", f"{column}_t", f"{column}_c")
    }
    return wide["delta"], macro_mean(wide[f"{column}_t"]), macro_mean(wide[f"{column}_c"]), unmatched


def seed_deltas_cube(pairs: list[tuple[pd.DataFrame, pd.DataFrame]], column: str) -> np.ndarray:
    """(seed x unit x pair) array of treatment - control, one (treatment, control)
    frame pair per seed, on the union of the units and pairs any seed measured
    (NaN where a seed's arms do not both have the query)."""
    wides = []
    for treatment, control in pairs:
        merged, _ = _merged(treatment, control, column)
        wides.append(merged.pivot(index="unit", columns="pair", values="delta"))
    units = sorted(set().union(*(w.index for w in wides)))
    groups = sorted(set().union(*(w.columns for w in wides)))
    if not units or not groups:
        return np.empty((len(pairs), 0, 0))
    return np.stack([w.reindex(index=units, columns=groups).to_numpy(dtype=np.float64) for w in wides])


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
        t_setting, c_setting = treatment[treatment.setting == setting], control[control.setting == setting]
        if t_setting.empty or c_setting.empty:
            continue
        for subset in subsets:
            t_sub, c_sub = subset_pairs(t_setting, subset, unseen), subset_pairs(c_setting, subset, unseen)
            for column in columns:
                metric = aggregate_name(column)
                if subset != "all" and metric not in (headline, "rank_distance"):
                    continue
                deltas, t_value, c_value, unmatched = paired_deltas(t_sub, c_sub, column)
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
                cube = seed_deltas_cube(
                    [
                        (
                            subset_pairs(t_seed[t_seed.setting == setting], subset, unseen),
                            subset_pairs(c_seed[c_seed.setting == setting], subset, unseen),
                        )
                        for t_seed, c_seed in per_seed
                    ],
                    column,
                )
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
                    }
                )
    return rows


def finish(rows: list[dict]) -> pd.DataFrame:
    """Holm per table (benchmark x family x subset x metric), significance and outcome,
    the family and its size, and whether the p-values can resolve it (module docstring)."""
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
    improved = np.where(table["higher_is_better"], table["delta"] > 0, table["delta"] < 0)
    table["outcome"] = np.where(~table["significant"], "indistinguishable", np.where(improved, "better", "worse"))
    return table


def comparison_settings(study: Study) -> dict:
    cfg = study.report_cfg
    settings = {
        "bootstrap_samples": int(cfg.get("bootstrap_samples", 2000)),
        "permutations": int(cfg.get("permutations", 2000)),
        "alpha": float(cfg.get("alpha", 0.05)),
        "seed": int(cfg.get("seed", 0)),
    }
    if not 0 < settings["alpha"] < 1:
        raise InputError(f"config key report.alpha: expected a level in (0, 1), got {settings['alpha']}")
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
    table = read_csv_with_columns(path, COLUMNS, {"seeds": str, "seed_deltas": str}, "compare")
    for column in ("headline", "higher_is_better", "single_seed", "significant", "seed_level", "resolution_ok"):
        table[column] = table[column].astype(str).str.lower() == "true"
    return table
