"""How far fine-tuning moved each weight group of each layer: ||ΔW||_F / ||W||_F, with
ΔW = W_run − W_base over the group's tensors taken together (weights and biases).

Layers follow `xlir.model.architectures` (0: input embeddings, i: transformer block i,
L + 1: above the blocks: final norm, pooler). Groups: `embeddings` (token, position and type
embeddings), `attention` (query/key/value/output projections, T5's relative attention bias),
`ffn` (the feed-forward projections), `layernorm`, `other`; and `all`, the whole layer.
A LoRA run's saved model is merged (xlir.analysis.loading), so its ΔW is the merged update
scaling * B @ A, the same as `train_summary.json`'s `lora_update_norms` (the numerator here)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import torch
from torch import nn

from xlir.common.io import get_logger
from xlir.model import architectures

log = get_logger(__name__)

GROUPS = ("embeddings", "attention", "ffn", "layernorm", "other")
ALL = "all"
_NORM = re.compile(r"layernorm|layer_norm|(?:^|[._])norm(?:$|[._])|(?:^|\.)ln_", re.IGNORECASE)
_ATTENTION = re.compile(r"attention|attn", re.IGNORECASE)
_FFN = re.compile(r"intermediate|(?:^|\.)output\.dense|densereludense|mlp|ffn|fc\d", re.IGNORECASE)
#: elements per chunk when differencing large tensors (the word embeddings): bounded memory
_CHUNK = 1 << 22


@dataclass(frozen=True)
class UpdateSize:
    layer: int
    group: str
    rel_update: float
    delta_norm: float
    base_norm: float
    n_params: int


def weight_group(name: str, layer: int) -> str:
    """The group of a parameter name (see the module docstring)."""
    if _NORM.search(name):
        return "layernorm"
    if layer == 0:
        return "embeddings"
    if _ATTENTION.search(name):
        return "attention"
    if _FFN.search(name):
        return "ffn"
    return "other"


def _squares(run: torch.Tensor, base: torch.Tensor) -> tuple[float, float]:
    """(sum of (run − base)^2, sum of base^2) in float64, chunked."""
    run, base = run.detach().reshape(-1), base.detach().reshape(-1)
    delta = weight = 0.0
    for start in range(0, base.numel(), _CHUNK):
        b = base[start : start + _CHUNK].double()
        delta += float((run[start : start + _CHUNK].double() - b).pow(2).sum())
        weight += float(b.pow(2).sum())
    return delta, weight


def num_layers_of(model: nn.Module) -> int:
    for module in model.modules():
        config = getattr(module, "config", None)
        for key in ("num_hidden_layers", "num_layers"):
            if isinstance(getattr(config, key, None), int):
                return getattr(config, key)
    raise ValueError(f"{type(model).__name__}: no num_hidden_layers / num_layers in its config")


def update_sizes(run: nn.Module, base: nn.Module) -> list[UpdateSize]:
    """||ΔW||_F / ||W_base||_F per (layer, group), plus each layer's `all` row; sorted by layer."""
    arch = architectures.for_model(base)
    num_layers = num_layers_of(base)
    run_params = dict(run.named_parameters())
    sums: dict[tuple[int, str], list[float]] = {}
    skipped = []
    for name, base_param in base.named_parameters():
        run_param = run_params.get(name)
        if run_param is None or run_param.shape != base_param.shape:
            skipped.append(name)
            continue
        layer = arch.layer_id(name, num_layers)
        delta, weight = _squares(run_param, base_param)
        for key in ((layer, weight_group(name, layer)), (layer, ALL)):
            entry = sums.setdefault(key, [0.0, 0.0, 0])
            entry[0] += delta
            entry[1] += weight
            entry[2] += base_param.numel()
    if skipped:
        log.warning(
            "%d base parameters have no same-shaped counterpart in the run's model and are left out: %s",
            len(skipped),
            ", ".join(skipped[:5]) + (", ..." if len(skipped) > 5 else ""),
        )
    order = {group: i for i, group in enumerate((*GROUPS, ALL))}
    rows = []
    for (layer, group), (delta, weight, count) in sorted(sums.items(), key=lambda kv: (kv[0][0], order[kv[0][1]])):
        rel = delta**0.5 / weight**0.5 if weight > 0 else float("nan")
        rows.append(UpdateSize(layer, group, rel, delta**0.5, weight**0.5, int(count)))
    return rows


def as_rows(sizes: list[UpdateSize]) -> list[dict]:
    return [asdict(s) for s in sizes]
