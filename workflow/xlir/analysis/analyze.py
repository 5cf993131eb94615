"""`xlir analyze`: where a fine-tuned run changed the network, layer by layer.

For a run's model and its base model on a fixed parallel probe set (xlir.analysis.probe_set):

- `layers.tsv`: layer, drift_cka (linear CKA between the run's and the base model's pooled
  representations of the probe texts; 1 = unchanged), align_acc / align_gap (translation
  retrieval accuracy among the probe questions and the parallel-minus-non-parallel cosine
  gap, mean over ordered language pairs; xlir.analysis.alignment) and base_align_acc /
  base_align_gap (the same for the base model). Layer 0 is the embedding output, layer i
  the output of transformer block i.
- `alignment_pairs.tsv`: layer, query_lang, target_lang, align_acc, align_gap, base_align_acc,
  base_align_gap (the per-pair figures behind the means).
- `update_size.tsv`: layer, group, rel_update (||ΔW||_F / ||W||_F), delta_norm, base_norm,
  n_params (xlir.analysis.update_size; layer L + 1: above the blocks).
- `summary.json`: the inputs, the probe, per-step timings and headline means.

With `cache_dir`, the base model's layer states are kept under `{cache_dir}/{key}/` (key:
the base weights, the probe texts, pooling and truncation): every run of a model and
benchmark shares one base encoding."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch

from xlir.analysis.alignment import PairAlignment, layer_alignment, mean_alignment
from xlir.analysis.cka import layerwise_cka
from xlir.analysis.layer_states import layer_states
from xlir.analysis.loading import LoadedModel, load_model
from xlir.analysis.probe_set import Probe
from xlir.analysis.targets import OUTPUTS
from xlir.analysis.update_size import as_rows, update_sizes
from xlir.common.io import Busy, atomic_dir, exclusive, file_sha256, get_logger, write_json, write_tsv

log = get_logger(__name__)

LAYER_COLUMNS = ["layer", "drift_cka", "align_acc", "align_gap", "base_align_acc", "base_align_gap"]
PAIR_COLUMNS = [
    "layer",
    "query_lang",
    "target_lang",
    "align_acc",
    "align_gap",
    "base_align_acc",
    "base_align_gap",
]
UPDATE_COLUMNS = ["layer", "group", "rel_update", "delta_norm", "base_norm", "n_params"]


def _weights(model_dir: Path) -> list[Path]:
    return sorted(model_dir.glob("*.safetensors")) or sorted(model_dir.glob("*.bin"))


def base_states_key(base_dir: Path, probe: Probe, pooling: str, max_length: int) -> str | None:
    """What the base model's layer states depend on; None when the weights are not files."""
    weights = _weights(base_dir)
    if not weights:
        return None
    parts = [file_sha256(w) for w in weights]
    parts += [hashlib.sha256("\x1f".join(probe.flat_texts()).encode()).hexdigest(), f"{pooling}", f"{max_length}"]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


def _by_id_and_language(states: np.ndarray, probe: Probe) -> np.ndarray:
    """(layers, ids * languages, d) -> (layers, ids, languages, d) (texts are id-major)."""
    layers, _, dim = states.shape
    return states.reshape(layers, len(probe.ids), len(probe.languages), dim)


def _alignments(states: np.ndarray, probe: Probe) -> list[list[PairAlignment]]:
    return [layer_alignment(layer, probe.languages) for layer in _by_id_and_language(states, probe)]


def _round(value: float, digits: int = 6) -> float:
    return round(float(value), digits)


def layer_rows(drift: list[float], run: list[list[PairAlignment]], base: list[list[PairAlignment]]) -> list[dict]:
    rows = []
    for layer, (cka, run_pairs, base_pairs) in enumerate(zip(drift, run, base)):
        acc, gap = mean_alignment(run_pairs)
        base_acc, base_gap = mean_alignment(base_pairs)
        rows.append(
            {
                "layer": layer,
                "drift_cka": _round(cka),
                "align_acc": _round(acc),
                "align_gap": _round(gap),
                "base_align_acc": _round(base_acc),
                "base_align_gap": _round(base_gap),
            }
        )
    return rows


def pair_rows(run: list[list[PairAlignment]], base: list[list[PairAlignment]]) -> list[dict]:
    rows = []
    for layer, (run_pairs, base_pairs) in enumerate(zip(run, base)):
        for r, b in zip(run_pairs, base_pairs):
            rows.append(
                {
                    "layer": layer,
                    "query_lang": r.query_lang,
                    "target_lang": r.target_lang,
                    "align_acc": _round(r.accuracy),
                    "align_gap": _round(r.gap),
                    "base_align_acc": _round(b.accuracy),
                    "base_align_gap": _round(b.gap),
                }
            )
    return rows


class _Timer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def __call__(self, step: str, started: float) -> None:
        self.seconds[step] = round(time.time() - started, 2)


def _base_states(base: LoadedModel, entry: Path | None, encode: Callable) -> tuple[np.ndarray, bool]:
    """The base model's layer states, from the cache entry `entry` when it holds them."""
    if entry is not None and (entry / "layer_states.npy").is_file():
        log.info("base layer states reused from the cache %s", entry)
        return np.load(entry / "layer_states.npy"), True
    states = encode(base.backbone, base.tokenizer_dir)
    if entry is not None:
        try:
            with exclusive(entry, "cache entry"), atomic_dir(entry) as tmp:
                np.save(tmp / "layer_states.npy", states)
        except Busy as busy:  # another job caches the same states right now: its copy will do
            log.warning("base layer states not cached: %s", busy)
    return states, False


def analyze(
    base_dir: str | Path,
    model_dir: str | Path,
    probe: Probe,
    out_dir: str | Path,
    *,
    pooling: str = "mean",
    max_length: int = 128,
    batch_size: int = 64,
    batch_tokens: int | None = 2048,
    device: str = "cpu",
    threads: int | None = None,
    cache_dir: str | Path | None = None,
    probe_file: str | Path | None = None,
) -> dict:
    """Write the analysis files of one run (see the module docstring) to `out_dir`; returns the summary."""
    if pooling not in ("mean", "cls"):
        raise ValueError(f"pooling '{pooling}' is not 'mean' or 'cls'")
    if threads:
        torch.set_num_threads(max(1, threads))
    base_dir, model_dir, out_dir = Path(base_dir), Path(model_dir), Path(out_dir)
    timer, started = _Timer(), time.time()

    step = time.time()
    base = load_model(base_dir, base_dir)
    run = load_model(model_dir, base_dir)
    timer("load", step)

    step = time.time()
    updates = update_sizes(run.backbone, base.backbone)
    timer("update_size", step)

    texts = probe.flat_texts()
    encode = partial(
        layer_states,
        texts=texts,
        pooling=pooling,
        max_length=max_length,
        batch_size=batch_size,
        batch_tokens=batch_tokens,
    )
    base.backbone.to(device)
    run.backbone.to(device)
    step = time.time()
    key = base_states_key(base_dir, probe, pooling, max_length) if cache_dir else None
    base_states, cached = _base_states(base, Path(cache_dir) / key if key else None, encode)
    timer("encode_base", step)
    step = time.time()
    run_states = encode(run.backbone, run.tokenizer_dir)
    timer("encode_run", step)
    if run_states.shape != base_states.shape:
        raise ValueError(f"the run's layer states {run_states.shape} differ from the base's {base_states.shape}")

    step = time.time()
    drift = layerwise_cka(run_states, base_states)
    timer("cka", step)
    step = time.time()
    run_alignment, base_alignment = _alignments(run_states, probe), _alignments(base_states, probe)
    timer("alignment", step)

    layers = layer_rows(drift, run_alignment, base_alignment)
    write_tsv(out_dir / "layers.tsv", layers, LAYER_COLUMNS)
    write_tsv(out_dir / "alignment_pairs.tsv", pair_rows(run_alignment, base_alignment), PAIR_COLUMNS)
    write_tsv(out_dir / "update_size.tsv", [_rounded(r) for r in as_rows(updates)], UPDATE_COLUMNS)
    timer("total", started)
    top = layers[-1]
    summary = {
        "base_model": str(base_dir),
        "model": str(model_dir),
        "merged_adapter": run.merged_adapter,
        "probe": {
            "file": str(probe_file) if probe_file else None,
            "questions": probe.source,
            "seed": probe.seed,
            "n_ids": len(probe.ids),
            "languages": probe.languages,
            "n_texts": len(texts),
        },
        "pooling": pooling,
        "max_length": max_length,
        "device": device,
        "threads": torch.get_num_threads(),
        "n_layers": len(layers),
        "base_states_cached": cached,
        "seconds": timer.seconds,
        "mean_drift_cka": _round(float(np.nanmean(drift))),
        "last_layer": {k: top[k] for k in LAYER_COLUMNS if k != "layer"},
        "files": list(OUTPUTS),
    }
    write_json(out_dir / "summary.json", summary)
    log.info(
        "analysed %s against %s on %d texts x %d layers in %.1fs (%s)",
        model_dir,
        base_dir,
        len(texts),
        len(layers),
        timer.seconds["total"],
        ", ".join(f"{k} {v}s" for k, v in timer.seconds.items() if k != "total"),
    )
    return summary


def _rounded(row: dict) -> dict:
    return {k: _round(v, 8) if isinstance(v, float) else v for k, v in row.items()}
