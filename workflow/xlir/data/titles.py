"""Article-level overlap: training and evaluation texts drawn from the same articles.

Text overlap (`xlir.data.overlap`) finds copied questions and sentences; article overlap
finds shared sources, a weaker and documented kind of contamination: SQuAD v1.1 train and
XQuAD (whose contexts come from SQuAD v1.1 dev) share none, MLQA-R and XQuAD-R share some
Wikipedia articles. It is reported, never a failure. Titles are compared after
`normalise_title` (NFKC, underscores as spaces, case-folded, whitespace collapsed);
records without a title (null, empty) are not counted.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable


def normalise_title(title: str) -> str:
    """ "Pappataci_Fever" and "pappataci  fever" compare equal."""
    return " ".join(unicodedata.normalize("NFKC", title).replace("_", " ").casefold().split())


def _spellings(titles: Iterable[str | None]) -> dict[str, str]:
    """Normalised title -> its first spelling, for every non-empty title."""
    out: dict[str, str] = {}
    for title in titles:
        if isinstance(title, str) and (key := normalise_title(title)):
            out.setdefault(key, title)
    return out


def article_overlap(
    train_titles: Iterable[str | None], eval_titles: Iterable[str | None], max_examples: int = 20
) -> dict:
    """Counts of distinct training and evaluation article titles and of the titles both
    share, with up to `max_examples` shared titles ({title, train, eval}: the normalised
    title and its first spelling on each side), in title order."""
    train, evaluation = _spellings(train_titles), _spellings(eval_titles)
    shared = sorted(train.keys() & evaluation.keys())
    return {
        "n_training_titles": len(train),
        "n_eval_titles": len(evaluation),
        "n_shared_titles": len(shared),
        "shared_fraction_of_eval_titles": round(len(shared) / len(evaluation), 4) if evaluation else 0.0,
        "examples": [{"title": t, "train": train[t], "eval": evaluation[t]} for t in shared[:max_examples]],
    }
