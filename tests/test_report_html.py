"""The HTML report opens in headless Chromium and renders its tables and images
without errors (the checks read the DOM; a screenshot is taken, not compared)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.chromium import assert_renders, render_check
from tests.report_fixture import write_study
from xlir.report.aggregate import aggregate_metrics
from xlir.report.compare import compare_runs
from xlir.report.report import build_report


@pytest.fixture(scope="module")
def report_html(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("html_study")
    manifest = write_study(root, seeds=[1, 2])
    cwd = os.getcwd()
    os.chdir(root)
    try:
        out = root / "results" / "report"
        aggregate_metrics(manifest, out / "metrics.csv")
        compare_runs(manifest, out / "comparisons.csv")
        build_report(manifest, out, out / "metrics.csv", out / "comparisons.csv")
    finally:
        os.chdir(cwd)
    return root / "results" / "report" / "index.html"


def test_report_renders_in_headless_chromium(report_html, tmp_path):
    result = assert_renders(report_html, tmp_path / "report.png", min_tables=10, min_images=7)
    assert result["title"].startswith("xlir:")
    assert {"Verdict", "Claims", "Provenance", "Statistical method"} <= set(result["headings"])
    assert result["table_rows"] > 50 and result["body_height"] > 2000


def test_the_check_catches_broken_images_and_script_errors(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><head><title>t</title></head><body><table><tbody><tr><td>1</td></tr>"
        "</tbody></table><img alt='missing' src='missing.png'><script>undefinedFunction();</script>"
        "</body></html>",
        encoding="utf-8",
    )
    result = render_check(page, tmp_path / "broken.png")
    assert result["images"] == 1 and result["images_rendered"] == 0 and result["broken_images"] == ["missing"]
    assert any("missing.png" in error for error in result["errors"])
    assert any("undefinedFunction" in error for error in result["errors"])
    with pytest.raises(AssertionError):
        assert_renders(page, tmp_path / "broken2.png")
