"""Open an HTML file in headless Chromium (Debian `chromium`) and report what rendered.

A copy of the page gets a small script in <head> that records script errors and
failed resources and, once the page has loaded, writes what the DOM holds (tables,
their rows, images and whether each decoded to a non-empty bitmap) into a <pre>
element; `--dump-dom` prints the DOM after load. A second run takes a screenshot.
The checks read the DOM, never pixels."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

PROBE = """<script>
window.__xlirErrors = [];
window.addEventListener('error', function (event) {
  var t = event.target;
  if (t && t !== window && t.tagName) {
    window.__xlirErrors.push('resource failed: ' + t.tagName + ' ' + (t.currentSrc || t.src || t.href || ''));
  } else {
    window.__xlirErrors.push('script error: ' + event.message);
  }
}, true);
window.addEventListener('load', function () {
  var images = Array.prototype.slice.call(document.images);
  var tables = Array.prototype.slice.call(document.querySelectorAll('table'));
  var rendered = images.filter(function (i) { return i.complete && i.naturalWidth > 0 && i.naturalHeight > 0; });
  var result = {
    title: document.title,
    tables: tables.length,
    tables_with_rows: tables.filter(function (t) { return t.querySelectorAll('tbody tr').length > 0; }).length,
    table_rows: document.querySelectorAll('table tbody tr').length,
    images: images.length,
    images_rendered: rendered.length,
    broken_images: images.filter(function (i) { return rendered.indexOf(i) < 0; }).map(function (i) { return i.alt; }),
    headings: Array.prototype.slice.call(document.querySelectorAll('h1, h2, h3'))
      .map(function (h) { return h.textContent; }),
    errors: window.__xlirErrors,
    body_height: document.body.scrollHeight
  };
  var pre = document.createElement('pre');
  pre.id = 'xlir-render-check';
  pre.textContent = JSON.stringify(result);
  document.body.appendChild(pre);
});
</script>"""


def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _run(args: list[str], timeout: int) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout)


def render_check(html_path: Path, screenshot: Path, timeout: int = 180) -> dict:
    """What the page rendered (see PROBE), plus `screenshot_bytes`. Raises
    RuntimeError when Chromium is missing or fails. The report's folder is left
    alone: the probed copy lives in a scratch folder."""
    binary = chromium_binary()
    if binary is None:
        raise RuntimeError("Debian's `chromium` is not installed (scripts/setup.sh installs it)")
    html_path = Path(html_path).resolve()
    page = html_path.read_text(encoding="utf-8")
    if "<head>" not in page:
        raise RuntimeError(f"{html_path}: no <head> to put the probe in")
    with tempfile.TemporaryDirectory(prefix="xlir-chromium-") as scratch:
        probe = Path(scratch) / html_path.name
        probe.write_text(page.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
        common = [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={scratch}/profile",
            "--virtual-time-budget=15000",
        ]
        dumped = _run([*common, "--dump-dom", probe.as_uri()], timeout)
        if dumped.returncode != 0:
            raise RuntimeError(f"chromium --dump-dom failed ({dumped.returncode}): {dumped.stderr[-2000:]}")
        match = re.search(r'<pre id="xlir-render-check">(.*?)</pre>', dumped.stdout, re.S)
        if not match:
            raise RuntimeError(
                "the page never finished loading (no render-check element in the DOM):\n"
                + dumped.stdout[-1000:]
                + dumped.stderr[-2000:]
            )
        result = json.loads(html.unescape(match.group(1)))
        shot = _run(
            [*common, "--window-size=1280,2400", f"--screenshot={Path(screenshot).resolve()}", html_path.as_uri()],
            timeout,
        )
        if shot.returncode != 0:
            raise RuntimeError(f"chromium --screenshot failed ({shot.returncode}): {shot.stderr[-2000:]}")
    result["screenshot_bytes"] = Path(screenshot).stat().st_size if Path(screenshot).exists() else 0
    return result


def assert_renders(html_path: Path, screenshot: Path, min_tables: int = 1, min_images: int = 1) -> dict:
    """Assert the report renders its tables and images without errors; returns the check."""
    result = render_check(html_path, screenshot)
    assert result["errors"] == [], result["errors"]
    assert result["tables"] >= min_tables and result["tables_with_rows"] >= min_tables, result
    assert result["images"] >= min_images, result
    assert result["images_rendered"] == result["images"], result["broken_images"]
    assert result["screenshot_bytes"] > 0
    assert Path(screenshot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return result
