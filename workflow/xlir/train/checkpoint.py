"""Resumable training: a checkpoint every `training.checkpoint_every` steps, written atomically,
and a restarted job continues from the newest complete one.

A checkpoint is a folder `{checkpoint_dir}/step-{NNNNNNNN}/` (NNNNNNNN: the plan steps done) with

| file | what |
|---|---|
| `model.pt` | every trainable parameter (full fine-tuning: the weights that train; LoRA: the adapter) and the buffers |
| `optimizer.pt` | the optimizer state: AdamW moments and step counts, each group's current learning rate |
| `scheduler.pt` | the LR scheduler's position |
| `rng-rank{r}.pt` | process r's Python, NumPy, torch CPU and (where present) CUDA random states |
| `meta.json` | written last: the plan position, the run key, the loss-curve rows so far, the training seconds |

Everything else a step carries is rebuilt, not stored: the model's frozen weights come from the base
model, the LoRA structure and the parameter groups from the variant; GradCache keeps no state between
steps (each step records and replays its own random states, which the RNG files restore); there is
no gradient scaler (bf16 autocast needs none) and the gradients are cleared at every step's start.
A resumed run therefore ends bit-identical to an uninterrupted one (tests/test_fault_injection.py).

Atomic: every file goes to the hidden `.step-NNNNNNNN.tmp/`, is fsynced, and the folder is renamed
to `step-NNNNNNNN` only when complete; only then is the previous checkpoint removed. A folder without
`meta.json` or whose run key differs (other data, plan, variant or hyperparameters) is never read.
The checkpoint folder is not a declared Snakemake output (`results/checkpoints/...`, beside the
run), so Snakemake does not delete it when the job fails; `train` removes it once every output is
written.

Signals: SIGTERM (SLURM at the time limit or on preemption, `scancel`, torchrun passing one on) and
SIGUSR1 (`sbatch --signal=USR1@<seconds>`) make the loop finish the current step, write a checkpoint
and stop with `TrainingInterrupted` (`xlir train` exits with 128 + the signal number); a rerun
resumes from it. SIGKILL cannot be caught: the rerun resumes from the last periodic checkpoint."""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np
import torch

from xlir.common.io import fingerprint, get_logger, read_json, write_json
from xlir.train import distributed
from xlir.train.options import TrainOptions

log = get_logger(__name__)

#: the default of training.checkpoint_every (steps); 0 turns periodic checkpoints off
DEFAULT_EVERY = TrainOptions.checkpoint_every
#: the signals that make the loop write a checkpoint and stop
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
_STEP = re.compile(r"^step-(\d{8})$")


class TrainingInterrupted(RuntimeError):
    """A stop signal arrived: the checkpoint is written, the job stops so that a rerun resumes."""

    def __init__(self, signum: int, step: int, where: Path | None) -> None:
        self.signum = signum
        self.exit_code = 128 + signum
        name = signal.Signals(signum).name
        saved = f"checkpoint at step {step} in {where}" if where else "no checkpoint folder (--checkpoint-dir)"
        super().__init__(f"{name} received: stopped after step {step}; {saved}; a rerun resumes from it")


def rng_state() -> dict:
    """Every random state the training loop draws from (this process)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(_as_tuples(state["python"]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuples(value):
    """random.setstate wants the nested tuples getstate gave (a round trip may turn them into lists)."""
    return tuple(_as_tuples(v) for v in value) if isinstance(value, list | tuple) else value


class StopRequest:
    """Catches SIGTERM and SIGUSR1 for the block (main thread only) and remembers the first one."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum, frame) -> None:  # noqa: ARG002 (signal handler signature)
        if self.signum is None:
            log.warning("%s received: stopping after the current step with a checkpoint", signal.Signals(signum).name)
        self.signum = self.signum or signum

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)

    def requested(self, ctx: distributed.DistContext) -> int | None:
        """The signal number when this process (or, distributed, any process) was asked to stop."""
        signum = self.signum or 0
        if ctx.enabled:  # every process must stop after the same step
            signum = int(ctx.all_reduce_max(float(signum)))
        return signum or None


def run_key(**parts) -> str:
    """What a checkpoint belongs to: a resumed run must see the same inputs and settings."""
    return fingerprint(parts)


def model_identity(model_dir: Path) -> list:
    """A cheap identity of a model folder: its config and every file's name and size."""
    model_dir = Path(model_dir)
    config = model_dir / "config.json"
    files = sorted((p.name, p.stat().st_size) for p in model_dir.iterdir() if p.is_file())
    return [config.read_text(encoding="utf-8") if config.is_file() else None, files]


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Checkpoints:
    """The checkpoints of one run in `root` (None: no checkpoints), one every `every` steps (0: none
    on a schedule, but still on a stop signal)."""

    def __init__(self, root: Path | None, every: int, key: str, ctx: distributed.DistContext) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 0:
            raise ValueError(f"config key training.checkpoint_every: {every!r}; expected an integer >= 0")
        self.root = Path(root) if root else None
        self.every = every
        self.key = key
        self.ctx = ctx
        self.written = 0
        self.seconds = 0.0
        self.resumed_from = 0

    @property
    def enabled(self) -> bool:
        return self.root is not None

    def due(self, done: int, total: int) -> bool:
        """A periodic checkpoint after `done` of `total` steps (none after the last: the model follows)."""
        return self.enabled and self.every > 0 and done % self.every == 0 and done < total

    def complete(self) -> list[tuple[int, Path]]:
        """The complete checkpoints of this run (meta.json present, same run key), oldest first."""
        if not self.enabled or not self.root.is_dir():
            return []
        found = []
        for path in self.root.iterdir():
            match = _STEP.match(path.name)
            if match and (path / "meta.json").is_file():
                with contextlib.suppress(ValueError, OSError):
                    if read_json(path / "meta.json").get("key") == self.key:
                        found.append((int(match.group(1)), path))
        return sorted(found)

    def prepare(self) -> None:
        """Main process: remove what a killed save left (`.step-*.tmp`) and the checkpoints of another
        configuration, so that only this run's complete checkpoints remain."""
        if self.enabled and self.ctx.is_main and self.root.is_dir():
            keep = {path for _, path in self.complete()}
            for path in self.root.iterdir():
                if path in keep:
                    continue
                why = "half-written" if path.name.startswith(".") else "another run's inputs or settings"
                log.warning("removing %s (%s)", path, why)
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()
        self.ctx.barrier()

    def resume(self, backbone, optimizer, scheduler) -> tuple[int, list[dict], float]:
        """Load the newest complete checkpoint into the model, optimizer, scheduler and random states;
        returns (steps done, loss-curve rows, training seconds), (0, [], 0.0) when there is none."""
        found = self.complete()
        if not found:
            return 0, [], 0.0
        step, path = found[-1]
        meta = read_json(path / "meta.json")
        model_state = self._load(path / "model.pt")
        optimizer_state = self._load(path / "optimizer.pt")
        if self.ctx.strategy == "fsdp":
            from torch.distributed.checkpoint.state_dict import (
                StateDictOptions,
                set_model_state_dict,
                set_optimizer_state_dict,
            )

            options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True, strict=False)
            set_model_state_dict(backbone, model_state or {}, options=options)
            set_optimizer_state_dict(backbone, optimizer, optimizer_state or {}, options=options)
        else:
            _load_trainable(distributed.unwrapped(backbone), model_state, path)
            optimizer.load_state_dict(optimizer_state)
        scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=True))
        set_rng_state(torch.load(path / f"rng-rank{self.ctx.rank}.pt", weights_only=True))
        self.resumed_from = step
        log.info("resumed from %s: %d steps done, %d to go", path, step, meta["steps"] - step)
        return step, meta["rows"], float(meta["seconds"])

    def _load(self, path: Path):
        """A state file: every process reads it, except under FSDP, where rank 0 broadcasts."""
        if self.ctx.strategy == "fsdp" and not self.ctx.is_main:
            return None
        return torch.load(path, map_location="cpu", weights_only=True)

    def save(self, done: int, total: int, backbone, optimizer, scheduler, rows: list[dict], seconds: float) -> Path:
        """Write the checkpoint after `done` steps (a collective under FSDP); the previous one goes once
        this one is complete."""
        started = time.time()
        ctx = self.ctx
        name = f"step-{done:08d}"
        tmp = self.root / f".{name}.tmp"
        if ctx.is_main:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        ctx.barrier()
        model_state, optimizer_state = self._states(backbone, optimizer)
        files = [tmp / f"rng-rank{ctx.rank}.pt"]
        torch.save(rng_state(), files[0])
        if ctx.is_main:
            torch.save(model_state, tmp / "model.pt")
            torch.save(optimizer_state, tmp / "optimizer.pt")
            torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
            meta = {
                "step": done,
                "steps": total,
                "key": self.key,
                "world_size": ctx.world_size,
                "seconds": seconds,
                "rows": rows,
            }
            write_json(tmp / "meta.json", meta)
            files += [tmp / n for n in ("model.pt", "optimizer.pt", "scheduler.pt", "meta.json")]
        for path in files:
            _fsync(path)
        ctx.barrier()
        final = self.root / name
        if ctx.is_main:
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            _fsync(self.root)
            for step, path in self.complete():
                if step != done:
                    shutil.rmtree(path, ignore_errors=True)
        ctx.barrier()
        self.written += 1
        self.seconds += time.time() - started
        log.info("checkpoint after step %d of %d: %s (%.2fs)", done, total, final, time.time() - started)
        return final

    def _states(self, backbone, optimizer) -> tuple[dict | None, dict | None]:
        """The trainable weights and the optimizer state to save (None on the other ranks under FSDP)."""
        if self.ctx.strategy == "fsdp":
            from torch.distributed.checkpoint.state_dict import (
                StateDictOptions,
                get_model_state_dict,
                get_optimizer_state_dict,
            )

            options = StateDictOptions(full_state_dict=True, cpu_offload=True, ignore_frozen_params=True)
            model_state = get_model_state_dict(backbone, options=options)
            optimizer_state = get_optimizer_state_dict(backbone, optimizer, options=options)
            return (model_state, optimizer_state) if self.ctx.is_main else (None, None)
        if not self.ctx.is_main:
            return None, None
        module = distributed.unwrapped(backbone)
        state = {name: p.detach().cpu().clone() for name, p in module.named_parameters() if p.requires_grad}
        state.update({f"buffer:{name}": b.detach().cpu().clone() for name, b in module.named_buffers()})
        return state, optimizer.state_dict()

    def clear(self) -> None:
        """Main process, once every output is written: remove this run's checkpoint folder (and the
        parent folders it leaves empty)."""
        if not self.enabled or not self.ctx.is_main or not self.root.exists():
            return
        shutil.rmtree(self.root)
        parent = self.root.parent
        for _ in range(4):  # results/checkpoints/{model}/{variant}/{sampling}/
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def report(self) -> dict | None:
        """The summary's `checkpoints` entry (None when none was written or read)."""
        if not self.written and not self.resumed_from:
            return None
        return {
            "every": self.every,
            "written": self.written,
            "seconds": round(self.seconds, 3),
            "seconds_per_checkpoint": round(self.seconds / self.written, 3) if self.written else None,
            "resumed_from_step": self.resumed_from,
        }


def _load_trainable(module: torch.nn.Module, state: dict, path: Path) -> None:
    """Copy a checkpoint's trainable weights and buffers into `module`; every trainable one must be there."""
    params = dict(module.named_parameters())
    buffers = dict(module.named_buffers())
    missing = [n for n, p in params.items() if p.requires_grad and n not in state]
    unknown = [n for n in state if not (n in params or (n.startswith("buffer:") and n[7:] in buffers))]
    if missing or unknown:
        raise ValueError(
            f"{path}: the checkpoint does not fit the model (missing {missing[:3]}, unknown {unknown[:3]}); "
            "remove the folder to start the run over"
        )
    with torch.no_grad():
        for name, value in state.items():
            target = buffers[name[7:]] if name.startswith("buffer:") else params[name]
            target.copy_(value)
