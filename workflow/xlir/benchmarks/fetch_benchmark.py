"""Fetch the real benchmarks into `resources/`: from a local mirror folder, or
from the official sources when the config allows the network.

- XQuAD-R and MLQA-R: the LAReQA repository's JSON files, one per language
  (`google-research-datasets/lareqa`; MLQA-R was removed from its master
  branch, so it is pinned to the last commit that holds it). Every file is
  checked against its known SHA-256.
- MIRACL: topics, qrels (the `miracl/miracl` dataset) and the corpus shards
  (`miracl/miracl-corpus`) of each configured language from the Hugging Face
  hub (`HF_ENDPOINT` is honoured, as by `huggingface_hub`). They have no official
  checksums here: with `pins`, the SHA-256 of each file is recorded there at its first
  fetch and every later fetch (mirror or download) must match it
  (`xlir.common.download.pin_checksums`).

Mirror layout (as the sources): `{mirror}/lareqa/{xquad-r,mlqa-r}/{lang}.json`;
`{mirror}/miracl/miracl-v1.0-{lang}/topics/topics.miracl-v1.0-{lang}-{split}.tsv`,
`.../qrels/qrels.miracl-v1.0-{lang}-{split}.tsv`,
`{mirror}/miracl/miracl-corpus-v1.0-{lang}/docs-*.jsonl.gz`.

Output: `{out_dir}/{lang}.json` (LAReQA) or `{out_dir}/{lang}/{topics.tsv,
qrels.tsv, corpus/docs-*.jsonl.gz}` (MIRACL), and `{out_dir}/checksums.json`
listing each file's source, size and SHA-256. The folder appears atomically.
"""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

from xlir.common.download import obtain, pin_checksums
from xlir.common.io import InputError, atomic_dir, file_sha256, get_logger, write_json
from xlir.common.lareqa_files import LAREQA_SOURCES, LAREQA_URL, fetch_lareqa  # noqa: F401 (re-exported)

log = get_logger(__name__)

MIRACL_TOPICS = "miracl-v1.0-{lang}/topics/topics.miracl-v1.0-{lang}-{split}.tsv"
MIRACL_QRELS = "miracl-v1.0-{lang}/qrels/qrels.miracl-v1.0-{lang}-{split}.tsv"
MIRACL_CORPUS_DIR = "miracl-corpus-v1.0-{lang}"


def hf_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def _miracl_corpus_files(lang: str, mirror: Path | None, allow_download: bool) -> list[tuple[str, str | None]]:
    """(relative path under the mirror root `miracl/`, URL) of each corpus shard of `lang`."""
    folder = MIRACL_CORPUS_DIR.format(lang=lang)
    if mirror is not None and (mirror / folder).is_dir():
        names = sorted(p.name for p in (mirror / folder).iterdir() if p.name.endswith((".jsonl", ".jsonl.gz")))
        if names:
            return [(f"{folder}/{name}", None) for name in names]
    if not allow_download:
        return [(f"{folder}/docs-0.jsonl.gz", None)]  # obtain reports what is missing
    api = f"{hf_endpoint()}/api/datasets/miracl/miracl-corpus/tree/main/{folder}"
    try:
        with urllib.request.urlopen(api, timeout=60) as response:
            listing = json.load(response)
    except OSError as error:
        raise InputError(f"could not list the MIRACL corpus of {lang!r} at {api}: {error}") from error
    names = sorted(
        item["path"].rsplit("/", 1)[-1]
        for item in listing
        if item.get("type") == "file" and item["path"].endswith((".jsonl", ".jsonl.gz"))
    )
    base = f"{hf_endpoint()}/datasets/miracl/miracl-corpus/resolve/main"
    return [(f"{folder}/{name}", f"{base}/{folder}/{name}") for name in names]


def fetch_miracl(
    languages: list[str],
    split: str,
    out_dir: str | Path,
    mirror: str | Path | None = None,
    allow_download: bool = False,
    pins: str | Path | None = None,
    verify: bool = True,
) -> dict:
    """Fetch topics, qrels and corpus shards of each language into `out_dir/{lang}/`; with `pins`
    (a JSON file), check each file against the SHA-256 recorded there at its first fetch and
    record the new ones (a mismatch fails naming the file unless `verify` is false)."""
    mirror_root = Path(mirror) / "miracl" if mirror else None
    base = f"{hf_endpoint()}/datasets/miracl/miracl/resolve/main"
    records = {}
    with atomic_dir(out_dir) as staging:
        for lang in languages:
            folder = staging / lang
            (folder / "corpus").mkdir(parents=True)
            wanted = [
                (MIRACL_TOPICS.format(lang=lang, split=split), "topics.tsv"),
                (MIRACL_QRELS.format(lang=lang, split=split), "qrels.tsv"),
            ]
            for relative, name in wanted:
                origin = obtain(
                    relative, f"{base}/{relative}", folder / name, mirror_root, allow_download, f"MIRACL {lang} {split}"
                )
                records[f"{lang}/{name}"] = {
                    "source": origin,
                    "key": relative,
                    "bytes": (folder / name).stat().st_size,
                    "sha256": file_sha256(folder / name),
                }
            for relative, url in _miracl_corpus_files(lang, mirror_root, allow_download):
                target = folder / "corpus" / relative.rsplit("/", 1)[-1]
                origin = obtain(relative, url, target, mirror_root, allow_download, f"MIRACL corpus {lang}")
                records[f"{lang}/corpus/{target.name}"] = {
                    "source": origin,
                    "key": relative,
                    "bytes": target.stat().st_size,
                    "sha256": file_sha256(target),
                }
        if pins is not None:  # before the folder appears: a mismatch leaves no output
            status = pin_checksums(pins, {r["key"]: r for r in records.values()}, verify)
            for record in records.values():
                record["pinned"] = status[record["key"]]
        write_json(staging / "checksums.json", {"dataset": "miracl", "split": split, "files": records})
    log.info("MIRACL %s: %d files in %s", split, len(records), out_dir)
    return records
