"""Hybrid batch plans (Elmahdy et al. 2024).

Each batch is monolingual with probability alpha (every query and passage in
one language, drawn uniformly from the training languages) or cross-lingual
with probability 1 - alpha (each item's query and passage languages drawn
uniformly among the ordered pairs of different languages the pair has).
alpha = 1 is X-X training, alpha = 0 is X-Y. A pair takes part only in the
languages it has (human or machine-translated): a monolingual batch in L skips
pairs without L, a cross-lingual batch pairs with fewer than two languages.

Pairs are consumed from seeded epoch permutations. No false negatives: no
passage text and no question text occurs twice in a batch, and no two items
share their source pair's normalised English question or answer, whatever
languages they were drawn in ("tell me a joke" asked in English by one item and
in Spanish by another would be each other's negatives). A conflicting pair
waits for a later batch, as sentence-transformers' NO_DUPLICATES sampler does.
"""

from __future__ import annotations

import random
from collections import deque
from pathlib import Path

from xlir.common.io import InputError, get_logger, write_jsonl

log = get_logger(__name__)


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _source_keys(pair: dict) -> set[tuple[str, str]]:
    """The texts that identify a source pair across languages: its English question and
    answer (normalised) where it has English."""
    english = pair["texts"].get("en")
    if not english:
        return set()
    return {("q", _norm(english["question"])), ("a", _norm(english["answer"]))}


def plan_batches(
    train_pairs: list[dict], languages: list[str], alpha: float, batch_size: int, steps: int, seed: int
) -> list[dict]:
    """Return `steps` batches as {step, kind, items: [{pair_id, query_lang, passage_lang}]}."""
    if not 0.0 <= alpha <= 1.0:
        raise InputError(f"config key sampling alpha: {alpha} is not in [0, 1]")
    if alpha < 1.0 and len(languages) < 2:
        raise InputError("config key training.languages: cross-lingual batches need at least two languages")
    needed = 2 if alpha == 0.0 else 1
    available = {}
    for pair in train_pairs:
        langs = [lang for lang in languages if lang in pair["texts"]]
        if len(langs) >= needed:
            available[pair["pair_id"]] = langs
    if len(available) < batch_size:
        raise InputError(
            f"only {len(available)} training pairs have {needed} or more of {languages}; "
            f"batch size {batch_size} needs at least that many"
        )
    rng = random.Random(seed)
    by_id = {p["pair_id"]: p for p in train_pairs if p["pair_id"] in available}
    keys = {pair_id: _source_keys(pair) for pair_id, pair in by_id.items()}
    queue: deque[str] = deque()
    epoch = 0

    def refill() -> None:
        nonlocal epoch
        order = sorted(by_id)
        rng.shuffle(order)
        queue.extend(order)
        epoch += 1

    batches = []
    for step in range(steps):
        kind = "mono" if rng.random() < alpha else "cross"
        mono_lang = rng.choice(languages)
        items, seen_q, seen_p, seen_keys, deferred, in_batch = [], set(), set(), set(), [], set()
        attempts = 0
        while len(items) < batch_size:
            if not queue:
                refill()
            attempts += 1
            if attempts > 4 * len(by_id) + batch_size:
                raise InputError(
                    f"cannot fill a {kind} batch of {batch_size} (language {mono_lang if kind == 'mono' else 'pairs'}) "
                    "without duplicate texts or source pairs; lower training.batch_size"
                )
            pair_id = queue.popleft()
            langs = available[pair_id]
            if (
                pair_id in in_batch
                or (kind == "mono" and mono_lang not in langs)
                or (kind == "cross" and len(langs) < 2)
            ):
                deferred.append(pair_id)
                continue
            if kind == "mono":
                q_lang = p_lang = mono_lang
            else:
                q_lang, p_lang = rng.choice([(q, p) for q in langs for p in langs if q != p])
            texts = by_id[pair_id]["texts"]
            q_text, p_text = _norm(texts[q_lang]["question"]), _norm(texts[p_lang]["answer"])
            if q_text in seen_q or p_text in seen_p or keys[pair_id] & seen_keys:
                deferred.append(pair_id)
                continue
            seen_q.add(q_text)
            seen_p.add(p_text)
            seen_keys |= keys[pair_id]
            in_batch.add(pair_id)
            items.append({"pair_id": pair_id, "query_lang": q_lang, "passage_lang": p_lang})
        queue.extendleft(reversed(deferred))
        batches.append({"step": step, "kind": kind, "items": items})
    n_mono = sum(b["kind"] == "mono" for b in batches)
    log.info(
        "planned %d batches of %d (alpha %.2f): %d monolingual, %d cross-lingual, %d epochs started (%d usable pairs)",
        steps,
        batch_size,
        alpha,
        n_mono,
        steps - n_mono,
        epoch,
        len(by_id),
    )
    return batches


def write_batch_plan(
    train_pairs: list[dict], languages: list[str], alpha: float, batch_size: int, steps: int, seed: int, out_path: Path
) -> int:
    return write_jsonl(out_path, plan_batches(train_pairs, languages, alpha, batch_size, steps, seed))
