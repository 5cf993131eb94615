"""Data-parallel training through torch.distributed: DDP or FSDP (FSDP2, `fully_shard`).

`xlir train` runs as one process unless it was launched by `torchrun` or
`accelerate launch`, which set WORLD_SIZE / RANK / LOCAL_RANK: then every
process takes its contiguous slice of each global batch of the plan, and the
query and passage embeddings of all processes are gathered so that every
process computes the loss over the *global* batch (all in-batch negatives).

Gathering keeps the gradients with the local-slice trick: the embeddings of
the other processes arrive without a graph, the local ones are put back in
their place with theirs, and each process back-propagates `world_size * loss`.
The gradient a process then holds is its own contribution to the gradient of
the global loss; DDP and FSDP average over processes, so the sum of the
contributions, the single-process gradient on the same global batch, is what
every process applies.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from xlir.common.io import get_logger
from xlir.model import architectures

log = get_logger(__name__)


@dataclass(frozen=True)
class DistContext:
    """Where this process sits: world size, rank, local rank and the torch device it uses."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0
    device: str = "cpu"
    strategy: str = "single"

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def gather(self, local: torch.Tensor) -> torch.Tensor:
        """Concatenate every process's rows in rank order; only the local rows carry a graph."""
        if not self.enabled:
            return local
        parts = [torch.empty_like(local) for _ in range(self.world_size)]
        dist.all_gather(parts, local.detach().contiguous())
        parts[self.rank] = local
        return torch.cat(parts)

    def loss_scale(self) -> float:
        """Factor on the global loss before backward (DDP / FSDP average the gradients)."""
        return float(self.world_size)

    def shard(self, items: list, what: str = "batch") -> list:
        """This process's contiguous slice of a global batch."""
        if not self.enabled:
            return items
        if len(items) % self.world_size:
            raise ValueError(
                f"config key training.batch_size: a {what} of {len(items)} items does not split "
                f"evenly over {self.world_size} processes (training.nproc_per_node)"
            )
        size = len(items) // self.world_size
        return items[self.rank * size : (self.rank + 1) * size]

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def all_reduce_max(self, value: float) -> float:
        if not self.enabled:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return float(t.item())


def launched_world_size() -> int:
    """WORLD_SIZE set by torchrun / accelerate launch (1 when run directly)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError as error:
        raise ValueError(f"environment variable WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not an integer") from error


def init(device: str, strategy: str) -> DistContext:
    """Join the process group when launched by torchrun (nccl on CUDA, gloo on CPU)."""
    world_size = launched_world_size()
    if world_size <= 1:
        return DistContext(device=device)
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    if torch.device(device).type == "cuda":
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
        backend = "nccl"
    else:
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    if rank != 0:
        logging.getLogger("xlir").setLevel(logging.WARNING)
    log.info(
        "process %d of %d (local rank %d) on %s, backend %s, strategy %s",
        rank,
        world_size,
        local_rank,
        device,
        backend,
        strategy,
    )
    return DistContext(world_size=world_size, rank=rank, local_rank=local_rank, device=device, strategy=strategy)


def shutdown(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def wrap(backbone: nn.Module, ctx: DistContext, precision: str = "fp32") -> nn.Module:
    """DDP or FSDP2 around the backbone (already on its device); the backbone itself when single."""
    if not ctx.enabled:
        return backbone
    if ctx.strategy == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [ctx.local_rank] if torch.device(ctx.device).type == "cuda" else None
        return DistributedDataParallel(backbone, device_ids=device_ids)
    if ctx.strategy == "fsdp":
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        mp = (
            MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
            if precision == "bf16"
            else MixedPrecisionPolicy()
        )
        arch = architectures.for_model(backbone)
        for block in arch.blocks(backbone):
            fully_shard(block, mp_policy=mp)
        fully_shard(backbone, mp_policy=mp)
        return backbone
    raise ValueError(f"config key training.strategy: {ctx.strategy!r}; expected ddp or fsdp")


def sync_context(model: nn.Module, ctx: DistContext, last: bool):
    """Gradient synchronisation for one of several backward passes of a step (GradCache).

    DDP: skip the all-reduce (accumulate locally) except in the last pass.
    FSDP: reduce-scatter in every pass, so the gradients stay sharded."""
    if ctx.enabled and ctx.strategy == "ddp" and not last:
        return model.no_sync()
    return contextlib.nullcontext()


def unwrapped(model: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (FSDP2 shards in place)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def full_state_dict(model: nn.Module, ctx: DistContext) -> dict[str, torch.Tensor] | None:
    """The full (unsharded) state dict on CPU in the main process, None elsewhere.

    Under FSDP this is a collective: every process must call it."""
    model = unwrapped(model)
    if ctx.enabled and ctx.strategy == "fsdp":
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        return state if ctx.is_main else None
    if not ctx.is_main:
        return None
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}
