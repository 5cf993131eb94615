"""The memory and time planner: parameter counts, activation constants, measured peak memory.

The planner's estimates are checked three ways on CPU:
- parameter counts against the transformers models themselves (every preset, built on the meta
  device, XLM-R XL 3.5B and XXL 10.7B included);
- the per-layer activation constants against the tensors autograd actually saves
  (torch.autograd.graph.saved_tensors_hooks) on twins of each family;
- the whole per-device estimate against the measured peak memory of real training steps
  (`python -m xlir.train.memcheck`: peak RSS growth in a fresh process, see its docstring) of small
  models (4 layers, hidden 256) of each family under the memory switches: within 30%."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("peft")
pytestmark = [
    pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning"),
    pytest.mark.usefixtures("one_torch_thread"),
]

from tests.test_large_architectures import build_twin  # noqa: E402
from xlir.cli import main as xlir_main  # noqa: E402
from xlir.common.config_files import load_config  # noqa: E402
from xlir.model.encoder import DualEncoder  # noqa: E402
from xlir.train import plan_memory as planner  # noqa: E402
from xlir.train.plan_memory import GPUS, PRESETS, Setup, estimate, flops_per_step, recommend, shape_from_hf_config  # noqa: E402
from xlir.train.variants import parse_variant  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
GIB = 1024**3


def _meta_model(shape: planner.ModelShape):
    import transformers as tf

    if shape.family == "t5-encoder":
        config = tf.MT5Config(
            vocab_size=shape.vocab,
            d_model=shape.hidden,
            d_kv=shape.attn_inner // shape.heads,
            d_ff=shape.intermediate,
            num_layers=shape.layers,
            num_heads=shape.heads,
            feed_forward_proj="gated-gelu" if shape.gated_ffn else "relu",
            tie_word_embeddings=False,
        )
        cls = tf.MT5EncoderModel
    else:
        cfg_cls = tf.XLMRobertaXLConfig if shape.family == "xlm-roberta-xl" else tf.BertConfig
        config = cfg_cls(
            vocab_size=shape.vocab,
            hidden_size=shape.hidden,
            num_hidden_layers=shape.layers,
            num_attention_heads=shape.heads,
            intermediate_size=shape.intermediate,
            max_position_embeddings=shape.positions,
            type_vocab_size=shape.type_vocab,
        )
        cls = tf.XLMRobertaXLModel if shape.family == "xlm-roberta-xl" else tf.BertModel
    with torch.device("meta"):
        model = cls(config) if shape.family == "t5-encoder" else cls(config, add_pooling_layer=False)
    return model


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_parameter_counts_match_transformers(name):
    shape = PRESETS[name]
    model = _meta_model(shape)
    assert shape.params() == sum(p.numel() for p in model.parameters())


def test_large_presets_are_the_published_sizes():
    assert round(PRESETS["xlm-roberta-xl"].params() / 1e9, 1) == 3.5
    assert round(PRESETS["xlm-roberta-xxl"].params() / 1e9, 1) == 10.7
    assert round(PRESETS["xlm-roberta-large"].params() / 1e6) == 559  # 560M with the pooler we drop
    assert round(PRESETS["multilingual-e5-small"].params() / 1e6) == 118


@pytest.fixture(scope="module")
def small_twins(tmp_path_factory) -> dict[str, Path]:
    """4 layers, hidden 256, FFN 1024, 4 heads: big enough that the step, not the libraries, is measured."""
    root = tmp_path_factory.mktemp("planner_twins")
    return {
        family: build_twin(
            root / family, family, num_layers=4, hidden=256, heads=4, intermediate=1024, max_positions=160
        )
        for family in ("bert", "xlm-roberta-xl", "mt5")
    }


@pytest.mark.parametrize("family", ["bert", "xlm-roberta-xl", "mt5"])
def test_twin_shape_and_parameter_count(small_twins, family):
    shape = shape_from_hf_config(json.loads((small_twins[family] / "config.json").read_text()), family)
    backbone = DualEncoder.load(small_twins[family]).backbone
    assert shape.params() == sum(p.numel() for p in backbone.parameters())
    assert shape.word_embedding_params() == backbone.get_input_embeddings().weight.numel()


def _saved_activation_bytes(encoder: DualEncoder, texts: list[str]) -> int:
    """Bytes of the tensors autograd keeps for backward in one forward pass (parameters excluded)."""
    params = {p.untyped_storage().data_ptr() for p in encoder.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        key = t.untyped_storage().data_ptr()
        if key not in params:
            seen[key] = max(seen.get(key, 0), t.untyped_storage().nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        encoder(texts, "query")
    return sum(seen.values())


def _long_texts(n: int, length: int) -> list[str]:
    words = "the capital of france is paris and plants use photosynthesis to make food from water".split()
    return [" ".join(words[(i + j) % len(words)] for j in range(4 * length)) for i in range(n)]


@pytest.mark.parametrize("family", ["bert", "xlm-roberta-xl", "mt5"])
@pytest.mark.parametrize("lora", [False, True])
def test_activation_constants_match_saved_tensors(small_twins, family, lora):
    from xlir.train.scaling import prepare_model_for_variant

    torch.manual_seed(0)
    encoder = DualEncoder.load(small_twins[family], max_length=48).train()
    if lora:
        spec = parse_variant({"name": "lora", "kind": "lora", "rank": 8})
        encoder.backbone = prepare_model_for_variant(encoder.backbone, spec, True)
    saved = _saved_activation_bytes(encoder, _long_texts(8, 48))
    shape = shape_from_hf_config(json.loads((small_twins[family] / "config.json").read_text()), family)
    setup = Setup(batch_size=8, query_length=48, passage_length=48, attention="math", lora_rank=8 if lora else None)
    one_side = planner.activation_bytes(shape, setup, 8) / 2  # queries and passages: count one side
    assert abs(one_side - saved) / saved < 0.1, (one_side, saved)


#: (family, memcheck setup): the switches whose memory the planner models, each measured for real
MEASURED = [
    ("bert", {"batch_size": 16, "length": 64}),
    ("bert", {"batch_size": 16, "length": 64, "variant": {"name": "lora", "kind": "lora", "rank": 8}}),
    ("xlm-roberta-xl", {"batch_size": 16, "length": 64, "gradient_checkpointing": True}),
    ("mt5", {"batch_size": 16, "length": 64, "grad_cache_chunk_size": 4}),
    ("mt5", {"batch_size": 16, "length": 64}),
]


def _measure(model_dir: Path, setup: dict) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "xlir.train.memcheck", "--model", str(model_dir), "--setup", json.dumps(setup)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    if done.returncode != 0:
        raise AssertionError(f"memcheck failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_estimates_match_measured_peak_memory(small_twins):
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("needs Linux /proc/self/clear_refs to reset the peak RSS")
    report = []
    for family, setup in MEASURED:
        measured = _measure(small_twins[family], setup)["measured_bytes"]
        shape = shape_from_hf_config(json.loads((small_twins[family] / "config.json").read_text()), family)
        variant = setup.get("variant", {})
        est = estimate(
            shape,
            Setup(
                batch_size=setup["batch_size"],
                query_length=setup["length"],
                passage_length=setup["length"],
                attention="math",
                gradient_checkpointing=setup.get("gradient_checkpointing", False),
                grad_cache_chunk_size=setup.get("grad_cache_chunk_size"),
                lora_rank=variant.get("rank") if variant.get("kind") == "lora" else None,
            ),
        )
        report.append(
            {
                "family": family,
                "setup": setup,
                "measured_mib": round(measured / 2**20, 1),
                "estimated_mib": round(est.total / 2**20, 1),
                "ratio": round(est.total / measured, 3),
            }
        )
    print(json.dumps(report, indent=1))
    for row in report:
        assert 0.7 <= row["ratio"] <= 1.3, row


def test_flops_known_answer():
    shape = PRESETS["xlm-roberta-base"]
    setup = Setup(batch_size=10, query_length=32, passage_length=64)
    forward = sum(2 * 12 * (4 * 768**2 + 2 * 768 * 3072) * 10 * s + 4 * 12 * 768 * 10 * s * s for s in (32, 64))
    assert flops_per_step(shape, setup) == pytest.approx(3 * forward)
    assert flops_per_step(
        shape, Setup(batch_size=10, query_length=32, passage_length=64, lora_rank=8)
    ) == pytest.approx(2 * forward)
    assert flops_per_step(
        shape,
        Setup(batch_size=10, query_length=32, passage_length=64, gradient_checkpointing=True, grad_cache_chunk_size=2),
    ) == pytest.approx(5 * forward)


def test_switches_move_the_estimate_the_right_way():
    shape = PRESETS["xlm-roberta-xl"]
    base = Setup(batch_size=64, query_length=128, passage_length=128, precision="bf16", freeze_word_embeddings=False)
    plain = estimate(shape, base)
    assert (
        estimate(shape, Setup(**{**base.to_dict(), "gradient_checkpointing": True})).activations < plain.activations / 5
    )
    assert estimate(shape, Setup(**{**base.to_dict(), "grad_cache_chunk_size": 8})).activations < plain.activations / 5
    fsdp = estimate(shape, Setup(**{**base.to_dict(), "nproc": 4, "strategy": "fsdp"}))
    assert fsdp.weights < plain.weights / 2 and fsdp.optimizer == pytest.approx(plain.optimizer / 4)
    assert estimate(shape, Setup(**{**base.to_dict(), "optimizer": "adamw_8bit"})).optimizer == pytest.approx(
        plain.optimizer / 4
    )
    lora = estimate(shape, Setup(**{**base.to_dict(), "lora_rank": 16}))
    assert lora.trainable == 16 * shape.layers * shape.lora_cost() and lora.optimizer < plain.optimizer / 50


def test_recommendation_fits_80gb_for_xxl():
    shape, gpu = PRESETS["xlm-roberta-xxl"], GPUS["h100-80gb"]
    base = Setup(batch_size=100, query_length=128, passage_length=128, precision="bf16", freeze_word_embeddings=False)
    assert not planner.fits(estimate(shape, base), gpu)
    rec = recommend(shape, base, gpu)
    assert rec is not None and planner.fits(rec, gpu)
    assert rec.setup.nproc > 1 and rec.setup.strategy == "fsdp"
    assert rec.setup.batch_size == 100 and rec.setup.lora_rank is None  # the study's choices are kept
    assert recommend(shape, base, GPUS["a100-40gb"], max_gpus=1) is None  # 10.7B fp32 masters alone: 40 GiB


def test_plan_memory_cli_preset(capsys):
    assert (
        xlir_main(
            [
                "plan-memory",
                "--preset",
                "xlm-roberta-xl",
                "--batch-size",
                "100",
                "--length",
                "128",
                "--precision",
                "bf16",
                "--json",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["estimate"]["params"] == PRESETS["xlm-roberta-xl"].params()
    assert out["recommended"]["total"] < 0.9 * 79.6 * GIB


def test_plan_memory_cli_model_dir(small_twins, capsys, tmp_path):
    assert (
        xlir_main(
            [
                "plan-memory",
                "--model-dir",
                str(small_twins["mt5"]),
                "--batch-size",
                "16",
                "--length",
                "64",
                "--out",
                str(tmp_path / "plan.txt"),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "as given:" in text and "recommended:" in text
    assert (tmp_path / "plan.txt").read_text().strip() == text.strip()


def test_paper_config_plan():
    """Every training job of config/paper.yaml fits an 80 GB GPU as configured, and the table
    has the GPU-hours of training and encoding for every model."""
    import yaml

    config = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    rows = planner.study_plan(load_config([REPO / "config" / "paper.yaml"]), GPUS["h100-80gb"])
    train_rows = [r for r in rows if not r["variant"].startswith("encode")]
    assert {r["model"] for r in train_rows} == set(config["models"])
    assert all(r["fits"] for r in train_rows), [r for r in train_rows if not r["fits"]]
    # 4 models x (10 swept cells x (3 lrs x 1 selection seed + 5 test seeds) + 3 matched controls x 5 test
    # seeds): uniform x 3 samplings, decay x 2, grow, 4 LoRA are swept; the controls follow their target's lr
    assert sum(r["jobs"] for r in train_rows) == 4 * (10 * (3 + 5) + 3 * 5)
    assert {r["lr_points"] for r in train_rows} == {3}
    xl = [r for r in train_rows if r["model"] == "xlmr-xl" and r["variant"] == "uniform"][0]
    assert "fsdp x4" in xl["setting"]
    assert all(r["gpu_hours"] > 0 for r in rows)


UNIFORM = parse_variant({"name": "uniform", "kind": "uniform"})


def test_job_resources_cpu_default_and_gpu():
    import yaml

    default = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    assert planner.job_resources("e5-small", default["models"]["e5-small"], default["training"], UNIFORM) is None
    paper = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    res = planner.job_resources(
        "xlmr-xl", paper["models"]["xlmr-xl"], {**paper["training"], **paper["models"]["xlmr-xl"]["training"]}, UNIFORM
    )
    assert res["runtime"] >= 60 and res["mem_mb"] > 4 * 4 * 3.4e9 / 2**20  # every process loads fp32 weights


def test_plan_memory_reads_config_files_as_snakemake_does(tmp_path):
    """Overlays merged in order and validated (defaults filled); a YAML error names the file and line."""
    from xlir.common.config_files import load_config
    from xlir.common.io import InputError

    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("seeds: [1, 2]\ntraining:\n  steps: 7\n", encoding="utf-8")
    config = load_config([REPO / "config" / "paper.yaml", overlay])
    assert config["seeds"] == [1, 2] and config["training"]["steps"] == 7
    assert config["training"]["batch_size"] == 100  # kept from paper.yaml
    assert config["report"]["alpha"] == 0.05  # a schema default
    text = planner.plan_command(configfile=[str(REPO / "config" / "paper.yaml"), str(overlay)])
    assert "xlmr-xl" in text
    bad = tmp_path / "bad.yaml"
    bad.write_text("seeds: [1\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad.yaml: line 2, column 1: not valid YAML"):
        load_config([bad])
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("seeds: [-1]\n", encoding="utf-8")
    with pytest.raises(InputError, match="wrong.yaml"):
        load_config([REPO / "config" / "paper.yaml", wrong])
