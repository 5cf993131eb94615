"""Forward-pass precisions: the one list of what a config may ask for and what it resolves to.

`training.precision` and `models.<name>.encode_precision` take one of `PRECISIONS`;
`resolve_precision` turns `auto` into the precision the device runs fast, one of
`RESOLVED_PRECISIONS`: bf16 on a CUDA device that supports it and on a CPU with bf16
matrix instructions (avx512_bf16 or amx_bf16), fp32 elsewhere. Without those instructions
bf16 autocast is emulated and slower than fp32 (5x on an AVX2-only EPYC), so `auto` never
picks it there. The resolved precision is what runs record (train_summary.json, meta.json)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

RESOLVED_PRECISIONS = ("fp32", "bf16")
PRECISIONS = (*RESOLVED_PRECISIONS, "auto")
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@lru_cache(maxsize=1)
def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo; empty elsewhere)."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_has_bf16(flags: frozenset[str] | None = None) -> bool:
    """Whether the CPU has bf16 matrix instructions (avx512_bf16 or amx_bf16)."""
    flags = cpu_flags() if flags is None else flags
    return any(flag in flags for flag in CPU_BF16_FLAGS)


def resolve_precision(precision: str, device: torch.device | str, flags: frozenset[str] | None = None) -> str:
    """fp32 or bf16 for this device (see the module); `flags`: the CPU flags (default: this CPU's)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision '{precision}' is not one of {', '.join(PRECISIONS)}")
    import torch  # here, so that the CLI's parsers can read PRECISIONS without loading torch

    device = torch.device(device)
    if precision == "auto":
        if device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return "bf16"
        if device.type == "cpu" and cpu_has_bf16(flags):
            return "bf16"
        return "fp32"
    return precision
