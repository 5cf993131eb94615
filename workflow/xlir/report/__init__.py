"""Stage 7, the report (rule file `workflow/rules/report.smk`), in three rules that each call one
subcommand (`commands.py`):

- `xlir aggregate` (`aggregate.py`): every evaluation output in one tidy table, metrics.csv;
- `xlir compare` (`compare.py`, statistics in `stats.py`): paired bootstrap CIs and
  randomisation tests of every variant against its uniform counterpart, comparisons.csv;
- `xlir report` (`report.py`): verdict (`verdict.py`), figures (`figures.py`), provenance
  (`provenance.py`), written as index.html and its Markdown twin (`document.py`).

`grid.py` holds the study's vocabulary (runs, metrics, samplings, variants) and
`references.py` the published figures shown beside ours."""
