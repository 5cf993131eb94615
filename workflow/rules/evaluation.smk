# Stage 6: metrics per run, and their agreement with trec_eval.


rule evaluate:
    input:
        ranks=f"{RUN}/ranks",
        qrels=PREPARED_QRELS,
    output:
        metrics=f"{RUN}/metrics.json",
        per_query=f"{RUN}/per_query.tsv",
    params:
        recall_k=lambda w: cutoffs_words(w.benchmark, "recall_k"),
        ndcg_k=lambda w: cutoffs_words(w.benchmark, "ndcg_k"),
    log:
        f"{RESULTS}/logs/evaluate/{{model}}/{{variant}}/{{sampling}}/seed{{seed}}/{{benchmark}}.log",
    benchmark:
        f"{RESULTS}/timing/evaluate/{{model}}/{{variant}}/{{sampling}}/seed{{seed}}/{{benchmark}}.tsv",
    conda:
        "../../envs/xlir.yaml"
    shell:
        "exec xlir evaluate --ranks {input.ranks} --qrels {input.qrels} --recall-k {params.recall_k} "
        "--ndcg-k {params.ndcg_k} "
        "--out-metrics {output.metrics} --out-per-query {output.per_query} --log {log} 2>> {log}"


rule verify_trec_eval:
    input:
        trec=lambda w: f"{RESULTS}/runs/{run_of_flat(w.flat_run)}/{w.benchmark}/trec",
        ranks=lambda w: f"{RESULTS}/runs/{run_of_flat(w.flat_run)}/{w.benchmark}/ranks",
        qrels=PREPARED_QRELS,
    output:
        f"{RESULTS}/checks/trec_eval/{{benchmark}}/{{flat_run}}.json",
    params:
        recall_k=lambda w: cutoffs_words(w.benchmark, "recall_k"),
        ndcg_k=lambda w: cutoffs_words(w.benchmark, "ndcg_k"),
        trec_depth=option("--trec-depth", config["evaluation"]["trec_depth"]),
    log:
        f"{RESULTS}/logs/verify_trec_eval/{{benchmark}}/{{flat_run}}.log",
    benchmark:
        f"{RESULTS}/timing/verify_trec_eval/{{benchmark}}/{{flat_run}}.tsv"
    conda:
        "../../envs/xlir.yaml"
    shell:
        "exec xlir verify-trec-eval --trec {input.trec} --ranks {input.ranks} --qrels {input.qrels} "
        "--recall-k {params.recall_k} --ndcg-k {params.ndcg_k} {params.trec_depth} --out {output} "
        "--log {log} 2>> {log}"
