"""The layer analysis (issue 23): linear CKA, cross-lingual alignment, weight-update size, the
probe set, one `xlir analyze` run end to end on the tiny test model, and the report's figures
and paragraph. Everything is built here (conftest's tiny BERT); no network."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tests.conftest import build_tiny_model
from xlir import cli
from xlir.analysis.alignment import layer_alignment, mean_alignment, pair_alignment
from xlir.analysis.cka import layerwise_cka, linear_cka
from xlir.analysis.figures import (
    alignment_figure,
    analysis_figures,
    analysis_paragraph,
    analysis_run_table,
    analysis_runs,
    drift_figure,
    load_analyses,
    pearson,
    update_size_figure,
)
from xlir.analysis.loading import load_model
from xlir.analysis.probe_set import build_probe, read_probe, write_probe
from xlir.analysis.targets import OUTPUTS, analysis_benchmarks, analysis_outputs, probe_settings
from xlir.analysis.update_size import update_sizes, weight_group
from xlir.common.io import InputError, read_json, read_tsv, write_jsonl, write_tsv
from xlir.model.encoder import load_backbone

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning"),
    pytest.mark.usefixtures("one_torch_thread"),
]

LANGS = ["ca", "en", "es"]
#: parallel questions of the tiny model's vocabulary (TINY_TEXTS), one id per row
PARALLEL = [
    ("what is the capital of france", "cuál es la capital de francia", "quina és la capital de frança"),
    ("how do plants make food", "com fan menjar les plantes", "las plantas usan la fotosíntesis"),
    ("who wrote hamlet", "shakespeare wrote hamlet", "hamlet"),
    ("what is water made of", "hydrogen and oxygen", "water"),
    ("paris is the capital of france", "parís es la capital de francia", "parís"),
    ("plants use photosynthesis", "la fotosíntesis", "plantes"),
]


# ------------------------------------------------------------------ CKA
def _reference_cka(x: np.ndarray, y: np.ndarray) -> float:
    """CKA from its definition: HSIC of the linear Gram matrices, centred with H = I - 11^T / n."""
    n = len(x)
    h = np.eye(n) - np.ones((n, n)) / n
    k, l_ = x @ x.T, y @ y.T

    def hsic(a, b):
        return np.trace(a @ h @ b @ h) / (n - 1) ** 2

    return hsic(k, l_) / np.sqrt(hsic(k, k) * hsic(l_, l_))


def test_cka_of_a_representation_with_itself_is_one():
    x = np.random.default_rng(0).normal(size=(60, 12))
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)


def test_cka_is_invariant_to_orthogonal_transforms_isotropic_scaling_and_shifts():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(80, 10)), rng.normal(size=(80, 6))
    q, _ = np.linalg.qr(rng.normal(size=(10, 10)))
    reference = linear_cka(x, y)
    assert linear_cka(x @ q, y) == pytest.approx(reference, abs=1e-10)
    assert linear_cka(3.7 * x, 0.2 * y) == pytest.approx(reference, abs=1e-10)
    assert linear_cka(x + 5.0, y - 2.0) == pytest.approx(reference, abs=1e-10)
    assert linear_cka(x @ q * 2.5, x) == pytest.approx(1.0, abs=1e-10)
    # not invariant to an arbitrary (non-orthogonal) invertible map
    stretch = np.diag(np.linspace(0.1, 10, 10))
    assert linear_cka(x @ stretch, x) < 0.9


def test_cka_agrees_with_the_hsic_definition_on_random_data():
    rng = np.random.default_rng(2)
    for n, d1, d2 in ((30, 5, 5), (50, 20, 8), (40, 3, 30)):
        x = rng.normal(size=(n, d1))
        y = x[:, :1] @ rng.normal(size=(1, d2)) + rng.normal(size=(n, d2))  # partly shared
        assert linear_cka(x, y) == pytest.approx(_reference_cka(x, y), abs=1e-10)


def test_layerwise_cka_and_its_errors():
    rng = np.random.default_rng(3)
    base = rng.normal(size=(3, 20, 4))
    run = base.copy()
    run[2] = rng.normal(size=(20, 4))
    values = layerwise_cka(run, base)
    assert values[:2] == pytest.approx([1.0, 1.0]) and values[2] < 0.9
    with pytest.raises(ValueError):
        linear_cka(np.ones((4, 2)), np.ones((5, 2)))
    assert np.isnan(linear_cka(np.ones((4, 2)), rng.normal(size=(4, 2))))


# ------------------------------------------------------------------ alignment
def test_parallel_embeddings_up_to_small_noise_are_perfectly_aligned():
    rng = np.random.default_rng(4)
    ids, dim = 50, 32
    meaning = rng.normal(size=(ids, 1, dim))
    embeddings = meaning + 0.01 * rng.normal(size=(ids, len(LANGS), dim))
    pairs = layer_alignment(embeddings, LANGS)
    assert len(pairs) == 6 and {(p.query_lang, p.target_lang) for p in pairs} == {
        (a, b) for a in LANGS for b in LANGS if a != b
    }
    accuracy, gap = mean_alignment(pairs)
    assert accuracy == 1.0
    assert gap > 0.9  # parallel cosines ~1, non-parallel ~0


def test_unrelated_embeddings_are_aligned_at_chance():
    rng = np.random.default_rng(5)
    ids = 200
    accuracy, gap = mean_alignment(layer_alignment(rng.normal(size=(ids, len(LANGS), 64)), LANGS))
    assert accuracy < 5 / ids  # chance is 1 / ids
    assert abs(gap) < 0.02


def test_pair_alignment_counts_a_shuffled_language_as_misaligned():
    rng = np.random.default_rng(6)
    source = rng.normal(size=(20, 8))
    accuracy, gap = pair_alignment(source, source[::-1])
    assert accuracy == 0.0 and gap < 0.2
    # a common offset (anisotropy) raises every cosine but not the gap's sign nor the accuracy
    accuracy, gap = pair_alignment(source + 3.0, source + 3.0 + 0.01 * rng.normal(size=(20, 8)))
    assert accuracy == 1.0 and gap > 0


# ------------------------------------------------------------------ probe set
def _questions(path: Path, rows=PARALLEL, missing: dict[str, set[int]] | None = None) -> Path:
    records = []
    for lang_index, lang in enumerate(["en", "es", "ca"]):
        for i, texts in enumerate(rows):
            if i in (missing or {}).get(lang, set()):
                continue
            records.append({"qid": f"{lang}:q{i}", "lang": lang, "id": f"q{i}", "text": texts[lang_index]})
    write_jsonl(path, records)
    return path


def test_probe_set_holds_ids_present_in_every_language_drawn_by_the_seed(tmp_path, caplog):
    questions = _questions(tmp_path / "questions.jsonl", missing={"ca": {0}})
    probe = build_probe(questions, size=3, seed=1)
    assert probe.languages == LANGS and len(probe.ids) == 3 and "q0" not in probe.ids
    assert probe.n_eligible == 5
    assert build_probe(questions, size=3, seed=1).ids == probe.ids
    assert {tuple(build_probe(questions, size=3, seed=s).ids) for s in range(8)} != {tuple(probe.ids)}
    assert probe.flat_texts()[: len(LANGS)] == [probe.texts[probe.ids[0]][lang] for lang in LANGS]
    write_probe(tmp_path / "probe.json", probe)
    assert read_probe(tmp_path / "probe.json") == probe
    recorded = read_json(tmp_path / "probe.json")
    assert recorded["seed"] == 1 and recorded["ids"] == probe.ids and recorded["languages"] == LANGS
    # fewer parallel ids than asked: all of them, with a warning
    assert len(build_probe(questions, size=200, seed=0).ids) == 5
    assert "present in every language" in caplog.text
    assert build_probe(questions, size=200, languages=["en", "es"]).n_eligible == 6


def test_probe_set_refuses_monolingual_questions(tmp_path):
    records = [
        {"qid": f"{lang}:{lang}{i}", "lang": lang, "id": f"{lang}{i}", "text": "x"} for lang in LANGS for i in range(3)
    ]
    write_jsonl(tmp_path / "questions.jsonl", records)
    with pytest.raises(InputError, match="parallel questions"):
        build_probe(tmp_path / "questions.jsonl")


# ------------------------------------------------------------------ update size
def test_weight_groups_of_bert_and_t5_names():
    assert weight_group("embeddings.word_embeddings.weight", 0) == "embeddings"
    assert weight_group("embeddings.LayerNorm.weight", 0) == "layernorm"
    assert weight_group("encoder.layer.3.attention.self.query.weight", 4) == "attention"
    assert weight_group("encoder.layer.3.attention.output.dense.bias", 4) == "attention"
    assert weight_group("encoder.layer.3.attention.output.LayerNorm.bias", 4) == "layernorm"
    assert weight_group("encoder.layer.3.intermediate.dense.weight", 4) == "ffn"
    assert weight_group("encoder.layer.3.output.dense.weight", 4) == "ffn"
    assert weight_group("encoder.block.0.layer.0.SelfAttention.q.weight", 1) == "attention"
    assert weight_group("encoder.block.0.layer.1.DenseReluDense.wi.weight", 1) == "ffn"
    assert weight_group("encoder.block.0.layer.1.layer_norm.weight", 1) == "layernorm"
    assert weight_group("encoder.final_layer_norm.weight", 5) == "layernorm"


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("analysis_tiny") / "base")


def _perturbed(base_dir: Path, out: Path, name: str, scale: float = 0.5, seed: int = 0) -> tuple[Path, float]:
    """A copy of the model with a random delta added to one parameter; returns (dir, ||delta||_F)."""
    model = load_backbone(base_dir)
    param = dict(model.named_parameters())[name]
    delta = scale * torch.randn(param.shape, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        param += delta
    model.save_pretrained(str(out), safe_serialization=True)
    for path in base_dir.iterdir():
        if "token" in path.name or path.name == "vocab.txt" or path.name.startswith("special"):
            shutil.copy(path, out / path.name)
    return out, float(delta.norm())


def test_update_size_of_a_known_delta(tiny_dir, tmp_path):
    name = "encoder.layer.1.attention.self.query.weight"
    run_dir, delta_norm = _perturbed(tiny_dir, tmp_path / "run", name)
    base = load_backbone(tiny_dir)
    params = dict(base.named_parameters())
    attention = [n for n in params if n.startswith("encoder.layer.1.attention.") and "LayerNorm" not in n]
    attention_norm = float(sum(params[n].detach().double().pow(2).sum() for n in attention) ** 0.5)
    layer_norm = float(
        sum(p.detach().double().pow(2).sum() for n, p in params.items() if n.startswith("encoder.layer.1.")) ** 0.5
    )
    rows = {(r.layer, r.group): r for r in update_sizes(load_backbone(run_dir), base)}
    assert rows[(2, "attention")].rel_update == pytest.approx(delta_norm / attention_norm, rel=1e-6)
    assert rows[(2, "attention")].delta_norm == pytest.approx(delta_norm, rel=1e-6)
    assert rows[(2, "all")].rel_update == pytest.approx(delta_norm / layer_norm, rel=1e-6)
    assert rows[(2, "attention")].n_params == sum(params[n].numel() for n in attention)
    others = [r for key, r in rows.items() if key not in ((2, "attention"), (2, "all"))]
    assert others and all(r.rel_update == 0 for r in others)
    assert {r.layer for r in others} == {0, 1, 2}
    assert sum(r.n_params for (layer, group), r in rows.items() if group == "all") == sum(
        p.numel() for p in params.values()
    )


def test_a_peft_adapter_is_merged_and_measured_like_lora_update_norms(tiny_dir, tmp_path):
    pytest.importorskip("peft")
    from peft import LoraConfig, get_peft_model

    from xlir.train.scaling import lora_update_norms

    peft_model = get_peft_model(
        load_backbone(tiny_dir), LoraConfig(r=2, lora_alpha=4, target_modules=["query", "value", "dense"])
    )
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.copy_(0.1 * torch.randn(param.shape, generator=generator))
    expected = lora_update_norms(peft_model)  # what train_summary.json records per block
    peft_model.save_pretrained(str(tmp_path / "adapter"))
    loaded = load_model(tmp_path / "adapter", tiny_dir)
    assert loaded.merged_adapter and loaded.tokenizer_dir == tiny_dir
    rows = {(r.layer, r.group): r for r in update_sizes(loaded.backbone, load_backbone(tiny_dir))}
    for block, norm in expected.items():
        assert rows[(block + 1, "all")].delta_norm == pytest.approx(norm, rel=1e-4)
    assert rows[(0, "all")].delta_norm == 0


# ------------------------------------------------------------------ end to end
def test_analyze_end_to_end_on_the_tiny_model(tiny_dir, tmp_path):
    questions = _questions(tmp_path / "questions.jsonl")
    probe = tmp_path / "probe.json"
    assert (
        cli.main(["probe-set", "--questions", str(questions), "--size", "5", "--seed", "3", "--out", str(probe)]) == 0
    )
    # the run moved the second block only: layers 0 and 1 keep the base's representations
    run_dir, _ = _perturbed(tiny_dir, tmp_path / "run", "encoder.layer.1.output.dense.weight", scale=1.0)
    out, cache = tmp_path / "analysis", tmp_path / "cache"
    args = ["analyze", "--base-model", str(tiny_dir), "--model", str(run_dir), "--probe", str(probe)]
    args += ["--max-length", "16", "--cache-dir", str(cache), "--out", str(out), "--log", str(tmp_path / "a.log")]
    assert cli.main(args) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)
    layers = read_tsv(out / "layers.tsv")
    assert [int(r["layer"]) for r in layers] == [0, 1, 2]
    assert list(layers[0]) == ["layer", "drift_cka", "align_acc", "align_gap", "base_align_acc", "base_align_gap"]
    assert float(layers[0]["drift_cka"]) == pytest.approx(1.0, abs=1e-5)
    assert float(layers[1]["drift_cka"]) == pytest.approx(1.0, abs=1e-5)
    assert float(layers[2]["drift_cka"]) < 0.999
    for row in layers[:2]:
        assert row["align_acc"] == row["base_align_acc"] and row["align_gap"] == row["base_align_gap"]
    assert len(read_tsv(out / "alignment_pairs.tsv")) == 3 * 6
    updates = {(int(r["layer"]), r["group"]): float(r["rel_update"]) for r in read_tsv(out / "update_size.tsv")}
    assert updates[(2, "ffn")] > 0 and updates[(1, "ffn")] == 0 and updates[(0, "embeddings")] == 0
    summary = read_json(out / "summary.json")
    assert summary["probe"]["n_texts"] == 15 and summary["probe"]["seed"] == 3 and summary["n_layers"] == 3
    assert not summary["base_states_cached"] and summary["seconds"]["total"] >= 0
    # a second run of the same base and probe reuses the base's layer states
    assert cli.main([*args[:-4], "--out", str(tmp_path / "again")]) == 0
    assert read_json(tmp_path / "again" / "summary.json")["base_states_cached"]
    assert read_tsv(tmp_path / "again" / "layers.tsv") == layers


def test_analyze_draws_the_probe_on_the_spot_and_the_base_against_itself_does_not_move(tiny_dir, tmp_path):
    questions = _questions(tmp_path / "questions.jsonl")
    out = tmp_path / "analysis"
    args = ["analyze", "--base-model", str(tiny_dir), "--model", str(tiny_dir), "--questions", str(questions)]
    args += ["--probe-size", "4", "--out-probe", str(tmp_path / "probe.json"), "--pooling", "cls", "--out", str(out)]
    assert cli.main(args) == 0
    assert len(read_json(tmp_path / "probe.json")["ids"]) == 4
    layers = read_tsv(out / "layers.tsv")
    # cls pooling: the embedding output of [CLS] is the same for every text, so layer 0 has no CKA
    assert layers[0]["drift_cka"] == "nan"
    assert all(float(r["drift_cka"]) == pytest.approx(1.0, abs=1e-5) for r in layers[1:])
    assert all(float(r["rel_update"]) == 0 for r in read_tsv(out / "update_size.tsv"))


# ------------------------------------------------------------------ targets
def test_analysis_targets():
    specs = {"demo": {"kind": "demo"}, "xquad": {"kind": "lareqa"}, "miracl": {"kind": "miracl"}}
    assert analysis_benchmarks(specs) == ["demo", "xquad"]
    outputs = analysis_outputs(["results/runs/m/uniform/hybrid/seed1"], ["demo"])
    assert outputs[0] == "results/runs/m/uniform/hybrid/seed1/demo/analysis/layers.tsv" and len(outputs) == 4
    assert probe_settings({}) == {"probe_size": 200, "probe_seed": 0}
    assert probe_settings({"analysis": {"probe_size": 50}})["probe_size"] == 50


# ------------------------------------------------------------------ figures and paragraph
def _synthetic_runs(root: Path) -> tuple[list[dict], pd.DataFrame]:
    """Analysis folders of 3 variants x 2 seeds whose lower-layer drift grows with the variant's
    monolingual gain, and the matching report measurements (zero-shot included)."""
    runs, measurements = [], []
    for v, variant in enumerate(["uniform", "decay-0.8", "lora-linear"]):
        for seed in (1, 2):
            strength = 0.3 - 0.1 * v + 0.01 * seed
            folder = root / variant / f"seed{seed}"
            layers = [
                {
                    "layer": layer,
                    "drift_cka": 1 - strength * layer / 4,
                    "align_acc": 0.5 + 0.1 * layer * (1 + strength),
                    "align_gap": 0.1 * layer,
                    "base_align_acc": 0.5 + 0.1 * layer,
                    "base_align_gap": 0.08 * layer,
                }
                for layer in range(5)
            ]
            write_tsv(folder / "layers.tsv", layers)
            updates = [
                {
                    "layer": layer,
                    "group": group,
                    "rel_update": strength * 0.01 * layer,
                    "delta_norm": strength * layer,
                    "base_norm": 100.0,
                    "n_params": 10,
                }
                for layer in range(6)
                for group in ("attention", "ffn", "all")
            ]
            write_tsv(folder / "update_size.tsv", updates)
            runs.append(
                {
                    "dir": str(folder),
                    "model": "m",
                    "variant": variant,
                    "sampling": "hybrid",
                    "seed": seed,
                    "benchmark": "demo",
                }
            )
            for setting, factor in (("monolingual", 1.0), ("cross-lingual", 0.5), ("multilingual", -1.0)):
                measurements.append(
                    {
                        "model": "m",
                        "variant": variant,
                        "sampling": "hybrid",
                        "seed": seed,
                        "benchmark": "demo",
                        "setting": setting,
                        "pair": "macro",
                        "metric": "map",
                        "value": 0.4 + factor * strength,
                    }
                )
    for setting in ("monolingual", "cross-lingual", "multilingual"):
        measurements.append(
            {
                "model": "m",
                "variant": "zeroshot",
                "sampling": "none",
                "seed": 0,
                "benchmark": "demo",
                "setting": setting,
                "pair": "macro",
                "metric": "map",
                "value": 0.4,
            }
        )
    return runs, pd.DataFrame(measurements)


def test_figures_and_paragraph(tmp_path):
    runs, measurements = _synthetic_runs(tmp_path / "runs")
    layers, updates = load_analyses(runs)
    assert set(layers.label) == {"uniform", "decay-0.8", "lora-linear"} and len(layers) == 6 * 5
    figures = tmp_path / "figures"
    assert drift_figure(layers, figures) == "analysis_drift"
    assert alignment_figure(layers, figures, band="sd") == "analysis_alignment"
    assert update_size_figure(updates, figures) == "analysis_update_size"
    assert analysis_figures(runs, figures, prefix="demo_") == [
        "demo_analysis_drift",
        "demo_analysis_alignment",
        "demo_analysis_update_size",
    ]
    for name in ("analysis_drift", "analysis_alignment", "analysis_update_size"):
        assert (figures / f"{name}.png").stat().st_size > 1000 and (figures / f"{name}.svg").is_file()
    assert drift_figure(layers.iloc[0:0], figures) is None

    table = analysis_run_table(layers, measurements)
    assert len(table) == 6
    assert table["delta_monolingual"].to_numpy() == pytest.approx(
        table["lower_drift"].to_numpy() * 0 + [0.3 - 0.1 * v + 0.01 * s for v in range(3) for s in (1, 2)]
    )
    assert pearson(table.lower_drift, table.delta_monolingual)[0] == pytest.approx(1.0)
    text = analysis_paragraph(layers, measurements, updates)
    assert "monolingual r = +1.00 (n = 6)" in text and "multilingual r = -1.00 (n = 6)" in text
    assert "most under uniform" in text and "least under lora-linear" in text
    few = analysis_paragraph(layers[layers.variant == "uniform"], measurements.iloc[0:0])
    assert "2 fine-tuned runs of uniform" in few and "need at least 3 runs with metrics; there are 0" in few
    assert "update in the lower half of the blocks: uniform" in text and text.startswith("On demo, 6 fine-tuned runs")


def test_analysis_runs_of_a_report_manifest():
    manifest_runs = [
        {
            "model": "m",
            "variant": "uniform",
            "sampling": "hybrid",
            "seed": 1,
            "dir": "results/runs/m/uniform/hybrid/seed1",
        },
        {
            "model": "m",
            "variant": "zeroshot",
            "sampling": "none",
            "seed": 0,
            "dir": "results/runs/m/zeroshot/none/seed0",
        },
    ]
    assert analysis_runs(manifest_runs, ["demo"]) == [
        {**manifest_runs[0], "benchmark": "demo", "dir": "results/runs/m/uniform/hybrid/seed1/demo/analysis"}
    ]
    assert json.dumps(analysis_runs(manifest_runs, [])) == "[]"


def test_a_figure_is_byte_identical_when_drawn_again(tmp_path):
    """A regenerated report matches the committed one, figures included (no date in the SVG,
    element ids from a fixed salt)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from xlir.analysis.figures import save_figure

    for folder in ("a", "b"):
        fig, ax = plt.subplots()
        ax.plot([0, 1, 2], [2, 0, 1], label="run")
        ax.legend()
        save_figure(fig, tmp_path / folder, "drift")
    for suffix in ("svg", "png"):
        first, second = (tmp_path / folder / f"drift.{suffix}" for folder in ("a", "b"))
        assert first.read_bytes() == second.read_bytes(), suffix
    assert b"<dc:date>" not in (tmp_path / "a" / "drift.svg").read_bytes()
