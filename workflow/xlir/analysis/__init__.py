"""The layer analysis (stage after evaluation, before the report): where each scaling variant
changes the network, layer by layer.

- `probe_set`: the fixed parallel probe set of a benchmark (ids present in every language, seeded)
- `layer_states`: every layer's pooled representation of the probe texts
- `cka`: linear CKA (representation drift from the base model)
- `alignment`: translation retrieval accuracy and parallel cosine gap per layer
- `update_size`: ||ΔW||_F / ||W||_F per weight group and layer (LoRA: merged update)
- `loading`: the base and run models (a peft adapter merged into the base)
- `commands`: `xlir probe-set` and `xlir analyze`
- `analyze`: the `xlir analyze` job (layers.tsv, alignment_pairs.tsv, update_size.tsv, summary.json)
- `figures`: the report's three figures and its generated paragraph, from plain DataFrames
- `targets`: the analysis outputs of a grid (what the Snakefile / report require)
"""
