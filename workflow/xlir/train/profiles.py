"""The layer-wise profiles as a library: xlir's scaling variants on any supported model,
outside the workflow.

A variant (a `VariantSpec`, or its config as a dict: `{"kind": "decay", "gamma": 0.9}`,
`{"kind": "lora", "profile": "linear", "rank": 8, "min_rank": 2}`; see
`xlir.train.variants`) becomes

- `layer_profile(model, variant, lr)`: the model given the variant's structure (bottom
  layers frozen; LoRA adapters with the per-layer ranks) and the torch optimizer parameter
  groups, one per layer and decay / no-decay part (`xlir.train.scaling.build_param_groups`),
  with the peft `LoraConfig` (its `rank_pattern` / `alpha_pattern`) for LoRA variants;
- `lora_config(model, variant)`: that `LoraConfig` alone;
- `learning_rate_mapping(model, variant, lr)`: the per-layer learning rates as the
  `{regex: learning rate}` mapping that sentence-transformers' trainer takes
  (`SentenceTransformerTrainingArguments(learning_rate=lr, learning_rate_mapping=...)`).

The model is a transformers model of a supported family (`xlir.model.architectures`:
BERT / XLM-R, XLM-R XL / XXL, the mT5 encoder), or anything that holds one and keeps its
parameter names as a suffix: a peft wrapper, a `SentenceTransformer` (`0.auto_model.` ...),
a loss module around it. Layer ids as in `xlir.train.scaling`: the input embeddings are
layer 0, block i is layer i + 1, everything above the last block is layer L + 1.

    import torch
    from xlir.train.profiles import layer_profile

    profile = layer_profile(model, {"kind": "decay", "gamma": 0.9}, lr=2e-5, weight_decay=0.01)
    optimizer = torch.optim.AdamW(profile.param_groups)   # train profile.model

    from sentence_transformers import SentenceTransformerTrainingArguments
    from xlir.train.profiles import learning_rate_mapping

    mapping = learning_rate_mapping(st_model, {"kind": "decay", "gamma": 0.9}, lr=2e-5)
    args = SentenceTransformerTrainingArguments("out", learning_rate=2e-5, learning_rate_mapping=mapping)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from xlir.model import architectures
from xlir.train import scaling
from xlir.train.variants import VariantSpec, parse_variant


@dataclass
class LayerProfile:
    """A variant applied to a model: train `model` with an optimizer over `param_groups`."""

    spec: VariantSpec
    #: the model with the variant's structure: the model given, or its peft wrapper (LoRA on a
    #: transformers model); a model with `add_adapter` (a SentenceTransformer) gets the adapters in place
    model: nn.Module
    #: torch optimizer groups: params, param_names, lr, initial_lr, weight_decay, layer, decay
    param_groups: list[dict]
    #: the peft LoraConfig of a LoRA variant (per-block `rank_pattern` / `alpha_pattern`), else None
    lora_config: Any = None

    def learning_rates(self) -> dict[str, float]:
        """Parameter name -> learning rate of every trainable parameter."""
        return {name: group["lr"] for group in self.param_groups for name in group["param_names"]}


def as_variant(variant: VariantSpec | dict) -> VariantSpec:
    """A `VariantSpec` from a spec or a variant config (the name defaults to the kind)."""
    if isinstance(variant, VariantSpec):
        return variant
    if isinstance(variant, dict) and "name" not in variant:
        variant = {"name": str(variant.get("kind")), **variant}
    return parse_variant(variant)


def lora_config(model: nn.Module, variant: VariantSpec | dict):
    """The peft `LoraConfig` of a LoRA variant for `model`: per-block ranks of the profile at the
    uniform-rank budget in `rank_pattern`, alpha = (alpha / rank) * rank in `alpha_pattern`, and
    the family's target modules (`xlir.train.scaling.lora_config`)."""
    spec = as_variant(variant)
    if not spec.is_lora:
        raise ValueError(f"variant {spec.name!r} is of kind {spec.kind!r}, not 'lora'")
    return scaling.lora_config(spec, model)


def layer_profile(
    model: nn.Module,
    variant: VariantSpec | dict,
    lr: float,
    weight_decay: float = 0.01,
    *,
    freeze_word_embeddings: bool = False,
) -> LayerProfile:
    """Give `model` the variant's structure and return it with its optimizer parameter groups.

    Freeze variants freeze their bottom layers; LoRA variants wrap a transformers model with peft
    (`get_peft_model`, as xlir trains) or, on a model with `add_adapter` that is not a transformers
    model (a SentenceTransformer), add the adapter in place; the base weights are then frozen.
    `freeze_word_embeddings` freezes the token embeddings first (xlir's
    `training.freeze_word_embeddings`). Bias and LayerNorm parameters get no weight decay."""
    spec = as_variant(variant)
    config = None
    if spec.is_lora and _adds_adapters_in_place(model):
        ranks = scaling.lora_rank_allocation(spec, model)
        config = scaling.lora_config(spec, model, ranks)
        model.add_adapter(config)
        for name, param in model.named_parameters():
            if not scaling.is_lora_param(name):
                param.requires_grad_(False)  # the base weights, word embeddings included
        if scaling.lora_ranks_of_model(model) != ranks:
            raise RuntimeError(f"add_adapter applied LoRA ranks {scaling.lora_ranks_of_model(model)}, expected {ranks}")
    else:
        model = scaling.prepare_model_for_variant(model, spec, freeze_word_embeddings)
        if spec.is_lora:
            config = model.peft_config["default"]
    groups = scaling.build_param_groups(model, spec, lr, weight_decay)
    return LayerProfile(spec=spec, model=model, param_groups=groups, lora_config=config)


def _adds_adapters_in_place(model: nn.Module) -> bool:
    """A model that takes a LoraConfig in `add_adapter` and is neither a transformers model nor a
    peft wrapper: a SentenceTransformer (its transformer gets the adapters)."""
    from peft import PeftModel
    from transformers import PreTrainedModel

    return callable(getattr(model, "add_adapter", None)) and not isinstance(model, (PreTrainedModel, PeftModel))


def layer_regex(model: nn.Module, layer: int) -> str:
    """A regex that `re.search` finds in the parameter names of layer id `layer` of `model`
    (0: the input embeddings, i + 1: block i, L + 1: everything else)."""
    arch = architectures.for_model(model)
    num_layers = scaling.num_transformer_layers(model)
    if layer == 0:
        return arch.embedding_re.pattern
    if 1 <= layer <= num_layers:
        return arch.block_search_regex(layer - 1)
    if layer == num_layers + 1:
        return arch.above_blocks_search_regex()
    raise ValueError(f"layer id {layer} is not in 0 .. {num_layers + 1}")


def learning_rate_mapping(model: nn.Module, variant: VariantSpec | dict, lr: float) -> dict[str, float]:
    """The variant's per-layer learning rates as sentence-transformers' `learning_rate_mapping`:
    `{regex: learning rate}`, one entry per layer id that has trainable parameters in `model`.

    The trainer `re.search`es each pattern in the loss model's parameter names, in order, and a
    later pattern takes the parameters an earlier one matched: the entries run from layer L + 1
    over the blocks to the embeddings, the precedence of `Architecture.layer_id`. Every pattern
    matches a parameter (the trainer requires it). The mapping sets learning rates only: freeze a
    freeze variant's layers, and add a LoRA variant's adapters (`lora_config`), before training;
    `layer_profile` does both. Weight decay follows the trainer's own rule (no decay on bias and
    LayerNorm weights)."""
    spec = as_variant(variant)
    num_layers = scaling.num_transformer_layers(model)
    arch = architectures.for_model(model)
    present = {
        scaling.layer_id_for_name(name, num_layers, arch)
        for name, param in model.named_parameters()
        if param.requires_grad
    }
    if not present:
        raise ValueError(f"variant {spec.name!r}: the model has no trainable parameters")
    order = [num_layers + 1, *range(1, num_layers + 1), 0]
    return {
        layer_regex(model, layer): scaling.layer_lr(spec, layer, num_layers, lr, model)
        for layer in order
        if layer in present
    }
