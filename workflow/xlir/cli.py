"""The `xlir` command line: one subcommand per Snakemake rule.

Each stage of the DAG is a subpackage with a `commands.py` that holds its subcommands
(parser beside handler); this module only assembles them, in DAG order, and runs one."""

from __future__ import annotations

import argparse
import sys
import time

from xlir.analysis import commands as analysis_commands
from xlir.benchmarks import commands as benchmarks_commands
from xlir.common.io import InputError, collector_of, setup_logging, write_warnings
from xlir.data import commands as data_commands
from xlir.evaluation import commands as evaluation_commands
from xlir.model import commands as model_commands
from xlir.report import commands as report_commands
from xlir.retrieval import commands as retrieval_commands
from xlir.shard import commands as shard_commands
from xlir.train import commands as train_commands

#: the stages in DAG order: (subpackage, its commands module)
STAGES = (
    ("model", model_commands),
    ("data", data_commands),
    ("benchmarks", benchmarks_commands),
    ("train", train_commands),
    ("retrieval", retrieval_commands),
    ("evaluation", evaluation_commands),
    ("analysis", analysis_commands),
    ("report", report_commands),
    ("shard", shard_commands),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xlir", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for _stage, commands in STAGES:
        commands.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    log = setup_logging(args.log)
    started = time.time()
    log.info("xlir %s started", args.command)
    try:
        args.func(args)
    except InputError as error:
        log.error("bad input: %s", error)
        return 2
    except Exception:
        log.exception("xlir %s failed", args.command)
        return 1
    finally:
        # the job's warnings beside its log (results/logs/.../<job>.warnings.json): the report lists them
        collector = collector_of(log)
        if args.log and collector is not None:
            write_warnings(args.log, args.command, collector)
    log.info("xlir %s finished in %.1fs", args.command, time.time() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
