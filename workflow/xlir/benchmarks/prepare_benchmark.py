"""Rule `prepare_benchmark`: a benchmark's raw files as prepared questions, candidates and qrels
(`xlir.benchmarks.prepared`), by the loader of its kind (LAReQA format for `demo`, `dev` and `lareqa`,
MIRACL's topics / qrels / corpus for `miracl`)."""

from __future__ import annotations

from pathlib import Path

from xlir.benchmarks.lareqa import prepare_lareqa
from xlir.benchmarks.miracl import prepare_miracl
from xlir.benchmarks.prepared import PreparedFiles

KINDS = ("demo", "dev", "lareqa", "miracl")


def prepare_benchmark(
    kind: str, raw_dir: Path, languages: list[str], out: PreparedFiles, max_candidates_per_language: int | None = None
) -> dict:
    if kind not in KINDS:
        raise ValueError(f"benchmark kind {kind!r} is not one of {', '.join(KINDS)}")
    if kind == "miracl":
        return prepare_miracl(raw_dir, languages, out, max_candidates_per_language)
    return prepare_lareqa(raw_dir, languages, out)
