"""The report from shards (`xlir report --shards DIR...`): a study's report built from any set of
its exported shards (rule `export_shard`), without models or data, in seconds.

The shards must share one design hash (a mismatch names the config keys that differ), and no
(run, seed) may come from two shards. Their files are checked against the manifests' SHA-256,
laid out as the results/ tree one run would have left (per-query tables unzipped), and the
ordinary aggregate, compare and report steps run on it, so a study run as shards gives the
report one run with all their seeds gives."""

from __future__ import annotations

import contextlib
import copy
import gzip
import shutil
import tempfile
from pathlib import Path

from xlir.common.design import differing_keys
from xlir.common.io import InputError, file_sha256, get_logger, read_json

log = get_logger(__name__)

#: files every shard may carry with machine-specific content (the first shard's copy is kept)
PER_MACHINE_PREFIXES = ("timing/", "logs/")
#: the repository's embedded default config and schema (the report lists the values that differ)
REPO = Path(__file__).resolve().parents[3]


def read_manifest(folder: Path) -> dict:
    """A shard's manifest.json, with its `folder`."""
    path = Path(folder) / "manifest.json"
    if not path.is_file():
        raise InputError(f"{folder}: not a shard (no manifest.json; rule export_shard writes one)")
    return {**read_json(path), "folder": Path(folder)}


def refuse_other_design(first: dict, other: dict) -> None:
    """Stop when two shards' design hashes differ, naming the config keys that differ."""
    if other.get("design_hash") != first.get("design_hash"):
        keys = differing_keys(first.get("design") or {}, other.get("design") or {})
        raise InputError(
            f"{other['folder']}: design hash {other.get('design_hash')} differs from {first['folder']}'s "
            f"{first.get('design_hash')}; config keys that differ: {', '.join(keys[:20]) or '(none listed)'}"
        )


def run_key(run: dict) -> tuple[str, str, str, str]:
    """(model, variant, sampling, 'seed<N>') of a manifest's run (seeds are stored as N or 'seedN')."""
    return (run["model"], run["variant"], run["sampling"], f"seed{str(run['seed']).removeprefix('seed')}")


def read_shards(folders: list[Path]) -> list[dict]:
    """Every shard's manifest (with its folder), checked: one design, no run twice."""
    if not folders:
        raise InputError("report --shards: no shard folders given")
    manifests = [read_manifest(folder) for folder in folders]
    for other in manifests[1:]:
        refuse_other_design(manifests[0], other)
    seen: dict[tuple, Path] = {}
    for manifest in manifests:
        for run in manifest.get("runs", []):
            key = run_key(run)
            if key in seen:
                raise InputError(
                    f"run {'/'.join(key)} is in two shards: {seen[key]} and {manifest['folder']}; "
                    "merge each (run, seed) once"
                )
            seen[key] = manifest["folder"]
    return manifests


def materialise(manifests: list[dict], results: Path) -> None:
    """Copy every shard's files below `results` (checked against their SHA-256; .gz unzipped)."""
    origin: dict[str, tuple[str, Path]] = {}
    for manifest in manifests:
        for entry in manifest.get("files", []):
            source = manifest["folder"] / "files" / entry["path"]
            if not source.is_file():
                raise InputError(f"{manifest['folder']}: file {entry['path']} listed in manifest.json is missing")
            digest = file_sha256(source)
            if digest != entry["sha256"]:
                raise InputError(f"{source}: SHA-256 {digest[:12]}... is not the manifest's {entry['sha256'][:12]}...")
            rel = entry["path"][:-3] if entry["path"].endswith(".gz") else entry["path"]
            if rel in origin:
                if origin[rel][0] != digest and not rel.startswith(PER_MACHINE_PREFIXES):
                    log.warning(
                        "%s differs between %s and %s; keeping the first", rel, origin[rel][1], manifest["folder"]
                    )
                continue
            origin[rel] = (digest, manifest["folder"])
            target = results / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if entry["path"].endswith(".gz"):
                with gzip.open(source, "rb") as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
            else:
                shutil.copyfile(source, target)


def _validated_default() -> dict | None:
    """config/config.yaml with the schema's defaults (as rule report's manifest carries it)."""
    config_path, schema_path = REPO / "config" / "config.yaml", REPO / "config" / "schema.yaml"
    if not config_path.is_file() or not schema_path.is_file():
        return None
    import yaml
    from snakemake.utils import validate

    default = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    validate(default, schema=str(schema_path), set_default=True)
    return default


def merged_config(manifests: list[dict]) -> dict:
    """The study's config: a shard's, with every seeds shard's test seeds."""
    with_config = [m for m in manifests if m.get("config")]
    if not with_config:
        raise InputError("report --shards: no shard carries its config (manifest.json 'config')")
    base = next((m for m in with_config if m.get("kind") == "seeds"), with_config[0])
    config = copy.deepcopy(base["config"])
    seeds = sorted({int(s) for m in manifests if m.get("kind") == "seeds" for s in m.get("seeds", [])})
    if seeds:
        config["seeds"] = seeds
    return config


def report_manifest(manifests: list[dict], results: str = "results") -> dict:
    """The manifest rule report would get from one run of the merged shards (run order as the grid's)."""
    config = merged_config(manifests)
    present = {
        (r["model"], r["variant"], r["sampling"], int(str(r["seed"]).removeprefix("seed")))
        for m in manifests
        if m.get("kind") in ("seeds", "baselines")
        for r in m.get("runs", [])
    }
    order = []
    for model in config["models"]:
        for seed in config["seeds"]:
            for variant in config["variants"]:
                for sampling in config["samplings"]:
                    order.append((model, variant, sampling, seed))
    order += [(model, "zeroshot", "none", 0) for model in config["models"]] + [("bm25", "lexical", "none", 0)]
    runs = [
        {"model": m, "variant": v, "sampling": s, "seed": seed, "dir": f"{results}/runs/{m}/{v}/{s}/seed{seed}"}
        for m, v, s, seed in order
        if (m, v, s, seed) in present
    ]
    selections = sorted(Path(results, "selection").glob("*/*/*.json")) if Path(results, "selection").is_dir() else []
    sweep = [
        {"model": p.parts[-3], "variant": p.parts[-2], "sampling": p.stem, "selection": str(p)} for p in selections
    ]
    variant_order = list(config["variants"])
    sweep.sort(key=lambda e: (e["model"], variant_order.index(e["variant"]) if e["variant"] in variant_order else 0))
    manifest = {
        "config": config,
        "default_config": _validated_default(),
        "runs": runs,
        "benchmarks": list(config["benchmarks"]),
        "mt_languages": list(config["translation"]["languages"]),
        "results_dir": results,
        "lr_sweep": sweep,
        "selection_seeds": next((m.get("selection_seeds") for m in manifests if m.get("selection_seeds")), []),
        "seed_overlap": any(m.get("seed_overlap") for m in manifests),
        "shards": [
            {
                k: m.get(k)
                for k in ("study", "shard", "kind", "design_hash", "seeds", "code", "machine", "times", "precision")
            }
            for m in manifests
        ],
    }
    return manifest


def report_from_shards(folders: list[Path], out_dir: Path, keep_tree: Path | None = None) -> dict:
    """Build metrics.csv, comparisons.csv and the report (HTML, Markdown, verdict, claims, figures)
    in `out_dir` from the shards in `folders`. Returns the report manifest."""
    from xlir.report.aggregate import aggregate_metrics
    from xlir.report.compare import compare_runs
    from xlir.report.report import ReportFiles, build_report

    manifests = read_shards([Path(f).resolve() for f in folders])
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(keep_tree).resolve() if keep_tree else Path(tempfile.mkdtemp(prefix="xlir-shards-"))
    try:
        materialise(manifests, work / "results")
        with contextlib.chdir(work):
            manifest = report_manifest(manifests)
            aggregate_metrics(manifest, out_dir / "metrics.csv")
            compare_runs(manifest, out_dir / "comparisons.csv")
            build_report(manifest, ReportFiles.in_folder(out_dir), out_dir / "metrics.csv", out_dir / "comparisons.csv")
    finally:
        if keep_tree is None:
            shutil.rmtree(work, ignore_errors=True)
    log.info("report from %d shard(s): %d runs -> %s", len(manifests), len(manifest["runs"]), out_dir)
    return manifest
