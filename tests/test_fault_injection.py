"""Fault injection: kills, signals, a second writer and a full disk, each asserting that nothing
completed is lost and no half-written output remains.

- train killed by SIGKILL mid-run (a subprocess running `xlir train`, as the rule does), then rerun:
  it resumes from the newest complete checkpoint and ends with weights bit-identical to an
  uninterrupted run (max |difference| = 0 over every tensor), for full fine-tuning, LoRA and GradCache;
- train sent SIGTERM or SIGUSR1 (SLURM before the time limit, on preemption): a checkpoint after
  the current step, exit 128 + signal, rerun resumes;
- what a kill during a write leaves (`.model.*.tmp`, `.*.tsv.*.tmp`, a `.step-*.tmp` checkpoint,
  a stale lock file) is gone after the next successful run, and so are the checkpoints;
- encode killed mid-run: no partial output folder, an earlier complete one intact, rerun completes
  with the same embeddings;
- two `xlir train` on the same outputs: the second stops at once naming the first's pid, the first
  completes; two `snakemake` in one working directory: Snakemake's lock refuses the second;
- a full disk, simulated without root by RLIMIT_FSIZE in the child (a write past the limit fails
  with EFBIG; Python ignores SIGXFSZ): train whose final model write fails keeps its complete
  checkpoint and leaves no partial model, and its rerun resumes bit-identically; encode keeps the
  earlier complete embeddings;
- under Snakemake (a one-rule Snakefile that trains as the real rule does): the job's shell killed
  (it is `xlir train`, exec'd: nothing orphaned) and Snakemake killed with its job; the documented
  commands (docs/resuming.md) resume bit-identically;
- the SLURM profile (dry run): train jobs get the early SIGTERM and the profile requeues and retries.

Dropout stays on (BERT's 0.1) so that a resumed run matches only if every random state is restored."""

from __future__ import annotations

import json
import os
import re
import resource
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from xlir.common.io import write_jsonl
from xlir.retrieval.encode import encode_benchmark
from xlir.train.plan_batches import plan_batches
from xlir.train.train import train
from xlir.train.variants import parse_variant

pytest.importorskip("peft")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parents[1]
ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join([str(REPO / "workflow"), str(REPO), os.environ.get("PYTHONPATH", "")]),
    "OMP_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}
STEPS = 40
UNIFORM = {"name": "uniform", "kind": "uniform"}
LORA = {"name": "lora-linear", "kind": "lora", "profile": "linear", "rank": 4, "min_rank": 2, "alpha": 8}
TRAINING = {
    "lr": 1e-3,
    "weight_decay": 0.01,
    "temperature": 0.05,
    "warmup_ratio": 0.2,
    "max_grad_norm": 1.0,
    "freeze_word_embeddings": True,
}
CASES = {
    "full": (UNIFORM, {}),
    "lora": (LORA, {}),
    "gradcache": (UNIFORM, {"grad_cache_chunk_size": 2}),
}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fault_data")
    pairs = [
        {
            "pair_id": f"p{i}",
            "texts": {
                "en": {"question": f"what is thing {i}", "answer": f"thing {i} is water"},
                "es": {"question": f"qué es cosa {i}", "answer": f"cosa {i} es agua"},
            },
        }
        for i in range(16)
    ]
    write_jsonl(root / "pairs.jsonl", pairs)
    write_jsonl(root / "plan.jsonl", plan_batches(pairs, ["en", "es"], 0.5, 4, STEPS, seed=0))
    return {"pairs": root / "pairs.jsonl", "plan": root / "plan.jsonl"}


def _outputs(run: Path) -> dict[str, Path]:
    return {
        "model": run / "model",
        "groups": run / "param_groups.tsv",
        "log": run / "train_log.tsv",
        "summary": run / "train_summary.json",
    }


def _train_command(model: Path, data: dict, run: Path, ckpt: Path | None, variant: dict, training: dict) -> list:
    out = _outputs(run)
    command = [sys.executable, "-m", "xlir.cli", "train", "--model", str(model), "--train", str(data["pairs"])]
    command += ["--plan", str(data["plan"]), "--variant", json.dumps(variant)]
    command += ["--training", json.dumps({**TRAINING, **training}), "--seed", "3", "--max-length", "16"]
    command += ["--threads", "1", "--out-model", str(out["model"]), "--out-param-groups", str(out["groups"])]
    command += ["--out-log", str(out["log"]), "--out-summary", str(out["summary"])]
    return command + (["--checkpoint-dir", str(ckpt)] if ckpt else [])


def _run(command: list, limit_bytes: int | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    preexec = None
    if limit_bytes is not None:

        def preexec():  # a full disk: a write past this size fails with EFBIG
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=ENV, cwd=REPO, preexec_fn=preexec
    )


def _train_here(model: Path, data: dict, run: Path, variant: dict, training: dict, ckpt: Path | None = None) -> dict:
    """`xlir train` in this process (what a rerun does; a subprocess only where it is to be killed)."""
    out = _outputs(run)
    t = {**TRAINING, **training}
    return train(
        model,
        data["pairs"],
        data["plan"],
        parse_variant(variant),
        out["model"],
        out["groups"],
        out["log"],
        out["summary"],
        lr=t["lr"],
        weight_decay=t["weight_decay"],
        temperature=t["temperature"],
        warmup_ratio=t["warmup_ratio"],
        max_grad_norm=t["max_grad_norm"],
        max_length=16,
        pooling="mean",
        freeze_word_embeddings=t["freeze_word_embeddings"],
        seed=3,
        threads=1,
        options=t,
        checkpoint_dir=ckpt,
    )


@pytest.fixture(scope="module")
def reference(tiny_model_dir, data, tmp_path_factory):
    """The uninterrupted run of each case (no checkpoints), made once."""
    runs = {}

    def get(case: str) -> Path:
        if case not in runs:
            runs[case] = tmp_path_factory.mktemp(f"reference_{case}")
            _train_here(tiny_model_dir, data, runs[case], *CASES[case])
        return runs[case]

    return get


def _max_abs_difference(a: Path, b: Path) -> float:
    """Over every tensor of two saved models (the same names required)."""
    wa, wb = load_file(a / "model" / "model.safetensors"), load_file(b / "model" / "model.safetensors")
    assert sorted(wa) == sorted(wb)
    return max((wa[k].double() - wb[k].double()).abs().max().item() for k in wa)


def _checkpoints(ckpt: Path) -> list[str]:
    return sorted(p.name for p in ckpt.iterdir()) if ckpt.is_dir() else []


def _leftovers(*folders: Path) -> list[str]:
    """Temporary and lock files a writer left (none may survive a successful run)."""
    return sorted(p.name for f in folders if f.is_dir() for p in f.iterdir() if p.name.endswith((".tmp", ".lock")))


def _start(command: list, log: Path, cwd: Path = REPO) -> subprocess.Popen:
    """Start `command` in the background, its stdout and stderr going to `log` (never a full pipe)."""
    with open(log, "w") as handle:
        return subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, text=True, env=ENV, cwd=cwd)


def _wait_for(condition, process: subprocess.Popen, what: str, log: Path, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the process ended ({process.returncode}) before {what}:\n{log.read_text()[-3000:]}")
        if time.time() > deadline:
            process.kill()
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


@pytest.mark.parametrize("case", list(CASES))
def test_sigkill_mid_training_then_rerun_is_bit_identical(tiny_model_dir, data, tmp_path, reference, case):
    variant, training = CASES[case]
    reference = reference(case)
    run, ckpt = tmp_path / "run", tmp_path / "checkpoints" / "run"
    command = _train_command(tiny_model_dir, data, run, ckpt, variant, {**training, "checkpoint_every": 5})
    log = tmp_path / "killed.log"
    process = _start(command, log)
    _wait_for(lambda: any(n.startswith("step-") for n in _checkpoints(ckpt)), process, "the first checkpoint", log)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert not (run / "model").exists() and not (run / "train_summary.json").exists()
    complete = [n for n in _checkpoints(ckpt) if n.startswith("step-")]
    assert len(complete) == 1 and int(complete[0][5:]) < STEPS, _checkpoints(ckpt)

    summary = _train_here(tiny_model_dir, data, run, variant, {**training, "checkpoint_every": 5}, ckpt)
    resumed = summary["checkpoints"]["resumed_from_step"]
    assert resumed == int(complete[0][5:])
    difference = _max_abs_difference(reference, run)
    print(f"{case}: killed, resumed from step {resumed} of {STEPS}; max |weight difference| = {difference}")
    assert difference == 0.0
    assert (run / "train_log.tsv").read_text() == (reference / "train_log.tsv").read_text()
    assert not ckpt.exists() and not (tmp_path / "checkpoints").exists()  # removed once the outputs are complete
    assert _leftovers(run) == []
    if case == "lora":
        adapter = load_file(run / "model" / "adapter" / "adapter_model.safetensors")
        expected = load_file(reference / "model" / "adapter" / "adapter_model.safetensors")
        assert all(torch.equal(adapter[k], expected[k]) for k in expected)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1])
def test_stop_signal_writes_a_checkpoint_and_the_rerun_resumes(tiny_model_dir, data, tmp_path, reference, signum):
    """What SLURM sends before the time limit (`--signal`) or on preemption: stop after the current step
    with a checkpoint (none on a schedule here: checkpoint_every 0), exit 128 + signal, resume."""
    reference = reference("full")
    run, ckpt = tmp_path / "run", tmp_path / "ckpt"
    command = _train_command(tiny_model_dir, data, run, ckpt, UNIFORM, {"checkpoint_every": 0})
    log = tmp_path / "stopped.log"
    process = _start(command, log)
    _wait_for(lambda: (run / "param_groups.tsv").exists(), process, "training to start", log)
    process.send_signal(signum)
    process.wait(timeout=60)
    stderr = log.read_text()
    assert process.returncode == 128 + signum, stderr[-3000:]
    (step,) = [int(n[5:]) for n in _checkpoints(ckpt)]
    assert 0 < step < STEPS and f"{signal.Signals(signum).name} received" in stderr
    assert not (run / "model").exists()
    summary = _train_here(tiny_model_dir, data, run, UNIFORM, {"checkpoint_every": 0}, ckpt)
    assert summary["checkpoints"]["resumed_from_step"] == step
    assert _max_abs_difference(reference, run) == 0.0
    assert not ckpt.exists()


def test_leftovers_of_a_killed_write_are_removed_by_the_next_run(tiny_model_dir, data, tmp_path, caplog):
    """A kill during the final model write leaves `.model.*.tmp`; during a checkpoint write `.step-*.tmp`;
    any kill leaves the lock file. The next successful run removes them all, and its checkpoints."""
    run, ckpt = tmp_path / "run", tmp_path / "ckpt"
    (run / ".model.k1ll3d.tmp").mkdir(parents=True)
    (run / ".model.k1ll3d.tmp" / "model.safetensors").write_bytes(b"\0" * 4096)
    (run / ".train_log.tsv.x1.tmp").write_text("step\tkind\n1\tmono\n")
    (run / ".model.lock").write_text("999999\n")
    (ckpt / ".step-00000035.tmp").mkdir(parents=True)
    (ckpt / ".step-00000035.tmp" / "model.pt").write_bytes(b"\0" * 100)
    (ckpt / "step-00000030").mkdir()  # no meta.json: never complete, never read
    summary = _train_here(tiny_model_dir, data, run, UNIFORM, {"checkpoint_every": 10}, ckpt)
    assert _leftovers(run) == [] and not ckpt.exists()
    assert "removed 1 temporary file(s) a killed writer of" in caplog.text
    assert summary["checkpoints"]["written"] == 3 and summary["checkpoints"]["resumed_from_step"] == 0
    seconds = summary["checkpoints"]["seconds_per_checkpoint"]
    print(f"checkpoint overhead on the tiny model: {seconds:.3f}s per checkpoint ({STEPS} steps, 3 checkpoints)")


def test_a_second_train_on_the_same_outputs_stops_at_once(tiny_model_dir, data, tmp_path, reference):
    reference = reference("full")
    run, ckpt = tmp_path / "run", tmp_path / "ckpt"
    command = _train_command(tiny_model_dir, data, run, ckpt, UNIFORM, {"checkpoint_every": 5})
    log = tmp_path / "first.log"
    first = _start(command, log)
    lock = run / ".model.lock"
    _wait_for(lambda: lock.exists() and lock.read_text().strip(), first, "the first run to hold the lock", log)
    first.send_signal(signal.SIGSTOP)  # keep the first one mid-run, holding its lock, while the second starts
    try:
        second = _run(command)
    finally:
        first.send_signal(signal.SIGCONT)
    first.wait(timeout=120)
    assert second.returncode == 1
    assert f"another process (pid {first.pid}) is writing this training run" in second.stderr
    assert first.returncode == 0, log.read_text()[-3000:]
    assert _max_abs_difference(reference, run) == 0.0  # the second run did not disturb the first
    assert _leftovers(run) == [] and not ckpt.exists()


def test_two_snakemake_in_one_directory(tmp_path):
    """Snakemake locks its working directory: a second invocation that would write the same
    outputs is refused while the first runs (the workflow relies on that lock)."""
    # the job waits for the test's go-ahead, so the first run holds its lock however slowly the second starts
    (tmp_path / "Snakefile").write_text(
        'rule slow:\n    output: "out.txt"\n'
        '    shell: "for i in $(seq 600); do [ -f release ] && break; sleep 0.2; done; echo done > {output}"\n'
    )
    command = [sys.executable, "-m", "snakemake", "--cores", "1", "out.txt"]
    log = tmp_path / "first.log"
    first = _start(command, log, cwd=tmp_path)
    _wait_for(lambda: any((tmp_path / ".snakemake" / "locks").glob("*")), first, "Snakemake's lock", log)
    second = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    (tmp_path / "release").write_text("")
    assert second.returncode != 0 and "cannot be locked" in second.stdout + second.stderr
    first.wait(timeout=120)
    assert first.returncode == 0 and (tmp_path / "out.txt").read_text() == "done\n"


def test_full_disk_during_the_final_model_write(tiny_model_dir, data, tmp_path, reference):
    """LoRA: a checkpoint (adapter + optimizer) is small, the merged model is not. With a file size
    limit between the two, the checkpoints are written, the final model write fails (EFBIG): the job
    fails with no model folder and no temporary one, its complete checkpoint is kept, and the rerun
    with room resumes from it and ends bit-identical to an uninterrupted run."""
    reference = reference("lora")
    model_bytes = (reference / "model" / "model.safetensors").stat().st_size
    run, ckpt = tmp_path / "run", tmp_path / "ckpt"
    command = _train_command(tiny_model_dir, data, run, ckpt, LORA, {"checkpoint_every": 15})
    full = _run(command, limit_bytes=model_bytes // 2)
    assert full.returncode == 1, full.stderr[-3000:]
    assert "File too large" in full.stderr or "EFBIG" in full.stderr or "error code: 27" in full.stderr
    assert not (run / "model").exists() and _leftovers(run) == []
    complete = _checkpoints(ckpt)
    assert complete == ["step-00000030"]
    largest = max(p.stat().st_size for p in (ckpt / complete[0]).iterdir())
    assert largest < model_bytes // 2  # the checkpoints fit under the limit
    summary = _train_here(tiny_model_dir, data, run, LORA, {"checkpoint_every": 15}, ckpt)
    assert summary["checkpoints"]["resumed_from_step"] == 30
    assert _max_abs_difference(reference, run) == 0.0
    assert not ckpt.exists() and _leftovers(run) == []


def _prepared(root: Path, n: int) -> Path:
    prepared = root / "prepared"
    prepared.mkdir(parents=True)
    words = ["water", "stone", "wood", "paris", "plants", "hamlet", "oxygen", "food"]
    questions = [{"qid": f"q{i}", "text": f"what is {words[i % 8]} number {i}"} for i in range(n)]
    candidates = [{"cid": f"c{i}", "text": " ".join(words[(i + k) % 8] for k in range(1 + i % 12))} for i in range(n)]
    write_jsonl(prepared / "questions.jsonl", questions)
    write_jsonl(prepared / "candidates.jsonl", candidates)
    return prepared


def _encode_command(model: Path, prepared: Path, out: Path) -> list:
    command = [sys.executable, "-m", "xlir.cli", "encode", "--model", str(model)]
    command += ["--questions", str(prepared / "questions.jsonl"), "--candidates", str(prepared / "candidates.jsonl")]
    command += ["--batch-size", "8", "--max-length", "32", "--pooling", "mean", "--threads", "1", "--out", str(out)]
    return command


def _same_embeddings(a: Path, b: Path) -> bool:
    return all(np.array_equal(np.load(a / n), np.load(b / n)) for n in ("questions.npy", "candidates.npy")) and all(
        (a / n).read_bytes() == (b / n).read_bytes() for n in ("questions.ids", "candidates.ids")
    )


def test_encode_killed_mid_run_leaves_nothing_partial(tiny_model_dir, tmp_path):
    prepared = _prepared(tmp_path, 3000)
    reference = tmp_path / "reference"
    encode_benchmark(tiny_model_dir, prepared, reference, batch_size=8, max_length=32, pooling="mean", threads=1)
    out = tmp_path / "embeddings"
    (tmp_path / ".embeddings.k1ll3d.tmp").mkdir()  # what a kill during an earlier write left
    log = tmp_path / "killed.log"
    process = _start(_encode_command(tiny_model_dir, prepared, out), log)
    _wait_for(lambda: "%|" in log.read_text(), process, "encoding to start", log)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert not out.exists()  # nothing partial under the output's name
    encode_benchmark(tiny_model_dir, prepared, out, batch_size=8, max_length=32, pooling="mean", threads=1)
    assert _same_embeddings(reference, out) and _leftovers(tmp_path) == []


def test_encode_out_of_disk_keeps_the_complete_output(tiny_model_dir, tmp_path):
    """A rewrite of complete embeddings that runs out of space (RLIMIT_FSIZE below the size of the
    candidates' array) fails, and the earlier complete folder is still there, unchanged."""
    prepared = _prepared(tmp_path, 400)
    out = tmp_path / "embeddings"
    encode_benchmark(tiny_model_dir, prepared, out, batch_size=8, max_length=32, pooling="mean", threads=1)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    limit = (out / "candidates.npy").stat().st_size // 2
    full = _run(_encode_command(tiny_model_dir, prepared, out), limit_bytes=limit)
    assert full.returncode == 1 and "OSError" in full.stderr, full.stderr[-3000:]  # a short write: EFBIG
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert _leftovers(tmp_path) == []


def test_slurm_profile_requeues_and_signals_train_jobs(tmp_path):
    """Dry run through the SLURM profile: every train job asks SLURM for SIGTERM before its time limit
    (`--signal=TERM@...`, which the loop turns into a checkpoint), passes the plugin's own check of
    `slurm_extra`, and the profile requeues preempted jobs and retries failed ones."""
    pytest.importorskip("snakemake_executor_plugin_slurm")
    import yaml
    from snakemake_executor_plugin_slurm.validation import validate_slurm_extra

    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    assert profile["slurm-requeue"] is True and profile["retries"] >= 1
    extra = profile["set-resources"]["train"]["slurm_extra"]
    assert "--signal=TERM@" in extra
    validate_slurm_extra(type("Job", (), {"resources": type("R", (), {"slurm_extra": extra})()})())
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "-n", "-p"]
        + ["--profile", str(REPO / "profiles" / "slurm"), "--configfile", str(REPO / "config" / "config.yaml")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    blocks = done.stdout.split("\nrule train:")[1:]
    assert blocks
    for block in blocks:
        assert "slurm_extra=" + extra in block
        assert "--checkpoint-dir results/checkpoints/" in block
    # the default config's model runs on the CPU: its encode jobs ask SLURM for no GPU
    encodes = [block.split("\n\n")[0] for block in done.stdout.split("\nrule encode:")[1:]]
    assert encodes and all(re.search(r"resources: .*\bgpu=0\b", block) for block in encodes), encodes[:1]


def test_checkpoint_every_is_checked_and_documented():
    import yaml

    from xlir.train.checkpoint import DEFAULT_EVERY
    from xlir.train.options import TrainOptions, parse_options

    schema = yaml.safe_load((REPO / "config" / "schema.yaml").read_text(encoding="utf-8"))["properties"]
    assert schema["training"]["properties"]["checkpoint_every"]["default"] == DEFAULT_EVERY == 100
    assert TrainOptions().checkpoint_every == DEFAULT_EVERY
    assert "checkpoint_every" in schema["models"]["additionalProperties"]["properties"]["training"]["properties"]
    for bad in (-1, 1.5, True, "10"):
        with pytest.raises(ValueError, match="training.checkpoint_every"):
            parse_options({"checkpoint_every": bad})


def _train_snakefile(folder: Path, command: list) -> list:
    """A one-rule Snakefile whose rule trains like rule train_at_selected_lr does (`exec xlir
    train`, outputs declared, the checkpoints outside them); the snakemake command that runs it."""
    shell = "exec " + " ".join(shlex.quote(str(word)) for word in command)
    shell = shell.replace("{", "{{").replace("}", "}}")  # Snakemake formats the shell command
    (folder / "Snakefile").write_text(
        "rule train:\n"
        "    output:\n"
        "        directory('run/model'), 'run/param_groups.tsv', 'run/train_log.tsv', 'run/train_summary.json'\n"
        "    shell:\n"
        f"        {json.dumps(shell)}\n"
    )
    return [sys.executable, "-m", "snakemake", "--cores", "1", "run/train_summary.json"]


def _processes_running(needle: str) -> list[int]:
    """Pids whose command line holds `needle` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if needle in cmdline:
                found.append(int(entry.name))
    return found


def _parent_of(pid: int) -> int:
    return int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])


@pytest.mark.parametrize("kill", ["job shell", "snakemake and its jobs"])
def test_killed_under_snakemake_resumes_with_the_documented_command(tiny_model_dir, data, tmp_path, reference, kill):
    """Under Snakemake (docs/resuming.md):
    - the job's shell killed: the rule `exec`s xlir, so the shell *is* `xlir train` (Snakemake's
      child, no bash in between) and nothing is orphaned; the same command resumes;
    - Snakemake and its jobs killed together (kill -9 of the process group: a lost node, a closed
      terminal): the same command stops (the stale lock, or the killed job's incomplete outputs);
      `--unlock`, then `--rerun-incomplete` resumes. Both end bit-identical to an uninterrupted run."""
    reference = reference("full")
    folder = tmp_path / "work"
    folder.mkdir()
    ckpt = folder / "checkpoints" / "run"
    command = _train_command(tiny_model_dir, data, folder / "run", ckpt, UNIFORM, {"checkpoint_every": 5})
    command[command.index("--out-model") :] = [
        "--out-model", "run/model", "--out-param-groups", "run/param_groups.tsv",
        "--out-log", "run/train_log.tsv", "--out-summary", "run/train_summary.json",
        "--checkpoint-dir", "checkpoints/run",
    ]  # fmt: skip
    snakemake = _train_snakefile(folder, command)
    log = tmp_path / "first.log"
    with open(log, "w") as handle:
        first = subprocess.Popen(
            snakemake, stdout=handle, stderr=subprocess.STDOUT, env=ENV, cwd=folder, start_new_session=True
        )
    _wait_for(lambda: any(n.startswith("step-") for n in _checkpoints(ckpt)), first, "the first checkpoint", log)
    trainers = [pid for pid in _processes_running(str(tiny_model_dir)) if pid != first.pid]
    assert len(trainers) == 1, trainers
    if kill == "job shell":
        assert _parent_of(trainers[0]) == first.pid  # exec: the job's shell became xlir train
        os.kill(trainers[0], signal.SIGKILL)
        first.wait(timeout=120)
        assert first.returncode != 0
    else:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=60)
    deadline = time.time() + 30
    while _processes_running(str(tiny_model_dir)) and time.time() < deadline:
        time.sleep(0.05)
    assert _processes_running(str(tiny_model_dir)) == []  # no orphan keeps writing
    assert not (folder / "run" / "train_summary.json").exists()

    again = subprocess.run(snakemake, cwd=folder, env=ENV, capture_output=True, text=True, timeout=300)
    if kill == "snakemake and its jobs":
        said = again.stdout + again.stderr  # the stale lock, or the incomplete outputs of the killed job
        assert again.returncode != 0 and ("cannot be locked" in said or "--rerun-incomplete" in said), said[-2000:]
        unlock = subprocess.run([*snakemake, "--unlock"], cwd=folder, env=ENV, capture_output=True, text=True)
        assert unlock.returncode == 0, unlock.stderr[-2000:]
        again = subprocess.run(
            [*snakemake, "--rerun-incomplete"], cwd=folder, env=ENV, capture_output=True, text=True, timeout=300
        )
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    summary = json.loads((folder / "run" / "train_summary.json").read_text())
    assert summary["checkpoints"]["resumed_from_step"] >= 5
    assert _max_abs_difference(reference, folder / "run") == 0.0
    assert not ckpt.exists()
