"""Stage 8: shards. A shard is one ordinary Snakemake run of a part of a study's grid (the lr
selection, the seed-independent baselines, or one or more test seeds); its export holds the small,
durable results a report is built from (per-query scores, metrics, training summaries, selections,
checks), never models, under results/shards/<study>/<shard>/. Rule file: workflow/rules/shard.smk."""
