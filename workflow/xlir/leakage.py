"""Zero-shot check: no evaluation question or candidate may appear in training.

Every training text (questions and passages, all languages) is compared with
every evaluation question and candidate by (1) exact match after Unicode
case-folding and whitespace/punctuation normalisation and (2) near-duplicate
character n-gram Jaccard similarity >= threshold. Candidate pairs for (2) come
from an inverted index over n-grams (n-grams in more than `max_df` training
texts are not used to generate candidates), and the Jaccard of every
candidate pair is then computed exactly.
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path

from tqdm import tqdm

from xlir.io_utils import get_logger, read_jsonl, write_json, write_jsonl

log = get_logger("leakage")
_PUNCT = re.compile(r"[\W_]+", re.UNICODE)


class LeakageError(RuntimeError):
    """Training data overlaps the evaluation data."""


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_PUNCT.sub(" ", text).split())


def char_ngrams(text: str, n: int) -> set[str]:
    padded = f" {normalise(text)} "
    if len(padded) <= n:
        return {padded}
    return {padded[i:i + n] for i in range(len(padded) - n + 1)}


def training_texts(train_pairs: list[dict]) -> list[tuple[str, str]]:
    """(origin, text) for every question and answer of every language."""
    out = []
    for pair in train_pairs:
        for lang, texts in pair["texts"].items():
            out.append((f"{pair['pair_id']}/{lang}/question", texts["question"]))
            out.append((f"{pair['pair_id']}/{lang}/answer", texts["answer"]))
    return out


def evaluation_texts(prepared_dir: Path, label: str = "") -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(origin, text) of a prepared benchmark's questions and of its candidates; origins
    read `{label}question {qid}` and `{label}candidate {cid}`."""
    prepared_dir = Path(prepared_dir)
    questions = [(f"{label}question {q['qid']}", q["text"]) for q in read_jsonl(prepared_dir / "questions.jsonl")]
    candidates = [(f"{label}candidate {c['cid']}", c["text"]) for c in read_jsonl(prepared_dir / "candidates.jsonl")]
    return questions, candidates


def find_overlap(train: list[tuple[str, str]], evaluation: list[tuple[str, str]], n: int = 5,
                 threshold: float = 0.8, min_chars: int = 12, max_df: int = 200) -> dict:
    """Exact and near-duplicate overlaps between training and evaluation texts.

    Texts shorter than `min_chars` after normalisation ("yes", "ok") are only
    checked for exact matches: n-gram similarity is meaningless for them."""
    exact_index: dict[str, list[str]] = defaultdict(list)
    grams: list[set[str]] = []
    postings: dict[str, list[int]] = defaultdict(list)
    for i, (origin, text) in enumerate(train):
        exact_index[normalise(text)].append(origin)
        g = char_ngrams(text, n)
        grams.append(g)
        for gram in g:
            postings[gram].append(i)
    exact, near = [], []
    for origin, text in tqdm(evaluation, desc="leakage check", mininterval=5):
        key = normalise(text)
        if key and key in exact_index:
            exact.append({"eval": origin, "train": exact_index[key][0], "text": text})
            continue
        if len(key) < min_chars:
            continue
        g = char_ngrams(text, n)
        shared: Counter[int] = Counter()
        for gram in g:
            posting = postings.get(gram)
            if posting and len(posting) <= max_df:
                shared.update(posting)
        best, best_j = None, 0.0
        for j, _count in shared.most_common(20):
            inter = len(g & grams[j])
            jaccard = inter / (len(g) + len(grams[j]) - inter)
            if jaccard > best_j:
                best, best_j = j, jaccard
        if best is not None and best_j >= threshold:
            near.append({"eval": origin, "train": train[best][0], "jaccard": round(best_j, 4),
                         "eval_text": text, "train_text": train[best][1]})
    return {"exact": exact, "near": near}


def check_leakage(train_pairs_jsonl: Path, prepared_dir: Path, out_json: Path, ngram: int = 5,
                  threshold: float = 0.8, fail_on_overlap: bool = True) -> dict:
    """Write overlap counts and examples; raise LeakageError when asked to and overlap exists."""
    train = training_texts(read_jsonl(train_pairs_jsonl))
    questions, candidates = evaluation_texts(prepared_dir)
    result_q = find_overlap(train, questions, ngram, threshold)
    result_c = find_overlap(train, candidates, ngram, threshold)
    report = {
        "n_training_texts": len(train), "n_eval_questions": len(questions), "n_eval_candidates": len(candidates),
        "ngram": ngram, "jaccard_threshold": threshold,
        "exact_question_overlap": len(result_q["exact"]), "near_question_overlap": len(result_q["near"]),
        "exact_candidate_overlap": len(result_c["exact"]), "near_candidate_overlap": len(result_c["near"]),
        "fail_on_overlap": fail_on_overlap,
        "examples": (result_q["exact"] + result_q["near"] + result_c["exact"] + result_c["near"])[:50],
    }
    total = sum(report[k] for k in ("exact_question_overlap", "near_question_overlap",
                                    "exact_candidate_overlap", "near_candidate_overlap"))
    report["total_overlap"] = total
    report["passed"] = total == 0
    log.info("leakage: %d training texts vs %d questions + %d candidates: %d overlaps", len(train),
             len(questions), len(candidates), total)
    failed_json = Path(str(out_json) + ".failed.json")
    if total and fail_on_overlap:
        write_json(failed_json, report)
        raise LeakageError(f"{total} evaluation texts overlap the training data (details in {out_json}.failed.json); "
                           f"set leakage.fail_on_overlap: false to continue anyway")
    failed_json.unlink(missing_ok=True)  # a failure report from an earlier run no longer holds
    write_json(out_json, report)
    return report


def drop_overlapping_pairs(train_pairs_jsonl: Path, prepared_dirs: list[Path], out_jsonl: Path, out_json: Path,
                           ngram: int = 5, threshold: float = 0.8) -> dict:
    """Remove every training pair with any text (question or answer, any language) that
    overlaps an evaluation question or candidate of any prepared benchmark, by the same
    exact and near-duplicate tests as `check_leakage`. Writes the kept pairs and a report
    listing the dropped pair ids with the evaluation texts they matched."""
    pairs = read_jsonl(train_pairs_jsonl)
    train = training_texts(pairs)
    matches: dict[str, list[dict]] = defaultdict(list)
    per_benchmark = {}
    for prepared_dir in prepared_dirs:
        prepared_dir = Path(prepared_dir)
        benchmark = prepared_dir.parent.name if prepared_dir.name == "prepared" else prepared_dir.name
        questions, candidates = evaluation_texts(prepared_dir, f"{benchmark} ")
        found = find_overlap(train, questions + candidates, ngram, threshold)
        per_benchmark[benchmark] = {"exact": len(found["exact"]), "near": len(found["near"])}
        for hit in found["exact"] + found["near"]:
            matches[hit["train"].split("/", 1)[0]].append(hit)
    kept = [p for p in pairs if p["pair_id"] not in matches]
    report = {"n_pairs_in": len(pairs), "n_pairs_kept": len(kept), "n_pairs_dropped": len(matches),
              "ngram": ngram, "jaccard_threshold": threshold, "overlaps_by_benchmark": per_benchmark,
              "dropped": {pair_id: hits for pair_id, hits in sorted(matches.items())}}
    write_jsonl(out_jsonl, kept)
    write_json(out_json, report)
    log.info("zero-shot filter: dropped %d of %d training pairs that overlap the evaluation data (%s)",
             len(matches), len(pairs), ", ".join(f"{b}: {c['exact']} exact, {c['near']} near"
                                                  for b, c in per_benchmark.items()))
    return report
