"""Fidelity of the encoding engines and precisions on a real benchmark: two arms, each an
engine and a precision (default: ONNX Runtime, the CPU default for large jobs, against torch,
both fp32; or bf16 against fp32).

Encodes a prepared benchmark with one model under both arms (`xlir encode`'s function) and
compares embedding cosines and mAP over the full pool (multilingual), within the question's
language (monolingual) and against each other language's candidates (cross-lingual, averaged
over language pairs), with exact ranking by inner product.

    python benchmarks/engine_fidelity.py --model results/models/e5-small/base \\
        --prepared results/benchmarks/xquad-r/prepared --out benchmarks/results/engine_fidelity.json
    python benchmarks/engine_fidelity.py --model results/models/e5-small/base \\
        --prepared results/benchmarks/dev/prepared --arms torch:fp32 torch:bf16"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))

from xlir.benchmarks.prepared import PreparedFiles  # noqa: E402
from xlir.retrieval.encode import encode_benchmark  # noqa: E402


def mean_ap(q: np.ndarray, c: np.ndarray, relevant: list[set[int]], allowed: np.ndarray | None) -> float:
    """mAP of exact inner-product ranking; `allowed`: candidate mask (None: all)."""
    scores = q @ c.T
    aps = []
    for i, rel in enumerate(relevant):
        row = scores[i] if allowed is None else np.where(allowed, scores[i], -np.inf)
        rel = [r for r in rel if allowed is None or allowed[r]]
        if not rel:
            continue
        ranks = np.sort([(row > row[r]).sum() + 1 for r in rel])
        aps.append(np.mean([(k + 1) / rank for k, rank in enumerate(ranks)]))
    return float(np.mean(aps))


def settings(folder: Path, questions: list[dict], candidates: list[dict], qrels: dict) -> dict[str, float]:
    q, c = np.load(folder / "questions.npy"), np.load(folder / "candidates.npy")
    cid = {row["cid"]: i for i, row in enumerate(candidates)}
    relevant = [{cid[x] for x in qrels.get(row["qid"], ())} for row in questions]
    q_lang = np.array([row["lang"] for row in questions])
    c_lang = np.array([row["lang"] for row in candidates])
    out = {"multilingual": mean_ap(q, c, relevant, None)}
    mono, cross = [], defaultdict(list)
    for lang in sorted(set(q_lang)):
        rows = np.flatnonzero(q_lang == lang)
        rel = [relevant[i] for i in rows]
        mono.append(mean_ap(q[rows], c, rel, c_lang == lang))
        for other in sorted(set(c_lang) - {lang}):
            cross[lang].append(mean_ap(q[rows], c, rel, c_lang == other))
    out["monolingual"] = float(np.mean(mono))
    out["cross-lingual"] = float(np.mean([v for values in cross.values() for v in values]))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--prepared", type=Path, required=True, help="a prepared benchmark folder")
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--arms",
        nargs=2,
        default=["torch:fp32", "onnx:fp32"],
        metavar="ENGINE:PRECISION",
        help="the reference arm, then the arm compared with it",
    )
    p.add_argument("--out", type=Path)
    a = p.parse_args()
    read = lambda path: [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]  # noqa: E731
    questions, candidates = read(a.prepared / "questions.jsonl"), read(a.prepared / "candidates.jsonl")
    qrels: dict[str, list[str]] = defaultdict(list)
    for line in (a.prepared / "qrels.tsv").read_text(encoding="utf-8").splitlines():
        qid, _, docid, grade = line.split()[:4]
        if int(grade) > 0:
            qrels[qid].append(docid)
    result: dict = {"model": str(a.model), "benchmark": str(a.prepared), "arms": a.arms, "threads": a.threads}
    with tempfile.TemporaryDirectory() as tmp:
        for arm in a.arms:
            engine, _, precision = arm.partition(":")
            meta = encode_benchmark(
                a.model,
                PreparedFiles(a.prepared / "questions.jsonl", a.prepared / "candidates.jsonl"),
                Path(tmp) / arm,
                batch_size=64,
                batch_tokens=2048,
                max_length=a.max_length,
                pooling="mean",
                threads=a.threads,
                precision=precision or "fp32",
                engine=engine,
            )
            result[arm] = {
                "seconds": meta["encode_seconds"],
                "precision": meta.get("precision"),
                "mAP": settings(Path(tmp) / arm, questions, candidates, qrels),
            }
        reference, other = a.arms
        cosines = np.concatenate(
            [
                (np.load(Path(tmp) / reference / f) * np.load(Path(tmp) / other / f)).sum(axis=1)
                for f in ("questions.npy", "candidates.npy")
            ]
        )
    result["cosine"] = {"min": float(cosines.min()), "mean": float(cosines.mean())}
    result[f"mAP difference ({other} - {reference})"] = {
        k: result[other]["mAP"][k] - result[reference]["mAP"][k] for k in result[reference]["mAP"]
    }
    print(json.dumps(result, indent=2))
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
