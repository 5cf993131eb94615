# Evaluation benchmarks: the demo benchmark (LAReQA format), prepared pools and qrels,
# and the zero-shot (leakage) check.


rule build_demo_benchmark:
    input:
        qa=f"{RESULTS}/data/qa/en.jsonl",
        split=f"{RESULTS}/data/qa/split.json",
        mt=demo_mt_inputs,
    output:
        directory(f"{RESULTS}/benchmarks/{{benchmark}}/raw"),
    wildcard_constraints:
        benchmark=_alternatives([b for b in BENCHMARKS if config["benchmarks"][b]["kind"] == "demo"] or ["-"]),
    params:
        languages=lambda w: benchmark_spec(w.benchmark)["languages"],
        paragraph_size=lambda w: benchmark_spec(w.benchmark).get("paragraph_size", 4),
    log:
        f"{RESULTS}/logs/build_demo_benchmark/{{benchmark}}.log",
    benchmark:
        f"{RESULTS}/timing/build_demo_benchmark/{{benchmark}}.tsv",
    conda:
        "../../envs/xlir.yaml"
    shell:
        "exec xlir build-demo-benchmark --qa {input.qa} --split {input.split} --mt {input.mt} "
        "--languages {params.languages:q} --paragraph-size {params.paragraph_size} --out-dir {output} "
        "--log {log} 2>> {log}"


rule build_dev_benchmark:
    input:
        DEV_PAIRS,
    output:
        directory(f"{RESULTS}/benchmarks/{DEV}/raw"),
    params:
        languages=TRAIN_LANGS,
        paragraph_size=config["qa"]["dev"]["paragraph_size"],
    log:
        f"{RESULTS}/logs/build_dev_benchmark.log",
    benchmark:
        f"{RESULTS}/timing/build_dev_benchmark.tsv",
    conda:
        "../../envs/xlir.yaml"
    shell:
        "exec xlir build-dev-benchmark --dev {input} --languages {params.languages:q} "
        "--paragraph-size {params.paragraph_size} --out-dir {output} --log {log} 2>> {log}"


rule fetch_benchmark:
    output:
        directory(f"{RESOURCES}/benchmarks/{{benchmark}}"),
    params:
        kind=lambda w: shell_words(benchmark_spec(w.benchmark)["kind"]),
        dataset=lambda w: option("--dataset", benchmark_spec(w.benchmark).get("dataset")),
        split=lambda w: shell_words(benchmark_spec(w.benchmark).get("split", "dev")),
        languages=lambda w: benchmark_spec(w.benchmark)["languages"],
        mirror=option("--mirror", config["data"]["mirror"]),
        download="--download" if config["data"]["download"] else "",
        verify=str(config["data"]["verify_checksums"]).lower(),
        # MIRACL has no official checksums: each file's SHA-256 is recorded at its first fetch
        pins=lambda w: option("--pins", MIRACL_PINS) if benchmark_spec(w.benchmark)["kind"] == "miracl" else "",
    log:
        f"{RESULTS}/logs/fetch_benchmark/{{benchmark}}.log",
    benchmark:
        f"{RESULTS}/timing/fetch_benchmark/{{benchmark}}.tsv"
    conda:
        "../../envs/xlir.yaml"
    shell:
        "exec xlir fetch-benchmark --kind {params.kind} {params.dataset} --split {params.split} "
        "--languages {params.languages:q} {params.mirror} {params.download} --verify-checksums {params.verify} "
        "{params.pins} --out-dir {output} --log {log} 2>> {log}"


rule prepare_benchmark:
    input:
        lambda w: benchmark_raw_dir(w.benchmark),
    output:
        questions=prepared("{benchmark}", "questions.jsonl"),
        candidates=prepared("{benchmark}", "candidates.jsonl"),
        qrels=prepared("{benchmark}", "qrels.tsv"),
        stats=prepared("{benchmark}", "stats.json"),
    params:
        kind=lambda w: shell_words(benchmark_spec(w.benchmark)["kind"]),
        languages=lambda w: benchmark_spec(w.benchmark)["languages"],
        subsample=lambda w: option(
            "--max-candidates-per-language", benchmark_spec(w.benchmark).get("max_candidates_per_language")
        ),
    log:
        f"{RESULTS}/logs/prepare_benchmark/{{benchmark}}.log",
    benchmark:
        f"{RESULTS}/timing/prepare_benchmark/{{benchmark}}.tsv"
    conda:
        "../../envs/xlir.yaml"
    shell:
        "exec xlir prepare-benchmark --kind {params.kind} --raw-dir {input:q} --languages {params.languages:q} "
        "{params.subsample} --out-questions {output.questions} --out-candidates {output.candidates} "
        "--out-qrels {output.qrels} --out-stats {output.stats} --log {log} 2>> {log}"


rule drop_overlapping_pairs:
    input:
        train=f"{RESULTS}/data/train/pairs.jsonl",
        dev=f"{RESULTS}/data/dev/pairs.jsonl",
        questions=[prepared(b, "questions.jsonl") for b in BENCHMARKS],
        candidates=[prepared(b, "candidates.jsonl") for b in BENCHMARKS],
    output:
        pairs=f"{RESULTS}/data/train/pairs.zeroshot.jsonl",
        dev=f"{RESULTS}/data/dev/pairs.zeroshot.jsonl",
        report=f"{RESULTS}/checks/dropped_training_pairs.json",
    params:
        benchmarks=BENCHMARKS,
        ngram=config["leakage"]["ngram"],
        threshold=config["leakage"]["jaccard_threshold"],
    log:
        f"{RESULTS}/logs/drop_overlapping_pairs.log",
    benchmark:
        f"{RESULTS}/timing/drop_overlapping_pairs.tsv"
    conda:
        "../../envs/xlir.yaml"
    shell:
        "exec xlir drop-overlapping-pairs --train {input.train} --benchmarks {params.benchmarks:q} "
        "--questions {input.questions:q} --candidates {input.candidates:q} --ngram {params.ngram} "
        "--threshold {params.threshold} --dev {input.dev} --out {output.pairs} --out-dev {output.dev} "
        "--out-report {output.report} --log {log} 2>> {log}"


rule check_leakage:
    input:
        train=TRAIN_PAIRS,
        questions=prepared("{benchmark}", "questions.jsonl"),
        candidates=prepared("{benchmark}", "candidates.jsonl"),
    output:
        f"{RESULTS}/checks/leakage_{{benchmark}}.json",
    params:
        ngram=config["leakage"]["ngram"],
        threshold=config["leakage"]["jaccard_threshold"],
        fail=str(config["leakage"]["fail_on_overlap"]).lower(),
    log:
        f"{RESULTS}/logs/check_leakage/{{benchmark}}.log",
    benchmark:
        f"{RESULTS}/timing/check_leakage/{{benchmark}}.tsv"
    conda:
        "../../envs/xlir.yaml"
    shell:
        "exec xlir check-leakage --train {input.train} --questions {input.questions} --candidates {input.candidates} "
        "--ngram {params.ngram} "
        "--threshold {params.threshold} --fail-on-overlap {params.fail} --out {output} --log {log} 2>> {log}"
