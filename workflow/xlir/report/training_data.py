"""The report's account of the training data: the source, pairs and groups, human and
machine-translated texts per language (train and dev), passes over the data, and each
run's score on the dev split (the split model selection uses; never an evaluation
benchmark)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from xlir.common.io import read_json
from xlir.report.grid import SETTINGS, Run

DEV = "dev"


def source_text(stats: dict, split: dict, training: dict) -> str:
    """One paragraph: what the runs were trained on and how often they saw it."""
    source = dict(stats.get("source") or split.get("source") or {"kind": "chatterbot"})
    kind = source.pop("kind", "chatterbot")
    described = ", ".join(f"{k}={v}" for k, v in sorted(source.items()) if v not in (None, [], {}))
    n_pairs = stats.get("n_pairs") or 0
    items = int(training.get("steps", 0)) * int(training.get("batch_size", 0))
    passes = items / n_pairs if n_pairs else float("nan")
    text = (
        f"Training source: `{kind}`{f' ({described})' if described else ''}. "
        f"{n_pairs} training pairs in {stats.get('n_groups')} groups"
        + (f" from {stats['n_titles']} articles" if stats.get("n_titles") else "")
        + f"; {stats.get('n_dev_pairs', 0)} dev pairs held out by group ({split.get('dev_groups', 0)} groups, "
        f"seed {split.get('seed')}). Each run draws {training.get('steps')} batches of "
        f"{training.get('batch_size')} query-passage items, {items} in all: {passes:.2f} passes over the training "
        "pairs (one item is one pair in one language or language pair)."
    )
    dropped = [
        f"{stats[key]} {label}"
        for key, label in (
            ("collapsed_repeated_pairs", "repeated training pairs (the same English question and answer), kept once"),
            ("dev_collapsed_repeated_pairs", "repeated dev pairs, kept once"),
            ("dropped_overlapping_heldout", "overlapping a held-out (demo benchmark) pair"),
            ("dropped_no_training_language", "with no text in a training language"),
            ("dropped_dev_overlapping_train", "dev pairs overlapping a training text"),
        )
        if stats.get(key)
    ]
    if dropped:
        text += " Dropped: " + "; ".join(dropped) + "."
    per_pair = stats.get("languages_per_pair") or {}
    if per_pair:
        text += " Training languages per pair: " + ", ".join(f"{n}: {c}" for n, c in per_pair.items()) + "."
    return text


def language_table(stats: dict) -> pd.DataFrame:
    """Human and machine-translated texts per training language, train and dev."""
    rows = []
    for lang in stats.get("languages", []):
        train = (stats.get("texts_per_language") or {}).get(lang, {})
        dev = (stats.get("dev_texts_per_language") or {}).get(lang, {})
        rows.append(
            {
                "language": lang,
                "train human": train.get("human", 0),
                "train MT": train.get("mt", 0),
                "dev human": dev.get("human", 0),
                "dev MT": dev.get("mt", 0),
            }
        )
    return pd.DataFrame(rows)


def dev_table(runs: list[Run], metric: str = "map") -> pd.DataFrame:
    """Each run's dev-split score per setting (rule evaluate on benchmark `dev`)."""
    rows = []
    for run in runs:
        path = Path(run.dir) / DEV / "metrics.json"
        if not path.exists():
            continue
        settings = read_json(path).get("settings", {})
        row = {"run": run.label}
        for setting in SETTINGS:
            value = (settings.get(setting) or {}).get(metric)
            row[f"dev {metric} {setting}"] = value
        rows.append(row)
    return pd.DataFrame(rows)


def mean_lr_multiplier(
    param_groups: pd.DataFrame, training: dict, is_lora: bool, base_lr: float | None = None
) -> float:
    """The parameter-weighted mean of a run's per-layer learning rates over its trainable
    parameters (param_groups.tsv), relative to its base lr: the one the run recorded
    (train_summary.json `base_lr`, e.g. its swept lr), else the config's (training.lora_lr for
    LoRA where set)."""
    if base_lr:
        base = float(base_lr)
    elif is_lora:
        base = float(training.get("lora_lr") or training.get("lr") or 1.0)
    else:
        base = float(training.get("lr") or 1.0)
    trainable = param_groups["trainable"].astype(float)
    lr = param_groups["lr"].astype(float)
    if trainable.sum() == 0:
        return float("nan")
    return float((trainable * lr).sum() / trainable.sum() / base)
