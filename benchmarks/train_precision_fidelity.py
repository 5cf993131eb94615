"""Fidelity of training precision on a real benchmark: compare finished runs of one recipe that
differ in one factor (training precision, bf16 against fp32) with the seed-to-seed spread of the
same recipe.

Each run is a benchmark folder of a trained model, `results/runs/<model>/<variant>/<sampling>/
seed<s>/<benchmark>` (its `metrics.json`, `per_query.tsv`, `embeddings/`; the training summary
is read from the folder above). For every requested pair it prints and writes:

- mAP per setting of both runs and the difference, with a 95% bootstrap interval over the
  paired per-query APs (questions resampled within each setting's per-query rows);
- the cosine between the two models' embeddings of the same texts (mean, 1st percentile, min),
  a measure of how far apart the two trained models are;
- each run's training precision and final loss (`train_summary.json`).

    python benchmarks/train_precision_fidelity.py \\
        --run fp32-13=results/runs/e5-fp32train/uniform/hybrid/seed13/xquad-r \\
        --run bf16-13=results/runs/e5-bf16train/uniform/hybrid/seed13/xquad-r \\
        --run fp32-42=results/runs/e5-fp32train/uniform/hybrid/seed42/xquad-r \\
        --compare bf16-13:fp32-13 --compare fp32-42:fp32-13 --out fidelity.json

A config that trains the same recipe twice under two model keys differing only in
`models.<m>.training.precision` (same source, same batches, same seeds) gives such runs."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

SETTINGS = ("monolingual", "cross-lingual", "multilingual")


def per_query_ap(run: Path) -> dict[str, dict[tuple[str, str, str], float]]:
    """setting -> {(query_lang, cand_lang, qid): AP} from a run's per_query.tsv."""
    table: dict[str, dict[tuple[str, str, str], float]] = {s: {} for s in SETTINGS}
    with (run / "per_query.tsv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            table[row["setting"]][(row["query_lang"], row["cand_lang"], row["qid"])] = float(row["ap"])
    return table


def macro_map(aps: dict[tuple[str, str, str], float]) -> float:
    """The evaluation's aggregation: mean per language pair, then the mean over pairs."""
    pairs: dict[tuple[str, str], list[float]] = {}
    for (qlang, clang, _), ap in aps.items():
        pairs.setdefault((qlang, clang), []).append(ap)
    return float(np.mean([np.mean(v) for v in pairs.values()]))


def paired_delta(a: dict, b: dict, draws: int, rng: np.random.Generator) -> dict[str, float]:
    """Macro mAP difference a - b and a 95% bootstrap interval, queries resampled within pairs."""
    keys = sorted(set(a) & set(b))
    if len(keys) != len(a) or len(keys) != len(b):
        raise SystemExit(f"the two runs score different queries ({len(a)} vs {len(b)}, {len(keys)} shared)")
    groups: dict[tuple[str, str], list[float]] = {}
    for key in keys:
        groups.setdefault(key[:2], []).append(a[key] - b[key])
    arrays = [np.asarray(v) for v in groups.values()]
    delta = float(np.mean([x.mean() for x in arrays]))
    boot = np.zeros(draws)
    for x in arrays:
        idx = rng.integers(0, len(x), size=(draws, len(x)))
        boot += x[idx].mean(axis=1)
    boot /= len(arrays)
    low, high = np.percentile(boot, [2.5, 97.5])
    return {"delta": delta, "low": float(low), "high": float(high)}


def embedding_cosine(run_a: Path, run_b: Path) -> dict[str, float]:
    """Cosine between two models' (L2-normalised) embeddings of the same texts, same order."""
    cos = []
    for side in ("questions", "candidates"):
        ids_a = (run_a / "embeddings" / f"{side}.ids").read_text(encoding="utf-8").split("\n")
        ids_b = (run_b / "embeddings" / f"{side}.ids").read_text(encoding="utf-8").split("\n")
        if ids_a != ids_b:
            raise SystemExit(f"{side}: the two runs embed different texts")
        x = np.load(run_a / "embeddings" / f"{side}.npy")
        y = np.load(run_b / "embeddings" / f"{side}.npy")
        cos.append(np.sum(x * y, axis=1))
    all_cos = np.concatenate(cos)
    return {"mean": float(all_cos.mean()), "p01": float(np.percentile(all_cos, 1)), "min": float(all_cos.min())}


def training_summary(run: Path) -> dict[str, Any]:
    summary = json.loads((run.parent / "train_summary.json").read_text(encoding="utf-8"))
    precision = summary.get("precision") or summary.get("options", {}).get("precision", "fp32")
    return {"precision": precision, "final_loss": summary.get("final_loss_mean_last10")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="append", required=True, metavar="LABEL=DIR")
    parser.add_argument("--compare", action="append", required=True, metavar="A:B", help="report A - B")
    parser.add_argument("--draws", type=int, default=2000, help="bootstrap draws")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    runs = {label: Path(path) for label, path in (item.split("=", 1) for item in args.run)}
    rng = np.random.default_rng(args.seed)
    aps = {label: per_query_ap(path) for label, path in runs.items()}
    result: dict[str, Any] = {
        "runs": {
            label: {"dir": str(path), **training_summary(path), "map": {s: macro_map(aps[label][s]) for s in SETTINGS}}
            for label, path in runs.items()
        },
        "comparisons": {},
    }
    for label, info in result["runs"].items():
        maps = " / ".join(f"{info['map'][s]:.4f}" for s in SETTINGS)
        loss = info["final_loss"]
        print(f"{label:12s} precision {info['precision']}, loss (last 10 steps) {loss}, mAP mono/cross/multi {maps}")
    for pair in args.compare:
        a, b = pair.split(":", 1)
        entry = {s: paired_delta(aps[a][s], aps[b][s], args.draws, rng) for s in SETTINGS}
        entry["embedding_cosine"] = embedding_cosine(runs[a], runs[b])
        result["comparisons"][f"{a} - {b}"] = entry
        deltas = ", ".join(
            f"{s} {entry[s]['delta']:+.4f} [{entry[s]['low']:+.4f}, {entry[s]['high']:+.4f}]" for s in SETTINGS
        )
        cos = entry["embedding_cosine"]
        print(f"{a} - {b}: {deltas}; cosine mean {cos['mean']:.5f}, p1 {cos['p01']:.5f}, min {cos['min']:.5f}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
