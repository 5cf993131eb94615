"""The files of the layer analysis in a results tree (rule file `workflow/rules/analysis.smk`).

- `{results}/benchmarks/{benchmark}/analysis/probe.json`: the probe set (rule `probe_set`)
- `{run}/{benchmark}/analysis/{layers.tsv, alignment_pairs.tsv, update_size.tsv, summary.json}`:
  one fine-tuned run on one benchmark (rule `analyze`); `{run}` is
  `{results}/runs/{model}/{variant}/{sampling}/seed{seed}`

Only benchmarks with parallel questions (a question id shared by every language) have a
probe set: demo, lareqa and the dev split; MIRACL's questions are monolingual."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from xlir.common.config_files import with_defaults

#: what `xlir analyze` writes in a run's analysis folder
OUTPUTS = ("layers.tsv", "alignment_pairs.tsv", "update_size.tsv", "summary.json")
#: benchmark kinds whose questions are parallel across languages
PARALLEL_KINDS = ("demo", "lareqa", "dev")


def probe_settings(config: Mapping) -> dict:
    """probe_size and probe_seed: `analysis.<key>` of the config, else config/schema.yaml's default."""
    settings = with_defaults(config.get("analysis"), "analysis")
    return {"probe_size": settings["probe_size"], "probe_seed": settings["probe_seed"]}


def analysis_benchmarks(specs: Mapping[str, Mapping]) -> list[str]:
    """The benchmarks (name -> config) a probe set can be drawn from."""
    return [name for name, spec in specs.items() if spec.get("kind") in PARALLEL_KINDS]


def probe_path(results: str, benchmark: str) -> str:
    return f"{results}/benchmarks/{benchmark}/analysis/probe.json"


def analysis_dir(run_dir: str, benchmark: str) -> str:
    return f"{run_dir}/{benchmark}/analysis"


def analysis_outputs(run_dirs: Iterable[str], benchmarks: Iterable[str], files: Iterable[str] = OUTPUTS) -> list[str]:
    """Every analysis file of `run_dirs` (fine-tuned runs) on `benchmarks`."""
    benchmarks, files = list(benchmarks), list(files)
    return [f"{analysis_dir(run, b)}/{name}" for run in run_dirs for b in benchmarks for name in files]
