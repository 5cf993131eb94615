"""Stages 3-4, batches and fine-tuning (rule file `workflow/rules/train.smk`): `xlir plan-batches`
(`plan_batches.py`), `xlir train` (`train.py`: the loop; `variants.py`: the one parser of a
variant's config; `scaling.py`: per-layer learning rates and LoRA ranks; `options.py`: memory and
distribution switches; `contrastive.py`, `losses.py`, `distributed.py`), and the planning tools
`xlir plan-memory` (`plan_memory.py`) and `python -m xlir.train.memcheck`."""
