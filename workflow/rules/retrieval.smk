# Stages 5-6: encode, index (Pyserini Faiss / Lucene BM25), retrieve, evaluate.

RUN = f"{RESULTS}/runs/{{model}}/{{variant}}/{{sampling}}/seed{{seed}}/{{benchmark}}"
PREPARED = f"{RESULTS}/benchmarks/{{benchmark}}/prepared"
DENSE_CONSTRAINTS = {"model": _alternatives(MODELS), "variant": _alternatives(VARIANTS + ["zeroshot"])}


rule encode:
    input:
        model=model_dir_for,
        questions=f"{PREPARED}/questions.jsonl",
        candidates=f"{PREPARED}/candidates.jsonl",
    output:
        directory(f"{RUN}/embeddings"),
    params:
        prepared=PREPARED,
        batch_size=lambda w: model_cfg(w.model)["encode_batch_size"],
        max_length=lambda w: model_cfg(w.model)["encode_max_length"] or model_cfg(w.model)["max_length"],
        pooling=lambda w: model_cfg(w.model)["pooling"],
        device=lambda w: model_cfg(w.model)["device"],
        precision=lambda w: model_cfg(w.model)["encode_precision"],
        cache=f"{RESULTS}/cache/embeddings",
    wildcard_constraints:
        **DENSE_CONSTRAINTS,
    log:
        f"{RESULTS}/logs/encode/{{model}}/{{variant}}/{{sampling}}/seed{{seed}}/{{benchmark}}.log",
    benchmark:
        f"{RESULTS}/timing/encode/{{model}}/{{variant}}/{{sampling}}/seed{{seed}}/{{benchmark}}.tsv"
    threads: config["threads"]["encode"]
    resources:
        mem_mb=4000,
        runtime=60,
    shell:
        "xlir encode --model {input.model} --prepared {params.prepared} --batch-size {params.batch_size} "
        "--max-length {params.max_length} --pooling {params.pooling} --device {params.device} "
        "--precision {params.precision} --threads {threads} --cache-dir {params.cache} --out {output} --log {log} 2>> {log}"


rule index_dense:
    input:
        embeddings=f"{RUN}/embeddings",
        candidates=f"{PREPARED}/candidates.jsonl",
    output:
        directory(f"{RUN}/index"),
    params:
        mono=lambda w: monolingual_only(w.benchmark),
        prepared=PREPARED,
    wildcard_constraints:
        **DENSE_CONSTRAINTS,
    log:
        f"{RESULTS}/logs/index_dense/{{model}}/{{variant}}/{{sampling}}/seed{{seed}}/{{benchmark}}.log",
    threads: config["threads"]["search"]
    resources:
        mem_mb=4000,
    shell:
        "xlir index-dense --embeddings {input.embeddings} --prepared {params.prepared} {params.mono} --threads {threads} "
        "--out {output} --log {log} 2>> {log}"


rule search_dense:
    input:
        embeddings=f"{RUN}/embeddings",
        index=f"{RUN}/index",
        questions=f"{PREPARED}/questions.jsonl",
    output:
        trec=directory(f"{RUN}/trec"),
        ranks=directory(f"{RUN}/ranks"),
    params:
        mono=lambda w: monolingual_only(w.benchmark),
        prepared=PREPARED,
        depth=lambda w: depth_options(w.benchmark, "dense"),
    wildcard_constraints:
        **DENSE_CONSTRAINTS,
    log:
        f"{RESULTS}/logs/search_dense/{{model}}/{{variant}}/{{sampling}}/seed{{seed}}/{{benchmark}}.log",
    benchmark:
        f"{RESULTS}/timing/search_dense/{{model}}/{{variant}}/{{sampling}}/seed{{seed}}/{{benchmark}}.tsv"
    threads: config["threads"]["search"]
    resources:
        mem_mb=4000,
    shell:
        "xlir search-dense --embeddings {input.embeddings} --prepared {params.prepared} --index {input.index} "
        "{params.depth} {params.mono} --threads {threads} --out {output.trec} --out-ranks {output.ranks} --log {log} 2>> {log}"


rule index_bm25:
    input:
        candidates=f"{PREPARED}/candidates.jsonl",
    output:
        directory(f"{RESULTS}/runs/bm25/lexical/none/seed0/{{benchmark}}/index"),
    params:
        mono=lambda w: monolingual_only(w.benchmark),
        prepared=PREPARED,
        languages=lambda w: " ".join(config["benchmarks"][w.benchmark]["languages"]),
    log:
        f"{RESULTS}/logs/index_bm25/{{benchmark}}.log",
    benchmark:
        f"{RESULTS}/timing/index_bm25/{{benchmark}}.tsv"
    threads: config["threads"]["search"]
    shell:
        "xlir index-bm25 --prepared {params.prepared} --languages '{params.languages}' {params.mono} --threads {threads} "
        "--out {output} --log {log} 2>> {log}"


rule search_bm25:
    input:
        index=f"{RESULTS}/runs/bm25/lexical/none/seed0/{{benchmark}}/index",
        questions=f"{PREPARED}/questions.jsonl",
    output:
        trec=directory(f"{RESULTS}/runs/bm25/lexical/none/seed0/{{benchmark}}/trec"),
        ranks=directory(f"{RESULTS}/runs/bm25/lexical/none/seed0/{{benchmark}}/ranks"),
    params:
        mono=lambda w: monolingual_only(w.benchmark),
        prepared=PREPARED,
        depth=lambda w: depth_options(w.benchmark, "bm25"),
        k1=config["evaluation"]["bm25_k1"],
        b=config["evaluation"]["bm25_b"],
    log:
        f"{RESULTS}/logs/search_bm25/{{benchmark}}.log",
    threads: config["threads"]["search"]
    shell:
        "xlir search-bm25 --prepared {params.prepared} --index {input.index} {params.depth} --k1 {params.k1} "
        "--b {params.b} {params.mono} --threads {threads} --out {output.trec} --out-ranks {output.ranks} --log {log} 2>> {log}"


rule evaluate:
    input:
        ranks=f"{RUN}/ranks",
        qrels=f"{PREPARED}/qrels.tsv",
    output:
        metrics=f"{RUN}/metrics.json",
        per_query=f"{RUN}/per_query.tsv",
    params:
        prepared=PREPARED,
        recall_k=lambda w: " ".join(str(k) for k in benchmark_cutoffs(w.benchmark)["recall_k"]),
        ndcg_k=lambda w: " ".join(str(k) for k in benchmark_cutoffs(w.benchmark)["ndcg_k"]),
    log:
        f"{RESULTS}/logs/evaluate/{{model}}/{{variant}}/{{sampling}}/seed{{seed}}/{{benchmark}}.log",
    shell:
        "xlir evaluate --ranks {input.ranks} --prepared {params.prepared} --recall-k {params.recall_k} "
        "--ndcg-k {params.ndcg_k} "
        "--out-metrics {output.metrics} --out-per-query {output.per_query} --log {log} 2>> {log}"


rule verify_trec_eval:
    input:
        trec=lambda w: f"{RESULTS}/runs/{w.flat_run.replace('+', '/')}/{w.benchmark}/trec",
        ranks=lambda w: f"{RESULTS}/runs/{w.flat_run.replace('+', '/')}/{w.benchmark}/ranks",
        qrels=f"{PREPARED}/qrels.tsv",
    output:
        f"{RESULTS}/checks/trec_eval/{{benchmark}}/{{flat_run}}.json",
    params:
        prepared=PREPARED,
        recall_k=lambda w: " ".join(str(k) for k in benchmark_cutoffs(w.benchmark)["recall_k"]),
        ndcg_k=lambda w: " ".join(str(k) for k in benchmark_cutoffs(w.benchmark)["ndcg_k"]),
        trec_depth=f"--trec-depth {config['evaluation']['trec_depth']}" if config["evaluation"]["trec_depth"] else "",
    log:
        f"{RESULTS}/logs/verify_trec_eval/{{benchmark}}/{{flat_run}}.log",
    benchmark:
        f"{RESULTS}/timing/verify_trec_eval/{{benchmark}}/{{flat_run}}.tsv"
    shell:
        "xlir verify-trec-eval --trec {input.trec} --ranks {input.ranks} --prepared {params.prepared} "
        "--recall-k {params.recall_k} --ndcg-k {params.ndcg_k} {params.trec_depth} --out {output} "
        "--log {log} 2>> {log}"
