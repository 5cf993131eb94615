"""The study a config describes, parsed once at the edge: every variant spec (mean-lr-matched
controls resolved), the learning-rate sweep and its runs, the seeds each run trains with, the
grid of fine-tuning cells, and the cutoffs and depths of each benchmark.

Snakemake (`workflow/rules/common.smk`), the planners (`xlir plan-memory`, `xlir plan-time`) and
the checks read this one object, so a fact of the study has one owner. The config it is built
from is the validated one (schema defaults filled, `xlir.common.config_files`); `problems`
lists what makes the study impossible (each naming its config key), and
`xlir.config_checks.check_config` reports them with every other problem at once, before any
job runs. `StudyConfig.from_config` assumes those checks passed.

A top-level module, like `xlir.config_checks`: it reads what several stages know (variants and
the lr sweep from training, benchmark kinds from evaluation)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from xlir.train.lr_sweep import SweepConfig, sweep_runs
from xlir.train.variants import VariantSpec, parse_variant

#: the dev split of the training source, evaluated like a benchmark (never an evaluation benchmark)
DEV = "dev"
#: MIRACL's official measures (nDCG@10, Recall@100) and the ranking depth of its 2CR runs
MIRACL_CUTOFFS = {"recall_k": [100], "ndcg_k": [10]}
MIRACL_DEPTH = 100
#: variant kinds with a per-layer lr profile, which a mean-lr-matched control can follow
PROFILE_KINDS = ("decay", "grow")


def parse_variants(variants: Mapping[str, Mapping]) -> dict[str, VariantSpec]:
    """Every variant parsed, each uniform control carrying its decay / grow target's config
    (`matched`), so its train job can weight the profile's multipliers by the model's parameters."""
    specs = {name: parse_variant({"name": name, **(spec or {})}) for name, spec in variants.items()}
    for name, spec in list(specs.items()):
        if spec.match_mean_lr_of is not None:
            specs[name] = parse_variant({**spec.to_dict(), "matched": specs[spec.match_mean_lr_of].to_dict()})
    return specs


def grid_cells(config: Mapping) -> list[tuple[str, str, str, int]]:
    """(model, variant, sampling, seed) of every fine-tuning run: the full product with
    grid.full_product, else the main sampling for every variant and every sampling for the
    baseline variant."""
    grid = config["grid"]
    cells = []
    for model in config["models"]:
        for seed in config["seeds"]:
            for variant in config["variants"]:
                for sampling in config["samplings"]:
                    if grid["full_product"] or sampling == grid["main_sampling"] or variant == grid["baseline_variant"]:
                        cells.append((model, variant, sampling, int(seed)))
    return cells


@dataclass(frozen=True)
class StudyConfig:
    """One study's config, parsed (see the module docstring). `config` is the validated config."""

    config: Mapping
    #: every configured variant, parsed (matched controls carry their target's spec)
    variant_specs: dict[str, VariantSpec]
    lr_sweep: SweepConfig
    #: sweep run name -> (variant, lr): every swept variant once per grid lr (none with selection_from)
    sweep_runs: dict[str, tuple[str, float]]

    @classmethod
    def from_config(cls, config: Mapping) -> StudyConfig:
        specs = parse_variants(config["variants"])
        sweep = SweepConfig.from_config(config["training"].get("lr_sweep"))
        swept = {v: specs[v] for v in _sweep_variants(specs, sweep)}
        runs = {} if sweep.selection_from else sweep_runs(swept, sweep)
        return cls(config=config, variant_specs=specs, lr_sweep=sweep, sweep_runs=runs)

    # ---------------------------------------------------------------- names
    @property
    def models(self) -> list[str]:
        return list(self.config["models"])

    @property
    def variants(self) -> list[str]:
        return list(self.config["variants"])

    @property
    def samplings(self) -> list[str]:
        return list(self.config["samplings"])

    @property
    def seeds(self) -> list[int]:
        return [int(s) for s in self.config["seeds"]]

    @property
    def benchmarks(self) -> list[str]:
        return list(self.config["benchmarks"])

    @property
    def dev_split(self) -> bool:
        """Whether the training source keeps a dev split (qa.dev.fraction > 0)."""
        return self.config["qa"]["dev"]["fraction"] > 0

    # ---------------------------------------------------------------- the lr sweep
    @property
    def follower_variants(self) -> list[str]:
        """The controls that take their target's selection (match_mean_lr_of a swept variant)."""
        return _followers(self.variant_specs, self.lr_sweep)

    @property
    def sweep_variants(self) -> list[str]:
        """The variants that select their own lr on the dev split."""
        return _sweep_variants(self.variant_specs, self.lr_sweep)

    @property
    def swept_variants(self) -> list[str]:
        """Every variant whose test runs train at a selected lr (swept ones and their followers)."""
        chosen = set(self.sweep_variants) | set(self.follower_variants)
        return [v for v in self.variants if v in chosen]

    @property
    def selection_seeds(self) -> list[int]:
        return self.lr_sweep.selection_seeds(self.seeds)

    @property
    def seed_overlap(self) -> bool:
        return any(s in self.seeds for s in self.selection_seeds)

    @property
    def linked_seeds(self) -> list[int]:
        """Test seeds whose swept runs are the selected sweep runs (allow_seed_overlap, no selection_from)."""
        if self.lr_sweep.selection_from:
            return []
        return [s for s in self.seeds if s in self.selection_seeds]

    @property
    def selected_lr_seeds(self) -> list[int]:
        """Test seeds that train once at the selected lr."""
        return [s for s in self.seeds if s not in self.linked_seeds]

    @property
    def train_specs(self) -> dict[str, VariantSpec]:
        """The specs of what rule `train` trains: configured variants and sweep runs, by name."""
        runs = {
            run: parse_variant({**self.variant_specs[v].to_dict(), "name": run})
            for run, (v, _) in self.sweep_runs.items()
        }
        return {**self.variant_specs, **runs}

    @property
    def trained_variants(self) -> list[str]:
        """The names rule `train` trains: the variants not swept and every sweep run."""
        return [v for v in self.variants if v not in self.swept_variants] + list(self.sweep_runs)

    # ---------------------------------------------------------------- the grid
    def grid_cells(self) -> list[tuple[str, str, str, int]]:
        return grid_cells(self.config)

    def sweep_cells(self) -> list[tuple[str, str, str]]:
        """(model, variant, sampling) of every grid cell whose variant trains at a selected lr, in grid order."""
        swept, cells = set(self.swept_variants), []
        for model, variant, sampling, _ in self.grid_cells():
            if variant in swept and (model, variant, sampling) not in cells:
                cells.append((model, variant, sampling))
        return cells

    def followed_variant(self, variant: str) -> str | None:
        """The variant whose lr selection a mean-lr-matched control follows (None: not a follower)."""
        return self.variant_specs[variant].match_mean_lr_of if variant in self.follower_variants else None

    # ---------------------------------------------------------------- models and benchmarks
    def model(self, name: str) -> dict:
        """A model's config (the schema fills every key's default)."""
        return dict(self.config["models"][name])

    def benchmark(self, name: str) -> dict:
        """A benchmark's config; the dev split's is built here (its languages: the training languages)."""
        if name == DEV:
            return {"kind": "dev", "languages": list(self.config["training"]["languages"])}
        return dict(self.config["benchmarks"][name])

    def cutoffs(self, benchmark: str) -> dict[str, list[int]]:
        """Recall@k and nDCG@k cutoffs: the benchmark's own, else its kind's (MIRACL: nDCG@10, R@100;
        otherwise evaluation.recall_k and no nDCG)."""
        spec = self.benchmark(benchmark)
        if spec["kind"] == "miracl":
            defaults = MIRACL_CUTOFFS
        else:
            defaults = {"recall_k": list(self.config["evaluation"]["recall_k"]), "ndcg_k": []}
        return {key: list(spec.get(key, value)) for key, value in defaults.items()}

    def search_depth(self, benchmark: str, retriever: str) -> int | None:
        """How many candidates a search ranks (None: the whole pool): the benchmark's depth, else
        evaluation.depth (dense) or bm25_depth; MIRACL ranks its top 100 (corpora of millions)."""
        spec, evaluation = self.benchmark(benchmark), self.config["evaluation"]
        depth = spec.get("depth", evaluation["bm25_depth"] if retriever == "bm25" else evaluation["depth"])
        if spec["kind"] == "miracl" and depth is None:
            depth = MIRACL_DEPTH
        return int(depth) if depth else None


def _followers(specs: Mapping[str, VariantSpec], sweep: SweepConfig) -> list[str]:
    return [
        v
        for v, spec in specs.items()
        if spec.match_mean_lr_of and spec.match_mean_lr_of in specs and sweep.grid(specs[spec.match_mean_lr_of])
    ]


def _sweep_variants(specs: Mapping[str, VariantSpec], sweep: SweepConfig) -> list[str]:
    """The variants that select their own lr: swept, and not a follower of another's selection."""
    followers = _followers(specs, sweep)
    return [v for v, spec in specs.items() if sweep.grid(spec) and v not in followers]


def problems(config: Mapping) -> list[tuple[str, str]]:
    """(config key, what is wrong) for everything that makes the study impossible: checked after
    the schema and the variants parse (`xlir.config_checks`), before `StudyConfig.from_config`.
    The training source's problems come whatever the variants, grid and sweep hold."""
    return _grid_and_sweep_problems(config) + _source_problems(config)


def _grid_and_sweep_problems(config: Mapping) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    variants = config["variants"]
    specs = {}
    for name, spec in variants.items():
        try:
            specs[name] = parse_variant({"name": name, **(spec or {})})
        except ValueError:
            pass  # the variant check names it
    profiles = [n for n, s in specs.items() if s.kind in PROFILE_KINDS]
    for name, spec in specs.items():
        target = spec.match_mean_lr_of
        if target is not None and (target not in specs or specs[target].kind not in PROFILE_KINDS):
            found.append(
                (
                    f"variants.{name}.match_mean_lr_of",
                    f"'{target}' is not a decay or grow variant of this config ({', '.join(profiles) or 'none'})",
                )
            )
    grid = config["grid"]
    if grid["baseline_variant"] not in variants:
        found.append(
            ("grid.baseline_variant", f"'{grid['baseline_variant']}' is not a variant ({', '.join(variants)})")
        )
    if grid["main_sampling"] not in config["samplings"]:
        found.append(
            (
                "grid.main_sampling",
                f"'{grid['main_sampling']}' is not a sampling ({', '.join(config['samplings'])})",
            )
        )
    try:
        sweep = SweepConfig.from_config(config["training"].get("lr_sweep"))
    except ValueError as error:
        found.append(("training.lr_sweep", str(error).removeprefix("config key training.lr_sweep")))
        return found
    if found or len(specs) < len(variants):
        return found  # the sweep's checks below need every variant and its target
    study = StudyConfig.from_config(config)
    for run, (variant, _) in study.sweep_runs.items():
        if run in variants:
            found.append(
                (
                    f"variants.{run}",
                    f"the name is taken by the lr sweep of variant '{variant}' (training.lr_sweep); rename the variant",
                )
            )
    if sweep.active and not study.dev_split:
        found.append(
            (
                "training.lr_sweep",
                "a learning-rate sweep selects on the dev split, but qa.dev.fraction "
                "is 0 (no dev split); set qa.dev.fraction > 0 or empty the sweep's grids",
            )
        )
    cells = study.sweep_cells()
    for model, variant, sampling in cells:
        target = study.followed_variant(variant)
        if target is not None and (model, target, sampling) not in cells:
            found.append(
                (
                    f"variants.{variant}.match_mean_lr_of",
                    f"with training.lr_sweep the control takes the lr '{target}' selects, but '{target}' is "
                    f"not swept under model '{model}' and sampling '{sampling}' (grid)",
                )
            )
    return found


def _source_problems(config: Mapping) -> list[tuple[str, str]]:
    """The evaluation benchmarks are never a training source in the same run, and each source kind
    has the keys it reads."""
    found = []
    source = config["qa"]["source"]
    kind, dataset = source["kind"], source.get("dataset")
    for name, spec in config["benchmarks"].items():
        if kind == "lareqa" and spec["kind"] == "lareqa" and spec.get("dataset") == dataset:
            found.append(
                (
                    "qa.source",
                    f"the training source {dataset} is also evaluation benchmark '{name}' "
                    f"(benchmarks.{name}.dataset); a zero-shot study trains on one and "
                    "evaluates on the other",
                )
            )
        if kind == "squad" and dataset in ("squad-v1.1-dev", "squad-v2.0-dev") and spec.get("dataset") == "xquad-r":
            found.append(
                (
                    "qa.source.dataset",
                    f"{dataset} holds XQuAD's source paragraphs (XQuAD is translated "
                    f"from SQuAD v1.1 dev), and benchmarks.{name} is XQuAD-R; train on "
                    "a SQuAD train split instead",
                )
            )
    if kind == "jsonl" and not source.get("path"):
        found.append(("qa.source.path", "kind 'jsonl' needs the path of its file"))
    if kind in ("lareqa", "squad") and not source.get("path") and not source.get("dataset"):
        found.append(("qa.source.dataset", f"kind '{kind}' needs a dataset (or qa.source.path)"))
    if kind == "lareqa" and not source.get("languages"):
        found.append(("qa.source.languages", "kind 'lareqa' needs the languages to read"))
    if DEV in config["benchmarks"]:
        found.append((f"benchmarks.{DEV}", f"the name '{DEV}' is the training source's dev split"))
    return found
