"""Export a shard (rules shard_selection, shard_baselines, shard_seeds): copy its small result files
below results/ into results/shards/<study>/<shard>/files/ (per-query tables gzipped), with a
manifest: the design and its hash, the seeds, every file's SHA-256, the code commit and package
versions, the machine (CPU model and flags, cores, memory), the precisions that ran, and times.
Timing and warnings files go with it when they are the shard's own (`belongs_to_shard`): a results
folder that served earlier shards also holds theirs. No model weights are exported. The folder
is written whole or not at all."""

from __future__ import annotations

import glob
import gzip
import os
import platform
import re
import shutil
import subprocess
import time
from importlib import metadata
from pathlib import Path

from xlir.common.design import design_hash
from xlir.common.io import InputError, atomic_dir, file_sha256, get_logger, read_json, write_json

log = get_logger(__name__)

#: files compressed in the export (their name gains .gz)
COMPRESSED = ("per_query.tsv",)
#: what a manifest's `packages` lists
PACKAGES = (
    "xlir",
    "torch",
    "transformers",
    "peft",
    "sentence-transformers",
    "pyserini",
    "faiss-cpu",
    "numpy",
    "scipy",
    "pandas",
    "snakemake",
    "onnxruntime",
    "sacrebleu",
)
#: CPU flags that decide precision and speed
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "avx512_vnni", "fma")
#: files beside a shard's results that are exported when present (globs below results/)
OPTIONAL_GLOBS = ("logs/**/*.warnings.json", "timing/**/*.tsv")


def code_version(repo: Path) -> dict:
    """The git commit of the code that ran, and whether the work tree had uncommitted changes."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "HEAD")
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    return {"commit": commit or None, "dirty": dirty if commit else None}


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def machine() -> dict:
    """CPU model and the flags that decide precision, cores, memory, host name, OS."""
    info: dict = {"host": platform.node(), "system": platform.platform(), "cores": os.cpu_count()}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), None)
    flags_line = next((line.split(":", 1)[1] for line in text.splitlines() if line.startswith("flags")), "")
    present = set(flags_line.split())
    info["cpu"] = model or platform.processor() or None
    info["cpu_flags"] = {flag: flag in present for flag in CPU_FLAGS}
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        info["memory_gib"] = round(pages * size / 2**30, 1)
    except (ValueError, OSError):
        info["memory_gib"] = None
    return info


def precisions(files: list[str], results: Path) -> dict[str, dict[str, str]]:
    """{"train": {run: precision}, "encode": {run/benchmark: precision}} from the exported files."""
    train: dict[str, str] = {}
    encode: dict[str, str] = {}
    for rel in files:
        if rel.endswith("train_summary.json"):
            summary = read_json(results / rel)
            value = summary.get("precision") or (summary.get("options") or {}).get("precision")
            train[str(Path(rel).parent)] = str(value)
        elif rel.endswith("embeddings/meta.json"):
            meta = read_json(results / rel)
            encode[str(Path(rel).parent.parent)] = f"{meta.get('precision')}/{meta.get('engine')}"
    return {"train": train, "encode": encode}


def job_seconds(results: Path, timing_files: list[str]) -> float:
    """The summed wall time of the shard's jobs (Snakemake benchmark files, column s)."""
    total = 0.0
    for rel in timing_files:
        lines = (results / rel).read_text().splitlines()
        if len(lines) >= 2:
            try:
                total += float(lines[1].split("\t")[0])
            except ValueError:
                continue
    return total


def run_fragments(runs: list[dict]) -> list[str]:
    """The path part that names each run in logs/ and timing/ (model/variant/sampling/seedN)."""
    return [f"/{r['model']}/{r['variant']}/{r['sampling']}/seed{str(r['seed']).removeprefix('seed')}" for r in runs]


#: a run's folder in a path (.../seedN/ or .../seedN.tsv), and a seed in a file name (plan_batches'
#: hybrid_seedN, verify_trec_eval's model+variant+sampling+seedN)
RUN_SEED = re.compile(r"/seed(\d+)(?=[/.]|$)")
NAMED_SEED = re.compile(r"[_+]seed(\d+)(?=[/.+]|$)")


def names_run(path: str, fragment: str) -> bool:
    """Whether `path` (with a leading /) names the run of `fragment`: seed1 is not seed13."""
    return re.search(re.escape(fragment) + r"(?=[/.]|$)", path) is not None


def belongs_to_shard(rel: str, own: list[str], shard: str) -> bool:
    """Whether an optional file (a timing or warnings file below results/) is this shard's: a file
    of a run only for the shard's own runs, a file naming a seed only for the seeds of those runs,
    the export's own files only for this shard; files of the shared stages (data, benchmarks,
    selection import) always. A results folder that served earlier shards holds their files too."""
    if not own:
        return True
    path = "/" + rel
    if "/export_shard/" in path:
        return Path(rel).name.split(".")[0] == shard
    if RUN_SEED.search(path):
        return any(names_run(path, fragment) for fragment in own)
    seeds = {fragment.rsplit("/seed", 1)[1] for fragment in own}
    return all(seed in seeds for seed in NAMED_SEED.findall(path))


def export_shard(contents: dict, results: Path, out: Path, repo: Path) -> dict:
    """Copy `contents["files"]` (paths below `results`, every one required) and the optional globs
    into `out/files/`, and write `out/manifest.json`. Returns the manifest."""
    started = time.time()
    files = list(dict.fromkeys(contents["files"]))
    missing = [rel for rel in files if not (results / rel).is_file()]
    if missing:
        raise InputError(f"shard {contents['shard']}: {len(missing)} result file(s) missing, e.g. {missing[:3]}")
    optional = sorted(
        {
            os.path.relpath(p, results)
            for pattern in OPTIONAL_GLOBS
            for p in glob.glob(str(results / pattern), recursive=True)
        }
        - set(files)
    )
    own = run_fragments(contents.get("runs", []))
    optional = [rel for rel in optional if belongs_to_shard(rel, own, contents["shard"])]
    exported: list[dict] = []
    with atomic_dir(out) as tmp:
        for rel in files + optional:
            source = results / rel
            target_rel = rel + ".gz" if Path(rel).name in COMPRESSED else rel
            target = tmp / "files" / target_rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if target_rel.endswith(".gz") and not rel.endswith(".gz"):
                with open(source, "rb") as src, open(target, "wb") as raw:
                    with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as handle:
                        shutil.copyfileobj(src, handle)
            else:
                shutil.copyfile(source, target)
            exported.append({"path": target_rel, "bytes": target.stat().st_size, "sha256": file_sha256(target)})
        logs = sorted((results / "logs").rglob("*.log")) if (results / "logs").is_dir() else []
        # the shard's own jobs: those of its runs (a results folder may hold an earlier shard's too)
        own_logs = [p for p in logs if any(names_run(p.as_posix(), f) for f in own)] or logs
        first_log = min((p.stat().st_mtime for p in own_logs), default=started)
        own_timings = [r for r in optional if r.startswith("timing/") and any(names_run("/" + r, f) for f in own)]
        design = contents["design"]
        manifest = {
            "format": 1,
            "study": contents["study"],
            "shard": contents["shard"],
            "kind": contents["kind"],
            "design_hash": design_hash(design),
            "design": design,
            "seeds": contents.get("seeds", []),
            "selection_seeds": contents.get("selection_seeds", []),
            "seed_overlap": contents.get("seed_overlap", False),
            "runs": contents.get("runs", []),
            "config": contents.get("config"),
            "code": code_version(repo),
            "packages": package_versions(),
            "machine": machine(),
            "precision": precisions(files, results),
            "times": {
                "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "wall_s": round(started - first_log, 1),
                "wall_from": "the oldest log of the shard's runs' jobs to the export",
                "jobs_s": round(job_seconds(results, own_timings), 1),
                "jobs_s_of": "the shard's runs' jobs (Snakemake benchmark files)",
            },
            "files": exported,
        }
        write_json(tmp / "manifest.json", manifest)
    total = sum(f["bytes"] for f in exported)
    log.info(
        "shard %s/%s: %d files, %.1f MB, design %s",
        contents["study"],
        contents["shard"],
        len(exported),
        total / 1e6,
        manifest["design_hash"],
    )
    return manifest
