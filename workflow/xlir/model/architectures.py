"""Backbone families: how to load each one, and how its parameter names map to layer ids.

The scaling profiles (`xlir.train.scaling`) see a model as a stack of layers:
layer 0 holds the input embeddings, transformer block i is layer i + 1, and
everything above the last block (pooler, final LayerNorm, projection heads)
is layer L + 1. Each family says where its blocks live in the parameter names:

| family | model types | blocks | layer 0 | layer L + 1 |
|---|---|---|---|---|
| `bert` | bert (LaBSE, e5), xlm-roberta, roberta, ... | `encoder.layer.i.` | `embeddings.*` | `pooler.*` |
| `xlm-roberta-xl` | xlm-roberta-xl (XL 3.5B, XXL 10.7B) | `encoder.layer.i.` | `embeddings.*` | `encoder.LayerNorm` (pre-LN final norm), `pooler.*` |
| `t5-encoder` | t5, mt5, umt5 (encoder stack only) | `encoder.block.i.` | `shared`, `embed_tokens` | `encoder.final_layer_norm` |

A T5 block holds sub-layers named `block.i.layer.0` (attention) and
`block.i.layer.1` (feed-forward), so the BERT regex `layer\\.(\\d+)\\.` would
put every T5 parameter in layer 1 or 2: that is why the mapping belongs to the
family. Prefixes added by wrappers (peft's `base_model.model.`, DDP's
`module.`, a dual encoder's `backbone.`) do not matter: the regexes search.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from xlir.common.io import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class Architecture:
    """One backbone family; see the module docstring for the table."""

    family: str
    model_types: tuple[str, ...]
    #: group 1 is the 0-based block index
    block_re: re.Pattern
    #: layer-0 (input embedding) parameter names
    embedding_re: re.Pattern
    #: token embedding matrices (`training.freeze_word_embeddings`)
    word_embedding_re: re.Pattern
    #: peft `target_modules` (re.fullmatch on module names): the linear layers inside blocks
    lora_target_regex: str
    #: peft rank_pattern / alpha_pattern key selecting block {i}
    block_key: str
    #: attribute path of the nn.ModuleList of blocks (FSDP wraps each block)
    blocks_path: str
    #: tokenizer outputs the backbone's forward takes
    input_names: tuple[str, ...]

    def layer_id(self, name: str, num_layers: int) -> int:
        """Layer id of a parameter or module name: embeddings 0, block i -> i + 1, else L + 1."""
        if self.embedding_re.search(name):
            return 0
        match = self.block_re.search(name)
        if match:
            block = int(match.group(1))
            if block >= num_layers:
                raise ValueError(
                    f"parameter {name!r} belongs to block {block}, but the model has "
                    f"only {num_layers} transformer layers (config.num_hidden_layers)"
                )
            return block + 1
        return num_layers + 1

    def block_index(self, name: str) -> int | None:
        match = self.block_re.search(name)
        return int(match.group(1)) if match else None

    def block_pattern(self, block: int) -> str:
        return self.block_key.format(i=block)

    def block_search_regex(self, block: int) -> str:
        """A regex that `re.search` finds in the parameter names of block `block` (0-based) only."""
        return self.block_re.pattern.replace(r"(\d+)", str(block), 1)

    def above_blocks_search_regex(self) -> str:
        """A regex that `re.search` finds in the names of layer L + 1 only: neither the input
        embeddings nor a block (the pooler, a final LayerNorm, heads)."""
        any_block = self.block_re.pattern.replace(r"(\d+)", r"\d+", 1)
        return rf"^(?!.*(?:{self.embedding_re.pattern}|{any_block}))"

    def blocks(self, model: nn.Module) -> nn.ModuleList:
        """The transformer blocks of `model` (a backbone, possibly wrapped by peft or DDP)."""
        for name, module in model.named_modules():
            if isinstance(module, nn.ModuleList) and (
                name == self.blocks_path or name.endswith("." + self.blocks_path)
            ):
                return module
        raise ValueError(f"{type(model).__name__} ({self.family}) has no block list at {self.blocks_path!r}")


_BERT_BLOCK = re.compile(r"(?:^|\.)layer\.(\d+)\.")
_BERT_LORA = r"(?:.*\.)?layer\.\d+\.(?:.*\.)?(?:query|key|value|dense)"

BERT = Architecture(
    family="bert",
    model_types=("bert", "xlm-roberta", "roberta", "camembert", "electra"),
    block_re=_BERT_BLOCK,
    embedding_re=re.compile(r"embeddings"),
    word_embedding_re=re.compile(r"word_embeddings"),
    lora_target_regex=_BERT_LORA,
    block_key=r"layer\.{i}\..*",
    blocks_path="encoder.layer",
    input_names=("input_ids", "attention_mask", "token_type_ids"),
)

# XLM-R XL/XXL keep BERT's parameter names (their final encoder.LayerNorm is
# mapped to layer L+1 by the shared block logic); only the family differs.
XLMR_XL = dataclasses.replace(BERT, family="xlm-roberta-xl", model_types=("xlm-roberta-xl",))

T5_ENCODER = Architecture(
    family="t5-encoder",
    model_types=("t5", "mt5", "umt5"),
    block_re=re.compile(r"(?:^|\.)block\.(\d+)\."),
    embedding_re=re.compile(r"(?:^|\.)(?:shared|embed_tokens)\."),
    word_embedding_re=re.compile(r"(?:^|\.)(?:shared|embed_tokens)\."),
    lora_target_regex=(
        r"(?:.*\.)?block\.\d+\.layer\.\d+\."
        r"(?:SelfAttention\.(?:q|k|v|o)|DenseReluDense\.(?:wi|wi_0|wi_1|wo))"
    ),
    block_key=r"block\.{i}\..*",
    blocks_path="encoder.block",
    input_names=("input_ids", "attention_mask"),
)

FAMILIES: dict[str, Architecture] = {a.family: a for a in (BERT, XLMR_XL, T5_ENCODER)}
_BY_MODEL_TYPE = {t: a for a in FAMILIES.values() for t in a.model_types}


def for_model_type(model_type: str | None) -> Architecture:
    """The family of a transformers `config.model_type`; unknown types use the BERT naming."""
    arch = _BY_MODEL_TYPE.get(model_type or "")
    if arch is None:
        log.warning(
            "model type %r is not one of %s: using the BERT layer naming (encoder.layer.i)",
            model_type,
            ", ".join(sorted(_BY_MODEL_TYPE)),
        )
        return BERT
    return arch


def model_type_of(model: nn.Module) -> str | None:
    for module in model.modules():
        model_type = getattr(getattr(module, "config", None), "model_type", None)
        if isinstance(model_type, str):
            return model_type
    return None


def for_model(model: nn.Module) -> Architecture:
    """The family of a (possibly wrapped) transformers model."""
    return for_model_type(model_type_of(model))


def load_backbone(model_dir: str | Path, dtype=None) -> nn.Module:
    """The encoder of a transformers folder: AutoModel without a pooler head where the
    architecture has one (unused by mean pooling), and only the encoder stack of T5 models."""
    import transformers
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(str(model_dir))
    extra = {"dtype": dtype} if dtype is not None else {}
    if for_model_type(config.model_type) is T5_ENCODER:
        cls = {
            "t5": transformers.T5EncoderModel,
            "mt5": transformers.MT5EncoderModel,
            "umt5": transformers.UMT5EncoderModel,
        }[config.model_type]
        return cls.from_pretrained(str(model_dir), **extra)
    try:
        return AutoModel.from_pretrained(str(model_dir), add_pooling_layer=False, **extra)
    except TypeError:
        return AutoModel.from_pretrained(str(model_dir), **extra)
