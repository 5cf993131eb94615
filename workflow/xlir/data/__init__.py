"""Stage 2, QA data (rule file `workflow/rules/data.smk`): `xlir prepare-qa` (`prepare_qa.py`),
`xlir translate` (`translate/`), `xlir mt-quality` (`mt_quality.py`), `xlir build-train-set`
(`build_train_set.py`), and the text-overlap primitive every zero-shot guard uses (`overlap.py`)."""
