"""Select a variant's base learning rate on the dev split (rule `select_lr`).

Reads the dev-split metrics of every sweep run of one (model, variant, sampling): one run per
lr and seed. The score of an lr is its dev metric (in one setting, or the mean of the three)
averaged over seeds; the highest wins, a tie goes to the smaller lr. A mean-lr-matched uniform
control takes its target's selection instead (`--follow`): both arms then train at the same
base lr and differ in the profile's shape alone. The evaluation benchmarks are never read."""

from __future__ import annotations

import math
from pathlib import Path

from xlir.common.io import InputError, get_logger, read_json, write_json
from xlir.train.lr_sweep import SETTINGS

log = get_logger(__name__)


def dev_score(metrics_path: Path, metric: str, setting: str) -> float:
    """One run's dev score: `metric` in `setting`, or its mean over the three settings."""
    settings = read_json(metrics_path).get("settings", {})
    wanted = SETTINGS if setting == "mean" else (setting,)
    values = []
    for name in wanted:
        value = (settings.get(name) or {}).get(metric)
        if value is None or not math.isfinite(float(value)):
            raise InputError(f"{metrics_path}: no finite '{metric}' in setting '{name}' (lr selection)")
        values.append(float(value))
    return sum(values) / len(values)


def select(scores: dict[float, dict[int, float]]) -> float:
    """The lr with the highest mean score over seeds; ties: the smaller lr."""
    if not scores:
        raise ValueError("no sweep runs to select from")
    means = {lr: sum(by_seed.values()) / len(by_seed) for lr, by_seed in scores.items()}
    return max(sorted(means), key=lambda lr: (means[lr], -lr))


def select_lr(
    variant: str,
    runs: list[dict],
    metric: str,
    setting: str,
    out: Path,
    follow: Path | None = None,
) -> dict:
    """`runs`: [{lr, seed, run, metrics}] (metrics: the run's dev metrics.json). Writes and
    returns {variant, grid: [{lr, run_of_seed, scores, mean}], selected_lr, metric, setting, followed}."""
    scores: dict[float, dict[int, float]] = {}
    names: dict[float, dict[int, str]] = {}
    for run in runs:
        lr, seed = float(run["lr"]), int(run["seed"])
        scores.setdefault(lr, {})[seed] = dev_score(Path(run["metrics"]), metric, setting)
        names.setdefault(lr, {})[seed] = run["run"]
    if not runs and follow is not None:  # a mean-lr-matched control: not swept, it takes its target's lr
        target = read_json(follow)
        selected = float(target["selected_lr"])
        log.info("following %s: lr %g (its dev selection; not swept)", target.get("variant"), selected)
        result = {
            "variant": variant,
            "metric": metric,
            "setting": setting,
            "grid": [],
            "selected_lr": selected,
            "selected_runs": {},
            "followed": target.get("variant"),
        }
        write_json(out, result)
        return result
    seeds = {frozenset(by_seed) for by_seed in scores.values()}
    if len(seeds) != 1:
        raise InputError(f"lr sweep: the learning rates were run with different seeds ({sorted(map(sorted, seeds))})")
    grid = [
        {
            "lr": lr,
            "runs": {str(s): names[lr][s] for s in sorted(names[lr])},
            "scores": {str(s): round(v, 6) for s, v in sorted(scores[lr].items())},
            "mean": round(sum(scores[lr].values()) / len(scores[lr]), 6),
        }
        for lr in sorted(scores)
    ]
    if follow is not None:
        target = read_json(follow)
        selected = float(target["selected_lr"])
        if selected not in scores:
            raise InputError(f"{follow}: selected lr {selected:g} is not in this variant's sweep ({sorted(scores)})")
        followed = target.get("variant")
        log.info("following %s: lr %g (its dev selection)", followed, selected)
    else:
        selected = select(scores)
        followed = None
        log.info("selected lr %g (mean dev %s, %s: %.4f)", selected, metric, setting, _mean(grid, selected))
    result = {
        "variant": variant,
        "metric": metric,
        "setting": setting,
        "grid": grid,
        "selected_lr": selected,
        "selected_runs": grid[[g["lr"] for g in grid].index(selected)]["runs"],
        "followed": followed,
    }
    write_json(out, result)
    return result


def _mean(grid: list[dict], lr: float) -> float:
    return next(g["mean"] for g in grid if g["lr"] == lr)
