"""Fetch the training source (LAReQA files or SQuAD) into `resources/qa/`: from a local mirror folder, or from the
official site when the config allows the network (`data.mirror`, `data.download`).

Datasets: `squad-v1.1-train`, `squad-v1.1-dev`, `squad-v2.0-train`, `squad-v2.0-dev`.
Mirror layout (as the official site): `{mirror}/squad/{train-v1.1.json, dev-v1.1.json,
train-v2.0.json, dev-v2.0.json}`. Each file is checked against its official SHA-256.

Output: `{out_dir}/{file}` (e.g. `train-v1.1.json`) and `{out_dir}/checksums.json` with
the file's source, size and SHA-256. The folder appears atomically."""

from __future__ import annotations

from pathlib import Path

from xlir.common.download import obtain
from xlir.common.io import InputError, atomic_dir, file_sha256, get_logger, write_json
from xlir.common.lareqa_files import fetch_lareqa

log = get_logger(__name__)

SQUAD_URL = "https://rajpurkar.github.io/SQuAD-explorer/dataset/{file}"
#: dataset -> official file, its size in bytes and SHA-256. The sizes and checksums are those
#: TensorFlow Datasets records for these URLs (tensorflow/datasets,
#: tensorflow_datasets/datasets/squad/checksums.tsv; the v1.1 pair also in the older
#: tensorflow_datasets/url_checksums/squad.txt); ParlAI's data builders list the same SHA-256
#: values (facebookresearch/ParlAI, parlai/tasks/squad2/build.py for v2.0, its SQuAD builder for v1.1).
SQUAD_FILES: dict[str, dict] = {
    "squad-v1.1-train": {
        "file": "train-v1.1.json",
        "bytes": 30288272,
        "sha256": "3527663986b8295af4f7fcdff1ba1ff3f72d07d61a20f487cb238a6ef92fd955",
    },
    "squad-v1.1-dev": {
        "file": "dev-v1.1.json",
        "bytes": 4854279,
        "sha256": "95aa6a52d5d6a735563366753ca50492a658031da74f301ac5238b03966972c9",
    },
    "squad-v2.0-train": {
        "file": "train-v2.0.json",
        "bytes": 42123633,
        "sha256": "68dcfbb971bd3e96d5b46c7177b16c1a4e7d4bdef19fb204502738552dede002",
    },
    "squad-v2.0-dev": {
        "file": "dev-v2.0.json",
        "bytes": 4370528,
        "sha256": "80a5225e94905956a6446d296ca1093975c4d3b3260f1d6c8f68bc2ab77182d8",
    },
}


def fetch_qa(
    kind: str,
    dataset: str,
    languages: list[str],
    out_dir: Path,
    mirror: Path | None,
    allow_download: bool,
    verify: bool = True,
) -> dict:
    """Fetch the training source `qa.source` names: a LAReQA dataset's `{lang}.json` files
    (`xlir.common.lareqa_files`, the benchmarks' fetcher) or one SQuAD file."""
    if kind == "lareqa":
        return fetch_lareqa(dataset, languages, out_dir, mirror, allow_download, verify)
    if kind == "squad":
        return fetch_squad(dataset, out_dir, mirror, allow_download, verify)
    raise InputError(f"config key qa.source.kind: '{kind}' is not fetched (lareqa and squad are; set qa.source.path)")


def squad_file(folder: Path, dataset: str) -> Path:
    """The SQuAD file of `dataset` in a folder `fetch_squad` filled."""
    if dataset not in SQUAD_FILES:
        raise InputError(f"config key qa.source.dataset: {dataset!r} is not one of {sorted(SQUAD_FILES)}")
    return Path(folder) / SQUAD_FILES[dataset]["file"]


def fetch_squad(dataset: str, out_dir: Path, mirror: Path | None, allow_download: bool, verify: bool = True) -> dict:
    """Fetch one SQuAD file into `out_dir` and record its checksum; return the file's record."""
    if dataset not in SQUAD_FILES:
        raise InputError(f"config key qa.source.dataset: {dataset!r} is not one of {sorted(SQUAD_FILES)}")
    source = SQUAD_FILES[dataset]
    name = source["file"]
    mirror_path = Path(mirror) if mirror else None
    with atomic_dir(out_dir) as staging:
        target = staging / name
        origin = obtain(
            f"squad/{name}", SQUAD_URL.format(file=name), target, mirror_path, allow_download, f"QA data {dataset}"
        )
        digest = file_sha256(target)
        if verify and digest != source["sha256"]:
            raise InputError(
                f"{origin}: SHA-256 {digest} differs from the official {name} ({source['sha256']}); "
                f"set data.verify_checksums: false to accept it anyway"
            )
        if digest != source["sha256"]:  # accepted (verify_checksums: false), never silently
            log.warning(
                "%s: SHA-256 %s differs from the official %s (%s); accepted because data.verify_checksums is false",
                origin,
                digest,
                name,
                source["sha256"],
            )
        record = {
            "source": origin,
            "bytes": target.stat().st_size,
            "sha256": digest,
            "expected_sha256": source["sha256"],
            "verified": digest == source["sha256"],
        }
        write_json(staging / "checksums.json", {"dataset": dataset, "files": {name: record}})
    log.info("%s: %s (%d bytes, verified %s) in %s", dataset, name, record["bytes"], record["verified"], out_dir)
    return record
