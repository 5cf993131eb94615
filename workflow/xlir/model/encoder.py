"""Shared-weight dual encoder: one transformer encodes queries and passages,
told apart by the E5 prefixes `query: ` / `passage: `; mean pooling over the
non-padding tokens (E5), L2-normalised so inner product = cosine.

The backbone is any family of `xlir.model.architectures` (BERT / XLM-R, XLM-R XL /
XXL, the mT5 encoder); only the tokenizer outputs the family takes are passed
to it. `precision="bf16"` runs the forward pass under bf16 autocast (weights
stay fp32; the pooled embeddings are returned in fp32)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from xlir.model import architectures
from xlir.model.precision import RESOLVED_PRECISIONS

PREFIXES = {"query": "query: ", "passage": "passage: "}


def load_backbone(model_dir: str | Path):
    """The encoder stack of a transformers folder (see `xlir.model.architectures.load_backbone`)."""
    return architectures.load_backbone(model_dir)


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


class DualEncoder(torch.nn.Module):
    def __init__(
        self, backbone, tokenizer, pooling: str = "mean", max_length: int = 128, precision: str = "fp32"
    ) -> None:
        super().__init__()
        if pooling not in ("mean", "cls"):
            raise ValueError(f"config key models.<name>.pooling: '{pooling}' is not 'mean' or 'cls'")
        if precision not in RESOLVED_PRECISIONS:
            raise ValueError(
                f"config key training.precision: '{precision}' is not one of {', '.join(RESOLVED_PRECISIONS)}"
            )
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.max_length = max_length
        self.precision = precision
        self.input_names = architectures.for_model(backbone).input_names

    @classmethod
    def load(
        cls, model_dir: str | Path, pooling: str = "mean", max_length: int = 128, precision: str = "fp32"
    ) -> DualEncoder:
        from transformers import AutoTokenizer

        return cls(
            load_backbone(model_dir), AutoTokenizer.from_pretrained(str(model_dir)), pooling, max_length, precision
        )

    def tokenize(self, texts: list[str], kind: str) -> dict[str, torch.Tensor]:
        prefix = PREFIXES[kind]
        batch = self.tokenizer(
            [prefix + t for t in texts], padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        return {k: v for k, v in batch.items() if k in self.input_names}

    @property
    def device(self) -> torch.device:
        return next(self.backbone.parameters()).device

    def autocast(self):
        """bf16 autocast on the backbone's device when `precision` is bf16, else nothing."""
        if self.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def forward(self, texts: list[str], kind: str) -> torch.Tensor:
        """Normalised embeddings (with gradients when training); fp32 whatever the precision."""
        batch = self.tokenize(texts, kind)
        device = self.device
        batch = {k: v.to(device) for k, v in batch.items()}
        with self.autocast():
            hidden = self.backbone(**batch).last_hidden_state
        if self.precision != "fp32":
            hidden = hidden.float()
        pooled = mean_pool(hidden, batch["attention_mask"]) if self.pooling == "mean" else hidden[:, 0]
        return torch.nn.functional.normalize(pooled, dim=-1)

    @torch.no_grad()
    def encode(self, texts: list[str], kind: str, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """float32 (n, d) embeddings; texts are sorted by length for batching, then restored."""
        was_training = self.training
        self.eval()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), 0), dtype=np.float32)
        chunks = []
        starts = range(0, len(order), batch_size)
        for start in tqdm(starts, desc=f"encode {kind}", disable=not progress, mininterval=5):
            idx = order[start : start + batch_size]
            chunks.append(self.forward([texts[i] for i in idx], kind).float().cpu().numpy())
        if chunks:
            stacked = np.concatenate(chunks)
            out = np.empty_like(stacked)
            out[np.array(order)] = stacked
        if was_training:
            self.train()
        return out.astype(np.float32)
