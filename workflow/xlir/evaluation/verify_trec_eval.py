"""Agreement of our metrics with Pyserini's `trec_eval` on a run's TREC files.

For every `{qlang}-{clang}.trec` file of a run, the queries and relevant
documents our evaluation uses for that file (the `qlang` questions and their
relevant candidates in the `clang` pool) are written to one combined qrels and
one combined run, query ids prefixed by the file name, and Pyserini's
`trec_eval` (jtrec_eval, `-c -q`, the 2CR flags for nDCG: `-M 100`) scores them
in a single call. Per file, the mean of trec_eval's per-query values (printed
with 4 decimals) is compared with our evaluation of the same file; the check
fails when any difference exceeds the tolerance (1e-4).

A second comparison checks the relevant-rank files (the full-depth metrics of
the report) against the TREC files where both must agree whatever the TREC
depth: Recall@k and nDCG@k for k <= the TREC depth."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from xlir.benchmarks.qrels import read_qrels_graded
from xlir.common.io import InputError, get_logger, write_json
from xlir.evaluation.evaluate import EvaluationResult, evaluate_ranks_dir, evaluate_run_dir
from xlir.retrieval.trec import read_trec_run

log = get_logger(__name__)

TOLERANCE = 1e-4


def _measures(recall_ks: tuple[int, ...], ndcg_ks: tuple[int, ...]) -> list[str]:
    args = ["-m", "map", "-m", "recall." + ",".join(str(k) for k in recall_ks)]
    if ndcg_ks:
        args += ["-M", "100", "-m", "ndcg_cut." + ",".join(str(k) for k in ndcg_ks)]
    return args


def run_trec_eval(
    qrels: Path, run: Path, measures: list[str], log_path: str | None = None
) -> dict[str, dict[str, float]]:
    """Per-query values `{measure: {qid: value}}` from Pyserini's trec_eval (`-c -q`)."""
    command = [
        sys.executable,
        "-m",
        "xlir.common.pyserini_run",
        "pyserini.eval.trec_eval",
        "-c",
        "-q",
        *measures,
        str(qrels),
        str(run),
    ]
    completed = subprocess.run(command, capture_output=True, text=True)
    if log_path:
        with open(log_path, "a", encoding="utf-8") as handle:
            handle.write(f"$ {' '.join(command)}\n{completed.stderr[-5000:]}\n")
    if completed.returncode != 0:
        raise RuntimeError(f"trec_eval failed ({completed.returncode}): {completed.stderr[-3000:]}")
    values: dict[str, dict[str, float]] = {}
    for line in completed.stdout.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[1] != "all":
            try:
                values.setdefault(fields[0], {})[fields[1]] = float(fields[2])
            except ValueError:
                continue
    return values


def _our_values(
    ours: EvaluationResult, recall_ks: tuple[int, ...], ndcg_ks: tuple[int, ...]
) -> tuple[dict[str, dict[str, list[float]]], dict[str, set[str]]]:
    """Per run file, our per-query values of each measure (named as trec_eval names
    them), and the prefixed ids of the queries without a line in that file."""
    per_file_ours: dict[str, dict[str, list[float]]] = {}
    absent: dict[str, set[str]] = {}  # queries without a line in the run: trec_eval -c counts them as 0
    for query in ours.queries:
        if query.missing_from_run:
            absent.setdefault(query.pair, set()).add(f"{query.pair}|{query.qid}")
        entry = per_file_ours.setdefault(query.pair, {})
        entry.setdefault("map", []).append(query.ap)
        for k in recall_ks:
            entry.setdefault(f"recall_{k}", []).append(query.recall[k])
        for k in ndcg_ks:
            entry.setdefault(f"ndcg_cut_{k}", []).append(query.ndcg[k])
    return per_file_ours, absent


def _write_combined(
    qrels_out: Path, run_out: Path, ours: EvaluationResult, graded: dict[str, dict[str, int]], trec_dir: Path
) -> None:
    """Write the combined qrels (each evaluated query's relevant documents in its
    pool) and the combined run of every TREC file, query ids prefixed by the file name."""
    with open(qrels_out, "w", encoding="utf-8") as q_handle, open(run_out, "w", encoding="utf-8") as r_handle:
        for query in ours.queries:
            prefix = "" if query.cand_lang == "all" else f"{query.cand_lang}:"
            for docid, rel in sorted(graded[query.qid].items()):
                if docid.startswith(prefix):
                    q_handle.write(f"{query.pair}|{query.qid} 0 {docid} {rel}\n")
        for path in sorted(trec_dir.glob("*.trec")):
            for qid, hits in read_trec_run(path).items():
                for rank, (docid, score) in enumerate(hits, start=1):
                    r_handle.write(f"{path.stem}|{qid} Q0 {docid} {rank} {score!r} check\n")


def _trec_eval_values(
    trec_dir: Path,
    ours: EvaluationResult,
    graded: dict[str, dict[str, int]],
    recall_ks: tuple[int, ...],
    ndcg_ks: tuple[int, ...],
    log_path: str | None,
) -> dict[str, dict[str, float]]:
    """trec_eval's per-query values `{measure: {prefixed qid: value}}` over the combined qrels and run."""
    with tempfile.TemporaryDirectory(prefix="xlir-trec-eval-") as tmp:
        qrels_out, run_out = Path(tmp) / "qrels.txt", Path(tmp) / "run.trec"
        _write_combined(qrels_out, run_out, ours, graded, trec_dir)
        return run_trec_eval(qrels_out, run_out, _measures(recall_ks, ndcg_ks), log_path)


def _compare_files(
    per_file_ours: dict[str, dict[str, list[float]]],
    absent: dict[str, set[str]],
    reference: dict[str, dict[str, float]],
) -> tuple[dict[str, dict], float]:
    """Per file and measure, our mean vs trec_eval's (absent queries counted as 0),
    and the largest absolute difference."""
    files, worst = {}, 0.0
    for pair, metrics in sorted(per_file_ours.items()):
        row = {}
        for name, values in metrics.items():
            printed = {qid: v for qid, v in reference.get(name, {}).items() if qid.startswith(f"{pair}|")}
            if set(printed) & absent.get(pair, set()):
                raise RuntimeError(f"{pair}: trec_eval scored queries that are not in the run")
            theirs = list(printed.values()) + [0.0] * len(absent.get(pair, ()))
            if len(theirs) != len(values):
                raise RuntimeError(
                    f"{pair}: trec_eval scored {len(theirs)} queries for {name}, we scored {len(values)}"
                )
            ours_mean, theirs_mean = sum(values) / len(values), sum(theirs) / len(theirs)
            difference = abs(ours_mean - theirs_mean)
            worst = max(worst, difference)
            row[name] = {
                "ours": round(ours_mean, 6),
                "trec_eval": round(theirs_mean, 6),
                "abs_diff": float(f"{difference:.2e}"),
            }
        files[pair] = row
    return files, worst


def _ranks_vs_trec(
    ours: EvaluationResult,
    full: EvaluationResult,
    recall_ks: tuple[int, ...],
    ndcg_ks: tuple[int, ...],
    trec_depth: int | None,
) -> tuple[list[str], float]:
    """The measures the TREC depth does not affect, and the largest difference in
    them between the ranks files (full depth) and the TREC files, over all settings."""
    depth_free = [f"recall_{k}" for k in recall_ks if trec_depth is None or k <= trec_depth]
    depth_free += [f"ndcg_cut_{k}" for k in ndcg_ks if trec_depth is None or k <= trec_depth]
    if trec_depth is None:
        depth_free.append("map")
    ranks_vs_trec = 0.0
    for setting, summary in ours.metrics["settings"].items():
        for name in depth_free:
            a, b = summary.get(name), full.metrics["settings"][setting].get(name)
            if a is not None and b is not None:
                ranks_vs_trec = max(ranks_vs_trec, abs(a - b))
    return depth_free, ranks_vs_trec


def check_run(
    trec_dir: str | Path,
    ranks_dir: str | Path,
    qrels_path: str | Path,
    out_json: str | Path,
    recall_ks: tuple[int, ...] = (1, 10),
    ndcg_ks: tuple[int, ...] = (),
    trec_depth: int | None = None,
    log_path: str | None = None,
    tolerance: float = TOLERANCE,
) -> dict:
    started = time.perf_counter()
    trec_dir, ranks_dir = Path(trec_dir), Path(ranks_dir)
    ours = evaluate_run_dir(trec_dir, qrels_path, recall_ks, ndcg_ks)
    full = evaluate_ranks_dir(ranks_dir, qrels_path, recall_ks, ndcg_ks)
    graded = read_qrels_graded(qrels_path)
    per_file_ours, absent = _our_values(ours, recall_ks, ndcg_ks)
    reference = _trec_eval_values(trec_dir, ours, graded, recall_ks, ndcg_ks, log_path)
    files, worst = _compare_files(per_file_ours, absent, reference)
    # ranks files (full depth) vs TREC files: equal where the TREC depth does not matter
    depth_free, ranks_vs_trec = _ranks_vs_trec(ours, full, recall_ks, ndcg_ks, trec_depth)
    result = {
        "trec_dir": str(trec_dir),
        "ranks_dir": str(ranks_dir),
        "qrels": str(qrels_path),
        "files": len(files),
        "queries": len(ours.queries),
        "tolerance": tolerance,
        "max_abs_diff_vs_trec_eval": float(f"{worst:.2e}"),
        "ranks_vs_trec_measures": depth_free,
        "max_abs_diff_ranks_vs_trec": float(f"{ranks_vs_trec:.2e}"),
        "passed": worst <= tolerance and ranks_vs_trec <= 1e-9,
        "seconds": round(time.perf_counter() - started, 1),
        "per_file": files,
    }
    write_json(out_json, result)
    log.info(
        "trec_eval agreement on %d files, %d queries: max |diff| %.2e; ranks vs TREC %.2e (%s)",
        len(files),
        len(ours.queries),
        worst,
        ranks_vs_trec,
        "passed" if result["passed"] else "FAILED",
    )
    if not result["passed"]:
        raise InputError(
            f"{trec_dir}: our metrics disagree with trec_eval (max |diff| {worst:.2e}) or with "
            f"the rank files ({ranks_vs_trec:.2e}); see {out_json}"
        )
    return result
