"""Stage 7 subcommands (rule file `workflow/rules/report.smk`): `aggregate`, `compare`, `report`, and
the planning tool `plan-time` (no rule: `xlir plan-time --configfile ...`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from xlir.common.cli_args import add_command, json_arg

MANIFEST_HELP = "the grid (JSON): config, runs, benchmarks"


def add_aggregate(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "aggregate", run_aggregate, "every run's metrics.json in one tidy table (metrics.csv)")
    p.add_argument("--manifest", required=True, type=json_arg, help=MANIFEST_HELP)
    p.add_argument("--out", required=True, type=Path, help="tidy CSV, one row per measurement")


def run_aggregate(a: argparse.Namespace) -> None:
    from xlir.report.aggregate import aggregate_metrics

    aggregate_metrics(a.manifest, a.out)


def add_compare(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub, "compare", run_compare, "paired bootstrap CIs and randomisation tests between runs (comparisons.csv)"
    )
    p.add_argument("--manifest", required=True, type=json_arg, help=MANIFEST_HELP)
    p.add_argument("--out", required=True, type=Path, help="CSV, one row per comparison")


def run_compare(a: argparse.Namespace) -> None:
    from xlir.report.compare import compare_runs

    compare_runs(a.manifest, a.out)


def add_report(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "report", run_report, "the report: verdict, tables, figures, provenance (HTML + Markdown)")
    p.add_argument("--manifest", type=json_arg, help=MANIFEST_HELP)
    p.add_argument("--metrics", type=Path, help="metrics.csv of `xlir aggregate`")
    p.add_argument("--comparisons", type=Path, help="comparisons.csv of `xlir compare`")
    p.add_argument("--out-html", type=Path, help="self-contained HTML report")
    p.add_argument("--out-markdown", type=Path, help="its Markdown twin")
    p.add_argument("--out-verdict", type=Path, help="the verdict alone (Markdown)")
    p.add_argument("--out-claims", type=Path, help="the claims table (CSV)")
    p.add_argument("--out-figures", type=Path, help="figures folder, beside the HTML (PNG + SVG)")
    p.add_argument(
        "--shards",
        nargs="+",
        type=Path,
        help="build everything (metrics.csv, comparisons.csv, the report) from these exported shards "
        "(results/shards/<study>/<shard>, studies/<study>/shards/*) into --out-dir; no models or data needed",
    )
    p.add_argument("--out-dir", type=Path, help="with --shards: the report's folder")
    p.add_argument("--keep-tree", type=Path, help="with --shards: keep the merged results tree in this folder")


def run_report(a: argparse.Namespace) -> None:
    if a.shards:
        from xlir.report.shards import report_from_shards

        if a.out_dir is None:
            raise SystemExit("xlir report --shards: --out-dir is required")
        report_from_shards(a.shards, a.out_dir, a.keep_tree)
        return
    missing = [
        flag
        for flag, value in (
            ("--manifest", a.manifest),
            ("--metrics", a.metrics),
            ("--comparisons", a.comparisons),
            ("--out-html", a.out_html),
            ("--out-markdown", a.out_markdown),
            ("--out-verdict", a.out_verdict),
            ("--out-claims", a.out_claims),
            ("--out-figures", a.out_figures),
        )
        if value is None
    ]
    if missing:
        raise SystemExit(f"xlir report: {', '.join(missing)} required (or --shards DIR... --out-dir DIR)")
    from xlir.report.report import ReportFiles, build_report

    out = ReportFiles(a.out_html, a.out_markdown, a.out_verdict, a.out_claims, a.out_figures)
    build_report(a.manifest, out, a.metrics, a.comparisons)


def add_plan_time(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "plan-time",
        run_plan_time,
        "the projected wall time of a grid before it runs: snakemake -n x measured per-job times "
        "(xlir.report.plan_time)",
    )
    p.add_argument(
        "--configfile", nargs="*", type=Path, default=[], help="the study's config file(s), as for snakemake"
    )
    p.add_argument(
        "--timings",
        nargs="+",
        type=Path,
        required=True,
        help="folder(s) of Snakemake benchmark files from earlier runs (results/timing)",
    )
    p.add_argument("--cores", type=int, default=2, help="the --cores the study will run with")
    p.add_argument("--snakefile", type=Path, default=Path("Snakefile"))
    p.add_argument("--directory", type=Path, help="the study's working directory (snakemake --directory)")
    p.add_argument("--target", nargs="*", default=["all"], help="snakemake targets (default: all)")
    p.add_argument("--forceall", action="store_true", help="plan every job, not only those left to run")
    p.add_argument("--dry-run-file", type=Path, help="a saved `snakemake -n` printout instead of running it")
    p.add_argument("--json", action="store_true", help="JSON instead of text")
    p.add_argument("--out", type=Path, help="also write the output to this file")


def run_plan_time(a: argparse.Namespace) -> None:
    from xlir.common.io import atomic_open
    from xlir.report.plan_time import plan_command

    text = plan_command(
        snakefile=a.snakefile,
        configfiles=a.configfile,
        targets=a.target,
        timing_dirs=a.timings,
        cores=a.cores,
        directory=a.directory,
        forceall=a.forceall,
        dry_run_file=a.dry_run_file,
        as_json=a.json,
    )
    if a.out:
        with atomic_open(a.out) as handle:
            handle.write(text + "\n")
    print(text)


def register(sub: argparse._SubParsersAction) -> None:
    from xlir.report.plan_seeds import add_plan_seeds  # planning tool, no rule: `xlir plan-seeds`

    for add in (add_aggregate, add_compare, add_report, add_plan_time, add_plan_seeds):
        add(sub)
