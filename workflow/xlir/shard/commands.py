"""Stage 8 subcommands (rule file `workflow/rules/shard.smk`): `export-shard`, and the check tool
`compare-shards` (no rule: it compares two exports, e.g. one seed rerun on another machine)."""

from __future__ import annotations

import argparse
from pathlib import Path

from xlir.common.cli_args import add_command, json_arg


def add_export_shard(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "export-shard", run_export_shard, "a shard's small result files and manifest (no models)")
    p.add_argument("--contents", required=True, type=json_arg, help="JSON: study, shard, kind, design, files, ...")
    p.add_argument("--results", required=True, type=Path, help="the results folder the files are below")
    p.add_argument("--out", required=True, type=Path, help="results/shards/<study>/<shard>")
    p.add_argument("--repo", type=Path, default=Path("."), help="the code's git checkout (its commit is recorded)")


def run_export_shard(a: argparse.Namespace) -> None:
    from xlir.shard.export_shard import export_shard

    export_shard(a.contents, a.results, a.out, a.repo)


def add_compare_shards(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub, "compare-shards", run_compare_shards, "per-query scores of two shards' shared runs (a rerun's check)"
    )
    p.add_argument("a", type=Path, help="a shard folder (the reference, e.g. studies/lareqa/shards/seeds-13)")
    p.add_argument("b", type=Path, help="a shard of the same design sharing (run, seed)s, e.g. a rerun")
    p.add_argument(
        "--tolerance",
        type=float,
        default=None,
        help="largest |difference| of a mean metric that passes (default: half of A's report.min_effect)",
    )
    p.add_argument("--out", type=Path, default=None, help="TSV of every (run, benchmark, setting, metric) row")


def run_compare_shards(a: argparse.Namespace) -> None:
    from xlir.shard.compare_shards import compare_shards, summary_text, write_rows

    rows, summary = compare_shards(a.a, a.b, a.tolerance)
    if a.out:
        write_rows(rows, a.out)
    print(summary_text(rows, summary))
    if summary["failed"]:
        raise SystemExit(1)


def register(sub: argparse._SubParsersAction) -> None:
    add_export_shard(sub)
    add_compare_shards(sub)
