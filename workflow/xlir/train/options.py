"""The memory and distribution switches of a training job, checked in one place.

Every switch is a key of the config's `training` section (overridable per model
under `models.<name>.training`). The defaults are config/schema.yaml's (the one place they are
written; read here with `xlir.common.config_files.schema_defaults`):

| key | values | default | effect |
|---|---|---|---|
| `precision` | fp32, bf16, auto | auto | bf16: forward under bf16 autocast (fp32 master weights); auto: bf16 on a CUDA device or CPU with bf16 instructions, fp32 elsewhere (`xlir.model.precision`) |
| `gradient_checkpointing` | bool | false | recompute each block's activations in the backward pass (non-reentrant) |
| `grad_cache_chunk_size` | null or int >= 1 | null | GradCache: embed the batch in sub-batches of this size without a graph, take the loss over the whole batch, then re-encode each sub-batch with its cached gradient |
| `optimizer` | adamw, adamw_fused, adamw_8bit | adamw | torch AdamW; its fused kernel; bitsandbytes' 8-bit AdamW (where installed) |
| `strategy` | ddp, fsdp | ddp | how processes share the model when launched by torchrun / accelerate launch |
| `nproc_per_node` | int >= 1 | 1 | processes (GPUs) per training job; > 1 makes the rule call torchrun |
| `length_bucket_call_tokens` | null or int >= 0 | 100 | plain step: embed each side of the batch in runs of similar token length, cut to minimise padded tokens + this many per forward call (`xlir.train.length_buckets`); null: one padded pass per side |
| `checkpoint_every` | int >= 0 | 100 | steps between resumable checkpoints (`xlir.train.checkpoint`); 0: only on SIGTERM / SIGUSR1 |
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

from xlir.common.config_files import schema_defaults
from xlir.model.precision import PRECISIONS

if TYPE_CHECKING:  # torch is imported where it runs: loading the workflow (common.smk) imports no torch
    import torch

OPTIMIZERS = ("adamw", "adamw_fused", "adamw_8bit")
STRATEGIES = ("ddp", "fsdp")
#: the schema's defaults of the `training` section
_DEFAULT = schema_defaults("training")


@dataclass(frozen=True)
class TrainOptions:
    precision: str = _DEFAULT["precision"]
    gradient_checkpointing: bool = _DEFAULT["gradient_checkpointing"]
    grad_cache_chunk_size: int | None = _DEFAULT["grad_cache_chunk_size"]
    optimizer: str = _DEFAULT["optimizer"]
    strategy: str = _DEFAULT["strategy"]
    nproc_per_node: int = _DEFAULT["nproc_per_node"]
    checkpoint_every: int = _DEFAULT["checkpoint_every"]
    length_bucket_call_tokens: int | None = _DEFAULT["length_bucket_call_tokens"]

    def to_dict(self) -> dict:
        return asdict(self)


OPTION_KEYS = tuple(f.name for f in fields(TrainOptions))


def _bad(key: str, value: Any, expected: str) -> ValueError:
    return ValueError(f"config key training.{key}: {value!r}; expected {expected}")


def parse_options(d: dict | TrainOptions | None) -> TrainOptions:
    """TrainOptions from the `training` config (unrelated keys are ignored)."""
    if isinstance(d, TrainOptions):
        return d
    d = {k: v for k, v in (d or {}).items() if k in OPTION_KEYS}
    opts = TrainOptions(**d)
    if opts.precision not in PRECISIONS:
        raise _bad("precision", opts.precision, f"one of {', '.join(PRECISIONS)}")
    if not isinstance(opts.gradient_checkpointing, bool):
        raise _bad("gradient_checkpointing", opts.gradient_checkpointing, "true or false")
    chunk = opts.grad_cache_chunk_size
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1):
        raise _bad("grad_cache_chunk_size", chunk, "null or an integer >= 1")
    if opts.optimizer not in OPTIMIZERS:
        raise _bad("optimizer", opts.optimizer, f"one of {', '.join(OPTIMIZERS)}")
    if opts.strategy not in STRATEGIES:
        raise _bad("strategy", opts.strategy, f"one of {', '.join(STRATEGIES)}")
    if isinstance(opts.nproc_per_node, bool) or not isinstance(opts.nproc_per_node, int) or opts.nproc_per_node < 1:
        raise _bad("nproc_per_node", opts.nproc_per_node, "an integer >= 1")
    call = opts.length_bucket_call_tokens
    if call is not None and (isinstance(call, bool) or not isinstance(call, int) or call < 0):
        raise _bad("length_bucket_call_tokens", call, "null or an integer >= 0")
    every = opts.checkpoint_every
    if isinstance(every, bool) or not isinstance(every, int) or every < 0:
        raise _bad("checkpoint_every", every, "an integer >= 0 (0: checkpoints only on SIGTERM / SIGUSR1)")
    return opts


def enable_gradient_checkpointing(backbone: torch.nn.Module) -> None:
    """transformers' gradient checkpointing, non-reentrant (works with frozen inputs, DDP and FSDP)."""
    if not getattr(backbone, "supports_gradient_checkpointing", False):
        raise ValueError(
            f"config key training.gradient_checkpointing: {type(backbone).__name__} "
            "does not support gradient checkpointing"
        )
    kwargs = {"use_reentrant": False}
    if hasattr(backbone, "activation_checkpointing_enable"):  # transformers >= 5 (the old name is deprecated)
        backbone.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        backbone.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    if hasattr(backbone, "config"):
        backbone.config.use_cache = False


def make_optimizer(groups: list[dict], name: str, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW over the variant's parameter groups (each group keeps its own lr and weight decay)."""
    import torch

    torch_groups = groups
    if name == "adamw":
        return torch.optim.AdamW(torch_groups, lr=lr, weight_decay=weight_decay)
    if name == "adamw_fused":
        return torch.optim.AdamW(torch_groups, lr=lr, weight_decay=weight_decay, fused=True)
    if name == "adamw_8bit":
        try:
            import bitsandbytes as bnb
        except ImportError as error:
            raise ValueError(
                "config key training.optimizer: 'adamw_8bit' needs the bitsandbytes package, "
                f"which is not importable here ({error}); use 'adamw' or 'adamw_fused'"
            ) from error
        return bnb.optim.AdamW8bit(torch_groups, lr=lr, weight_decay=weight_decay)
    raise _bad("optimizer", name, f"one of {', '.join(OPTIMIZERS)}")
