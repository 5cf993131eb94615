"""Contrastive losses, one formula each (as sentence-transformers' MultipleNegativesRankingLoss)."""

from __future__ import annotations

import torch


def info_nce(queries: torch.Tensor, passages: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE with in-batch negatives: row i's positive is passage i, every other
    passage of the batch is a negative. Inputs are L2-normalised, so the logits
    are cosine similarities divided by the temperature tau."""
    if queries.shape != passages.shape:
        raise ValueError(f"queries {tuple(queries.shape)} and passages {tuple(passages.shape)} differ in shape")
    logits = queries @ passages.T / temperature
    targets = torch.arange(queries.shape[0], device=queries.device)
    return torch.nn.functional.cross_entropy(logits, targets)
