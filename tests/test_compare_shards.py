"""`xlir compare-shards`: a rerun's per-query scores against the shard it reruns (no Snakemake)."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import pytest

from xlir.common.io import InputError, write_json
from xlir.shard.compare_shards import compare_shards, summary_text, write_rows

HEADER = "setting\tquery_lang\tcand_lang\tqid\tap\trecall_1\trank_distance\n"
ROWS = [
    ("monolingual", "en", "en", "q1", 1.0, 1.0, ""),
    ("monolingual", "en", "en", "q2", 0.5, 0.0, ""),
    ("cross-lingual", "en", "de", "q1", 0.25, 0.0, "2"),
    ("cross-lingual", "en", "de", "q2", 1.0, 1.0, "0"),
]
RUN = "runs/m/uniform/hybrid/seed13"


def _shard(folder: Path, rows=ROWS, design_hash="abc", design=None, precision="bf16", seed=13, cpu="AMD EPYC"):
    text = HEADER + "".join("\t".join(str(v) for v in row) + "\n" for row in rows)
    path = folder / "files" / RUN.replace("seed13", f"seed{seed}") / "b/per_query.tsv.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(gzip.compress(text.encode()))
    run_dir = RUN.replace("seed13", f"seed{seed}")
    (path.parent.parent / "train_log.tsv").write_text(
        "step\tkind\tloss\tlr\n0\tmono\t2.5\t1e-05\n1\tcross\t"
        + ("2.25" if precision == "bf16" else "2.26")
        + "\t1e-05\n"
    )
    write_json(
        folder / "manifest.json",
        {
            "shard": folder.name,
            "design_hash": design_hash,
            "design": design or {"training": {"steps": 100}},
            "config": {"report": {"min_effect": 0.01}},
            "runs": [{"model": "m", "variant": "uniform", "sampling": "hybrid", "seed": seed}],
            "files": [{"path": f"{run_dir}/b/per_query.tsv.gz", "sha256": "-", "bytes": 0}],
            "machine": {"host": "vm", "cpu": cpu, "cores": 2, "cpu_flags": {"avx2": True}},
            "precision": {"train": {run_dir: precision}, "encode": {f"{run_dir}/b": f"{precision}/torch"}},
        },
    )
    return folder


def test_an_identical_rerun_passes_and_says_so(tmp_path):
    rows, summary = compare_shards(_shard(tmp_path / "a"), _shard(tmp_path / "b"))
    assert {(r["setting"], r["metric"]) for r in rows} == {
        (s, m) for s in ("monolingual", "cross-lingual") for m in ("ap", "recall_1")
    } | {("cross-lingual", "rank_distance")}  # a metric empty in a setting is left out, not zero
    assert summary["failed"] == [] and summary["tolerance"] == 0.005  # half of report.min_effect
    assert all(r["max_abs_query_diff"] == 0 and r["share_changed"] == 0 for r in rows)
    text = summary_text(rows, summary)
    assert "Every per-query value is identical" in text and "passed" in text
    assert "train bf16, encode bf16/torch" in text
    assert summary["training"]["m/uniform/hybrid/seed13"]["first_differing_step"] is None


def test_a_drifted_rerun_reports_the_moved_queries_and_fails_over_the_tolerance(tmp_path):
    moved = [ROWS[0], ("monolingual", "en", "en", "q2", 0.48, 0.0, ""), *ROWS[2:]]
    a, b = _shard(tmp_path / "a"), _shard(tmp_path / "b", rows=moved, precision="fp32", cpu="Intel Xeon")
    rows, summary = compare_shards(a, b)
    ap = next(r for r in rows if r["setting"] == "monolingual" and r["metric"] == "ap")
    assert ap["delta"] == pytest.approx(-0.01) and ap["max_abs_query_diff"] == pytest.approx(0.02)
    assert ap["share_changed"] == 0.5 and ap["precision_b"] == "train fp32, encode fp32/torch"
    assert summary["failed"] == [ap]
    assert "FAILED (1 row(s) over it)" in summary_text(rows, summary) and "Intel Xeon" in summary_text(rows, summary)
    training = summary["training"]["m/uniform/hybrid/seed13"]
    assert training["first_differing_step"] == 1 and training["max_abs_loss_diff"] == pytest.approx(0.01)
    assert "| m/uniform/hybrid/seed13 | 2 | 1 | 0.010000 | 2.250000 / 2.260000 |" in summary_text(rows, summary)
    _, loose = compare_shards(a, b, tolerance=0.02)
    assert loose["failed"] == []
    write_rows(rows, tmp_path / "rows.tsv")
    assert (tmp_path / "rows.tsv").read_text().splitlines()[0].startswith("run\tbenchmark\tsetting\tmetric")


def test_the_check_refuses_what_is_not_a_rerun(tmp_path):
    a = _shard(tmp_path / "a")
    with pytest.raises(InputError, match="config keys that differ: training.steps"):
        compare_shards(a, _shard(tmp_path / "b", design_hash="xyz", design={"training": {"steps": 200}}))
    with pytest.raises(InputError, match="share no \\(run, seed\\)"):
        compare_shards(a, _shard(tmp_path / "c", seed=42))
    with pytest.raises(InputError, match="1 only in the first, 0 only in the second"):
        compare_shards(a, _shard(tmp_path / "d", rows=ROWS[1:]))
    with pytest.raises(InputError, match="not a shard"):
        compare_shards(a, tmp_path / "missing")


def test_the_command_exits_non_zero_when_the_rerun_drifts(tmp_path):
    moved = [("monolingual", "en", "en", "q1", 0.5, 0.0, ""), *ROWS[1:]]
    a, b = _shard(tmp_path / "a"), _shard(tmp_path / "b", rows=moved)
    command = [sys.executable, "-m", "xlir.cli", "compare-shards", str(a), str(b)]
    drifted = subprocess.run(command, capture_output=True, text=True)
    assert drifted.returncode == 1 and "FAILED" in drifted.stdout
    same = subprocess.run([*command[:-1], str(a), "--out", str(tmp_path / "r.tsv")], capture_output=True, text=True)
    assert same.returncode == 0 and "passed" in same.stdout and (tmp_path / "r.tsv").is_file()


def test_the_rank_distance_is_listed_but_not_judged_against_a_score_tolerance(tmp_path):
    moved = [*ROWS[:2], ("cross-lingual", "en", "de", "q1", 0.25, 0.0, "40"), ROWS[3]]
    rows, summary = compare_shards(_shard(tmp_path / "a"), _shard(tmp_path / "b", rows=moved))
    distance = next(r for r in rows if r["metric"] == "rank_distance")
    assert distance["delta"] == 19 and summary["failed"] == []
    text = summary_text(rows, summary)
    assert "rank_distance (listed in --out, not judged): largest |Δ| of a mean 19.0000" in text
    assert "A (" in text and "B (" in text  # both machines, even when the shards share a name
