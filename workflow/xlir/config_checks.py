"""Checks of the config that need no job: run once, when the workflow loads (and on every
dry run), after Snakemake has validated the config against config/schema.yaml.

The schema checks each value on its own; these checks need the values together, the file
system or the installed tools: a variant's keys for its kind, a benchmark's languages against
the languages the benchmark has, a model source and the keys it needs (the local folder, the
hub id and whether the network is on), the machine-translation pairs against the installed
Apertium modes, and where the fetch jobs would find their files. Every problem found is
reported at once, one line each, naming the config key and what was expected
(`ConfigError`); what only makes a result weaker is returned as a warning.

A top-level module, like `xlir.cli`: it reads what several stages know (variants, benchmark
languages, Apertium modes). Called from `workflow/rules/common.smk` (`check_config`); the
tests call it with a fake `installed_modes` / `hub_cached` (tests/test_config_errors.py). A check is skipped where
the job it protects has already produced its output (the files it needed are then not read
again), so a finished study still loads after, say, its model folder was moved."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

from xlir.benchmarks.miracl import MIRACL_LANGUAGES
from xlir.common.config_files import with_defaults
from xlir.common.hub import hub_cache_dir, hub_model_cached
from xlir.common.lareqa_files import LAREQA_SOURCES
from xlir.data.translate.apertium import DEFAULT_MODES, package_for_mode
from xlir.study import problems as study_problems
from xlir.train.variants import parse_variant

_MIRACL_TOPICS = "miracl/miracl-v1.0-{lang}/topics/topics.miracl-v1.0-{lang}-{split}.tsv"
_TRUE = ("1", "true", "yes", "on")


class ConfigError(ValueError):
    """The config cannot run: one line per problem, each naming the config key and what was expected."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"the config has {len(self.problems)} problem(s), found before any job ran:\n{lines}")


def lareqa_languages(dataset: str) -> list[str]:
    return sorted(LAREQA_SOURCES[dataset]["sha256"]) if dataset in LAREQA_SOURCES else []


def network_off(config: Mapping, environ: Mapping[str, str] | None = None) -> str | None:
    """Why the config keeps the workflow off the network (None: it may download)."""
    environ = os.environ if environ is None else environ
    if not with_defaults(config.get("data"), "data")["download"]:
        return "the network is off (data.download: false)"
    if str(environ.get("HF_HUB_OFFLINE", "")).lower() in _TRUE:
        return f"the network is off (environment HF_HUB_OFFLINE={environ['HF_HUB_OFFLINE']})"
    return None


def installed_apertium_modes(binary: str = "apertium") -> list[str] | None:
    """The modes `apertium -l` lists; None when the program is not installed."""
    if shutil.which(binary) is None:
        return None
    try:
        done = subprocess.run([binary, "-l"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return [line.strip() for line in done.stdout.splitlines() if line.strip()]


class _Checker:
    def __init__(self, config: Mapping, workdir: Path, environ, conda, installed_modes, hub_cached):
        self.config = config
        self.workdir = Path(workdir)
        self.environ = os.environ if environ is None else environ
        self.conda = conda
        self._installed_modes = installed_modes or installed_apertium_modes
        self._modes_cache: list | None | bool = False
        self.hub_cached = hub_cached or hub_model_cached
        self.problems: list[str] = []
        self.warnings: list[str] = []

    # -- helpers ----------------------------------------------------------------------
    def bad(self, key: str, message: str) -> None:
        self.problems.append(f"config key {key}: {message}")

    def warn(self, key: str, message: str) -> None:
        self.warnings.append(f"config key {key}: {message}")

    def path(self, value: str) -> Path:
        path = Path(os.path.expanduser(str(value)))
        return path if path.is_absolute() else self.workdir / path

    def done(self, *relative: str) -> bool:
        """Whether every output (relative to the working directory) is already there."""
        return all((self.workdir / r).exists() for r in relative)

    def installed_modes(self) -> list[str] | None:
        if self._modes_cache is False:
            self._modes_cache = self._installed_modes()
        return self._modes_cache  # type: ignore[return-value]

    # -- variants ---------------------------------------------------------------------
    def variants(self) -> None:
        for name, spec in (self.config.get("variants") or {}).items():
            try:
                parse_variant({"name": name, **(spec or {})})
            except ValueError as error:
                self.bad(f"variants.{name}", str(error))

    def study(self) -> None:
        """What makes the study itself impossible (matched controls, the grid, the lr sweep, the
        training source against the benchmarks): `xlir.study.problems`."""
        for key, message in study_problems(self.config):
            self.bad(key, message)

    def layer_counts(self) -> None:
        """A freeze variant's k fits every model whose shape is known (a preset or a local
        config.json): layer 0 is the embeddings, so k may be at most the layers + 1."""
        from xlir.train.plan_memory import PRESETS, shape_for_model_config

        freezes = {}
        for name, spec in (self.config.get("variants") or {}).items():
            if (spec or {}).get("kind") == "freeze" and isinstance(spec.get("k"), int):
                freezes[name] = spec["k"]
        for model, model_cfg in (self.config.get("models") or {}).items():
            preset = model_cfg.get("planner_preset")
            if preset is not None and preset not in PRESETS:
                self.bad(
                    f"models.{model}.planner_preset",
                    f"{preset!r} is not a known shape; expected one of {', '.join(PRESETS)}",
                )
                continue
            try:
                shape = shape_for_model_config(model, model_cfg)
            except (OSError, ValueError):
                continue  # the model checks name an unreadable folder
            if shape is None:
                continue
            for name, k in freezes.items():
                if k > shape.layers + 1:
                    self.bad(
                        f"variants.{name}.k",
                        f"{k}; model '{model}' has {shape.layers} layers, so k is at most {shape.layers + 1} "
                        "(the embeddings are layer 0)",
                    )

    # -- numbers and report keys ------------------------------------------------------
    def finite_numbers(self, value, key: str) -> None:
        """No NaN or infinity anywhere (the schema's bounds let .nan through: every comparison is false)."""
        if isinstance(value, Mapping):
            for k, item in value.items():
                self.finite_numbers(item, f"{key}.{k}" if key else str(k))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                self.finite_numbers(item, f"{key}[{i}]")
        elif isinstance(value, float) and not math.isfinite(value):
            self.bad(key, f"{value}; expected a finite number")

    def report_keys(self) -> None:
        """The lr sweep's metric is one the dev split measures; a headline metric names a benchmark."""
        evaluation = self.config.get("evaluation") or {}
        sweep = (self.config.get("training") or {}).get("lr_sweep") or {}
        metric = sweep.get("metric", "map")
        measured = {"map"} | {f"recall_{k}" for k in evaluation.get("recall_k", [])}
        if (sweep.get("full") or sweep.get("lora")) and metric not in measured:
            self.bad(
                "training.lr_sweep.metric",
                f"'{metric}' is not measured on the dev split; expected one of {', '.join(sorted(measured))} "
                "(recall_<k> for k in evaluation.recall_k)",
            )
        benchmarks = set(self.config.get("benchmarks") or {})
        for name in (self.config.get("report") or {}).get("headline_metric") or {}:
            if name not in benchmarks:
                self.bad(
                    f"report.headline_metric.{name}",
                    f"no benchmark '{name}' in this config ({', '.join(sorted(benchmarks))})",
                )

    # -- models -----------------------------------------------------------------------
    def models(self) -> None:
        off = network_off(self.config, self.environ)
        for name, spec in (self.config.get("models") or {}).items():
            key = f"models.{name}"
            source = spec.get("source")
            for other, owner in (("hub_id", "hub"), ("revision", "hub"), ("path", "path")):
                if spec.get(other) is not None and source != owner:
                    self.bad(f"{key}.{other}", f"only source '{owner}' reads it, and source is '{source}'")
            prepared = self.done(f"results/models/{name}/base/model_card.json")
            if source == "path":
                self._model_path(key, spec.get("path"), prepared)
            elif source == "hub":
                hub_id = spec.get("hub_id")
                if not hub_id:
                    self.bad(f"{key}.hub_id", "missing; source 'hub' needs a Hugging Face model id (e.g. org/model)")
                elif off and not prepared and not self.hub_cached(hub_id, spec.get("revision")):
                    revision = f" at revision {spec['revision']!r}" if spec.get("revision") else ""
                    self.bad(
                        f"{key}.hub_id",
                        f"{hub_id!r}{revision} would be downloaded from the Hugging Face hub, but {off} and it "
                        f"is not in the local hub cache ({hub_cache_dir()}); set data.download: true, or put "
                        "a local copy in a folder and use source: path with path: <folder>",
                    )

    def _model_path(self, key: str, value, prepared: bool) -> None:
        if not value:
            self.bad(f"{key}.path", "missing; source 'path' needs the folder of a transformers model")
            return
        if prepared:
            return
        folder = self.path(value)
        if not folder.is_dir():
            self.bad(f"{key}.path", f"{str(value)!r} is not a folder ({folder} does not exist)")
        elif not (folder / "config.json").is_file():
            self.bad(f"{key}.path", f"{folder} has no config.json; expected a transformers model folder")
        elif not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
            self.bad(f"{key}.path", f"{folder} has no weights (*.safetensors or *.bin)")

    # -- benchmarks and the training source ---------------------------------------------
    def benchmarks(self) -> None:
        for name, spec in (self.config.get("benchmarks") or {}).items():
            key = f"benchmarks.{name}"
            kind, languages, folder = spec.get("kind"), list(spec.get("languages") or []), spec.get("folder")
            if kind == "lareqa":
                dataset = spec.get("dataset")
                if folder:
                    self._folder_files(f"{key}.folder", folder, [f"{lang}.json" for lang in languages])
                    continue
                if not dataset:
                    self.bad(f"{key}.dataset", "missing; kind 'lareqa' needs xquad-r or mlqa-r (or a folder)")
                    continue
                self._languages(f"{key}.languages", languages, lareqa_languages(dataset), dataset)
                fetched = f"resources/benchmarks/{name}"
                wanted = [f"lareqa/{dataset}/{lang}.json" for lang in languages]
                if not self.done(*[f"{fetched}/{lang}.json" for lang in languages]):
                    self._mirror(key, f"{dataset}", wanted)
            elif kind == "miracl":
                if folder:
                    self._folder_files(f"{key}.folder", folder, [f"{lang}/topics.tsv" for lang in languages])
                    continue
                self._languages(f"{key}.languages", languages, MIRACL_LANGUAGES, "MIRACL")
                split = spec.get("split", "dev")
                fetched = f"resources/benchmarks/{name}"
                if not self.done(*[f"{fetched}/{lang}/topics.tsv" for lang in languages]):
                    wanted = [_MIRACL_TOPICS.format(lang=lang, split=split) for lang in languages]
                    self._mirror(key, f"MIRACL {split}", wanted)

    def qa_source(self) -> None:
        qa = self.config.get("qa") or {}
        source = qa.get("source") or {}
        kind = source.get("kind", "chatterbot")
        if kind == "chatterbot" and qa.get("corpus_dir"):
            folder = self.path(qa["corpus_dir"])
            if not folder.is_dir():
                self.bad("qa.corpus_dir", f"{qa['corpus_dir']!r} is not a folder ({folder} does not exist)")
            else:
                self._categories(qa, folder)
        elif kind == "chatterbot":
            from xlir.data.sources.chatterbot import bundled_corpus_dir

            self._categories(qa, bundled_corpus_dir())
        if source.get("path"):
            if not self.path(source["path"]).exists():
                self.bad("qa.source.path", f"{source['path']!r} does not exist ({self.path(source['path'])})")
            elif kind == "lareqa":
                self._folder_files("qa.source.path", source["path"], [f"{lang}.json" for lang in source["languages"]])
            return
        if kind == "lareqa" and source.get("dataset") in LAREQA_SOURCES:
            dataset, languages = source["dataset"], list(source.get("languages") or [])
            self._languages("qa.source.languages", languages, lareqa_languages(dataset), dataset)
            if not self.done(*[f"resources/qa/{dataset}/{lang}.json" for lang in languages]):
                wanted = [f"lareqa/{dataset}/{lang}.json" for lang in languages]
                self._mirror("qa.source", f"{dataset} (training source)", wanted)

    def _categories(self, qa: Mapping, folder: Path) -> None:
        """qa.exclude_categories and qa.heldout_categories name categories of the corpus (a typo
        would exclude or hold out nothing, silently)."""
        from xlir.data.sources.chatterbot import category_slug

        known = {category_slug(p.stem) for pattern in ("*.yml", "*.yaml") for p in folder.glob(pattern)}
        if not known:
            return  # the prepare job names a folder without QA files
        listed = ", ".join(sorted(known))
        for key in ("exclude_categories", "heldout_categories"):
            unknown = ", ".join(repr(c) for c in qa.get(key) or [] if category_slug(c) not in known)
            if not unknown:
                continue
            message = f"{unknown} not among the corpus categories ({listed}) in {folder}"
            if key == "heldout_categories":  # the split cannot be made: the prepare job would fail
                self.bad(f"qa.{key}", message)
            else:  # excludes nothing: a typo, or the default's botprofile on another corpus
                self.warn(f"qa.{key}", message + "; it excludes nothing")

    def _languages(self, key: str, languages: list[str], known, what: str) -> None:
        unknown = [lang for lang in languages if lang not in known]
        if unknown:
            self.bad(key, f"{what} has no language(s) {', '.join(unknown)}; it has {', '.join(sorted(known))}")

    def _folder_files(self, key: str, value: str, names: list[str]) -> None:
        folder = self.path(value)
        if not folder.is_dir():
            self.bad(key, f"{value!r} is not a folder ({folder} does not exist)")
            return
        missing = [name for name in names if not (folder / name).exists()]
        if missing:
            self.bad(key, f"{folder} lacks {', '.join(missing)} (one per configured language)")

    def _mirror(self, key: str, what: str, wanted: list[str]) -> None:
        """A fetch job copies `wanted` from data.mirror, or downloads it with data.download."""
        data = self.config.get("data") or {}
        if data.get("download"):
            return
        mirror = data.get("mirror")
        if not mirror:
            self.bad(
                "data.mirror",
                f"{what} ({key}) is fetched from data.mirror or downloaded, but data.mirror is null and the network "
                "is off (data.download: false); set data.mirror to a folder laid out like the sources, or "
                "data.download: true",
            )
            return
        root = self.path(mirror)
        missing = [relative for relative in wanted if not (root / relative).is_file()]
        if missing:
            self.bad(
                "data.mirror",
                f"{what} ({key}): {root} lacks {', '.join(missing)}, and the network is off (data.download: false)",
            )

    # -- machine translation ----------------------------------------------------------
    def translation(self) -> None:
        t = self.config.get("translation") or {}
        needed = {lang for lang in t.get("languages") or [] if lang != "en"}
        for spec in (self.config.get("benchmarks") or {}).values():
            if spec.get("kind") == "demo":
                needed.update(lang for lang in spec.get("languages") or [] if lang != "en")
        needed = {
            lang
            for lang in needed
            if not self.done(f"results/data/mt/{lang}.jsonl", f"results/data/mt/{lang}.quality.json")
        }
        if t.get("references"):
            self._references(t["references"], sorted(set(t.get("languages") or []) - {"en"}))
        if not needed:
            return
        if with_defaults(t, "translation")["backend"] == "apertium":
            self._apertium(t, sorted(needed))
        else:
            self._huggingface(t.get("hf") or {})

    def _apertium(self, t: Mapping, languages: list[str]) -> None:
        modes = {**DEFAULT_MODES, **(t.get("modes") or {})}
        forward = {}
        for lang in languages:
            mode = modes.get(f"en-{lang}")
            if mode is None:
                known = ", ".join(sorted(k for k in modes if k.startswith("en-")))
                self.bad(
                    "translation.languages",
                    f"'{lang}' needs an Apertium mode for en-{lang}, and neither the built-in pairs ({known}) nor "
                    f"translation.modes name one; add translation.modes: {{en-{lang}: <mode>}} with a mode that "
                    "`apertium -l` lists, or use translation.backend: huggingface",
                )
            else:
                forward[lang] = mode
        if self.conda:  # the program comes with the job's conda environment (envs/xlir.yaml)
            return
        installed = self.installed_modes()
        if installed is None:
            packages = sorted({package_for_mode(mode) for mode in forward.values()})
            self.bad(
                "translation.backend",
                f"'apertium' translates {', '.join(languages)}, but the apertium program is not installed (not on "
                f"PATH); install it (apt-get install apertium {' '.join(packages)}) or set translation.backend: "
                "huggingface",
            )
            return
        for lang, mode in forward.items():
            if mode not in installed:
                configured = f"en-{lang}" in (t.get("modes") or {})
                self.bad(
                    f"translation.modes.en-{lang}" if configured else "translation.languages",
                    f"'{lang}' translates with Apertium mode '{mode}', which is not installed (installed: "
                    f"{', '.join(installed) or 'none'}); apt-get install {package_for_mode(mode)}",
                )
            back = modes.get(f"{lang}-en")
            if back is None or back not in installed:
                self.warn(
                    "translation.languages",
                    f"no installed Apertium mode for {lang}-en"
                    + (f" ('{back}')" if back else "")
                    + f": mt_quality cannot score {lang} round-trip, only against human references",
                )

    def _huggingface(self, hf: Mapping) -> None:
        model = hf.get("model")
        if not model:
            self.bad("translation.hf.model", "missing; backend 'huggingface' needs a seq2seq model (hub id or folder)")
            return
        if self.path(model).is_dir() or hf.get("allow_download"):
            return
        if not self.hub_cached(model, None):
            self.bad(
                "translation.hf.model",
                f"{model!r} is not a local folder and not in the local hub cache ({hub_cache_dir()}), and "
                "translation.hf.allow_download is false (the network is off for it); set allow_download: true "
                "or give a local folder",
            )

    def _references(self, value: str, languages: list[str]) -> None:
        path = self.path(value)
        if not path.is_file():
            self.bad("translation.references", f"{value!r} is not a file ({path} does not exist)")
            return
        from xlir.common.io import InputError, read_tsv

        try:
            rows = read_tsv(path)
        except InputError as error:
            self.bad("translation.references", str(error))
            return
        if not rows:
            self.bad(
                "translation.references",
                f"{path} holds no references (a header at most); expected rows of pair_id, field, lang, reference, "
                "or translation.references: null for round-trip scoring",
            )
            return
        have = {row.get("lang") for row in rows}
        lacking = [lang for lang in languages if lang not in have]
        if lacking:
            self.warn(
                "translation.references",
                f"{path} has no references for {', '.join(lacking)}; those are scored round-trip "
                "(or against the training source's own human texts)",
            )


def check_config(
    config: Mapping,
    workdir: str | Path = ".",
    *,
    environ: Mapping[str, str] | None = None,
    conda: bool = False,
    installed_modes: Callable[[], list[str] | None] | None = None,
    hub_cached: Callable[[str, str | None], bool] | None = None,
) -> list[str]:
    """Check `config` (validated, defaults filled) before any job runs; raise `ConfigError` with
    every problem, else return the warnings. `workdir`: Snakemake's working directory (relative
    paths in the config resolve against it). `conda`: jobs run in conda environments, so the
    Apertium program is not looked for here. `installed_modes`, `hub_cached`: for tests."""
    checker = _Checker(config, Path(workdir), environ, conda, installed_modes, hub_cached)
    checker.finite_numbers(config, "")
    checker.report_keys()
    checker.variants()
    checker.study()
    checker.layer_counts()
    checker.models()
    checker.benchmarks()
    checker.qa_source()
    checker.translation()
    if checker.problems:
        raise ConfigError(checker.problems)
    return checker.warnings
