"""Text overlap between two sets of texts, the primitive of every zero-shot guard.

Every text of one set is compared with every text of the other by (1) exact match
after Unicode case-folding and whitespace/punctuation normalisation and (2)
near-duplicate character n-gram Jaccard similarity >= threshold. Candidate pairs
for (2) come from an inverted index over n-grams (n-grams in more than `max_df`
training texts are not used to generate candidates), and the Jaccard of every
candidate pair is then computed exactly.

Used by the data stage (`build_train_set` drops pairs that duplicate held-out
pairs) and by the benchmarks stage (`check_leakage`, `drop_overlapping_pairs`).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict

from tqdm import tqdm

_PUNCT = re.compile(r"[\W_]+", re.UNICODE)


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_PUNCT.sub(" ", text).split())


def char_ngrams(text: str, n: int) -> set[str]:
    padded = f" {normalise(text)} "
    if len(padded) <= n:
        return {padded}
    return {padded[i : i + n] for i in range(len(padded) - n + 1)}


def training_texts(train_pairs: list[dict]) -> list[tuple[str, str]]:
    """(origin, text) for every question and answer of every language."""
    out = []
    for pair in train_pairs:
        for lang, texts in pair["texts"].items():
            out.append((f"{pair['pair_id']}/{lang}/question", texts["question"]))
            out.append((f"{pair['pair_id']}/{lang}/answer", texts["answer"]))
    return out


def find_overlap(
    train: list[tuple[str, str]],
    evaluation: list[tuple[str, str]],
    n: int = 5,
    threshold: float = 0.8,
    min_chars: int = 12,
    max_df: int = 200,
) -> dict:
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
            near.append(
                {
                    "eval": origin,
                    "train": train[best][0],
                    "jaccard": round(best_j, 4),
                    "eval_text": text,
                    "train_text": train[best][1],
                }
            )
    return {"exact": exact, "near": near}
