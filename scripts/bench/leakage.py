"""Benchmark of the leakage check at scale: `find_overlap` (as `check_leakage` runs it) against
datasketch's MinHashLSH, the library a user would pick instead, on the same data.

Training side: `--pairs` training pairs (question + answer, so twice as many texts) of
Wikipedia-like sentences drawn from a Zipfian vocabulary. Evaluation side: `--candidates`
candidate sentences and `--questions` questions, synthetic in the same way, or the prepared
questions and candidates of real LAReQA files (`--lareqa DIR --langs en de ...`, optional).
`--exact` and `--near` evaluation texts get a planted copy among the training texts (exact:
case and punctuation changed; near: a typo, a word replaced or dropped, kept only when the
true character n-gram Jaccard stays >= the threshold), so the recall of both methods is measured.

    python scripts/bench/leakage.py --out results/bench_leakage.json
    python scripts/bench/leakage.py --lareqa /work/shared/data/lareqa/xquad-r --langs en de es

Prints a table and writes it as JSON with `--out`. Peak memory is the process's resident-set
high-water mark during each method (Linux: reset through /proc/self/clear_refs).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "workflow"))

from xlir.data.overlap import char_ngrams, find_overlap, normalise  # noqa: E402

SYLLABLES = [c + v for c in "bcdfghjklmnprstvwz" for v in ("a", "e", "i", "o", "u", "ai", "ou", "ea")]
QUESTION_WORDS = ["What", "Who", "When", "Where", "Which", "How many", "Why", "In what year"]


def vocabulary(rng: np.random.Generator, size: int) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        word = "".join(rng.choice(SYLLABLES, size=rng.integers(1, 5)))
        words.add(word.capitalize() if rng.random() < 0.15 else word)  # names
    # Zipf ranks by length (frequent words are short), ties in random order
    return sorted(sorted(words), key=lambda w: (len(w), rng.random()))


class SentenceMaker:
    """Sentences of Zipf-distributed words (exponent ~1.1, as in running text), with years and numbers."""

    def __init__(self, rng: np.random.Generator, vocab_size: int) -> None:
        self.rng = rng
        self.words = np.array(vocabulary(rng, vocab_size), dtype=object)
        weights = 1.0 / np.arange(1, vocab_size + 1) ** 1.1
        self.p = weights / weights.sum()

    def sentences(self, count: int, low: int, high: int, question: bool = False) -> list[str]:
        lengths = self.rng.integers(low, high + 1, size=count)
        words = self.words[self.rng.choice(len(self.words), size=int(lengths.sum()), p=self.p)]
        numbers = self.rng.integers(1000, 2025, size=count)
        out, start = [], 0
        for i, length in enumerate(lengths):
            part = list(words[start : start + length])
            start += length
            if i % 3 == 0:
                part.insert(len(part) // 2, str(numbers[i]))
            if question:
                out.append(f"{QUESTION_WORDS[i % len(QUESTION_WORDS)]} {' '.join(part)}?")
            else:
                part[len(part) // 2] += ","
                out.append(f"{' '.join(part).capitalize()}.")
        return out


def jaccard(a: str, b: str, n: int) -> float:
    ga, gb = char_ngrams(a, n), char_ngrams(b, n)
    return len(ga & gb) / len(ga | gb)


def exact_copy(rng: np.random.Generator, text: str) -> str:
    return (text.upper() if rng.random() < 0.5 else text.lower()).rstrip(".?!") + " !"


def near_copy(rng: np.random.Generator, text: str, words: np.ndarray, n: int, threshold: float) -> str | None:
    for _ in range(20):
        tokens = text.split()
        where = int(rng.integers(len(tokens)))
        edit = rng.integers(3)
        if edit == 0 and len(tokens[where]) > 3:  # a typo: two letters swapped
            t = tokens[where]
            k = int(rng.integers(1, len(t) - 2))
            tokens[where] = t[:k] + t[k + 1] + t[k] + t[k + 2 :]
        elif edit == 1:
            tokens[where] = str(words[rng.integers(len(words))])
        else:
            del tokens[where]
        copy = " ".join(tokens)
        if normalise(copy) != normalise(text) and jaccard(copy, text, n) >= threshold:
            return copy
    return None


def lareqa_eval(folder: Path, langs: list[str]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    from xlir.benchmarks.lareqa import load_lareqa

    benchmark = load_lareqa(folder, langs)
    questions = [(f"question {q['qid']}", q["text"]) for q in benchmark.questions]
    candidates = [(f"candidate {c['cid']}", c["text"]) for c in benchmark.candidates]
    return questions, candidates


def build_data(a: argparse.Namespace) -> tuple[list[tuple[str, str]], list[tuple[str, str]], dict[str, str]]:
    """(training texts, evaluation texts, planted: eval origin -> 'exact' | 'near')."""
    rng = np.random.default_rng(a.seed)
    maker = SentenceMaker(rng, a.vocab)
    if a.lareqa:
        questions, candidates = lareqa_eval(Path(a.lareqa), a.langs)
    else:
        questions = [(f"question q{i}", t) for i, t in enumerate(maker.sentences(a.questions, 5, 12, question=True))]
        candidates = [(f"candidate c{i}", t) for i, t in enumerate(maker.sentences(a.candidates, 10, 30))]
    evaluation = questions + candidates
    train_q = maker.sentences(a.pairs, 5, 12, question=True)
    train_a = maker.sentences(a.pairs, 10, 30)
    # plant copies of evaluation texts among the training texts, each in its own pair
    eligible = [i for i, (_, t) in enumerate(evaluation) if len(t.split()) >= 6]
    chosen = rng.choice(eligible, size=a.exact + a.near, replace=False)
    slots = rng.choice(a.pairs, size=len(chosen), replace=False)
    planted: dict[str, str] = {}
    for k, (i, slot) in enumerate(zip(chosen, slots)):
        origin, text = evaluation[i]
        copy = exact_copy(rng, text) if k < a.exact else near_copy(rng, text, maker.words, a.ngram, a.threshold)
        if copy is None:
            continue
        planted[origin] = "exact" if k < a.exact else "near"
        if rng.random() < 0.5:
            train_q[slot] = copy
        else:
            train_a[slot] = copy
    train = []
    for i, (q, ans) in enumerate(zip(train_q, train_a)):
        train += [(f"p{i:06d}/en/question", q), (f"p{i:06d}/en/answer", ans)]
    return train, evaluation, planted


def peak_rss_reset() -> int:
    """Reset the resident-set high-water mark; return the current resident set (bytes)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    return _status("VmRSS")


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def measure(fn: Callable[[], set[str]]) -> dict:
    before = peak_rss_reset()
    start = time.perf_counter()
    flagged = fn()
    seconds = time.perf_counter() - start
    peak = _status("VmHWM")
    return {
        "seconds": round(seconds, 2),
        "peak_rss_mib": round(peak / 2**20),
        "peak_over_start_mib": round((peak - before) / 2**20),
        "flagged": flagged,
    }


def run_find_overlap(train, evaluation, a) -> set[str]:
    result = find_overlap(train, evaluation, a.ngram, a.threshold)
    return {hit["eval"] for hit in result["exact"] + result["near"]}


def run_minhash(train, evaluation, a) -> set[str]:
    """datasketch MinHashLSH over the same character n-grams; every LSH candidate verified by
    its exact Jaccard (and exact matches by the normalised text), so it answers the same question."""
    from datasketch import MinHash, MinHashLSH

    def shingles(text: str) -> list[bytes]:
        return [g.encode("utf-8") for g in char_ngrams(text, a.ngram)]

    lsh = MinHashLSH(threshold=a.threshold, num_perm=a.num_perm)
    train_shingles = [shingles(t) for _, t in train]
    for i, hashes in enumerate(MinHash.bulk(train_shingles, num_perm=a.num_perm)):
        lsh.insert(i, hashes, check_duplication=False)
    exact = {normalise(t) for _, t in train}
    flagged = set()
    eval_shingles = [shingles(t) for _, t in evaluation]
    for (origin, text), s, m in zip(evaluation, eval_shingles, MinHash.bulk(eval_shingles, num_perm=a.num_perm)):
        key = normalise(text)
        if key and key in exact:
            flagged.add(origin)
            continue
        if len(key) < 12:
            continue
        g = set(s)
        for j in lsh.query(m):
            other = set(train_shingles[j])
            if len(g & other) / len(g | other) >= a.threshold:
                flagged.add(origin)
                break
    return flagged


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--pairs", type=int, default=100_000, help="training pairs (two texts each)")
    p.add_argument("--candidates", type=int, default=30_000, help="synthetic evaluation candidates")
    p.add_argument("--questions", type=int, default=12_000, help="synthetic evaluation questions")
    p.add_argument(
        "--lareqa", help="a folder of LAReQA {lang}.json files: its questions and candidates are the evaluation side"
    )
    p.add_argument("--langs", nargs="+", default=["en"], help="languages read from --lareqa")
    p.add_argument("--exact", type=int, default=300, help="planted exact duplicates")
    p.add_argument("--near", type=int, default=300, help="planted near duplicates")
    p.add_argument("--vocab", type=int, default=5000, help="vocabulary size")
    p.add_argument("--ngram", type=int, default=5)
    p.add_argument("--threshold", type=float, default=0.8)
    p.add_argument("--num-perm", type=int, default=128, help="MinHash permutations")
    p.add_argument("--skip-minhash", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="write the results as JSON here")
    a = p.parse_args(argv)

    start = time.perf_counter()
    train, evaluation, planted = build_data(a)
    setup = {
        "n_training_texts": len(train),
        "n_eval_texts": len(evaluation),
        "eval_side": f"lareqa {a.lareqa} {a.langs}" if a.lareqa else "synthetic",
        "planted_exact": sum(v == "exact" for v in planted.values()),
        "planted_near": sum(v == "near" for v in planted.values()),
        "ngram": a.ngram,
        "threshold": a.threshold,
        "data_seconds": round(time.perf_counter() - start, 1),
    }
    methods: dict[str, Callable[[], set[str]]] = {"find_overlap": lambda: run_find_overlap(train, evaluation, a)}
    try:
        import datasketch

        if not a.skip_minhash:
            methods[f"datasketch {datasketch.__version__} MinHashLSH ({a.num_perm} perm)"] = lambda: run_minhash(
                train, evaluation, a
            )
        missing = None
    except ImportError:
        missing = "datasketch is not installed (pip install datasketch): MinHashLSH not measured"
    rows = {}
    for name, fn in methods.items():
        result = measure(fn)
        flagged = result.pop("flagged")
        for kind in ("exact", "near"):
            want = [o for o, k in planted.items() if k == kind]
            result[f"recall_{kind}"] = round(sum(o in flagged for o in want) / max(len(want), 1), 4)
        result["flagged"] = len(flagged)
        result["flagged_not_planted"] = len(flagged - planted.keys())
        rows[name] = result
    names = list(rows)
    if len(names) == 2:
        setup["time_ratio_minhash_over_find_overlap"] = round(rows[names[1]]["seconds"] / rows[names[0]]["seconds"], 2)
    report = {"setup": setup, "methods": rows, **({"missing": missing} if missing else {})}

    print(" ".join(f"{k}={v}" for k, v in setup.items()))
    columns = [
        "seconds",
        "peak_rss_mib",
        "peak_over_start_mib",
        "recall_exact",
        "recall_near",
        "flagged",
        "flagged_not_planted",
    ]
    print(f"{'method':45s} " + " ".join(f"{c:>19s}" for c in columns))
    for name, row in rows.items():
        print(f"{name:45s} " + " ".join(f"{row[c]!s:>19s}" for c in columns))
    if missing:
        print(missing)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
