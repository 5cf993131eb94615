"""Cross-lingual alignment of one layer's representations of a parallel probe set.

Embeddings come as an (ids, languages, d) array: row i holds the same question in every
language. For every ordered language pair (a, b), a != b:

- accuracy: the share of questions of a whose nearest question of b (cosine) is its own
  translation, among all probe questions of b (chance: 1 / ids);
- gap: the mean cosine of parallel pairs minus the mean cosine of non-parallel pairs.

The layer's figures are the means over ordered pairs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PairAlignment:
    query_lang: str
    target_lang: str
    accuracy: float
    gap: float


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _scores(cosines: np.ndarray) -> tuple[float, float]:
    """(accuracy, gap) of an (n, n) cosine block whose diagonal holds the parallel pairs."""
    n = len(cosines)
    diagonal = np.diag(cosines).astype(np.float64)
    accuracy = float(np.mean(cosines.argmax(axis=1) == np.arange(n)))
    off_diagonal = (float(cosines.sum(dtype=np.float64)) - diagonal.sum()) / (n * n - n)
    return accuracy, float(diagonal.mean() - off_diagonal)


def pair_alignment(source: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """(accuracy, gap) of retrieving row i of `target` for row i of `source` ((n, d) each)."""
    if len(source) < 2 or len(target) != len(source):
        raise ValueError(f"alignment needs at least 2 paired rows on each side, got {len(source)} and {len(target)}")
    return _scores(_unit(source) @ _unit(target).T)


def layer_alignment(embeddings: np.ndarray, languages: list[str]) -> list[PairAlignment]:
    """Every ordered language pair of one layer's (ids, languages, d) embeddings (float32
    cosines: one matrix product per query language)."""
    if embeddings.ndim != 3 or embeddings.shape[1] != len(languages):
        raise ValueError(f"expected (ids, {len(languages)} languages, d) embeddings, got {embeddings.shape}")
    n = embeddings.shape[0]
    if n < 2:
        raise ValueError(f"alignment needs at least 2 paired rows, got {n}")
    unit = _unit(embeddings)
    targets = unit.transpose(1, 0, 2).reshape(len(languages) * n, -1)  # language-major
    pairs = []
    for a, query_lang in enumerate(languages):
        cosines = unit[:, a] @ targets.T  # (n, languages * n)
        for b, target_lang in enumerate(languages):
            if a != b:
                accuracy, gap = _scores(cosines[:, b * n : (b + 1) * n])
                pairs.append(PairAlignment(query_lang, target_lang, accuracy, gap))
    return pairs


def mean_alignment(pairs: list[PairAlignment]) -> tuple[float, float]:
    """(accuracy, gap) averaged over ordered language pairs."""
    if not pairs:
        return float("nan"), float("nan")
    return float(np.mean([p.accuracy for p in pairs])), float(np.mean([p.gap for p in pairs]))
