"""Evaluation benchmarks (rule file `workflow/rules/benchmarks.smk`): `xlir build-demo-benchmark`
(`build_demo_benchmark.py`), `xlir fetch-benchmark` (`fetch_benchmark.py`), `xlir prepare-benchmark`
(`prepare_benchmark.py`, with the loaders `lareqa.py` and `miracl.py`), and the zero-shot guards
`xlir check-leakage` / `xlir drop-overlapping-pairs` (`leakage.py`). `prepared.py` names the
files a prepared benchmark consists of, `qrels.py` reads its judgements."""
