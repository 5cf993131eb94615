# Stage 7: aggregate every run into one report.


def report_manifest():
    runs = []
    for path in evaluated_runs():
        _, _, model, variant, sampling, seed = path.split("/")
        runs.append({"model": model, "variant": variant, "sampling": sampling, "seed": int(seed[4:]), "dir": path})
    return {
        "config": config,
        "runs": runs,
        "benchmarks": BENCHMARKS,
        "mt_languages": MT_LANGS,
        "results_dir": RESULTS,
    }


def report_inputs(wildcards):
    inputs = []
    for path in evaluated_runs():
        inputs += [f"{path}/{b}/metrics.json" for b in BENCHMARKS]
    for cell in grid_cells():
        inputs += [f"{run_dir(*cell)}/{name}" for name in ("param_groups.tsv", "train_log.tsv", "train_summary.json")]
    inputs += [f"{RESULTS}/data/mt/{lang}.quality.json" for lang in MT_LANGS]
    inputs += [f"{RESULTS}/checks/leakage_{b}.json" for b in BENCHMARKS]
    inputs += [f"{RESULTS}/benchmarks/{b}/prepared/stats.json" for b in BENCHMARKS]
    inputs += [f"{RESULTS}/data/train/stats.json"]
    inputs += [f"{RESULTS}/models/{m}/base" for m in MODELS]
    return inputs


rule report:
    input:
        report_inputs,
    output:
        html=report(f"{RESULTS}/report/index.html", caption="../report/index.rst", category="Report"),
        markdown=f"{RESULTS}/report/index.md",
        metrics=report(f"{RESULTS}/report/metrics.csv", caption="../report/metrics.rst", category="Tables"),
        figures=report(
            directory(f"{RESULTS}/report/figures"),
            patterns=["{name}.png"],
            caption="../report/figures.rst",
            category="Figures",
        ),
    params:
        manifest=as_json(report_manifest()),
        out_dir=f"{RESULTS}/report",
    log:
        f"{RESULTS}/logs/report.log",
    benchmark:
        f"{RESULTS}/timing/report/report.tsv"
    shell:
        "xlir report --manifest {params.manifest} --out-dir {params.out_dir} --log {log} 2>> {log}"
