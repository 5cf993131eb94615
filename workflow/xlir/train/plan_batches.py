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
share their source pair's normalised English question or answer
(`xlir.data.overlap.source_text_key`: case, whitespace and punctuation ignored),
whatever languages they were drawn in ("tell me a joke" asked in English by one
item and in Spanish by another would be each other's negatives). A conflicting
pair waits for a later batch, as sentence-transformers' NO_DUPLICATES sampler
does, at the front of the queue; a new epoch does not add a pair that is still
waiting, so the backlog never outgrows the pairs, and pairs sharing a question
with more pairs than the batches can take one at a time (chatterbot's 30 "tell
me a joke" at batch 100: 191 epochs in 1000 batches) are drawn less often
instead of piling up until no batch can be filled. Repeated source pairs (the
same English question and answer) are collapsed before planning, by
`xlir.data.build_train_set`; pairs sharing only a question (SQuAD's generic
questions, chatterbot's "tell me a joke") or only an answer (SQuAD's questions
on one sentence) are all kept, and the log counts them.
"""

from __future__ import annotations

import random
from collections import Counter, deque
from pathlib import Path

from xlir.common.io import InputError, get_logger, read_jsonl, write_jsonl
from xlir.data.overlap import source_text_key

log = get_logger(__name__)


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _source_keys(pair: dict) -> set[tuple[str, str]]:
    """The texts that identify a source pair across languages: its English question and
    answer (normalised) where it has English."""
    english = pair["texts"].get("en")
    if not english:
        return set()
    return {("q", source_text_key(english["question"])), ("a", source_text_key(english["answer"]))}


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
        langs = tuple(lang for lang in languages if lang in pair["texts"])
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
    key_counts = Counter(key for pair_keys in keys.values() for key in pair_keys)
    sharing = Counter(kind for pair_keys in keys.values() for kind, text in pair_keys if key_counts[kind, text] > 1)
    repeated = sum(n - 1 for n in Counter(frozenset(k) for k in keys.values() if k).values())
    if repeated:
        log.warning(
            "%d training pairs repeat another pair's English question and answer: each repeat is trained on again "
            "(build_train_set collapses them; was this pairs file built by it?)",
            repeated,
        )
    cross_choices: dict[tuple[str, ...], list[tuple[str, str]]] = {}  # the ordered language pairs of a pair's languages
    queue: deque[str] = deque()
    epoch = 0

    def refill(waiting: list[str]) -> None:
        """A new epoch, less the pairs still waiting from an earlier one (each waits once)."""
        nonlocal epoch
        order = sorted(by_id)
        rng.shuffle(order)
        pending = set(waiting)
        queue.extend(pair_id for pair_id in order if pair_id not in pending)
        epoch += 1

    batches = []
    for step in range(steps):
        kind = "mono" if rng.random() < alpha else "cross"
        mono_lang = rng.choice(languages)
        items, seen_q, seen_p, seen_keys, deferred, in_batch = [], set(), set(), set(), [], set()
        attempts = 0
        while len(items) < batch_size:
            if not queue:
                refill(deferred)
            attempts += 1
            if not queue or attempts > 4 * len(by_id) + batch_size:
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
                choices = cross_choices.get(langs)
                if choices is None:
                    choices = cross_choices[langs] = [(q, p) for q in langs for p in langs if q != p]
                q_lang, p_lang = rng.choice(choices)
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
        "planned %d batches of %d (alpha %.2f): %d monolingual, %d cross-lingual, %d epochs started (%d usable pairs; "
        "%d share their English question and %d their English answer with another pair: never in one batch)",
        steps,
        batch_size,
        alpha,
        n_mono,
        steps - n_mono,
        epoch,
        len(by_id),
        sharing["q"],
        sharing["a"],
    )
    return batches


#: the key of a plan file's first line, which records how the plan was drawn
HEADER = "plan"


def write_batch_plan(
    train_pairs: list[dict],
    languages: list[str],
    alpha: float,
    batch_size: int,
    steps: int,
    seed: int,
    out_path: Path,
    sampling: str | None = None,
) -> int:
    """The plan file: a header line `{"plan": {sampling, alpha, languages, batch_size, steps,
    seed}}` (the sampling's one record, read by the train job for the model card), then one
    batch per line. Returns the number of lines."""
    header = {
        HEADER: {
            "sampling": sampling,
            "alpha": alpha,
            "languages": list(languages),
            "batch_size": batch_size,
            "steps": steps,
            "seed": seed,
        }
    }
    return write_jsonl(out_path, [header, *plan_batches(train_pairs, languages, alpha, batch_size, steps, seed)])


def read_batch_plan(path: Path) -> tuple[dict | None, list[dict]]:
    """(header, batches) of a plan file; header None for a plan written without one (a list of
    batches, as `plan_batches` returns)."""
    lines = read_jsonl(path)
    if lines and set(lines[0]) == {HEADER}:
        return lines[0][HEADER], lines[1:]
    return None, lines
