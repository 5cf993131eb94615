"""Encode a prepared benchmark's questions and candidate pool once per model.

Embeddings are reused by every setting (monolingual, cross-lingual,
multilingual); `meta.json` records the model fingerprint they belong to."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from xlir.encoder import DualEncoder
from xlir.io_utils import atomic_dir, file_sha256, get_logger, read_jsonl, write_json

log = get_logger("encode")


def model_fingerprint(model_dir: Path) -> str:
    weights = sorted(Path(model_dir).glob("*.safetensors"))
    return file_sha256(weights[0])[:16] if weights else "unknown"


def encode_benchmark(model_dir: Path, prepared_dir: Path, out_dir: Path, *, batch_size: int, max_length: int,
                     pooling: str, threads: int, device: str = "cpu") -> dict:
    torch.set_num_threads(max(1, threads))
    prepared_dir = Path(prepared_dir)
    questions = read_jsonl(prepared_dir / "questions.jsonl")
    candidates = read_jsonl(prepared_dir / "candidates.jsonl")
    encoder = DualEncoder.load(model_dir, pooling=pooling, max_length=max_length).to(device)
    started = time.time()
    q_emb = encoder.encode([q["text"] for q in questions], "query", batch_size, progress=True)
    c_emb = encoder.encode([c["text"] for c in candidates], "passage", batch_size, progress=True)
    seconds = time.time() - started
    with atomic_dir(out_dir) as tmp:
        np.save(tmp / "questions.npy", q_emb)
        np.save(tmp / "candidates.npy", c_emb)
        (tmp / "questions.ids").write_text("".join(q["qid"] + "\n" for q in questions), encoding="utf-8")
        (tmp / "candidates.ids").write_text("".join(c["cid"] + "\n" for c in candidates), encoding="utf-8")
        meta = {"model_fingerprint": model_fingerprint(model_dir), "n_questions": len(questions),
                "n_candidates": len(candidates), "dim": int(q_emb.shape[1]) if len(q_emb) else 0,
                "encode_seconds": round(seconds, 2),
                "texts_per_second": round((len(questions) + len(candidates)) / max(seconds, 1e-9), 1)}
        write_json(tmp / "meta.json", meta)
    log.info("encoded %d questions and %d candidates in %.1fs", len(questions), len(candidates), seconds)
    return meta
