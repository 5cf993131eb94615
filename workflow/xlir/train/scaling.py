"""Scaling variants: per-layer learning-rate and trainable-parameter profiles.

A scaling variant is a named per-layer profile applied when the optimizer is
built. Layer ids: the embeddings are layer 0, transformer block i is layer
i + 1 and everything above the last block (pooler, final LayerNorm,
projection heads, ...) is layer L + 1, where L is the number of blocks. Where
the blocks sit in the parameter names depends on the backbone family
(`xlir.model.architectures`: `encoder.layer.i.` for BERT / XLM-R / XLM-R XL,
`encoder.block.i.` for the mT5 encoder); the family is read off the model's
`config.model_type`. The ids come from regex searches, so prefixes added by
wrappers (peft's `base_model.model.`, a dual encoder's `encoder.`) do not matter.

Variants (`kind`):
- `uniform`: every layer gets the base learning rate (the baseline).
- `decay` (gamma): lr_l = lr * gamma ** (L + 1 - l) (ELECTRA / BEiT layer-wise
  learning-rate decay); `grow` (gamma) is its mirror: lr_l = lr * gamma ** l. With
  `depth: relative` the exponent is scaled by (R + 1) / (L + 1) (R = `reference_layers`,
  12): the same multiplier at the same fraction of the stack for every depth.
- `freeze` (k): layers 0 .. k-1 are frozen, the others train at the base lr.
- `lora` (profile, rank, ...): peft LoRA on the query/key/value and dense
  projections of the transformer blocks, base weights frozen. `uniform` uses
  `rank` in every block; `linear` and `exp` vary the rank with depth (from
  `min_rank`, `increasing` or `decreasing`) while matching the uniform-rank
  total number of trainable parameters as closely as integer ranks allow.

Bias and LayerNorm parameters get no weight decay (ELECTRA's rule).
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import torch
from torch import nn

from xlir.common.io import get_logger, write_tsv
from xlir.model import architectures
from xlir.model.architectures import Architecture
from xlir.train.variants import VariantSpec, is_int, parse_variant

log = get_logger(__name__)

#: block index of a BERT-style parameter or module name, wherever the block list sits
LAYER_RE = architectures.BERT.block_re
#: modules that get LoRA adapters in BERT-style models (peft `target_modules`, matched
#: with re.fullmatch): query/key/value and every dense projection *inside a transformer
#: block* (attention output, intermediate, output), never the pooler's dense layer.
#: Other families define their own (`Architecture.lora_target_regex`).
LORA_TARGET_REGEX = architectures.BERT.lora_target_regex
#: ELECTRA's no-decay rule
_NO_DECAY_RE = re.compile(r"(?:^|\.)bias$|layer_?norm", re.IGNORECASE)
# --------------------------------------------------------------------------- layers


def layer_id_for_name(name: str, num_layers: int, arch: Architecture | None = None) -> int:
    """Layer id of a parameter (or module) name: embeddings 0, block i -> i + 1, else L + 1.

    `arch` is the backbone family (default: BERT naming, `encoder.layer.i.`)."""
    return (arch or architectures.BERT).layer_id(name, num_layers)


def num_transformer_layers(model: nn.Module) -> int:
    """`config.num_hidden_layers` of the model, of a peft wrapper's base model or of a submodule."""
    config = getattr(model, "config", None)
    layers = getattr(config, "num_hidden_layers", None)
    if isinstance(layers, int):
        return layers
    for module in model.modules():
        layers = getattr(getattr(module, "config", None), "num_hidden_layers", None)
        if isinstance(layers, int):
            return layers
    raise ValueError(f"{type(model).__name__} has no config.num_hidden_layers")


def is_no_decay(name: str) -> bool:
    """Bias and LayerNorm parameters get no weight decay."""
    return bool(_NO_DECAY_RE.search(name))


def is_lora_param(name: str) -> bool:
    return ".lora_" in name or name.startswith("lora_")


# --------------------------------------------------------------------------- LoRA


def _lora_target_modules(model: nn.Module) -> list[tuple[str, int, int, int]]:
    """(name, block, in_features, out_features) of every LoRA target module of `model`.

    Works on a plain model and on a peft-wrapped one (the LoRA layer carries
    in_features / out_features; its `base_layer` child is skipped)."""
    arch = architectures.for_model(model)
    target_re = re.compile(arch.lora_target_regex)
    targets = []
    for name, module in model.named_modules():
        if name.endswith(".base_layer") or not target_re.fullmatch(name):
            continue
        in_features = getattr(module, "in_features", None)
        out_features = getattr(module, "out_features", None)
        if not (is_int(in_features) and is_int(out_features)):
            raise ValueError(f"LoRA target {name!r} ({type(module).__name__}) is not a linear layer")
        targets.append((name, arch.block_index(name), in_features, out_features))
    if not targets:
        raise ValueError(
            f"{type(model).__name__} ({arch.family}) has no LoRA target modules matching {arch.lora_target_regex!r}"
        )
    return targets


def lora_rank_costs(model: nn.Module) -> dict[int, int]:
    """Block index -> trainable LoRA parameters per unit of rank (sum of in + out features)."""
    costs: dict[int, int] = defaultdict(int)
    for _, block, in_features, out_features in _lora_target_modules(model):
        costs[block] += in_features + out_features
    num_layers = num_transformer_layers(model)
    missing = [i for i in range(num_layers) if i not in costs]
    if missing:
        raise ValueError(f"no LoRA target modules in transformer block(s) {missing}")
    return dict(sorted(costs.items()))


def _target_ranks(spec: VariantSpec, costs: list[int]) -> list[float]:
    """Real-valued ranks of the profile whose parameter count equals the uniform-rank budget."""
    n = len(costs)
    budget = spec.rank * sum(costs)
    if spec.profile == "uniform" or n == 1:
        return [float(spec.rank)] * n
    positions = [i / (n - 1) for i in range(n)]
    if spec.direction == "decreasing":
        positions = positions[::-1]
    low = float(spec.min_rank)
    if spec.profile == "linear":
        slope = (budget - low * sum(costs)) / sum(c * t for c, t in zip(costs, positions))
        return [low + slope * t for t in positions]

    # exp: r(t) = min_rank * q ** t with q > 1 chosen by bisection to hit the budget
    def total(q: float) -> float:
        return sum(c * low * q**t for c, t in zip(costs, positions))

    lo, hi = 1.0, 2.0
    while total(hi) < budget:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        lo, hi = (mid, hi) if total(mid) < budget else (lo, mid)
    q = (lo + hi) / 2.0
    return [low * q**t for t in positions]


def _round_to_budget(targets: list[float], costs: list[int], budget: int) -> list[int]:
    """Round the target ranks, then move single ranks by +-1 while that shrinks |budget - total|."""
    ranks = [max(1, round(t)) for t in targets]
    while True:
        diff = budget - sum(c * r for c, r in zip(costs, ranks))
        if diff == 0:
            break
        step = 1 if diff > 0 else -1
        best = None
        for i, (cost, rank) in enumerate(zip(costs, ranks)):
            if rank + step < 1:
                continue
            gap = abs(diff - step * cost)
            # tie-break: the layer whose rounding moved it furthest from its target
            key = (gap, -step * (targets[i] - rank))
            if best is None or key < best[0]:
                best = (key, i)
        if best is None or best[0][0] >= abs(diff):
            break
        ranks[best[1]] += step
    return ranks


def lora_budget(spec: VariantSpec, model: nn.Module) -> dict:
    """Rank allocation with its budget: {ranks, target_ranks, budget, achieved, rel_diff, costs}."""
    if not spec.is_lora:
        raise ValueError(f"variant {spec.name!r} is of kind {spec.kind!r}, not 'lora'")
    per_block = lora_rank_costs(model)
    blocks = list(per_block)
    costs = [per_block[b] for b in blocks]
    budget = spec.rank * sum(costs)
    targets = _target_ranks(spec, costs)
    ranks = _round_to_budget(targets, costs, budget)
    achieved = sum(c * r for c, r in zip(costs, ranks))
    return {
        "ranks": dict(zip(blocks, ranks)),
        "target_ranks": dict(zip(blocks, targets)),
        "budget": budget,
        "achieved": achieved,
        "rel_diff": (achieved - budget) / budget,
        "costs": dict(zip(blocks, costs)),
    }


def lora_rank_allocation(spec: VariantSpec, model: nn.Module) -> dict[int, int]:
    """Block index (0-based, `layer.i`) -> LoRA rank; the total matches the uniform-rank budget."""
    info = lora_budget(spec, model)
    log.info(
        "variant %s: LoRA ranks %s; %d trainable LoRA parameters vs %d for uniform rank %d "
        "(relative difference %+.4f%%)",
        spec.name,
        list(info["ranks"].values()),
        info["achieved"],
        info["budget"],
        spec.rank,
        100 * info["rel_diff"],
    )
    return info["ranks"]


def lora_config(spec: VariantSpec, model: nn.Module, ranks: dict[int, int] | None = None):
    """The peft `LoraConfig` of a LoRA variant for `model`: rank `spec.rank` and alpha `spec.alpha`
    by default, the per-block ranks of the profile in `rank_pattern`, and per block alpha by
    `spec.alpha_mode`: proportional (default) alpha_l = (alpha / rank) * r_l, the same scaling
    alpha_l / r_l in every block (a larger rank then takes larger steps, ||dW|| ~ sqrt(r));
    fixed alpha_l = alpha (scaling alpha / r_l); rslora alpha_l = alpha with peft's
    `use_rslora` (scaling alpha / sqrt(r_l), rank-stabilised). The family's target modules
    (`Architecture.lora_target_regex`).

    peft matches `rank_pattern` / `alpha_pattern` keys as regexes against a suffix of the module
    name (`(.*\\.)?(key)$`), so the key `layer\\.3\\..*` (`block\\.3\\..*` for T5) selects block 3
    under any prefix. `ranks` (block index -> rank) defaults to `lora_rank_allocation(spec, model)`."""
    from peft import LoraConfig

    arch = architectures.for_model(model)
    ranks = ranks or lora_rank_allocation(spec, model)
    mode = spec.alpha_mode or "proportional"
    if mode == "proportional":
        alphas = {block: spec.alpha / spec.rank * rank for block, rank in ranks.items()}
    else:  # fixed: alpha / r_l falls with rank; rslora: alpha / sqrt(r_l) (peft use_rslora)
        alphas = {block: spec.alpha for block in ranks}
    return LoraConfig(
        r=spec.rank,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        bias="none",
        target_modules=arch.lora_target_regex,
        use_rslora=mode == "rslora",
        rank_pattern={arch.block_pattern(block): rank for block, rank in ranks.items()},
        alpha_pattern={arch.block_pattern(block): alpha for block, alpha in alphas.items()},
    )


def lora_update_norms(model: nn.Module) -> dict[int, float]:
    """Block index -> Frobenius norm of the block's LoRA update, sqrt(sum over its adapted
    matrices of ||scaling * B @ A||_F^2): the step a rank profile took at each depth, to tell
    its effect on capacity from its effect on step size."""
    arch = architectures.for_model(model)
    squares: dict[int, float] = defaultdict(float)
    for name, module in model.named_modules():
        lora_a, lora_b = getattr(module, "lora_A", None), getattr(module, "lora_B", None)
        if not isinstance(lora_a, nn.ModuleDict) or not lora_a:
            continue
        block = arch.block_index(name + ".lora_A.x")
        if block is None:
            continue
        for adapter, a in lora_a.items():
            delta = lora_b[adapter].weight.detach().float() @ a.weight.detach().float()
            squares[block] += float((module.scaling[adapter] * delta).pow(2).sum())
    return {block: round(value**0.5, 6) for block, value in sorted(squares.items())}


def apply_lora(model: nn.Module, spec: VariantSpec) -> nn.Module:
    """Wrap `model` with peft LoRA adapters using the variant's per-block ranks (`lora_config`).

    The base weights are frozen. `model` is modified in place (adapters are injected); use
    `merge_and_unload` to get a plain model back for saving."""
    from peft import get_peft_model

    ranks = lora_rank_allocation(spec, model)
    peft_model = get_peft_model(model, lora_config(spec, model, ranks))
    for name, param in peft_model.named_parameters():
        if not is_lora_param(name):
            param.requires_grad_(False)
    _check_lora_ranks(peft_model, ranks)
    return peft_model


def lora_ranks_of_model(model: nn.Module) -> dict[int, int | str]:
    """Block index -> rank of the LoRA adapters found in a peft-wrapped model ('mixed' if they differ)."""
    arch = architectures.for_model(model)
    found: dict[int, set[int]] = defaultdict(set)
    for name, param in model.named_parameters():
        if ".lora_A." in name:
            block = arch.block_index(name)
            if block is not None:
                found[block].add(int(param.shape[0]))
    return {block: (next(iter(r)) if len(r) == 1 else "mixed") for block, r in sorted(found.items())}


def _check_lora_ranks(model: nn.Module, expected: dict[int, int]) -> None:
    actual = lora_ranks_of_model(model)
    if actual != expected:
        raise RuntimeError(f"peft applied LoRA ranks {actual}, expected {expected}")


def merge_and_unload(model: nn.Module) -> nn.Module:
    """The plain model with LoRA weights merged in (the model itself when it is not peft-wrapped)."""
    merge = getattr(model, "merge_and_unload", None)
    return merge() if callable(merge) else model


# --------------------------------------------------------------------------- freezing


def freeze_word_embeddings(model: nn.Module) -> int:
    """Freeze the token embedding matrix (`word_embeddings`, T5's `shared`); return how many
    elements were frozen."""
    word_re = architectures.for_model(model).word_embedding_re
    frozen = 0
    for name, param in model.named_parameters():
        if word_re.search(name) and param.requires_grad:
            param.requires_grad_(False)
            frozen += param.numel()
    return frozen


_freeze_words = freeze_word_embeddings  # the name is shadowed by the option below


def prepare_model_for_variant(model: nn.Module, spec: VariantSpec, freeze_word_embeddings: bool) -> nn.Module:
    """Apply the variant's structural part: LoRA wrapping or freezing of the bottom k layers.

    `freeze_word_embeddings` (the global training option) freezes the word
    embeddings identically for every variant. Returns the (possibly wrapped) model."""
    num_layers = num_transformer_layers(model)
    arch = architectures.for_model(model)
    if freeze_word_embeddings:
        _freeze_words(model)
    if spec.is_lora:
        model = apply_lora(model, spec)
    elif spec.kind == "freeze":
        if spec.k > num_layers + 1:
            raise ValueError(
                f"variant {spec.name!r}: key 'k' is {spec.k}; expected at most "
                f"{num_layers + 1} (layers are 0 .. {num_layers + 1})"
            )
        for name, param in model.named_parameters():
            if layer_id_for_name(name, num_layers, arch) < spec.k:
                param.requires_grad_(False)
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError(f"variant {spec.name!r} leaves no trainable parameters")
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    log.info("variant %s: %d of %d parameters trainable (%.2f%%)", spec.name, trainable, total, 100 * trainable / total)
    return model


# --------------------------------------------------------------------------- optimizer groups


def layer_lr(spec: VariantSpec, layer: int, num_layers: int, base_lr: float, model: nn.Module | None = None) -> float:
    """The learning rate of layer id `layer`. A mean-lr-matched uniform control (`matched`) trains
    every layer at the parameter-weighted mean multiplier of its decay / grow variant on `model`."""
    if spec.matched:
        if model is None:
            raise ValueError(f"variant {spec.name!r}: a mean-lr-matched control needs the model to weight layers")
        return base_lr * mean_lr_multiplier(model, parse_variant(spec.matched))
    return base_lr * spec.lr_scale(layer, num_layers)


def mean_lr_multiplier(model: nn.Module, spec: VariantSpec) -> float:
    """The parameter-weighted mean of `spec`'s lr multipliers over the model's trainable
    parameters (1.0 for uniform): the overall learning rate a layer-wise profile amounts to.
    Call after `prepare_model_for_variant` (frozen parameters do not count)."""
    num_layers = num_transformer_layers(model)
    arch = architectures.for_model(model)
    weights: dict[int, int] = defaultdict(int)
    for name, param in model.named_parameters():
        if param.requires_grad:
            weights[layer_id_for_name(name, num_layers, arch)] += param.numel()
    total = sum(weights.values())
    if not total:
        raise ValueError(f"variant {spec.name!r}: the model has no trainable parameters")
    return sum(n * spec.lr_scale(layer, num_layers) for layer, n in weights.items()) / total


def build_param_groups(model: nn.Module, spec: VariantSpec, base_lr: float, weight_decay: float) -> list[dict]:
    """AdamW parameter groups, one per (layer, decay / no-decay), trainable parameters only.

    Each group has `params`, `param_names`, `lr`, `initial_lr`, `weight_decay`,
    `layer` and `decay` (bool). Call `prepare_model_for_variant` first."""
    num_layers = num_transformer_layers(model)
    arch = architectures.for_model(model)
    buckets: dict[tuple[int, bool], list[tuple[str, torch.Tensor]]] = defaultdict(list)
    has_lora = False
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        layer = layer_id_for_name(name, num_layers, arch)
        if spec.kind == "freeze" and layer < spec.k:
            raise ValueError(
                f"variant {spec.name!r}: {name} (layer {layer}) should be frozen; call prepare_model_for_variant first"
            )
        if spec.is_lora:
            if not is_lora_param(name):
                raise ValueError(
                    f"variant {spec.name!r}: base parameter {name} is trainable; "
                    "call prepare_model_for_variant (apply_lora) first"
                )
            has_lora = True
        buckets[(layer, not is_no_decay(name))].append((name, param))
    if not buckets:
        raise ValueError(f"variant {spec.name!r}: the model has no trainable parameters")
    if spec.is_lora and not has_lora:
        raise ValueError(f"variant {spec.name!r}: the model has no LoRA parameters; call apply_lora first")
    groups = []
    for (layer, decay), named in sorted(buckets.items(), key=lambda item: (item[0][0], not item[0][1])):
        lr = layer_lr(spec, layer, num_layers, base_lr, model)
        groups.append(
            {
                "params": [p for _, p in named],
                "param_names": [n for n, _ in named],
                "lr": lr,
                "initial_lr": lr,
                "weight_decay": float(weight_decay) if decay else 0.0,
                "layer": layer,
                "decay": decay,
            }
        )
    return groups


def param_group_table(
    model: nn.Module, spec: VariantSpec, base_lr: float, weight_decay: float, lora_ranks: dict[int, int] | None = None
) -> list[dict]:
    """One row per layer id: layer, parameters, trainable, lr, weight_decay, lora_rank.

    `lr` is the learning rate of the layer's trainable parameters (0 when the
    layer is frozen); `weight_decay` reads "decay/no-decay" ("0.01/0"), with "-"
    for a part without trainable parameters. `lora_ranks` is block index ->
    rank (as from `lora_rank_allocation`); by default it is read off the model."""
    num_layers = num_transformer_layers(model)
    arch = architectures.for_model(model)
    total: dict[int, int] = defaultdict(int)
    trainable: dict[int, int] = defaultdict(int)
    parts: dict[int, set[bool]] = defaultdict(set)
    for name, param in model.named_parameters():
        layer = layer_id_for_name(name, num_layers, arch)
        total[layer] += param.numel()
        if param.requires_grad:
            trainable[layer] += param.numel()
            parts[layer].add(not is_no_decay(name))
    if lora_ranks is None and spec.is_lora:
        lora_ranks = lora_ranks_of_model(model)
    rows = []
    for layer in range(num_layers + 2):
        if layer == num_layers + 1 and layer not in total:
            continue  # no pooler / head above the last block
        if parts[layer]:
            decay_part = f"{weight_decay:g}" if True in parts[layer] else "-"
            no_decay_part = "0" if False in parts[layer] else "-"
            wd = f"{decay_part}/{no_decay_part}"
        else:
            wd = "-"
        rank = ""
        if lora_ranks and 1 <= layer <= num_layers and (layer - 1) in lora_ranks:
            rank = lora_ranks[layer - 1]
        rows.append(
            {
                "layer": layer,
                "parameters": total[layer],
                "trainable": trainable[layer],
                "lr": layer_lr(spec, layer, num_layers, base_lr, model) if trainable[layer] else 0.0,
                "weight_decay": wd,
                "lora_rank": rank,
            }
        )
    return rows


PARAM_GROUP_COLUMNS = ["layer", "parameters", "trainable", "lr", "weight_decay", "lora_rank"]


def write_param_group_table(rows: list[dict], path: str | Path) -> None:
    """Write the table as TSV (columns layer, parameters, trainable, lr, weight_decay, lora_rank)."""
    formatted = [{**row, "lr": f"{float(row['lr']):.6g}"} for row in rows]
    write_tsv(path, formatted, PARAM_GROUP_COLUMNS)
