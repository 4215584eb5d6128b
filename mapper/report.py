"""Writing a whole-model run to disk: layers.csv/json, summary.json, mappings, stats, plot.

Every file is written atomically (temp file + rename), so a reader never sees half a file;
files an earlier run left in the folder are removed (mapper.outdir). ``summary.json`` carries
a ``bitloop`` block: version, code digest, command line and digests of the run's inputs.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from pathlib import Path
from typing import Any

from mapper.outdir import OutputDir
from mapper.run import ModelReport
from workloads.provenance import run_metadata


def safe_name(text: str) -> str:
    """A file-name-safe version of a layer or problem label."""
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text).strip("_")


OWNED = ("mappings", "stats")   # sub-folders of a search output that hold only this run's files


def write_report(report: ModelReport, out_dir: str | Path | OutputDir) -> dict[str, Path]:
    """Write every output of a run into ``out_dir`` (a path, or an :class:`OutputDir` opened
    before the run); returns the main paths."""
    out = out_dir if isinstance(out_dir, OutputDir) else OutputDir(out_dir, OWNED)
    summary = report.summary()
    meta = run_metadata(report.inputs)
    paths = {
        "summary": out.write("summary.json", json.dumps({**summary, "search": report.search_info, "bitloop": meta},
                                                        indent=2, allow_nan=False) + "\n"),
        "layers_json": out.write("layers.json", json.dumps(report.rows, indent=2, allow_nan=False) + "\n"),
        "layers_csv": out.write("layers.csv", rows_to_csv(report.rows)),
    }
    for label, text in report.mappings.items():
        out.write(f"mappings/{safe_name(label)}.yaml", text)
        out.write(f"mappings/{safe_name(label)}.problem.yaml", report.problems[label])
    for layer, text in report.stats_text.items():
        out.write(f"stats/{safe_name(layer)}.stats.txt", text + "\n")
    paths["plot"] = out.write("energy_breakdown.svg", energy_breakdown_svg(summary))
    out.finish()
    return paths


def rows_to_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return buf.getvalue()


def energy_breakdown_svg(summary: dict[str, Any]) -> bytes:
    """A horizontal bar chart of energy (uJ) per level/component, as SVG bytes.

    Drawn directly (no plotting library: a search run stays free of matplotlib's import
    and rendering time); bar lengths are proportional to energy, each bar labelled.
    """
    parts = summary["energy_breakdown_pJ"]
    label_w, bar_w, row_h, top = 110, 360, 22, 34
    peak = max(parts.values(), default=0.0) or 1.0
    height = top + row_h * len(parts) + 30
    title = f"{summary['spec']} on {summary['model']} ({summary['phase']}): {summary['energy_pJ'] * 1e-6:.4g} uJ"
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 90}" height="{height}" '
           'font-family="sans-serif" font-size="12">',
           f'<text x="8" y="20" font-size="13">{html.escape(title, quote=False)}</text>']
    for i, (name, pj) in enumerate(parts.items()):
        y = top + i * row_h
        out.append(f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end">{html.escape(name, quote=False)}</text>')
        out.append(f'<rect x="{label_w}" y="{y + 3}" width="{bar_w * pj / peak:.2f}" height="{row_h - 6}" fill="#4C72B0">'
                   f'<title>{html.escape(name, quote=False)}: {pj:.6g} pJ</title></rect>')
        out.append(f'<text x="{label_w + bar_w * pj / peak + 4:.2f}" y="{y + 14}">{pj * 1e-6:.4g}</text>')
    out.append(f'<text x="{label_w + bar_w / 2}" y="{height - 8}" text-anchor="middle">energy (uJ)</text>')
    out.append("</svg>")
    return ("\n".join(out) + "\n").encode()


def format_table(report: ModelReport, max_rows: int = 40) -> str:
    """Per-layer table and totals for the terminal."""
    s = report.summary()
    lines = [f"{report.spec} on {report.model} ({report.phase}), clock {report.clock_MHz:g} MHz",
             f"{'layer':<40} {'problem':<34} {'count':>5} {'cycles':>12} {'energy uJ':>11} {'util':>6}"]
    for r in report.rows[:max_rows]:
        lines.append(f"{r['layer'][:40]:<40} {r['problem'][:34]:<34} {r['count']:>5} {r['cycles']:>12} "
                     f"{r['energy_pJ'] * 1e-6:>11.4g} {100 * r['utilization']:>5.1f}%")
    if len(report.rows) > max_rows:
        lines.append(f"... {len(report.rows) - max_rows} more layers (see layers.csv)")
    lines.append("")
    lines.append(f"layers {s['layers']} (unique {s['unique_layers']}), MACs {s['macs']:.4g}")
    lines.append(f"cycles {s['cycles']:.4g}  seconds {s['seconds']:.4g}  utilization {100 * s['utilization']:.1f}%")
    lines.append(f"energy {s['energy_pJ'] * 1e-6:.4g} uJ  ({s['energy_per_mac_pJ']:.4g} pJ/MAC)  EDP {s['edp_J_s']:.4g} J*s  area {s['area_um2'] * 1e-6:.4g} mm^2")
    lines.append("energy by part: " + ", ".join(f"{k} {v * 1e-6:.4g} uJ" for k, v in s["energy_breakdown_pJ"].items()))
    lb = s["lower_bound"]
    gap = lambda g: "" if g is None else f" (found +{100 * g:.1f}%)"  # noqa: E731
    lines.append(f"lower bound (no mapping does better): energy {lb['energy_pJ'] * 1e-6:.4g} uJ{gap(lb['energy_gap'])}, "
                 f"cycles {lb['cycles']:.4g}{gap(lb['cycles_gap'])}; worst layer {lb['objective']} gap "
                 f"{100 * lb['max_layer_objective_gap']:.1f}%")
    note = s["provenance"].get("note")
    if note:
        lines.append(f"statistics: {note}")
    return "\n".join(lines)
