"""Layer-analysis subcommands (rule file `workflow/rules/analysis.smk`): `probe-set`, `analyze`.

- `xlir probe-set --questions Q --size N --seed S --out probe.json`: the fixed probe set of a
  benchmark (rule `probe_set`);
- `xlir analyze --base-model B --model M --probe probe.json --out DIR`: the layer analysis of
  one run (rule `analyze`); `--questions Q --probe-size N --probe-seed S` in place of `--probe`
  draws the probe set on the spot (recorded with `--out-probe`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from xlir.common.cli_args import add_command, add_list_option


def add_probe_set(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "probe-set", run_probe_set, "the fixed parallel probe set of a benchmark")
    p.add_argument("--questions", required=True, type=Path, help="prepared questions.jsonl")
    p.add_argument("--size", type=int, default=200, help="question ids in the probe set")
    p.add_argument("--seed", type=int, default=0)
    add_list_option(p, "--languages", help="the probe's languages (default: every language of --questions)")
    p.add_argument("--out", required=True, type=Path, help="probe.json")


def run_probe_set(a: argparse.Namespace) -> None:
    from xlir.analysis.probe_set import build_probe, write_probe

    write_probe(a.out, build_probe(a.questions, a.size, a.seed, a.languages or None))


def add_analyze(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "analyze", run_analyze, "per-layer drift, alignment and update size of a run")
    p.add_argument("--base-model", required=True, type=Path, help="the base model (results/models/<model>/base)")
    p.add_argument("--model", required=True, type=Path, help="the run's model folder (merged, or a peft adapter)")
    probe = p.add_mutually_exclusive_group(required=True)
    probe.add_argument("--probe", type=Path, help="a probe.json of `xlir probe-set`")
    probe.add_argument("--questions", type=Path, help="prepared questions.jsonl to draw the probe set from")
    p.add_argument("--probe-size", type=int, default=200, help="with --questions: question ids in the probe set")
    p.add_argument("--probe-seed", type=int, default=0, help="with --questions: the seed of the draw")
    p.add_argument("--out-probe", type=Path, help="with --questions: record the probe set drawn here")
    p.add_argument("--pooling", default="mean", choices=["mean", "cls"])
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=64, help="most texts per batch")
    p.add_argument("--batch-tokens", type=int, default=2048, help="most padded tokens per batch (0: no limit)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--cache-dir", type=Path, help="cache of the base model's layer states (shared by every run)")
    p.add_argument("--out", required=True, type=Path, help="the run's analysis folder")


def run_analyze(a: argparse.Namespace) -> None:
    from xlir.analysis.analyze import analyze
    from xlir.analysis.probe_set import build_probe, read_probe, write_probe

    if a.probe is not None:
        probe = read_probe(a.probe)
    else:
        probe = build_probe(a.questions, a.probe_size, a.probe_seed)
        if a.out_probe is not None:
            write_probe(a.out_probe, probe)
    analyze(
        a.base_model,
        a.model,
        probe,
        a.out,
        pooling=a.pooling,
        max_length=a.max_length,
        batch_size=a.batch_size,
        batch_tokens=a.batch_tokens or None,
        device=a.device,
        threads=a.threads,
        cache_dir=a.cache_dir,
        probe_file=a.probe or a.out_probe,
    )


def register(sub: argparse._SubParsersAction) -> None:
    add_probe_set(sub)
    add_analyze(sub)
