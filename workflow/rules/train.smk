# Stages 3-4: hybrid batch plans and fine-tuning (one job per model x variant x sampling x seed).


rule plan_batches:
    input:
        f"{RESULTS}/data/train/pairs.jsonl",
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


def training_params():
    t = config["training"]
    keys = ("lr", "weight_decay", "temperature", "warmup_ratio", "max_grad_norm", "freeze_word_embeddings")
    return {k: t[k] for k in keys}


rule train:
    input:
        model=f"{RESULTS}/models/{{model}}/base",
        train=f"{RESULTS}/data/train/pairs.jsonl",
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
        training=as_json(training_params()),
        max_length=lambda w: model_cfg(w.model)["max_length"],
        pooling=lambda w: model_cfg(w.model)["pooling"],
        device=lambda w: model_cfg(w.model)["device"],
    wildcard_constraints:
        variant=_alternatives(VARIANTS),
        model=_alternatives(MODELS),
    log:
        f"{RESULTS}/logs/train/{{model}}/{{variant}}/{{sampling}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/timing/train/{{model}}/{{variant}}/{{sampling}}/seed{{seed}}.tsv"
    threads: config["threads"]["train"]
    resources:
        mem_mb=6000,
        runtime=120,
    shell:
        "xlir train --model {input.model} --train {input.train} --plan {input.plan} --variant {params.variant} "
        "--training {params.training} --seed {wildcards.seed} --max-length {params.max_length} "
        "--pooling {params.pooling} --device {params.device} --threads {threads} --out-model {output.model} "
        "--out-param-groups {output.param_groups} --out-log {output.train_log} --out-summary {output.summary} "
        "--log {log} 2>> {log}"
