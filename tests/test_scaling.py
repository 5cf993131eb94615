"""Tests for xlir.train.scaling on tiny random BERT / XLM-R models (CPU, no network)."""

from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("peft")
pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")
from transformers import BertConfig, BertModel, XLMRobertaConfig, XLMRobertaModel  # noqa: E402

from xlir.common.io import read_tsv  # noqa: E402
from xlir.train.scaling import (  # noqa: E402
    apply_lora,
    build_param_groups,
    is_no_decay,
    layer_id_for_name,
    lora_budget,
    lora_rank_allocation,
    merge_and_unload,
    num_transformer_layers,
    param_group_table,
    prepare_model_for_variant,
    write_param_group_table,
)
from xlir.train.variants import VariantSpec, parse_variant  # noqa: E402

L = 4
BASE_LR = 1e-3
WD = 0.01


def tiny_bert(num_layers: int = L) -> BertModel:
    torch.manual_seed(0)
    return BertModel(
        BertConfig(
            vocab_size=100, hidden_size=32, num_hidden_layers=num_layers, num_attention_heads=2, intermediate_size=64
        )
    )


def tiny_xlmr(num_layers: int = 3) -> XLMRobertaModel:
    torch.manual_seed(0)
    return XLMRobertaModel(
        XLMRobertaConfig(
            vocab_size=100,
            hidden_size=32,
            num_hidden_layers=num_layers,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=40,
        )
    )


def trainable_count(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def lora_spec(profile: str, **extra) -> VariantSpec:
    d = {"name": f"lora-{profile}", "kind": "lora", "profile": profile, "rank": 8, "alpha": 16}
    if profile != "uniform":
        d["min_rank"] = 2
    d.update(extra)
    return parse_variant(d)


def group_lrs(groups) -> dict[int, float]:
    lrs: dict[int, float] = {}
    for group in groups:
        assert lrs.setdefault(group["layer"], group["lr"]) == group["lr"]
    return lrs


# ---------------------------------------------------------------- layer ids


@pytest.mark.parametrize(
    "name, expected",
    [
        ("embeddings.word_embeddings.weight", 0),
        ("embeddings.LayerNorm.bias", 0),
        ("encoder.layer.0.attention.self.query.weight", 1),
        ("encoder.layer.3.output.dense.bias", 4),
        ("base_model.model.encoder.layer.2.attention.self.value.lora_A.default.weight", 3),
        ("base_model.model.embeddings.position_embeddings.weight", 0),
        ("roberta.encoder.layer.1.intermediate.dense.weight", 2),
        ("pooler.dense.weight", 5),
        ("base_model.model.pooler.dense.bias", 5),
        ("projection.weight", 5),
    ],
)
def test_layer_id_for_name(name, expected):
    assert layer_id_for_name(name, L) == expected


def test_layer_id_rejects_block_beyond_config():
    with pytest.raises(ValueError, match="block 7"):
        layer_id_for_name("encoder.layer.7.output.dense.weight", L)


def test_num_transformer_layers_plain_and_wrapped():
    model = tiny_bert()
    assert num_transformer_layers(model) == L
    wrapped = apply_lora(tiny_bert(), lora_spec("uniform"))
    assert num_transformer_layers(wrapped) == L


def test_every_bert_parameter_gets_a_valid_layer():
    model = tiny_bert()
    ids = {layer_id_for_name(n, L) for n, _ in model.named_parameters()}
    assert ids == set(range(L + 2))


# ---------------------------------------------------------------- learning rates


def test_uniform_lrs():
    model = prepare_model_for_variant(tiny_bert(), parse_variant({"name": "uniform", "kind": "uniform"}), False)
    groups = build_param_groups(model, parse_variant({"name": "uniform", "kind": "uniform"}), BASE_LR, WD)
    assert group_lrs(groups) == {layer: BASE_LR for layer in range(L + 2)}


def test_decay_lrs_hand_computed():
    spec = parse_variant({"name": "decay-0.8", "kind": "decay", "gamma": 0.8})
    model = prepare_model_for_variant(tiny_bert(), spec, False)
    lrs = group_lrs(build_param_groups(model, spec, BASE_LR, WD))
    # L = 4: the pooler (layer 5) gets the base lr, the embeddings 0.8 ** 5
    expected = {5: 1e-3, 4: 8e-4, 3: 6.4e-4, 2: 5.12e-4, 1: 4.096e-4, 0: 3.2768e-4}
    assert set(lrs) == set(expected)
    for layer, lr in expected.items():
        assert math.isclose(lrs[layer], lr, rel_tol=1e-12), layer


def test_grow_lrs_hand_computed():
    spec = parse_variant({"name": "grow-0.9", "kind": "grow", "gamma": 0.9})
    model = prepare_model_for_variant(tiny_bert(), spec, False)
    lrs = group_lrs(build_param_groups(model, spec, BASE_LR, WD))
    expected = {0: 1e-3, 1: 9e-4, 2: 8.1e-4, 3: 7.29e-4, 4: 6.561e-4, 5: 5.9049e-4}
    for layer, lr in expected.items():
        assert math.isclose(lrs[layer], lr, rel_tol=1e-12), layer


def test_initial_lr_and_scheduler_compatibility():
    spec = parse_variant({"name": "decay-0.8", "kind": "decay", "gamma": 0.8})
    model = prepare_model_for_variant(tiny_bert(), spec, False)
    groups = build_param_groups(model, spec, BASE_LR, WD)
    optimizer = torch.optim.AdamW(groups, lr=BASE_LR)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5)
    for group in optimizer.param_groups:
        assert group["initial_lr"] == pytest.approx(BASE_LR * 0.8 ** (L + 1 - group["layer"]))
        assert group["lr"] == pytest.approx(0.5 * group["initial_lr"])
    del scheduler


# ---------------------------------------------------------------- freezing


@pytest.mark.parametrize("k", [0, 1, 3, 5])
def test_freeze_k(k):
    spec = parse_variant({"name": f"freeze-{k}", "kind": "freeze", "k": k})
    model = prepare_model_for_variant(tiny_bert(), spec, False)
    for name, param in model.named_parameters():
        assert param.requires_grad == (layer_id_for_name(name, L) >= k), name
    groups = build_param_groups(model, spec, BASE_LR, WD)
    assert {g["layer"] for g in groups} == set(range(k, L + 2))
    assert all(g["lr"] == BASE_LR for g in groups)


def test_freeze_too_many_layers():
    spec = parse_variant({"name": "freeze-9", "kind": "freeze", "k": 9})
    with pytest.raises(ValueError, match="'k'"):
        prepare_model_for_variant(tiny_bert(), spec, False)


def test_build_groups_refuses_unfrozen_model_for_freeze_variant():
    spec = parse_variant({"name": "freeze-2", "kind": "freeze", "k": 2})
    with pytest.raises(ValueError, match="prepare_model_for_variant"):
        build_param_groups(tiny_bert(), spec, BASE_LR, WD)


def test_freeze_word_embeddings_same_across_variants():
    specs = [
        parse_variant(d)
        for d in (
            {"name": "uniform", "kind": "uniform"},
            {"name": "decay-0.8", "kind": "decay", "gamma": 0.8},
            {"name": "grow-0.9", "kind": "grow", "gamma": 0.9},
        )
    ]
    for spec in specs:
        model = prepare_model_for_variant(tiny_bert(), spec, True)
        params = dict(model.named_parameters())
        assert not params["embeddings.word_embeddings.weight"].requires_grad
        assert params["embeddings.position_embeddings.weight"].requires_grad
        names = {n for g in build_param_groups(model, spec, BASE_LR, WD) for n in g["param_names"]}
        assert "embeddings.word_embeddings.weight" not in names
        assert "embeddings.position_embeddings.weight" in names


# ---------------------------------------------------------------- weight decay and group coverage


def test_no_decay_rule():
    assert is_no_decay("encoder.layer.0.attention.output.LayerNorm.weight")
    assert is_no_decay("embeddings.LayerNorm.bias")
    assert is_no_decay("encoder.layer.0.attention.self.query.bias")
    assert not is_no_decay("encoder.layer.0.attention.self.query.weight")
    assert not is_no_decay("base_model.model.encoder.layer.0.attention.self.query.lora_A.default.weight")


def test_groups_weight_decay_split():
    spec = parse_variant({"name": "uniform", "kind": "uniform"})
    model = prepare_model_for_variant(tiny_bert(), spec, False)
    for group in build_param_groups(model, spec, BASE_LR, WD):
        for name in group["param_names"]:
            if name.endswith(".bias") or "LayerNorm" in name:
                assert group["weight_decay"] == 0.0 and not group["decay"], name
            else:
                assert group["weight_decay"] == WD and group["decay"], name


@pytest.mark.parametrize(
    "variant",
    [
        {"name": "uniform", "kind": "uniform"},
        {"name": "decay-0.8", "kind": "decay", "gamma": 0.8},
        {"name": "freeze-2", "kind": "freeze", "k": 2},
        {"name": "lora-exp", "kind": "lora", "profile": "exp", "rank": 4, "min_rank": 1},
    ],
)
@pytest.mark.parametrize("freeze_words", [False, True])
def test_every_trainable_parameter_in_exactly_one_group(variant, freeze_words):
    spec = parse_variant(variant)
    model = prepare_model_for_variant(tiny_bert(), spec, freeze_words)
    groups = build_param_groups(model, spec, BASE_LR, WD)
    grouped = [id(p) for g in groups for p in g["params"]]
    assert len(grouped) == len(set(grouped))
    assert set(grouped) == {id(p) for p in model.parameters() if p.requires_grad}
    keys = [(g["layer"], g["decay"]) for g in groups]
    assert len(keys) == len(set(keys))
    for g in groups:
        assert len(g["params"]) == len(g["param_names"]) > 0
        assert g["initial_lr"] == g["lr"]
    torch.optim.AdamW(groups, lr=BASE_LR)  # accepted as is


# ---------------------------------------------------------------- LoRA


def test_lora_trainable_counts_match_uniform():
    counts = {}
    for profile in ("uniform", "linear", "exp"):
        model = apply_lora(tiny_bert(), lora_spec(profile))
        counts[profile] = trainable_count(model)
    budget = counts["uniform"]
    # one rank step of the smallest block: sum of in + out features of its targets
    hidden, inter = 32, 64
    step = 4 * (2 * hidden) + 2 * (hidden + inter)
    for profile in ("linear", "exp"):
        assert abs(counts[profile] - budget) <= max(0.01 * budget, step), (profile, counts)
    # with identical blocks integer ranks can match exactly
    assert counts["linear"] == counts["exp"] == budget


def test_lora_budget_reports_relative_difference():
    info = lora_budget(lora_spec("exp"), tiny_bert())
    assert set(info) >= {"ranks", "budget", "achieved", "rel_diff"}
    assert abs(info["rel_diff"]) <= 0.01
    assert info["achieved"] == sum(info["costs"][b] * r for b, r in info["ranks"].items())


@pytest.mark.parametrize("profile", ["linear", "exp"])
def test_rank_allocation_direction(profile):
    up = lora_rank_allocation(lora_spec(profile, direction="increasing"), tiny_bert())
    down = lora_rank_allocation(lora_spec(profile, direction="decreasing"), tiny_bert())
    assert list(up) == list(range(L)) and list(down) == list(range(L))
    ranks_up, ranks_down = list(up.values()), list(down.values())
    assert ranks_up == sorted(ranks_up) and ranks_up[0] < ranks_up[-1]
    assert ranks_down == sorted(ranks_down, reverse=True) and ranks_down[0] > ranks_down[-1]
    assert ranks_up[0] == 2 and ranks_down[-1] == 2  # min_rank at the shallow / deep end
    assert sum(ranks_up) == sum(ranks_down) == 8 * L
    assert min(ranks_up + ranks_down) >= 1


def test_rank_allocation_uniform_and_default_direction():
    assert lora_rank_allocation(lora_spec("uniform"), tiny_bert()) == {i: 8 for i in range(L)}
    default = lora_rank_allocation(
        parse_variant({"name": "lora-linear", "kind": "lora", "profile": "linear", "rank": 8, "min_rank": 2}),
        tiny_bert(),
    )
    assert default == lora_rank_allocation(lora_spec("linear", direction="increasing"), tiny_bert())


def test_rank_allocation_e5_small_like_shapes():
    config = BertConfig(
        vocab_size=50, hidden_size=384, num_hidden_layers=12, num_attention_heads=12, intermediate_size=1536
    )
    model = BertModel(config)
    for profile in ("linear", "exp"):
        info = lora_budget(lora_spec(profile), model)
        ranks = list(info["ranks"].values())
        assert len(ranks) == 12 and ranks == sorted(ranks) and ranks[0] == 2
        assert info["achieved"] == info["budget"] == 8 * 12 * (4 * 768 + 2 * (384 + 1536))


def test_lora_ranks_applied_per_layer_and_alpha_ratio_constant():
    spec = lora_spec("exp")
    ranks = lora_rank_allocation(spec, tiny_bert())
    model = apply_lora(tiny_bert(), spec)
    seen = set()
    for name, module in model.named_modules():
        if hasattr(module, "lora_A") and "default" in getattr(module, "r", {}):
            block = int(name.split("layer.")[1].split(".")[0])
            assert module.r["default"] == ranks[block], name
            assert module.scaling["default"] == pytest.approx(16 / 8), name
            seen.add(name.rsplit(".", 1)[-1])
    assert seen == {"query", "key", "value", "dense"}
    assert not any("pooler" in n and "lora" in n for n, _ in model.named_parameters())


def test_lora_freezes_base_weights():
    model = prepare_model_for_variant(tiny_bert(), lora_spec("linear"), False)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert any(n.endswith("query.base_layer.weight") for n in frozen)
    assert any("LayerNorm" in n for n in frozen) and any("pooler" in n for n in frozen)


def test_lora_groups_use_block_layer_ids():
    spec = lora_spec("uniform")
    model = prepare_model_for_variant(tiny_bert(), spec, True)
    groups = build_param_groups(model, spec, BASE_LR, WD)
    assert {g["layer"] for g in groups} == set(range(1, L + 1))
    assert all(g["decay"] and g["lr"] == BASE_LR for g in groups)


def test_build_groups_refuses_unwrapped_model_for_lora_variant():
    with pytest.raises(ValueError, match="apply_lora"):
        build_param_groups(tiny_bert(), lora_spec("uniform"), BASE_LR, WD)


def test_optimizer_step_changes_only_lora_params():
    spec = lora_spec("linear", dropout=0.0)
    model = prepare_model_for_variant(tiny_bert(), spec, False)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.AdamW(build_param_groups(model, spec, BASE_LR, WD), lr=BASE_LR)
    input_ids = torch.randint(0, 100, (2, 7))
    for _ in range(2):  # B starts at zero: A only gets gradients from the second step on
        optimizer.zero_grad()
        out = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids))
        out.last_hidden_state.pow(2).mean().backward()
        optimizer.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}
    assert changed and all(".lora_" in n for n in changed)
    assert any(".lora_A." in n for n in changed) and any(".lora_B." in n for n in changed)


def test_merge_and_unload_returns_plain_model():
    model = apply_lora(tiny_bert(), lora_spec("exp"))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".lora_B." in name:
                param.normal_()
    model.eval()
    input_ids = torch.randint(0, 100, (2, 5))
    with torch.no_grad():
        expected = model(input_ids=input_ids).last_hidden_state
    merged = merge_and_unload(model)
    assert type(merged) is BertModel
    assert not any("lora" in n for n, _ in merged.named_parameters())
    with torch.no_grad():
        torch.testing.assert_close(merged(input_ids=input_ids).last_hidden_state, expected, rtol=1e-4, atol=1e-5)
    plain = tiny_bert()
    assert merge_and_unload(plain) is plain


# ---------------------------------------------------------------- XLM-R


def test_xlmr_decay_and_lora():
    n = 3
    spec = parse_variant({"name": "decay-0.5", "kind": "decay", "gamma": 0.5})
    model = prepare_model_for_variant(tiny_xlmr(n), spec, True)
    lrs = group_lrs(build_param_groups(model, spec, BASE_LR, WD))
    assert lrs == {layer: pytest.approx(BASE_LR * 0.5 ** (n + 1 - layer)) for layer in range(n + 2)}

    counts = {}
    for profile in ("uniform", "linear", "exp"):
        spec = lora_spec(profile)
        model = prepare_model_for_variant(tiny_xlmr(n), spec, True)
        counts[profile] = trainable_count(model)
        groups = build_param_groups(model, spec, BASE_LR, WD)
        assert {g["layer"] for g in groups} == set(range(1, n + 1))
    assert counts["linear"] == counts["exp"] == counts["uniform"]


# ---------------------------------------------------------------- table


def test_param_group_table(tmp_path):
    spec = parse_variant({"name": "decay-0.8", "kind": "decay", "gamma": 0.8})
    model = prepare_model_for_variant(tiny_bert(), spec, True)
    rows = param_group_table(model, spec, BASE_LR, WD)
    assert [r["layer"] for r in rows] == list(range(L + 2))
    assert sum(r["parameters"] for r in rows) == sum(p.numel() for p in model.parameters())
    assert sum(r["trainable"] for r in rows) == trainable_count(model)
    assert rows[0]["trainable"] == rows[0]["parameters"] - 100 * 32  # word embeddings frozen
    assert rows[1]["weight_decay"] == "0.01/0"
    assert rows[L + 1]["lr"] == pytest.approx(BASE_LR)
    path = tmp_path / "param_groups.tsv"
    write_param_group_table(rows, path)
    table = read_tsv(path)
    assert list(table[0]) == ["layer", "parameters", "trainable", "lr", "weight_decay", "lora_rank"]
    assert float(table[0]["lr"]) == pytest.approx(BASE_LR * 0.8 ** (L + 1))


def test_param_group_table_lora():
    spec = lora_spec("linear")
    model = prepare_model_for_variant(tiny_bert(), spec, False)
    ranks = lora_rank_allocation(spec, tiny_bert())
    rows = param_group_table(model, spec, BASE_LR, WD)
    assert rows == param_group_table(model, spec, BASE_LR, WD, lora_ranks=ranks)
    assert [r["lora_rank"] for r in rows] == ["", *ranks.values(), ""]
    assert rows[0]["trainable"] == 0 and rows[0]["lr"] == 0.0 and rows[0]["weight_decay"] == "-"
    assert rows[1]["weight_decay"] == "0.01/-"
    assert sum(r["trainable"] for r in rows) == trainable_count(model)


def test_param_group_table_freeze():
    spec = parse_variant({"name": "freeze-2", "kind": "freeze", "k": 2})
    model = prepare_model_for_variant(tiny_bert(), spec, False)
    rows = param_group_table(model, spec, BASE_LR, WD)
    assert [r["trainable"] for r in rows[:2]] == [0, 0]
    assert [r["lr"] for r in rows[:2]] == [0.0, 0.0]
    assert all(r["trainable"] == r["parameters"] and r["lr"] == BASE_LR for r in rows[2:])


# ---------------------------------------------------------------- config validation


def test_parse_valid_variants():
    assert parse_variant({"name": "uniform", "kind": "uniform"}) == VariantSpec(name="uniform", kind="uniform")
    decay = parse_variant({"name": "decay-0.8", "kind": "decay", "gamma": 0.8})
    assert decay.gamma == 0.8 and decay.lr_scale(L + 1, L) == 1.0
    lora = parse_variant({"name": "lora-uniform", "kind": "lora", "profile": "uniform", "rank": 8, "alpha": 16})
    assert (lora.rank, lora.alpha, lora.profile, lora.min_rank) == (8, 16.0, "uniform", None)
    linear = parse_variant({"name": "lora-linear", "kind": "lora", "profile": "linear", "rank": 8})
    assert (linear.min_rank, linear.direction, linear.alpha) == (2, "increasing", 16.0)
    assert parse_variant(linear) == linear
    assert parse_variant(linear.to_dict()) == linear
    assert parse_variant({"name": "freeze-4", "kind": "freeze", "k": 4}).k == 4


@pytest.mark.parametrize(
    "config, words",
    [
        ({"kind": "uniform"}, ["'name'"]),
        ({"name": "a/b", "kind": "uniform"}, ["'name'"]),
        ({"name": "x", "kind": "scale"}, ["'kind'", "decay", "lora"]),
        ({"name": "x", "kind": "decay"}, ["'gamma'"]),
        ({"name": "x", "kind": "decay", "gamma": 1.5}, ["'gamma'", "(0, 1]"]),
        ({"name": "x", "kind": "grow", "gamma": "0.9"}, ["'gamma'"]),
        ({"name": "x", "kind": "freeze", "k": -1}, ["'k'", ">= 0"]),
        ({"name": "x", "kind": "freeze", "k": 2.5}, ["'k'"]),
        ({"name": "x", "kind": "uniform", "gamma": 0.9}, ["'gamma'", "expected keys"]),
        ({"name": "x", "kind": "decay", "gamma": 0.9, "rank": 8}, ["'rank'"]),
        ({"name": "x", "kind": "lora"}, ["'rank'"]),
        ({"name": "x", "kind": "lora", "rank": 0}, ["'rank'", ">= 1"]),
        ({"name": "x", "kind": "lora", "rank": 8, "profile": "cubic"}, ["'profile'", "uniform", "linear", "exp"]),
        (
            {"name": "x", "kind": "lora", "rank": 8, "profile": "linear", "direction": "up"},
            ["'direction'", "increasing", "decreasing"],
        ),
        ({"name": "x", "kind": "lora", "rank": 8, "profile": "exp", "min_rank": 8}, ["'min_rank'", "< rank"]),
        ({"name": "x", "kind": "lora", "rank": 8, "profile": "uniform", "min_rank": 2}, ["'min_rank'"]),
        ({"name": "x", "kind": "lora", "rank": 8, "alpha": 0}, ["'alpha'"]),
        ({"name": "x", "kind": "lora", "rank": 8, "dropout": 1.0}, ["'dropout'"]),
    ],
)
def test_parse_invalid_variants_name_the_key(config, words):
    with pytest.raises(ValueError) as error:
        parse_variant(config)
    for word in words:
        assert word in str(error.value), (word, str(error.value))


def test_model_without_pooler_and_inside_a_wrapper():
    torch.manual_seed(0)
    backbone = BertModel(
        BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=L, num_attention_heads=2, intermediate_size=64),
        add_pooling_layer=False,
    )
    wrapper = torch.nn.ModuleDict({"encoder_tower": backbone})  # no config of its own
    assert num_transformer_layers(wrapper) == L
    spec = parse_variant({"name": "decay-0.8", "kind": "decay", "gamma": 0.8})
    rows = param_group_table(wrapper, spec, BASE_LR, WD)
    assert [r["layer"] for r in rows] == list(range(L + 1))  # no layer L + 1 row without a pooler
    lrs = group_lrs(build_param_groups(wrapper, spec, BASE_LR, WD))
    assert lrs[L] == pytest.approx(BASE_LR * 0.8)


def test_relative_depth_profiles_match_across_model_depths():
    """depth: relative puts the same lr multiplier at the same fraction of the stack."""
    from xlir.train.variants import parse_variant

    absolute = parse_variant({"name": "d", "kind": "decay", "gamma": 0.9})
    relative = parse_variant({"name": "r", "kind": "decay", "gamma": 0.9, "depth": "relative"})
    # on the 12-block reference stack the two are the same profile
    layers = range(14)
    assert [relative.lr_scale(i, 12) for i in layers] == pytest.approx([absolute.lr_scale(i, 12) for i in layers])
    for blocks in (12, 24, 36):
        assert relative.lr_scale(0, blocks) == pytest.approx(0.9**13)  # embeddings: the same at every depth
        assert relative.lr_scale(blocks + 1, blocks) == 1.0  # the top trains at the base lr
    # halfway up a 25- and a 51-block stack: the same multiplier
    assert relative.lr_scale(13, 25) == pytest.approx(relative.lr_scale(26, 51)) == pytest.approx(0.9**6.5)
    # absolute decay shrinks the bottom with depth (the size-axis confound)
    assert absolute.lr_scale(0, 36) == pytest.approx(0.9**37)
    assert absolute.lr_scale(0, 36) < relative.lr_scale(0, 36)
    grow = parse_variant({"name": "g", "kind": "grow", "gamma": 0.8, "depth": "relative", "reference_layers": 24})
    assert grow.lr_scale(25, 24) == pytest.approx(0.8**25) and grow.lr_scale(49, 48) == pytest.approx(0.8**25)
    with pytest.raises(ValueError, match="reference_layers"):
        parse_variant({"name": "x", "kind": "decay", "gamma": 0.9, "reference_layers": 24})
    with pytest.raises(ValueError, match="depth"):
        parse_variant({"name": "x", "kind": "decay", "gamma": 0.9, "depth": "fractional"})


@pytest.mark.parametrize("mode", ["fixed", "rslora"])
def test_lora_alpha_modes_set_the_scaling_per_block(mode):
    """proportional keeps alpha / r (tested above); fixed gives alpha / r_l, rslora alpha / sqrt(r_l)."""
    spec = lora_spec("exp", alpha_mode=mode)
    assert spec.alpha_mode == mode and lora_spec("exp", alpha_mode="proportional").alpha_mode is None
    ranks = lora_rank_allocation(spec, tiny_bert())
    model = apply_lora(tiny_bert(), spec)
    for name, module in model.named_modules():
        if hasattr(module, "lora_A") and "default" in getattr(module, "r", {}):
            r = ranks[int(name.split("layer.")[1].split(".")[0])]
            expected = 16 / r if mode == "fixed" else 16 / r**0.5
            assert module.scaling["default"] == pytest.approx(expected), name
    with pytest.raises(ValueError, match="alpha_mode"):
        lora_spec("exp", alpha_mode="sqrt")


def test_lora_update_norms_are_the_blocks_scaled_delta_norms():
    import torch

    from xlir.train.scaling import lora_update_norms

    torch.manual_seed(0)
    model = apply_lora(tiny_bert(), lora_spec("linear"))
    assert set(lora_update_norms(model).values()) == {0.0}  # B starts at zero: no update yet
    for name, param in model.named_parameters():
        if "lora_B" in name:
            param.data.normal_()
    norms = lora_update_norms(model)
    assert sorted(norms) == list(range(L))
    expected = 0.0
    for name, module in model.named_modules():
        if ".layer.1." in name + "." and hasattr(module, "lora_A") and "default" in getattr(module, "r", {}):
            delta = (
                module.scaling["default"] * module.lora_B["default"].weight @ module.lora_A["default"].weight
            ).detach()
            expected += float(delta.pow(2).sum())
    assert norms[1] == pytest.approx(expected**0.5, rel=1e-5)


def test_mean_lr_matched_uniform_control():
    """A uniform control at the decay profile's parameter-weighted mean lr multiplier."""
    from xlir.train.scaling import build_param_groups, mean_lr_multiplier, prepare_model_for_variant

    decay = parse_variant({"name": "decay-0.8", "kind": "decay", "gamma": 0.8})
    model = prepare_model_for_variant(tiny_bert(), decay, False)
    groups = build_param_groups(model, decay, 1e-3, 0.01)
    weighted = sum(g["lr"] * sum(p.numel() for p in g["params"]) for g in groups)
    count = sum(p.numel() for g in groups for p in g["params"])
    multiplier = mean_lr_multiplier(model, decay)
    assert multiplier == pytest.approx(weighted / count / 1e-3) and 0 < multiplier < 1
    control = parse_variant(
        {"name": "uniform-matched", "kind": "uniform", "match_mean_lr_of": "decay-0.8", "matched": decay.to_dict()}
    )
    model = prepare_model_for_variant(tiny_bert(), control, False)
    lrs = {g["lr"] for g in build_param_groups(model, control, 1e-3, 0.01)}
    assert len(lrs) == 1 and lrs.pop() == pytest.approx(1e-3 * multiplier)
    assert mean_lr_multiplier(model, parse_variant({"name": "u", "kind": "uniform"})) == 1.0
    with pytest.raises(ValueError, match="a decay or grow variant"):
        parse_variant(
            {"name": "x", "kind": "uniform", "match_mean_lr_of": "u", "matched": {"name": "u", "kind": "uniform"}}
        )
