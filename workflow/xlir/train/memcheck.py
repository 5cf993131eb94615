"""Measure the peak memory of real training steps on CPU, to check the planner against.

Run as its own process (`python -m xlir.train.memcheck --model DIR --setup JSON`).
Method: glibc's mmap threshold is fixed at 128 KiB (mallopt), so every tensor
of that size or more is its own mapping and goes back to the kernel when
freed: the resident set then follows the live tensors, as the planner counts
them, and not malloc's cache of freed blocks. A warm-up step on a tiny batch
(2 pairs of 8 tokens) loads every library and kernel the run needs; it is
freed, the kernel's peak-RSS counter is reset (writing 5 to
/proc/self/clear_refs resets VmHWM, Linux >= 4.0) and the resident set
(VmRSS) noted. Then the model is loaded again, the optimizer built and a few
steps of the real training code run (DualEncoder, the variant's parameter
groups, `contrastive_step`, AdamW) on texts long enough to be truncated to the
configured length. The measured figure is peak RSS (VmHWM) minus that
baseline: everything the training run allocated at its peak, weights included,
as the planner's per-device total counts it.

Prints one JSON object: {measured_bytes, peak_bytes, baseline_bytes, steps, method}.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import sys
from pathlib import Path

M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 128 * 1024


def _status_kib() -> dict[str, int]:
    fields = {}
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0])
    return fields


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
        handle.write("5")


def fix_mmap_threshold() -> bool:
    """Fix glibc's mmap threshold (no dynamic raise), so freed large blocks leave the resident set."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))


def _steps(model_dir: Path, setup: dict, batch: int, length: int, steps: int) -> None:
    import torch

    from xlir.common.config_files import schema_defaults
    from xlir.model.encoder import DualEncoder
    from xlir.train import scaling
    from xlir.train.contrastive import contrastive_step
    from xlir.train.options import enable_gradient_checkpointing, make_optimizer
    from xlir.train.variants import parse_variant

    training = schema_defaults("training")  # what a setup leaves out: the config's defaults
    words = "the capital of france is paris and plants use photosynthesis to make food from water".split()
    texts = [" ".join(words[(i + j) % len(words)] for j in range(4 * length)) for i in range(batch)]
    torch.manual_seed(0)
    encoder = DualEncoder.load(model_dir, max_length=length, precision=setup.get("precision", "fp32"))
    if setup.get("gradient_checkpointing"):
        enable_gradient_checkpointing(encoder.backbone)
    spec = parse_variant(setup.get("variant", {"name": "uniform", "kind": "uniform"}))
    encoder.backbone = scaling.prepare_model_for_variant(
        encoder.backbone, spec, bool(setup.get("freeze_word_embeddings", training["freeze_word_embeddings"]))
    )
    groups = scaling.build_param_groups(encoder.backbone, spec, 1e-4, 0.01)
    optimizer = make_optimizer(groups, setup.get("optimizer", training["optimizer"]), 1e-4, 0.01)
    tokens = encoder.tokenize(texts[:1], "query")["input_ids"].shape[1]
    if tokens != length:
        raise RuntimeError(f"texts tokenize to {tokens} tokens, not the {length} asked for")
    encoder.train()
    chunk = setup.get("grad_cache_chunk_size")
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        contrastive_step(encoder, texts, texts[::-1], 0.05, chunk_size=min(chunk, batch) if chunk else None)
        optimizer.step()


def measure(model_dir: Path, setup: dict, steps: int = 3) -> dict:
    """Peak RSS growth over `steps` training steps of the model in `model_dir` under `setup`.

    `setup` keys: batch_size, length (tokens per query and per passage), precision,
    gradient_checkpointing, grad_cache_chunk_size, variant (a variant dict),
    freeze_word_embeddings, optimizer, threads."""
    import torch

    torch.set_num_threads(int(setup.get("threads", 1)))
    _steps(model_dir, setup, 2, 8, 1)  # warm-up: libraries, kernels, tokenizer
    gc.collect()
    _reset_peak()
    baseline = _status_kib()["VmRSS"]
    _steps(model_dir, setup, int(setup["batch_size"]), int(setup["length"]), steps)
    status = _status_kib()
    return {
        "measured_bytes": (status["VmHWM"] - baseline) * 1024,
        "peak_bytes": status["VmHWM"] * 1024,
        "baseline_bytes": baseline * 1024,
        "steps": steps,
        "method": "VmHWM - VmRSS after a warm-up step (peak reset via /proc/self/clear_refs; "
        "glibc mmap threshold fixed at 128 KiB)",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xlir.train.memcheck", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--setup", required=True, type=json.loads, help="JSON, see measure()")
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args(argv)
    if not fix_mmap_threshold():
        print("warning: could not fix glibc's mmap threshold; freed memory may stay resident", file=sys.stderr)
    print(json.dumps(measure(args.model, args.setup, args.steps)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
