"""Forward-pass precisions: the one list of what a config may ask for and what it resolves to.

`training.precision` and `models.<name>.encode_precision` take one of `PRECISIONS`;
`resolve_precision` turns `auto` into the precision the device runs (bf16 on a CUDA
device that supports it, else fp32), one of `RESOLVED_PRECISIONS`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

RESOLVED_PRECISIONS = ("fp32", "bf16")
PRECISIONS = (*RESOLVED_PRECISIONS, "auto")


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """fp32 or bf16 for this device: `auto` is bf16 on CUDA devices with bf16 support, else fp32."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision '{precision}' is not one of {', '.join(PRECISIONS)}")
    import torch  # here, so that the CLI's parsers can read PRECISIONS without loading torch

    device = torch.device(device)
    if precision == "auto":
        if device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return "bf16"
        return "fp32"
    return precision
