# xlir: layer-wise vs uniform parameter scaling for hybrid-batch multilingual dense retrieval.
# Run:  snakemake --cores 2 all          (see README.md)
import os
import shlex
import sys

from snakemake.utils import min_version, validate

min_version("9.0")

# The embedded default, unless the user names a complete config with --configfile
# (which would otherwise be merged into the default, key by key).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


# a config file is data, never code (YTE templates are refused: xlir.config_checks)
from xlir.common.config_files import refuse_config_code

refuse_config_code([*workflow.overwrite_configfiles, *([] if workflow.overwrite_configfiles else ["config/config.yaml"])])

validate(config, schema="config/schema.yaml", set_default=True)

# Jobs call the `xlir` command of the environment Snakemake runs in (e.g. .venv/bin): its
# folder leads PATH in every job's shell (bash strict mode kept, as Snakemake's default prefix).
shell.prefix(f"set -euo pipefail; export PATH={shlex.quote(os.path.dirname(sys.executable))}:\"$PATH\"; ")


include: "workflow/rules/common.smk"

# the wildcards' values: the configured names (common.smk), and the untrained runs' placeholders
wildcard_constraints:
    model=_alternatives(MODELS + ["bm25"]),
    variant=_alternatives(VARIANTS + list(SWEEP_RUNS) + ["zeroshot", "lexical"]),
    sampling=_alternatives(SAMPLINGS + ["none"]),
    seed=r"\d+",
    benchmark=_alternatives(BENCHMARKS + [DEV]),
    lang=r"[a-z]{2,3}",


include: "workflow/rules/model.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/benchmarks.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/retrieval.smk"
include: "workflow/rules/evaluation.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/shard.smk"


rule all:
    input:
        "results/report/index.html",
        trec_eval_checks(),
        ANALYSIS_OUTPUTS,


# Shards (workflow/rules/shard.smk): one part of the grid, exported to results/shards/<study>/<shard>/.
rule shard_selection:
    input:
        f"{SHARD_DIR}/selection",


rule shard_baselines:
    input:
        f"{SHARD_DIR}/baselines",


rule shard_seeds:
    input:
        f"{SHARD_DIR}/{seeds_shard_name()}",
