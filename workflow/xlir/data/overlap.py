"""Text overlap between two sets of texts, the primitive of every zero-shot guard.

Every text of one set is compared with every text of the other by (1) exact match
after Unicode case-folding and whitespace/punctuation normalisation and (2)
near-duplicate character n-gram Jaccard similarity >= threshold. Candidate pairs
for (2) come from an inverted index over n-grams (n-grams in more than `max_df`
training texts are not used to generate candidates); the `top_k` (20) training
texts sharing the most such n-grams with an evaluation text, and every text tied
with the k-th of them, are its candidates, and the Jaccard of every candidate pair
is then computed exactly (the best one is reported; ties: the candidate sharing
more rare n-grams, then the earlier training text). An evaluation text none of whose
n-grams is that rare gets no near-duplicate (short texts of frequent words).

The n-grams are those of `char_ngrams` (the normalised text padded by one space on
each side; a text shorter than n is one n-gram). `find_overlap` represents them by
exact integer ids (characters mapped to dense ids, packed in base-alphabet, re-densified
whenever a key would pass 63 bits), so no hash collision can change a result, and
builds the index and generates candidates with numpy, in chunks of evaluation texts:
100,000 training pairs (200,000 texts) against 42,000 evaluation texts take about 40 s
and 1.6 GiB on two cores (scripts/bench/leakage.py).

Used by the data stage (`build_train_set` drops pairs that duplicate held-out
pairs) and by the benchmarks stage (`check_leakage`, `drop_overlapping_pairs`).
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np

_PUNCT = re.compile(r"[\W_]+", re.UNICODE)


def normalise(text: str) -> str:
    text = (text if text.isascii() else unicodedata.normalize("NFKC", text)).casefold()
    return " ".join(_PUNCT.sub(" ", text).split())


def source_text_key(text: str) -> str:
    """What two source texts must share to be "the same" question or answer: `normalise`d
    (so "Where was he born?" and "where was he born" agree), or case-folded with whitespace
    collapsed when nothing but punctuation is left. The batch planner's source-pair keys and
    `build_train_set`'s collapsing of repeated source pairs both use it."""
    return normalise(text) or " ".join(unicodedata.normalize("NFKC", text).casefold().split())


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


_SHORT_FILL = "\x00"  # never in a normalised text (\W): pads a text shorter than n to one n-gram
_CHUNK_POSTINGS = 2_000_000  # posting entries expanded per chunk of evaluation texts (memory bound)


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The concatenated ranges [start, start + length) (int64)."""
    lengths = lengths.astype(np.int64)
    if not len(lengths):
        return np.zeros(0, dtype=np.int64)
    shift = np.asarray(starts, dtype=np.int64) - (np.cumsum(lengths) - lengths)
    return np.arange(int(lengths.sum()), dtype=np.int64) + np.repeat(shift, lengths)


def _unique_counts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values and their counts, by one sort (np.unique may take a slow hash path)."""
    values = np.sort(values)
    first = np.flatnonzero(np.r_[True, values[1:] != values[:-1]]) if len(values) else np.zeros(0, dtype=np.int64)
    return values[first], np.diff(np.r_[first, len(values)])


def _group_rank(group: np.ndarray) -> np.ndarray:
    """Position of each element within its run of equal `group` values."""
    at = np.arange(len(group))
    first = np.r_[True, group[1:] != group[:-1]]
    return at - np.maximum.accumulate(np.where(first, at, 0))


def gram_sets(normalised: list[str], n: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Each text's distinct character n-grams (those of `char_ngrams`) as exact integer ids.

    Takes texts already `normalise`d. Returns (offsets, ids, n_ids): text t's n-gram ids are
    ids[offsets[t]:offsets[t + 1]], ascending; equal n-grams of any two texts get equal ids."""
    padded = [f" {text} " for text in normalised]
    padded = [p if len(p) >= n else p + _SHORT_FILL * (n - len(p)) for p in padded]
    lengths = np.fromiter(map(len, padded), dtype=np.int64, count=len(padded))
    codes = np.frombuffer("".join(padded).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    present = np.zeros(0x110000, dtype=bool)
    present[codes] = True
    alphabet = int(present.sum())
    chars = (np.cumsum(present) - 1)[codes]
    del codes, present
    windows = lengths - n + 1
    pos = _ranges(np.cumsum(lengths) - lengths, windows)
    keys, bound = chars[pos], alphabet
    for k in range(1, n):
        if bound * alphabet >= 2**63:  # keep keys exact: re-densify before they overflow
            _, keys = np.unique(keys, return_inverse=True)
            bound = int(keys.max()) + 1
        keys = keys * alphabet + chars[pos + k]
        bound *= alphabet
    del pos, chars
    _, keys = np.unique(keys, return_inverse=True)
    n_ids = int(keys.max()) + 1 if len(keys) else 1
    pairs = np.repeat(np.arange(len(padded), dtype=np.int64), windows) * n_ids + keys
    del keys
    pairs, _ = _unique_counts(pairs)
    counts = np.bincount(pairs // n_ids, minlength=len(padded))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return offsets, pairs % n_ids, n_ids


def _near_candidates(
    index: tuple[np.ndarray, np.ndarray, int],
    n_train: int,
    queries: np.ndarray,
    max_df: int,
    top_k: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For the query texts `queries` (ids >= n_train in `index`), their best training text by
    n-gram Jaccard among the `top_k` (and those tied with the k-th) sharing most n-grams of
    document frequency <= max_df.
    Returns (query, train text, Jaccard) for the queries with any candidate."""
    offsets, ids, n_ids = index
    sizes = np.diff(offsets)
    owner = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
    df = np.bincount(ids[: offsets[n_train]], minlength=n_ids)
    postings = np.sort(ids[: offsets[n_train]] * n_train + owner[: offsets[n_train]]) % n_train  # by n-gram
    post_start = np.cumsum(df) - df
    # a shared n-gram is either rare (counted from the postings) or frequent: keep the frequent ones apart
    frequent = df[ids] > max_df
    f_ids = ids[frequent]
    f_offsets = np.concatenate([[0], np.cumsum(np.bincount(owner[frequent], minlength=len(sizes)))])
    f_sizes = np.diff(f_offsets)
    del owner, frequent
    # the posting entries each query expands to: chunk the queries to bound memory
    gram_df = df[ids[_ranges(offsets[queries], sizes[queries])]]
    cost = np.bincount(
        np.repeat(np.arange(len(queries)), sizes[queries]),
        weights=np.where(gram_df <= max_df, gram_df, 0),
        minlength=len(queries),
    )
    bounds = [0]
    cumulative = np.cumsum(cost)
    while bounds[-1] < len(queries):
        done = cumulative[bounds[-1] - 1] if bounds[-1] else 0
        bounds.append(max(int(np.searchsorted(cumulative, done + _CHUNK_POSTINGS, side="right")), bounds[-1] + 1))
    found_q, found_t, found_j = [], [], []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        chunk = queries[lo:hi]
        gram = ids[_ranges(offsets[chunk], sizes[chunk])]
        query = np.repeat(np.arange(len(chunk), dtype=np.int64), sizes[chunk])
        rare = (df[gram] >= 1) & (df[gram] <= max_df)
        gram, query = gram[rare], query[rare]
        pair, shared = _unique_counts(
            np.repeat(query, df[gram]) * n_train + postings[_ranges(post_start[gram], df[gram])]
        )
        if not len(pair):
            continue
        # per query: most shared n-grams first, then the earlier training text; keep top_k
        query, train = pair // n_train, pair % n_train
        most = int(shared.max()) + 1
        if len(chunk) * most * n_train < 2**63:  # one sort of a composite key, else the slower lexsort
            order = np.sort((query * most + (most - 1 - shared)) * n_train + train)
            query, train = order // (most * n_train), order % n_train
            shared = most - 1 - (order // n_train) % most
        else:
            order = np.lexsort((train, -shared, query))
            query, train, shared = query[order], train[order], shared[order]
        # keep the top_k, and every candidate tied with the k-th (no arbitrary cut among equals)
        rank = _group_rank(query)
        kth = np.full(len(chunk), -1, dtype=np.int64)
        kth[query[rank == top_k - 1]] = shared[rank == top_k - 1]
        keep = (rank < top_k) | (shared >= kth[query])
        query, train, shared = query[keep], train[keep], shared[keep]
        # exact intersection: the rare n-grams shared, plus the frequent ones by sorted (pair, n-gram) keys
        m = len(query)
        q_text = chunk[query]
        q_keys = (
            np.repeat(np.arange(m, dtype=np.int64), f_sizes[q_text]) * n_ids
            + f_ids[_ranges(f_offsets[q_text], f_sizes[q_text])]
        )
        t_pair = np.repeat(np.arange(m, dtype=np.int64), f_sizes[train])
        t_keys = t_pair * n_ids + f_ids[_ranges(f_offsets[train], f_sizes[train])]
        inter = shared.copy()
        if len(q_keys) and len(t_keys):
            at = np.minimum(np.searchsorted(q_keys, t_keys), len(q_keys) - 1)
            inter += np.bincount(t_pair[q_keys[at] == t_keys], minlength=m)
        jaccard = inter / (sizes[q_text] + sizes[train] - inter)
        best = np.lexsort((np.arange(m), -jaccard, query))  # per query: highest Jaccard, then earlier candidate
        best = best[_group_rank(query[best]) == 0]
        found_q.append(q_text[best])
        found_t.append(train[best])
        found_j.append(jaccard[best])
    if not found_q:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    return np.concatenate(found_q), np.concatenate(found_t), np.concatenate(found_j)


def find_overlap(
    train: list[tuple[str, str]],
    evaluation: list[tuple[str, str]],
    n: int = 5,
    threshold: float = 0.8,
    min_chars: int = 12,
    max_df: int = 200,
    top_k: int = 20,
) -> dict:
    """Exact and near-duplicate overlaps between training and evaluation texts (module docstring).

    Texts shorter than `min_chars` after normalisation ("yes", "ok") are only
    checked for exact matches: n-gram similarity is meaningless for them.
    Returns {"exact": [{eval, train, text}], "near": [{eval, train, jaccard, eval_text,
    train_text}]}, in evaluation order; `train` is the first matching training origin."""
    train_keys = [normalise(text) for _, text in train]
    eval_keys = [normalise(text) for _, text in evaluation]
    exact_index: dict[str, str] = {}
    for (origin, _), key in zip(train, train_keys):
        exact_index.setdefault(key, origin)
    exact, queries = [], []
    for i, ((origin, text), key) in enumerate(zip(evaluation, eval_keys)):
        if key and key in exact_index:
            exact.append({"eval": origin, "train": exact_index[key], "text": text})
        elif len(key) >= min_chars:
            queries.append(i)
    near = []
    if queries and train:
        index = gram_sets(train_keys + [eval_keys[i] for i in queries], n)
        own = np.arange(len(train), len(train) + len(queries), dtype=np.int64)
        query, best, jaccard = _near_candidates(index, len(train), own, max_df, top_k)
        for q, j, value in sorted(zip(query.tolist(), best.tolist(), jaccard.tolist())):
            if value >= threshold:
                origin, text = evaluation[queries[q - len(train)]]
                near.append(
                    {
                        "eval": origin,
                        "train": train[j][0],
                        "jaccard": round(value, 4),
                        "eval_text": text,
                        "train_text": train[j][1],
                    }
                )
    return {"exact": exact, "near": near}
