"""Stage 7 subcommands (rule file `workflow/rules/report.smk`): `aggregate`, `compare`, `report`."""

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
    p.add_argument("--manifest", required=True, type=json_arg, help=MANIFEST_HELP)
    p.add_argument("--metrics", required=True, type=Path, help="metrics.csv of `xlir aggregate`")
    p.add_argument("--comparisons", required=True, type=Path, help="comparisons.csv of `xlir compare`")
    p.add_argument("--out-html", required=True, type=Path, help="self-contained HTML report")
    p.add_argument("--out-markdown", required=True, type=Path, help="its Markdown twin")
    p.add_argument("--out-verdict", required=True, type=Path, help="the verdict alone (Markdown)")
    p.add_argument("--out-claims", required=True, type=Path, help="the claims table (CSV)")
    p.add_argument("--out-figures", required=True, type=Path, help="figures folder, beside the HTML (PNG + SVG)")


def run_report(a: argparse.Namespace) -> None:
    from xlir.report.report import ReportFiles, build_report

    out = ReportFiles(a.out_html, a.out_markdown, a.out_verdict, a.out_claims, a.out_figures)
    build_report(a.manifest, out, a.metrics, a.comparisons)


def register(sub: argparse._SubParsersAction) -> None:
    for add in (add_aggregate, add_compare, add_report):
        add(sub)
