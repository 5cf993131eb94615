"""The cost plan (`xlir plan-time`): the dry run's jobs, their estimates from measured benchmark
files (exact, rule+target, rule, unmeasured), the list schedule on N cores, and the command on
the default config's real `snakemake -n`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from xlir.common.io import InputError
from xlir.report.plan_time import (
    PlannedJob,
    dependencies,
    estimate_jobs,
    parse_dry_run,
    plan_time,
    read_measured,
    schedule,
)

REPO = Path(__file__).resolve().parents[1]
HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"

DRY_RUN = """Building DAG of jobs...
Job stats:
job      count
-----  -------
all          1
total        4

[Tue Dec  1 05:51:12 2026]
rule prepare:
    input: raw.txt
    output: results/data/clean.txt
    log: results/logs/prepare.log
    jobid: 3
    benchmark: results/timing/prepare.tsv
    reason: Missing output files: results/data/clean.txt
    resources: tmpdir=/tmp
Shell command: xlir prepare

[Tue Dec  1 05:51:12 2026]
rule train:
    input: results/data/clean.txt
    output: results/runs/m/v.lr1e-05/s/seed13/model, results/runs/m/v.lr1e-05/s/seed13/summary.json
    jobid: 2
    benchmark: results/timing/train/m/v.lr1e-05/s/seed13.tsv
    wildcards: model=m
    threads: 2
    resources: tmpdir=/tmp
Shell command: xlir train

[Tue Dec  1 05:51:12 2026]
rule encode:
    input: results/runs/m/v.lr1e-05/s/seed13/model, results/data/clean.txt
    output: results/runs/m/v.lr1e-05/s/seed13/xquad-r/embeddings
    jobid: 1
    benchmark: results/timing/encode/m/v.lr1e-05/s/seed13/xquad-r.tsv
Shell command: xlir encode

[Tue Dec  1 05:51:12 2026]
localrule all:
    input: results/runs/m/v.lr1e-05/s/seed13/xquad-r/embeddings
    jobid: 0
    reason: Input files updated by another job
    resources: tmpdir=/tmp
Shell command: None
This was a dry-run (flag -n). The order of jobs does not reflect the order of execution.
"""


def _bench(root: Path, key: str, seconds: float) -> None:
    path = root / f"{key}.tsv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + f"{seconds}\t0:00:01\t100\t200\t90\t95\t0\t0\t90\t{seconds}\n", encoding="utf-8")


def test_the_dry_run_gives_each_job_with_its_benchmark_threads_and_files():
    jobs = {job.rule: job for job in parse_dry_run(DRY_RUN)}
    assert set(jobs) == {"prepare", "train", "encode"}  # `all`: no output, no benchmark, no work
    assert jobs["train"].threads == 2 and jobs["encode"].threads == 1
    assert jobs["train"].timing_key == "train/m/v.lr1e-05/s/seed13"
    assert jobs["prepare"].timing_key == "prepare"
    assert jobs["encode"].inputs == ("results/runs/m/v.lr1e-05/s/seed13/model", "results/data/clean.txt")
    needs = dependencies(list(jobs.values()))
    assert needs[jobs["encode"].jobid] == {jobs["train"].jobid, jobs["prepare"].jobid}
    assert needs[jobs["train"].jobid] == {jobs["prepare"].jobid}


def test_each_estimate_comes_from_the_closest_measurement_and_says_which(tmp_path):
    _bench(tmp_path, "encode/m/v.lr1e-05/s/seed13/xquad-r", 500)  # this very job
    _bench(tmp_path, "train/m/uniform/s/seed13", 100)  # same rule, same last wildcard
    _bench(tmp_path, "train/m/uniform/s/seed42", 300)
    _bench(tmp_path, "train/m/decay/s/seed13", 200)
    measured = read_measured([tmp_path])
    estimates = {e.job.rule: e for e in estimate_jobs(parse_dry_run(DRY_RUN), measured)}
    assert (estimates["encode"].seconds, estimates["encode"].source) == (500, "exact")
    assert (estimates["train"].seconds, estimates["train"].source) == (150, "rule+target")
    assert (estimates["prepare"].seconds, estimates["prepare"].source) == (0, "unmeasured")
    # a rule measured, but not for this last wildcard: the rule's mean
    other = PlannedJob(9, "train", "results/timing/train/m/v/s/seed87.tsv")
    (estimate,) = estimate_jobs([other], measured)
    assert (estimate.seconds, estimate.source) == (200, "rule")
    # a rule that writes another rule's benchmark files (train_at_selected_lr: train's) reads them
    derived = PlannedJob(10, "train_at_selected_lr", "results/timing/train/m/v/s/seed42.tsv")
    (estimate,) = estimate_jobs([derived], measured)
    assert (estimate.seconds, estimate.source) == (300, "rule+target")


def test_the_schedule_fills_the_cores_and_respects_dependencies():
    def job(jobid, threads=1, inputs=(), outputs=()):
        return PlannedJob(jobid, f"r{jobid}", f"results/timing/r{jobid}.tsv", threads, inputs, outputs)

    chain = [job(1, outputs=("a",)), job(2, inputs=("a",), outputs=("b",)), job(3, outputs=("c",))]
    seconds = {1: 10.0, 2: 10.0, 3: 20.0}
    from xlir.report.plan_time import Estimate

    estimates = [Estimate(j, seconds[j.jobid], "exact") for j in chain]
    assert schedule(estimates, 2) == (20.0, 20.0)  # the chain beside the long job
    assert schedule(estimates, 1) == (40.0, 20.0)
    # a 2-thread job holds both cores: nothing runs beside it
    wide = [
        Estimate(job(1, threads=2), 10.0, "exact"),
        Estimate(job(2), 10.0, "exact"),
        Estimate(job(3), 10.0, "exact"),
    ]
    assert schedule(wide, 2)[0] == 20.0
    with pytest.raises(InputError, match="--cores"):
        schedule(estimates, 0)


def test_bad_timing_input_names_the_folder_or_file(tmp_path):
    assert read_measured([tmp_path / "missing"]) == {}  # a study not run yet: every job unmeasured
    (tmp_path / "file").write_text("", encoding="utf-8")
    with pytest.raises(InputError, match="not a folder"):
        read_measured([tmp_path / "file"])
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "x.tsv").write_text("seconds\n3\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"x\.tsv.*column 's'"):
        read_measured([tmp_path])
    with pytest.raises(InputError, match="no jobs"):
        plan_time("Nothing to be done.", [], 2)


def test_plan_time_on_the_default_configs_dry_run(tmp_path):
    """The command as the README runs it: a real `snakemake -n` of the default config, with
    timings of two rules; every other rule is listed as unmeasured."""
    timing = tmp_path / "timing"
    _bench(timing, "train/e5-small/uniform/hybrid/seed13", 120.0)
    _bench(timing, "encode/e5-small/zeroshot/none/seed0/demo", 30.0)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "workflow"), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-m", "xlir.cli", "plan-time", "--snakefile", str(REPO / "Snakefile"),
         "--directory", str(tmp_path / "study"), "--timings", str(timing), "--cores", "2", "--json"],
        capture_output=True, text=True, timeout=300, env=env, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    plan = json.loads(done.stdout)
    rules = {row["rule"]: row for row in plan["rules"]}
    assert rules["train"]["jobs"] >= 10 and rules["train"]["mean s"] == 120.0
    assert rules["encode"]["mean s"] == 30.0 and "exact" in rules["encode"]["estimated from"]
    assert "report" in plan["unmeasured_rules"] and "all" not in rules
    cpu = sum(row["total s"] for row in plan["rules"])
    assert plan["cpu_s"] == pytest.approx(cpu, abs=1)
    assert plan["lower_bound_cores_s"] <= plan["projected_wall_s"] <= cpu
    assert plan["critical_path_s"] <= plan["projected_wall_s"]
    assert not (tmp_path / "study" / "results").exists()  # a dry run writes no results
