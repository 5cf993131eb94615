# Everything the rule files share, and nothing else (path builders, parameter serialisation and
# the functions the rules call; snakemake --lint wants rules and functions in separate files).
# The config is checked and parsed once, when the workflow loads: xlir.config_checks reports
# every problem at once, naming its config key (the schema's checks, the study's, the file
# system's and the installed tools'), and xlir.study.StudyConfig holds what the config says about
# the study (variant specs, the lr sweep, seeds, the grid, benchmark cutoffs) for every rule.
import os
import re
import json
import shlex
import sys

import yaml

from xlir.config_checks import check_config as _check_config
from xlir.train.plan_memory import job_resources as _planned_resources
from xlir.train.options import OPTION_KEYS as _OPTION_KEYS, TrainOptions as _TrainOptions
from xlir.train.lr_sweep import training_overrides as _training_overrides
from xlir.study import DEV as STUDY_DEV, StudyConfig
from xlir.common.design import design_config as _design_config

RESULTS = "results"
#: every config value that changes a result (xlir.common.design): shards of one study share it
DESIGN_CONFIG = _design_config(config)
RESOURCES = "resources"
#: SHA-256 of every MIRACL file, recorded at its first fetch and checked at every later one
MIRACL_PINS = f"{RESOURCES}/checksums/miracl.json"


def _deploys_with_conda():
    """Jobs run in conda environments (--sdm conda): Apertium comes with the job's environment."""
    try:
        return "conda" in {str(method) for method in workflow.deployment_settings.deployment_method}
    except AttributeError:
        return False


#: what the config makes weaker but does not stop (printed now; the report lists them)
CONFIG_WARNINGS = _check_config(config, os.getcwd(), conda=_deploys_with_conda())
for _warning in CONFIG_WARNINGS:
    print(f"xlir config warning: {_warning}", file=sys.stderr)


#: the study the config describes, parsed once at the edge (xlir.study): variant specs with their
#: matched controls resolved, the lr sweep and its runs, seeds, the grid, benchmark cutoffs
STUDY = StudyConfig.from_config(config)
MODELS = STUDY.models
VARIANTS = STUDY.variants
SAMPLINGS = STUDY.samplings
SEEDS = STUDY.seeds
BENCHMARKS = STUDY.benchmarks
VARIANT_SPECS = STUDY.variant_specs
# The learning-rate sweep (training.lr_sweep; xlir.train.lr_sweep): every swept variant trains
# once per grid lr as run `<variant>.lr<lr>`, on the selection seeds, evaluated on the dev split
# only; rule select_lr picks the lr and every test seed trains once at it (rule
# train_at_selected_lr). A mean-lr-matched control is not swept: it follows its target's selection.
# With selection_from, rule import_selection reads an earlier selection shard's choice instead.
LR_SWEEP = STUDY.lr_sweep
FOLLOWER_VARIANTS = STUDY.follower_variants
SWEEP_VARIANTS = STUDY.sweep_variants
SWEPT_VARIANTS = STUDY.swept_variants
SWEEP_RUNS = STUDY.sweep_runs  # {sweep run: (variant, lr)}
# the selection seeds (training.lr_sweep.seeds), disjoint from the test seeds unless
# allow_seed_overlap: then a swept variant's run of a shared seed is its selected sweep run
# (rule link_selected_run); every other test run trains once, at the selected lr
SELECTION_SEEDS = STUDY.selection_seeds
SEED_OVERLAP = STUDY.seed_overlap
LINKED_SEEDS = STUDY.linked_seeds
SELECTED_LR_SEEDS = STUDY.selected_lr_seeds
TRAIN_SPECS = STUDY.train_specs
TRAINED_VARIANTS = STUDY.trained_variants
MT_LANGS = list(config["translation"]["languages"])
TRAIN_LANGS = list(config["training"]["languages"])
# the training languages machine translation fills (where a source pair lacks them)
TRAIN_MT_LANGS = [lang for lang in TRAIN_LANGS if lang in MT_LANGS and lang != "en"]
QA_SOURCE = config["qa"]["source"]
# the dev split of the training source, evaluated like a benchmark (never an evaluation benchmark)
DEV = STUDY_DEV
DEV_SPLIT = STUDY.dev_split
# the training pairs every run learns from: with leakage.drop_overlapping_pairs, those left after
# dropping the pairs that overlap an evaluation text (rule drop_overlapping_pairs)
TRAIN_PAIRS = (f"{RESULTS}/data/train/pairs.zeroshot.jsonl" if config["leakage"]["drop_overlapping_pairs"]
               else f"{RESULTS}/data/train/pairs.jsonl")
# the dev pairs model selection reads, filtered the same way
DEV_PAIRS = (f"{RESULTS}/data/dev/pairs.zeroshot.jsonl" if config["leakage"]["drop_overlapping_pairs"]
             else f"{RESULTS}/data/dev/pairs.jsonl")

def qa_source_path():
    """The source's file or folder: qa.source.path, else the folder rule fetch_qa fills; None
    for the bundled chatterbot corpus and for hub datasets."""
    if QA_SOURCE.get("path"):
        return QA_SOURCE["path"]
    if QA_SOURCE["kind"] in ("lareqa", "squad"):
        return f"{RESOURCES}/qa/{QA_SOURCE['dataset']}"
    return None


def benchmark_spec(benchmark):
    """A benchmark's config; the dev split's is built here (its languages: the training languages)."""
    return STUDY.benchmark(benchmark)


def _alternatives(names):
    """A wildcard constraint matching exactly `names`; none: a pattern that matches nothing (an
    empty constraint would match anything)."""
    names = list(names)
    return "|".join(re.escape(n) for n in names) if names else "(?!)"


def model_cfg(model):
    return STUDY.model(model)


def encode_length(model):
    """Tokens per text when encoding: `encode_max_length`, else `max_length` (also the saved
    models' sentence-transformers max_seq_length)."""
    cfg = model_cfg(model)
    return cfg["encode_max_length"] or cfg["max_length"]


def as_json(value):
    """A JSON string quoted for the shell (structured params stay visible to Snakemake)."""
    return shlex.quote(json.dumps(value, sort_keys=True))


def shell_words(*words):
    """Command-line words built in params, each quoted for the shell (shlex.quote), so no config
    value reaches a rule's shell command unquoted. Words that need no quoting stay as written:
    the params of a config without shell characters (Snakemake's params rerun trigger) are
    what they were before the quoting."""
    return " ".join(shlex.quote(str(word)) for word in words)


def option(flag, value):
    """`--flag value` quoted for the shell, or "" when value is None or empty."""
    return shell_words(flag, value) if value not in (None, "") else ""


def translation_cache(lang):
    """The MT cache of one target language: translation.cache with -{lang} before .sqlite."""
    return config["translation"]["cache"].replace(".sqlite", "") + f"-{lang}.sqlite"


def grid_cells():
    """(model, variant, sampling, seed) of every fine-tuning run."""
    return STUDY.grid_cells()


def run_dir(model, variant, sampling, seed):
    return f"{RESULTS}/runs/{model}/{variant}/{sampling}/seed{seed}"


def evaluated_runs():
    """Every run the report compares: fine-tuned cells, zero-shot baselines, BM25."""
    runs = [run_dir(*cell) for cell in grid_cells()]
    if config["evaluation"]["zeroshot"]:
        runs += [run_dir(model, "zeroshot", "none", 0) for model in MODELS]
    if config["evaluation"]["bm25"]:
        runs.append(run_dir("bm25", "lexical", "none", 0))
    return runs


def model_dir_for(wildcards):
    """The weights a run is evaluated with: the base model for the zero-shot baseline."""
    if wildcards.variant == "zeroshot":
        return f"{RESULTS}/models/{wildcards.model}/base"
    return f"{run_dir(wildcards.model, wildcards.variant, wildcards.sampling, wildcards.seed)}/model"


def benchmark_raw_dir(benchmark):
    """Where a benchmark's files are: built (demo, dev), a folder given in the config, or fetched into resources/."""
    spec = benchmark_spec(benchmark)
    if spec["kind"] in ("demo", "dev"):
        return f"{RESULTS}/benchmarks/{benchmark}/raw"
    if spec.get("folder"):
        return spec["folder"]
    return f"{RESOURCES}/benchmarks/{benchmark}"


def monolingual_only(benchmark):
    """MIRACL has monolingual queries only: no pooled index, no cross-language runs."""
    return "--monolingual-only" if benchmark_spec(benchmark)["kind"] == "miracl" else ""


def cutoffs_words(benchmark, key):
    """A benchmark's recall_k or ndcg_k cutoffs as command-line words."""
    return shell_words(*benchmark_cutoffs(benchmark)[key])


def trec_eval_checks():
    """The trec_eval agreement checks: the zero-shot runs and BM25, on every benchmark."""
    if not config["evaluation"]["verify_trec_eval"]:
        return []
    runs = []
    if config["evaluation"]["zeroshot"]:
        runs += [f"{model}/zeroshot/none/seed0" for model in MODELS]
    if config["evaluation"]["bm25"]:
        runs.append("bm25/lexical/none/seed0")
    return [f"{RESULTS}/checks/trec_eval/{b}/{flat_run(run)}.json" for b in BENCHMARKS for run in runs]


def flat_run(run):
    """A run folder below results/runs as one path component: model+variant+sampling+seedN."""
    return "+".join(run.split(os.sep))


def run_of_flat(flat):
    """The run folder below results/runs of a flat run name (inverse of flat_run)."""
    return os.path.join(*flat.split("+"))


def mt_backend():
    t = config["translation"]
    if t["backend"] == "apertium":
        # modes given in the config override the built-in ones pair by pair
        return {"backend": "apertium", **({"modes": t["modes"]} if t["modes"] else {})}
    return {"backend": "huggingface", **t["hf"]}


def benchmark_cutoffs(benchmark):
    """Recall@k and nDCG@k cutoffs: the benchmark's own, else the kind's (MIRACL: nDCG@10, R@100)."""
    return STUDY.cutoffs(benchmark)


RUN = f"{RESULTS}/runs/{{model}}/{{variant}}/{{sampling}}/seed{{seed}}/{{benchmark}}"
DENSE_CONSTRAINTS = {"model": _alternatives(MODELS), "variant": _alternatives(VARIANTS + list(SWEEP_RUNS) + ["zeroshot"])}


def prepared(benchmark, name):
    """One file of a prepared benchmark (xlir.benchmarks.prepared)."""
    return f"{RESULTS}/benchmarks/{benchmark}/prepared/{name}"


PREPARED_QUESTIONS = prepared("{benchmark}", "questions.jsonl")
PREPARED_CANDIDATES = prepared("{benchmark}", "candidates.jsonl")
PREPARED_QRELS = prepared("{benchmark}", "qrels.tsv")


def depth_options(benchmark, retriever):
    """--depth (ranking depth; none = the whole pool) and --trec-depth for one search."""
    depth = STUDY.search_depth(benchmark, retriever)
    words = ["--depth", depth] if depth else []
    if config["evaluation"]["trec_depth"]:
        words += ["--trec-depth", int(config["evaluation"]["trec_depth"])]
    return shell_words(*words)


# ------------------------------------------------------------------ benchmarks
def demo_mt_inputs(wildcards):
    langs = config["benchmarks"][wildcards.benchmark]["languages"]
    return [f"{RESULTS}/data/mt/{lang}.jsonl" for lang in langs if lang != "en"]


# ------------------------------------------------------------------ training
TRAIN_LOG = f"{RESULTS}/logs/train/{{model}}/{{variant}}/{{sampling}}/seed{{seed}}.log"


def train_options(model):
    """The memory and distribution switches of a model's jobs: `training`, then `models.<model>.training`."""
    t = config["training"]
    merged = {k: t[k] for k in _OPTION_KEYS if k in t}
    merged.update(model_cfg(model).get("training") or {})
    return merged


def training_params(model, variant=None):
    """What `xlir train --training` gets. Switches at their defaults are left out, so the default
    config's params (and Snakemake's params rerun trigger) are what they were before the switches.
    A sweep run trains at its grid lr (`lr`, or `lora_lr` for LoRA)."""
    t = config["training"]
    keys = ("lr", "weight_decay", "temperature", "warmup_ratio", "max_grad_norm", "freeze_word_embeddings")
    params = {k: t[k] for k in keys}
    if t.get("lora_lr") is not None:  # only when set: the other runs' params stay as they were
        params["lora_lr"] = t["lora_lr"]
    defaults = _TrainOptions().to_dict()
    # checkpoint_every changes no result (resume is bit-identical): a resource of rule train, not a param
    params.update({k: v for k, v in train_options(model).items() if v != defaults[k] and k != "checkpoint_every"})
    if variant in SWEEP_RUNS:
        base, lr = SWEEP_RUNS[variant]
        params.update(_training_overrides(VARIANT_SPECS[base], lr))
    return params


def checkpoint_every(model):
    """Steps between a run's resumable checkpoints (training.checkpoint_every, or the model's)."""
    return int(train_options(model).get("checkpoint_every", _TrainOptions().checkpoint_every))


def train_nproc(model):
    return int(train_options(model).get("nproc_per_node", 1))


def train_launcher(model):
    """`xlir`, or torchrun with one process per GPU of the job (inside one SLURM allocation:
    the job runs as one task holding all its GPUs on one node; torchrun starts the processes)."""
    n = train_nproc(model)
    return shell_words("torchrun", "--standalone", "--nproc-per-node", n, "-m", "xlir.cli") if n > 1 else "xlir"


def train_log_option(wildcards):
    """--log, except under torchrun, whose parser would read it as its own --log-dir: there
    stderr alone (2>> {log}) carries every process's log lines."""
    if train_nproc(wildcards.model) > 1:
        return ""
    log_file = TRAIN_LOG.format(model=wildcards.model, variant=wildcards.variant, sampling=wildcards.sampling,
                                seed=wildcards.seed)
    return shell_words("--log", log_file)


def train_resources(wildcards, key, default):
    """GPU jobs: runtime and host memory from the planner (xlir plan-memory); CPU jobs: the defaults."""
    planned = _planned_resources(wildcards.model, model_cfg(wildcards.model),
                                 {**config["training"], **train_options(wildcards.model)},
                                 TRAIN_SPECS[wildcards.variant])
    return planned[key] if planned else default


def train_gpus(model):
    return train_nproc(model) if str(model_cfg(model)["device"]).startswith("cuda") else 0


def encode_gpus(model):
    """One GPU for a model that encodes on CUDA, none for a CPU model (the SLURM profile asks for no
    GPU then)."""
    return 1 if str(model_cfg(model)["device"]).startswith("cuda") else 0


# ------------------------------------------------------------------ learning-rate sweep
def sweep_cells():
    """(model, variant, sampling) of every grid cell whose variant trains at a selected lr (swept
    variants and their followers), in grid order."""
    return STUDY.sweep_cells()


def selection_file(model, variant, sampling):
    return f"{RESULTS}/selection/{model}/{variant}/{sampling}.json"


def sweep_members(model, variant, sampling):
    """[{lr, seed, run, metrics}]: the sweep runs of one cell (run: below results/runs)."""
    members = []
    for run, (base, lr) in SWEEP_RUNS.items():
        if base != variant:
            continue
        for seed in SELECTION_SEEDS:
            path = run_dir(model, run, sampling, seed)
            members.append({"lr": lr, "seed": seed, "run": os.path.relpath(path, f"{RESULTS}/runs"),
                            "metrics": f"{path}/{DEV}/metrics.json"})
    return members


def followed_selection(model, variant, sampling):
    """A mean-lr-matched control follows its target's selection (same model and sampling;
    xlir.study checks at load that the target is swept there)."""
    target = STUDY.followed_variant(variant)
    return [] if target is None else [selection_file(model, target, sampling)]


def sweep_outputs():
    """Every cell's selection (and through it every sweep run's dev metrics)."""
    return [selection_file(*cell) for cell in sweep_cells()]


# ------------------------------------------------------------------ report
def _default_config():
    """The embedded default (config/config.yaml with the schema's defaults): the report lists
    the config values that differ from it."""
    path = os.path.join(workflow.basedir, "config", "config.yaml")
    with open(path, encoding="utf-8") as handle:
        default = yaml.safe_load(handle)
    validate(default, schema=os.path.join(workflow.basedir, "config", "schema.yaml"), set_default=True)
    return default


def report_manifest():
    runs = []
    for path in evaluated_runs():
        _, _, model, variant, sampling, seed = path.split("/")
        runs.append({"model": model, "variant": variant, "sampling": sampling, "seed": int(seed[4:]), "dir": path})
    manifest = {
        "config": config,
        "default_config": _default_config(),
        "runs": runs,
        "benchmarks": BENCHMARKS,
        "mt_languages": MT_LANGS,
        "results_dir": RESULTS,
        "lr_sweep": [{"model": m, "variant": v, "sampling": s, "selection": selection_file(m, v, s)}
                     for m, v, s in sweep_cells()],
        "selection_seeds": SELECTION_SEEDS,
        "seed_overlap": SEED_OVERLAP,
    }
    if CONFIG_WARNINGS:  # only when there are any: the default config's report params stay as they were
        manifest["config_warnings"] = CONFIG_WARNINGS
    return manifest


REPORT_MANIFEST = as_json(report_manifest())
REPORT_DIR = f"{RESULTS}/report"


def run_outputs(name):
    return [f"{path}/{b}/{name}" for path in evaluated_runs() for b in BENCHMARKS]


def report_inputs(wildcards):
    """What the report reads besides metrics.csv and comparisons.csv."""
    inputs = []
    for cell in grid_cells():
        inputs += [f"{run_dir(*cell)}/{name}" for name in ("param_groups.tsv", "train_log.tsv", "train_summary.json")]
    inputs += [f"{RESULTS}/data/mt/{lang}.quality.json" for lang in MT_LANGS]
    inputs += [f"{RESULTS}/checks/leakage_{b}.json" for b in BENCHMARKS]
    if config["leakage"]["drop_overlapping_pairs"]:
        inputs += [f"{RESULTS}/checks/dropped_training_pairs.json"]
    inputs += [f"{RESULTS}/benchmarks/{b}/prepared/stats.json" for b in BENCHMARKS]
    inputs += [f"{RESULTS}/data/train/stats.json", f"{RESULTS}/data/qa/split.json"]
    if DEV_SPLIT:
        inputs += [f"{path}/{DEV}/metrics.json" for path in evaluated_runs()]
    inputs += sweep_outputs()
    inputs += [f"{RESULTS}/models/{m}/base" for m in MODELS]
    return inputs


# ------------------------------------------------------------------ shards
SHARD_DIR = f"{RESULTS}/shards/{config['study']}"
#: what each shard kind holds: the lr selection (sweep runs on the dev split), the seed-independent
#: baselines (zero-shot, BM25), or the test seeds' grid (shard `seeds-<seed>-...`)
SHARD_KINDS = ("selection", "baselines", "seeds")
TRAIN_FILES = ("param_groups.tsv", "train_log.tsv", "train_summary.json")


def shard_kind(shard):
    """selection, baselines, or seeds (a shard named seeds-<seed>-..., this config's seeds)."""
    if shard in ("selection", "baselines"):
        return shard
    if shard != seeds_shard_name():
        raise ValueError(f"shard '{shard}': this config's test seeds make shard '{seeds_shard_name()}' "
                         "(config key seeds)")
    return "seeds"


def seeds_shard_name():
    return "seeds-" + "-".join(str(s) for s in SEEDS)


def _run_files(path, benchmarks, trained):
    files = [f"{path}/{name}" for name in TRAIN_FILES] if trained else []
    for benchmark in benchmarks:
        files += [f"{path}/{benchmark}/metrics.json", f"{path}/{benchmark}/per_query.tsv"]
    return files


def shard_runs(kind):
    """The run folders (below results/) a shard of `kind` holds."""
    if kind == "selection":
        return [f"{RESULTS}/runs/{m['run']}" for cell in sweep_cells() for m in sweep_members(*cell)]
    if kind == "baselines":
        return [path for path in evaluated_runs() if path.split(os.sep)[3] in ("zeroshot", "lexical")]
    return [run_dir(*cell) for cell in grid_cells()]


def shard_files(kind):
    """Every result file (below results/) a shard of `kind` exports; each is a rule input."""
    dev = [DEV] if DEV_SPLIT else []
    files = []
    for path in shard_runs(kind):
        benchmarks = dev if kind == "selection" else BENCHMARKS + dev
        files += _run_files(path, benchmarks, trained=kind != "baselines")
    if kind in ("selection", "seeds"):
        files += sweep_outputs()
    if kind == "seeds":  # the layer analysis of every test run (rule analyze) and its probe sets
        files += analysis_outputs(shard_runs(kind), ANALYSIS_BENCHMARKS)
        files += [probe_path(RESULTS, b) for b in ANALYSIS_BENCHMARKS]
    if kind == "baselines":
        files += trec_eval_checks()
    files += [f"{RESULTS}/data/mt/{lang}.quality.json" for lang in MT_LANGS]
    files += [f"{RESULTS}/checks/leakage_{b}.json" for b in BENCHMARKS]
    if config["leakage"]["drop_overlapping_pairs"]:
        files += [f"{RESULTS}/checks/dropped_training_pairs.json"]
    files += [f"{RESULTS}/benchmarks/{b}/prepared/stats.json" for b in BENCHMARKS]
    files += [f"{RESULTS}/data/train/stats.json", f"{RESULTS}/data/qa/split.json"]
    return files


def shard_contents(kind, shard):
    """What `xlir export-shard --contents` gets (paths relative to results/)."""
    files = shard_files(kind)
    extra = [f"{RESULTS}/models/{m}/base/model_card.json" for m in MODELS]
    encoded = ([DEV] if DEV_SPLIT else []) + ([] if kind == "selection" else BENCHMARKS)
    extra += [f"{path}/{b}/embeddings/meta.json" for path in shard_runs(kind) if path.split(os.sep)[3] != "lexical"
              for b in encoded]  # the precision and engine each encode ran with
    runs = [{"model": m, "variant": v, "sampling": s, "seed": int(seed.removeprefix("seed"))}
            for m, v, s, seed in (p.split("/")[2:6] for p in shard_runs(kind))]
    return {
        "study": config["study"],
        "shard": shard,
        "kind": kind,
        "design": DESIGN_CONFIG,
        "config": config,
        "seeds": SEEDS if kind == "seeds" else [],
        "selection_seeds": SELECTION_SEEDS,
        "seed_overlap": SEED_OVERLAP,
        "runs": runs,
        "files": [os.path.relpath(f, RESULTS) for f in files + extra],
    }
