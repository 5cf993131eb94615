"""Stage 5 subcommands (rule file `workflow/rules/retrieval.smk`): `encode`, `index-dense`,
`search-dense`, `index-bm25`, `search-bm25`."""

from __future__ import annotations

import argparse
from pathlib import Path

from xlir.common.cli_args import add_command, add_list_option, json_arg
from xlir.model.precision import PRECISIONS

MONOLINGUAL_ONLY_HELP = "no pooled index / cross-language runs (MIRACL)"


def add_encode(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "encode", run_encode, "encode a prepared benchmark with a model")
    p.add_argument("--model", required=True, type=Path)
    p.add_argument("--questions", required=True, type=Path, help="prepared questions.jsonl")
    p.add_argument("--candidates", required=True, type=Path, help="prepared candidates.jsonl")
    p.add_argument("--batch-size", type=int, default=64, help="most texts per batch")
    p.add_argument("--batch-tokens", type=int, default=2048, help="most padded tokens per batch (0: no limit)")
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--pooling", default="mean")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp32",
        help="bf16: forward pass under bf16 autocast; auto: bf16 on a CUDA device or CPU with bf16 instructions",
    )
    p.add_argument("--engine", default="torch", help="torch, onnx (ONNX Runtime, fp32 CPU) or auto")
    p.add_argument("--cache-dir", type=Path, help="embedding cache keyed by model weights and texts")
    p.add_argument("--out", required=True, type=Path)


def run_encode(a: argparse.Namespace) -> None:
    from xlir.benchmarks.prepared import PreparedFiles
    from xlir.retrieval.encode import encode_benchmark

    encode_benchmark(
        a.model,
        PreparedFiles(a.questions, a.candidates),
        a.out,
        batch_size=a.batch_size,
        batch_tokens=a.batch_tokens or None,
        max_length=a.max_length,
        pooling=a.pooling,
        threads=a.threads,
        device=a.device,
        cache_dir=a.cache_dir,
        precision=a.precision,
        engine=a.engine,
    )


def _add_search_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--questions", required=True, type=Path, help="prepared questions.jsonl")
    p.add_argument("--qrels", required=True, type=Path, help="prepared qrels.tsv (for the relevant-rank files)")
    p.add_argument("--index", required=True, type=Path)
    p.add_argument("--depth", type=int, help="ranking depth (default: the whole pool)")
    p.add_argument("--trec-depth", type=int, help="hits kept in the TREC files (default: all)")
    p.add_argument("--monolingual-only", action="store_true", help=MONOLINGUAL_ONLY_HELP)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True, type=Path, help="folder of TREC run files")
    p.add_argument("--out-ranks", type=Path, help="folder of relevant-rank files (xlir.retrieval.ranks)")


def add_index_dense(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "index-dense", run_index_dense, "Pyserini Faiss indexes per candidate language and pooled")
    p.add_argument("--embeddings", required=True, type=Path)
    p.add_argument("--candidates", required=True, type=Path, help="prepared candidates.jsonl")
    p.add_argument("--monolingual-only", action="store_true", help=MONOLINGUAL_ONLY_HELP)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True, type=Path)


def run_index_dense(a: argparse.Namespace) -> None:
    from xlir.retrieval.dense import build_faiss_indexes

    build_faiss_indexes(
        a.embeddings, a.candidates, a.out, threads=a.threads, log_path=a.log, pooled=not a.monolingual_only
    )


def add_search_dense(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "search-dense", run_search_dense, "dense retrieval into TREC run files")
    p.add_argument("--embeddings", required=True, type=Path)
    _add_search_options(p)


def run_search_dense(a: argparse.Namespace) -> None:
    from xlir.retrieval.dense import dense_search

    dense_search(
        a.embeddings,
        a.questions,
        a.index,
        a.out,
        depth=a.depth,
        threads=a.threads,
        trec_depth=a.trec_depth,
        qrels_path=a.qrels,
        out_ranks_dir=a.out_ranks,
        monolingual_only=a.monolingual_only,
    )


def add_index_bm25(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "index-bm25", run_index_bm25, "Pyserini Lucene BM25 indexes per language and pooled")
    p.add_argument("--candidates", required=True, type=Path, help="prepared candidates.jsonl")
    add_list_option(p, "--languages", required=True)
    p.add_argument("--analyzers", type=json_arg, default=None, help="language -> Anserini analyzer (JSON)")
    p.add_argument("--monolingual-only", action="store_true", help=MONOLINGUAL_ONLY_HELP)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True, type=Path)


def run_index_bm25(a: argparse.Namespace) -> None:
    from xlir.retrieval.bm25 import build_bm25_indexes

    build_bm25_indexes(
        a.candidates, a.out, a.languages, a.analyzers, threads=a.threads, log_path=a.log, pooled=not a.monolingual_only
    )


def add_search_bm25(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "search-bm25", run_search_bm25, "BM25 retrieval into TREC run files")
    _add_search_options(p)
    p.add_argument("--k1", type=float, default=0.9)
    p.add_argument("--b", type=float, default=0.4)


def run_search_bm25(a: argparse.Namespace) -> None:
    from xlir.retrieval.bm25 import bm25_search

    bm25_search(
        a.questions,
        a.index,
        a.out,
        depth=a.depth,
        k1=a.k1,
        b=a.b,
        threads=a.threads,
        trec_depth=a.trec_depth,
        qrels_path=a.qrels,
        out_ranks_dir=a.out_ranks,
        monolingual_only=a.monolingual_only,
    )


def register(sub: argparse._SubParsersAction) -> None:
    for add in (add_encode, add_index_dense, add_search_dense, add_index_bm25, add_search_bm25):
        add(sub)
