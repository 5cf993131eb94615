"""The official XQuAD-R and MLQA-R files (LAReQA, `google-research-datasets/lareqa`) and how to
fetch them: from a local mirror folder, or downloaded when the config allows the network.
MLQA-R was removed from the repository's master branch, so it is pinned to the last commit
that holds it. Every file is checked against its known SHA-256.

Shared by the benchmark fetcher (`xlir.benchmarks.fetch_benchmark`, XQuAD-R / MLQA-R as
evaluation benchmarks) and the training-data fetcher (`xlir.data.fetch_qa`, a LAReQA
dataset as training source)."""

from __future__ import annotations

from pathlib import Path

from xlir.common.download import obtain
from xlir.common.io import InputError, atomic_dir, file_sha256, get_logger, write_json

log = get_logger(__name__)

LAREQA_URL = "https://github.com/google-research-datasets/lareqa/raw/{ref}/{dataset}/{lang}.json"
LAREQA_SOURCES: dict[str, dict] = {
    "xquad-r": {
        "ref": "master",
        "sha256": {
            "ar": "c52922d3b8ac1ae03ed5ac38647ad59870dca3dda2beefe18ecdc30729acb69d",
            "de": "16fb0f4bf4916154b585a20c24c66074591c9718a1affe764ff4697572328949",
            "el": "163fd43ee785a30eb534ae2061e9eaa766a7ee4e8ffce5e4b422480c150f64b6",
            "en": "7b0954f39297c27a31fef610f0883337dd2907fa8699151dc922afdd0fa12ffe",
            "es": "f8e836b2d91009c4363e04315f7ede363eedbbb49c67dda60de6c4aa782f58de",
            "hi": "ea45ba8ae4513d1533b222bebdc02a90bc319c055d3aeea68584a053d2e92872",
            "ru": "7f4dff853538b9a5fcc28c070b8bb983a5c5d190ac747b8e005a1ada9cab18f1",
            "th": "c3a041864c3a9fb0b4dd91cfdf99cf36b411b3e704c58a303c97bc6dc786cfe4",
            "tr": "f3e8c13002bbce154a4578f535f7533cb70f3da08840e6b62735935baec7bd94",
            "vi": "e35926bf5cc6fc6ecbdfca49467aabeb454f08d152d7818143a906bd31dde995",
            "zh": "80c2cde7b9c2fb134c303cbb52f2ba396ead9eb0014aec43993543d2ba9e93ed",
        },
    },
    "mlqa-r": {
        "ref": "354d67d1cd066854cdfbf5ad0e6105528976141d",
        "sha256": {
            "ar": "2132fbc03208535c0fe01f2e2c5121d06f9c2aa799af93b0a719dbc105bdf137",
            "de": "ce9454dc5aa6f2d85c23cd6e49cb367fbb7c4c6e62d7f71e355c6b5dae4d0886",
            "en": "fedd9a5cc0848dda80caf84aa36f482adaae230526a3f6e9e86926a93ef3b1e4",
            "es": "70ecba276b8c96a692b120693a595d076ce94ad21d4b28311538a9fcbfe0f9d7",
            "hi": "4dd0fb3c06f737a5481d705bc1dcac7876712a5815c9265908fbb3a0696cb654",
            "vi": "9d3baff6ba03e6793b25594217265ea59a136b9733833dca8a9582a84a78ff85",
            "zh": "57f01d2fff50cf3392805635b01445339f225ad5bf28ba8443b12f8dbd1e69dc",
        },
    },
}


def fetch_lareqa(
    dataset: str,
    languages: list[str],
    out_dir: str | Path,
    mirror: str | Path | None = None,
    allow_download: bool = False,
    verify: bool = True,
) -> dict:
    """Fetch `{dataset}/{lang}.json` for every language into `out_dir` and record checksums."""
    if dataset not in LAREQA_SOURCES:
        raise InputError(
            f"config key benchmarks.*.dataset / qa.source.dataset: {dataset!r} is not one of {sorted(LAREQA_SOURCES)}"
        )
    source = LAREQA_SOURCES[dataset]
    unknown = [lang for lang in languages if lang not in source["sha256"]]
    if unknown:
        raise InputError(
            f"config key benchmarks.*.languages / qa.source.languages: {dataset} has no language(s) {unknown}; "
            f"it has {sorted(source['sha256'])}"
        )
    mirror_path = Path(mirror) if mirror else None
    records = {}
    with atomic_dir(out_dir) as staging:
        for lang in languages:
            target = staging / f"{lang}.json"
            url = LAREQA_URL.format(ref=source["ref"], dataset=dataset, lang=lang)
            origin = obtain(
                f"lareqa/{dataset}/{lang}.json", url, target, mirror_path, allow_download, f"benchmark {dataset}"
            )
            digest = file_sha256(target)
            expected = source["sha256"][lang]
            if verify and digest != expected:
                raise InputError(
                    f"{origin}: SHA-256 {digest} differs from the official {dataset}/{lang}.json "
                    f"({expected}); set data.verify_checksums: false to accept it anyway"
                )
            if digest != expected:  # accepted (verify_checksums: false), never silently: the report lists it
                log.warning(
                    "%s: SHA-256 %s differs from the official %s/%s.json (%s); accepted because "
                    "data.verify_checksums is false",
                    origin,
                    digest,
                    dataset,
                    lang,
                    expected,
                )
            records[f"{lang}.json"] = {
                "source": origin,
                "bytes": target.stat().st_size,
                "sha256": digest,
                "expected_sha256": expected,
                "verified": digest == expected,
            }
        write_json(staging / "checksums.json", {"dataset": dataset, "files": records})
    log.info("%s: %d files in %s", dataset, len(records), out_dir)
    return records
