# Stage 2: English QA pairs, machine translation, MT quality, training pairs.


rule prepare_qa:
    output:
        pairs=f"{RESULTS}/data/qa/en.jsonl",
        split=f"{RESULTS}/data/qa/split.json",
    params:
        corpus=lambda w: f"--corpus-dir {shlex.quote(config['qa']['corpus_dir'])}" if config["qa"]["corpus_dir"] else "",
        heldout=config["qa"]["heldout_categories"],
        exclude=config["qa"]["exclude_categories"],
        cap=f"--max-per-category {config['qa']['max_pairs_per_category']}" if config["qa"]["max_pairs_per_category"] else "",
        seed=config["qa"]["seed"],
        skip="--skip-malformed" if config["qa"]["skip_malformed"] else "",
    log:
        f"{RESULTS}/logs/prepare_qa.log",
    conda:
        "../../envs/xlir.yaml"
    shell:
        "xlir prepare-qa {params.corpus} --heldout {params.heldout:q} --exclude {params.exclude:q} {params.cap} "
        "--seed {params.seed} {params.skip} --out-pairs {output.pairs} --out-split {output.split} --log {log} 2>> {log}"


rule translate:
    input:
        f"{RESULTS}/data/qa/en.jsonl",
    output:
        f"{RESULTS}/data/mt/{{lang}}.jsonl",
    params:
        backend=as_json(mt_backend()),
        cache=config["translation"]["cache"].replace(".sqlite", "") + "-{lang}.sqlite",
    log:
        f"{RESULTS}/logs/translate/{{lang}}.log",
    benchmark:
        f"{RESULTS}/timing/translate/{{lang}}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    conda:
        "../../envs/xlir.yaml"
    shell:
        "xlir translate --qa {input} --lang {wildcards.lang} --backend {params.backend} "
        "--cache {params.cache} --out {output} --log {log} 2>> {log}"


rule mt_quality:
    input:
        qa=f"{RESULTS}/data/qa/en.jsonl",
        mt=f"{RESULTS}/data/mt/{{lang}}.jsonl",
    output:
        f"{RESULTS}/data/mt/{{lang}}.quality.json",
    params:
        backend=as_json(mt_backend()),
        cache=config["translation"]["cache"].replace(".sqlite", "") + "-{lang}.sqlite",
        references=f"--references {config['translation']['references']}" if config["translation"]["references"] else "",
    log:
        f"{RESULTS}/logs/mt_quality/{{lang}}.log",
    benchmark:
        f"{RESULTS}/timing/mt_quality/{{lang}}.tsv"
    conda:
        "../../envs/xlir.yaml"
    shell:
        "xlir mt-quality --qa {input.qa} --mt {input.mt} --lang {wildcards.lang} --backend {params.backend} "
        "--cache {params.cache} {params.references} --out {output} --log {log} 2>> {log}"


rule build_train_set:
    input:
        qa=f"{RESULTS}/data/qa/en.jsonl",
        split=f"{RESULTS}/data/qa/split.json",
        mt=[f"{RESULTS}/data/mt/{lang}.jsonl" for lang in config["training"]["languages"] if lang != "en"],
    output:
        pairs=f"{RESULTS}/data/train/pairs.jsonl",
        stats=f"{RESULTS}/data/train/stats.json",
    params:
        languages=config["training"]["languages"],
        ngram=config["leakage"]["ngram"],
        threshold=config["leakage"]["jaccard_threshold"],
    log:
        f"{RESULTS}/logs/build_train_set.log",
    conda:
        "../../envs/xlir.yaml"
    shell:
        "xlir build-train-set --qa {input.qa} --split {input.split} --mt {input.mt} --languages {params.languages:q} "
        "--ngram {params.ngram} --threshold {params.threshold} --out {output.pairs} --out-stats {output.stats} "
        "--log {log} 2>> {log}"
