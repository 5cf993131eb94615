# Stage 8: shards. One ordinary run of a part of the study's grid, exported (small result files
# and a manifest, no models) to results/shards/<study>/<shard>/ so that it outlives its machine;
# xlir report --shards merges any set of them into the study's report.
#   snakemake --cores 2 shard_selection --configfile config/lareqa.yaml ...   the lr sweep (dev split)
#   snakemake --cores 2 shard_baselines --configfile ...                       zero-shot and BM25
#   snakemake --cores 2 shard_seeds --configfile ... (seeds: the shard's test seeds; selection_from)


rule export_shard:
    input:
        lambda w: shard_files(shard_kind(w.shard)),
    output:
        directory(f"{SHARD_DIR}/{{shard}}"),
    params:
        contents=lambda w: as_json(shard_contents(shard_kind(w.shard), w.shard)),
        # the results folder the exported files are below: results/shards/<study>/<shard> -> results
        results=lambda w, output: os.path.dirname(os.path.dirname(os.path.dirname(output[0]))),
        repo=shell_words(workflow.basedir),
    wildcard_constraints:
        shard=r"selection|baselines|seeds(-\d+)+",
    log:
        f"{RESULTS}/logs/export_shard/{{shard}}.log",
    benchmark:
        f"{RESULTS}/timing/export_shard/{{shard}}.tsv"
    conda:
        "../../envs/xlir.yaml"
    shell:
        "exec xlir export-shard --contents {params.contents} --results {params.results} --out {output} "
        "--repo {params.repo} --log {log} 2>> {log}"
