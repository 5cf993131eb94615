# Stage 5: encode, index (Pyserini Faiss / Lucene BM25), retrieve.
# RUN, PREPARED_QUESTIONS, ... and DENSE_CONSTRAINTS: workflow/rules/common.smk.


rule encode:
    input:
        model=model_dir_for,
        questions=PREPARED_QUESTIONS,
        candidates=PREPARED_CANDIDATES,
    output:
        directory(f"{RUN}/embeddings"),
    params:
        batch_size=lambda w: model_cfg(w.model)["encode_batch_size"],
        batch_tokens=lambda w: model_cfg(w.model)["encode_batch_tokens"] or 0,
        max_length=lambda w: encode_length(w.model),
        pooling=lambda w: shell_words(model_cfg(w.model)["pooling"]),
        device=lambda w: shell_words(model_cfg(w.model)["device"]),
        precision=lambda w: shell_words(model_cfg(w.model)["encode_precision"]),
        engine=lambda w: shell_words(model_cfg(w.model)["encode_engine"]),
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
        gpu=lambda w: encode_gpus(w.model),
    conda:
        "../../envs/xlir.yaml"
    shell:
        "exec xlir encode --model {input.model} --questions {input.questions} --candidates {input.candidates} "
        "--batch-size {params.batch_size} --batch-tokens {params.batch_tokens} "
        "--max-length {params.max_length} --pooling {params.pooling} --device {params.device} "
        "--precision {params.precision} --engine {params.engine} --threads {threads} --cache-dir {params.cache} --out {output} --log {log} 2>> {log}"


rule index_dense:
    input:
        embeddings=f"{RUN}/embeddings",
        candidates=PREPARED_CANDIDATES,
    output:
        directory(f"{RUN}/index"),
    params:
        mono=lambda w: monolingual_only(w.benchmark),
    wildcard_constraints:
        **DENSE_CONSTRAINTS,
    log:
        f"{RESULTS}/logs/index_dense/{{model}}/{{variant}}/{{sampling}}/seed{{seed}}/{{benchmark}}.log",
    benchmark:
        f"{RESULTS}/timing/index_dense/{{model}}/{{variant}}/{{sampling}}/seed{{seed}}/{{benchmark}}.tsv",
    threads: config["threads"]["search"]
    resources:
        mem_mb=4000,
    conda:
        "../../envs/xlir.yaml"
    shell:
        "exec xlir index-dense --embeddings {input.embeddings} --candidates {input.candidates} {params.mono} --threads {threads} "
        "--out {output} --log {log} 2>> {log}"


rule search_dense:
    input:
        embeddings=f"{RUN}/embeddings",
        index=f"{RUN}/index",
        questions=PREPARED_QUESTIONS,
        qrels=PREPARED_QRELS,
    output:
        trec=directory(f"{RUN}/trec"),
        ranks=directory(f"{RUN}/ranks"),
    params:
        mono=lambda w: monolingual_only(w.benchmark),
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
    conda:
        "../../envs/xlir.yaml"
    shell:
        "exec xlir search-dense --embeddings {input.embeddings} --questions {input.questions} --qrels {input.qrels} "
        "--index {input.index} "
        "{params.depth} {params.mono} --threads {threads} --out {output.trec} --out-ranks {output.ranks} --log {log} 2>> {log}"


rule index_bm25:
    input:
        candidates=PREPARED_CANDIDATES,
    output:
        directory(f"{RESULTS}/runs/bm25/lexical/none/seed0/{{benchmark}}/index"),
    params:
        mono=lambda w: monolingual_only(w.benchmark),
        languages=lambda w: benchmark_spec(w.benchmark)["languages"],
    log:
        f"{RESULTS}/logs/index_bm25/{{benchmark}}.log",
    benchmark:
        f"{RESULTS}/timing/index_bm25/{{benchmark}}.tsv"
    threads: config["threads"]["search"]
    conda:
        "../../envs/xlir.yaml"
    shell:
        "exec xlir index-bm25 --candidates {input.candidates} --languages {params.languages:q} {params.mono} "
        "--threads {threads} "
        "--out {output} --log {log} 2>> {log}"


rule search_bm25:
    input:
        index=f"{RESULTS}/runs/bm25/lexical/none/seed0/{{benchmark}}/index",
        questions=PREPARED_QUESTIONS,
        qrels=PREPARED_QRELS,
    output:
        trec=directory(f"{RESULTS}/runs/bm25/lexical/none/seed0/{{benchmark}}/trec"),
        ranks=directory(f"{RESULTS}/runs/bm25/lexical/none/seed0/{{benchmark}}/ranks"),
    params:
        mono=lambda w: monolingual_only(w.benchmark),
        depth=lambda w: depth_options(w.benchmark, "bm25"),
        k1=config["evaluation"]["bm25_k1"],
        b=config["evaluation"]["bm25_b"],
    log:
        f"{RESULTS}/logs/search_bm25/{{benchmark}}.log",
    benchmark:
        f"{RESULTS}/timing/search_bm25/{{benchmark}}.tsv",
    threads: config["threads"]["search"]
    conda:
        "../../envs/xlir.yaml"
    shell:
        "exec xlir search-bm25 --questions {input.questions} --qrels {input.qrels} --index {input.index} {params.depth} "
        "--k1 {params.k1} "
        "--b {params.b} {params.mono} --threads {threads} --out {output.trec} --out-ranks {output.ranks} --log {log} 2>> {log}"
