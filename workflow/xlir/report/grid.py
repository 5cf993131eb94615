"""The study's grid as the report sees it: runs, metric names, samplings, variants,
seen and unseen languages, and the config fingerprint of a run.

The manifest (built by workflow/rules/report.smk) is
`{config, default_config, runs: [{model, variant, sampling, seed, dir}], benchmarks,
mt_languages, results_dir}`; the zero-shot model is variant `zeroshot` (sampling
`none`, seed 0) and BM25 is model `bm25`, variant `lexical`."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from xlir.common.config_files import with_defaults
from xlir.common.io import InputError, fingerprint
from xlir.study import parse_variants
from xlir.train.variants import VariantSpec

SETTINGS = ("monolingual", "cross-lingual", "multilingual")
UNTRAINED = ("zeroshot", "lexical")
KEY_COLUMNS = ("setting", "query_lang", "cand_lang", "qid")
#: per-query column -> the name of its aggregate in metrics.json
AGGREGATE_NAME = {"ap": "map"}
LOWER_IS_BETTER = {"rank_distance"}
PARALLEL_KINDS = {"demo", "lareqa"}  # question ids shared by the parallel questions of every language


def aggregate_name(column: str) -> str:
    return AGGREGATE_NAME.get(column, column)


def metric_label(metric: str) -> str:
    """`map` -> mAP, `recall_10` -> R@10, `ndcg_cut_10` -> nDCG@10, `rank_distance` -> rank distance."""
    metric = aggregate_name(metric)
    if metric == "map":
        return "mAP"
    if match := re.fullmatch(r"recall_(\d+)", metric):
        return f"R@{match[1]}"
    if match := re.fullmatch(r"ndcg_cut_(\d+)", metric):
        return f"nDCG@{match[1]}"
    return metric.replace("_", " ")


def higher_is_better(metric: str) -> bool:
    return aggregate_name(metric) not in LOWER_IS_BETTER


def metric_order(metric: str) -> tuple[int, int, str]:
    metric = aggregate_name(metric)
    for rank, prefix in enumerate(("map", "ndcg_cut_", "recall_", "rank_distance")):
        if metric.startswith(prefix):
            digits = re.sub(r"\D", "", metric)
            return rank, int(digits) if digits else 0, metric
    return 9, 0, metric


@dataclass(frozen=True)
class Run:
    model: str
    variant: str
    sampling: str
    seed: int
    dir: str

    @property
    def trained(self) -> bool:
        return self.variant not in UNTRAINED

    @property
    def label(self) -> str:
        if self.variant == "lexical":
            return "BM25"
        if self.variant == "zeroshot":
            return f"{self.model} zero-shot"
        return f"{self.model} {self.variant}/{self.sampling} seed {self.seed}"


def runs_of(manifest: dict) -> list[Run]:
    try:
        return [Run(r["model"], r["variant"], r["sampling"], int(r["seed"]), r["dir"]) for r in manifest["runs"]]
    except KeyError as error:
        raise InputError(
            f"report manifest: every run needs model, variant, sampling, seed and dir; missing {error}"
        ) from error


def group_label(variant: str, sampling: str) -> str:
    if variant == "lexical":
        return "BM25"
    if variant == "zeroshot":
        return "zero-shot"
    return f"{variant}/{sampling}"


class Study:
    """Config-derived facts the statistics and the verdict need."""

    def __init__(self, manifest: dict) -> None:
        self.manifest = manifest
        self.config: dict = manifest["config"]
        grid = with_defaults(self.config.get("grid"), "grid")
        self.baseline = grid["baseline_variant"]
        self.main_sampling = grid["main_sampling"]
        #: report settings over config/schema.yaml's defaults (a manifest's config may be partial)
        self.report_cfg: dict = with_defaults(self.config.get("report"), "report")
        self.alpha = float(self.report_cfg["alpha"])
        self.training_languages = list(self.config.get("training", {}).get("languages", []))
        self.benchmarks = list(manifest["benchmarks"])
        self.runs = runs_of(manifest)
        self._specs: dict[str, VariantSpec] | None = None

    # ---------------------------------------------------------------- benchmarks
    def benchmark_spec(self, benchmark: str) -> dict:
        try:
            return self.config["benchmarks"][benchmark]
        except KeyError as error:
            raise InputError(f"config key benchmarks.{benchmark} is missing") from error

    def parallel(self, benchmark: str) -> bool:
        """Whether question ids link parallel questions across languages (the resampling unit)."""
        return self.benchmark_spec(benchmark).get("kind") in PARALLEL_KINDS

    def unseen_languages(self, benchmark: str) -> list[str]:
        return [
            lang for lang in self.benchmark_spec(benchmark).get("languages", []) if lang not in self.training_languages
        ]

    def has_seen_and_unseen(self, benchmark: str) -> bool:
        unseen = self.unseen_languages(benchmark)
        return bool(unseen) and len(unseen) < len(self.benchmark_spec(benchmark).get("languages", []))

    def headline_metric(self, benchmark: str, available: list[str] | None = None) -> str:
        """The metric a benchmark's verdict rests on: `report.headline_metric.{benchmark}`,
        else nDCG@10 for MIRACL and mAP otherwise (the first nDCG@k when a MIRACL run has another cutoff)."""
        chosen = (self.report_cfg.get("headline_metric") or {}).get(benchmark)
        if chosen:
            chosen = aggregate_name(chosen)
            if available is not None and chosen not in available:
                raise InputError(
                    f"config key report.headline_metric.{benchmark}: {chosen!r} is not a metric of "
                    f"this benchmark (have {', '.join(sorted(available))})"
                )
            return chosen
        if self.benchmark_spec(benchmark).get("kind") == "miracl":
            ndcg = sorted((m for m in (available or ["ndcg_cut_10"]) if m.startswith("ndcg_cut_")), key=metric_order)
            if ndcg:
                return ndcg[0]
        return "map"

    # ---------------------------------------------------------------- samplings
    def sampling_alpha(self, sampling: str) -> float | None:
        spec = self.config.get("samplings", {}).get(sampling)
        return None if spec is None else float(spec["alpha"])

    def sampling_kind(self, sampling: str) -> str:
        alpha = self.sampling_alpha(sampling)
        if alpha is None:
            return sampling
        if alpha == 1.0:
            return "X-X"
        if alpha == 0.0:
            return "X-Y"
        return "hybrid"

    def hybrid_sampling(self) -> str | None:
        """The main sampling when it is hybrid (0 < alpha < 1), else the first hybrid one."""
        samplings = list(self.config.get("samplings", {}))
        if self.main_sampling in samplings and self.sampling_kind(self.main_sampling) == "hybrid":
            return self.main_sampling
        return next((s for s in samplings if self.sampling_kind(s) == "hybrid"), None)

    def samplings_of_kind(self, kind: str) -> list[str]:
        return [s for s in self.config.get("samplings", {}) if self.sampling_kind(s) == kind]

    # ---------------------------------------------------------------- variants
    def variant_spec(self, variant: str) -> VariantSpec | None:
        """The parsed spec of a configured variant (`xlir.study.parse_variants`: the one parser,
        matched controls resolved, every variant parsed once); None for the untrained runs
        (zero-shot, BM25)."""
        if self._specs is None:
            self._specs = parse_variants(self.config.get("variants", {}))
        return self._specs.get(variant)

    def is_layerwise(self, variant: str) -> bool:
        """Per-layer learning rates (decay, grow, freeze) or per-layer LoRA ranks (linear, exp)."""
        spec = self.variant_spec(variant)
        if spec is None:
            return False
        if spec.kind in ("decay", "grow", "freeze"):
            return True
        return spec.is_lora and spec.profile != "uniform"

    def matched_uniform_lora(self, variant: str) -> str | None:
        """For a layer-wise LoRA variant: the uniform-rank LoRA variant of the same budget and
        step size (same `rank`, and the same LoRA scaling at that rank, `top_rank_scale`: an
        rsLoRA profile with alpha 5.657 at rank 8 scales like proportional alpha 16, 2.0), the
        like-for-like baseline of a rank profile."""
        spec = self.variant_spec(variant)
        if spec is None or not spec.is_lora or spec.profile == "uniform":
            return None
        for name in self.config.get("variants", {}):
            other = self.variant_spec(name)
            if (
                other.is_lora
                and other.profile == "uniform"
                and other.rank == spec.rank
                and math.isclose(top_rank_scale(other), top_rank_scale(spec), rel_tol=1e-3)
            ):
                return name
        return None

    def mean_lr_controls(self, variant: str) -> list[str]:
        """The uniform variants that train at `variant`'s parameter-weighted mean lr multiplier
        (`match_mean_lr_of: <variant>`): the control that separates a profile's shape from its
        overall learning rate."""
        return [
            name
            for name in self.config.get("variants", {})
            if self.variant_spec(name).kind == "uniform" and self.variant_spec(name).match_mean_lr_of == variant
        ]

    def step_size_controls(self, variant: str) -> list[str]:
        """For a layer-wise LoRA variant: the LoRA variants with the same rank profile (`profile`,
        `rank`, `min_rank`, `direction`) but another `alpha_mode` (unset = proportional), the pair
        that separates the rank profile from the step size. Each pair is listed once, under its
        treatment: the proportional variant (else the first name in sorted order)."""
        spec = self.variant_spec(variant)
        if spec is None or not spec.is_lora or spec.profile == "uniform":
            return []
        controls = []
        for name in self.config.get("variants", {}):
            other = self.variant_spec(name)
            if name == variant or not other.is_lora or _rank_profile(other) != _rank_profile(spec):
                continue
            mode, other_mode = _alpha_mode(spec), _alpha_mode(other)
            if mode == other_mode:
                continue
            leads = mode == "proportional" or (other_mode != "proportional" and variant < name)
            if leads:
                controls.append(name)
        return controls

    def variant_note(self, variant: str) -> str:
        if variant == self.baseline:
            return "uniform (baseline)"
        if self.is_layerwise(variant):
            return "layer-wise"
        spec = self.variant_spec(variant)
        return "uniform LoRA" if spec is not None and spec.is_lora else "uniform"


def _rank_profile(spec: VariantSpec) -> tuple:
    return spec.profile, spec.rank, spec.min_rank, spec.direction


def _alpha_mode(spec: VariantSpec) -> str:
    return spec.alpha_mode or "proportional"


def top_rank_scale(spec: VariantSpec) -> float:
    """The LoRA scaling (alpha_l / r_l, or alpha / sqrt(r) with rsLoRA) of a block at the variant's
    top rank `rank` (`xlir.train.scaling.lora_config`)."""
    if _alpha_mode(spec) == "rslora":
        return spec.alpha / math.sqrt(spec.rank)
    return spec.alpha / spec.rank


def run_config(config: dict, run: Run) -> dict[str, Any]:
    """The config values a run's outputs depend on (hashed into its fingerprint)."""
    evaluation = config.get("evaluation", {})
    if run.variant == "lexical":
        return {
            "retriever": "bm25",
            "evaluation": {k: evaluation.get(k) for k in ("bm25_depth", "bm25_k1", "bm25_b", "recall_k", "trec_depth")},
        }
    model = config.get("models", {}).get(run.model, {})
    shared = {"model": model, "evaluation": {k: evaluation.get(k) for k in ("depth", "recall_k", "trec_depth")}}
    if run.variant == "zeroshot":
        return shared
    return {
        **shared,
        "variant": config.get("variants", {}).get(run.variant),
        "sampling": config.get("samplings", {}).get(run.sampling),
        "seed": run.seed,
        "training": config.get("training"),
        "qa": config.get("qa"),
        "translation": {
            k: config.get("translation", {}).get(k) for k in ("backend", "languages", "hf", "modes", "references")
        },
    }


def run_fingerprint(config: dict, run: Run) -> str:
    return fingerprint(run_config(config, run))
