"""Published reference figures (theirs, not ours) that the report shows beside our
numbers where the benchmark and the setting match (shared/DESIGN.md s1).

mAP over the whole candidate pool, per setting: Elmahdy, Lin and Ahmad (2024),
"Synergistic Approach for Simultaneous Optimization of Monolingual,
Cross-lingual, and Multilingual Information Retrieval", arXiv 2408.10536,
Table 1 (hybrid-batch fine-tuning of XLM-R and LaBSE); and the mBERT X-Y
baseline of LAReQA (Roy et al., 2020) in its language-agnostic
(multilingual-pool) setting."""

from __future__ import annotations

PAPER = "Elmahdy et al. 2024, arXiv 2408.10536, Table 1"
LAREQA = "Roy et al. 2020 (LAReQA)"

#: languages of the full benchmarks the reference figures were measured on
FULL_LANGUAGES = {"xquad-r": 11, "mlqa-r": 7}
#: dataset -> [(system, source, {setting: mAP})]
REFERENCE_MAP: dict[str, list[tuple[str, str, dict[str, float]]]] = {
    "xquad-r": [
        ("XLM-R, hybrid batches", PAPER, {"monolingual": 0.798, "cross-lingual": 0.705, "multilingual": 0.593}),
        ("LaBSE, hybrid batches", PAPER, {"monolingual": 0.817, "cross-lingual": 0.767, "multilingual": 0.682}),
        ("mBERT, X-Y", LAREQA, {"multilingual": 0.66}),
    ],
    "mlqa-r": [
        ("XLM-R, hybrid batches", PAPER, {"monolingual": 0.648, "cross-lingual": 0.623, "multilingual": 0.512}),
        ("LaBSE, hybrid batches", PAPER, {"monolingual": 0.686, "cross-lingual": 0.681, "multilingual": 0.579}),
        ("mBERT, X-Y", LAREQA, {"multilingual": 0.49}),
    ],
}


def reference_dataset(benchmark: str, spec: dict) -> str | None:
    """`xquad-r` / `mlqa-r` when the benchmark is that LAReQA dataset, else None
    (the report notes when a run uses fewer languages than the paper's)."""
    dataset = spec.get("dataset") or (benchmark.lower() if benchmark.lower() in REFERENCE_MAP else None)
    if spec.get("kind") != "lareqa" or dataset not in REFERENCE_MAP:
        return None
    return dataset


def references_for(dataset: str, setting: str) -> list[tuple[str, str, float]]:
    return [
        (system, source, values[setting])
        for system, source, values in REFERENCE_MAP.get(dataset, [])
        if setting in values
    ]
