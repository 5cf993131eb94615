"""Stage 6, metrics (rule file `workflow/rules/evaluation.smk`): `xlir evaluate` (`evaluate.py`,
metric definitions in `metrics.py`) and `xlir verify-trec-eval` (`verify_trec_eval.py`)."""
