"""Benchmark-stage subcommands (rule file `workflow/rules/benchmarks.smk`): `build-demo-benchmark`,
`build-dev-benchmark`, `fetch-benchmark`, `prepare-benchmark`, `check-leakage`, `drop-overlapping-pairs`."""

from __future__ import annotations

import argparse
from pathlib import Path

from xlir.common.cli_args import add_command, add_list_option, bool_arg


def add_build_demo_benchmark(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "build-demo-benchmark", run_build_demo_benchmark, "write the demo benchmark in LAReQA format")
    p.add_argument("--qa", required=True, type=Path)
    p.add_argument("--split", required=True, type=Path)
    p.add_argument("--mt", nargs="*", default=[])
    add_list_option(p, "--languages", required=True)
    p.add_argument("--paragraph-size", type=int, default=4)
    p.add_argument("--out-dir", required=True, type=Path)


def run_build_demo_benchmark(a: argparse.Namespace) -> None:
    from xlir.benchmarks.build_demo_benchmark import build_demo_benchmark
    from xlir.common.io import read_json, read_jsonl

    translations = {Path(p).stem: read_jsonl(p) for p in a.mt}
    split = read_json(a.split)
    build_demo_benchmark(
        read_jsonl(a.qa), split["heldout_pair_ids"], translations, a.languages, a.out_dir, a.paragraph_size
    )


def add_build_dev_benchmark(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub, "build-dev-benchmark", run_build_dev_benchmark, "write the training source's dev split in LAReQA format"
    )
    p.add_argument("--dev", required=True, type=Path, help="dev pairs (build-train-set)")
    add_list_option(p, "--languages", required=True)
    p.add_argument("--paragraph-size", type=int, default=8)
    p.add_argument("--out-dir", required=True, type=Path)


def run_build_dev_benchmark(a: argparse.Namespace) -> None:
    from xlir.benchmarks.build_dev_benchmark import build_dev_benchmark
    from xlir.common.io import atomic_dir

    with atomic_dir(a.out_dir) as staging:
        build_dev_benchmark(a.dev, a.languages, staging, a.paragraph_size)


def add_fetch_benchmark(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "fetch-benchmark", run_fetch_benchmark, "copy a real benchmark from the mirror or download it")
    p.add_argument("--kind", required=True, choices=["lareqa", "miracl"])
    p.add_argument("--dataset", help="lareqa: xquad-r or mlqa-r")
    p.add_argument("--split", default="dev", help="miracl: topics/qrels split")
    add_list_option(p, "--languages", required=True)
    p.add_argument("--mirror", type=Path, help="local folder laid out like the sources (data.mirror)")
    p.add_argument("--download", action="store_true", help="fetch missing files from the official sources")
    p.add_argument("--verify-checksums", type=bool_arg, default=True)
    p.add_argument(
        "--pins", type=Path, help="miracl: JSON file of the SHA-256 recorded at each file's first fetch (checked later)"
    )
    p.add_argument("--out-dir", required=True, type=Path)


def run_fetch_benchmark(a: argparse.Namespace) -> None:
    from xlir.benchmarks.fetch_benchmark import fetch_lareqa, fetch_miracl

    if a.kind == "lareqa":
        fetch_lareqa(a.dataset, a.languages, a.out_dir, a.mirror, a.download, a.verify_checksums)
    else:
        fetch_miracl(a.languages, a.split, a.out_dir, a.mirror, a.download, a.pins, a.verify_checksums)


def add_prepare_benchmark(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "prepare-benchmark",
        run_prepare_benchmark,
        "load benchmark files into questions, candidates, qrels and stats",
    )
    p.add_argument("--kind", default="lareqa", choices=["demo", "dev", "lareqa", "miracl"])
    p.add_argument("--raw-dir", required=True, type=Path)
    add_list_option(p, "--languages", required=True)
    p.add_argument("--max-candidates-per-language", type=int, help="miracl: subsample each corpus")
    p.add_argument("--out-questions", required=True, type=Path)
    p.add_argument("--out-candidates", required=True, type=Path)
    p.add_argument("--out-qrels", required=True, type=Path)
    p.add_argument("--out-stats", required=True, type=Path)


def run_prepare_benchmark(a: argparse.Namespace) -> None:
    from xlir.benchmarks.prepare_benchmark import prepare_benchmark
    from xlir.benchmarks.prepared import PreparedFiles

    out = PreparedFiles(a.out_questions, a.out_candidates, a.out_qrels, a.out_stats)
    prepare_benchmark(a.kind, a.raw_dir, a.languages, out, a.max_candidates_per_language)


def _add_leakage_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--train", required=True, type=Path)
    p.add_argument("--ngram", type=int, default=5)
    p.add_argument("--threshold", type=float, default=0.8)


def add_check_leakage(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "check-leakage", run_check_leakage, "zero-shot check: training vs evaluation overlap")
    _add_leakage_options(p)
    p.add_argument("--questions", required=True, type=Path, help="the benchmark's prepared questions.jsonl")
    p.add_argument("--candidates", required=True, type=Path, help="the benchmark's prepared candidates.jsonl")
    p.add_argument("--fail-on-overlap", type=bool_arg, default=True)
    p.add_argument("--out", required=True, type=Path)


def run_check_leakage(a: argparse.Namespace) -> None:
    from xlir.benchmarks.leakage import check_leakage
    from xlir.benchmarks.prepared import PreparedFiles

    prepared = PreparedFiles(a.questions, a.candidates, qrels=None, stats=None)
    check_leakage(a.train, prepared, a.out, a.ngram, a.threshold, a.fail_on_overlap)


def add_drop_overlapping_pairs(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "drop-overlapping-pairs",
        run_drop_overlapping_pairs,
        "zero-shot filter: drop training pairs that overlap any evaluation text",
    )
    _add_leakage_options(p)
    p.add_argument("--benchmarks", required=True, nargs="+", help="benchmark names, in the order of the files")
    p.add_argument("--questions", required=True, type=Path, nargs="+", help="each benchmark's questions.jsonl")
    p.add_argument("--candidates", required=True, type=Path, nargs="+", help="each benchmark's candidates.jsonl")
    p.add_argument("--out", required=True, type=Path, help="the kept pairs (JSONL)")
    p.add_argument("--out-report", required=True, type=Path, help="dropped pair ids and what they matched (JSON)")
    p.add_argument("--dev", type=Path, help="the dev pairs, filtered the same way")
    p.add_argument("--out-dev", type=Path, help="the kept dev pairs (JSONL); with --dev")


def run_drop_overlapping_pairs(a: argparse.Namespace) -> None:
    from xlir.benchmarks.leakage import drop_overlapping_pairs
    from xlir.benchmarks.prepared import PreparedFiles

    if not len(a.benchmarks) == len(a.questions) == len(a.candidates):
        raise ValueError("--benchmarks, --questions and --candidates must list one entry per benchmark")
    prepared = {
        name: PreparedFiles(q, c, qrels=None, stats=None) for name, q, c in zip(a.benchmarks, a.questions, a.candidates)
    }
    if (a.dev is None) != (a.out_dev is None):
        raise ValueError("--dev and --out-dev go together")
    drop_overlapping_pairs(a.train, prepared, a.out, a.out_report, a.ngram, a.threshold, a.dev, a.out_dev)


def register(sub: argparse._SubParsersAction) -> None:
    for add in (
        add_build_demo_benchmark,
        add_build_dev_benchmark,
        add_fetch_benchmark,
        add_prepare_benchmark,
        add_check_leakage,
        add_drop_overlapping_pairs,
    ):
        add(sub)
