"""Rule `report`: the study's report from the tidy measurements (`xlir aggregate`),
the comparisons (`xlir compare`) and the files every other rule wrote.

Writes `index.html` (self-contained), its Markdown twin `index.md`, the verdict
alone (`verdict.md`), the claims table (`claims.csv`) and `figures/` (PNG + SVG).
No number in them is typed by hand: each comes from a file a rule wrote."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from xlir.common.io import atomic_dir, atomic_open, get_logger, read_json, read_tsv
from xlir.report import figures, lr_sweep, provenance, training_data
from xlir.report.aggregate import read_measurements
from xlir.report.compare import read_comparisons
from xlir.report.document import Document, md_table
from xlir.report.grid import SETTINGS, Study, metric_label, metric_order
from xlir.report.references import FULL_LANGUAGES, reference_dataset, references_for
from xlir.report.verdict import (
    CONTRADICTED,
    INCONCLUSIVE,
    MIXED,
    NOT_SUPPORTED,
    NOT_TESTED,
    SUPPORTED,
    claims_table,
    design_lines,
    fmt_min_effect,
    glance_rows,
    glance_table,
    research_answer,
    verdict_lines,
)

log = get_logger(__name__)

TITLE = "xlir: layer-wise vs uniform scaling under hybrid-batch training"
VERDICT_CLASSES = {
    SUPPORTED: "supported",
    NOT_SUPPORTED: "not-supported",
    NOT_TESTED: "not-tested",
    CONTRADICTED: "not-supported",
    MIXED: "not-tested",
    INCONCLUSIVE: "not-tested",
    "better": "supported",
    "worse": "not-supported",
}


# ------------------------------------------------------------------ tables
def setting_table(measurements: pd.DataFrame, benchmark: str, setting: str) -> pd.DataFrame:
    """Macro metrics of every run in one setting (one row per run)."""
    macro = measurements[
        (measurements.benchmark == benchmark) & (measurements.setting == setting) & (measurements.pair == "macro")
    ]
    if macro.empty:
        return pd.DataFrame()
    table = macro.pivot_table(index=["model", "variant", "sampling", "seed"], columns="metric", values="value")
    metrics = sorted(table.columns, key=metric_order)
    table = table[metrics].rename(columns=metric_label)
    queries = macro.groupby(["model", "variant", "sampling", "seed"]).n_queries.max()
    table["queries"] = queries.astype(int)
    return table.reset_index()


def significance_table(rows: pd.DataFrame) -> pd.DataFrame:
    """The comparisons of one table, as the report prints them."""
    if rows.empty:
        return pd.DataFrame()
    level = int(round(100 * rows.iloc[0]["ci_level"]))
    adjusted = "ci_adj_low" in rows and rows.ci_adj_low.notna().any()
    out = pd.DataFrame(
        {
            "model": rows.model,
            "setting": rows.setting,
            "treatment": rows.treatment,
            "control": rows.control,
            "treatment value": rows.treatment_value,
            "control value": rows.control_value,
            "Δ": rows.delta,
            f"{level}% CI low": rows.ci_low,
            f"{level}% CI high": rows.ci_high,
            "p": rows.p_value,
            "Holm p": rows.p_holm,
            "adjusted CI low": rows.ci_adj_low if adjusted else float("nan"),
            "adjusted CI high": rows.ci_adj_high if adjusted else float("nan"),
            "outcome": rows.outcome,
            "decided by": rows.outcome_reason if "outcome_reason" in rows else "",
            "MDE": rows.mde if "mde" in rows else float("nan"),
            "seeds to detect min effect": rows.seeds_to_detect if "seeds_to_detect" in rows else float("nan"),
            "queries": rows.n_queries.astype(int),
            "pairs": rows.n_pairs.astype(int),
            "seeds": rows.seeds.astype(str),
        }
    )
    out["seed note"] = [
        "single seed: two checkpoints, not two recipes" if single else f"seed-level; per seed Δ: {deltas}"
        for single, deltas in zip(rows.single_seed, rows.seed_deltas.fillna(""))
    ]
    return out


def reference_table(measurements: pd.DataFrame, study: Study, benchmark: str, dataset: str) -> pd.DataFrame:
    """Our mAP (uniform variant, hybrid batches, mean over seeds) beside the published figures."""
    sampling = study.hybrid_sampling() or study.main_sampling
    macro = measurements[
        (measurements.benchmark == benchmark) & (measurements.pair == "macro") & (measurements.metric == "map")
    ]
    rows = []
    for setting in SETTINGS:
        row: dict = {"setting": setting}
        ours = macro[(macro.setting == setting) & (macro.variant == study.baseline) & (macro.sampling == sampling)]
        for model, values in ours.groupby("model"):
            row[f"ours: {model} {study.baseline}/{sampling} (mean of {values.seed.nunique()} seeds)"] = (
                values.value.mean()
            )
        for system, source, value in references_for(dataset, setting):
            row[f"theirs: {system} [{source}]"] = value
        rows.append(row)
    return pd.DataFrame(rows)


def _depth_text(measurements: pd.DataFrame, config: dict, benchmark: str) -> str:
    depths = sorted(set(measurements[measurements.benchmark == benchmark].depth.astype(str)))
    if depths == ["full"]:
        return "every metric is over the whole ranked candidate pool (full depth)"
    if depths == ["unknown"]:
        configured = config.get("evaluation", {}).get("depth")
        return "metrics.json does not record the ranking depth; the config ranks " + (
            "the whole pool" if configured is None else f"the top {configured}"
        )
    return (
        "ranking depth per run: "
        + ", ".join(d if d != "full" else "full pool" for d in depths)
        + " (mAP over a truncated ranking counts relevant candidates below the cut as not retrieved)"
    )


# ------------------------------------------------------------------ sections
def glance_section(doc: Document, study: Study, comparisons: pd.DataFrame, claims: pd.DataFrame) -> list[str]:
    """The answer at a glance: the research question per setting, the compact variant x setting x
    benchmark table and its forest plot, the claims' verdicts (evidence follows in the Verdict section)."""
    doc.heading("The answer at a glance")
    design = design_lines(comparisons, study)
    for line in design:
        doc.para(line, css="note")
    lines = research_answer(claims)
    if lines:
        doc.block(lines, "verdict")
    doc.para(
        f"Each variant minus its counterpart (headline metric, every language pair). An outcome is better "
        f"or worse only when the Holm-adjusted p < {study.alpha:g}, the Holm-adjusted interval (shown; at the level "
        f"Holm tests the row at) excludes 0, |Δ| is at least the minimum effect ({fmt_min_effect(comparisons)}, "
        "report.min_effect) and, with two or more seeds, every seed's Δ has the sign of Δ; equivalent when that "
        "interval lies inside ± the minimum effect; otherwise inconclusive, and `decided by` names the rule that "
        "failed. MDE: the difference the row's test finds with the report's power (report.power) at alpha / Holm "
        "family size; an inconclusive row with MDE above the minimum effect was not measured precisely enough."
    )
    table = glance_table(comparisons, study)
    if table.empty:
        doc.para("No scaling variant was compared with its uniform counterpart in this run.")
    else:
        doc.table(table, digits=4, classes=VERDICT_CLASSES)
        doc.figure(
            figures.forest(glance_rows(comparisons), doc.figures_dir),
            "Δ with the Holm-adjusted interval per variant x setting x benchmark (filled: better or worse; "
            "hollow: equivalent or inconclusive); solid line at 0, dashed at ± the minimum effect",
        )
    verdicts = claims[["claim", "benchmark", "model", "setting", "verdict"]]
    doc.table(verdicts, classes=VERDICT_CLASSES, collapsed=f"verdict of every claim ({len(verdicts)} rows)")
    return [line for warning in design for line in (warning, "")] + lines  # verdict.md: one paragraph each


def verdict_section(doc: Document, study: Study, comparisons: pd.DataFrame, claims: pd.DataFrame) -> list[str]:
    doc.heading("Verdict")
    doc.para("Generated from the comparisons table by `xlir.report.verdict`; not written by hand.")
    lines = verdict_lines(comparisons, study)
    doc.block(lines, "verdict")
    doc.heading("Claims", 3)
    table = claims[["claim", "statement", "benchmark", "model", "setting", "verdict", "evidence"]]
    doc.table(table, classes=VERDICT_CLASSES)
    doc.para(
        "Criteria: "
        + " ".join(
            f"{c}: {text}."
            for c, text in claims.drop_duplicates("claim")[["claim", "criterion"]].itertuples(index=False)
        )
    )
    single = comparisons[comparisons.single_seed] if not comparisons.empty else comparisons
    if not single.empty:
        doc.para(
            f"{len(single)} of {len(comparisons)} comparisons rest on a single seed "
            f"(seeds in the config: {', '.join(str(s) for s in study.config.get('seeds', []))}): they compare two "
            "checkpoints, not two recipes; their intervals and p-values measure query-sampling uncertainty only, not "
            "the variation between training runs.",
            css="note",
        )
    return lines


def benchmark_section(
    doc: Document,
    study: Study,
    measurements: pd.DataFrame,
    comparisons: pd.DataFrame,
    results_dir: Path,
    figures_dir: Path,
    benchmark: str,
) -> None:
    spec = study.benchmark_spec(benchmark)
    stats = read_json(results_dir / "benchmarks" / benchmark / "prepared" / "stats.json")
    doc.heading(f"Benchmark {benchmark}")
    unseen = study.unseen_languages(benchmark)
    metrics_here = sorted(set(measurements[measurements.benchmark == benchmark].metric), key=metric_order)
    headline = study.headline_metric(benchmark, metrics_here)
    doc.para(
        f"{benchmark} ({spec.get('kind')}{', ' + spec['dataset'] if spec.get('dataset') else ''}): "
        f"{stats.get('n_questions')} questions and {stats.get('n_candidates')} candidates in "
        f"{len(stats.get('languages', []))} languages ({', '.join(stats.get('languages', []))}); "
        f"trained on {', '.join(study.training_languages)}"
        + (f"; never trained on: {', '.join(unseen)}" if unseen else "")
        + ". "
        f"Headline metric: {metric_label(headline)}; settings are macro-averaged over language pairs; "
        f"{_depth_text(measurements, study.config, benchmark)}."
    )
    dataset = reference_dataset(benchmark, spec)
    if dataset:
        doc.heading(f"{benchmark}: our numbers beside the published ones", 3)
        n_langs = len(spec.get("languages", []))
        doc.para(
            f"Columns marked **theirs** are published figures (mAP, {FULL_LANGUAGES[dataset]} languages, "
            f"their models, their training data), not computed by this run; ours use {n_langs} languages"
            + ("" if n_langs == FULL_LANGUAGES[dataset] else " (not directly comparable)")
            + "."
        )
        doc.table(reference_table(measurements, study, benchmark, dataset))
    for setting in SETTINGS:
        table = setting_table(measurements, benchmark, setting)
        if table.empty:
            continue
        doc.heading(f"{benchmark}: {setting}", 3)
        doc.table(table)
    doc.figure(
        figures.setting_bars(measurements, benchmark, headline, figures_dir),
        f"{benchmark}: {metric_label(headline)} by setting and run (mean over seeds)",
    )

    here = comparisons[comparisons.benchmark == benchmark] if not comparisons.empty else comparisons
    doc.heading(f"{benchmark}: scaling variants against their uniform counterpart", 3)
    scaling = here[(here.family == "scaling") & (here.subset == "all") & here.headline] if len(here) else here
    doc.para(
        f"{metric_label(headline)} of each variant minus its uniform counterpart (`{study.baseline}`; for a "
        "layer-wise LoRA rank profile also the uniform-rank LoRA variant of the same budget and its step-size "
        "control; for a learning-rate profile also its mean-lr-matched uniform control), same model, "
        "sampling and seeds. Δ > 0: the variant is better. Holm correction over the rows of this table."
    )
    doc.table(significance_table(scaling), digits=4, classes=VERDICT_CLASSES)
    doc.figure(
        figures.delta_ci(
            here,
            benchmark,
            "scaling",
            figures_dir,
            title=f"{benchmark}: Δ {metric_label(headline)}, variant − uniform counterpart",
        ),
        f"{benchmark}: Δ {metric_label(headline)} against the uniform counterpart, with confidence "
        "intervals, per setting (filled = significant after Holm)",
    )
    doc.figure(
        figures.delta_heatmaps(measurements, here, benchmark, figures_dir),
        f"{benchmark}: Δ {metric_label(headline)} per query language x candidate language "
        "(diagonal: monolingual; off-diagonal: cross-lingual; all: multilingual pool)",
    )
    if study.has_seen_and_unseen(benchmark) and len(here):
        unseen_rows = here[(here.family == "scaling") & (here.subset == "unseen") & here.headline]
        if not unseen_rows.empty:
            doc.heading(f"{benchmark}: scaling variants on language pairs with an unseen language", 4)
            doc.para(
                f"Only the pairs whose query or candidate language ({', '.join(unseen)}) was never trained "
                "on: the strictest zero-shot condition. Holm over the rows of this table."
            )
            doc.table(significance_table(unseen_rows), digits=4, classes=VERDICT_CLASSES)
    others = (
        here[
            (here.family.isin(["sampling", "zeroshot"]))
            & (here.subset == "all")
            & (here.headline | (here.metric == "rank_distance"))
        ]
        if len(here)
        else here
    )
    doc.heading(f"{benchmark}: hybrid batches against other samplings and the untrained model", 3)
    doc.para(
        "The main (hybrid) sampling's uniform run minus each other sampling's uniform run, and minus the model "
        "before fine-tuning (zero-shot). For rank distance, lower is better (Δ < 0: less language bias)."
    )
    doc.table(
        significance_table(others.sort_values(["family", "metric", "setting"])) if len(others) else others,
        digits=4,
        classes=VERDICT_CLASSES,
    )
    doc.figure(
        figures.delta_ci(
            here,
            benchmark,
            "sampling",
            figures_dir,
            title=f"{benchmark}: Δ {metric_label(headline)}, hybrid − other samplings",
        ),
        f"{benchmark}: hybrid batches minus the other samplings, with confidence intervals",
    )
    doc.figure(
        figures.rank_distance(measurements, benchmark, figures_dir),
        f"{benchmark}: language bias (rank distance in the multilingual pool) per run",
    )
    secondary = here[~here.headline & (here.subset == "all")] if len(here) else here
    if len(secondary):
        doc.heading(f"{benchmark}: every other metric", 4)
        doc.table(
            significance_table(secondary.sort_values(["family", "metric", "setting"])),
            digits=4,
            collapsed=f"significance of the other metrics ({len(secondary)} comparisons; Holm per family and metric)",
            classes=VERDICT_CLASSES,
        )


def lr_section(doc: Document, study: Study, figures_dir: Path) -> None:
    """How each variant's base learning rate was set: the dev-split sweep, or one fixed lr."""
    selections = lr_sweep.read_selections(study.manifest)
    doc.heading("Learning rate")
    doc.para(
        lr_sweep.unswept_text(
            study.config.get("training", {}),
            bool(selections),
            study.config.get("variants", {}),
            study.config.get("seeds"),
        )
    )
    if not selections:
        return
    doc.table(lr_sweep.selected_lrs(selections))
    table = lr_sweep.sweep_table(selections)
    doc.figure(
        figures.lr_sweep(table, figures_dir),
        "the learning-rate sweep: dev-split score against base lr, one line per variant (ring: the selected lr)",
    )
    doc.table(table, digits=4, collapsed=f"dev score of every sweep point ({len(table)} points)")


def training_section(doc: Document, study: Study, figures_dir: Path) -> None:
    trained = [run for run in study.runs if run.trained]
    lr_section(doc, study, figures_dir)
    doc.heading("Scaling profiles")
    doc.figure(
        figures.layer_profiles(trained, figures_dir),
        "learning rate and trainable parameters per layer, per variant (from param_groups.tsv)",
    )
    seen = set()
    for run in trained:
        if run.variant in seen:
            continue
        seen.add(run.variant)
        variant = study.variant_spec(run.variant)
        spec = json.dumps(variant.to_dict(), sort_keys=True)
        table = pd.DataFrame(read_tsv(Path(run.dir) / "param_groups.tsv"))
        summary = read_json(Path(run.dir) / "train_summary.json")
        multiplier = training_data.mean_lr_multiplier(
            table, study.config.get("training", {}), variant.is_lora, summary.get("base_lr")
        )
        doc.para(
            f"`{run.variant}` ({study.variant_note(run.variant)}): {spec}; parameter-weighted mean lr multiplier "
            f"{multiplier:.3f} (the overall learning rate relative to the base lr)"
        )
        doc.table(table, collapsed=f"parameter groups of {run.variant} ({len(table)} layers)")
    norms = figures.lora_update_norms(trained, figures_dir)
    if norms:
        doc.figure(
            norms,
            "LoRA update norm ||dW||_F per block: with proportional alpha a higher-rank block also takes a larger "
            "step; alpha_mode fixed or rslora separates capacity from step size",
        )
    doc.heading("Training")
    doc.figure(figures.loss_curves(trained, figures_dir), "training loss curves (InfoNCE, in-batch negatives)")
    summaries = []
    for run in trained:
        summary = read_json(Path(run.dir) / "train_summary.json")
        summaries.append({"run": run.label, **{k: v for k, v in summary.items() if k not in ("variant", "seed")}})
    doc.table(pd.DataFrame(summaries))


def data_section(doc: Document, study: Study, manifest: dict, results_dir: Path) -> None:
    doc.heading("Data")
    doc.heading("Training data", 3)
    train_stats_path = results_dir / "data" / "train" / "stats.json"
    split_path = results_dir / "data" / "qa" / "split.json"
    if train_stats_path.exists():
        stats = read_json(train_stats_path)
        split = read_json(split_path) if split_path.exists() else {}
        doc.para(training_data.source_text(stats, split, study.config.get("training", {})))
        doc.table(training_data.language_table(stats))
    dev = training_data.dev_table(study.runs)
    if not dev.empty:
        doc.para(
            "Dev split (held out from the training source, a LAReQA-style pool of the training languages; "
            "model selection reads it, the verdict never does): mAP per run."
        )
        doc.table(dev, digits=4, collapsed=f"dev-split mAP of {len(dev)} runs")
    doc.heading("Benchmark sizes", 3)
    doc.table(provenance.benchmark_sizes(results_dir, study.benchmarks))
    doc.heading("Machine translation", 3)
    translation = study.config.get("translation", {})
    mt = provenance.mt_table(results_dir, manifest.get("mt_languages", []))
    doc.para(
        f"Backend: {translation.get('backend')}"
        + (f" ({translation.get('hf', {}).get('model')})" if translation.get("backend") == "huggingface" else "")
        + ". BLEU and chrF by sacrebleu; method `human reference` scores the translations against human "
        "translations of the same texts (the training source's own where it has them, else translation.references); "
        "`round-trip` means en→xx→en against the English original (consistency, not quality against human "
        "references)."
    )
    doc.table(mt, digits=1)
    doc.heading("Zero-shot (leakage) check", 3)
    dropped = provenance.dropped_pairs_text(results_dir)
    if dropped:
        doc.para(dropped)
    doc.table(provenance.leakage_table(results_dir, study.benchmarks))


def warnings_section(doc: Document, manifest: dict, results_dir: Path) -> None:
    """What the config check and the jobs warned about: fallbacks and skipped records that change
    what was measured without stopping the study (each job's lines are in its log, too)."""
    doc.heading("Warnings")
    table = provenance.warnings_table(results_dir, manifest.get("config_warnings"))
    if table.empty:
        doc.para("No job and no config check logged a warning.")
        return
    doc.para(
        f"{len(table)} distinct warning(s) from {table.job.nunique()} job(s) (results/logs/<job>.warnings.json "
        "beside each log; the log holds the context): fallbacks, skipped records and values the config "
        "makes weaker."
    )
    doc.table(table, collapsed=f"all {len(table)} warnings" if len(table) > 20 else None)


def shards_table(doc: Document, manifest: dict) -> None:
    """A report merged from shards (xlir report --shards): where and how each shard ran."""
    shards = manifest.get("shards") or []
    if not shards:
        return
    rows = []
    for shard in shards:
        machine, times, code = shard.get("machine") or {}, shard.get("times") or {}, shard.get("code") or {}
        flags = machine.get("cpu_flags") or {}
        rows.append(
            {
                "shard": shard.get("shard"),
                "kind": shard.get("kind"),
                "test seeds": ", ".join(map(str, shard.get("seeds") or [])) or "-",
                "cpu": f"{machine.get('cpu')} ({machine.get('cores')} cores)",
                "bf16 instructions": "yes" if flags.get("avx512_bf16") or flags.get("amx_bf16") else "no",
                "train precision": ", ".join(sorted(set((shard.get("precision") or {}).get("train", {}).values())))
                or "-",
                "wall s": times.get("wall_s"),
                "code": f"{(code.get('commit') or '?')[:10]}{' (dirty)' if code.get('dirty') else ''}",
            }
        )
    doc.heading("Shards", 3)
    doc.para(
        f"Merged from {len(shards)} shard(s) of study {shards[0].get('study')}, design hash "
        f"{shards[0].get('design_hash')} (every config value that changes a result; xlir.common.design). "
        "Within a test shard every variant ran on one machine at one precision, so the paired comparisons "
        "within a seed share it; across seeds, a difference of machine or precision is part of the seed-level "
        "variance."
    )
    doc.table(pd.DataFrame(rows))


def provenance_section(
    doc: Document, study: Study, manifest: dict, measurements: pd.DataFrame, results_dir: Path
) -> None:
    doc.heading("Provenance")
    default = manifest.get("default_config") or {}
    if default:
        diffs = provenance.config_differences(study.config, default)
        doc.heading("Config values that differ from the embedded default", 3)
        doc.para(
            "Against config/config.yaml with the schema's defaults; model, variant and sampling definitions "
            "are compared per run below."
        )
        doc.table(diffs)
    shards_table(doc, manifest)
    timings = provenance.read_timings(results_dir)
    depths = {}
    if not measurements.empty:
        depths = measurements.groupby("run_dir").depth.agg(lambda d: ", ".join(sorted(set(map(str, d))))).to_dict()
    doc.heading("Runs", 3)
    doc.para(
        f"Seeds in the config: {', '.join(str(s) for s in study.config.get('seeds', []))}. The fingerprint "
        "hashes every config value a run depends on (xlir.report.grid.run_config)."
    )
    doc.table(provenance.run_table(study.runs, study.config, default, timings, depths))
    doc.heading("Models", 3)
    doc.para(
        "Where each base model's weights came from: a hub model's revision as configured "
        "(models.<name>.revision; unpinned: the default branch) and the commit it resolved to."
    )
    doc.table(provenance.model_table(study.config, results_dir))
    doc.heading("Package versions", 3)
    doc.table(pd.DataFrame([provenance.package_versions()]))
    doc.heading("Wall time per rule (Snakemake benchmark: files)", 3)
    if timings.empty:
        doc.para("No benchmark files under results/timing/.")
    else:
        doc.para(
            f"{len(timings)} jobs with a benchmark file. Snakemake writes a job's file when the job ends, so "
            "a `report` row, when present, is the previous run of this rule."
        )
        doc.table(provenance.timing_summary(timings), digits=1)
        doc.table(timings, digits=1, collapsed=f"every job ({len(timings)})")


def method_section(doc: Document, comparisons: pd.DataFrame, study: Study) -> None:
    doc.heading("Statistical method")
    first = comparisons.iloc[0] if not comparisons.empty else None
    doc.bullets(
        [
            "Pairing: the same query (qid, query language, candidate language) in both runs; queries one run "
            "lacks are left out (column `unmatched` of comparisons.csv counts them).",
            "Statistic: the setting's headline number, i.e. the mean over the queries of each language pair, then "
            "the unweighted mean over pairs (macro average).",
            "Seeds: the per-query differences stay per seed (treatment seed s against control seed s; against "
            "the untrained model, each treatment seed against its one run; arms with different seed sets are "
            "compared on the seeds they share and the row says which were left out).",
            "With two or more seeds (column `inference` 'recipes (n seeds)'): Δ is the macro average of the "
            "seed-averaged differences; its variance is the variance of the per-seed macro Δ over seeds divided "
            "by the number of seeds plus the question-id variance of Δ (delta method, question ids resampled "
            "together across language pairs); the interval is Δ ± t × se and the p-value a two-sided t-test, "
            "with seeds - 1 degrees of freedom (the seeds are the replicates of a recipe). A two-level "
            "percentile bootstrap (seeds, then question ids"
            + (f", {int(first['bootstrap_samples'])} resamples" if first is not None else "")
            + ") is listed beside it (`boot_ci_low`, `boot_ci_high`); with few seeds it is too narrow, so it is "
            "not the reported interval.",
            "With one seed (column `inference` 'checkpoints (1 seed)'): the comparison is between two "
            "checkpoints, not two recipes. Percentile bootstrap over question ids (one draw shared by every "
            "language pair) and the paired randomisation test flipping the sign of all of a question id's "
            "differences together.",
            f"Multiple testing: Holm's step-down correction across the rows of one table (column `holm_family`: "
            f"benchmark, family, subset, metric; `family_size` rows); significant when Holm p < {study.alpha:g}. "
            "The randomisation test's sign vectors R are raised with the family size m so that the smallest "
            "attainable Holm p, m / (R + 1), is at most alpha / 10"
            + (
                f" (R = {int(comparisons.permutations.max())} here)"
                if first is not None and comparisons.permutations.max() > 0
                else ""
            )
            + "; the t-test's p-value is continuous. `p_holm_floor` is the smallest Holm-adjusted p a row can "
            "reach; the verdict warns when it is above alpha / 10.",
            "Outcomes: better or worse (the rules above), equivalent when the Holm-adjusted interval lies inside "
            "± the minimum effect (two one-sided tests at half the row's Holm level, decided on the printed "
            "interval), inconclusive otherwise. The research question (C5) is supported only when a layer-wise "
            "variant beats every comparator (a learning-rate profile: uniform and its mean-lr-matched control) and "
            "no other variant is worse, mixed or inconclusive; not supported only with equivalence.",
            "Power (comparisons.csv `mde`, `seeds_to_detect`, `seeds_to_equivalence`; `xlir plan-seeds`): from "
            "the sd of the per-seed Δ and the question variance, the difference the t-test (seeds - 1 df) finds "
            "with the report's power at alpha / Holm family size (Holm's strictest step), and the seeds that would "
            "detect the minimum effect or establish equivalence within it (question variance held fixed).",
            f"Random numbers: numpy PCG64 seeded from report.seed ({study.report_cfg['seed']}) and the "
            "comparison's name, so every number is reproducible.",
        ]
    )


# ------------------------------------------------------------------ entry point
def analysis_section(doc: Document, study: Study, measurements: pd.DataFrame, figures_dir: Path) -> None:
    """Where each variant changes the network (rule analyze; xlir.analysis): per benchmark with a
    probe set, drift (linear CKA with the base model), cross-lingual alignment and update size by
    layer, seeds as bands, and a generated paragraph relating them to the retrieval deltas."""
    from xlir.analysis.figures import analysis_figures, analysis_paragraph, analysis_runs, load_analyses

    benchmarks = [
        b
        for b in study.benchmarks
        if any(Path(r["dir"], "layers.tsv").is_file() for r in analysis_runs(study.manifest["runs"], [b]))
    ]
    if not benchmarks:
        return
    doc.heading("Where the network changes (per-layer analysis)")
    doc.para(
        "Each fine-tuned run and the base model encode a fixed probe set of parallel questions (rule probe_set: "
        "question ids present in every language, drawn with a recorded seed), keeping every layer's mean-pooled "
        "states (rule analyze). Drift is the linear CKA between the run's and the base model's states (1 = "
        "unchanged); alignment is the accuracy of retrieving a question's translation among the probe questions "
        "of the other language, averaged over language pairs; update size is ||ΔW||_F / ||W||_F per layer "
        "(LoRA: the merged update). Bands span the seeds (min to max)."
    )
    for benchmark in benchmarks:
        runs = [r for r in analysis_runs(study.manifest["runs"], [benchmark]) if Path(r["dir"], "layers.tsv").is_file()]
        names = analysis_figures(runs, figures_dir, prefix=f"{benchmark}_")
        captions = (
            "drift (CKA with the base model) by layer",
            "cross-lingual alignment by layer, base model dashed",
            "relative weight update by layer",
        )
        for name, caption in zip(names, captions):
            doc.figure(name, f"{benchmark}: {caption}")
        layers, updates = load_analyses(runs)
        metric = study.headline_metric(benchmark)
        text = analysis_paragraph(
            layers,
            measurements[measurements.benchmark == benchmark],
            updates,
            metric=metric,
            metric_name=metric_label(metric),
        )
        for paragraph in text.split("\n\n"):
            if paragraph.strip():
                doc.para(paragraph)


@dataclass(frozen=True)
class ReportFiles:
    """What rule `report` writes. The HTML and Markdown documents link `figures/...`, so the
    figures folder must sit beside them."""

    html: Path
    markdown: Path
    verdict: Path
    claims: Path
    figures: Path

    @classmethod
    def in_folder(cls, folder: str | Path) -> ReportFiles:
        folder = Path(folder)
        return cls(
            folder / "index.html", folder / "index.md", folder / "verdict.md", folder / "claims.csv", folder / "figures"
        )

    def check(self) -> None:
        for document in (self.html, self.markdown):
            if Path(document).parent != Path(self.figures).parent or Path(self.figures).name != "figures":
                raise ValueError(
                    f"report: {document} links figures/..., so the figures folder must be "
                    f"{Path(document).parent / 'figures'}, not {self.figures}"
                )


def build_report(
    manifest: dict, out: str | Path | ReportFiles, metrics_csv: str | Path, comparisons_csv: str | Path
) -> None:
    out = out if isinstance(out, ReportFiles) else ReportFiles.in_folder(out)
    out.check()
    results_dir = Path(manifest.get("results_dir", "results"))
    study = Study(manifest)
    measurements = read_measurements(metrics_csv)
    comparisons = read_comparisons(comparisons_csv)
    sizes = provenance.model_sizes(study.runs)
    claims = claims_table(comparisons, study, sizes)
    with atomic_dir(out.figures) as figures_dir:
        doc = Document(figures_dir)
        doc.heading(TITLE, 1)
        doc.para(
            f"Generated by rule `report` (`xlir report`) from {len(study.runs)} runs x {len(study.benchmarks)} "
            f"benchmark(s): {len(measurements)} measurements (metrics.csv) and {len(comparisons)} paired "
            "comparisons (comparisons.csv). No number here is written by hand."
        )
        answer = glance_section(doc, study, comparisons, claims)
        verdict = answer + verdict_section(doc, study, comparisons, claims)
        for benchmark in study.benchmarks:
            benchmark_section(doc, study, measurements, comparisons, results_dir, figures_dir, benchmark)
        if len(sizes) > 1:
            doc.heading("Model size")
            for benchmark in study.benchmarks:
                metric = study.headline_metric(benchmark)
                doc.figure(
                    figures.model_size(measurements, sizes, benchmark, metric, study, figures_dir),
                    f"{benchmark}: {metric_label(metric)} against model size",
                )
        analysis_section(doc, study, measurements, figures_dir)
        training_section(doc, study, figures_dir)
        data_section(doc, study, manifest, results_dir)
        warnings_section(doc, manifest, results_dir)
        provenance_section(doc, study, manifest, measurements, results_dir)
        method_section(doc, comparisons, study)
    with atomic_open(out.claims) as handle:
        claims.to_csv(handle, index=False)
    with atomic_open(out.verdict) as handle:
        handle.write(
            "# Verdict\n\n"
            + "\n".join(verdict)
            + "\n\n## Claims\n\n"
            + md_table(claims[["claim", "statement", "benchmark", "model", "setting", "verdict", "evidence"]])
        )
    with atomic_open(out.markdown) as handle:
        handle.write(doc.render_markdown())
    with atomic_open(out.html) as handle:
        handle.write(doc.render_html(TITLE))
    log.info(
        "report: %d measurements, %d comparisons, %d claims -> %s",
        len(measurements),
        len(comparisons),
        len(claims),
        out.html,
    )
