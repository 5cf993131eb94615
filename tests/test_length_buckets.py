"""Length-run embedding (training) and token-budget batches (encoding): the cuts are optimal and
the embeddings, loss and gradients are those of one padded pass."""

from __future__ import annotations

import itertools
import random

import pytest
import torch

from xlir.model.encoder import DualEncoder, token_budget_batches
from xlir.train.contrastive import plain_step
from xlir.train.length_buckets import embed_by_length, length_buckets

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TEXTS = [
    "hi",
    "what is the capital city of the country that hosted the games in nineteen ninety two",
    "who wrote it",
    "a much longer passage about rivers, mountains and the weather in spring and autumn",
    "yes",
    "the answer is forty two",
    "tell me a joke",
    "el río más largo del mundo es el Nilo o el Amazonas, según cómo se mida",
]


def _cost(lengths, runs, call):
    return sum((b - a) * lengths[b - 1] + call for a, b in runs)


def _brute_force(lengths, call):
    n = len(lengths)
    best = None
    for k in range(n):
        for cuts in itertools.combinations(range(1, n), k):
            bounds = [0, *cuts, n]
            runs = list(zip(bounds, bounds[1:]))
            if best is None or _cost(lengths, runs, call) < best:
                best = _cost(lengths, runs, call)
    return best


@pytest.mark.parametrize("call", [0, 3, 10, 100])
def test_runs_are_optimal_and_cover_the_batch(call):
    rng = random.Random(call)
    for _ in range(30):
        lengths = sorted(rng.randint(2, 20) for _ in range(rng.randint(1, 9)))
        runs = length_buckets(lengths, call)
        assert runs[0][0] == 0 and runs[-1][1] == len(lengths)
        assert all(a < b and b == c for (a, b), (c, _) in zip(runs, runs[1:] + [(runs[-1][1], None)]))
        assert _cost(lengths, runs, call) == _brute_force(lengths, call)


def test_runs_never_split_equal_lengths_and_large_overhead_gives_one_run():
    assert length_buckets([5, 5, 5, 9, 9], 0) == [(0, 3), (3, 5)]
    assert length_buckets([3, 4, 50], 10_000) == [(0, 3)]
    with pytest.raises(ValueError, match="ascending"):
        length_buckets([4, 3], 1)


def test_token_budget_batches():
    assert token_budget_batches([2, 2, 3, 3, 10], 64, None) == [(0, 5)]
    assert token_budget_batches([2, 2, 3, 3, 10], 2, None) == [(0, 2), (2, 4), (4, 5)]
    assert token_budget_batches([2, 2, 3, 3, 10], 64, 9) == [(0, 3), (3, 4), (4, 5)]
    assert token_budget_batches([50], 64, 9) == [(0, 1)]  # a text longer than the budget: a batch of its own
    assert token_budget_batches([], 8, 16) == []


def test_embeddings_in_runs_equal_one_padded_pass(tiny_model_dir):
    encoder = DualEncoder.load(tiny_model_dir, max_length=16).eval()
    with torch.no_grad():
        padded = encoder(TEXTS, "query")
        runs = embed_by_length(encoder, TEXTS, "query", 0)
    torch.testing.assert_close(runs, padded, atol=1e-5, rtol=1e-5)
    assert len(length_buckets(sorted(encoder.token_lengths(TEXTS, "query")), 0)) > 1  # it really cut


def test_loss_and_gradients_equal_one_padded_pass(tiny_model_dir):
    grads, losses = [], []
    for call in (None, 0):
        torch.manual_seed(0)
        encoder = DualEncoder.load(tiny_model_dir, max_length=16).eval()  # no dropout: the same function
        losses.append(plain_step(encoder, TEXTS, TEXTS[::-1], 0.05, bucket_call_tokens=call))
        grads.append({n: p.grad.clone() for n, p in encoder.named_parameters() if p.grad is not None})
    torch.testing.assert_close(losses[0], losses[1], atol=1e-5, rtol=1e-5)
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize("budget", [None, 24, 64])
def test_token_budget_encoding_equals_one_text_at_a_time(tiny_model_dir, budget):
    encoder = DualEncoder.load(tiny_model_dir, max_length=16)
    batched = encoder.encode(TEXTS, "passage", batch_size=3, batch_tokens=budget)
    single = encoder.encode(TEXTS, "passage", batch_size=1)
    assert batched.shape == single.shape == (len(TEXTS), batched.shape[1])
    assert abs(batched - single).max() < 1e-5
