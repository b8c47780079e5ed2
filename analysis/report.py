"""One self-contained HTML page per replay (``OUT/report.html``): the findings, the per-run and matched tables
(sortable by clicking a column's header), every plot, the presets with their sources, and the provenance.

Everything is inline (the plots as PNG data URIs, the style and the sorting script in the page), so the file can be
mailed or attached to a paper's artefact as it is. The page checks on load that every image decoded and records the
answer in ``document.body.dataset.images`` ("ok" or the failures), which ``tests/test_report.py`` reads from
headless Chromium.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from pathlib import Path

import markdown
import pandas as pd

from dfs_sim._atomic import atomic_write_text
from dfs_sim.provenance import git_commit, versions

__all__ = ["REPORT", "report_html", "write_report"]

REPORT = "report.html"
# the columns a reader compares runs by, with their units in the header; the CSV files keep every column
PER_RUN_COLUMNS = {
    "run": "run",
    "family": "family",
    "preset": "preset",
    "accuracy": "accuracy (%)",
    "energy_pj_mean": "energy per input (µJ)",
    "latency_us_mean": "latency per input (µs)",
    "computation_pct": "proxy (%)",
    "quantizer": "quantizer",
}
MATCHED_COLUMNS = {
    "run": "DFS run",
    "preset": "preset",
    "baseline": "baseline",
    "axis": "axis",
    "paired_verdict": "verdict",
    "at_cost_run": "best baseline run at no more cost",
    "at_cost_p_holm": "McNemar p (Holm)",
    "at_accuracy_run": "cheapest baseline run as accurate",
    "at_accuracy_cost_difference": "cost difference (DFS − it)",
}
SCALE = {"accuracy": 100.0, "energy_pj_mean": 1e-6}

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 12px; }
th, td { border: 1px solid #ddd; padding: 2px 6px; text-align: right; }
th { background: #f3f3f3; cursor: pointer; position: sticky; top: 0; }
td:first-child, th:first-child { text-align: left; }
.scroll { max-height: 32em; overflow: auto; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
code { background: #f6f6f6; padding: 0 3px; }
"""

_SCRIPT = """
document.querySelectorAll("table.sortable th").forEach(function (header, column) {
  header.addEventListener("click", function () {
    var body = header.closest("table").tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var up = header.dataset.order !== "up";
    header.dataset.order = up ? "up" : "down";
    rows.sort(function (a, b) {
      var x = a.cells[column].textContent, y = b.cells[column].textContent;
      var p = parseFloat(x), q = parseFloat(y);
      var order = (!isNaN(p) && !isNaN(q)) ? p - q : x.localeCompare(y);
      return up ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  });
});
window.addEventListener("load", function () {
  var failed = Array.prototype.filter.call(document.images, function (image) {
    return !(image.complete && image.naturalWidth > 0);
  }).map(function (image) { return image.alt; });
  document.body.dataset.images = failed.length ? "failed: " + failed.join(", ") : "ok";
});
"""


def _table(frame: pd.DataFrame, columns: dict[str, str]) -> str:
    present = {key: label for key, label in columns.items() if key in frame.columns}
    shown = frame[list(present)].copy()
    for key, factor in SCALE.items():
        if key in shown.columns:
            shown[key] = shown[key] * factor
    shown = shown.rename(columns=present)
    table = shown.to_html(index=False, classes="sortable", border=0, float_format=lambda v: f"{v:.4g}", na_rep="")
    return f'<div class="scroll">{table}</div>'


def _images(folder: Path | None) -> str:
    parts = []
    for path in sorted(folder.glob("*.png")) if folder is not None else []:
        encoded = base64.b64encode(path.read_bytes()).decode("ascii")
        title = html.escape(path.stem.replace("_", " "))
        parts.append(f'<h3>{title}</h3><img alt="{title}" src="data:image/png;base64,{encoded}">')
    return "\n".join(parts) or "<p>No plots: this replay ran with <code>--no-plots</code>.</p>"


def report_html(out: Path, presets: Sequence, command: str = "", plots: Path | None = None) -> str:
    """The page for the replay results in ``out`` (its CSV files and findings, and the plots in ``plots``)."""
    per_run = pd.read_csv(out / "per_run.csv")
    matched = pd.read_csv(out / "matched.csv")
    findings = (out / "findings.md").read_text() if (out / "findings.md").is_file() else ""
    preset_rows = "".join(
        f"<tr><td>{html.escape(preset.name)}</td><td>{html.escape(preset.kind)}</td>"
        f"<td>{html.escape(str(preset.source))}</td><td><code>{preset.content_hash()[:16]}</code></td></tr>"
        for preset in presets
    )
    # no time of day: a rerun over the same inputs writes the same page (the manifest records when)
    provenance = {"command": command, "git_commit": git_commit(), "versions": versions()}
    sections = [
        "<h1>dfs-sim replay report</h1>",
        (
            f"<p>{per_run['run'].nunique()} runs on {per_run['preset'].nunique()} presets. The CSV files beside "
            "this page hold every column; units are in the headers.</p>"
        ),
        "<h2>Findings</h2>",
        markdown.markdown(findings, extensions=["tables"]),
        "<h2>Runs</h2>",
        _table(per_run, PER_RUN_COLUMNS),
        "<h2>DFS against its baselines (paired tests)</h2>",
        _table(matched, MATCHED_COLUMNS),
        "<h2>Plots</h2>",
        _images(plots),
        "<h2>Presets</h2>",
        f"<table><tr><th>preset</th><th>kind</th><th>source</th><th>hash</th></tr>{preset_rows}</table>",
        "<h2>Provenance</h2>",
        f"<pre>{html.escape(json.dumps(provenance, indent=2, sort_keys=True))}</pre>",
    ]
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>dfs-sim replay report</title>'
        f"<style>{_STYLE}</style></head>\n<body>\n{body}\n<script>{_SCRIPT}</script>\n</body></html>\n"
    )


def write_report(out: Path, presets: Sequence, command: str = "", plots: Path | None = None) -> Path:
    """Write ``out/report.html`` atomically, with the plots in ``plots`` (None: none); returns its path."""
    path = out / REPORT
    atomic_write_text(path, report_html(out, presets, command, plots))
    return path
