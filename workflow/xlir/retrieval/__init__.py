"""Retrieval: Faiss dense indexes/search over precomputed embeddings, the BM25
baseline (Anserini/Lucene), and TREC run files. Importing this package starts
no JVM; the functions that need one call `xlir.java_env.configure_java` first."""
from xlir.retrieval.dense import build_faiss_indexes, dense_search, load_embeddings
from xlir.retrieval.lexical import (
    ANSERINI_ANALYZERS,
    LUCENE_ANALYZERS,
    bm25_search,
    build_bm25_indexes,
    neutral_tokenize,
    resolve_analyzer,
)
from xlir.retrieval.trec import open_trec_run, read_trec_run, write_trec_run

__all__ = [
    "ANSERINI_ANALYZERS",
    "LUCENE_ANALYZERS",
    "bm25_search",
    "build_bm25_indexes",
    "build_faiss_indexes",
    "dense_search",
    "load_embeddings",
    "neutral_tokenize",
    "open_trec_run",
    "read_trec_run",
    "resolve_analyzer",
    "write_trec_run",
]
