# Stages 3-4: hybrid batch plans and fine-tuning (one job per model x variant x sampling x seed,
# x learning rate where training.lr_sweep sweeps it: the sweep runs train with the selection seeds
# (training.lr_sweep.seeds), select_lr picks the lr on the dev split (import_selection reads it
# from a selection shard instead), and every test seed trains once at it, in train_at_selected_lr;
# link_selected_run reuses a selected sweep run only where allow_seed_overlap lets a selection
# seed be a test seed).


rule plan_batches:
    input:
        TRAIN_PAIRS,
    output:
        f"{RESULTS}/batches/{{sampling}}/seed{{seed}}.jsonl",
    params:
        alpha=lambda w: config["samplings"][w.sampling]["alpha"],
        languages=config["training"]["languages"],
        batch_size=config["training"]["batch_size"],
        steps=config["training"]["steps"],
    log:
        f"{RESULTS}/logs/plan_batches/{{sampling}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/timing/plan_batches/{{sampling}}_seed{{seed}}.tsv",
    conda:
        "../../envs/xlir.yaml"
    shell:
        "exec xlir plan-batches --train {input} --languages {params.languages:q} --alpha {params.alpha} "
        "--batch-size {params.batch_size} --steps {params.steps} --seed {wildcards.seed} "
        "--sampling {wildcards.sampling:q} --out {output} "
        "--log {log} 2>> {log}"


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
        variant=lambda w: as_json(TRAIN_SPECS[w.variant].to_dict()),
        training=lambda w: as_json(training_params(w.model, w.variant)),
        max_length=lambda w: model_cfg(w.model)["max_length"],
        encode_max_length=lambda w: encode_length(w.model),
        pooling=lambda w: shell_words(model_cfg(w.model)["pooling"]),
        device=lambda w: shell_words(model_cfg(w.model)["device"]),
        launcher=lambda w: train_launcher(w.model),
        log_option=train_log_option,
        # resumable checkpoints: beside the run, not a declared output, so a failed job keeps them
        checkpoint_dir=lambda w: f"{RESULTS}/checkpoints/{w.model}/{w.variant}/{w.sampling}/seed{w.seed}",
        selection="",  # train_at_selected_lr: --selection <select_lr output>
    wildcard_constraints:
        variant=_alternatives(TRAINED_VARIANTS) if TRAINED_VARIANTS else "(?!)",
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
        # not a param: a change of checkpoint frequency retrains nothing (resume is bit-identical)
        checkpoint_every=lambda w: checkpoint_every(w.model),
    conda:
        "../../envs/xlir.yaml"
    shell:
        "exec {params.launcher} train --model {input.model} --train {input.train} --plan {input.plan} "
        "--variant {params.variant} --training {params.training} --seed {wildcards.seed} "
        "--max-length {params.max_length} --encode-max-length {params.encode_max_length} "
        "--pooling {params.pooling} "
        "--device {params.device} --threads {threads} --out-model {output.model} --out-param-groups {output.param_groups} "
        "--out-log {output.train_log} --out-summary {output.summary} --checkpoint-dir {params.checkpoint_dir:q} "
        "--checkpoint-every {resources.checkpoint_every} "
        "{params.selection} {params.log_option} 2>> {log}"


# A swept variant's run for a seed outside training.lr_sweep.seeds: trained once, at the base lr
# the variant selected on the dev split (the selection seeds' sweep runs), not swept again.
use rule train as train_at_selected_lr with:
    input:
        model=f"{RESULTS}/models/{{model}}/base",
        train=TRAIN_PAIRS,
        plan=f"{RESULTS}/batches/{{sampling}}/seed{{seed}}.jsonl",
        leakage=expand(f"{RESULTS}/checks/leakage_{{benchmark}}.json", benchmark=BENCHMARKS),
        selection=f"{RESULTS}/selection/{{model}}/{{variant}}/{{sampling}}.json",
    params:
        selection=lambda w, input: shell_words("--selection", input.selection),
    wildcard_constraints:
        variant=_alternatives(SWEEP_VARIANTS) if SWEEP_VARIANTS else "(?!)",
        model=_alternatives(MODELS),
        seed=_alternatives(map(str, SELECTED_LR_SEEDS)) if SELECTED_LR_SEEDS else "(?!)",


# A mean-lr-matched control: never swept, it trains every seed at the lr its target selected.
use rule train_at_selected_lr as train_follower_at_selected_lr with:
    wildcard_constraints:
        variant=_alternatives(FOLLOWER_VARIANTS) if FOLLOWER_VARIANTS else "(?!)",
        model=_alternatives(MODELS),


rule select_lr:
    input:
        metrics=lambda w: [m["metrics"] for m in sweep_members(w.model, w.variant, w.sampling)],
        follow=lambda w: followed_selection(w.model, w.variant, w.sampling),
    output:
        f"{RESULTS}/selection/{{model}}/{{variant}}/{{sampling}}.json",
    params:
        runs=lambda w: as_json(sweep_members(w.model, w.variant, w.sampling)),
        metric=LR_SWEEP.metric,
        setting=LR_SWEEP.setting,
        follow=lambda w, input: ["--follow", input.follow[0]] if input.follow else [],
    wildcard_constraints:
        # with selection_from, rule import_selection writes the selections instead
        variant=_alternatives(SWEPT_VARIANTS) if SWEPT_VARIANTS and not LR_SWEEP.selection_from else "(?!)",
    log:
        f"{RESULTS}/logs/select_lr/{{model}}/{{variant}}/{{sampling}}.log",
    benchmark:
        f"{RESULTS}/timing/select_lr/{{model}}/{{variant}}/{{sampling}}.tsv",
    conda:
        "../../envs/xlir.yaml"
    shell:
        "exec xlir select-lr --variant {wildcards.variant:q} --runs {params.runs} --metric {params.metric:q} "
        "--setting {params.setting:q} {params.follow:q} --out {output} --log {log} 2>> {log}"


# a test shard: the lr each variant selected in the study's selection shard (same design hash)
rule import_selection:
    input:
        shard_manifest=f"{LR_SWEEP.selection_from or RESULTS}/manifest.json",
    output:
        f"{RESULTS}/selection/{{model}}/{{variant}}/{{sampling}}.json",
    params:
        shard=shell_words(LR_SWEEP.selection_from or ""),
        design=as_json(DESIGN_CONFIG),
    wildcard_constraints:
        variant=_alternatives(SWEPT_VARIANTS) if SWEPT_VARIANTS and LR_SWEEP.selection_from else "(?!)",
    log:
        f"{RESULTS}/logs/import_selection/{{model}}/{{variant}}/{{sampling}}.log",
    benchmark:
        f"{RESULTS}/timing/import_selection/{{model}}/{{variant}}/{{sampling}}.tsv",
    conda:
        "../../envs/xlir.yaml"
    shell:
        "exec xlir import-selection --shard {params.shard} --design {params.design} --model {wildcards.model:q} "
        "--variant {wildcards.variant:q} --sampling {wildcards.sampling:q} --out {output} --log {log} 2>> {log}"


rule link_selected_run:
    input:
        selection=f"{RESULTS}/selection/{{model}}/{{variant}}/{{sampling}}.json",
        runs=lambda w: [
            f"{RESULTS}/runs/{m['run']}/{name}"
            for m in sweep_members(w.model, w.variant, w.sampling)
            if m["seed"] == int(w.seed)
            for name in ("model", "param_groups.tsv", "train_log.tsv", "train_summary.json")
        ],
    output:
        model=directory(f"{RESULTS}/runs/{{model}}/{{variant}}/{{sampling}}/seed{{seed}}/model"),
        param_groups=f"{RESULTS}/runs/{{model}}/{{variant}}/{{sampling}}/seed{{seed}}/param_groups.tsv",
        train_log=f"{RESULTS}/runs/{{model}}/{{variant}}/{{sampling}}/seed{{seed}}/train_log.tsv",
        summary=f"{RESULTS}/runs/{{model}}/{{variant}}/{{sampling}}/seed{{seed}}/train_summary.json",
    params:
        # the folder of every run folder (results/runs): <runs>/model/variant/sampling/seedN/train_summary.json
        runs_dir=lambda w, output: output.summary.rsplit("/", 5)[0],
        out_run=lambda w, output: os.path.dirname(output.summary),
    wildcard_constraints:
        variant=_alternatives(SWEEP_VARIANTS) if SWEEP_VARIANTS and LINKED_SEEDS else "(?!)",
        model=_alternatives(MODELS),
        seed=_alternatives(map(str, LINKED_SEEDS)) if LINKED_SEEDS else "(?!)",
    log:
        f"{RESULTS}/logs/link_selected_run/{{model}}/{{variant}}/{{sampling}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/timing/link_selected_run/{{model}}/{{variant}}/{{sampling}}/seed{{seed}}.tsv",
    conda:
        "../../envs/xlir.yaml"
    shell:
        "exec xlir link-selected-run --selection {input.selection} --seed {wildcards.seed} --runs-dir {params.runs_dir} "
        "--out-run {params.out_run:q} --log {log} 2>> {log}"
