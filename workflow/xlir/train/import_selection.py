"""Read one cell's lr selection from a selection shard (rule `import_selection`): a test shard
trains at the lr the study's selection shard chose, instead of sweeping again. The shard's design
hash must equal this config's; a mismatch names the keys that differ."""

from __future__ import annotations

from pathlib import Path

from xlir.common.design import design_hash, differing_keys
from xlir.common.io import InputError, get_logger, read_json, write_json

log = get_logger(__name__)


def check_design(manifest_path: Path, design: dict) -> dict:
    """The shard's manifest, after checking that its design is `design`."""
    manifest = read_json(manifest_path)
    if manifest.get("design_hash") != design_hash(design):
        keys = differing_keys(manifest.get("design") or {}, design)
        raise InputError(
            f"{manifest_path}: the shard's design (hash {manifest.get('design_hash')}) is not this config's "
            f"(hash {design_hash(design)}); keys that differ: {', '.join(keys[:20]) or '(none listed)'}"
        )
    return manifest


def import_selection(shard: Path, design: dict, model: str, variant: str, sampling: str, out: Path) -> dict:
    manifest = check_design(shard / "manifest.json", design)
    if manifest.get("kind") != "selection":
        raise InputError(
            f"{shard}/manifest.json: a '{manifest.get('kind')}' shard; selection_from names a selection shard"
        )
    path = shard / "files" / "selection" / model / variant / f"{sampling}.json"
    if not path.is_file():
        raise InputError(f"{shard}: no selection for model {model}, variant {variant}, sampling {sampling} ({path})")
    selection = read_json(path)
    if not isinstance(selection.get("selected_lr"), (int, float)) or selection["selected_lr"] <= 0:
        raise InputError(f"{path}: expected selected_lr > 0, found {selection.get('selected_lr')!r}")
    selection = {**selection, "imported_from": str(shard), "selection_seeds": manifest.get("selection_seeds")}
    write_json(out, selection)
    log.info(
        "%s/%s/%s: lr %g from shard %s (design %s)",
        model,
        variant,
        sampling,
        selection["selected_lr"],
        shard,
        manifest["design_hash"],
    )
    return selection
