"""xlir: the package behind the Snakemake study of layer-wise vs uniform scaling
for hybrid-batch multilingual dense retrieval. One module per job; the CLI
(`xlir.cli`) is the only entry point the Snakemake rules call."""

__version__ = "0.1.0"
