"""Stages 3-4 subcommands (rule file `workflow/rules/train.smk`): `plan-batches`, `train`,
`select-lr` and `link-selected-run` (the lr sweep), and the planning tool `plan-memory`
(no rule: `xlir plan-memory --configfile ...`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from xlir.common.cli_args import add_command, add_list_option, bool_arg, json_arg
from xlir.model.precision import RESOLVED_PRECISIONS


def add_plan_batches(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "plan-batches", run_plan_batches, "hybrid batch plan for one sampling and seed")
    p.add_argument("--train", required=True, type=Path)
    add_list_option(p, "--languages", required=True)
    p.add_argument("--alpha", type=float, required=True)
    p.add_argument("--batch-size", type=int, required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--sampling", help="the sampling's name, recorded in the plan's header")
    p.add_argument("--out", required=True, type=Path)


def run_plan_batches(a: argparse.Namespace) -> None:
    from xlir.common.io import read_jsonl
    from xlir.train.plan_batches import write_batch_plan

    write_batch_plan(read_jsonl(a.train), a.languages, a.alpha, a.batch_size, a.steps, a.seed, a.out, a.sampling)


def add_train(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "train", run_train, "fine-tune one dual encoder")
    p.add_argument("--model", required=True, type=Path)
    p.add_argument("--train", required=True, type=Path)
    p.add_argument("--plan", required=True, type=Path)
    p.add_argument("--variant", required=True, type=json_arg, help="the variant's config with its name (JSON)")
    p.add_argument("--training", required=True, type=json_arg, help="training hyperparameters (JSON)")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument(
        "--encode-max-length",
        type=int,
        help="the saved model's sentence-transformers max_seq_length (default: --max-length)",
    )
    p.add_argument("--pooling", default="mean")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out-model", required=True, type=Path)
    p.add_argument("--out-param-groups", required=True, type=Path)
    p.add_argument("--out-log", required=True, type=Path)
    p.add_argument("--out-summary", required=True, type=Path)
    p.add_argument(
        "--selection",
        type=Path,
        help="a select_lr output: train at the base lr it selected (lr, or lora_lr for LoRA), for the "
        "seeds outside training.lr_sweep.seeds (rule train_at_selected_lr)",
    )
    p.add_argument(
        "--checkpoint-dir",
        type=Path,
        help="resumable checkpoints (every training.checkpoint_every steps and on SIGTERM / SIGUSR1); "
        "a rerun resumes from the newest complete one; removed when the outputs are written. "
        "Not inside a declared output: a failed job's outputs are deleted (default: no checkpoints)",
    )
    p.add_argument(
        "--checkpoint-every",
        type=int,
        help="steps between checkpoints (training.checkpoint_every; overrides --training's; the rule passes "
        "it as a resource, so changing it reruns nothing: resume is bit-identical)",
    )


def run_train(a: argparse.Namespace) -> None:
    from xlir.common.io import Busy, get_logger
    from xlir.train.checkpoint import TrainingInterrupted

    try:
        _train_command(a)
    except TrainingInterrupted as stopped:  # checkpoint written: exit as the signal would (143 for SIGTERM)
        get_logger(__name__).warning("%s", stopped)
        raise SystemExit(stopped.exit_code) from None
    except Busy as busy:
        get_logger(__name__).error("%s", busy)
        raise SystemExit(1) from None


def _train_command(a: argparse.Namespace) -> None:
    from xlir.train.train import train
    from xlir.train.variants import parse_variant

    t = a.training
    if a.checkpoint_every is not None:  # outside --training: it changes no result, so it triggers no rerun
        t = {**t, "checkpoint_every": a.checkpoint_every}
    spec = parse_variant(a.variant)
    if a.selection is not None:
        from xlir.common.io import get_logger
        from xlir.train.lr_sweep import selected_lr, training_overrides

        chosen = selected_lr(a.selection)
        t = {**t, **training_overrides(spec, chosen)}
        get_logger(__name__).info("base lr %g, selected on the dev split (%s)", chosen, a.selection)
    # a LoRA variant trains at training.lora_lr where one is set (LoRA's own learning rate)
    lr = t["lora_lr"] if spec.is_lora and t.get("lora_lr") else t["lr"]
    train(
        a.model,
        a.train,
        a.plan,
        spec,
        a.out_model,
        a.out_param_groups,
        a.out_log,
        a.out_summary,
        lr=lr,
        weight_decay=t["weight_decay"],
        temperature=t["temperature"],
        warmup_ratio=t["warmup_ratio"],
        max_grad_norm=t["max_grad_norm"],
        max_length=a.max_length,
        pooling=a.pooling,
        freeze_word_embeddings=t["freeze_word_embeddings"],
        seed=a.seed,
        threads=a.threads,
        device=a.device,
        options=t,
        encode_max_length=a.encode_max_length,
        checkpoint_dir=a.checkpoint_dir,
    )


def add_plan_memory(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "plan-memory",
        run_plan_memory,
        "GPU memory per device and GPU-hours of training jobs (xlir.train.plan_memory)",
    )
    p.add_argument(
        "--configfile",
        nargs="+",
        help="a study's config file(s), as for snakemake (overlays merged in order, validated): one row per "
        "model x variant, plus encode jobs",
    )
    p.add_argument("--preset", help="one model by preset name (xlm-roberta-xl, xlm-roberta-xxl, labse, ...)")
    p.add_argument("--model-dir", help="one model by its transformers folder (config.json)")
    p.add_argument("--gpu", default="h100-80gb", help="h100-80gb, h200-141gb, a100-80gb, a100-40gb, l40s-48gb")
    p.add_argument("--mfu", type=float, default=0.35, help="assumed model FLOPs utilisation")
    p.add_argument("--headroom", type=float, default=0.1, help="share of GPU memory kept free")
    p.add_argument("--max-gpus", type=int, default=8, help="most GPUs per job the recommendation may use")
    p.add_argument("--batch-size", type=int, help="global batch of pairs")
    p.add_argument("--length", type=int, help="tokens per query and per passage")
    p.add_argument("--query-length", type=int)
    p.add_argument("--passage-length", type=int)
    p.add_argument("--precision", choices=RESOLVED_PRECISIONS)
    p.add_argument("--gradient-checkpointing", action="store_true", default=None)
    p.add_argument("--grad-cache-chunk-size", type=int)
    p.add_argument("--lora-rank", type=int, help="LoRA (uniform-rank budget); default: full fine-tuning")
    p.add_argument("--freeze-word-embeddings", type=bool_arg, default=None)
    p.add_argument("--optimizer", choices=["adamw", "adamw_fused", "adamw_8bit"])
    p.add_argument("--nproc", type=int, help="GPUs (processes) per job")
    p.add_argument("--strategy", choices=["ddp", "fsdp"])
    p.add_argument("--json", action="store_true", help="JSON instead of text")
    p.add_argument("--out", type=Path, help="also write the output to this file")


def run_plan_memory(a: argparse.Namespace) -> None:
    from xlir.common.io import atomic_open
    from xlir.train.plan_memory import plan_command

    text = plan_command(
        configfile=a.configfile,
        preset=a.preset,
        model_dir=a.model_dir,
        gpu=a.gpu,
        mfu=a.mfu,
        headroom=a.headroom,
        max_gpus=a.max_gpus,
        as_json=a.json,
        batch_size=a.batch_size,
        query_length=a.query_length or a.length,
        passage_length=a.passage_length or a.length,
        precision=a.precision,
        gradient_checkpointing=a.gradient_checkpointing,
        grad_cache_chunk_size=a.grad_cache_chunk_size,
        lora_rank=a.lora_rank,
        freeze_word_embeddings=a.freeze_word_embeddings,
        optimizer=a.optimizer,
        nproc=a.nproc,
        strategy=a.strategy,
    )
    if a.out:
        with atomic_open(a.out) as handle:
            handle.write(text + "\n")
    print(text)


def add_select_lr(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "select-lr", run_select_lr, "pick a variant's base lr on the dev split (lr sweep)")
    p.add_argument("--variant", required=True)
    p.add_argument(
        "--runs",
        required=True,
        type=json_arg,
        help="the sweep runs: [{lr, seed, run, metrics}] (metrics: the run's dev metrics.json) (JSON)",
    )
    p.add_argument("--metric", default="map")
    p.add_argument("--setting", default="mean", help="monolingual, cross-lingual, multilingual or mean")
    p.add_argument("--follow", type=Path, help="a mean-lr-matched control: its target's selection.json")
    p.add_argument("--out", required=True, type=Path)


def run_select_lr(a: argparse.Namespace) -> None:
    from xlir.train.select_lr import select_lr

    select_lr(a.variant, a.runs, a.metric, a.setting, a.out, follow=a.follow)


def add_link_selected_run(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub, "link-selected-run", run_link_selected_run, "copy a variant's dev-selected sweep run to its run folder"
    )
    p.add_argument("--selection", required=True, type=Path)
    p.add_argument("--seed", required=True, type=int)
    p.add_argument("--runs-dir", required=True, type=Path, help="the folder holding the sweep runs' folders")
    p.add_argument("--out-run", required=True, type=Path)


def run_link_selected_run(a: argparse.Namespace) -> None:
    from xlir.train.link_selected_run import link_selected_run

    link_selected_run(a.selection, a.seed, a.runs_dir, a.out_run)


def add_import_selection(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "import-selection", run_import_selection, "one cell's lr selection from a selection shard")
    p.add_argument("--shard", required=True, type=Path, help="the selection shard's folder")
    p.add_argument("--design", required=True, type=json_arg, help="this config's design (JSON)")
    p.add_argument("--model", required=True)
    p.add_argument("--variant", required=True)
    p.add_argument("--sampling", required=True)
    p.add_argument("--out", required=True, type=Path)


def run_import_selection(a: argparse.Namespace) -> None:
    from xlir.train.import_selection import import_selection

    import_selection(a.shard, a.design, a.model, a.variant, a.sampling, a.out)


def register(sub: argparse._SubParsersAction) -> None:
    for add in (
        add_plan_batches,
        add_train,
        add_plan_memory,
        add_select_lr,
        add_import_selection,
        add_link_selected_run,
    ):
        add(sub)
