"""Zero-shot check: no evaluation question or candidate may appear in training.

Every training text (questions and passages, all languages) is compared with every
evaluation question and candidate by the exact and near-duplicate tests of
`xlir.data.overlap`. Where training pairs carry article titles (`title`), the report adds
`article_overlap`: training and evaluation articles in common (`xlir.data.titles`), a
documented property of some benchmark pairs (MLQA-R and XQuAD-R share articles) that is
reported, never a failure.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path

from xlir.benchmarks.prepared import PreparedFiles, as_prepared_files
from xlir.common.io import get_logger, read_jsonl, write_json, write_jsonl
from xlir.data.overlap import find_overlap, training_texts
from xlir.data.titles import article_overlap

log = get_logger(__name__)


class LeakageError(RuntimeError):
    """Training data overlaps the evaluation data."""


def evaluation_texts(
    prepared: str | Path | PreparedFiles, label: str = ""
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(origin, text) of a prepared benchmark's questions and of its candidates; origins
    read `{label}question {qid}` and `{label}candidate {cid}`."""
    files = as_prepared_files(prepared)
    questions = [(f"{label}question {q['qid']}", q["text"]) for q in read_jsonl(files.questions)]
    candidates = [(f"{label}candidate {c['cid']}", c["text"]) for c in read_jsonl(files.candidates)]
    return questions, candidates


def evaluation_titles(prepared: str | Path | PreparedFiles) -> list[str | None]:
    """The article `title` of every question and candidate of a prepared benchmark (None where absent)."""
    files = as_prepared_files(prepared)
    return [record.get("title") for path in (files.questions, files.candidates) for record in read_jsonl(path)]


def _by_benchmark(prepared: Mapping[str, str | Path | PreparedFiles] | list[str | Path]) -> dict:
    """Benchmark name -> prepared files; a list of folders is named by each folder
    (`{benchmark}/prepared` -> `benchmark`)."""
    if isinstance(prepared, Mapping):
        return {name: as_prepared_files(files) for name, files in prepared.items()}
    named = {}
    for folder in map(Path, prepared):
        named[folder.parent.name if folder.name == "prepared" else folder.name] = PreparedFiles.in_folder(folder)
    return named


def check_leakage(
    train_pairs_jsonl: Path,
    prepared: str | Path | PreparedFiles,
    out_json: Path,
    ngram: int = 5,
    threshold: float = 0.8,
    fail_on_overlap: bool = True,
) -> dict:
    """Write overlap counts and examples; raise LeakageError when asked to and overlap exists.

    The report's `article_overlap` (`xlir.data.titles.article_overlap`) is filled where the
    training pairs carry titles, else None; it never fails the check."""
    pairs = read_jsonl(train_pairs_jsonl)
    train = training_texts(pairs)
    questions, candidates = evaluation_texts(prepared)
    found = find_overlap(train, questions + candidates, ngram, threshold)  # one index for both
    question_origins = {origin for origin, _ in questions}
    result_q = {kind: [h for h in hits if h["eval"] in question_origins] for kind, hits in found.items()}
    result_c = {kind: [h for h in hits if h["eval"] not in question_origins] for kind, hits in found.items()}
    report = {
        "n_training_texts": len(train),
        "n_eval_questions": len(questions),
        "n_eval_candidates": len(candidates),
        "ngram": ngram,
        "jaccard_threshold": threshold,
        "exact_question_overlap": len(result_q["exact"]),
        "near_question_overlap": len(result_q["near"]),
        "exact_candidate_overlap": len(result_c["exact"]),
        "near_candidate_overlap": len(result_c["near"]),
        "fail_on_overlap": fail_on_overlap,
        "examples": (result_q["exact"] + result_q["near"] + result_c["exact"] + result_c["near"])[:50],
    }
    total = sum(
        report[k]
        for k in (
            "exact_question_overlap",
            "near_question_overlap",
            "exact_candidate_overlap",
            "near_candidate_overlap",
        )
    )
    report["total_overlap"] = total
    report["passed"] = total == 0
    report["article_overlap"] = None
    if any(pair.get("title") for pair in pairs):
        articles = article_overlap((pair.get("title") for pair in pairs), evaluation_titles(prepared))
        report["article_overlap"] = articles
        log.info(
            "leakage: %d of %d evaluation articles also in training (%d training articles; reported, not a failure)",
            articles["n_shared_titles"],
            articles["n_eval_titles"],
            articles["n_training_titles"],
        )
    log.info(
        "leakage: %d training texts vs %d questions + %d candidates: %d overlaps",
        len(train),
        len(questions),
        len(candidates),
        total,
    )
    failed_json = Path(str(out_json) + ".failed.json")
    if total and fail_on_overlap:
        write_json(failed_json, report)
        raise LeakageError(
            f"{total} evaluation texts overlap the training data (details in {out_json}.failed.json); "
            f"set leakage.fail_on_overlap: false to continue anyway"
        )
    failed_json.unlink(missing_ok=True)  # a failure report from an earlier run no longer holds
    write_json(out_json, report)
    return report


def _overlapping_pairs(pairs: list[dict], evaluation: dict[str, list], ngram: int, threshold: float) -> tuple:
    """pair id -> the evaluation texts it matched, and exact / near counts per benchmark."""
    texts = training_texts(pairs)
    matches: dict[str, list[dict]] = defaultdict(list)
    per_benchmark = {}
    for benchmark, eval_texts in evaluation.items():
        found = find_overlap(texts, eval_texts, ngram, threshold)
        per_benchmark[benchmark] = {"exact": len(found["exact"]), "near": len(found["near"])}
        for hit in found["exact"] + found["near"]:
            matches[hit["train"].split("/", 1)[0]].append(hit)
    return matches, per_benchmark


def drop_overlapping_pairs(
    train_pairs_jsonl: Path,
    prepared: Mapping[str, str | Path | PreparedFiles] | list[str | Path],
    out_jsonl: Path,
    out_json: Path,
    ngram: int = 5,
    threshold: float = 0.8,
    dev_pairs_jsonl: Path | None = None,
    out_dev_jsonl: Path | None = None,
) -> dict:
    """Remove every training pair with any text (question or answer, any language) that
    overlaps an evaluation question or candidate of any prepared benchmark, by the same
    exact and near-duplicate tests as `check_leakage`. Writes the kept pairs and a report
    listing the dropped pair ids with the evaluation texts they matched. The dev pairs
    (model selection) go through the same filter when given: selection never sees an
    evaluation text either."""
    evaluation = {}
    for benchmark, files in _by_benchmark(prepared).items():
        questions, candidates = evaluation_texts(files, f"{benchmark} ")
        evaluation[benchmark] = questions + candidates
    pairs = read_jsonl(train_pairs_jsonl)
    matches, per_benchmark = _overlapping_pairs(pairs, evaluation, ngram, threshold)
    kept = [p for p in pairs if p["pair_id"] not in matches]
    report = {
        "n_pairs_in": len(pairs),
        "n_pairs_kept": len(kept),
        "n_pairs_dropped": len(matches),
        "ngram": ngram,
        "jaccard_threshold": threshold,
        "overlaps_by_benchmark": per_benchmark,
        "dropped": {pair_id: hits for pair_id, hits in sorted(matches.items())},
    }
    if dev_pairs_jsonl is not None:
        if out_dev_jsonl is None:
            raise ValueError("drop_overlapping_pairs: dev pairs given without out_dev_jsonl")
        dev = read_jsonl(dev_pairs_jsonl)
        dev_matches, _ = _overlapping_pairs(dev, evaluation, ngram, threshold)
        dev_kept = [p for p in dev if p["pair_id"] not in dev_matches]
        report["dev"] = {
            "n_pairs_in": len(dev),
            "n_pairs_kept": len(dev_kept),
            "n_pairs_dropped": len(dev_matches),
            "dropped": {pair_id: hits for pair_id, hits in sorted(dev_matches.items())},
        }
        write_jsonl(out_dev_jsonl, dev_kept)
    write_jsonl(out_jsonl, kept)
    write_json(out_json, report)
    log.info(
        "zero-shot filter: dropped %d of %d training pairs%s that overlap the evaluation data (%s)",
        len(matches),
        len(pairs),
        f" and {report['dev']['n_pairs_dropped']} of {report['dev']['n_pairs_in']} dev pairs"
        if "dev" in report
        else "",
        ", ".join(f"{b}: {c['exact']} exact, {c['near']} near" for b, c in per_benchmark.items()),
    )
    return report
