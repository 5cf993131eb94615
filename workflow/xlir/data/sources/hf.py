"""A Hugging Face `datasets` dataset as source pairs (config `qa.source` of kind `hf`).

Spec keys: `path` (offline: a `save_to_disk` folder, a parquet file or a folder of parquet
files), else `name` (a hub id, only when the network is allowed) with `config`; `split`
(which split of a DatasetDict / hub dataset; `train` by default); `lang` (the language of
the texts, `en` by default); `columns` mapping `id`, `question`, `answer` and optionally
`group`, `title` to the dataset's column names (by default the same names; without an `id`
column the row index is the id). pair_id `hf:{id}`; group the id unless mapped.

Offline the `datasets` and hub libraries are put in offline mode (HF_DATASETS_OFFLINE,
HF_HUB_OFFLINE) while loading, so nothing reaches the network."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from xlir.common.io import InputError, get_logger

log = get_logger(__name__)

COLUMN_KEYS = ("id", "question", "answer", "group", "title")
SPEC_KEYS = ("kind", "name", "config", "split", "path", "lang", "columns")
_OFFLINE_ENV = ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE")


@contextlib.contextmanager
def offline_mode() -> Iterator[None]:
    """Keep `datasets` and `huggingface_hub` off the network, also when already imported."""
    saved_env = {name: os.environ.get(name) for name in _OFFLINE_ENV}
    for name in _OFFLINE_ENV:
        os.environ[name] = "1"
    import datasets.config
    import huggingface_hub.constants

    patched = [
        (datasets.config, "HF_HUB_OFFLINE"),
        (datasets.config, "HF_DATASETS_OFFLINE"),
        (huggingface_hub.constants, "HF_HUB_OFFLINE"),
    ]
    saved = [(module, attr, getattr(module, attr)) for module, attr in patched if hasattr(module, attr)]
    try:
        for module, attr, _ in saved:
            setattr(module, attr, True)
        yield
    finally:
        for module, attr, value in saved:
            setattr(module, attr, value)
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _parquet_rows(path: Path, columns: list[str]) -> tuple[list[str], list[dict]]:
    import pyarrow.parquet as pq

    files = sorted(path.rglob("*.parquet")) if path.is_dir() else [path]
    if not files:
        raise InputError(f"config key qa.source.path: {path} holds no save_to_disk dataset and no *.parquet files")
    try:
        schema = pq.read_schema(files[0])
        present = [name for name in columns if name in schema.names]
        table = pq.ParquetDataset([str(f) for f in files]).read(columns=present)
    except Exception as error:  # pyarrow raises several kinds for a damaged or mismatched file
        raise InputError(f"{path}: not readable as parquet ({error})") from error
    return list(schema.names), table.to_pylist()


def _load_rows(spec: dict, allow_network: bool, split: str, columns: list[str]) -> tuple[str, list[str], list[dict]]:
    """(description of the source, its column names, rows restricted to `columns`)."""
    import datasets

    if spec.get("path"):
        path = Path(spec["path"])
        if not path.exists():
            raise InputError(f"config key qa.source.path: {path} does not exist")
        if path.is_dir() and ((path / "dataset_dict.json").is_file() or (path / "state.json").is_file()):
            loaded = datasets.load_from_disk(str(path))
            if isinstance(loaded, datasets.DatasetDict):
                if split not in loaded:
                    raise InputError(
                        f"config key qa.source.split: {path} has no split {split!r}; it has {sorted(loaded)}"
                    )
                loaded = loaded[split]
            names = list(loaded.column_names)
            return str(path), names, loaded.select_columns([c for c in columns if c in names]).to_list()
        names, rows = _parquet_rows(path, columns)
        return str(path), names, rows
    if not spec.get("name"):
        raise InputError("config key qa.source: an hf source needs 'path' (a local copy) or 'name' (a hub id)")
    if not allow_network:
        raise InputError(
            f"config key qa.source: hub dataset {spec['name']!r} would be downloaded but data.download is false; "
            f"set qa.source.path to a local copy (save_to_disk folder or parquet) or allow data.download"
        )
    try:
        loaded = datasets.load_dataset(spec["name"], spec.get("config"), split=split)
    except Exception as error:  # hub, network and builder errors all mean: this dataset cannot be had
        raise InputError(f"config key qa.source.name: could not load {spec['name']!r} ({error})") from error
    names = list(loaded.column_names)
    return spec["name"], names, loaded.select_columns([c for c in columns if c in names]).to_list()


def _value(row: dict, column: str, key: str, where: str) -> str:
    value = row.get(column)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise InputError(
            f"{where}: column {column!r} (qa.source.columns.{key}) must be a non-empty string, "
            f"got {type(value).__name__}"
        )
    return " ".join(value.split()) if key in ("question", "answer") else value.strip()


def load_hf(spec: dict, allow_network: bool) -> list[dict]:
    """Source pairs of the dataset that `spec` (config `qa.source`) names."""
    if not isinstance(spec, dict):
        raise InputError("config key qa.source: expected a mapping")
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise InputError(f"config key qa.source: unknown key(s) {unknown} for an hf source; known: {list(SPEC_KEYS)}")
    mapping = {"id": "id", "question": "question", "answer": "answer"}
    given = spec.get("columns") or {}
    if not isinstance(given, dict) or set(given) - set(COLUMN_KEYS):
        raise InputError(f"config key qa.source.columns: expected a mapping with keys among {list(COLUMN_KEYS)}")
    mapping.update(given)
    lang, split = spec.get("lang") or "en", spec.get("split") or "train"
    wanted = list(dict.fromkeys(mapping.values()))
    if allow_network:
        source, names, rows = _load_rows(spec, allow_network, split, wanted)
    else:
        with offline_mode():
            source, names, rows = _load_rows(spec, allow_network, split, wanted)
    missing = [
        key for key, column in mapping.items() if column not in names and not (key == "id" and "id" not in given)
    ]
    if missing:
        raise InputError(
            f"{source}: no column(s) {[mapping[k] for k in missing]} (qa.source.columns.{'/'.join(missing)}); "
            f"the dataset has {names}"
        )
    use_index = mapping["id"] not in names
    if use_index:
        log.info("%s: no %r column; the row index is the id", source, mapping["id"])
    pairs: list[dict] = []
    seen: dict[str, int] = {}
    for index, row in enumerate(rows):
        where = f"{source}: row {index}"
        pair_id = str(index) if use_index else _value(row, mapping["id"], "id", where)
        if pair_id in seen:
            raise InputError(f"{where}: id {pair_id!r} repeats the id of row {seen[pair_id]}")
        seen[pair_id] = index
        group = _value(row, mapping["group"], "group", where) if "group" in mapping else pair_id
        title = row.get(mapping["title"]) if "title" in mapping else None
        if title is not None and not isinstance(title, str):
            raise InputError(f"{where}: column {mapping['title']!r} (qa.source.columns.title) must be a string")
        question = _value(row, mapping["question"], "question", where)
        answer = _value(row, mapping["answer"], "answer", where)
        pairs.append(
            {
                "pair_id": f"hf:{pair_id}",
                "group": group,
                "title": title,
                "texts": {lang: {"question": question, "answer": answer}},
            }
        )
    if not pairs:
        raise InputError(f"{source}: split {split!r} has no rows")
    log.info("%s (split %s): %d pairs in %s", source, split, len(pairs), lang)
    return pairs
