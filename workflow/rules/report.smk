# Stage 7: the report, in three rules: aggregate (every metric in one tidy table),
# compare (paired significance tests from per-query scores) and report (verdict,
# figures, provenance; HTML + Markdown).
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
    conda:
        "../../envs/xlir.yaml"
    shell:
        "exec xlir aggregate --manifest {params.manifest} --out {output} --log {log} 2>> {log}"


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
    conda:
        "../../envs/xlir.yaml"
    shell:
        "exec xlir compare --manifest {params.manifest} --out {output} --log {log} 2>> {log}"


rule report:
    input:
        metrics=f"{REPORT_DIR}/metrics.csv",
        comparisons=f"{REPORT_DIR}/comparisons.csv",
        others=report_inputs,
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
    log:
        f"{RESULTS}/logs/report.log",
    benchmark:
        f"{RESULTS}/timing/report/report.tsv"
    conda:
        "../../envs/xlir.yaml"
    shell:
        "exec xlir report --manifest {params.manifest} --metrics {input.metrics} --comparisons {input.comparisons} "
        "--out-html {output.html} --out-markdown {output.markdown} --out-verdict {output.verdict} "
        "--out-claims {output.claims} --out-figures {output.figures} --log {log} 2>> {log}"
