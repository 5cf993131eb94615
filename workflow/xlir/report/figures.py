"""The report's figures (matplotlib, Agg), each saved as `{name}.png` and `{name}.svg`.

Every function takes tidy tables (the measurements of `xlir.report.aggregate`,
the comparisons of `xlir.report.compare`) or run files, draws one figure and
returns its name, or None when there is nothing to draw."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from xlir.analysis.figures import save_figure  # noqa: E402
from xlir.common.io import read_json, read_tsv  # noqa: E402
from xlir.report.grid import SETTINGS, Run, Study, group_label, metric_label  # noqa: E402

OUTCOME_COLORS = {"better": "#1a7f37", "worse": "#cf222e", "equivalent": "#0969da", "inconclusive": "#6e7781"}
SETTING_COLORS = {"monolingual": "#4c72b0", "cross-lingual": "#dd8452", "multilingual": "#55a868"}


def save(fig, figures_dir: Path, name: str) -> str:
    return save_figure(fig, figures_dir, name)


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def _macro(measurements: pd.DataFrame, benchmark: str, metric: str) -> pd.DataFrame:
    return measurements[
        (measurements.benchmark == benchmark) & (measurements.pair == "macro") & (measurements.metric == metric)
    ].copy()


# ------------------------------------------------------------------ results
def setting_bars(measurements: pd.DataFrame, benchmark: str, metric: str, figures_dir: Path) -> str | None:
    """The headline metric of every run group (mean over seeds) per setting."""
    macro = _macro(measurements, benchmark, metric)
    if macro.empty:
        return None
    macro["run"] = [
        f"{m} {group_label(v, s)}" if v != "lexical" else "BM25"
        for m, v, s in zip(macro.model, macro.variant, macro.sampling)
    ]
    wide = macro.groupby(["run", "setting"]).value.mean().unstack("setting")
    wide = wide[[s for s in SETTINGS if s in wide.columns]]
    fig, ax = plt.subplots(figsize=(max(6.5, 0.8 * len(wide) + 2), 4.2))
    wide.plot.bar(ax=ax, width=0.8, color=[SETTING_COLORS[s] for s in wide.columns])
    label = metric_label(metric)
    ax.set_ylabel(f"{label} (macro average over language pairs)")
    ax.set_xlabel("run (model, variant / sampling; mean over seeds)")
    ax.set_title(f"{benchmark}: {label} by setting")
    ax.set_ylim(0, min(1.0, max(0.1, float(np.nanmax(wide.to_numpy())) * 1.15)))
    ax.legend(title="setting", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    return save(fig, figures_dir, f"{_safe(benchmark)}_{metric}_by_setting")


def delta_ci(
    comparisons: pd.DataFrame, benchmark: str, family: str, figures_dir: Path, subset: str = "all", title: str = ""
) -> str | None:
    """Δ of each comparison with its confidence interval, one panel per setting;
    filled marker = significant after Holm."""
    rows = comparisons[
        (comparisons.benchmark == benchmark)
        & (comparisons.family == family)
        & (comparisons.subset == subset)
        & comparisons.headline
    ]
    if rows.empty:
        return None
    settings = [s for s in SETTINGS if s in set(rows.setting)]
    labels = list(dict.fromkeys(f"{r.model}: {r.treatment} − {r.control}" for r in rows.itertuples()))
    fig, axes = plt.subplots(
        1, len(settings), figsize=(4.2 * len(settings) + 2.5, 0.45 * len(labels) + 1.8), sharey=True, squeeze=False
    )
    metric = metric_label(rows.iloc[0]["metric"])
    level = int(round(100 * rows.iloc[0]["ci_level"]))
    for ax, setting in zip(axes[0], settings):
        part = rows[rows.setting == setting]
        for r in part.itertuples():
            y = labels.index(f"{r.model}: {r.treatment} − {r.control}")
            color = OUTCOME_COLORS[r.outcome]
            ax.errorbar(
                r.delta,
                y,
                xerr=[[r.delta - r.ci_low], [r.ci_high - r.delta]],
                fmt="o",
                color=color,
                mfc=color if r.significant else "white",
                capsize=3,
                markersize=6,
            )
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_title(
            f"{setting}\n(n = {int(part.n_queries.max())} queries x {int(part.n_pairs.max())} pairs, "
            f"{int(part.n_seeds.max())} seed{'s' if part.n_seeds.max() > 1 else ''})",
            fontsize=9,
        )
        ax.set_xlabel(f"Δ {metric} ({level}% CI)")
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(range(len(labels)), labels, fontsize=8)
    axes[0][0].invert_yaxis()
    handles = [plt.Line2D([], [], marker="o", linestyle="", color=c, label=o) for o, c in OUTCOME_COLORS.items()]
    handles.append(
        plt.Line2D([], [], marker="o", linestyle="", color="black", mfc="white", label="hollow: not significant (Holm)")
    )
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=8, bbox_to_anchor=(0.5, -0.02))
    fig.suptitle(title or f"{benchmark}: {family} comparisons", fontsize=11)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return save(fig, figures_dir, f"{_safe(benchmark)}_{family}_{subset}_delta_ci")


def forest(rows: pd.DataFrame, figures_dir: Path, labels: list[str] | None = None) -> str | None:
    """The report's opening figure: one line per comparison of `rows` (the glance table's),
    Δ with the Holm-adjusted interval the outcome uses (`ci_adj_low`, `ci_adj_high`),
    coloured by outcome; vertical lines at 0 and at ± the minimum effect."""
    if rows.empty:
        return None
    labels = labels or [
        f"{r.benchmark} · {r.model} · {r.treatment} − {r.control} · {r.setting}" for r in rows.itertuples()
    ]
    fig, ax = plt.subplots(figsize=(8.5, 0.32 * len(rows) + 1.6))
    for y, r in enumerate(rows.itertuples()):
        low, high = (r.ci_adj_low, r.ci_adj_high) if not pd.isna(r.ci_adj_low) else (r.ci_low, r.ci_high)
        color = OUTCOME_COLORS[r.outcome]
        ax.errorbar(
            r.delta,
            y,
            xerr=[[max(0.0, r.delta - low)], [max(0.0, high - r.delta)]],
            fmt="o",
            color=color,
            mfc=color if r.outcome in ("better", "worse") else "white",
            capsize=3,
            markersize=5,
        )
    ax.axvline(0, color="black", linewidth=0.8)
    effects = sorted({float(m) for m in rows.min_effect.dropna() if float(m) > 0})
    for effect in effects:
        for sign in (-1, 1):
            ax.axvline(sign * effect, color="#6e7781", linewidth=0.8, linestyle="--")
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.invert_yaxis()
    metrics = ", ".join(dict.fromkeys(metric_label(m) for m in rows.metric))
    ax.set_xlabel(
        f"Δ {metrics} (variant − counterpart), Holm-adjusted interval"
        + (f"; dashed: ± minimum effect {', '.join(f'{e:g}' for e in effects)}" if effects else "")
    )
    ax.grid(axis="x", alpha=0.3)
    handles = [plt.Line2D([], [], marker="o", linestyle="", color=c, label=o) for o, c in OUTCOME_COLORS.items()]
    ax.legend(handles=handles, fontsize=7, loc="best")
    ax.set_title("Layer-wise and uniform variants against their uniform counterpart", fontsize=10)
    fig.tight_layout()
    return save(fig, figures_dir, "glance_forest")


def pair_delta_matrix(
    measurements: pd.DataFrame,
    benchmark: str,
    metric: str,
    model: str,
    treatment: tuple[str, str],
    control: tuple[str, str],
    seeds: list[int] | None,
) -> pd.DataFrame:
    """query language x candidate language (+ `all`) of the per-pair delta, each arm
    averaged over `seeds` (None: all of its seeds)."""
    rows = measurements[
        (measurements.benchmark == benchmark)
        & (measurements.metric == metric)
        & (measurements.pair != "macro")
        & (measurements.model == model)
    ]

    def arm(variant: str, sampling: str) -> pd.Series:
        part = rows[(rows.variant == variant) & (rows.sampling == sampling)]
        if seeds is not None:
            part = part[part.seed.isin(seeds)]
        return part.groupby(["query_lang", "cand_lang"]).value.mean()

    delta = (arm(*treatment) - arm(*control)).dropna()
    if delta.empty:
        return pd.DataFrame()
    matrix = delta.unstack("cand_lang")
    columns = sorted(c for c in matrix.columns if c != "all") + (["all"] if "all" in matrix.columns else [])
    return matrix.reindex(index=sorted(matrix.index), columns=columns)


def delta_heatmaps(
    measurements: pd.DataFrame, comparisons: pd.DataFrame, benchmark: str, figures_dir: Path
) -> str | None:
    """Per scaling comparison: Δ of the headline metric per query language x candidate
    language (diagonal = monolingual, off-diagonal = cross-lingual, `all` = multilingual)."""
    rows = comparisons[
        (comparisons.benchmark == benchmark)
        & (comparisons.family == "scaling")
        & (comparisons.subset == "all")
        & comparisons.headline
    ]
    if rows.empty:
        return None
    metric = rows.iloc[0]["metric"]
    panels = []
    for r in rows.drop_duplicates(["model", "treatment", "control"]).itertuples():
        seeds = [int(s) for s in str(r.seeds).split(",")]
        matrix = pair_delta_matrix(
            measurements,
            benchmark,
            metric,
            r.model,
            (r.treatment_variant, r.treatment_sampling),
            (r.control_variant, r.control_sampling),
            seeds,
        )
        if not matrix.empty:
            panels.append((f"{r.treatment_variant} − {r.control_variant}\n({r.model}, {r.treatment_sampling})", matrix))
    if not panels:
        return None
    limit = max(float(np.nanmax(np.abs(m.to_numpy()))) for _, m in panels) or 1e-6
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    size = max(len(panels[0][1].columns), 4)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(max(0.6 * size, 3.6) * ncols + 1.5, max(0.55 * size, 3.2) * nrows + 1.0),
        squeeze=False,
        layout="constrained",
    )
    image = None
    for ax, (title, matrix) in zip(axes.flat, panels):
        image = ax.imshow(matrix.to_numpy(dtype=float), cmap="RdBu", vmin=-limit, vmax=limit)
        ax.set_xticks(range(len(matrix.columns)), matrix.columns, fontsize=8)
        ax.set_yticks(range(len(matrix.index)), matrix.index, fontsize=8)
        ax.set_xlabel("candidate language (all = pooled)", fontsize=8)
        ax.set_ylabel("query language", fontsize=8)
        ax.set_title(title, fontsize=9)
        if matrix.size <= 160:
            for (i, j), value in np.ndenumerate(matrix.to_numpy(dtype=float)):
                if not np.isnan(value):
                    ax.text(
                        j,
                        i,
                        f"{100 * value:+.1f}",
                        ha="center",
                        va="center",
                        fontsize=6.5,
                        color="white" if abs(value) > 0.6 * limit else "black",
                    )
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    label = metric_label(metric)
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label=f"Δ {label} (cell text: Δ x 100)")
    fig.suptitle(f"{benchmark}: Δ {label} per language pair (blue = variant better)", fontsize=11)
    return save(fig, figures_dir, f"{_safe(benchmark)}_delta_heatmaps")


def rank_distance(measurements: pd.DataFrame, benchmark: str, figures_dir: Path) -> str | None:
    """Language bias (multilingual rank distance) per run group: bar = mean over seeds, dots = seeds."""
    macro = _macro(measurements, benchmark, "rank_distance")
    macro = macro[macro.setting == "multilingual"]
    if macro.empty:
        return None
    macro["run"] = [
        f"{m} {group_label(v, s)}" if v != "lexical" else "BM25"
        for m, v, s in zip(macro.model, macro.variant, macro.sampling)
    ]
    order = macro.groupby("run").value.mean().sort_values()
    fig, ax = plt.subplots(figsize=(max(6.5, 0.7 * len(order) + 2), 4))
    ax.bar(range(len(order)), order.to_numpy(), color="#8172b3", alpha=0.8)
    for index, run in enumerate(order.index):
        values = macro[macro.run == run].value.to_numpy()
        ax.scatter(np.full(len(values), index), values, color="black", s=12, zorder=3)
    ax.set_xticks(range(len(order)), order.index, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("rank distance (ranks; lower = less language bias)")
    ax.set_xlabel("run (bar: mean over seeds; dots: seeds)")
    ax.set_title(f"{benchmark}: language bias in the multilingual pool")
    ax.grid(axis="y", alpha=0.3)
    return save(fig, figures_dir, f"{_safe(benchmark)}_rank_distance")


def model_size(
    measurements: pd.DataFrame, sizes: dict[str, int], benchmark: str, metric: str, study: Study, figures_dir: Path
) -> str | None:
    """Headline metric against model size (once more than one size was run)."""
    macro = _macro(measurements, benchmark, metric)
    macro = macro[macro.model.isin(list(sizes)) & (macro.variant != "lexical")]
    if macro.model.nunique() < 2:
        return None
    macro["size"] = macro.model.map(sizes) / 1e6
    settings = [s for s in SETTINGS if s in set(macro.setting)]
    fig, axes = plt.subplots(1, len(settings), figsize=(4.5 * len(settings), 4), squeeze=False)
    for ax, setting in zip(axes[0], settings):
        part = macro[macro.setting == setting]
        main = part[(part.sampling == (study.hybrid_sampling() or study.main_sampling)) | (part.variant == "zeroshot")]
        for variant, lines in main.groupby("variant"):
            points = lines.groupby("size").value.mean()
            ax.plot(points.index, points.to_numpy(), marker="o", label=variant)
        ax.set_xscale("log")
        ax.set_xlabel("model size (million parameters, log scale)")
        ax.set_ylabel(f"{metric_label(metric)} (mean over seeds)")
        ax.set_title(setting)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"{benchmark}: {metric_label(metric)} against model size", fontsize=11)
    fig.tight_layout()
    return save(fig, figures_dir, f"{_safe(benchmark)}_{metric}_by_model_size")


# ------------------------------------------------------------------ training
def layer_profiles(runs: list[Run], figures_dir: Path) -> str | None:
    """Learning rate and trainable parameters per layer of each variant (first run of each)."""
    seen: dict[tuple[str, str], Run] = {}
    for run in runs:
        if run.trained:
            seen.setdefault((run.model, run.variant), run)
    if not seen:
        return None
    fig, (ax_lr, ax_tr) = plt.subplots(1, 2, figsize=(12, 4.2))
    several_models = len({model for model, _ in seen}) > 1
    for (model, variant), run in seen.items():
        table = pd.DataFrame(read_tsv(Path(run.dir) / "param_groups.tsv"))
        layers = table.layer.astype(int).to_numpy()
        label = f"{model} {variant}" if several_models else variant
        ax_lr.plot(layers, table.lr.astype(float).to_numpy(), marker="o", markersize=4, label=label)
        trainable = table.trainable.astype(float).to_numpy()
        ax_tr.plot(layers, np.where(trainable > 0, trainable, np.nan), marker="o", markersize=4, label=label)
    ax_lr.set_xlabel("layer (0 = embeddings, L+1 = above the last block)")
    ax_lr.set_ylabel("peak learning rate")
    ax_lr.set_title("learning rate by layer")
    ax_tr.set_xlabel("layer (0 = embeddings, L+1 = above the last block)")
    ax_tr.set_ylabel("trainable parameters (count, log scale)")
    ax_tr.set_yscale("log")
    ax_tr.set_title("trainable parameters by layer (layers with none not drawn)")
    for ax in (ax_lr, ax_tr):
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return save(fig, figures_dir, "layer_profiles")


def lr_sweep(table: pd.DataFrame, figures_dir: Path) -> str | None:
    """Dev score against base lr (log scale), one line per variant, one panel per model x
    sampling; the selected lr is ringed."""
    if table.empty:
        return None
    score = next(c for c in table.columns if c.startswith("dev "))
    panels = list(table.groupby(["model", "sampling"], sort=False))
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.2), squeeze=False)
    for ax, ((model, sampling), here) in zip(axes[0], panels, strict=True):
        for variant, rows in here.groupby("variant", sort=False):
            rows = rows.sort_values("lr")
            (line,) = ax.plot(rows.lr, rows[score], marker="o", markersize=4, label=variant)
            chosen = rows[rows.selected == "yes"]
            ax.scatter(chosen.lr, chosen[score], s=120, facecolors="none", edgecolors=line.get_color())
        ax.set_xscale("log")
        ax.set_xlabel("base learning rate")
        ax.set_ylabel(score)
        ax.set_title(f"{model}, {sampling}: dev split (ring: selected)")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return save(fig, figures_dir, "lr_sweep")


def lora_update_norms(runs: list[Run], figures_dir: Path) -> str | None:
    """||dW||_F of the LoRA update per block (train_summary.json, `lora_update_norms`), one line
    per LoRA variant (mean over its runs), so a rank profile's step size is seen beside its ranks."""
    norms: dict[tuple[str, str], list[dict]] = {}
    for run in runs:
        if not run.trained:
            continue
        summary = read_json(Path(run.dir) / "train_summary.json")
        if summary.get("lora_update_norms"):
            norms.setdefault((run.model, run.variant), []).append(summary["lora_update_norms"])
    if not norms:
        return None
    several_models = len({model for model, _ in norms}) > 1
    fig, ax = plt.subplots(figsize=(7, 4))
    for (model, variant), per_run in norms.items():
        blocks = sorted({int(b) for n in per_run for b in n})
        mean = [np.mean([n[str(b)] for n in per_run if str(b) in n]) for b in blocks]
        label = f"{model} {variant}" if several_models else variant
        ax.plot(blocks, mean, marker="o", markersize=4, label=f"{label} ({len(per_run)} run(s))")
    ax.set_xlabel("block (0 = the lowest transformer block)")
    ax.set_ylabel("||scaling * B A||_F of the block")
    ax.set_title("LoRA update norm by block")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save(fig, figures_dir, "lora_update_norms")


def loss_curves(runs: list[Run], figures_dir: Path) -> str | None:
    """InfoNCE loss per step (5-step moving average): colour = variant/sampling, line style = seed."""
    trained = [run for run in runs if run.trained]
    if not trained:
        return None
    groups = list(dict.fromkeys((run.model, run.variant, run.sampling) for run in trained))
    seeds = sorted({run.seed for run in trained})
    styles = ["-", "--", ":", "-."]
    colors = plt.get_cmap("tab10")
    several_models = len({g[0] for g in groups}) > 1
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for run in trained:
        curve = pd.DataFrame(read_tsv(Path(run.dir) / "train_log.tsv"))
        loss = curve.loss.astype(float).rolling(5, min_periods=1).mean()
        group = groups.index((run.model, run.variant, run.sampling))
        name = group_label(run.variant, run.sampling)
        ax.plot(
            curve.step.astype(int),
            loss,
            color=colors(group % 10),
            linestyle=styles[seeds.index(run.seed) % 4],
            label=f"{run.model} {name} s{run.seed}" if several_models else f"{name} s{run.seed}",
        )
    ax.set_xlabel("training step")
    ax.set_ylabel("InfoNCE loss (nats, 5-step moving average)")
    ax.set_title("training loss")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save(fig, figures_dir, "loss_curves")
