"""Fine-tune one dual encoder for one (variant, sampling, seed) cell of the grid.

InfoNCE with in-batch negatives over the hybrid batch plan, AdamW with the
variant's per-layer parameter groups, linear warmup then linear decay
(applied to every group relative to its own learning rate), gradient
clipping, seeded; writes the checkpoint (safetensors), the parameter-group
table and the loss curve. The checkpoint is a transformers and a sentence-transformers
directory (`xlir.model.sentence_transformers_dir`) with a model card (`README.md`,
`xlir.train.model_card`); LoRA runs also keep the peft adapter in `model/adapter/`.

Resumable (`xlir.train.checkpoint`): with a checkpoint folder, a checkpoint every
`training.checkpoint_every` steps and on SIGTERM / SIGUSR1; a rerun continues from the newest
complete one and ends with the same weights as an uninterrupted run; the folder is removed once
every output is written. One process at a time writes a run's outputs (`xlir.common.io.exclusive`).

Memory and scale switches (`xlir.train.options`): bf16 autocast, gradient
checkpointing, GradCache, fused / 8-bit AdamW. Launched by torchrun (or
accelerate launch) the same function trains data-parallel with DDP or FSDP
(`xlir.train.distributed`); the main process writes every output."""

from __future__ import annotations

import contextlib
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from xlir.common.io import (
    atomic_dir,
    exclusive,
    file_sha256,
    get_logger,
    read_json,
    read_jsonl,
    remove_stale_temps,
    write_json,
    write_tsv,
)
from xlir.model.encoder import DualEncoder
from xlir.model.precision import resolve_precision
from xlir.model.sentence_transformers_dir import model_args, write_sentence_transformers_files
from xlir.train import distributed, scaling
from xlir.train.checkpoint import Checkpoints, StopRequest, TrainingInterrupted, model_identity, run_key
from xlir.train.contrastive import contrastive_step
from xlir.train.model_card import write_model_card
from xlir.train.options import TrainOptions, enable_gradient_checkpointing, make_optimizer, parse_options
from xlir.train.plan_batches import read_batch_plan
from xlir.train.variants import VariantSpec

log = get_logger(__name__)

#: the peft adapter of a LoRA run, inside the model directory
ADAPTER_DIR = "adapter"


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


def train(
    model_dir: Path,
    train_pairs_jsonl: Path,
    batch_plan_jsonl: Path,
    variant: VariantSpec,
    out_model_dir: Path,
    out_param_groups: Path,
    out_train_log: Path,
    out_summary: Path,
    *,
    lr: float,
    weight_decay: float,
    temperature: float,
    warmup_ratio: float,
    max_grad_norm: float,
    max_length: int,
    pooling: str,
    freeze_word_embeddings: bool,
    seed: int,
    threads: int,
    device: str = "cpu",
    options: TrainOptions | dict | None = None,
    encode_max_length: int | None = None,
    checkpoint_dir: Path | None = None,
) -> dict | None:
    """Train one cell; `options` are the memory and distribution switches (`xlir.train.options`).
    `checkpoint_dir`: where the run's resumable checkpoints go (None: none); it must not be inside
    a declared output (a failed job's outputs are deleted, the checkpoints must survive).
    `encode_max_length` (default `max_length`) is the sentence-transformers `max_seq_length` of the
    saved model; the plan's header (`xlir.train.plan_batches`) names the batch sampling and its
    alpha in the model card.
    Under torchrun every process calls this; the main one writes the outputs and returns the
    summary, the others return None."""
    opts = parse_options(options)
    ctx = distributed.init(device, opts.strategy)
    try:
        return _train(
            model_dir,
            train_pairs_jsonl,
            batch_plan_jsonl,
            variant,
            out_model_dir,
            out_param_groups,
            out_train_log,
            out_summary,
            lr=lr,
            weight_decay=weight_decay,
            temperature=temperature,
            warmup_ratio=warmup_ratio,
            max_grad_norm=max_grad_norm,
            max_length=max_length,
            pooling=pooling,
            freeze_word_embeddings=freeze_word_embeddings,
            seed=seed,
            threads=threads,
            opts=opts,
            ctx=ctx,
            checkpoint_dir=checkpoint_dir,
            export={
                "max_seq_length": encode_max_length or max_length,
                **_plan_sampling(batch_plan_jsonl),
            },
        )
    finally:
        distributed.shutdown(ctx)


def _plan_sampling(batch_plan_jsonl: Path) -> dict:
    """The sampling's name and alpha from the plan's header (None for a plan without one)."""
    header, _ = read_batch_plan(batch_plan_jsonl)
    return {"sampling": (header or {}).get("sampling"), "alpha": (header or {}).get("alpha")}


def _train(
    model_dir: Path,
    train_pairs_jsonl: Path,
    batch_plan_jsonl: Path,
    variant: VariantSpec,
    out_model_dir: Path,
    out_param_groups: Path,
    out_train_log: Path,
    out_summary: Path,
    *,
    lr: float,
    weight_decay: float,
    temperature: float,
    warmup_ratio: float,
    max_grad_norm: float,
    max_length: int,
    pooling: str,
    freeze_word_embeddings: bool,
    seed: int,
    threads: int,
    opts: TrainOptions,
    ctx: distributed.DistContext,
    checkpoint_dir: Path | None = None,
    export: dict | None = None,
) -> dict | None:
    """`train` in this process: set up, run the steps, write the outputs (main process, holding the
    run's write lock). `export`: max_seq_length, sampling, alpha of the saved model's
    sentence-transformers files and card."""
    lock = exclusive(out_model_dir, "training run") if ctx.is_main else contextlib.nullcontext()
    with lock, StopRequest() as stop:  # a stop signal from here on ends in a checkpoint, not a kill
        if ctx.is_main:
            for path in (out_param_groups, out_train_log, out_summary):
                remove_stale_temps(path)
        key = run_key(
            model=model_identity(model_dir),
            pairs=file_sha256(train_pairs_jsonl),
            plan=file_sha256(batch_plan_jsonl),
            variant=variant.to_dict(),
            hyper=[lr, weight_decay, temperature, warmup_ratio, max_grad_norm, max_length, pooling],
            freeze_word_embeddings=freeze_word_embeddings,
            seed=seed,
            options={k: v for k, v in opts.to_dict().items() if k != "checkpoint_every"},
            world_size=ctx.world_size,
        )
        checkpoints = Checkpoints(checkpoint_dir, opts.checkpoint_every, key, ctx)
        torch.set_num_threads(max(1, threads))
        seed_everything(seed)
        spec = variant
        precision = resolve_precision(opts.precision, ctx.device)
        encoder, groups, trainable, total = _prepare_encoder(
            model_dir,
            spec,
            out_param_groups,
            lr=lr,
            weight_decay=weight_decay,
            max_length=max_length,
            pooling=pooling,
            freeze_word_embeddings=freeze_word_embeddings,
            precision=precision,
            opts=opts,
            ctx=ctx,
        )
        pairs = {p["pair_id"]: p for p in read_jsonl(train_pairs_jsonl)}
        _, plan = read_batch_plan(batch_plan_jsonl)
        optimizer, scheduler = _optimizer_and_scheduler(groups, opts, lr, weight_decay, warmup_ratio, len(plan))
        checkpoints.prepare()
        rows, seconds = _run_steps(
            encoder,
            plan,
            pairs,
            groups,
            optimizer,
            scheduler,
            temperature=temperature,
            max_grad_norm=max_grad_norm,
            name=spec.name,
            opts=opts,
            ctx=ctx,
            checkpoints=checkpoints,
            stop=stop,
        )
        optimizer.zero_grad(set_to_none=True)
        # FSDP: gather the shards (a collective: every process takes part); DDP: every replica is whole
        state = distributed.full_state_dict(encoder.backbone, ctx) if ctx.strategy == "fsdp" else None
        summary = None
        if ctx.is_main:
            write_tsv(out_train_log, rows, ["step", "kind", "loss", "lr"])
            summary = _summary(spec, plan, rows, seed, seconds, trainable, total, precision, opts, ctx, lr)
            if checkpoints.report():
                summary["checkpoints"] = checkpoints.report()
            export = {"max_seq_length": max_length, **(export or {})}
            facts = _card_facts(
                summary,
                plan,
                pairs,
                train_pairs_jsonl,
                model_dir,
                out_model_dir,
                export,
                training={
                    "lr": lr,
                    "weight_decay": weight_decay,
                    "temperature": temperature,
                    "warmup_ratio": warmup_ratio,
                    "max_grad_norm": max_grad_norm,
                },
                max_length=max_length,
            )
            update_norms = _save_model(
                encoder,
                state,
                model_dir,
                spec,
                freeze_word_embeddings,
                out_model_dir,
                max_seq_length=export["max_seq_length"],
                card_facts=facts,
            )
            if update_norms:
                summary["lora_update_norms"] = {str(block): norm for block, norm in update_norms.items()}
            write_json(out_summary, summary)
            checkpoints.clear()  # every output is complete: nothing left to resume
            log.info(
                "trained %d steps in %.1fs; loss %.3f -> %.3f",
                len(plan),
                seconds,
                summary["first_loss"] or 0.0,
                summary["final_loss_mean_last10"] or 0.0,
            )
        ctx.barrier()
        return summary


def _prepare_encoder(
    model_dir: Path,
    spec: VariantSpec,
    out_param_groups: Path,
    *,
    lr: float,
    weight_decay: float,
    max_length: int,
    pooling: str,
    freeze_word_embeddings: bool,
    precision: str,
    opts: TrainOptions,
    ctx: distributed.DistContext,
) -> tuple[DualEncoder, list[dict], int, int]:
    """Load the encoder, give it the variant's structure, move it to the device and wrap it
    for data parallelism; the main process writes the parameter-group table. Returns the
    encoder, the optimizer's parameter groups and the trainable and total parameter counts."""
    encoder = DualEncoder.load(model_dir, pooling=pooling, max_length=max_length, precision=precision)
    if opts.gradient_checkpointing:
        enable_gradient_checkpointing(encoder.backbone)
    encoder.backbone = scaling.prepare_model_for_variant(encoder.backbone, spec, freeze_word_embeddings)
    encoder.to(ctx.device)
    table = scaling.param_group_table(encoder.backbone, spec, lr, weight_decay)
    if ctx.is_main:
        write_tsv(out_param_groups, table)
    trainable = sum(p.numel() for p in encoder.backbone.parameters() if p.requires_grad)
    total = sum(p.numel() for p in encoder.backbone.parameters())
    encoder.backbone = distributed.wrap(encoder.backbone, ctx, precision)
    groups = scaling.build_param_groups(distributed.unwrapped(encoder.backbone), spec, lr, weight_decay)
    log.info(
        "variant %s: %d of %d parameters trainable in %d groups; %s",
        spec.name,
        trainable,
        total,
        len(groups),
        {**opts.to_dict(), "precision": precision, "world_size": ctx.world_size},
    )
    return encoder, groups, trainable, total


def _optimizer_and_scheduler(
    groups: list[dict], opts: TrainOptions, lr: float, weight_decay: float, warmup_ratio: float, steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """The optimizer over `groups` and its linear warmup-then-decay schedule over `steps` steps."""
    optimizer = make_optimizer(groups, opts.optimizer, lr, weight_decay)
    warmup = int(math.ceil(warmup_ratio * steps))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, linear_warmup_decay(steps, warmup))
    return optimizer, scheduler


def _stderr_is_terminal() -> bool:
    import sys

    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def progress_line(batch: dict, total: int, loss: float, lr: float, items: int, steps: int, seconds: float) -> str:
    """One timed progress line for a rule's log: step, kind, loss, lr, items/s and the time left."""
    rate = items / seconds if seconds > 0 else 0.0
    left = (total - batch["step"] - 1) * seconds / steps if steps else 0.0
    minutes, secs = divmod(int(round(left)), 60)
    return (
        f"step {batch['step'] + 1}/{total} ({batch['kind']}) loss {loss:.4f} lr {lr:.2e} "
        f"{rate:.1f} items/s ETA {minutes}m{secs:02d}s"
    )


def _run_steps(
    encoder: DualEncoder,
    plan: list[dict],
    pairs: dict[str, dict],
    groups: list[dict],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    *,
    temperature: float,
    max_grad_norm: float,
    name: str,
    opts: TrainOptions,
    ctx: distributed.DistContext,
    checkpoints: Checkpoints,
    stop: StopRequest,
) -> tuple[list[dict], float]:
    """Train one step per batch of `plan`, from the newest complete checkpoint on when there is one;
    return the loss-curve rows and the training time (the slowest process's, checkpoint writes
    excluded, earlier attempts included). A checkpoint is written every `checkpoints.every` steps and,
    on a stop signal, after the current step, which then raises `TrainingInterrupted`."""
    params = [p for g in groups for p in g["params"]]
    sync = lambda last: distributed.sync_context(encoder.backbone, ctx, last)  # noqa: E731
    encoder.train()
    done, rows, before = checkpoints.resume(encoder.backbone, optimizer, scheduler)
    started, paused = time.time(), 0.0
    # the bar on a terminal; a rule's log (stderr redirected to a file) gets the timed lines below instead
    progress = tqdm(
        plan[done:],
        desc=f"train {name}",
        mininterval=10,
        disable=not ctx.is_main or not _stderr_is_terminal(),
        initial=done,
    )
    progress.total = len(plan)
    first, items = done, 0
    for batch in progress:
        queries, passages = batch_texts({**batch, "items": ctx.shard(batch["items"], f"batch {batch['step']}")}, pairs)
        optimizer.zero_grad(set_to_none=True)
        loss = contrastive_step(
            encoder,
            queries,
            passages,
            temperature,
            chunk_size=opts.grad_cache_chunk_size,
            ctx=ctx,
            sync=sync,
            bucket_call_tokens=opts.length_bucket_call_tokens,
        )
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at step {batch['step']}")
        if max_grad_norm:
            torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
        current_lr = scheduler.get_last_lr()[max(range(len(groups)), key=lambda i: groups[i]["lr"])]
        optimizer.step()
        scheduler.step()
        rows.append(
            {"step": batch["step"], "kind": batch["kind"], "loss": round(loss.item(), 6), "lr": f"{current_lr:.3e}"}
        )
        progress.set_postfix(loss=f"{loss.item():.3f}")
        done += 1
        items += len(batch["items"])
        if batch["step"] % 10 == 0 or done == len(plan):
            log.info(
                "%s",
                progress_line(
                    batch, len(plan), loss.item(), current_lr, items, done - first, time.time() - started - paused
                ),
            )
        signum = stop.requested(ctx) if done < len(plan) else None  # after the last step: the model follows
        if checkpoints.due(done, len(plan)) or (signum and checkpoints.enabled):
            paused_from = time.time()
            seconds = before + paused_from - started - paused
            checkpoints.save(done, len(plan), encoder.backbone, optimizer, scheduler, rows, seconds)
            paused += time.time() - paused_from
        if signum:
            raise TrainingInterrupted(signum, done, checkpoints.root)
    return rows, ctx.all_reduce_max(before + time.time() - started - paused)


def _save_model(
    encoder: DualEncoder,
    state: dict | None,
    model_dir: Path,
    spec: VariantSpec,
    freeze_word_embeddings: bool,
    out_model_dir: Path,
    *,
    max_seq_length: int | None = None,
    card_facts: dict | None = None,
) -> dict[int, float] | None:
    """Write the trained backbone (LoRA merged, safetensors), the tokenizer and the
    sentence-transformers files (`max_seq_length`, default the encoder's max_length) to
    `out_model_dir` atomically; a LoRA run's peft adapter goes to `adapter/` beside them,
    and with `card_facts` (see `xlir.train.model_card.render_model_card`) the model card to `README.md`.
    Returns a LoRA run's per-block update norms ||dW||_F (`scaling.lora_update_norms`), else None."""
    backbone = _main_backbone(encoder, state, model_dir, spec, freeze_word_embeddings)
    max_seq_length = max_seq_length or encoder.max_length
    update_norms = None
    with atomic_dir(out_model_dir) as tmp:
        lora_ranks = None
        if spec.is_lora:
            lora_ranks = scaling.lora_ranks_of_model(backbone)
            update_norms = scaling.lora_update_norms(backbone)
            _save_adapter(backbone, tmp / ADAPTER_DIR, model_dir)
        backbone = scaling.merge_and_unload(backbone)
        backbone.save_pretrained(str(tmp), safe_serialization=True)
        encoder.tokenizer.save_pretrained(str(tmp))
        write_sentence_transformers_files(tmp, pooling=encoder.pooling, max_seq_length=max_seq_length)
        if card_facts is not None:
            facts = {
                **card_facts,
                "pooling": encoder.pooling,
                "max_seq_length": max_seq_length,
                "model_class": type(backbone).__name__,
                "model_args": model_args(tmp),
                "lora_ranks": lora_ranks,
            }
            write_model_card(tmp / "README.md", facts, spec, _base_card(model_dir))
    return update_norms


def _save_adapter(backbone, adapter_dir: Path, model_dir: Path) -> None:
    """The peft adapter of a LoRA backbone (`adapter_config.json` with the per-block `rank_pattern` /
    `alpha_pattern`, `adapter_model.safetensors`), naming the base model directory it applies to."""
    for config in backbone.peft_config.values():
        config.base_model_name_or_path = str(model_dir)
    backbone.save_pretrained(str(adapter_dir), safe_serialization=True)


def _base_card(model_dir: Path) -> dict:
    """The base model's `model_card.json` (written by prepare-model), or {} for another folder."""
    path = Path(model_dir) / "model_card.json"
    return read_json(path) if path.is_file() else {}


def _card_facts(
    summary: dict,
    plan: list[dict],
    pairs: dict[str, dict],
    train_pairs_jsonl: Path,
    model_dir: Path,
    out_model_dir: Path,
    export: dict,
    *,
    training: dict,
    max_length: int,
) -> dict:
    """What the model card says about the run besides the model itself (`xlir.train.model_card`)."""
    items = [item for batch in plan for item in batch["items"]]
    languages = sorted({item[key] for item in items for key in ("query_lang", "passage_lang")})
    return {
        "run": str(Path(out_model_dir).parent),
        "summary": summary,
        "training": training,
        "sampling": export.get("sampling"),
        "alpha": export.get("alpha"),
        "pairs": len(pairs),
        "languages": languages,
        "train_file": str(train_pairs_jsonl),
        "batch_size": max((len(batch["items"]) for batch in plan), default=0),
        "mono_batches": sum(batch["kind"] == "mono" for batch in plan),
        "cross_batches": sum(batch["kind"] != "mono" for batch in plan),
        "max_length": max_length,
        "base_dir": str(model_dir),
    }


def _summary(
    spec: VariantSpec,
    plan: list[dict],
    rows: list[dict],
    seed: int,
    seconds: float,
    trainable: int,
    total: int,
    precision: str,
    opts: TrainOptions,
    ctx: distributed.DistContext,
    base_lr: float,
) -> dict:
    """The training summary: base lr, steps, time, throughput, parameter counts, losses (and the
    memory and distribution switches when they are not the defaults)."""
    losses = [r["loss"] for r in rows]
    summary = {
        "variant": spec.name,
        "base_lr": base_lr,
        "steps": len(plan),
        "seed": seed,
        "train_seconds": round(seconds, 2),
        "sequences_per_second": round(2 * sum(len(b["items"]) for b in plan) / max(seconds, 1e-9), 2),
        "trainable_parameters": trainable,
        "total_parameters": total,
        "first_loss": losses[0] if losses else None,
        "final_loss_mean_last10": float(np.mean(losses[-10:])) if losses else None,
        "precision": precision,  # what ran (auto resolved), also when every switch is at its default
    }
    if opts != TrainOptions():
        summary.update(options={**opts.to_dict(), "precision": precision}, world_size=ctx.world_size)
    return summary


def _main_backbone(encoder: DualEncoder, state: dict | None, model_dir: Path, spec, freeze_word_embeddings: bool):
    """The trained backbone to save, LoRA not yet merged: the local module, or (distributed) a fresh
    CPU copy of the base model with the variant's structure and the gathered full state dict."""
    if state is None:
        return distributed.unwrapped(encoder.backbone)
    backbone = scaling.prepare_model_for_variant(DualEncoder.load(model_dir).backbone, spec, freeze_word_embeddings)
    backbone.load_state_dict(state)  # strict: every gathered tensor has its place and none is missing
    return backbone
