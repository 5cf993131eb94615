"""Fine-tune one dual encoder for one (variant, sampling, seed) cell of the grid.

InfoNCE with in-batch negatives over the hybrid batch plan, AdamW with the
variant's per-layer parameter groups, linear warmup then linear decay
(applied to every group relative to its own learning rate), gradient
clipping, seeded; writes the checkpoint (safetensors), the parameter-group
table and the loss curve."""
from __future__ import annotations

import math
import random
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from xlir.encoder import DualEncoder
from xlir.io_utils import atomic_dir, get_logger, read_jsonl, write_json, write_tsv
from xlir.losses import info_nce
from xlir import scaling

log = get_logger("train")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def linear_warmup_decay(total_steps: int, warmup_steps: int):
    def factor(step: int) -> float:
        if warmup_steps and step < warmup_steps:
            return (step + 1) / warmup_steps
        remaining = max(total_steps - warmup_steps, 1)
        return max(0.0, (total_steps - step) / remaining)
    return factor


def batch_texts(batch: dict, pairs: dict[str, dict]) -> tuple[list[str], list[str]]:
    queries, passages = [], []
    for item in batch["items"]:
        texts = pairs[item["pair_id"]]["texts"]
        queries.append(texts[item["query_lang"]]["question"])
        passages.append(texts[item["passage_lang"]]["answer"])
    return queries, passages


def train(model_dir: Path, train_pairs_jsonl: Path, batch_plan_jsonl: Path, variant: dict, out_model_dir: Path,
          out_param_groups: Path, out_train_log: Path, out_summary: Path, *, lr: float, weight_decay: float,
          temperature: float, warmup_ratio: float, max_grad_norm: float, max_length: int, pooling: str,
          freeze_word_embeddings: bool, seed: int, threads: int, device: str = "cpu") -> dict:
    torch.set_num_threads(max(1, threads))
    seed_everything(seed)
    spec = scaling.parse_variant(variant)
    encoder = DualEncoder.load(model_dir, pooling=pooling, max_length=max_length)
    encoder.backbone = scaling.prepare_model_for_variant(encoder.backbone, spec, freeze_word_embeddings)
    encoder.to(device)
    groups = scaling.build_param_groups(encoder.backbone, spec, lr, weight_decay)
    table = scaling.param_group_table(encoder.backbone, spec, lr, weight_decay)
    write_tsv(out_param_groups, table)
    trainable = sum(p.numel() for p in encoder.backbone.parameters() if p.requires_grad)
    total = sum(p.numel() for p in encoder.backbone.parameters())
    log.info("variant %s: %d of %d parameters trainable in %d groups", spec.name, trainable, total, len(groups))

    pairs = {p["pair_id"]: p for p in read_jsonl(train_pairs_jsonl)}
    plan = read_jsonl(batch_plan_jsonl)
    optimizer = torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)
    warmup = int(math.ceil(warmup_ratio * len(plan)))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, linear_warmup_decay(len(plan), warmup))
    encoder.train()
    rows, started = [], time.time()
    progress = tqdm(plan, desc=f"train {spec.name}", mininterval=10)
    for batch in progress:
        queries, passages = batch_texts(batch, pairs)
        loss = info_nce(encoder(queries, "query"), encoder(passages, "passage"), temperature)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at step {batch['step']}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if max_grad_norm:
            torch.nn.utils.clip_grad_norm_([p for g in groups for p in g["params"]], max_grad_norm)
        current_lr = scheduler.get_last_lr()[max(range(len(groups)), key=lambda i: groups[i]["lr"])]
        optimizer.step()
        scheduler.step()
        rows.append({"step": batch["step"], "kind": batch["kind"], "loss": round(loss.item(), 6),
                     "lr": f"{current_lr:.3e}"})
        progress.set_postfix(loss=f"{loss.item():.3f}")
        if batch["step"] % 10 == 0:
            log.info("step %d (%s) loss %.4f lr %.2e", batch["step"], batch["kind"], loss.item(), current_lr)
    seconds = time.time() - started
    write_tsv(out_train_log, rows, ["step", "kind", "loss", "lr"])

    backbone = encoder.backbone
    if hasattr(backbone, "merge_and_unload"):
        backbone = backbone.merge_and_unload()
    with atomic_dir(out_model_dir) as tmp:
        backbone.save_pretrained(str(tmp), safe_serialization=True)
        encoder.tokenizer.save_pretrained(str(tmp))
    losses = [r["loss"] for r in rows]
    summary = {"variant": spec.name, "steps": len(plan), "seed": seed, "train_seconds": round(seconds, 2),
               "sequences_per_second": round(2 * sum(len(b["items"]) for b in plan) / max(seconds, 1e-9), 2),
               "trainable_parameters": trainable, "total_parameters": total,
               "first_loss": losses[0] if losses else None,
               "final_loss_mean_last10": float(np.mean(losses[-10:])) if losses else None}
    write_json(out_summary, summary)
    log.info("trained %d steps in %.1fs; loss %.3f -> %.3f", len(plan), seconds,
             summary["first_loss"] or 0.0, summary["final_loss_mean_last10"] or 0.0)
    return summary
