# Layer analysis (issue 23): where each scaling variant changes the network. Per benchmark with
# parallel questions a fixed probe set (probe_set); per fine-tuned run and such benchmark, the
# drift (linear CKA with the base model), cross-lingual alignment and weight-update size of
# every layer (analyze). The files: xlir.analysis.targets; ANALYSIS_OUTPUTS lists every one
# the grid's fine-tuned runs have, for the Snakefile's `all` (or the report) to require.
# Include after common.smk (RESULTS, RUN, PREPARED_QUESTIONS, grid_cells, model_cfg, ...).
from xlir.analysis.targets import analysis_benchmarks, analysis_outputs, probe_path, probe_settings

#: probe_size / probe_seed (config key `analysis`, where the schema has it; else 200 ids, seed 0)
ANALYSIS_PROBE = probe_settings(config)
#: the benchmarks with parallel questions (MIRACL's are monolingual: it has no probe set)
ANALYSIS_BENCHMARKS = analysis_benchmarks({b: benchmark_spec(b) for b in BENCHMARKS})
#: every fine-tuned run of the grid, analysed on every benchmark with parallel questions
ANALYSIS_OUTPUTS = analysis_outputs([run_dir(*cell) for cell in grid_cells()], ANALYSIS_BENCHMARKS)


rule probe_set:
    input:
        PREPARED_QUESTIONS,
    output:
        probe_path(RESULTS, "{benchmark}"),
    params:
        size=ANALYSIS_PROBE["probe_size"],
        seed=ANALYSIS_PROBE["probe_seed"],
    wildcard_constraints:
        benchmark=_alternatives(ANALYSIS_BENCHMARKS + [DEV]),
    log:
        f"{RESULTS}/logs/probe_set/{{benchmark}}.log",
    benchmark:
        f"{RESULTS}/timing/probe_set/{{benchmark}}.tsv"
    conda:
        "../../envs/xlir.yaml"
    shell:
        "exec xlir probe-set --questions {input} --size {params.size} --seed {params.seed} --out {output} "
        "--log {log} 2>> {log}"


rule analyze:
    input:
        base=f"{RESULTS}/models/{{model}}/base",
        model=f"{RESULTS}/runs/{{model}}/{{variant}}/{{sampling}}/seed{{seed}}/model",
        probe=probe_path(RESULTS, "{benchmark}"),
    output:
        layers=f"{RUN}/analysis/layers.tsv",
        pairs=f"{RUN}/analysis/alignment_pairs.tsv",
        update_size=f"{RUN}/analysis/update_size.tsv",
        summary=f"{RUN}/analysis/summary.json",
    params:
        out_dir=lambda w, output: os.path.dirname(output.summary),
        pooling=lambda w: shell_words(model_cfg(w.model)["pooling"]),
        max_length=lambda w: encode_length(w.model),
        batch_size=lambda w: model_cfg(w.model)["encode_batch_size"],
        batch_tokens=lambda w: model_cfg(w.model)["encode_batch_tokens"] or 0,
        device=lambda w: shell_words(model_cfg(w.model)["device"]),
        # the base model's layer states, encoded once per model and probe set
        cache=f"{RESULTS}/cache/layer_states",
    wildcard_constraints:
        model=_alternatives(MODELS),
        variant=_alternatives(VARIANTS + list(SWEEP_RUNS)),
        benchmark=_alternatives(ANALYSIS_BENCHMARKS + [DEV]),
    log:
        f"{RESULTS}/logs/analyze/{{model}}/{{variant}}/{{sampling}}/seed{{seed}}/{{benchmark}}.log",
    benchmark:
        f"{RESULTS}/timing/analyze/{{model}}/{{variant}}/{{sampling}}/seed{{seed}}/{{benchmark}}.tsv"
    threads: config["threads"]["encode"]
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/xlir.yaml"
    shell:
        "exec xlir analyze --base-model {input.base} --model {input.model} --probe {input.probe} "
        "--pooling {params.pooling} --max-length {params.max_length} --batch-size {params.batch_size} "
        "--batch-tokens {params.batch_tokens} --device {params.device} --threads {threads} "
        "--cache-dir {params.cache} --out {params.out_dir:q} --log {log} 2>> {log}"
