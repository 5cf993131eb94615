"""The large-model families on tiny randomly initialised twins (CPU, no network).

Each twin has the architecture of a model the study scales to, with 2-3 layers
and hidden size 32: BERT (LaBSE, e5), XLM-R (base / large), XLM-R XL (XL 3.5B,
XXL 10.7B: pre-LayerNorm blocks and a final encoder LayerNorm) and the mT5
encoder (blocks under `encoder.block.i`, gated FFN, relative attention bias).
For each: the layer-id mapping, a training step of every variant kind, the
parameter-group (profile) table and an encode of the trained checkpoint.
Other test modules import `build_twin` from here."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("peft")
pytestmark = [
    pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning"),
    pytest.mark.usefixtures("one_torch_thread"),
]

from xlir.common.io import read_tsv, write_jsonl  # noqa: E402
from xlir.model import architectures  # noqa: E402
from xlir.model.encoder import DualEncoder  # noqa: E402
from xlir.train.scaling import (  # noqa: E402
    apply_lora,
    build_param_groups,
    freeze_word_embeddings,
    layer_id_for_name,
    lora_budget,
    lora_ranks_of_model,
    prepare_model_for_variant,
)
from xlir.train.train import train  # noqa: E402
from xlir.train.variants import parse_variant

FAMILIES = ("bert", "xlm-roberta", "xlm-roberta-xl", "mt5")
TEXTS = [
    "what is the capital of france",
    "paris is the capital of france",
    "how do plants make food",
    "plants use photosynthesis",
    "cuál es la capital de francia",
    "parís es la capital de francia",
    "who wrote hamlet",
    "shakespeare wrote hamlet",
    "what is water made of",
    "hydrogen and oxygen",
    "was ist wasser",
    "wasser ist wasserstoff und sauerstoff",
    "query: passage:",
] * 3


def _wordpiece_tokenizer():
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    # a fixed vocabulary (the trainer's merges and ids vary from run to run): every word of TEXTS,
    # every character and its continuation form
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    normalizer = normalizers.BertNormalizer(lowercase=True)
    text = normalizer.normalize_str(" ".join(TEXTS))
    pieces = [w for w, _ in pre_tokenizers.BertPreTokenizer().pre_tokenize_str(text)]
    chars = sorted(set("".join(pieces)))
    words = specials + sorted(set(pieces) - set(chars)) + chars + ["##" + c for c in chars]
    tok = Tokenizer(models.WordPiece(vocab={w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def _unigram_tokenizer(with_bos: bool):
    """A sentencepiece-style (Unigram + Metaspace) tokenizer as XLM-R and mT5 use."""
    import json

    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "</s>", "<unk>", "<s>"]
    trained = Tokenizer(models.Unigram())
    trained.pre_tokenizer = pre_tokenizers.Metaspace()
    trained.train_from_iterator(
        TEXTS, trainers.UnigramTrainer(vocab_size=200, special_tokens=specials, unk_token="<unk>")
    )
    # the trainer's id order varies from run to run: renumber (specials first, then by score and piece)
    scores = {piece: score for piece, score in json.loads(trained.to_str())["model"]["vocab"]}
    pieces = [(p, scores[p]) for p in specials] + sorted(
        ((p, sc) for p, sc in scores.items() if p not in specials), key=lambda ps: (-round(ps[1], 6), ps[0])
    )
    tok = Tokenizer(models.Unigram(pieces, unk_id=specials.index("<unk>")))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    eos = tok.token_to_id("</s>")
    if with_bos:  # XLM-R: <s> text </s>
        bos = tok.token_to_id("<s>")
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A </s>", special_tokens=[("<s>", bos), ("</s>", eos)]
        )
        return PreTrainedTokenizerFast(
            tokenizer_object=tok,
            bos_token="<s>",
            eos_token="</s>",
            unk_token="<unk>",
            pad_token="<pad>",
            cls_token="<s>",
            sep_token="</s>",
            model_input_names=["input_ids", "attention_mask"],
        )
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", eos)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        model_input_names=["input_ids", "attention_mask"],
    )


def twin_config(
    family: str,
    vocab_size: int,
    pad_id: int,
    num_layers: int = 2,
    hidden: int = 32,
    dropout: float = 0.1,
    intermediate: int | None = None,
    heads: int = 2,
    max_positions: int = 80,
):
    import transformers as tf

    intermediate = intermediate or 2 * hidden
    if family == "bert":
        return tf.BertConfig(
            vocab_size=vocab_size,
            hidden_size=hidden,
            num_hidden_layers=num_layers,
            num_attention_heads=heads,
            intermediate_size=intermediate,
            max_position_embeddings=max_positions,
            hidden_dropout_prob=dropout,
            attention_probs_dropout_prob=dropout,
            pad_token_id=pad_id,
        )
    if family in ("xlm-roberta", "xlm-roberta-xl"):
        cls = tf.XLMRobertaConfig if family == "xlm-roberta" else tf.XLMRobertaXLConfig
        return cls(
            vocab_size=vocab_size,
            hidden_size=hidden,
            num_hidden_layers=num_layers,
            num_attention_heads=heads,
            intermediate_size=intermediate,
            max_position_embeddings=max_positions + 2,
            hidden_dropout_prob=dropout,
            attention_probs_dropout_prob=dropout,
            pad_token_id=pad_id,
            bos_token_id=3,
            eos_token_id=1,
            type_vocab_size=1,
        )
    if family == "mt5":
        return tf.MT5Config(
            vocab_size=vocab_size,
            d_model=hidden,
            d_kv=hidden // heads,
            d_ff=intermediate,
            num_layers=num_layers,
            num_heads=heads,
            dropout_rate=dropout,
            pad_token_id=pad_id,
            eos_token_id=1,
            decoder_start_token_id=pad_id,
            feed_forward_proj="gated-gelu",
            tie_word_embeddings=False,
        )
    raise ValueError(family)


def build_twin(
    path: Path, family: str, num_layers: int = 2, hidden: int = 32, dropout: float = 0.1, seed: int = 0, **config_kwargs
) -> Path:
    """Save a randomly initialised twin of `family` with its tokenizer to `path` (a transformers folder)."""
    import transformers as tf

    tokenizer = _wordpiece_tokenizer() if family == "bert" else _unigram_tokenizer(with_bos=family != "mt5")
    config = twin_config(family, len(tokenizer), tokenizer.pad_token_id, num_layers, hidden, dropout, **config_kwargs)
    torch.manual_seed(seed)
    if family == "bert":
        model = tf.BertModel(config, add_pooling_layer=False)
    elif family == "xlm-roberta":
        model = tf.XLMRobertaModel(config, add_pooling_layer=False)
    elif family == "xlm-roberta-xl":
        model = tf.XLMRobertaXLModel(config, add_pooling_layer=False)
    else:
        model = tf.MT5EncoderModel(config)
    model.save_pretrained(str(path), safe_serialization=True)
    tokenizer.save_pretrained(str(path))
    return Path(path)


EXPECTED_CLASS = {
    "bert": "BertModel",
    "xlm-roberta": "XLMRobertaModel",
    "xlm-roberta-xl": "XLMRobertaXLModel",
    "mt5": "MT5EncoderModel",
}
EXPECTED_FAMILY = {"bert": "bert", "xlm-roberta": "bert", "xlm-roberta-xl": "xlm-roberta-xl", "mt5": "t5-encoder"}


@pytest.fixture(scope="module", params=FAMILIES)
def twin(request, tmp_path_factory) -> tuple[str, Path]:
    family = request.param
    return family, build_twin(tmp_path_factory.mktemp(f"twin_{family}") / "model", family, num_layers=3)


# ---------------------------------------------------------------- layer ids


@pytest.mark.parametrize(
    "family, name, expected",
    [
        ("t5-encoder", "shared.weight", 0),
        ("t5-encoder", "encoder.embed_tokens.weight", 0),
        ("t5-encoder", "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", 1),
        ("t5-encoder", "encoder.block.2.layer.1.DenseReluDense.wi_0.weight", 3),
        ("t5-encoder", "base_model.model.encoder.block.1.layer.0.SelfAttention.q.lora_A.default.weight", 2),
        ("t5-encoder", "encoder.final_layer_norm.weight", 4),
        ("xlm-roberta-xl", "embeddings.word_embeddings.weight", 0),
        ("xlm-roberta-xl", "encoder.layer.1.attention.self_attn_layer_norm.weight", 2),
        ("xlm-roberta-xl", "encoder.LayerNorm.weight", 4),
        ("bert", "module.encoder.layer.2.output.dense.weight", 3),
    ],
)
def test_family_layer_ids(family, name, expected):
    assert layer_id_for_name(name, 3, architectures.FAMILIES[family]) == expected


def test_bert_regex_would_misplace_t5_blocks():
    """Why the mapping belongs to the family: `layer.N.` inside a T5 block is a sub-layer."""
    name = "encoder.block.2.layer.1.DenseReluDense.wo.weight"
    assert layer_id_for_name(name, 3) == 2  # BERT naming: sub-layer 1 -> wrong layer
    assert layer_id_for_name(name, 3, architectures.T5_ENCODER) == 3


def test_twin_loads_as_its_family(twin):
    family, path = twin
    encoder = DualEncoder.load(path, max_length=24)
    assert type(encoder.backbone).__name__ == EXPECTED_CLASS[family]
    arch = architectures.for_model(encoder.backbone)
    assert arch.family == EXPECTED_FAMILY[family]
    assert len(arch.blocks(encoder.backbone)) == 3
    ids = {arch.layer_id(n, 3) for n, _ in encoder.backbone.named_parameters()}
    # the embeddings, three blocks, and (pre-LN XL, mT5) the final LayerNorm above them
    expected = set(range(4)) | ({4} if family in ("xlm-roberta-xl", "mt5") else set())
    assert ids == expected


def test_freeze_word_embeddings_per_family(twin):
    family, path = twin
    backbone = DualEncoder.load(path).backbone
    vocab = backbone.get_input_embeddings().weight
    assert freeze_word_embeddings(backbone) == vocab.numel()
    assert not vocab.requires_grad
    assert sum(p.requires_grad for p in backbone.parameters()) == sum(1 for _ in backbone.parameters()) - 1


def test_lora_per_layer_ranks_per_family(twin):
    family, path = twin
    spec = parse_variant(
        {"name": "lora-linear", "kind": "lora", "profile": "linear", "rank": 4, "min_rank": 1, "alpha": 8}
    )
    backbone = DualEncoder.load(path).backbone
    budget = lora_budget(spec, backbone)
    model = apply_lora(backbone, spec)
    ranks = lora_ranks_of_model(model)
    assert ranks == budget["ranks"] and len(ranks) == 3
    assert ranks[0] < ranks[2]  # rising with depth
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == budget["achieved"] and abs(budget["rel_diff"]) < 0.05
    if family == "mt5":  # q, k, v, o and the gated FFN wi_0, wi_1, wo: 7 adapted linears per block
        adapted = {n.rsplit(".lora_A", 1)[0] for n, _ in model.named_parameters() if ".lora_A." in n}
        assert len(adapted) == 21 and all(".block." in n for n in adapted)


def test_decay_profile_per_family(twin):
    family, path = twin
    spec = parse_variant({"name": "decay-0.5", "kind": "decay", "gamma": 0.5})
    model = prepare_model_for_variant(DualEncoder.load(path).backbone, spec, False)
    lrs = {g["layer"]: g["lr"] for g in build_param_groups(model, spec, 1e-3, 0.01)}
    top = 4 if family in ("xlm-roberta-xl", "mt5") else 3
    assert max(lrs) == top
    for layer, lr in lrs.items():
        assert math.isclose(lr, 1e-3 * 0.5 ** (4 - layer), rel_tol=1e-12)


# ---------------------------------------------------------------- training step, profile table, encode


def _pairs_and_plan(tmp_path: Path, n_pairs: int = 8, batch: int = 4, steps: int = 2) -> tuple[Path, Path]:
    from xlir.train.plan_batches import plan_batches

    pairs = [
        {
            "pair_id": f"p{i}",
            "texts": {
                "en": {"question": f"what is the capital of thing {i}", "answer": f"paris is the capital of {i}"},
                "es": {"question": f"cuál es la capital de {i}", "answer": f"parís es la capital de {i}"},
            },
        }
        for i in range(n_pairs)
    ]
    write_jsonl(tmp_path / "pairs.jsonl", pairs)
    write_jsonl(tmp_path / "plan.jsonl", plan_batches(pairs, ["en", "es"], 0.5, batch, steps, seed=0))
    return tmp_path / "pairs.jsonl", tmp_path / "plan.jsonl"


@pytest.mark.parametrize(
    "variant",
    [
        {"name": "decay-0.8", "kind": "decay", "gamma": 0.8},
        {"name": "lora-linear", "kind": "lora", "profile": "linear", "rank": 4, "min_rank": 2, "alpha": 8},
    ],
)
def test_training_step_table_and_encode(twin, tmp_path, variant):
    family, path = twin
    pairs, plan = _pairs_and_plan(tmp_path)
    out = tmp_path / "run"
    summary = train(
        path,
        pairs,
        plan,
        parse_variant(variant),
        out / "model",
        out / "groups.tsv",
        out / "log.tsv",
        out / "summary.json",
        lr=1e-3,
        weight_decay=0.01,
        temperature=0.05,
        warmup_ratio=0.0,
        max_grad_norm=1.0,
        max_length=24,
        pooling="mean",
        freeze_word_embeddings=True,
        seed=1,
        threads=1,
    )
    assert summary["steps"] == 2
    assert all(math.isfinite(float(r["loss"])) for r in read_tsv(out / "log.tsv"))
    table = read_tsv(out / "groups.tsv")
    top = 4 if family in ("xlm-roberta-xl", "mt5") else 3
    assert [int(r["layer"]) for r in table] == list(range(top + 1))
    if variant["kind"] == "decay":
        for row in table[1:]:
            assert math.isclose(float(row["lr"]), 1e-3 * 0.8 ** (4 - int(row["layer"])), rel_tol=1e-5)
    else:
        ranks = [int(r["lora_rank"]) for r in table[1:4]]
        assert ranks == sorted(ranks) and ranks[0] < ranks[-1]
        assert int(table[0]["trainable"]) == 0  # LoRA: embeddings frozen
    # the saved checkpoint is a plain model of the same family (LoRA merged) and encodes
    trained = DualEncoder.load(out / "model", max_length=24)
    assert type(trained.backbone).__name__ == EXPECTED_CLASS[family]
    texts = ["who wrote hamlet", "was ist wasser", "plants use photosynthesis"]
    emb = trained.encode(texts, "passage", batch_size=2)
    assert emb.shape == (3, 32) and emb.dtype == np.float32
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    before = DualEncoder.load(path, max_length=24).encode(texts, "passage")
    assert not np.allclose(before, emb, atol=1e-6)
