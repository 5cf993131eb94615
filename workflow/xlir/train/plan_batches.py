"""Hybrid batch plans (Elmahdy et al. 2024).

Each batch is monolingual with probability alpha (every query and passage in
one language, drawn uniformly from the training languages) or cross-lingual
with probability 1 - alpha (each item's query and passage languages drawn
uniformly among the ordered pairs of different languages). alpha = 1 is X-X
training, alpha = 0 is X-Y. Pairs are consumed from seeded epoch permutations;
no passage text and no question text occurs twice in a batch (an in-batch
duplicate would be a false negative), so a conflicting pair waits for a later
batch, as sentence-transformers' NO_DUPLICATES sampler does.
"""

from __future__ import annotations

import random
from collections import deque
from pathlib import Path

from xlir.common.io import InputError, get_logger, write_jsonl

log = get_logger(__name__)


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def plan_batches(
    train_pairs: list[dict], languages: list[str], alpha: float, batch_size: int, steps: int, seed: int
) -> list[dict]:
    """Return `steps` batches as {step, kind, items: [{pair_id, query_lang, passage_lang}]}."""
    if not 0.0 <= alpha <= 1.0:
        raise InputError(f"config key sampling alpha: {alpha} is not in [0, 1]")
    if alpha < 1.0 and len(languages) < 2:
        raise InputError("config key training.languages: cross-lingual batches need at least two languages")
    usable = [p for p in train_pairs if all(lang in p["texts"] for lang in languages)]
    if len(usable) < batch_size:
        raise InputError(
            f"only {len(usable)} training pairs have all of {languages}; "
            f"batch size {batch_size} needs at least that many"
        )
    rng = random.Random(seed)
    by_id = {p["pair_id"]: p for p in usable}
    queue: deque[str] = deque()
    epoch = 0

    def refill() -> None:
        nonlocal epoch
        order = sorted(by_id)
        rng.shuffle(order)
        queue.extend(order)
        epoch += 1

    cross_pairs = [(q, p) for q in languages for p in languages if q != p]
    batches = []
    for step in range(steps):
        kind = "mono" if rng.random() < alpha else "cross"
        mono_lang = rng.choice(languages)
        items, seen_q, seen_p, deferred = [], set(), set(), []
        attempts = 0
        while len(items) < batch_size:
            if not queue:
                refill()
            attempts += 1
            if attempts > 4 * len(by_id) + batch_size:
                raise InputError(
                    f"cannot fill a batch of {batch_size} without duplicate texts; lower training.batch_size"
                )
            pair_id = queue.popleft()
            if any(item["pair_id"] == pair_id for item in items):
                deferred.append(pair_id)
                continue
            q_lang, p_lang = (mono_lang, mono_lang) if kind == "mono" else rng.choice(cross_pairs)
            texts = by_id[pair_id]["texts"]
            q_text, p_text = _norm(texts[q_lang]["question"]), _norm(texts[p_lang]["answer"])
            if q_text in seen_q or p_text in seen_p:
                deferred.append(pair_id)
                continue
            seen_q.add(q_text)
            seen_p.add(p_text)
            items.append({"pair_id": pair_id, "query_lang": q_lang, "passage_lang": p_lang})
        queue.extendleft(reversed(deferred))
        batches.append({"step": step, "kind": kind, "items": items})
    n_mono = sum(b["kind"] == "mono" for b in batches)
    log.info(
        "planned %d batches of %d (alpha %.2f): %d monolingual, %d cross-lingual, %d epochs started",
        steps,
        batch_size,
        alpha,
        n_mono,
        steps - n_mono,
        epoch,
    )
    return batches


def write_batch_plan(
    train_pairs: list[dict], languages: list[str], alpha: float, batch_size: int, steps: int, seed: int, out_path: Path
) -> int:
    return write_jsonl(out_path, plan_batches(train_pairs, languages, alpha, batch_size, steps, seed))
