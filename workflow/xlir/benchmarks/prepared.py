"""The files of a prepared benchmark: what `prepare_benchmark` writes and every later stage reads.

- `questions.jsonl`: {qid, lang, id, text}, plus `title` (article title or null) where the
  benchmark has articles (LAReQA)
- `candidates.jsonl`: {cid, lang, text, context}, plus `title` likewise
- `qrels.tsv`: TREC qrels, `qid 0 cid rel`
- `stats.json`: counts per language

Rules pass each file by name (Snakemake tracks them); `PreparedFiles.in_folder` gives
the conventional names in one folder, for library use and tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PreparedFiles:
    questions: Path
    candidates: Path
    qrels: Path | None = None  # None where only the texts are read (leakage checks)
    stats: Path | None = None

    @classmethod
    def in_folder(cls, folder: str | Path) -> PreparedFiles:
        folder = Path(folder)
        return cls(folder / "questions.jsonl", folder / "candidates.jsonl", folder / "qrels.tsv", folder / "stats.json")


def as_prepared_files(target: str | Path | PreparedFiles) -> PreparedFiles:
    """The files to write or read: given, or by their conventional names in a folder."""
    return target if isinstance(target, PreparedFiles) else PreparedFiles.in_folder(target)
