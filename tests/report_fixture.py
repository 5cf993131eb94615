"""A synthetic finished study for the report tests: every file the report rules read,
in the formats the real rules write (metrics.json and per_query.tsv through
xlir.evaluation.evaluate's own writer), with per-query scores whose differences are known.

Known answers (mAP-like scores in [0, 1], `N_IDS` parallel question ids in en, es, gl;
gl is never trained on):
- `decay-0.9` is `EFFECT` better than `uniform` in every setting and pair;
- `freeze-4` is `EFFECT` worse; `decay-0.95` is identical up to symmetric noise;
- hybrid sampling is `EFFECT` better than `xx` and `xy`, with a rank distance `RANK_GAIN` lower than `xx`;
- the model before fine-tuning is `2 * EFFECT` worse than hybrid/uniform."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from xlir.evaluation.evaluate import EvaluationResult, QueryResult, setting_of, summarise, write_evaluation

LANGS = ["en", "es", "gl"]
TRAIN_LANGS = ["en", "es"]
N_IDS = 60
EFFECT = 0.08
RANK_GAIN = 20.0
VARIANT_EFFECT = {"uniform": 0.0, "decay-0.9": EFFECT, "freeze-4": -EFFECT, "decay-0.95": 0.0}
SAMPLING_EFFECT = {"hybrid": 0.0, "xx": -EFFECT, "xy": -EFFECT}


def study_config(seeds: list[int], samplings: tuple[str, ...] = ("hybrid", "xx", "xy"), zeroshot: bool = True) -> dict:
    return {
        "models": {"tiny": {"source": "path", "path": "/nonexistent", "max_length": 16}},
        "training": {"languages": TRAIN_LANGS, "steps": 5, "lr": 1e-3},
        "samplings": {name: {"alpha": {"hybrid": 0.5, "xx": 1.0, "xy": 0.0}[name]} for name in samplings},
        "seeds": seeds,
        "variants": {
            "uniform": {"kind": "uniform"},
            "decay-0.9": {"kind": "decay", "gamma": 0.9},
            "freeze-4": {"kind": "freeze", "k": 4},
            "decay-0.95": {"kind": "decay", "gamma": 0.95},
        },
        "grid": {"full_product": False, "baseline_variant": "uniform", "main_sampling": "hybrid"},
        "benchmarks": {"demo": {"kind": "demo", "languages": LANGS}},
        "evaluation": {"depth": None, "recall_k": [1, 10], "bm25": True, "zeroshot": zeroshot},
        "translation": {"backend": "apertium", "languages": ["es", "gl"]},
        "report": {"alpha": 0.05, "bootstrap_samples": 400, "permutations": 400, "seed": 0, "headline_metric": {}},
    }


def _scores(rng: np.random.Generator, base: np.ndarray, shift: float, noise: float) -> np.ndarray:
    return np.clip(base + shift + rng.normal(0, noise, size=base.shape), 0.0, 1.0)


def write_run(run_dir: Path, shift: float, rank_shift: float, seed: int, base: dict) -> None:
    """metrics.json and per_query.tsv of one run on the `demo` benchmark."""
    rng = np.random.default_rng(seed)
    queries, pairs = [], []
    for qlang in LANGS:
        for clang in [*LANGS, "all"]:
            setting = setting_of(qlang, clang)
            pairs.append((qlang, clang))
            ap = _scores(rng, base[(qlang, clang)], shift, 0.01)
            rank = np.maximum(0.0, base["rank"] + rank_shift + rng.normal(0, 2, size=N_IDS))
            for index in range(N_IDS):
                queries.append(
                    QueryResult(
                        setting,
                        qlang,
                        clang,
                        f"{qlang}:q{index:03d}",
                        ap=float(ap[index]),
                        recall={1: float(ap[index] > 0.5), 10: float(ap[index] > 0.2)},
                        rank_distance=float(rank[index]) if clang == "all" else None,
                    )
                )
    settings = summarise(queries, pairs, (1, 10))
    result = EvaluationResult(
        recall_ks=(1, 10), queries=queries, counts={}, metrics={"settings": settings, "counts": {}}
    )
    (run_dir / "demo").mkdir(parents=True, exist_ok=True)
    write_evaluation(result, run_dir / "demo" / "metrics.json", run_dir / "demo" / "per_query.tsv")


def write_training(run_dir: Path, variant: str, seed: int) -> None:
    layers = range(4)
    gamma = {"decay-0.9": 0.9, "decay-0.95": 0.95}.get(variant, 1.0)
    rows = ["layer\tparameters\ttrainable\tlr\tweight_decay\tlora_rank"]
    for layer in layers:
        trainable = 0 if variant == "freeze-4" and layer < 2 else 1000
        rows.append(f"{layer}\t1000\t{trainable}\t{1e-3 * gamma ** (3 - layer)}\t0.01/0\t")
    (run_dir / "param_groups.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    log = ["step\tkind\tloss\tlr"] + [f"{s}\tmono\t{3.0 - 0.3 * s}\t1e-3" for s in range(5)]
    (run_dir / "train_log.tsv").write_text("\n".join(log) + "\n", encoding="utf-8")
    (run_dir / "train_summary.json").write_text(
        json.dumps(
            {
                "variant": variant,
                "steps": 5,
                "seed": seed,
                "train_seconds": 1.5,
                "trainable_parameters": 4000,
                "total_parameters": 1_000_000,
                "first_loss": 3.0,
                "final_loss_mean_last10": 1.8,
            }
        ),
        encoding="utf-8",
    )


def write_study(
    root: Path, seeds: list[int], samplings: tuple[str, ...] = ("hybrid", "xx", "xy"), zeroshot: bool = True
) -> dict:
    """Write the results tree under `root/results` and return the report manifest
    (paths relative to `root`, as the rules pass them: run the report from `root`)."""
    config = study_config(seeds, samplings, zeroshot)
    results = root / "results"
    rng = np.random.default_rng(0)
    base = {(q, c): rng.uniform(0.3, 0.6, size=N_IDS) for q in LANGS for c in [*LANGS, "all"]}
    base["rank"] = rng.uniform(100, 140, size=N_IDS)
    runs = []

    def add(model: str, variant: str, sampling: str, seed: int, shift: float, rank_shift: float) -> None:
        run_dir = results / "runs" / model / variant / sampling / f"seed{seed}"
        write_run(run_dir, shift, rank_shift, seed * 1000 + len(runs), base)
        if variant not in ("zeroshot", "lexical"):
            write_training(run_dir, variant, seed)
        runs.append(
            {
                "model": model,
                "variant": variant,
                "sampling": sampling,
                "seed": seed,
                "dir": str(run_dir.relative_to(root)),
            }
        )

    for seed in seeds:
        for variant, effect in VARIANT_EFFECT.items():
            add("tiny", variant, "hybrid", seed, effect, 0.0)
        for sampling in samplings:
            if sampling != "hybrid":
                add(
                    "tiny", "uniform", sampling, seed, SAMPLING_EFFECT[sampling], RANK_GAIN if sampling == "xx" else 0.0
                )
    if zeroshot:
        add("tiny", "zeroshot", "none", 0, -2 * EFFECT, 40.0)
    add("bm25", "lexical", "none", 0, -3 * EFFECT, -60.0)

    for lang in ["es", "gl"]:
        path = results / "data" / "mt" / f"{lang}.quality.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(
                {
                    "lang": lang,
                    "backend": "apertium",
                    "method": "round-trip",
                    "n_segments": 10,
                    "bleu": 40.0,
                    "chrf": 60.0,
                }
            ),
            encoding="utf-8",
        )
    (results / "checks").mkdir(parents=True, exist_ok=True)
    (results / "checks" / "leakage_demo.json").write_text(
        json.dumps(
            {
                "n_training_texts": 100,
                "n_eval_questions": 3 * N_IDS,
                "n_eval_candidates": 3 * N_IDS,
                "exact_question_overlap": 0,
                "near_question_overlap": 0,
                "exact_candidate_overlap": 0,
                "near_candidate_overlap": 0,
                "passed": True,
            }
        ),
        encoding="utf-8",
    )
    prepared = results / "benchmarks" / "demo" / "prepared"
    prepared.mkdir(parents=True, exist_ok=True)
    (prepared / "stats.json").write_text(
        json.dumps(
            {
                "languages": LANGS,
                "questions_per_language": dict.fromkeys(LANGS, N_IDS),
                "candidates_per_language": dict.fromkeys(LANGS, N_IDS),
                "n_questions": 3 * N_IDS,
                "n_candidates": 3 * N_IDS,
            }
        ),
        encoding="utf-8",
    )
    (results / "data" / "train").mkdir(parents=True, exist_ok=True)
    (results / "data" / "train" / "stats.json").write_text(
        json.dumps(
            {
                "languages": TRAIN_LANGS,
                "n_pairs": 50,
                "dropped_overlapping_heldout": 0,
                "dropped_missing_translation": 0,
            }
        ),
        encoding="utf-8",
    )
    card = results / "models" / "tiny" / "base" / "model_card.json"
    card.parent.mkdir(parents=True, exist_ok=True)
    card.write_text(json.dumps({"num_hidden_layers": 2, "hidden_size": 32, "fingerprint": "abc"}), encoding="utf-8")
    timing = results / "timing" / "train" / "tiny" / "uniform" / "hybrid" / f"seed{seeds[0]}.tsv"
    timing.parent.mkdir(parents=True, exist_ok=True)
    timing.write_text(
        "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
        "12.5\t0:00:12\t300.0\t400.0\t1\t1\t0\t0\t90\t11.0\n",
        encoding="utf-8",
    )
    default = study_config([13])
    return {
        "config": config,
        "default_config": default,
        "runs": runs,
        "benchmarks": ["demo"],
        "mt_languages": ["es", "gl"],
        "results_dir": "results",
    }
