"""xlir: the package behind the Snakemake study of layer-wise vs uniform scaling
for hybrid-batch multilingual dense retrieval. One subpackage per stage of the DAG
(`model`, `data`, `benchmarks`, `train`, `retrieval`, `evaluation`, `report`), each
with the modules of its stage and a `commands.py` of its subcommands; `common` holds
what they share. The CLI (`xlir.cli`) is the only entry point the rules call."""

__version__ = "0.1.0"
