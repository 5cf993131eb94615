"""Make a transformers model directory a sentence-transformers one too.

Every model xlir writes (the prepared base model, every trained model) gets the files
with which `SentenceTransformer(path)` rebuilds xlir's own encoder (`xlir.model.encoder`):
the transformer in the directory itself, the configured pooling (mean over the
non-padding tokens, or the first token), L2 normalisation, and the E5 prefixes as
named prompts, so that `SentenceTransformer(path).encode(texts, prompt_name="query")`
returns the embeddings `DualEncoder.encode(texts, "query")` computes.

| file | content |
|---|---|
| `modules.json` | `sentence_transformers.models.Transformer` (path `""`), `.Pooling` (`1_Pooling`), `.Normalize` (`2_Normalize`) |
| `sentence_bert_config.json` | `max_seq_length` (the length xlir encodes with), `do_lower_case: false`; `model_args: {add_pooling_layer: false}` where the model class has a pooler head (BERT, XLM-R), which xlir's encoder leaves out too (`xlir.model.architectures.load_backbone`) |
| `1_Pooling/config.json` | the long-standing `pooling_mode_*` keys: mean or CLS token; prompts included in the pool |
| `2_Normalize/` | empty (the module has no parameters) |
| `config_sentence_transformers.json` | `prompts` {"query": "query: ", "passage": "passage: "}, `default_prompt_name` null, `similarity_fn_name` "cosine" |

The files are written as JSON here; sentence-transformers is not imported. The class
names are those every sentence-transformers release since 2.x reads (6.x maps them to
its new module paths). T5-family directories (mT5) hold an encoder-only model
(`MT5EncoderModel`); sentence-transformers loads T5 configs encoder-only too."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

from xlir.common.io import get_logger, write_json
from xlir.model.encoder import PREFIXES

log = get_logger(__name__)

POOLING_DIR = "1_Pooling"
NORMALIZE_DIR = "2_Normalize"
MODULES = [
    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
    {"idx": 1, "name": "1", "path": POOLING_DIR, "type": "sentence_transformers.models.Pooling"},
    {"idx": 2, "name": "2", "path": NORMALIZE_DIR, "type": "sentence_transformers.models.Normalize"},
]
#: the files (and folders) this module writes, relative to the model directory
FILES = ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json", POOLING_DIR, NORMALIZE_DIR)


def pooling_config(pooling: str, dimension: int) -> dict:
    """`1_Pooling/config.json`: mean over the non-padding tokens or the first (CLS) token."""
    if pooling not in ("mean", "cls"):
        raise ValueError(f"config key models.<name>.pooling: '{pooling}' is not 'mean' or 'cls'")
    return {
        "word_embedding_dimension": dimension,
        "pooling_mode_cls_token": pooling == "cls",
        "pooling_mode_mean_tokens": pooling == "mean",
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": False,
        "include_prompt": True,
    }


def sentence_transformers_config() -> dict:
    """`config_sentence_transformers.json`: the E5 prefixes as named prompts, cosine similarity."""
    return {
        "model_type": "SentenceTransformer",
        "prompts": dict(PREFIXES),
        "default_prompt_name": None,
        "similarity_fn_name": "cosine",
    }


def embedding_dimension(model_dir: Path) -> int:
    """The hidden size of a transformers directory's `config.json` (`hidden_size`, T5's `d_model`)."""
    config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    for key in ("hidden_size", "d_model"):
        if isinstance(config.get(key), int):
            return config[key]
    raise ValueError(f"{model_dir}/config.json has neither hidden_size nor d_model")


def model_args(model_dir: Path) -> dict:
    """Keyword arguments for the model class sentence-transformers loads: `add_pooling_layer: false`
    where that class (transformers' AutoModel for the config) takes it, as `load_backbone` does: the
    pooler is unused by mean and CLS pooling, and a directory without its weights would otherwise
    load with a randomly initialised one (and a warning). T5 directories load encoder-only."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_MAPPING

    config = AutoConfig.from_pretrained(str(model_dir))
    try:
        cls = MODEL_MAPPING[type(config)]
    except KeyError:
        return {}
    return {"add_pooling_layer": False} if "add_pooling_layer" in inspect.signature(cls.__init__).parameters else {}


def sentence_bert_config(model_dir: Path, max_seq_length: int) -> dict:
    """`sentence_bert_config.json`: the Transformer module's truncation and model arguments."""
    config: dict = {"max_seq_length": max_seq_length, "do_lower_case": False}
    extra = model_args(model_dir)
    if extra:
        config["model_args"] = extra
    return config


def write_sentence_transformers_files(model_dir: str | Path, *, pooling: str, max_seq_length: int) -> None:
    """Add the sentence-transformers files to a transformers directory (see the module docstring);
    files of an earlier sentence-transformers configuration there are replaced."""
    model_dir = Path(model_dir)
    if not isinstance(max_seq_length, int) or max_seq_length < 1:
        raise ValueError(f"max_seq_length must be a positive integer, got {max_seq_length!r}")
    dimension = embedding_dimension(model_dir)
    write_json(model_dir / "modules.json", MODULES)
    write_json(model_dir / "sentence_bert_config.json", sentence_bert_config(model_dir, max_seq_length))
    write_json(model_dir / "config_sentence_transformers.json", sentence_transformers_config())
    (model_dir / POOLING_DIR).mkdir(exist_ok=True)
    write_json(model_dir / POOLING_DIR / "config.json", pooling_config(pooling, dimension))
    (model_dir / NORMALIZE_DIR).mkdir(exist_ok=True)
    log.info(
        "%s: sentence-transformers files written (%s pooling, max_seq_length %d, dimension %d)",
        model_dir,
        pooling,
        max_seq_length,
        dimension,
    )
