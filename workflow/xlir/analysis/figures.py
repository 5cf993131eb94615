"""The layer analysis in the report: three figures and a generated paragraph.

Inputs are plain tables, so the report can build them however it likes:

- `load_analyses(runs)` reads the analysis folders of `xlir analyze` into two DataFrames,
  `layers` (layers.tsv rows) and `updates` (update_size.tsv rows), each row labelled with its
  run: model, variant, sampling, seed, benchmark, label (the line it belongs to);
- `drift_figure`, `alignment_figure`, `update_size_figure` draw one figure each (one line per
  label, the mean over seeds, the seeds as a band: min-max or mean ± sd) and return its name;
- `analysis_run_table` joins each run's layer summary to its metric deltas against the
  zero-shot model, and `analysis_paragraph` writes what they show, with numbers.

Drift is drawn as 1 − linear CKA with the base model (0 = the layer's representations did
not move)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

SETTINGS = ("monolingual", "cross-lingual", "multilingual")
LABEL_COLUMNS = ["model", "variant", "sampling", "seed", "benchmark", "label"]
RUN_KEY = ["model", "variant", "sampling", "seed", "benchmark"]
BASE_COLOR = "black"
LAYER_LABEL = "layer (0 = embeddings, i = block i)"


# ------------------------------------------------------------------ reading
def _labels(run: Mapping, several_samplings: bool) -> dict:
    variant, sampling = run["variant"], run.get("sampling", "")
    label = run.get("label") or (f"{variant}/{sampling}" if several_samplings and sampling else variant)
    return {
        "model": run.get("model", ""),
        "variant": variant,
        "sampling": sampling,
        "seed": int(run["seed"]),
        "benchmark": run.get("benchmark", ""),
        "label": label,
    }


def load_analyses(runs: Iterable[Mapping]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(layers, updates) of the analysis folders `runs`: [{dir, variant, seed, and optionally
    model, sampling, benchmark, label}] (label default: the variant, with `/sampling` when the
    runs have several samplings)."""
    runs = list(runs)
    several = len({r.get("sampling", "") for r in runs}) > 1
    layers, updates = [], []
    for run in runs:
        folder = Path(run["dir"])
        labels = _labels(run, several)
        layers.append(pd.read_csv(folder / "layers.tsv", sep="\t").assign(**labels))
        updates.append(pd.read_csv(folder / "update_size.tsv", sep="\t").assign(**labels))
    if not runs:
        return pd.DataFrame(columns=LABEL_COLUMNS + ["layer"]), pd.DataFrame(columns=LABEL_COLUMNS + ["layer"])
    return pd.concat(layers, ignore_index=True), pd.concat(updates, ignore_index=True)


def analysis_runs(manifest_runs: Iterable[Mapping], benchmarks: Iterable[str]) -> list[dict]:
    """The analysis folders of the report manifest's fine-tuned runs ([{model, variant, sampling,
    seed, dir}]; zero-shot and BM25 runs have none) on `benchmarks`, in `load_analyses`' form."""
    out = []
    for run in manifest_runs:
        if run["variant"] in ("zeroshot", "lexical"):
            continue
        for benchmark in benchmarks:
            out.append({**run, "benchmark": benchmark, "dir": f"{run['dir']}/{benchmark}/analysis"})
    return out


# ------------------------------------------------------------------ figures
def save_figure(fig, figures_dir: Path, name: str) -> str:
    """`name`.png and `name`.svg, byte-identical from the same data (no date in the SVG, element
    ids from a fixed salt), so a regenerated report matches the committed one."""
    figures_dir = Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(figures_dir / f"{name}.png", dpi=110, bbox_inches="tight")
    with plt.rc_context({"svg.hashsalt": name}):
        fig.savefig(figures_dir / f"{name}.svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return name


def _band(values: pd.DataFrame, column: str, band: str) -> pd.DataFrame:
    """mean, low, high of `column` per (label, layer) over seeds."""
    grouped = values.groupby(["label", "layer"])[column]
    stats = grouped.agg(["mean", "min", "max", "std"]).reset_index()
    if band == "sd":
        sd = stats["std"].fillna(0.0)
        stats["low"], stats["high"] = stats["mean"] - sd, stats["mean"] + sd
    elif band == "minmax":
        stats["low"], stats["high"] = stats["min"], stats["max"]
    else:
        raise ValueError(f"band '{band}' is not 'minmax' or 'sd'")
    return stats


def _draw_lines(ax, values: pd.DataFrame, column: str, band: str, colors: dict[str, str]) -> None:
    for label, part in _band(values, column, band).groupby("label", sort=False):
        part = part.sort_values("layer")
        ax.plot(part.layer, part["mean"], marker="o", markersize=3, color=colors[label], label=label)
        if (part.high > part.low).any():
            ax.fill_between(part.layer, part.low, part.high, color=colors[label], alpha=0.2, linewidth=0)


def _colors(labels: Iterable[str]) -> dict[str, str]:
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {label: cycle[i % len(cycle)] for i, label in enumerate(dict.fromkeys(labels))}


def _panels(table: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """One panel per (model, benchmark), titled by what differs."""
    keys = table[["model", "benchmark"]].drop_duplicates().itertuples(index=False)
    panels = []
    for model, benchmark in keys:
        title = " · ".join(str(x) for x in (model, benchmark) if x)
        panels.append((title, table[(table.model == model) & (table.benchmark == benchmark)]))
    return panels


def _band_note(band: str) -> str:
    return "band: min-max over seeds" if band == "minmax" else "band: mean ± sd over seeds"


def _legend(fig, colors: dict[str, str], band: str, base: bool = False) -> None:
    """One legend for every panel (each label's color, the base model's dashed line), below them."""
    handles = [plt.Line2D([], [], color=c, marker="o", markersize=3, label=label) for label, c in colors.items()]
    if base:
        handles.insert(0, plt.Line2D([], [], color=BASE_COLOR, linestyle="--", marker=".", label="base model"))
    fig.legend(
        handles=handles,
        loc="lower center",
        ncol=min(len(handles), 5),
        fontsize=8,
        title=f"line: mean over seeds; {_band_note(band)}",
        title_fontsize=7,
        bbox_to_anchor=(0.5, 0.0),
    )


def _layer_axis(ax, xlabel: str) -> None:
    ax.set_xlabel(xlabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3, which="both")


def _finish(fig, title: str, rows: int) -> None:
    fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.12 / rows, 1, 1))


def drift_figure(
    layers: pd.DataFrame, figures_dir: Path, name: str = "analysis_drift", band: str = "minmax"
) -> str | None:
    """1 − CKA with the base model by layer: one line per label, seeds as a band."""
    if layers.empty:
        return None
    table = layers.assign(drift=1.0 - layers.drift_cka)
    panels = _panels(table)
    colors = _colors(table.label)
    fig, axes = plt.subplots(1, len(panels), figsize=(max(6.5, 5.2 * len(panels)), 4.3), squeeze=False)
    for ax, (title, part) in zip(axes[0], panels):
        _draw_lines(ax, part, "drift", band, colors)
        ax.set_title(title, fontsize=9)
        _layer_axis(ax, LAYER_LABEL)
    axes[0][0].set_ylabel("drift: 1 − linear CKA with the base model")
    _legend(fig, colors, band)
    _finish(fig, "Representation drift by layer", 1)
    return save_figure(fig, figures_dir, name)


def alignment_figure(
    layers: pd.DataFrame, figures_dir: Path, name: str = "analysis_alignment", band: str = "minmax"
) -> str | None:
    """Translation retrieval accuracy and parallel cosine gap by layer, base model dashed."""
    if layers.empty:
        return None
    panels = _panels(layers)
    colors = _colors(layers.label)
    fig, axes = plt.subplots(len(panels), 2, figsize=(10.5, 3.6 * len(panels) + 0.6), squeeze=False)
    for row, (title, part) in enumerate(panels):
        for ax, column, ylabel in (
            (axes[row][0], "align_acc", "translation retrieval accuracy"),
            (axes[row][1], "align_gap", "cosine gap (parallel − non-parallel)"),
        ):
            base = part.groupby("layer")[f"base_{column}"].mean()
            ax.plot(base.index, base.values, linestyle="--", color=BASE_COLOR, marker=".", label="base model")
            _draw_lines(ax, part, column, band, colors)
            ax.set_ylabel(ylabel)
            ax.set_title(title, fontsize=9)
            _layer_axis(ax, LAYER_LABEL)
    _legend(fig, colors, band, base=True)
    _finish(fig, "Cross-lingual alignment of the probe questions by layer", len(panels))
    return save_figure(fig, figures_dir, name)


def update_size_figure(
    updates: pd.DataFrame,
    figures_dir: Path,
    name: str = "analysis_update_size",
    groups: tuple[str, ...] = ("attention", "ffn", "all"),
    band: str = "minmax",
) -> str | None:
    """||ΔW||_F / ||W||_F by layer (log scale; zero updates are not drawn), one panel per group."""
    groups = tuple(g for g in groups if g in set(updates.get("group", [])))
    if updates.empty or not groups:
        return None
    table = updates.assign(rel=updates.rel_update.where(updates.rel_update > 0))
    colors = _colors(table.label)
    panels = _panels(table)
    fig, axes = plt.subplots(
        len(panels), len(groups), figsize=(4.4 * len(groups), 3.5 * len(panels) + 0.6), squeeze=False, sharey="row"
    )
    for row, (title, part) in enumerate(panels):
        for ax, group in zip(axes[row], groups):
            _draw_lines(ax, part[part.group == group], "rel", band, colors)
            ax.set_yscale("log")
            ax.set_title(f"{title} · {group}" if title else group, fontsize=9)
            _layer_axis(ax, "layer (0 = embeddings, L + 1 = above the blocks)")
        axes[row][0].set_ylabel("||ΔW||_F / ||W||_F")
    _legend(fig, colors, band)
    _finish(fig, "Relative weight update by layer (zero updates not drawn)", len(panels))
    return save_figure(fig, figures_dir, name)


def analysis_figures(runs: Iterable[Mapping], figures_dir: Path, prefix: str = "", band: str = "minmax") -> list[str]:
    """The three figures of the analysis folders `runs` (see `load_analyses`); their names."""
    layers, updates = load_analyses(runs)
    names = [
        drift_figure(layers, figures_dir, f"{prefix}analysis_drift", band),
        alignment_figure(layers, figures_dir, f"{prefix}analysis_alignment", band),
        update_size_figure(updates, figures_dir, f"{prefix}analysis_update_size", band=band),
    ]
    return [n for n in names if n]


# ------------------------------------------------------------------ the paragraph
def _halves(layers: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Masks of the lower and upper half of the transformer blocks (layer 0 excluded)."""
    blocks = int(layers.layer.max())
    lower = (layers.layer >= 1) & (layers.layer <= (blocks + 1) // 2)
    upper = layers.layer > (blocks + 1) // 2
    return lower, upper


def analysis_run_table(
    layers: pd.DataFrame, measurements: pd.DataFrame, metric: str = "map", baseline: str = "zeroshot"
) -> pd.DataFrame:
    """One row per analysed run: lower_drift / upper_drift (mean 1 − CKA over the lower / upper
    half of the blocks), top_align_acc / top_base_align_acc (the last layer) and, from the
    report's tidy `measurements` (model, variant, sampling, seed, benchmark, setting, pair, metric,
    value; pair `macro` rows are used), delta_<setting>: the run's `metric` minus the `baseline`
    run's (same model and benchmark)."""
    table = layers.assign(drift=1.0 - layers.drift_cka)
    rows = []
    for key, part in table.groupby(RUN_KEY, sort=False):
        lower, upper = _halves(part)
        top = part[part.layer == part.layer.max()].iloc[0]
        rows.append(
            {
                **dict(zip(RUN_KEY, key)),
                "label": part.label.iloc[0],
                "lower_drift": float(part.drift[lower].mean()),
                "upper_drift": float(part.drift[upper].mean()),
                "top_align_acc": float(top.align_acc),
                "top_base_align_acc": float(top.base_align_acc),
            }
        )
    runs = pd.DataFrame(rows)
    if runs.empty:
        return runs
    macro = measurements[(measurements.pair == "macro") & (measurements.metric == metric)]
    base = macro[macro.variant == baseline].groupby(["model", "benchmark", "setting"]).value.mean().rename("base_value")
    tuned = macro[macro.variant != baseline].merge(base.reset_index(), on=["model", "benchmark", "setting"])
    tuned = tuned.assign(delta=tuned.value - tuned.base_value)
    deltas = tuned.pivot_table(index=RUN_KEY, columns="setting", values="delta", aggfunc="mean")
    deltas.columns = [f"delta_{c}" for c in deltas.columns]
    runs = runs.astype({"seed": int}).merge(deltas.reset_index().astype({"seed": int}), on=RUN_KEY, how="left")
    for setting in SETTINGS:
        if f"delta_{setting}" not in runs:
            runs[f"delta_{setting}"] = np.nan
    return runs


def pearson(x: Iterable[float], y: Iterable[float]) -> tuple[float, int]:
    """(r, n) over the pairs where both are finite; r is NaN below 3 pairs or without variance."""
    x, y = np.asarray(list(x), dtype=float), np.asarray(list(y), dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < 3 or np.std(x) == 0 or np.std(y) == 0:
        return float("nan"), int(len(x))
    return float(np.corrcoef(x, y)[0, 1]), int(len(x))


def _r(value: float) -> str:
    return "undefined" if not np.isfinite(value) else f"{value:+.2f}"


def _drift_sentence(runs: pd.DataFrame, where: str) -> str:
    by_label = runs.groupby("label", sort=False)[["lower_drift", "upper_drift"]].mean()
    count = f"{len(runs)} fine-tuned run{'s' if len(runs) != 1 else ''}"

    def drift(label: str) -> str:
        return f"mean drift 1 − CKA {by_label.lower_drift[label]:.3f}; upper half {by_label.upper_drift[label]:.3f}"

    most, least = by_label.lower_drift.idxmax(), by_label.lower_drift.idxmin()
    if most == least:
        return f"On {where}, {count} of {most} were probed layer by layer: its lower blocks moved ({drift(most)})."
    return (
        f"On {where}, {count} were probed layer by layer. The lower half of the transformer blocks moved most "
        f"under {most} ({drift(most)}) and least under {least} ({drift(least)})."
    )


def _correlation_sentence(runs: pd.DataFrame, metric_name: str) -> str:
    found = {setting: pearson(runs.lower_drift, runs[f"delta_{setting}"]) for setting in SETTINGS}
    r_top, n_top = pearson(runs.top_align_acc - runs.top_base_align_acc, runs["delta_cross-lingual"])
    if max(n for _, n in found.values()) < 3:
        return (
            f"Correlations with the change in {metric_name} over the zero-shot model need at least 3 runs with "
            f"metrics; there are {max(n for _, n in found.values())}."
        )
    listed = ", ".join(f"{setting} r = {_r(r)} (n = {n})" for setting, (r, n) in found.items())
    return (
        f"Across runs, mean lower-layer drift correlates with the change in {metric_name} over the zero-shot "
        f"model as follows: {listed}; the last layer's gain in translation retrieval correlates with the "
        f"cross-lingual change at r = {_r(r_top)} (n = {n_top})."
    )


def _update_sentence(updates: pd.DataFrame, blocks: int) -> str | None:
    part = updates[(updates.group == "all") & (updates.layer >= 1) & (updates.layer <= blocks)]
    if part.empty:
        return None
    squared = part.assign(sq=part.delta_norm**2, lower=part.layer <= (blocks + 1) // 2)
    shares = squared.groupby("label", sort=False).apply(
        lambda g: g.sq[g.lower].sum() / g.sq.sum() if g.sq.sum() > 0 else np.nan, include_groups=False
    )
    listed = ", ".join(f"{label} {100 * share:.0f}%" for label, share in shares.items() if np.isfinite(share))
    return f"Share of the squared weight update in the lower half of the blocks: {listed}." if listed else None


def _run_group_paragraph(
    runs: pd.DataFrame, updates: pd.DataFrame | None, blocks: int, metric_name: str, where: str
) -> str:
    text = [_drift_sentence(runs, where)]
    text.append(
        f"At the last layer, translation retrieval among the probe questions goes from "
        f"{runs.top_base_align_acc.mean():.3f} (base model) to {runs.top_align_acc.mean():.3f} (mean over runs)."
    )
    text.append(_correlation_sentence(runs, metric_name))
    if updates is not None and not updates.empty:
        sentence = _update_sentence(updates, blocks)
        if sentence:
            text.append(sentence)
    return " ".join(text)


def analysis_paragraph(
    layers: pd.DataFrame,
    measurements: pd.DataFrame,
    updates: pd.DataFrame | None = None,
    metric: str = "map",
    metric_name: str | None = None,
) -> str:
    """A short generated paragraph per benchmark (and model; blank-line separated) relating the layer
    analysis to the monolingual / cross-lingual / multilingual deltas against zero-shot:
    which variant moved the lower layers most and least, the base vs fine-tuned alignment of
    the last layer, the Pearson correlations across runs between mean lower-layer drift and
    each setting's delta, and where the weight update lies. Tables: see `load_analyses` and
    `analysis_run_table`."""
    runs = analysis_run_table(layers, measurements, metric)
    if runs.empty:
        return ""
    metric_name = metric_name or ("mAP" if metric == "map" else metric)
    several_models = runs.model.nunique() > 1
    paragraphs = []
    for (model, benchmark), part in runs.groupby(["model", "benchmark"], sort=False):
        here = layers[(layers.model == model) & (layers.benchmark == benchmark)]
        there = None if updates is None else updates[(updates.model == model) & (updates.benchmark == benchmark)]
        where = f"{benchmark} ({model})" if several_models else str(benchmark)
        paragraphs.append(_run_group_paragraph(part, there, int(here.layer.max()), metric_name, where))
    return "\n\n".join(paragraphs)
