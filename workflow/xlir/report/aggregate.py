"""Rule `aggregate`: every evaluation output of the grid in one tidy table.

One row per measurement: run (model, variant, sampling, seed) x benchmark x
setting x language pair x metric, plus the setting's macro average (pair
`macro`, query/candidate language `*`), read from each run's `metrics.json`
(rule `evaluate`). Every row carries the run's config fingerprint
(`xlir.report.grid.run_fingerprint`) and the ranking depth the metric was
computed at (`full` = the whole pool, else the truncation k)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from xlir.common.io import InputError, atomic_open, get_logger, read_json
from xlir.report.grid import SETTINGS, Run, run_fingerprint, runs_of

log = get_logger(__name__)

COLUMNS = [
    "model",
    "variant",
    "sampling",
    "seed",
    "benchmark",
    "setting",
    "query_lang",
    "cand_lang",
    "pair",
    "metric",
    "value",
    "n_queries",
    "depth",
    "fingerprint",
    "run_dir",
]
_NOT_METRICS = {"n_queries", "n_pairs", "per_pair", "per_query_language"}


def ranking_depth(metrics: dict) -> str:
    """`full` when the metrics are over the whole ranked pool, `top {k}` when the
    ranking was truncated at k, `unknown` when metrics.json does not say."""
    ranking = metrics.get("ranking", metrics.get("depth", "unknown"))
    if not isinstance(ranking, dict):
        ranking = {"depth": ranking, "full_pool": ranking in (None, "full")}
    if ranking.get("full_pool") is True:
        return "full"
    if ranking.get("depth") not in (None, "unknown"):
        return f"top {ranking['depth']}"
    return "unknown"


def _metric_items(block: dict) -> list[tuple[str, float]]:
    return [
        (key, float(value))
        for key, value in block.items()
        if key not in _NOT_METRICS and isinstance(value, (int, float)) and not isinstance(value, bool)
    ]


def run_rows(run: Run, benchmark: str, metrics: dict, fingerprint: str) -> list[dict]:
    """The measurements of one run on one benchmark."""
    base = {
        "model": run.model,
        "variant": run.variant,
        "sampling": run.sampling,
        "seed": run.seed,
        "benchmark": benchmark,
        "depth": ranking_depth(metrics),
        "fingerprint": fingerprint,
        "run_dir": run.dir,
    }
    rows = []
    settings = metrics.get("settings")
    if not isinstance(settings, dict):
        raise InputError(f"{run.dir}/{benchmark}/metrics.json: expected a 'settings' object")
    for setting in SETTINGS:
        block = settings.get(setting) or {}
        if not block.get("n_queries"):
            continue
        for metric, value in _metric_items(block):
            rows.append(
                {
                    **base,
                    "setting": setting,
                    "query_lang": "*",
                    "cand_lang": "*",
                    "pair": "macro",
                    "metric": metric,
                    "value": value,
                    "n_queries": block.get("n_queries"),
                }
            )
        for pair, entry in (block.get("per_pair") or {}).items():
            if not entry.get("n_queries"):
                continue
            query_lang, _, cand_lang = pair.partition("-")
            for metric, value in _metric_items(entry):
                rows.append(
                    {
                        **base,
                        "setting": setting,
                        "query_lang": query_lang,
                        "cand_lang": cand_lang,
                        "pair": pair,
                        "metric": metric,
                        "value": value,
                        "n_queries": entry.get("n_queries"),
                    }
                )
    return rows


def collect_measurements(manifest: dict) -> pd.DataFrame:
    """The tidy table of every run x benchmark in the manifest."""
    config = manifest["config"]
    rows: list[dict] = []
    for run in runs_of(manifest):
        stamp = run_fingerprint(config, run)
        for benchmark in manifest["benchmarks"]:
            path = Path(run.dir) / benchmark / "metrics.json"
            if not path.exists():
                raise InputError(f"{path}: missing (rule evaluate writes it for every run x benchmark)")
            rows.extend(run_rows(run, benchmark, read_json(path), stamp))
    table = pd.DataFrame(rows, columns=COLUMNS)
    return table.astype({"seed": int})


def read_csv_with_columns(path: str | Path, columns: list[str], dtype: dict[str, type], writer: str) -> pd.DataFrame:
    """A CSV written by `xlir {writer}`: only empty cells are missing values; every column of
    `columns` must be there."""
    path = Path(path)
    table = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype=dtype)
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError(f"{path}: missing columns {', '.join(missing)} (written by `xlir {writer}`)")
    return table


def read_measurements(path: str | Path) -> pd.DataFrame:
    return read_csv_with_columns(path, COLUMNS, {"query_lang": str, "cand_lang": str}, "aggregate")


def aggregate_metrics(manifest: dict, out_csv: str | Path) -> pd.DataFrame:
    table = collect_measurements(manifest)
    with atomic_open(out_csv) as handle:
        table.to_csv(handle, index=False)
    log.info(
        "aggregate: %d measurements of %d runs x %d benchmarks -> %s",
        len(table),
        len(manifest["runs"]),
        len(manifest["benchmarks"]),
        out_csv,
    )
    return table
