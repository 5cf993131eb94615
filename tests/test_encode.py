"""Benchmark encoding: precision, the embedding cache and its key."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from xlir.model.onnx_engine import onnx_available
from xlir.model.precision import cpu_flags, cpu_has_bf16, resolve_precision
from xlir.retrieval.encode import cache_key, encode_benchmark


def _prepared(tmp_path: Path) -> Path:
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    questions = [{"qid": f"q{i}", "text": f"what is item number {i} made of"} for i in range(12)]
    candidates = [{"cid": f"c{i}", "text": f"item {i} is made of " + "wood and stone " * (i % 4)} for i in range(20)]
    for name, rows in (("questions.jsonl", questions), ("candidates.jsonl", candidates)):
        (prepared / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return prepared


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_bf16_encoding_is_close_to_fp32_and_cached_apart(tmp_path, tiny_model_dir):
    prepared = _prepared(tmp_path)
    cache = tmp_path / "cache"
    kwargs = dict(batch_size=8, max_length=32, pooling="mean", threads=1, cache_dir=cache)
    fp32 = encode_benchmark(tiny_model_dir, prepared, tmp_path / "fp32", precision="fp32", **kwargs)
    bf16 = encode_benchmark(tiny_model_dir, prepared, tmp_path / "bf16", precision="bf16", **kwargs)
    assert (fp32["precision"], bf16["precision"]) == ("fp32", "bf16")
    assert fp32["cache_key"] != bf16["cache_key"]
    assert sorted(p.name for p in cache.iterdir()) == sorted([fp32["cache_key"], bf16["cache_key"]])
    for name in ("questions.npy", "candidates.npy"):
        a, b = np.load(tmp_path / "fp32" / name), np.load(tmp_path / "bf16" / name)
        assert a.dtype == b.dtype == np.float32 and a.shape == b.shape
        assert not np.array_equal(a, b)  # bf16 really ran
        assert _cosines(a, b).min() > 0.99


def test_cache_hit_copies_the_same_embeddings(tmp_path, tiny_model_dir):
    prepared = _prepared(tmp_path)
    kwargs = dict(batch_size=8, max_length=32, pooling="mean", threads=1, cache_dir=tmp_path / "cache")
    first = encode_benchmark(tiny_model_dir, prepared, tmp_path / "a", **kwargs)
    second = encode_benchmark(tiny_model_dir, prepared, tmp_path / "b", **kwargs)
    assert first == second
    for name in ("questions.npy", "candidates.npy", "questions.ids", "candidates.ids"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_cache_key_depends_on_texts_truncation_and_precision(tmp_path, tiny_model_dir):
    prepared = _prepared(tmp_path)
    base = cache_key(tiny_model_dir, prepared, 32, "mean")
    assert base == cache_key(tiny_model_dir, prepared, 32, "mean", "fp32")  # keys written before precision existed
    assert base != cache_key(tiny_model_dir, prepared, 64, "mean")
    assert base != cache_key(tiny_model_dir, prepared, 32, "cls")
    assert base != cache_key(tiny_model_dir, prepared, 32, "mean", "bf16")
    with (prepared / "candidates.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"cid": "extra", "text": "one more"}) + "\n")
    assert base != cache_key(tiny_model_dir, prepared, 32, "mean")


def test_auto_precision_follows_the_cpu_flags(tmp_path):
    assert resolve_precision("auto", "cpu", frozenset({"avx2", "fma"})) == "fp32"
    assert resolve_precision("auto", "cpu", frozenset({"avx512f", "avx512_bf16"})) == "bf16"
    assert resolve_precision("auto", "cpu", frozenset({"amx_bf16"})) == "bf16"
    assert resolve_precision("fp32", "cpu", frozenset({"avx512_bf16"})) == "fp32"
    assert resolve_precision("bf16", "cpu", frozenset()) == "bf16"
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512_bf16\n", encoding="utf-8")
    assert cpu_flags(str(cpuinfo)) == {"fpu", "avx2", "avx512_bf16"}
    assert cpu_flags(str(tmp_path / "missing")) == frozenset()


def test_auto_precision_is_what_this_cpu_runs_fast(tmp_path, tiny_model_dir):
    meta = encode_benchmark(
        tiny_model_dir,
        _prepared(tmp_path),
        tmp_path / "out",
        batch_size=8,
        max_length=32,
        pooling="mean",
        threads=1,
        precision="auto",
    )
    assert meta["precision"] == ("bf16" if cpu_has_bf16() else "fp32") and meta["cache_key"] is None


def test_unknown_precision_is_refused(tmp_path, tiny_model_dir):
    with pytest.raises(ValueError, match="encode_precision: .fp16. is not one of fp32, bf16, auto"):
        encode_benchmark(
            tiny_model_dir,
            _prepared(tmp_path),
            tmp_path / "out",
            batch_size=8,
            max_length=32,
            pooling="mean",
            threads=1,
            precision="fp16",
        )
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not onnx_available(), reason="onnx / onnxruntime not installed")
def test_onnx_engine_matches_torch_and_is_recorded(tmp_path, tiny_model_dir):
    common = dict(batch_size=4, max_length=32, pooling="mean", threads=1, precision="fp32")
    prepared = _prepared(tmp_path)
    torch_meta = encode_benchmark(tiny_model_dir, prepared, tmp_path / "torch", engine="torch", **common)
    auto_meta = encode_benchmark(tiny_model_dir, prepared, tmp_path / "auto", engine="auto", **common)
    assert auto_meta["engine"] == "torch"  # a handful of texts: the export would not pay
    onnx_meta = encode_benchmark(tiny_model_dir, prepared, tmp_path / "onnx", engine="onnx", **common)
    assert torch_meta["engine"] == "torch" and torch_meta["export_seconds"] is None
    assert onnx_meta["engine"] == "onnx" and onnx_meta["export_seconds"] > 0
    for name in ("questions.npy", "candidates.npy"):
        a, b = np.load(tmp_path / "torch" / name), np.load(tmp_path / "onnx" / name)
        assert a.shape == b.shape and np.abs(a - b).max() < 1e-4
    assert cache_key(tiny_model_dir, prepared, 32, "mean", "fp32", "onnx") != cache_key(
        tiny_model_dir, prepared, 32, "mean", "fp32"
    )


def test_onnx_engine_refused_where_it_cannot_run(tmp_path, tiny_model_dir):
    prepared = _prepared(tmp_path)
    cases = [
        ({"precision": "bf16", "engine": "onnx"}, "encode_engine: onnx does not apply: precision bf16 is not fp32"),
        ({"engine": "tensorrt"}, "encode_engine: 'tensorrt' is not one of torch, onnx, auto"),
    ]
    for options, message in cases:
        with pytest.raises(ValueError, match=message):
            encode_benchmark(
                tiny_model_dir,
                prepared,
                tmp_path / "out",
                batch_size=4,
                max_length=32,
                pooling="mean",
                threads=1,
                **options,
            )
    assert not (tmp_path / "out").exists()
