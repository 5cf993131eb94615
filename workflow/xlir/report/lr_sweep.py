"""The learning-rate sweep in the report: each swept variant's dev score per base lr (rule
`select_lr`'s selection files), the lr it selected, and the sentence that says how the base
learning rate was set when nothing was swept (a confound the reader must be told about)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from xlir.common.io import read_json


def read_selections(manifest: dict) -> list[dict]:
    """The selection file of every swept (model, variant, sampling), with those keys added."""
    selections = []
    for entry in manifest.get("lr_sweep") or []:
        path = Path(entry["selection"])
        if path.exists():
            selections.append({**read_json(path), **{k: entry[k] for k in ("model", "variant", "sampling")}})
    return selections


def sweep_table(selections: list[dict]) -> pd.DataFrame:
    """One row per (model, variant, sampling, lr): mean dev score over seeds, per-seed scores, selected."""
    rows = []
    for sel in selections:
        for point in sel["grid"]:
            rows.append(
                {
                    "model": sel["model"],
                    "variant": sel["variant"],
                    "sampling": sel["sampling"],
                    "lr": point["lr"],
                    f"dev {sel['metric']} ({sel['setting']})": point["mean"],
                    "seeds": len(point["scores"]),
                    "seed sd": pd.Series(list(point["scores"].values()), dtype=float).std(ddof=1)
                    if len(point["scores"]) > 1
                    else float("nan"),
                    "selected": "yes" if point["lr"] == sel["selected_lr"] else "",
                    "followed": sel.get("followed") or "",
                }
            )
    return pd.DataFrame(rows)


def selected_lrs(selections: list[dict]) -> pd.DataFrame:
    """One row per swept (model, variant, sampling): the selected base lr and how it was chosen."""
    return pd.DataFrame(
        [
            {
                "model": sel["model"],
                "variant": sel["variant"],
                "sampling": sel["sampling"],
                "selected lr": sel["selected_lr"],
                "grid": ", ".join(f"{p['lr']:g}" for p in sel["grid"]),
                "chosen by": f"the lr {sel['followed']} selected (mean-lr-matched control)"
                if sel.get("followed")
                else f"best mean dev {sel['metric']} ({sel['setting']}) over {len(sel['grid'][0]['scores'])} seed(s)",
            }
            for sel in selections
        ]
    )


def unswept_text(training: dict, swept: bool, variants: dict, seeds: list[int] | None = None) -> str:
    """How the base lr was set: the sweep (and on which of the study's `seeds`), or one fixed lr
    per kind (stated as a possible confound)."""
    sweep = training.get("lr_sweep") or {}
    lora_lr = training.get("lora_lr") or training.get("lr")
    has_lora = any((spec or {}).get("kind") == "lora" for spec in variants.values())
    fixed = []
    if not sweep.get("full"):
        fixed.append(f"full fine-tuning at lr {training.get('lr'):g}")
    if has_lora and not sweep.get("lora"):
        fixed.append(f"LoRA at lr {lora_lr:g}")
    if swept:
        text = (
            "Each swept variant's base learning rate was selected on the dev split (held out from the training "
            "data; never an evaluation benchmark), and every test comparison below uses each variant at its "
            "selected lr. A mean-lr-matched uniform control takes the lr its target selected, so the two differ "
            "in the profile's shape alone."
        )
        selection_seeds = sweep.get("seeds") or (list(seeds or []) if sweep.get("allow_seed_overlap") else [])
        if selection_seeds:
            shared = [s for s in selection_seeds if s in (seeds or [])]
            others = [s for s in seeds or [] if s not in selection_seeds]
            text += (
                f" The sweep ran with seed(s) {', '.join(map(str, selection_seeds))} only "
                "(training.lr_sweep.seeds), so each selection rests on those seeds' dev scores"
                + (
                    f"; seed(s) {', '.join(map(str, others))} trained once per variant, at the selected lr."
                    if others
                    else "."
                )
            )
            if shared:
                text += (
                    f" Selection seed(s) {', '.join(map(str, shared))} are also test seeds "
                    "(training.lr_sweep.allow_seed_overlap): their test runs are the runs that won the "
                    "selection, a winner's-curse bias in favour of the swept variants."
                )
            else:
                text += " No selection seed is a test seed, so no test score is that of a run that won the selection."
        if fixed:
            text += f" Not swept: {'; '.join(fixed)}."
        return text
    return (
        f"The base learning rate was not swept ({'; '.join(fixed)}): every variant of a kind trains at the same "
        "base lr, so a difference between variants may partly be a difference in how well that one lr suits "
        "each of them (set training.lr_sweep to select each variant's lr on the dev split)."
    )
