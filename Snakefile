# xlir: layer-wise vs uniform parameter scaling for hybrid-batch multilingual dense retrieval.
# Run:  snakemake --cores 2 all          (see README.md)
from snakemake.utils import min_version, validate

min_version("9.0")

configfile: "config/config.yaml"


validate(config, schema="config/schema.yaml", set_default=True)


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
