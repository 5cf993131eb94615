"""Does a rerun reproduce a shard? (`xlir compare-shards A B`): two exports of the same design
that share (run, seed)s, typically one seed rerun on another machine, compared per query.

For every shared run and benchmark, the per-query tables are joined on (setting, query
language, candidate language, question id) and compared metric by metric: the mean on each
side, its difference, the largest per-query difference and the share of queries whose value
moved. Each row names the precision each side trained and encoded with, and the machines are
listed, so a difference can be read against its cause (bf16 against fp32, another CPU's
kernels). A mean score (mAP, Recall@k, nDCG@k) that moved by more than `tolerance` fails the
check; the default is half the study's minimum effect (`report.min_effect`), the largest drift
that cannot flip a verdict row by itself. The rank distance, on a scale of ranks, is listed but
not judged. The training logs of the shared runs are compared step by step too."""

from __future__ import annotations

import csv
import gzip
import math
from dataclasses import dataclass
from pathlib import Path

from xlir.common.io import InputError, atomic_open
from xlir.report.grid import KEY_COLUMNS
from xlir.report.shards import read_manifest, refuse_other_design, run_key

#: a per-query value that moved by less than this counts as unchanged (float printing noise)
UNCHANGED = 1e-9
#: metrics on another scale than the scores in [0, 1] that min_effect is stated for: listed, not judged
NOT_JUDGED = ("rank_distance",)


@dataclass(frozen=True)
class Shard:
    folder: Path
    manifest: dict

    @property
    def name(self) -> str:
        return str(self.manifest.get("shard") or self.folder.name)

    def run_dirs(self) -> dict[tuple[str, str, str, str], str]:
        """{(model, variant, sampling, seedN): 'runs/model/variant/sampling/seedN'}."""
        return {run_key(run): "/".join(("runs", *run_key(run))) for run in self.manifest.get("runs", [])}

    def per_query_files(self, run_dir: str) -> dict[str, Path]:
        """{benchmark: per-query file} of one run (exported compressed)."""
        out = {}
        for entry in self.manifest.get("files", []):
            path = entry["path"]
            if path.startswith(run_dir + "/") and path.endswith(("/per_query.tsv.gz", "/per_query.tsv")):
                benchmark = path[len(run_dir) + 1 :].split("/")[0]
                out[benchmark] = self.folder / "files" / path
        return out

    def precision_of(self, run_dir: str, benchmark: str) -> str:
        precision = self.manifest.get("precision") or {}
        train = (precision.get("train") or {}).get(run_dir, "-")
        encode = (precision.get("encode") or {}).get(f"{run_dir}/{benchmark}", "-")
        return f"train {train}, encode {encode}"


def read_shard(folder: Path) -> Shard:
    manifest = read_manifest(folder)
    return Shard(manifest.pop("folder"), manifest)


def read_scores(path: Path) -> tuple[list[str], dict[tuple, dict[str, float]]]:
    """(metric columns, {(setting, query_lang, cand_lang, qid): {metric: value}})."""
    if not path.is_file():
        raise InputError(f"{path}: listed in the shard's manifest.json but missing")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        columns = reader.fieldnames or []
        missing = [c for c in KEY_COLUMNS if c not in columns]
        if missing:
            raise InputError(f"{path}: per-query table lacks column(s) {', '.join(missing)}")
        metrics = [c for c in columns if c not in KEY_COLUMNS]
        rows: dict[tuple, dict[str, float]] = {}
        for line, record in enumerate(reader, start=2):
            key = tuple(record[c] for c in KEY_COLUMNS)
            if key in rows:
                raise InputError(f"{path}: line {line}: query {'/'.join(key)} appears twice")
            rows[key] = {m: float(record[m]) if record[m] not in ("", None) else math.nan for m in metrics}
    return metrics, rows


def compare_tables(a_path: Path, b_path: Path) -> list[dict]:
    """One row per (setting, metric): means, their difference, largest per-query difference."""
    metrics_a, a = read_scores(a_path)
    metrics_b, b = read_scores(b_path)
    if set(a) != set(b):
        only_a, only_b = len(set(a) - set(b)), len(set(b) - set(a))
        raise InputError(
            f"{a_path} and {b_path} score different queries ({only_a} only in the first, {only_b} only in "
            "the second): the benchmark or its preparation differs, not the numbers"
        )
    rows = []
    for setting in sorted({k[0] for k in a}):
        keys = [k for k in a if k[0] == setting]
        for metric in [m for m in metrics_a if m in metrics_b]:
            pairs = [(a[k][metric], b[k][metric]) for k in keys]
            pairs = [(x, y) for x, y in pairs if not (math.isnan(x) and math.isnan(y))]
            if not pairs:
                continue
            if any(math.isnan(x) != math.isnan(y) for x, y in pairs):
                raise InputError(f"{a_path} and {b_path}: {setting} {metric} is empty on one side only")
            diffs = [abs(x - y) for x, y in pairs]
            mean_a = sum(x for x, _ in pairs) / len(pairs)
            mean_b = sum(y for _, y in pairs) / len(pairs)
            rows.append(
                {
                    "setting": setting,
                    "metric": metric,
                    "queries": len(pairs),
                    "mean_a": mean_a,
                    "mean_b": mean_b,
                    "delta": mean_b - mean_a,
                    "max_abs_query_diff": max(diffs),
                    "share_changed": sum(d > UNCHANGED for d in diffs) / len(pairs),
                }
            )
    return rows


def compare_train_logs(a_path: Path, b_path: Path) -> dict | None:
    """Where two runs' training diverged: the first step whose loss differs, the largest loss
    difference and the final losses (None when either side has no train_log.tsv)."""
    if not a_path.is_file() or not b_path.is_file():
        return None
    logs = []
    for path in (a_path, b_path):
        with open(path, encoding="utf-8", newline="") as handle:
            logs.append({int(r["step"]): float(r["loss"]) for r in csv.DictReader(handle, delimiter="\t")})
    steps = sorted(set(logs[0]) & set(logs[1]))
    if not steps:
        return None
    diffs = {step: abs(logs[0][step] - logs[1][step]) for step in steps}
    differing = [step for step in steps if diffs[step] > 0]
    return {
        "steps": len(steps),
        "first_differing_step": differing[0] if differing else None,
        "max_abs_loss_diff": max(diffs.values()),
        "final_loss_a": logs[0][steps[-1]],
        "final_loss_b": logs[1][steps[-1]],
    }


def default_tolerance(shard: Shard) -> float:
    min_effect = ((shard.manifest.get("config") or {}).get("report") or {}).get("min_effect")
    if min_effect is None:
        raise InputError(f"{shard.folder}: manifest.json has no config.report.min_effect; give --tolerance")
    return float(min_effect) / 2


def compare_shards(a_folder: Path, b_folder: Path, tolerance: float | None = None) -> tuple[list[dict], dict]:
    """Rows for every shared (run, benchmark, setting, metric), and a summary
    ({'tolerance', 'failed': rows over it, 'machines', 'runs'})."""
    a, b = read_shard(a_folder), read_shard(b_folder)
    refuse_other_design({**a.manifest, "folder": a.folder}, {**b.manifest, "folder": b.folder})
    runs_a, runs_b = a.run_dirs(), b.run_dirs()
    shared = [key for key in runs_a if key in runs_b]
    if not shared:
        raise InputError(
            f"{a.folder} and {b.folder} share no (run, seed): export the same seed's shard on both machines"
        )
    tolerance = default_tolerance(a) if tolerance is None else tolerance
    rows = []
    for key in shared:
        files_a, files_b = a.per_query_files(runs_a[key]), b.per_query_files(runs_b[key])
        for benchmark in sorted(set(files_a) & set(files_b)):
            for row in compare_tables(files_a[benchmark], files_b[benchmark]):
                rows.append(
                    {
                        "run": runs_a[key].removeprefix("runs/"),
                        "benchmark": benchmark,
                        **row,
                        "precision_a": a.precision_of(runs_a[key], benchmark),
                        "precision_b": b.precision_of(runs_b[key], benchmark),
                    }
                )
    if not rows:
        raise InputError(f"{a.folder} and {b.folder}: the shared runs have no per-query table in common")
    training = {}
    for key in shared:
        logs = compare_train_logs(
            a.folder / "files" / runs_a[key] / "train_log.tsv", b.folder / "files" / runs_b[key] / "train_log.tsv"
        )
        if logs is not None:
            training[runs_a[key].removeprefix("runs/")] = logs
    summary = {
        "tolerance": tolerance,
        "failed": [r for r in rows if r["metric"] not in NOT_JUDGED and abs(r["delta"]) > tolerance],
        "runs": len(shared),
        "machines": {f"A ({a.folder})": a.manifest.get("machine"), f"B ({b.folder})": b.manifest.get("machine")},
        "names": (a.name, b.name),
        "training": training,
    }
    return rows, summary


COLUMNS = [
    "run",
    "benchmark",
    "setting",
    "metric",
    "queries",
    "mean_a",
    "mean_b",
    "delta",
    "max_abs_query_diff",
    "share_changed",
    "precision_a",
    "precision_b",
]


def write_rows(rows: list[dict], path: Path) -> None:
    with atomic_open(path) as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def describe_machine(machine: dict | None) -> str:
    if not machine:
        return "(not recorded)"
    flags = ",".join(k for k, v in (machine.get("cpu_flags") or {}).items() if v)
    return f"{machine.get('host')} {machine.get('cpu')} ({machine.get('cores')} cores; {flags})"


def summary_text(rows: list[dict], summary: dict) -> str:
    """A short Markdown summary: machines, the largest differences, the verdict of the check."""
    name_a, name_b = summary["names"]
    lines = [
        f"# B {name_b} against A {name_a}: {summary['runs']} shared run(s), {len(rows)} (setting, metric) rows",
        "",
    ]
    for name, machine in summary["machines"].items():
        lines.append(f"- {name}: {describe_machine(machine)}")
    lines += ["", "| run | benchmark | setting | metric | A | B | Δ | max per-query | changed | precision A / B |"]
    lines.append("|---|---|---|---|---:|---:|---:|---:|---:|---|")
    judged = [r for r in rows if r["metric"] not in NOT_JUDGED]
    for r in sorted(judged, key=lambda r: -abs(r["delta"]))[:15]:
        lines.append(
            f"| {r['run']} | {r['benchmark']} | {r['setting']} | {r['metric']} | {r['mean_a']:.4f} | "
            f"{r['mean_b']:.4f} | {r['delta']:+.5f} | {r['max_abs_query_diff']:.4f} | {r['share_changed']:.1%} | "
            f"{r['precision_a']} / {r['precision_b']} |"
        )
    if summary.get("training"):
        lines += [
            "",
            "| run | training steps | first step whose loss differs | largest loss difference | final loss A / B |",
        ]
        lines.append("|---|---:|---:|---:|---|")
        for run, t in summary["training"].items():
            first = "none" if t["first_differing_step"] is None else str(t["first_differing_step"])
            lines.append(
                f"| {run} | {t['steps']} | {first} | {t['max_abs_loss_diff']:.6f} | "
                f"{t['final_loss_a']:.6f} / {t['final_loss_b']:.6f} |"
            )
    worst = max((abs(r["delta"]) for r in judged), default=0.0)
    identical = all(r["max_abs_query_diff"] <= UNCHANGED for r in rows)
    lines.append("")
    if identical:
        lines.append("Every per-query value is identical.")
    for metric in NOT_JUDGED:
        listed = [abs(r["delta"]) for r in rows if r["metric"] == metric]
        if listed:
            lines.append(f"{metric} (listed in --out, not judged): largest |Δ| of a mean {max(listed):.4f}.")
    failed = summary["failed"]
    verdict = "FAILED" if failed else "passed"
    lines.append(
        f"Largest |Δ| of a mean score ({', '.join(sorted({r['metric'] for r in judged}))}): {worst:.5f}; "
        f"tolerance {summary['tolerance']:g}: {verdict}" + (f" ({len(failed)} row(s) over it)" if failed else "")
    )
    return "\n".join(lines)
