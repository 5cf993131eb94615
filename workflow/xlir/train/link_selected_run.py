"""Give a swept variant's run folder the outputs of its dev-selected sweep run (rule
`link_selected_run`): the model and the files rule `train` writes, copied (fresh timestamps,
so Snakemake never sees them as older than the selection), each written atomically."""

from __future__ import annotations

import shutil
from pathlib import Path

from xlir.common.io import InputError, atomic_dir, atomic_open, get_logger, read_json

log = get_logger(__name__)

#: what rule `train` writes into a run folder besides the model
RUN_FILES = ("param_groups.tsv", "train_log.tsv", "train_summary.json")


def link_selected_run(selection: Path, seed: int, runs_dir: Path, out_run: Path) -> str:
    """Copy the selected sweep run of `seed` (a folder below `runs_dir`, named by the
    selection) into `out_run`; returns the sweep run's name."""
    chosen = read_json(selection)
    run = (chosen.get("selected_runs") or {}).get(str(seed))
    if run is None:
        raise InputError(f"{selection}: no selected run for seed {seed}")
    source = runs_dir / run
    if not (source / "model").is_dir():
        raise InputError(f"{selection}: the selected run {source} has no model folder")
    with atomic_dir(out_run / "model") as tmp:
        shutil.copytree(source / "model", tmp, dirs_exist_ok=True, copy_function=shutil.copyfile)
    for name in RUN_FILES:
        with atomic_open(out_run / name, "wb") as handle, open(source / name, "rb") as src:
            shutil.copyfileobj(src, handle)
    log.info("%s: seed %d takes %s (lr %g, selected on the dev split)", out_run, seed, source, chosen["selected_lr"])
    return run
