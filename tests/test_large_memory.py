"""Memory switches on CPU: GradCache, gradient checkpointing, bf16 autocast, fused / 8-bit AdamW.

GradCache must give the loss and parameter gradients of the plain step (to
1e-5 in fp32); with dropout on, it must replay each sub-batch's random state."""

from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("peft")
pytestmark = [
    pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning"),
    pytest.mark.usefixtures("one_torch_thread"),
]

from safetensors.torch import load_file  # noqa: E402

from tests.test_large_architectures import _pairs_and_plan, build_twin  # noqa: E402
from xlir.common.io import read_json, read_tsv  # noqa: E402
from xlir.model.encoder import DualEncoder  # noqa: E402
from xlir.train.contrastive import cached_step, chunks, plain_step  # noqa: E402
from xlir.train.losses import info_nce  # noqa: E402
from xlir.train.options import TrainOptions, enable_gradient_checkpointing, make_optimizer, parse_options  # noqa: E402
from xlir.train.scaling import prepare_model_for_variant  # noqa: E402
from xlir.train.train import train  # noqa: E402
from xlir.train.variants import parse_variant  # noqa: E402

QUERIES = [
    "what is the capital of france",
    "who wrote hamlet",
    "how do plants make food",
    "was ist wasser",
    "cuál es la capital de francia",
    "what is water made of",
    "plants use photosynthesis",
    "who wrote the capital",
]
PASSAGES = [
    "paris is the capital of france",
    "shakespeare wrote hamlet",
    "plants use photosynthesis",
    "wasser ist wasserstoff und sauerstoff",
    "parís es la capital de francia",
    "hydrogen and oxygen",
    "how plants make food",
    "hamlet is a play",
]
TOL = 1e-5


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    root = tmp_path_factory.mktemp("memory_twins")
    return {
        (family, dropout): build_twin(root / f"{family}-{dropout}", family, num_layers=2, dropout=dropout)
        for family in ("bert", "xlm-roberta-xl", "mt5")
        for dropout in (0.0, 0.1)
    }


def _grads(encoder) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in encoder.backbone.named_parameters() if p.grad is not None}


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys() and a
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def _encoder(path, lora: bool = False) -> DualEncoder:
    encoder = DualEncoder.load(path, max_length=24)
    if lora:
        spec = parse_variant(
            {"name": "lora", "kind": "lora", "profile": "linear", "rank": 4, "min_rank": 2, "alpha": 8, "dropout": 0.0}
        )
        torch.manual_seed(0)
        encoder.backbone = prepare_model_for_variant(encoder.backbone, spec, True)
    return encoder.train()


@pytest.mark.parametrize("family", ["bert", "xlm-roberta-xl", "mt5"])
@pytest.mark.parametrize("chunk", [1, 3, 8])
@pytest.mark.parametrize("lora", [False, True])
def test_grad_cache_matches_plain_loss_and_gradients(twins, family, chunk, lora):
    path = twins[(family, 0.0)]
    plain = _encoder(path, lora)
    loss_plain = plain_step(plain, QUERIES, PASSAGES, 0.05)
    cached = _encoder(path, lora)
    loss_cached = cached_step(cached, QUERIES, PASSAGES, 0.05, chunk)
    assert abs(loss_plain.item() - loss_cached.item()) <= TOL
    assert _max_diff(_grads(plain), _grads(cached)) <= TOL


def test_grad_cache_replays_dropout(twins):
    """With dropout on, the re-encoding pass sees the masks of the first pass: the gradient equals
    that of encoding the same sub-batches with a graph in the same order."""
    path = twins[("bert", 0.1)]
    reference = _encoder(path)
    torch.manual_seed(7)
    q = torch.cat([reference(c, "query") for c in chunks(QUERIES, 3)])
    p = torch.cat([reference(c, "passage") for c in chunks(PASSAGES, 3)])
    loss_ref = info_nce(q, p, 0.05)
    loss_ref.backward()
    cached = _encoder(path)
    torch.manual_seed(7)
    loss_cached = cached_step(cached, QUERIES, PASSAGES, 0.05, 3)
    assert abs(loss_ref.item() - loss_cached.item()) <= TOL
    assert _max_diff(_grads(reference), _grads(cached)) <= TOL
    # and the masks did matter: without replay (a fresh seed) the gradient differs
    other = _encoder(path)
    torch.manual_seed(8)
    cached_step(other, QUERIES, PASSAGES, 0.05, 3)
    assert _max_diff(_grads(reference), _grads(other)) > 1e-4


@pytest.mark.parametrize("family", ["bert", "xlm-roberta-xl", "mt5"])
def test_gradient_checkpointing_same_gradients(twins, family):
    path = twins[(family, 0.1)]
    grads = []
    for checkpointing in (False, True):
        encoder = DualEncoder.load(path, max_length=24)
        if checkpointing:
            enable_gradient_checkpointing(encoder.backbone)
        encoder.train()
        torch.manual_seed(3)
        plain_step(encoder, QUERIES, PASSAGES, 0.05)
        grads.append(_grads(encoder))
    assert any(getattr(m, "gradient_checkpointing", False) for m in encoder.backbone.modules())
    assert _max_diff(*grads) <= TOL


def test_bf16_autocast_step_on_cpu(twins):
    path = twins[("xlm-roberta-xl", 0.0)]
    fp32 = _encoder(path)
    loss32 = plain_step(fp32, QUERIES, PASSAGES, 0.05)
    bf16 = DualEncoder.load(path, max_length=24, precision="bf16").train()
    assert bf16(QUERIES[:2], "query").dtype == torch.float32  # pooled embeddings come back in fp32
    loss16 = plain_step(bf16, QUERIES, PASSAGES, 0.05)
    assert math.isfinite(loss16.item()) and abs(loss16.item() - loss32.item()) < 0.05 * loss32.item()
    assert all(p.dtype == torch.float32 for p in bf16.backbone.parameters())  # fp32 master weights
    g32, g16 = _grads(fp32), _grads(bf16)
    assert g32.keys() == g16.keys()
    cos = torch.nn.functional.cosine_similarity(
        torch.cat([g.flatten() for g in g32.values()]), torch.cat([g.flatten() for g in g16.values()]), dim=0
    )
    assert cos > 0.95


def test_fused_adamw_matches_adamw(twins):
    path = twins[("bert", 0.0)]
    params = []
    for name in ("adamw", "adamw_fused"):
        encoder = _encoder(path)
        groups = [
            {
                "params": [p for p in encoder.backbone.parameters() if p.requires_grad],
                "lr": 1e-3,
                "weight_decay": 0.01,
                "initial_lr": 1e-3,
            }
        ]
        optimizer = make_optimizer(groups, name, 1e-3, 0.01)
        for _ in range(3):
            optimizer.zero_grad(set_to_none=True)
            plain_step(encoder, QUERIES, PASSAGES, 0.05)
            optimizer.step()
        params.append({n: p.detach().clone() for n, p in encoder.backbone.named_parameters()})
    assert _max_diff(*params) <= TOL


def test_adamw_8bit_where_installed(twins):
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        with pytest.raises(ValueError, match="training.optimizer.*bitsandbytes"):
            make_optimizer([{"params": [torch.nn.Parameter(torch.zeros(2))]}], "adamw_8bit", 1e-3, 0.0)
        pytest.skip("bitsandbytes is not installed here: adamw_8bit fails with a clear error")
    encoder = _encoder(twins[("bert", 0.0)])
    optimizer = make_optimizer(
        [{"params": [p for p in encoder.backbone.parameters() if p.requires_grad]}], "adamw_8bit", 1e-3, 0.01
    )
    plain_step(encoder, QUERIES, PASSAGES, 0.05)
    optimizer.step()


@pytest.mark.parametrize(
    "bad, key",
    [
        ({"precision": "fp16"}, "training.precision"),
        ({"grad_cache_chunk_size": 0}, "training.grad_cache_chunk_size"),
        ({"optimizer": "sgd"}, "training.optimizer"),
        ({"strategy": "zero3"}, "training.strategy"),
        ({"nproc_per_node": 0}, "training.nproc_per_node"),
        ({"gradient_checkpointing": "yes"}, "training.gradient_checkpointing"),
    ],
)
def test_options_are_checked(bad, key):
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        parse_options(bad)


def test_default_options_are_the_plain_loop():
    """The defaults (config/schema.yaml's): one process, no memory switches, auto precision."""
    assert parse_options({"lr": 1e-3, "steps": 4}) == TrainOptions(
        precision="auto",
        gradient_checkpointing=False,
        grad_cache_chunk_size=None,
        optimizer="adamw",
        strategy="ddp",
        nproc_per_node=1,
    )


def _run(path, tmp_path, name, variant, options, lr=1e-3):
    pairs, plan = _pairs_and_plan(tmp_path, n_pairs=8, batch=6, steps=3)
    out = tmp_path / name
    summary = train(
        path,
        pairs,
        plan,
        parse_variant(variant),
        out / "model",
        out / "groups.tsv",
        out / "log.tsv",
        out / "summary.json",
        lr=lr,
        weight_decay=0.01,
        temperature=0.05,
        warmup_ratio=0.0,
        max_grad_norm=1.0,
        max_length=24,
        pooling="mean",
        freeze_word_embeddings=True,
        seed=2,
        threads=1,
        options=options,
    )
    return out, summary


def test_training_with_grad_cache_and_checkpointing_equals_plain(twins, tmp_path):
    """Three optimizer steps end to end: the memory switches leave the trained weights unchanged.

    AdamW divides each gradient by its running RMS, so float noise in gradients near zero moves
    weights by up to ~lr; lr 1e-4 keeps that below the tolerance while the weights move by ~3e-4."""
    path = twins[("xlm-roberta-xl", 0.0)]
    variant = {"name": "uniform", "kind": "uniform"}
    # fp32 on both sides: the comparison is of the memory switches, not of bf16 rounding
    plain, _ = _run(path, tmp_path, "plain", variant, {"precision": "fp32"}, lr=1e-4)
    cached, summary = _run(
        path,
        tmp_path,
        "cached",
        variant,
        {"precision": "fp32", "grad_cache_chunk_size": 4, "gradient_checkpointing": True},
        lr=1e-4,
    )
    assert summary["options"]["grad_cache_chunk_size"] == 4
    a, b = load_file(plain / "model" / "model.safetensors"), load_file(cached / "model" / "model.safetensors")
    start = load_file(path / "model.safetensors")
    assert a.keys() == b.keys()
    assert max(float((a[k] - b[k]).abs().max()) for k in a) <= TOL
    assert max(float((a[k] - start[k]).abs().max()) for k in a if "word_embeddings" not in k) > 1e-4
    la = [float(r["loss"]) for r in read_tsv(plain / "log.tsv")]
    lb = [float(r["loss"]) for r in read_tsv(cached / "log.tsv")]
    assert max(abs(x - y) for x, y in zip(la, lb)) <= TOL


def test_training_with_every_switch(twins, tmp_path):
    path = twins[("mt5", 0.1)]
    variant = {"name": "lora-linear", "kind": "lora", "profile": "linear", "rank": 4, "min_rank": 2, "alpha": 8}
    out, summary = _run(
        path,
        tmp_path,
        "all",
        variant,
        {"precision": "bf16", "gradient_checkpointing": True, "grad_cache_chunk_size": 2, "optimizer": "adamw_fused"},
    )
    assert summary["options"]["precision"] == "bf16" and summary["precision"] == "bf16"
    assert all(math.isfinite(float(r["loss"])) for r in read_tsv(out / "log.tsv"))
    assert read_json(out / "summary.json")["steps"] == 3
    assert (out / "model" / "model.safetensors").exists()
