# Stage 7: the report, in three rules: aggregate (every metric in one tidy table),
# compare (paired significance tests from per-query scores) and report (verdict,
# figures, provenance; HTML + Markdown).
import os


def _default_config():
    """The embedded default (config/config.yaml with the schema's defaults): the report lists
    the config values that differ from it."""
    import yaml

    path = os.path.join(workflow.basedir, "config", "config.yaml")
    with open(path, encoding="utf-8") as handle:
        default = yaml.safe_load(handle)
    validate(default, schema=os.path.join(workflow.basedir, "config", "schema.yaml"), set_default=True)
    return default


def report_manifest():
    runs = []
    for path in evaluated_runs():
        _, _, model, variant, sampling, seed = path.split("/")
        runs.append({"model": model, "variant": variant, "sampling": sampling, "seed": int(seed[4:]), "dir": path})
    return {
        "config": config,
        "default_config": _default_config(),
        "runs": runs,
        "benchmarks": BENCHMARKS,
        "mt_languages": MT_LANGS,
        "results_dir": RESULTS,
    }


REPORT_MANIFEST = as_json(report_manifest())
REPORT_DIR = f"{RESULTS}/report"


def run_outputs(name):
    return [f"{path}/{b}/{name}" for path in evaluated_runs() for b in BENCHMARKS]


def report_inputs(wildcards):
    inputs = [f"{REPORT_DIR}/metrics.csv", f"{REPORT_DIR}/comparisons.csv"]
    for cell in grid_cells():
        inputs += [f"{run_dir(*cell)}/{name}" for name in ("param_groups.tsv", "train_log.tsv", "train_summary.json")]
    inputs += [f"{RESULTS}/data/mt/{lang}.quality.json" for lang in MT_LANGS]
    inputs += [f"{RESULTS}/checks/leakage_{b}.json" for b in BENCHMARKS]
    if config["leakage"]["drop_overlapping_pairs"]:
        inputs += [f"{RESULTS}/checks/dropped_training_pairs.json"]
    inputs += [f"{RESULTS}/benchmarks/{b}/prepared/stats.json" for b in BENCHMARKS]
    inputs += [f"{RESULTS}/data/train/stats.json"]
    inputs += [f"{RESULTS}/models/{m}/base" for m in MODELS]
    return inputs


rule aggregate:
    input:
        run_outputs("metrics.json"),
    output:
        report(f"{REPORT_DIR}/metrics.csv", caption="../report/metrics.rst", category="Tables",
               labels={"table": "measurements (metrics.csv)"}),
    params:
        manifest=REPORT_MANIFEST,
    log:
        f"{RESULTS}/logs/report/aggregate.log",
    benchmark:
        f"{RESULTS}/timing/aggregate/aggregate.tsv"
    shell:
        "xlir aggregate --manifest {params.manifest} --out {output} --log {log} 2>> {log}"


rule compare:
    input:
        run_outputs("per_query.tsv"),
    output:
        report(f"{REPORT_DIR}/comparisons.csv", caption="../report/comparisons.rst", category="Tables",
               labels={"table": "paired comparisons (comparisons.csv)"}),
    params:
        manifest=REPORT_MANIFEST,
    log:
        f"{RESULTS}/logs/report/compare.log",
    benchmark:
        f"{RESULTS}/timing/compare/compare.tsv"
    resources:
        mem_mb=4000,
    shell:
        "xlir compare --manifest {params.manifest} --out {output} --log {log} 2>> {log}"


rule report:
    input:
        report_inputs,
    output:
        html=report(f"{REPORT_DIR}/index.html", caption="../report/index.rst", category="Report",
                    labels={"document": "report (self-contained HTML)"}),
        markdown=f"{REPORT_DIR}/index.md",
        verdict=f"{REPORT_DIR}/verdict.md",
        claims=report(f"{REPORT_DIR}/claims.csv", caption="../report/claims.rst", category="Verdict",
                      labels={"table": "claims (claims.csv)"}),
        figures=report(
            directory(f"{REPORT_DIR}/figures"),
            patterns=["{name}.png"],
            caption="../report/figures.rst",
            category="Figures",
            labels={"figure": "{name}"},
        ),
    params:
        manifest=REPORT_MANIFEST,
        metrics=f"{REPORT_DIR}/metrics.csv",
        comparisons=f"{REPORT_DIR}/comparisons.csv",
        out_dir=REPORT_DIR,
    log:
        f"{RESULTS}/logs/report.log",
    benchmark:
        f"{RESULTS}/timing/report/report.tsv"
    shell:
        "xlir report --manifest {params.manifest} --metrics {params.metrics} --comparisons {params.comparisons} "
        "--out-dir {params.out_dir} --log {log} 2>> {log}"
