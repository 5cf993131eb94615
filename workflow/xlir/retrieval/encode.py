"""Encode a prepared benchmark's questions and candidate pool once per model.

Embeddings are reused by every setting (monolingual, cross-lingual,
multilingual); `meta.json` records the model fingerprint they belong to.

The output folder is written atomically (a hidden temporary sibling renamed into place, so a job
killed or out of disk space leaves no partial folder and an earlier complete one intact) by one
process at a time (`xlir.common.io.exclusive`, which also removes what a killed writer left)."""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from xlir.benchmarks.prepared import PreparedFiles, as_prepared_files
from xlir.common.io import Busy, atomic_dir, exclusive, file_sha256, get_logger, read_json, read_jsonl, write_json
from xlir.model.encoder import DualEncoder
from xlir.model.onnx_engine import OnnxEmbedder, resolve_engine
from xlir.model.precision import PRECISIONS, resolve_precision

log = get_logger(__name__)


def model_fingerprint(model_dir: Path) -> str:
    weights = sorted(Path(model_dir).glob("*.safetensors"))
    return file_sha256(weights[0])[:16] if weights else "unknown"


def cache_key(
    model_dir: Path,
    prepared: str | Path | PreparedFiles,
    max_length: int,
    pooling: str,
    precision: str = "fp32",
    engine: str = "torch",
) -> str:
    """What the embeddings depend on: the weights, the texts, the truncation, the pooling and
    the precision of the forward pass (fp32 keys are those written before precision existed)."""
    weights = sorted(Path(model_dir).glob("*.safetensors"))
    files = as_prepared_files(prepared)
    parts = [file_sha256(w) for w in weights] + [
        file_sha256(files.questions),
        file_sha256(files.candidates),
        f"max_length={max_length}",
        f"pooling={pooling}",
    ]
    if precision != "fp32":
        parts.append(f"precision={precision}")
    if engine != "torch":
        parts.append(f"engine={engine}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


def encode_benchmark(
    model_dir: Path,
    prepared: str | Path | PreparedFiles,
    out_dir: Path,
    *,
    batch_size: int,
    max_length: int,
    batch_tokens: int | None = None,
    pooling: str,
    threads: int,
    device: str = "cpu",
    cache_dir: Path | None = None,
    precision: str = "fp32",
    engine: str = "torch",
) -> dict:
    """Encode every question and candidate once. With `cache_dir`, embeddings are
    cached under `{cache_dir}/{key}/` (key: model weights' SHA-256, the prepared
    texts, max_length, pooling, precision) and reused by any later job with the same key.
    `precision`: fp32, bf16 (forward pass under bf16 autocast; embeddings stay fp32)
    or auto (`xlir.model.precision.resolve_precision`). `engine`: torch, onnx (ONNX Runtime, fp32 CPU)
    or auto (`xlir.model.onnx_engine.resolve_engine`); meta.json records the one that ran."""
    with exclusive(out_dir, "embedding folder"):  # one writer per output folder
        if precision not in PRECISIONS:
            raise ValueError(
                f"config key models.<name>.encode_precision: '{precision}' is not one of {', '.join(PRECISIONS)}"
            )
        torch.set_num_threads(max(1, threads))
        prepared = as_prepared_files(prepared)
        precision = resolve_precision(precision, device)
        questions = read_jsonl(prepared.questions)
        candidates = read_jsonl(prepared.candidates)
        encoder = DualEncoder.load(model_dir, pooling=pooling, max_length=max_length, precision=precision).to(device)
        engine = resolve_engine(engine, encoder, device, precision, len(questions) + len(candidates))
        key = cache_key(model_dir, prepared, max_length, pooling, precision, engine) if cache_dir else None
        if key and (Path(cache_dir) / key / "meta.json").is_file():
            with atomic_dir(out_dir) as tmp:
                for path in (Path(cache_dir) / key).iterdir():
                    shutil.copyfile(path, tmp / path.name)
            log.info("embeddings reused from the cache %s", Path(cache_dir) / key)
            return read_json(Path(out_dir) / "meta.json")
        started = time.time()
        onnx = OnnxEmbedder(encoder, threads) if engine == "onnx" else None
        embed = onnx.embed if onnx else None
        q_emb = encoder.encode([q["text"] for q in questions], "query", batch_size, True, batch_tokens, embed)
        c_emb = encoder.encode([c["text"] for c in candidates], "passage", batch_size, True, batch_tokens, embed)
        seconds = time.time() - started
        with atomic_dir(out_dir) as tmp:
            np.save(tmp / "questions.npy", q_emb)
            np.save(tmp / "candidates.npy", c_emb)
            (tmp / "questions.ids").write_text("".join(q["qid"] + "\n" for q in questions), encoding="utf-8")
            (tmp / "candidates.ids").write_text("".join(c["cid"] + "\n" for c in candidates), encoding="utf-8")
            meta = {
                "model_fingerprint": model_fingerprint(model_dir),
                "n_questions": len(questions),
                "n_candidates": len(candidates),
                "dim": int(q_emb.shape[1]) if len(q_emb) else 0,
                "precision": precision,
                "engine": engine,
                "export_seconds": round(onnx.export_seconds, 2) if onnx else None,
                "batch_size": batch_size,
                "batch_tokens": batch_tokens,
                "encode_seconds": round(seconds, 2),
                "texts_per_second": round((len(questions) + len(candidates)) / max(seconds, 1e-9), 1),
            }
            meta["cache_key"] = key
            write_json(tmp / "meta.json", meta)
        if key:
            try:
                with exclusive(Path(cache_dir) / key, "cache entry"), atomic_dir(Path(cache_dir) / key) as tmp:
                    for path in Path(out_dir).iterdir():
                        shutil.copyfile(path, tmp / path.name)
            except Busy as busy:  # another job caches the same embeddings right now: its copy will do
                log.warning("embeddings not cached: %s", busy)
        log.info(
            "encoded %d questions and %d candidates in %.1fs (%s, %s)",
            len(questions),
            len(candidates),
            seconds,
            precision,
            engine,
        )
        return meta
