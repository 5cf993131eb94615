# Stage 2: English QA pairs, machine translation, MT quality, training pairs.


rule fetch_qa:
    output:
        directory(f"{RESOURCES}/qa/{{dataset}}"),
    wildcard_constraints:
        dataset=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    params:
        kind=shell_words(QA_SOURCE["kind"]),
        languages=QA_SOURCE.get("languages") or [],
        mirror=option("--mirror", config["data"]["mirror"]),
        download="--download" if config["data"]["download"] else "",
        verify=str(config["data"]["verify_checksums"]).lower(),
    log:
        f"{RESULTS}/logs/fetch_qa/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/timing/fetch_qa/{{dataset}}.tsv",
    conda:
        "../../envs/xlir.yaml"
    shell:
        "exec xlir fetch-qa --kind {params.kind} --dataset {wildcards.dataset} --languages {params.languages:q} "
        "{params.mirror} {params.download} --verify-checksums {params.verify} --out-dir {output} "
        "--log {log} 2>> {log}"


rule prepare_qa:
    input:
        lambda w: [qa_source_path()] if qa_source_path() else [],
    output:
        pairs=f"{RESULTS}/data/qa/pairs.jsonl",
        english=f"{RESULTS}/data/qa/en.jsonl",
        references=f"{RESULTS}/data/qa/references.tsv",
        split=f"{RESULTS}/data/qa/split.json",
    params:
        qa=as_json(config["qa"]),
        source=option("--source-path", qa_source_path()),
        network="--allow-network" if config["data"]["download"] else "",
    log:
        f"{RESULTS}/logs/prepare_qa.log",
    benchmark:
        f"{RESULTS}/timing/prepare_qa.tsv",
    conda:
        "../../envs/xlir.yaml"
    shell:
        "exec xlir prepare-qa --qa {params.qa} {params.source} {params.network} --out-pairs {output.pairs} "
        "--out-english {output.english} --out-references {output.references} --out-split {output.split} "
        "--log {log} 2>> {log}"


rule translate:
    input:
        f"{RESULTS}/data/qa/en.jsonl",
    output:
        f"{RESULTS}/data/mt/{{lang}}.jsonl",
    params:
        backend=as_json(mt_backend()),
    log:
        f"{RESULTS}/logs/translate/{{lang}}.log",
    benchmark:
        f"{RESULTS}/timing/translate/{{lang}}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
        # the MT cache's location changes no translation: a resource, so moving it reruns nothing
        mt_cache=lambda w: translation_cache(w.lang),
    conda:
        "../../envs/xlir.yaml"
    shell:
        "exec xlir translate --qa {input} --lang {wildcards.lang} --backend {params.backend} "
        "--cache {resources.mt_cache:q} --out {output} --log {log} 2>> {log}"


rule mt_quality:
    input:
        qa=f"{RESULTS}/data/qa/en.jsonl",
        mt=f"{RESULTS}/data/mt/{{lang}}.jsonl",
        # the source's own human texts: MT is scored against them where a pair has both
        references=config["translation"]["references"] or f"{RESULTS}/data/qa/references.tsv",
    output:
        f"{RESULTS}/data/mt/{{lang}}.quality.json",
    params:
        backend=as_json(mt_backend()),
    resources:
        mt_cache=lambda w: translation_cache(w.lang),  # a resource, not a param: see rule translate
    log:
        f"{RESULTS}/logs/mt_quality/{{lang}}.log",
    benchmark:
        f"{RESULTS}/timing/mt_quality/{{lang}}.tsv"
    conda:
        "../../envs/xlir.yaml"
    shell:
        "exec xlir mt-quality --qa {input.qa} --mt {input.mt} --lang {wildcards.lang} --backend {params.backend} "
        "--cache {resources.mt_cache:q} --references {input.references:q} --out {output} --log {log} 2>> {log}"


rule build_train_set:
    input:
        pairs=f"{RESULTS}/data/qa/pairs.jsonl",
        split=f"{RESULTS}/data/qa/split.json",
        mt=[f"{RESULTS}/data/mt/{lang}.jsonl" for lang in TRAIN_MT_LANGS],
    output:
        pairs=f"{RESULTS}/data/train/pairs.jsonl",
        dev=f"{RESULTS}/data/dev/pairs.jsonl",
        stats=f"{RESULTS}/data/train/stats.json",
    params:
        languages=TRAIN_LANGS,
        ngram=config["leakage"]["ngram"],
        threshold=config["leakage"]["jaccard_threshold"],
    log:
        f"{RESULTS}/logs/build_train_set.log",
    benchmark:
        f"{RESULTS}/timing/build_train_set.tsv",
    conda:
        "../../envs/xlir.yaml"
    shell:
        "exec xlir build-train-set --pairs {input.pairs} --split {input.split} --mt {input.mt:q} "
        "--languages {params.languages:q} --ngram {params.ngram} --threshold {params.threshold} "
        "--out {output.pairs} --out-dev {output.dev} --out-stats {output.stats} --log {log} 2>> {log}"
