"""The learning-rate sweep: the grid per kind, run names, dev-split selection (ties, seeds,
a matched control following its target), the copy into the variant's run folder, the report's
table and text, and the workflow's plan and load-time errors (dry runs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from xlir.common.io import InputError, write_json
from xlir.report import lr_sweep as report_sweep
from xlir.train.link_selected_run import link_selected_run
from xlir.train.lr_sweep import SweepConfig, sweep_runs, training_overrides
from xlir.train.select_lr import dev_score, select, select_lr
from xlir.train.variants import parse_variant

REPO = Path(__file__).resolve().parents[1]

SPECS = {
    "uniform": parse_variant({"name": "uniform", "kind": "uniform"}),
    "decay-0.9": parse_variant({"name": "decay-0.9", "kind": "decay", "gamma": 0.9}),
    "lora-uniform": parse_variant({"name": "lora-uniform", "kind": "lora", "rank": 4}),
}


def test_grid_per_kind_and_run_names():
    sweep = SweepConfig.from_config({"full": [5e-5, 3e-5], "lora": [1e-3]})
    assert sweep.active and sweep.full == (3e-5, 5e-5)
    assert sweep.grid(SPECS["decay-0.9"]) == (3e-5, 5e-5) and sweep.grid(SPECS["lora-uniform"]) == (1e-3,)
    runs = sweep_runs(SPECS, sweep)
    assert runs == {
        "uniform.lr3e-05": ("uniform", 3e-5),
        "uniform.lr5e-05": ("uniform", 5e-5),
        "decay-0.9.lr3e-05": ("decay-0.9", 3e-5),
        "decay-0.9.lr5e-05": ("decay-0.9", 5e-5),
        "lora-uniform.lr0.001": ("lora-uniform", 1e-3),
    }
    assert training_overrides(SPECS["lora-uniform"], 1e-3) == {"lora_lr": 1e-3}
    assert training_overrides(SPECS["uniform"], 3e-5) == {"lr": 3e-5}
    assert not SweepConfig.from_config({}).active
    assert sweep_runs(SPECS, SweepConfig.from_config({"lora": [1e-3]})) == {
        "lora-uniform.lr0.001": ("lora-uniform", 1e-3)
    }


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"full": [0.0]}, "training.lr_sweep.full"),
        ({"lora": ["x"]}, "training.lr_sweep.lora"),
        ({"full": [1e-5, 1e-5]}, "repeats"),
        ({"setting": "all"}, "training.lr_sweep.setting"),
    ],
)
def test_bad_sweep_config_names_the_key(cfg, message):
    with pytest.raises(ValueError, match=message):
        SweepConfig.from_config(cfg)


def test_a_sweep_run_name_may_not_shadow_a_variant():
    specs = {**SPECS, "uniform.lr3e-05": parse_variant({"name": "uniform.lr3e-05", "kind": "uniform"})}
    with pytest.raises(ValueError, match=r"variants\.uniform\.lr3e-05"):
        sweep_runs(specs, SweepConfig.from_config({"full": [3e-5]}))


def test_select_takes_the_best_mean_over_seeds_and_the_smaller_lr_on_a_tie():
    # seed 2 alone would pick 1e-4; the mean over seeds picks 3e-5
    assert select({3e-5: {1: 0.80, 2: 0.70}, 1e-4: {1: 0.60, 2: 0.75}}) == 3e-5
    assert select({3e-5: {1: 0.5}, 1e-5: {1: 0.5}, 1e-4: {1: 0.4}}) == 1e-5


def _dev_metrics(path: Path, mono: float, cross: float, multi: float) -> str:
    write_json(
        path,
        {
            "settings": {
                "monolingual": {"map": mono},
                "cross-lingual": {"map": cross},
                "multilingual": {"map": multi},
            }
        },
    )
    return str(path)


def test_dev_score_reads_one_setting_or_the_mean(tmp_path):
    path = Path(_dev_metrics(tmp_path / "m.json", 0.9, 0.6, 0.3))
    assert dev_score(path, "map", "cross-lingual") == 0.6
    assert dev_score(path, "map", "mean") == pytest.approx(0.6)
    with pytest.raises(InputError, match="recall_1"):
        dev_score(path, "recall_1", "mean")


def test_select_lr_writes_the_grid_and_a_matched_control_follows_its_target(tmp_path):
    runs = []
    for lr, seed, scores in [
        (1e-5, 1, (0.8, 0.5, 0.4)),
        (1e-5, 2, (0.8, 0.5, 0.4)),
        (3e-5, 1, (0.9, 0.6, 0.5)),
        (3e-5, 2, (0.7, 0.6, 0.5)),
    ]:
        metrics = _dev_metrics(tmp_path / f"{lr}_{seed}.json", *scores)
        runs.append({"lr": lr, "seed": seed, "run": f"m/decay.lr{lr:g}/hybrid/seed{seed}", "metrics": metrics})
    target = select_lr("decay", runs, "map", "multilingual", tmp_path / "decay.json")
    assert target["selected_lr"] == 3e-5 and target["selected_runs"] == {
        "1": "m/decay.lr3e-05/hybrid/seed1",
        "2": "m/decay.lr3e-05/hybrid/seed2",
    }
    assert [g["mean"] for g in target["grid"]] == [0.4, 0.5]
    # the control scores best at 1e-5 on its own, but takes the lr its target selected
    control_runs = [
        {
            **r,
            "run": r["run"].replace("decay", "matched"),
            "metrics": _dev_metrics(
                tmp_path / f"c{r['lr']}_{r['seed']}.json", 0.9, 0.9, 0.9 if r["lr"] == 1e-5 else 0.1
            ),
        }
        for r in runs
    ]
    control = select_lr(
        "matched", control_runs, "map", "multilingual", tmp_path / "c.json", follow=tmp_path / "decay.json"
    )
    assert control["selected_lr"] == 3e-5 and control["followed"] == "decay"
    assert json.loads((tmp_path / "c.json").read_text())["selected_runs"]["2"] == "m/matched.lr3e-05/hybrid/seed2"


def test_select_lr_refuses_grid_points_run_with_different_seeds(tmp_path):
    runs = [
        {"lr": 1e-5, "seed": 1, "run": "a", "metrics": _dev_metrics(tmp_path / "a.json", 1, 1, 1)},
        {"lr": 3e-5, "seed": 2, "run": "b", "metrics": _dev_metrics(tmp_path / "b.json", 1, 1, 1)},
    ]
    with pytest.raises(InputError, match="different seeds"):
        select_lr("v", runs, "map", "mean", tmp_path / "out.json")
    assert not (tmp_path / "out.json").exists()


def test_link_selected_run_copies_the_selected_seed_with_fresh_timestamps(tmp_path):
    runs_dir = tmp_path / "runs"
    for lr in ("1e-05", "3e-05"):
        run = runs_dir / f"m/v.lr{lr}/hybrid/seed1"
        (run / "model").mkdir(parents=True)
        (run / "model" / "weights.bin").write_bytes(lr.encode())
        for name in ("param_groups.tsv", "train_log.tsv", "train_summary.json"):
            (run / name).write_text(f"{name} {lr}")
            os.utime(run / name, (1_000_000, 1_000_000))
        os.utime(run / "model" / "weights.bin", (1_000_000, 1_000_000))
    write_json(tmp_path / "sel.json", {"selected_lr": 3e-5, "selected_runs": {"1": "m/v.lr3e-05/hybrid/seed1"}})
    out = runs_dir / "m/v/hybrid/seed1"
    assert link_selected_run(tmp_path / "sel.json", 1, runs_dir, out) == "m/v.lr3e-05/hybrid/seed1"
    assert (out / "model" / "weights.bin").read_bytes() == b"3e-05"
    assert (out / "train_summary.json").read_text() == "train_summary.json 3e-05"
    assert (out / "model" / "weights.bin").stat().st_mtime > time.time() - 60
    with pytest.raises(InputError, match="seed 2"):
        link_selected_run(tmp_path / "sel.json", 2, runs_dir, runs_dir / "m/v/hybrid/seed2")


def test_report_tables_and_the_unswept_statement(tmp_path):
    selection = {
        "variant": "decay",
        "metric": "map",
        "setting": "mean",
        "selected_lr": 3e-5,
        "followed": None,
        "grid": [
            {"lr": 1e-5, "scores": {"1": 0.4, "2": 0.5}, "mean": 0.45, "runs": {}},
            {"lr": 3e-5, "scores": {"1": 0.6, "2": 0.5}, "mean": 0.55, "runs": {}},
        ],
    }
    write_json(tmp_path / "decay.json", selection)
    manifest = {
        "lr_sweep": [
            {"model": "m", "variant": "decay", "sampling": "hybrid", "selection": str(tmp_path / "decay.json")}
        ]
    }
    selections = report_sweep.read_selections(manifest)
    table = report_sweep.sweep_table(selections)
    assert list(table.selected) == ["", "yes"] and table["dev map (mean)"].tolist() == [0.45, 0.55]
    assert table["seed sd"].iloc[0] == pytest.approx(0.0707, abs=1e-4)
    assert report_sweep.selected_lrs(selections)["selected lr"].tolist() == [3e-5]
    variants = {"u": {"kind": "uniform"}, "l": {"kind": "lora"}}
    text = report_sweep.unswept_text({"lr": 5e-5, "lora_lr": 1e-3}, False, variants)
    assert "not swept" in text and "5e-05" in text and "0.001" in text
    text = report_sweep.unswept_text({"lr": 5e-5, "lr_sweep": {"full": [1e-5]}}, True, variants)
    assert "selected on the dev split" in text and "LoRA at lr 5e-05" in text


# ------------------------------------------------------------------ the workflow's plan (dry runs)
def _dry_run(tmp_path: Path, overlay: dict) -> subprocess.CompletedProcess:
    (tmp_path / "overlay.yaml").write_text(yaml.safe_dump(overlay), encoding="utf-8")
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(REPO / "Snakefile"),
            "-d",
            str(tmp_path),
            "-n",
            "all",
            "--configfile",
            str(REPO / "config" / "config.yaml"),
            str(tmp_path / "overlay.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _counts(output: str) -> dict[str, int]:
    counts = {}
    for line in output.split("Job stats:")[-1].splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    return counts


SWEEP_OVERLAY = {
    "training": {"lr_sweep": {"full": [3.0e-5, 5.0e-5], "lora": [5.0e-4]}},
    "seeds": [13, 42],
    "variants": {
        "uniform": {"kind": "uniform"},
        "decay-0.9": {"kind": "decay", "gamma": 0.9},
        "uniform-matched-0.9": {"kind": "uniform", "match_mean_lr_of": "decay-0.9"},
        "decay-0.8": {"kind": "decay", "gamma": 0.8},
        "lora-uniform": {"kind": "lora", "profile": "uniform", "rank": 8, "alpha": 16},
        "lora-linear": {"kind": "lora", "profile": "linear", "rank": 8, "min_rank": 2, "alpha": 16},
    },
}


def test_the_workflow_plans_the_sweep_on_selection_seeds_disjoint_from_the_test_seeds(tmp_path):
    # config/config.yaml's lr_sweep.seeds: [7]; the test seeds 13 and 42 never sweep
    done = _dry_run(tmp_path, SWEEP_OVERLAY)
    assert done.returncode == 0, done.stderr[-3000:]
    counts = _counts(done.stdout)
    # swept cells: uniform x 3 samplings, decay-0.9, decay-0.8 (full: 2 lrs), 2 LoRA (1 lr), seed 7
    # alone; the matched control is not swept (it follows decay-0.9)
    assert counts["train"] == 5 * 2 + 2 * 1
    assert counts["select_lr"] == 8 and "link_selected_run" not in counts
    # every test seed trains each cell once, at its selection; the control at decay-0.9's
    assert counts["train_at_selected_lr"] == 7 * 2 and counts["train_follower_at_selected_lr"] == 2
    blocks = done.stdout.split("\n\n")
    sweep = [b for b in blocks if "rule train:" in b and ".lr" in b]
    assert sweep and all("/seed7/" in b for b in sweep)
    assert not [b for b in blocks if "rule train:" in b and "/seed7/" not in b and ".lr" in b]
    at_selected = [b for b in blocks if "_at_selected_lr:" in b]
    assert at_selected and all("seed7" not in b.split("output:")[1].split("\n")[0] for b in at_selected)
    # the sweep runs are scored on the dev split only
    sweep_evaluations = [
        line
        for line in done.stdout.splitlines()
        if "output: results/runs/" in line and ".lr" in line and "metrics.json" in line
    ]
    assert sweep_evaluations and all("/dev/metrics.json" in line for line in sweep_evaluations)
    assert "--follow results/selection/e5-small/decay-0.9/hybrid.json" in done.stdout
    assert '"lr": 3e-05' in done.stdout and '"lora_lr": 0.0005' in done.stdout


def test_an_allowed_overlap_reuses_the_selected_sweep_run_of_a_shared_seed(tmp_path):
    overlay = {**SWEEP_OVERLAY, "seeds": [13, 42, 87]}
    overlay["training"] = {
        "lr_sweep": {**SWEEP_OVERLAY["training"]["lr_sweep"], "seeds": [42], "allow_seed_overlap": True}
    }
    done = _dry_run(tmp_path, overlay)
    assert done.returncode == 0, done.stderr[-3000:]
    counts = _counts(done.stdout)
    assert counts["train"] == 5 * 2 + 2 * 1
    assert counts["select_lr"] == 8 and counts["link_selected_run"] == 7
    assert counts["train_at_selected_lr"] == 7 * 2 and counts["train_follower_at_selected_lr"] == 3
    blocks = done.stdout.split("\n\n")
    at_selected = [b for b in blocks if "rule train_at_selected_lr:" in b]
    assert at_selected and all("seed42" not in b.split("output:")[1].split("\n")[0] for b in at_selected)
    assert all("--selection results/selection/" in b for b in at_selected)
    selects = [b for b in blocks if "rule select_lr:" in b]
    assert selects and all("seed13" not in b and "seed87" not in b for b in selects)


@pytest.mark.parametrize(
    ("lr_sweep", "expected"),
    [
        ({"full": [3.0e-5], "seeds": [13]}, "also in the config key seeds"),
        ({"full": [3.0e-5], "seeds": None}, "disjoint from the test seeds"),
    ],
)
def test_selection_seeds_that_are_test_seeds_fail_at_load_without_the_switch(tmp_path, lr_sweep, expected):
    overlay = {**SWEEP_OVERLAY, "training": {"lr_sweep": lr_sweep}}
    done = _dry_run(tmp_path, overlay)
    output = done.stdout + done.stderr
    assert done.returncode != 0 and "training.lr_sweep.seeds" in output and expected in output, output[-2000:]
    assert not (tmp_path / "results").exists()


def test_selection_seeds_semantics():
    assert SweepConfig.from_config({"full": [1e-5], "seeds": [7]}).selection_seeds([13, 42]) == [7]
    assert SweepConfig.from_config({"seeds": [7]}).selection_seeds([13]) == []  # no grid, no sweep
    overlap = SweepConfig.from_config({"full": [1e-5], "allow_seed_overlap": True})
    assert overlap.selection_seeds([13, 42]) == [13, 42] and overlap.overlaps([13, 42])
    with pytest.raises(ValueError, match="allow_seed_overlap"):
        SweepConfig.from_config({"full": [1e-5], "seeds": [13, 7]}).selection_seeds([13, 42])
    with pytest.raises(ValueError, match="selection_from"):
        SweepConfig.from_config({"selection_from": ""})


def test_the_report_says_which_seeds_the_selection_rests_on():
    training = {"lr": 5e-5, "lr_sweep": {"full": [2e-5, 5e-5], "seeds": [13]}}
    text = report_sweep.unswept_text(training, True, {"uniform": {"kind": "uniform"}}, [13, 42, 87])
    assert "seed(s) 13 only" in text and "seed(s) 42, 87 trained once per variant, at the selected lr" in text
    assert "winner's-curse" in text  # 13 is a test seed too
    disjoint = report_sweep.unswept_text({"lr": 5e-5, "lr_sweep": {"full": [2e-5], "seeds": [7]}}, True, {}, [13])
    assert "No selection seed is a test seed" in disjoint and "winner" not in disjoint
    assert "only" not in report_sweep.unswept_text({"lr_sweep": {"full": [2e-5]}}, True, {}, [13, 42])


def test_train_at_the_selected_lr_reads_the_selection(tmp_path):
    from xlir.train.lr_sweep import selected_lr

    path = tmp_path / "selection.json"
    write_json(path, {"selected_lr": 3e-05})
    assert selected_lr(path) == 3e-05
    assert training_overrides(SPECS["lora-uniform"], selected_lr(path)) == {"lora_lr": 3e-05}
    write_json(path, {"selected_lr": None})
    with pytest.raises(InputError, match="selected_lr"):
        selected_lr(path)
    with pytest.raises(ValueError, match="training.lr_sweep.seeds"):
        SweepConfig.from_config({"seeds": []})


def test_a_sweep_without_a_dev_split_fails_at_load(tmp_path):
    done = _dry_run(tmp_path, {"training": {"lr_sweep": {"full": [3.0e-5]}}, "qa": {"dev": {"fraction": 0}}})
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "training.lr_sweep" in output and "qa.dev.fraction" in output
    assert not (tmp_path / "results").exists()


def test_a_matched_control_whose_target_is_not_swept_in_its_cell_fails_at_load(tmp_path):
    overlay = {
        "training": {"lr_sweep": {"full": [3.0e-5]}},
        "grid": {"full_product": False, "baseline_variant": "control", "main_sampling": "hybrid"},
        "variants": {
            "control": {"kind": "uniform", "match_mean_lr_of": "decay-0.9"},
            "decay-0.9": {"kind": "decay", "gamma": 0.9},
        },
    }
    done = _dry_run(tmp_path, overlay)
    output = done.stdout + done.stderr
    assert done.returncode != 0 and "variants.control.match_mean_lr_of" in output, output[-2000:]


def test_a_profile_is_also_compared_with_its_mean_lr_matched_control():
    from xlir.report.compare import plan_comparisons
    from xlir.report.grid import Study

    variants = {
        "uniform": {"kind": "uniform"},
        "decay-0.9": {"kind": "decay", "gamma": 0.9},
        "uniform-matched-0.9": {"kind": "uniform", "match_mean_lr_of": "decay-0.9"},
    }
    runs = [
        {"model": "m", "variant": v, "sampling": "hybrid", "seed": s, "dir": f"runs/m/{v}/hybrid/seed{s}"}
        for v in variants
        for s in (1, 2)
    ]
    config = {
        "variants": variants,
        "samplings": {"hybrid": {"alpha": 0.5}},
        "grid": {"baseline_variant": "uniform", "main_sampling": "hybrid"},
    }
    study = Study({"config": config, "runs": runs, "benchmarks": ["b"]})
    pairs = {(p.family, p.treatment.variant, p.control.variant) for p in plan_comparisons(study)}
    assert ("scaling", "decay-0.9", "uniform-matched-0.9") in pairs
    assert ("scaling", "decay-0.9", "uniform") in pairs and ("scaling", "uniform-matched-0.9", "uniform") in pairs


def test_xlir_train_with_a_selection_trains_at_the_selected_base_lr(tmp_path, tiny_model_dir):
    """What rule train_at_selected_lr runs: `xlir train --selection` overrides the base lr
    (`lora_lr` for LoRA) with the selection's, whatever `--training` carries."""
    from xlir.common.io import write_jsonl
    from xlir.train.plan_batches import plan_batches

    pairs = [
        {
            "pair_id": f"p{i}",
            "texts": {
                "en": {"question": f"what is {i}", "answer": f"{i} is water"},
                "es": {"question": f"qué es {i}", "answer": f"{i} es agua"},
            },
        }
        for i in range(8)
    ]
    write_jsonl(tmp_path / "pairs.jsonl", pairs)
    write_jsonl(tmp_path / "plan.jsonl", plan_batches(pairs, ["en", "es"], 0.5, 4, 2, seed=0))
    write_json(tmp_path / "selection.json", {"variant": "lora-uniform", "selected_lr": 3e-4})
    training = {
        "lr": 1e-5,
        "lora_lr": 1e-5,
        "weight_decay": 0.0,
        "temperature": 0.05,
        "warmup_ratio": 0.0,
        "max_grad_norm": 1.0,
        "freeze_word_embeddings": True,
    }
    run = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "xlir.cli",
        "train",
        "--model",
        str(tiny_model_dir),
        "--train",
        str(tmp_path / "pairs.jsonl"),
        "--plan",
        str(tmp_path / "plan.jsonl"),
        "--variant",
        json.dumps({"name": "lora-uniform", "kind": "lora", "rank": 2}),
        "--training",
        json.dumps(training),
        "--seed",
        "3",
        "--max-length",
        "16",
        "--selection",
        str(tmp_path / "selection.json"),
        "--out-model",
        str(run / "model"),
        "--out-param-groups",
        str(run / "groups.tsv"),
        "--out-log",
        str(run / "log.tsv"),
        "--out-summary",
        str(run / "summary.json"),
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "workflow"), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((run / "summary.json").read_text())["base_lr"] == 3e-4
    assert "selected on the dev split" in done.stderr
