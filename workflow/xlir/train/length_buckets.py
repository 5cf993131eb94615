"""Embed one side of a training batch in sub-batches of similar token length.

A batch padded to its longest text spends most of its compute on padding when
lengths vary (the demo's hybrid batches: 2.4 padded tokens per real one). Each
text's embedding depends on its own tokens alone (no batch statistics), so the
batch can be cut into runs of sorted lengths, embedded run by run and put back
in order: the loss and its gradient are those of one padded pass, up to float
rounding and the dropout masks drawn (none are drawn for padding).

Where to cut is a trade: each more forward call costs fixed overhead, each row
costs the padded length of its run. `length_buckets` minimises
sum(rows x longest row) + calls x `call_tokens` exactly, by dynamic programming
over the distinct lengths."""

from __future__ import annotations

import torch


def length_buckets(sorted_lengths: list[int], call_tokens: int) -> list[tuple[int, int]]:
    """[start, stop) runs over ascending `sorted_lengths` minimising padded tokens plus
    `call_tokens` per run; runs only end where the length changes."""
    if any(b < a for a, b in zip(sorted_lengths, sorted_lengths[1:])):
        raise ValueError("length_buckets needs lengths in ascending order")
    n = len(sorted_lengths)
    ends = [i + 1 for i in range(n) if i + 1 == n or sorted_lengths[i + 1] != sorted_lengths[i]]
    cost = {0: 0.0}
    cut: dict[int, int] = {}
    for j in ends:
        best, best_i = float("inf"), 0
        for i in [0, *ends]:
            if i >= j:
                break
            c = cost[i] + (j - i) * sorted_lengths[j - 1] + call_tokens
            if c < best:
                best, best_i = c, i
        cost[j], cut[j] = best, best_i
    runs, j = [], n
    while j > 0:
        runs.append((cut[j], j))
        j = cut[j]
    return runs[::-1]


def embed_by_length(encoder, texts: list[str], kind: str, call_tokens: int | None) -> torch.Tensor:
    """`encoder(texts, kind)`, computed run by run over texts sorted by token length (see the module);
    `call_tokens` None (or an encoder without `token_lengths`): one padded pass."""
    if call_tokens is None or not hasattr(encoder, "token_lengths") or len(texts) < 2:
        return encoder(texts, kind)
    lengths = encoder.token_lengths(texts, kind)
    order = sorted(range(len(texts)), key=lengths.__getitem__)
    runs = length_buckets([lengths[i] for i in order], call_tokens)
    if len(runs) == 1:
        return encoder(texts, kind)
    parts = [encoder([texts[i] for i in order[a:b]], kind) for a, b in runs]
    stacked = torch.cat(parts)
    inverse = torch.empty(len(texts), dtype=torch.long)
    inverse[torch.tensor(order)] = torch.arange(len(texts))
    return stacked[inverse.to(stacked.device)]
