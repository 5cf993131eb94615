"""The two models the layer analysis compares: the base model and a run's model.

A run's `model/` folder (rule `train`) holds the full backbone with any LoRA update already
merged (plus the peft adapter in `model/adapter/`), so it loads like the base. A folder that
holds only a peft adapter (`adapter_config.json`, no `config.json`) is merged into the base
here with peft, so the analysis always sees W_base + ΔW."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from xlir.common.io import InputError, get_logger
from xlir.model.encoder import load_backbone

log = get_logger(__name__)


@dataclass
class LoadedModel:
    backbone: nn.Module
    #: the folder whose tokenizer encodes the texts (an adapter folder may have none)
    tokenizer_dir: Path
    #: True when the folder was a peft adapter that this load merged into the base
    merged_adapter: bool


def is_adapter_only(model_dir: str | Path) -> bool:
    model_dir = Path(model_dir)
    return (model_dir / "adapter_config.json").is_file() and not (model_dir / "config.json").is_file()


def _has_tokenizer(model_dir: Path) -> bool:
    return any((model_dir / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json"))


def load_model(model_dir: str | Path, base_dir: str | Path) -> LoadedModel:
    """The backbone of `model_dir` in eval mode: a transformers folder as it is, a peft adapter
    merged into the backbone of `base_dir`."""
    model_dir, base_dir = Path(model_dir), Path(base_dir)
    if not model_dir.is_dir():
        raise InputError(f"{model_dir}: model folder not found")
    if not is_adapter_only(model_dir):
        return LoadedModel(load_backbone(model_dir).eval(), model_dir, merged_adapter=False)
    from peft import PeftModel

    log.info("%s holds a peft adapter: merging it into %s", model_dir, base_dir)
    merged = PeftModel.from_pretrained(load_backbone(base_dir), str(model_dir)).merge_and_unload()
    tokenizer_dir = model_dir if _has_tokenizer(model_dir) else base_dir
    return LoadedModel(merged.eval(), tokenizer_dir, merged_adapter=True)
