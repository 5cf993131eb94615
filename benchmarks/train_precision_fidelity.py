"""Fidelity of training precision on a real benchmark: compare finished runs of one recipe that
differ in one factor (training precision, bf16 against fp32) with the seed-to-seed spread of the
same recipe.

Each run is a benchmark folder of a trained model, `results/runs/<model>/<variant>/<sampling>/
seed<s>/<benchmark>` (its `metrics.json`, `per_query.tsv`, `embeddings/`; the training summary
is read from the folder above). For every requested pair it prints and writes:

- mAP per setting of both runs and the difference, with the report's 95% paired bootstrap
  interval (question ids resampled, one draw shared by every language pair);
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
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))

from xlir.report.compare import paired_deltas, read_per_query  # noqa: E402
from xlir.report.stats import macro_mean, paired_bootstrap, percentile_ci  # noqa: E402

SETTINGS = ("monolingual", "cross-lingual", "multilingual")


def setting_map(table: pd.DataFrame, setting: str) -> float:
    """mAP of one setting as the evaluation aggregates it (mean per language pair, then over pairs)."""
    rows = table[table["setting"] == setting]
    return macro_mean(rows.pivot(index="unit", columns="pair", values="ap").to_numpy(dtype=np.float64))


def paired_delta(a: pd.DataFrame, b: pd.DataFrame, setting: str, draws: int, rng: np.random.Generator) -> dict:
    """mAP difference a - b of one setting and its 95% interval, as the report computes it: the
    question ids resampled, one draw shared by every language pair (`xlir.report.stats`)."""
    deltas, _, _, unmatched = paired_deltas(a[a["setting"] == setting], b[b["setting"] == setting], "ap")
    if unmatched:
        raise SystemExit(f"{setting}: {unmatched} per-query scores have no partner in the other run")
    low, high = percentile_ci(paired_bootstrap(deltas, draws, rng))
    return {"delta": macro_mean(deltas), "low": low, "high": high}


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
    tables = {label: read_per_query(path / "per_query.tsv", parallel=True) for label, path in runs.items()}
    result: dict[str, Any] = {
        "runs": {
            label: {
                "dir": str(path),
                **training_summary(path),
                "map": {s: setting_map(tables[label], s) for s in SETTINGS},
            }
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
        entry = {s: paired_delta(tables[a], tables[b], s, args.draws, rng) for s in SETTINGS}
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
