"""The study's report, in three rules that each call one subcommand:

- `xlir aggregate` (`aggregate.py`): every evaluation output in one tidy table, metrics.csv;
- `xlir compare` (`compare.py`, statistics in `xlir.stats`): paired bootstrap CIs and
  randomisation tests of every variant against its uniform counterpart, comparisons.csv;
- `xlir report` (`build.py`): verdict (`verdict.py`), figures (`figures.py`), provenance
  (`provenance.py`), written as index.html and its Markdown twin (`document.py`).

`grid.py` holds the study's vocabulary (runs, metrics, samplings, variants) and
`references.py` the published figures shown beside ours."""
from __future__ import annotations


def build_report(*args, **kwargs):
    """See `xlir.report.build.build_report` (imported lazily: it loads matplotlib)."""
    from xlir.report.build import build_report as build

    return build(*args, **kwargs)
