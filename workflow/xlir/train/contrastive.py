"""One training step's forward and backward pass of the in-batch-negative contrastive loss.

Two ways to the same gradient:
- plain: encode every query and passage of the batch with a graph, take
  InfoNCE, back-propagate (activation memory grows with the batch);
- cached (GradCache, Gao et al. 2021, "Scaling Deep Contrastive Learning Batch
  Size under Memory Limited Setup"): encode the batch in sub-batches of
  `chunk_size` without a graph, take the loss over the whole batch on those
  embeddings and keep its gradient with respect to each embedding, then
  re-encode each sub-batch with a graph and back-propagate its cached
  gradient. Activation memory is that of one sub-batch; the price is one more
  forward pass. The random state (dropout) of each sub-batch is recorded in
  the first pass and replayed in the second, so both passes see the same masks.

In both, the embeddings are gathered across processes (`DistContext.gather`) so
the negatives are those of the global batch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch

from xlir.train.distributed import DistContext
from xlir.train.length_buckets import embed_by_length
from xlir.train.losses import info_nce

SINGLE = DistContext()


class RandState:
    """The CPU (and CUDA device) random state at one point, to replay a forward pass."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None

    @contextlib.contextmanager
    def replay(self):
        devices = [self.device] if self.cuda is not None else []
        with torch.random.fork_rng(devices=devices):
            torch.set_rng_state(self.cpu)
            if self.cuda is not None:
                torch.cuda.set_rng_state(self.cuda, self.device)
            yield


def chunks(texts: list[str], size: int) -> list[list[str]]:
    return [texts[i : i + size] for i in range(0, len(texts), size)]


def plain_step(
    encoder,
    queries: list[str],
    passages: list[str],
    temperature: float,
    ctx: DistContext = SINGLE,
    bucket_call_tokens: int | None = None,
) -> torch.Tensor:
    """Forward and backward of InfoNCE over the (global) batch; returns the detached loss.
    `bucket_call_tokens`: embed each side in runs of similar length (`xlir.train.length_buckets`)."""
    # one autocast region around both passes: under bf16 its cache holds one low-precision copy
    # of the weights for both (each pass's own region would keep a copy alive until backward)
    with getattr(encoder, "autocast", contextlib.nullcontext)():
        q = embed_by_length(encoder, queries, "query", bucket_call_tokens)
        p = embed_by_length(encoder, passages, "passage", bucket_call_tokens)
    loss = info_nce(ctx.gather(q), ctx.gather(p), temperature)
    (loss * ctx.loss_scale() if ctx.enabled else loss).backward()
    return loss.detach()


def cached_step(
    encoder,
    queries: list[str],
    passages: list[str],
    temperature: float,
    chunk_size: int,
    ctx: DistContext = SINGLE,
    sync: Callable[[bool], contextlib.AbstractContextManager] | None = None,
) -> torch.Tensor:
    """GradCache forward and backward; the parameter gradients equal `plain_step`'s.

    `sync(last)` is the gradient-synchronisation context of each re-encoding pass
    (DDP's no_sync for all but the last, see `distributed.sync_context`)."""
    if chunk_size < 1:
        raise ValueError(f"config key training.grad_cache_chunk_size: {chunk_size}; expected >= 1")
    device = encoder.device
    jobs = [
        (kind, chunk)
        for kind, texts in (("query", queries), ("passage", passages))
        for chunk in chunks(texts, chunk_size)
    ]
    states, reps = [], []
    with torch.no_grad():
        for kind, chunk in jobs:
            states.append(RandState(device))
            reps.append(encoder(chunk, kind))
    n_query_chunks = len(chunks(queries, chunk_size))
    q = torch.cat(reps[:n_query_chunks]).detach().requires_grad_()
    p = torch.cat(reps[n_query_chunks:]).detach().requires_grad_()
    loss = info_nce(ctx.gather(q), ctx.gather(p), temperature)
    (loss * ctx.loss_scale() if ctx.enabled else loss).backward()
    grads = list(q.grad.split([len(c) for _, c in jobs[:n_query_chunks]]))
    grads += list(p.grad.split([len(c) for _, c in jobs[n_query_chunks:]]))
    sync = sync or (lambda last: contextlib.nullcontext())
    for i, ((kind, chunk), state, grad) in enumerate(zip(jobs, states, grads)):
        with sync(i == len(jobs) - 1), state.replay():
            rep = encoder(chunk, kind)
            rep.backward(grad)
    return loss.detach()


def contrastive_step(
    encoder,
    queries: list[str],
    passages: list[str],
    temperature: float,
    *,
    chunk_size: int | None = None,
    ctx: DistContext = SINGLE,
    sync: Callable[[bool], contextlib.AbstractContextManager] | None = None,
    bucket_call_tokens: int | None = None,
) -> torch.Tensor:
    """The cached step when `chunk_size` is set (training.grad_cache_chunk_size), else the plain one
    (with `bucket_call_tokens`, training.length_bucket_call_tokens, its sides embedded by length runs)."""
    if chunk_size is None:
        return plain_step(encoder, queries, passages, temperature, ctx, bucket_call_tokens)
    return cached_step(encoder, queries, passages, temperature, chunk_size, ctx, sync)
