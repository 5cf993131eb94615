# Stages 3-4: hybrid batch plans and fine-tuning (one job per model x variant x sampling x seed).


rule plan_batches:
    input:
        TRAIN_PAIRS,
    output:
        f"{RESULTS}/batches/{{sampling}}/seed{{seed}}.jsonl",
    params:
        alpha=lambda w: config["samplings"][w.sampling]["alpha"],
        languages=" ".join(config["training"]["languages"]),
        batch_size=config["training"]["batch_size"],
        steps=config["training"]["steps"],
    log:
        f"{RESULTS}/logs/plan_batches/{{sampling}}_seed{{seed}}.log",
    shell:
        "xlir plan-batches --train {input} --languages '{params.languages}' --alpha {params.alpha} "
        "--batch-size {params.batch_size} --steps {params.steps} --seed {wildcards.seed} --out {output} "
        "--log {log} 2>> {log}"


from xlir.planner import job_resources as _planned_resources
from xlir.train_options import OPTION_KEYS as _OPTION_KEYS, TrainOptions as _TrainOptions

TRAIN_LOG = RESULTS + "/logs/train/{model}/{variant}/{sampling}/seed{seed}.log"


def train_options(model):
    """The memory and distribution switches of a model's jobs: `training`, then `models.<model>.training`."""
    t = config["training"]
    merged = {k: t[k] for k in _OPTION_KEYS if k in t}
    merged.update(model_cfg(model).get("training") or {})
    return merged


def training_params(model):
    """What `xlir train --training` gets. Switches at their defaults are left out, so the default
    config's params (and Snakemake's params rerun trigger) are what they were before the switches."""
    t = config["training"]
    keys = ("lr", "weight_decay", "temperature", "warmup_ratio", "max_grad_norm", "freeze_word_embeddings")
    params = {k: t[k] for k in keys}
    defaults = _TrainOptions().to_dict()
    params.update({k: v for k, v in train_options(model).items() if v != defaults[k]})
    return params


def train_nproc(model):
    return int(train_options(model).get("nproc_per_node", 1))


def train_launcher(model):
    """`xlir`, or torchrun with one process per GPU of the job (inside one SLURM allocation:
    the job runs as one task holding all its GPUs on one node; torchrun starts the processes)."""
    n = train_nproc(model)
    return f"torchrun --standalone --nproc-per-node {n} -m xlir.cli" if n > 1 else "xlir"


def train_log_option(wildcards):
    """--log, except under torchrun, whose parser would read it as its own --log-dir: there
    stderr alone (2>> {log}) carries every process's log lines."""
    if train_nproc(wildcards.model) > 1:
        return ""
    return "--log " + TRAIN_LOG.format(model=wildcards.model, variant=wildcards.variant,
                                        sampling=wildcards.sampling, seed=wildcards.seed)


def train_resources(wildcards, key, default):
    """GPU jobs: runtime and host memory from the planner (xlir plan-memory); CPU jobs: the defaults."""
    planned = _planned_resources(wildcards.model, model_cfg(wildcards.model),
                                 {**config["training"], **train_options(wildcards.model)},
                                 config["variants"][wildcards.variant])
    return planned[key] if planned else default


def train_gpus(model):
    return train_nproc(model) if str(model_cfg(model)["device"]).startswith("cuda") else 0


rule train:
    input:
        model=f"{RESULTS}/models/{{model}}/base",
        train=TRAIN_PAIRS,
        plan=f"{RESULTS}/batches/{{sampling}}/seed{{seed}}.jsonl",
        # zero-shot guarantee: no run trains before every benchmark passed the leakage check
        leakage=expand(f"{RESULTS}/checks/leakage_{{benchmark}}.json", benchmark=BENCHMARKS),
    output:
        model=directory(f"{RESULTS}/runs/{{model}}/{{variant}}/{{sampling}}/seed{{seed}}/model"),
        param_groups=f"{RESULTS}/runs/{{model}}/{{variant}}/{{sampling}}/seed{{seed}}/param_groups.tsv",
        train_log=f"{RESULTS}/runs/{{model}}/{{variant}}/{{sampling}}/seed{{seed}}/train_log.tsv",
        summary=f"{RESULTS}/runs/{{model}}/{{variant}}/{{sampling}}/seed{{seed}}/train_summary.json",
    params:
        variant=lambda w: as_json({"name": w.variant, **config["variants"][w.variant]}),
        training=lambda w: as_json(training_params(w.model)),
        max_length=lambda w: model_cfg(w.model)["max_length"],
        pooling=lambda w: model_cfg(w.model)["pooling"],
        device=lambda w: model_cfg(w.model)["device"],
        launcher=lambda w: train_launcher(w.model),
        log_option=train_log_option,
    wildcard_constraints:
        variant=_alternatives(VARIANTS),
        model=_alternatives(MODELS),
    log:
        TRAIN_LOG,
    benchmark:
        f"{RESULTS}/timing/train/{{model}}/{{variant}}/{{sampling}}/seed{{seed}}.tsv"
    threads: config["threads"]["train"]
    resources:
        # --threads is per process; a multi-GPU job holds nproc_per_node processes on one node
        mem_mb=lambda w: train_resources(w, "mem_mb", 6000),
        runtime=lambda w: train_resources(w, "runtime", 120),
        gpu=lambda w: train_gpus(w.model),
        nodes=1,
        cpus_per_task=lambda w, threads: threads * train_nproc(w.model),
    shell:
        "{params.launcher} train --model {input.model} --train {input.train} --plan {input.plan} "
        "--variant {params.variant} --training {params.training} --seed {wildcards.seed} "
        "--max-length {params.max_length} --pooling {params.pooling} --device {params.device} "
        "--threads {threads} --out-model {output.model} --out-param-groups {output.param_groups} "
        "--out-log {output.train_log} --out-summary {output.summary} {params.log_option} 2>> {log}"
