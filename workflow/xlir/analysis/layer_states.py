"""Every layer's pooled representation of a list of texts: the embedding output and the
output of each transformer block (`output_hidden_states=True`), mean-pooled over the
non-padding tokens (or the first token, for `cls` pooling) with the attention mask, as in
`xlir.model.encoder.DualEncoder`. The texts are questions, so they carry E5's `query: ` prefix.

With `cls` pooling, layer 0 is the same vector for every text ([CLS] plus position 0), so its
CKA is undefined (NaN) and its alignment is at chance.

Returns a float32 (layers + 1, n, d) array; the texts are batched by token count (as
`DualEncoder.encode`) and the order is restored."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from xlir.model.encoder import PREFIXES, DualEncoder, mean_pool, token_budget_batches


def _pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    return mean_pool(hidden, attention_mask) if pooling == "mean" else hidden[:, 0]


@torch.no_grad()
def layer_states(
    backbone: nn.Module,
    tokenizer_dir: str | Path,
    texts: list[str],
    *,
    pooling: str = "mean",
    max_length: int = 128,
    batch_size: int = 64,
    batch_tokens: int | None = 2048,
    kind: str = "query",
) -> np.ndarray:
    """(layers + 1, len(texts), hidden) pooled hidden states of `backbone`, fp32."""
    from transformers import AutoTokenizer

    encoder = DualEncoder(backbone, AutoTokenizer.from_pretrained(str(tokenizer_dir)), pooling, max_length)
    encoder.eval()
    device = encoder.device
    prefix = PREFIXES[kind]
    ids = encoder.tokenizer([prefix + t for t in texts], truncation=True, max_length=max_length)
    rows = [{k: ids[k][i] for k in ids.keys() if k in encoder.input_names} for i in range(len(texts))]
    order = sorted(range(len(texts)), key=lambda i: len(rows[i]["input_ids"]))
    lengths = [len(rows[i]["input_ids"]) for i in order]
    out: np.ndarray | None = None
    for start, stop in token_budget_batches(lengths, batch_size, batch_tokens):
        batch = {k: v.to(device) for k, v in encoder.pad([rows[i] for i in order[start:stop]]).items()}
        hidden_states = backbone(**batch, output_hidden_states=True).hidden_states
        pooled = torch.stack([_pool(h.float(), batch["attention_mask"], pooling) for h in hidden_states])
        if out is None:
            out = np.empty((pooled.shape[0], len(texts), pooled.shape[2]), dtype=np.float32)
        out[:, np.array(order[start:stop])] = pooled.cpu().numpy()
    if out is None:
        raise ValueError("no texts to encode")
    return out
