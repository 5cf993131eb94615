# Helpers shared by the rules: the grid, path builders and parameter serialisation.
import re
import json
import shlex

RESULTS = "results"
MODELS = list(config["models"])
VARIANTS = list(config["variants"])
SAMPLINGS = list(config["samplings"])
SEEDS = [int(s) for s in config["seeds"]]
BENCHMARKS = list(config["benchmarks"])
MT_LANGS = list(config["translation"]["languages"])
# the training pairs every run learns from: with leakage.drop_overlapping_pairs, those left after
# dropping the pairs that overlap an evaluation text (rule drop_overlapping_pairs)
TRAIN_PAIRS = (f"{RESULTS}/data/train/pairs.zeroshot.jsonl" if config["leakage"]["drop_overlapping_pairs"]
               else f"{RESULTS}/data/train/pairs.jsonl")

_MODEL_DEFAULTS = {"pooling": "mean", "max_length": 128, "encode_max_length": None, "encode_batch_size": 64,
                   "encode_precision": "fp32", "device": "cpu",
                   "hub_id": None, "revision": None, "path": None}


def _alternatives(names):
    return "|".join(re.escape(n) for n in names)


wildcard_constraints:
    model=_alternatives(MODELS + ["bm25"]),
    variant=_alternatives(VARIANTS + ["zeroshot", "lexical"]),
    sampling=_alternatives(SAMPLINGS + ["none"]),
    seed=r"\d+",
    benchmark=_alternatives(BENCHMARKS),
    lang=r"[a-z]{2,3}",


def model_cfg(model):
    return {**_MODEL_DEFAULTS, **config["models"][model]}


def as_json(value):
    """A JSON string quoted for the shell (structured params stay visible to Snakemake)."""
    return shlex.quote(json.dumps(value, sort_keys=True))


def grid_cells():
    """(model, variant, sampling, seed) of every fine-tuning run."""
    grid = config["grid"]
    if grid["baseline_variant"] not in config["variants"]:
        raise ValueError(f"config key grid.baseline_variant: '{grid['baseline_variant']}' is not a variant")
    if grid["main_sampling"] not in config["samplings"]:
        raise ValueError(f"config key grid.main_sampling: '{grid['main_sampling']}' is not a sampling")
    cells = []
    for model in MODELS:
        for seed in SEEDS:
            for variant in VARIANTS:
                for sampling in SAMPLINGS:
                    if (grid["full_product"] or sampling == grid["main_sampling"]
                            or variant == grid["baseline_variant"]):
                        cells.append((model, variant, sampling, seed))
    return cells


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


RESOURCES = "resources"


def benchmark_raw_dir(benchmark):
    """Where a benchmark's files are: built (demo), a folder given in the config, or fetched into resources/."""
    spec = config["benchmarks"][benchmark]
    if spec["kind"] == "demo":
        return f"{RESULTS}/benchmarks/{benchmark}/raw"
    if spec.get("folder"):
        return spec["folder"]
    if spec["kind"] == "lareqa" and not spec.get("dataset"):
        raise ValueError(f"config key benchmarks.{benchmark}.dataset is required for kind 'lareqa' "
                         "(xquad-r or mlqa-r) unless benchmarks.{benchmark}.folder is set")
    return f"{RESOURCES}/benchmarks/{benchmark}"


def monolingual_only(benchmark):
    """MIRACL has monolingual queries only: no pooled index, no cross-language runs."""
    return "--monolingual-only" if config["benchmarks"][benchmark]["kind"] == "miracl" else ""


def trec_eval_checks():
    """The trec_eval agreement checks: the zero-shot runs and BM25, on every benchmark."""
    if not config["evaluation"]["verify_trec_eval"]:
        return []
    runs = []
    if config["evaluation"]["zeroshot"]:
        runs += [f"{model}/zeroshot/none/seed0" for model in MODELS]
    if config["evaluation"]["bm25"]:
        runs.append("bm25/lexical/none/seed0")
    return [f"{RESULTS}/checks/trec_eval/{b}/{run.replace('/', '+')}.json" for b in BENCHMARKS for run in runs]


def mt_backend():
    t = config["translation"]
    if t["backend"] == "apertium":
        # modes given in the config override the built-in ones pair by pair
        return {"backend": "apertium", **({"modes": t["modes"]} if t["modes"] else {})}
    return {"backend": "huggingface", **t["hf"]}


def benchmark_cutoffs(benchmark):
    """Recall@k and nDCG@k cutoffs: the benchmark's own, else the kind's (MIRACL: nDCG@10, R@100)."""
    spec = config["benchmarks"][benchmark]
    if spec["kind"] == "miracl":
        defaults = {"recall_k": [100], "ndcg_k": [10]}
    else:
        defaults = {"recall_k": config["evaluation"]["recall_k"], "ndcg_k": []}
    return {key: spec.get(key, value) for key, value in defaults.items()}


def depth_options(benchmark, retriever):
    """--depth (ranking depth; none = the whole pool) and --trec-depth for one search."""
    spec, evaluation = config["benchmarks"][benchmark], config["evaluation"]
    depth = spec.get("depth", evaluation["bm25_depth"] if retriever == "bm25" else evaluation["depth"])
    if spec["kind"] == "miracl" and depth is None:
        depth = 100  # MIRACL corpora hold millions of passages; 2CR ranks the top 100
    options = f"--depth {int(depth)}" if depth else ""
    if evaluation["trec_depth"]:
        options += f" --trec-depth {int(evaluation['trec_depth'])}"
    return options.strip()
