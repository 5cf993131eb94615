# Stage 1: the model, as a transformers (and sentence-transformers) directory.


rule prepare_model:
    output:
        directory(f"{RESULTS}/models/{{model}}/base"),
    params:
        source=lambda w: shell_words(model_cfg(w.model)["source"]),
        extra=lambda w: " ".join(
            option(f"--{key.replace('_', '-')}", model_cfg(w.model)[key]) for key in ("hub_id", "path", "revision")
            if model_cfg(w.model)[key]
        )
        # a hub model with the network off (data.download: false) comes from the local cache only
        + (" --offline" if model_cfg(w.model)["source"] == "hub" and not config["data"]["download"] else ""),
        pooling=lambda w: shell_words(model_cfg(w.model)["pooling"]),
        max_seq_length=lambda w: encode_length(w.model),
    log:
        f"{RESULTS}/logs/prepare_model/{{model}}.log",
    benchmark:
        f"{RESULTS}/timing/prepare_model/{{model}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/xlir.yaml"
    shell:
        "exec xlir prepare-model --source {params.source} {params.extra} --pooling {params.pooling} "
        "--max-seq-length {params.max_seq_length} --out {output} --log {log} 2>> {log}"
