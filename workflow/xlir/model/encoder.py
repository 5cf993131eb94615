"""Shared-weight dual encoder: one transformer encodes queries and passages,
told apart by the E5 prefixes `query: ` / `passage: `; mean pooling over the
non-padding tokens (E5), L2-normalised so inner product = cosine.

The backbone is any family of `xlir.model.architectures` (BERT / XLM-R, XLM-R XL /
XXL, the mT5 encoder); only the tokenizer outputs the family takes are passed
to it. `precision="bf16"` runs the forward pass under bf16 autocast (weights
stay fp32; the pooled embeddings are returned in fp32)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
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

    def pad(self, rows: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        """Right-padded tensors of tokenized rows (what `tokenize` returns for the same texts)."""
        width = max(len(row["input_ids"]) for row in rows)
        fill = {"input_ids": self.tokenizer.pad_token_id or 0}
        return {
            key: torch.tensor([row[key] + [fill.get(key, 0)] * (width - len(row[key])) for row in rows])
            for key in rows[0]
        }

    def token_lengths(self, texts: list[str], kind: str) -> list[int]:
        """Each text's token count after the prefix and truncation (no padding)."""
        prefix = PREFIXES[kind]
        ids = self.tokenizer([prefix + t for t in texts], truncation=True, max_length=self.max_length)["input_ids"]
        return [len(row) for row in ids]

    def forward(self, texts: list[str], kind: str) -> torch.Tensor:
        """Normalised embeddings (with gradients when training); fp32 whatever the precision."""
        return self.embed(self.tokenize(texts, kind))

    def embed(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Normalised embeddings of a tokenized, padded batch."""
        device = self.device
        batch = {k: v.to(device) for k, v in batch.items() if k in self.input_names}
        with self.autocast():
            hidden = self.backbone(**batch).last_hidden_state
        if self.precision != "fp32":
            hidden = hidden.float()
        pooled = mean_pool(hidden, batch["attention_mask"]) if self.pooling == "mean" else hidden[:, 0]
        return torch.nn.functional.normalize(pooled, dim=-1)

    @torch.no_grad()
    def encode(
        self,
        texts: list[str],
        kind: str,
        batch_size: int = 64,
        progress: bool = False,
        batch_tokens: int | None = None,
        embed: Callable[[dict[str, torch.Tensor]], torch.Tensor] | None = None,
    ) -> np.ndarray:
        """float32 (n, d) embeddings. Texts are tokenized once, sorted by token count and cut into
        batches of at most `batch_size` texts and, with `batch_tokens`, at most that many padded
        tokens (rows x longest row; a single longer text gets a batch of its own); the order is restored.
        `embed`: what embeds a padded batch (default `self.embed`; `xlir.model.onnx_engine` passes its own)."""
        was_training = self.training
        self.eval()
        prefix = PREFIXES[kind]
        ids = self.tokenizer([prefix + t for t in texts], truncation=True, max_length=self.max_length)
        rows = [{k: ids[k][i] for k in ids.keys() if k in self.input_names} for i in range(len(texts))]
        order = sorted(range(len(texts)), key=lambda i: len(rows[i]["input_ids"]))
        batches = token_budget_batches([len(rows[i]["input_ids"]) for i in order], batch_size, batch_tokens)
        out = np.zeros((len(texts), 0), dtype=np.float32)
        chunks = []
        # a bar on a terminal only: a rule's log (stderr to a file) would keep every frame
        bar = progress and sys.stderr.isatty()
        for start, stop in tqdm(batches, desc=f"encode {kind}", disable=not bar, mininterval=5):
            chunks.append((embed or self.embed)(self.pad([rows[i] for i in order[start:stop]])).float().cpu().numpy())
        if chunks:
            stacked = np.concatenate(chunks)
            out = np.empty_like(stacked)
            out[np.array(order)] = stacked
        if was_training:
            self.train()
        return out.astype(np.float32)


def token_budget_batches(sorted_lengths: list[int], batch_size: int, batch_tokens: int | None) -> list[tuple[int, int]]:
    """[start, stop) ranges over ascending `sorted_lengths`: at most `batch_size` rows and, when
    `batch_tokens` is set, at most `batch_tokens` padded tokens (rows x the batch's longest row)."""
    ranges, start = [], 0
    for i, length in enumerate(sorted_lengths):
        rows = i - start + 1
        if i > start and (rows > batch_size or (batch_tokens and rows * length > batch_tokens)):
            ranges.append((start, i))
            start = i
    if start < len(sorted_lengths):
        ranges.append((start, len(sorted_lengths)))
    return ranges
