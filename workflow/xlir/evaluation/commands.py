"""Stage 6 subcommands (rule file `workflow/rules/evaluation.smk`): `evaluate`, `verify-trec-eval`."""

from __future__ import annotations

import argparse
from pathlib import Path

from xlir.common.cli_args import add_command


def _add_cutoffs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--qrels", required=True, type=Path, help="prepared qrels.tsv")
    p.add_argument("--recall-k", type=int, nargs="+", default=[1, 10])
    p.add_argument("--ndcg-k", type=int, nargs="*", default=[])


def add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "evaluate", run_evaluate, "mAP, Recall@k, nDCG@k and rank distance per setting")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--trec", type=Path, help="folder of TREC run files")
    source.add_argument("--ranks", type=Path, help="folder of relevant-rank files (full-depth metrics)")
    _add_cutoffs(p)
    p.add_argument("--out-metrics", required=True, type=Path)
    p.add_argument("--out-per-query", required=True, type=Path)


def run_evaluate(a: argparse.Namespace) -> None:
    from xlir.evaluation.evaluate import evaluate_and_write

    evaluate_and_write(
        a.qrels,
        a.out_metrics,
        a.out_per_query,
        ranks_dir=a.ranks,
        trec_dir=a.trec,
        recall_ks=tuple(a.recall_k),
        ndcg_ks=tuple(a.ndcg_k),
    )


def add_verify_trec_eval(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "verify-trec-eval", run_verify_trec_eval, "check our metrics against Pyserini's trec_eval")
    p.add_argument("--trec", required=True, type=Path)
    p.add_argument("--ranks", required=True, type=Path)
    _add_cutoffs(p)
    p.add_argument("--trec-depth", type=int)
    p.add_argument("--out", required=True, type=Path)


def run_verify_trec_eval(a: argparse.Namespace) -> None:
    from xlir.evaluation.verify_trec_eval import check_run

    check_run(a.trec, a.ranks, a.qrels, a.out, tuple(a.recall_k), tuple(a.ndcg_k), a.trec_depth, a.log)


def register(sub: argparse._SubParsersAction) -> None:
    for add in (add_evaluate, add_verify_trec_eval):
        add(sub)
