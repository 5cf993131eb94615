"""Stage 8 subcommands (rule file `workflow/rules/shard.smk`): `export-shard`."""

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


def register(sub: argparse._SubParsersAction) -> None:
    add_export_shard(sub)
