"""Cluster execution: the paper-scale config dry-runs through the SLURM profile.

`snakemake -n --profile profiles/slurm --configfile config/paper.yaml` must build the whole
DAG with snakemake-executor-plugin-slurm (nothing is submitted in a dry run), and the train
jobs of a multi-GPU model must ask SLURM for N GPUs on one node and run torchrun with N
processes; single-GPU and CPU models keep the plain `xlir train` command."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]


def _dry_run(workdir: Path, *args: str) -> str:
    done = subprocess.run(
        [*SNAKEMAKE, "-d", str(workdir), "-n", "-p", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    if done.returncode != 0:
        raise AssertionError(f"dry run failed ({done.returncode}):\n{done.stdout[-6000:]}")
    return done.stdout


def _train_jobs(output: str) -> dict[str, dict]:
    """Run folder -> {resources, shell} of every train job in a dry run's printout."""
    jobs = {}
    for block in output.split("\nrule train:")[1:]:
        block = re.split(r"\n(?:local)?rule \w+:|\nJob stats:", block)[0]
        run = re.search(r"results/runs/([^ ,]+)/model", block).group(1)
        resources = dict(re.findall(r"(\w+)=([^,\n]+)", re.search(r"resources: (.*)", block).group(1)))
        shell = re.search(r"Shell command: (.*)", block).group(1)
        jobs[run] = {"resources": resources, "shell": shell}
    return jobs


@pytest.fixture(scope="module")
def paper_dry_run(tmp_path_factory) -> str:
    pytest.importorskip("snakemake_executor_plugin_slurm")
    return _dry_run(
        tmp_path_factory.mktemp("paper"),
        "--profile",
        str(REPO / "profiles" / "slurm"),
        "--configfile",
        str(REPO / "config" / "paper.yaml"),
    )


def test_paper_config_dry_run_through_slurm_profile(paper_dry_run):
    assert "This was a dry-run" in paper_dry_run
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", paper_dry_run.split("Job stats:")[-1], re.MULTILINE))
    # the sweep: 4 models x 10 swept cells (uniform x 3 samplings, 3 profiles, 4 LoRA) x 3 lrs x selection
    # seed 7; then each of the 5 test seeds trains every cell once at its selected lr, and each of the 3
    # mean-lr-matched controls (never swept) at its target's
    assert int(counts["train"]) == 4 * 10 * 3
    assert int(counts["train_at_selected_lr"]) == 4 * 10 * 5
    assert int(counts["train_follower_at_selected_lr"]) == 4 * 3 * 5
    assert int(counts["select_lr"]) == 4 * 13 and "link_selected_run" not in counts
    assert int(counts["prepare_model"]) == 4


def test_multi_gpu_training_job_is_one_node_with_torchrun(paper_dry_run):
    jobs = _train_jobs(paper_dry_run)
    xl = jobs["xlmr-xl/uniform.lr3e-05/hybrid/seed7"]
    assert xl["resources"]["gpu"] == "4" and xl["resources"]["nodes"] == "1"
    assert xl["resources"]["slurm_partition"] == "gpu" and xl["resources"]["gpu_model"] == "h100"
    assert "tasks" not in xl["resources"]  # with GPUs the plugin would turn it into --ntasks-per-gpu
    assert int(xl["resources"]["cpus_per_task"]) == 4 * 8  # 4 processes x 8 threads
    assert xl["shell"].startswith("exec torchrun --standalone --nproc-per-node 4 -m xlir.cli train ")
    assert '"strategy": "fsdp"' in xl["shell"] and "--log " not in xl["shell"]
    base = jobs["xlmr-base/lora-linear.lr0.0001/hybrid/seed7"]
    assert base["resources"]["gpu"] == "1" and base["shell"].startswith("exec xlir train ")
    assert '"precision": "bf16"' in base["shell"] and "--device cuda" in base["shell"]
    # GPU jobs get their runtime and host memory from the planner
    assert int(xl["resources"]["mem_mb"]) > int(base["resources"]["mem_mb"])


def test_default_config_train_command_unchanged(tmp_path):
    """The embedded default still trains with the plain single-process command and no new options."""
    output = _dry_run(tmp_path, "--configfile", str(REPO / "config" / "config.yaml"), "--cores", "2")
    jobs = _train_jobs(output)
    assert jobs
    for job in jobs.values():
        assert job["shell"].startswith("exec xlir train ") and "--log results/logs/train/" in job["shell"]
        # every switch at the schema's default (precision auto: bf16 only where the CPU has bf16
        # instructions) is left out of the command
        assert "nproc_per_node" not in job["shell"] and "precision" not in job["shell"]
        assert job["resources"]["gpu"] == "0" and job["resources"]["mem_mb"] == "6000"
