# xlir: layer-wise vs uniform parameter scaling for hybrid-batch multilingual dense retrieval.
# Run:  snakemake --cores 2 all          (see README.md)
import os
import sys

from snakemake.utils import min_version, validate

min_version("9.0")

# The embedded default, unless the user names a complete config with --configfile
# (which would otherwise be merged into the default, key by key).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


validate(config, schema="config/schema.yaml", set_default=True)

# Jobs call the `xlir` command of the environment Snakemake runs in (e.g. .venv/bin).
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")


include: "workflow/rules/common.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/benchmarks.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/retrieval.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        "results/report/index.html",
        trec_eval_checks(),
