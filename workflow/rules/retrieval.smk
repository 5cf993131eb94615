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
        max_length=lambda w: model_cfg(w.model)["max_length"],
        pooling=lambda w: model_cfg(w.model)["pooling"],
        device=lambda w: model_cfg(w.model)["device"],
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
        "--threads {threads} --out {output} --log {log} 2>> {log}"


rule index_dense:
    input:
        embeddings=f"{RUN}/embeddings",
        candidates=f"{PREPARED}/candidates.jsonl",
    output:
        directory(f"{RUN}/index"),
    params:
        prepared=PREPARED,
    wildcard_constraints:
        **DENSE_CONSTRAINTS,
    log:
        f"{RESULTS}/logs/index_dense/{{model}}/{{variant}}/{{sampling}}/seed{{seed}}/{{benchmark}}.log",
    threads: config["threads"]["search"]
    resources:
        mem_mb=4000,
    shell:
        "xlir index-dense --embeddings {input.embeddings} --prepared {params.prepared} --threads {threads} "
        "--out {output} --log {log} 2>> {log}"


rule search_dense:
    input:
        embeddings=f"{RUN}/embeddings",
        index=f"{RUN}/index",
        questions=f"{PREPARED}/questions.jsonl",
    output:
        directory(f"{RUN}/trec"),
    params:
        prepared=PREPARED,
        depth=f"--depth {config['evaluation']['depth']}" if config["evaluation"]["depth"] else "",
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
        "{params.depth} --threads {threads} --out {output} --log {log} 2>> {log}"


rule index_bm25:
    input:
        candidates=f"{PREPARED}/candidates.jsonl",
    output:
        directory(f"{RESULTS}/runs/bm25/lexical/none/seed0/{{benchmark}}/index"),
    params:
        prepared=PREPARED,
        languages=lambda w: " ".join(config["benchmarks"][w.benchmark]["languages"]),
    log:
        f"{RESULTS}/logs/index_bm25/{{benchmark}}.log",
    benchmark:
        f"{RESULTS}/timing/index_bm25/{{benchmark}}.tsv"
    threads: config["threads"]["search"]
    shell:
        "xlir index-bm25 --prepared {params.prepared} --languages '{params.languages}' --threads {threads} "
        "--out {output} --log {log} 2>> {log}"


rule search_bm25:
    input:
        index=f"{RESULTS}/runs/bm25/lexical/none/seed0/{{benchmark}}/index",
        questions=f"{PREPARED}/questions.jsonl",
    output:
        directory(f"{RESULTS}/runs/bm25/lexical/none/seed0/{{benchmark}}/trec"),
    params:
        prepared=PREPARED,
        depth=f"--depth {config['evaluation']['depth']}" if config["evaluation"]["depth"] else "",
        k1=config["evaluation"]["bm25_k1"],
        b=config["evaluation"]["bm25_b"],
    log:
        f"{RESULTS}/logs/search_bm25/{{benchmark}}.log",
    threads: config["threads"]["search"]
    shell:
        "xlir search-bm25 --prepared {params.prepared} --index {input.index} {params.depth} --k1 {params.k1} "
        "--b {params.b} --threads {threads} --out {output} --log {log} 2>> {log}"


rule evaluate:
    input:
        trec=f"{RUN}/trec",
        qrels=f"{PREPARED}/qrels.tsv",
    output:
        metrics=f"{RUN}/metrics.json",
        per_query=f"{RUN}/per_query.tsv",
    params:
        prepared=PREPARED,
        recall_k=" ".join(str(k) for k in config["evaluation"]["recall_k"]),
    log:
        f"{RESULTS}/logs/evaluate/{{model}}/{{variant}}/{{sampling}}/seed{{seed}}/{{benchmark}}.log",
    shell:
        "xlir evaluate --trec {input.trec} --prepared {params.prepared} --recall-k {params.recall_k} "
        "--out-metrics {output.metrics} --out-per-query {output.per_query} --log {log} 2>> {log}"
