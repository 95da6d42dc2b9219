"""The report of a run: a markdown table, JSON with the exact settings, and a bar chart of R@1."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

from retrieval.evaluation.presets import Expected, compare
from retrieval.evaluation.results import RATE_METRICS, MethodScores
from retrieval.evaluation.runner import EvalReport

REPORT_MD = "report.md"
REPORT_JSON = "report.json"
CHART_PNG = "recall_at_1.png"
# Shown as their own sections, not in the settings list.
OWN_SECTIONS = ("depths", "depth_notes", "published", "published_source", "preset_settings")


def write_report(report: EvalReport, out: Path, chart: bool = True) -> list[Path]:
    """report.md and report.json, and with `chart` the R@1 bar chart (matplotlib: half a second to load)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / REPORT_MD, out / REPORT_JSON]
    paths[0].write_text(markdown(report), encoding="utf-8")
    paths[1].write_text(json.dumps(report_dict(report), indent=2, default=str), encoding="utf-8")
    if chart:
        paths.append(out / CHART_PNG)
        write_chart(report.scores, paths[2])
    return paths


def report_dict(report: EvalReport) -> dict:
    def clean(value):
        return None if isinstance(value, float) and math.isnan(value) else value

    rows = []
    for s in report.scores:
        row = dataclasses.asdict(s)
        row["metrics"] = {k: clean(v) for k, v in s.metrics.items()}
        rows.append(row)
    return {"settings": report.settings, "results": rows, "notes": report.notes,
            "submissions": [str(p) for p in report.submissions]}


def _format(name: str, value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{100 * value:.1f}" if name.startswith(RATE_METRICS) else f"{value:.1f}"


def markdown(report: EvalReport) -> str:
    settings = report.settings
    title = f"{settings['dataset']} ({settings['split']})" if "dataset" in settings else "precomputed similarities"
    lines = [f"# gridrank eval: {title}", ""]
    lines += [f"- {key}: `{value}`" for key, value in settings.items() if key not in OWN_SECTIONS]
    lines += _published_section(settings, report.scores)
    lines += _depth_section(settings)
    lines += ["", *(f"**Note:** {note}" for note in report.notes)] if report.notes else []
    if report.submissions:
        lines += ["", "Test-server files (in the format each server takes): " +
                  ", ".join(f"`{p.parent.name}/{p.name}`" for p in report.submissions)]
    lines.append("")
    lines.append("Recall, mAP and Recall_subset in %; MdR/MnR are ranks (lower is better). Ties: "
                 "*pessimistic* ranks a ground truth that ties with other items after them (raw similarities); "
                 "*fused order* is the fusion's own ranking, its ties broken by the best input rank, then the "
                 "retrievers' order; *model order* is the reranker's order of the candidates it saw.")
    for direction in dict.fromkeys(s.direction for s in report.scores):
        rows = [s for s in report.scores if s.direction == direction]
        names = list(rows[0].metrics)
        costs = any(s.cost for s in rows)
        header = ["method", "ties", "queries", *names] + (["s/query", "prompt tok", "visual tok", "output tok",
                                                           "fallbacks"] if costs else [])
        lines += ["", f"## {direction}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for s in rows:
            cells = [s.method, s.ties, str(s.queries),
                     *(_format(n, s.metrics[n]) + ("†" if _beyond(n, s.depth) else "") for n in names)]
            if costs:
                c = s.cost
                cells += ([f"{c.mean_latency_s:.2f}", f"{c.mean_prompt_tokens:.0f}", f"{c.mean_visual_tokens:.0f}",
                           f"{c.mean_completion_tokens:.0f}", str(c.fallbacks)] if c else ["-"] * 5)
            lines.append("| " + " | ".join(cells) + " |")
        depths = [f"{s.method} reordered the top {s.depth}" for s in rows if s.depth is not None]
        if depths:
            lines += ["", f"† The cutoff lies beyond the reranked depth ({'; '.join(depths)}): below it the order "
                          "is the first stage's, so the value is first stage only below that rank."]
        lines += _against_pointwise(rows)
    return "\n".join(lines) + "\n"


def _against_pointwise(rows: list[MethodScores]) -> list[str]:
    """Each listwise reranker's R@1 against the pointwise baseline that reranked the same first stage."""
    lines = []
    for baseline in (s for s in rows if s.method.endswith("+pointwise")):
        stage = baseline.method.removesuffix("pointwise")
        rivals = [s for s in rows if s.method.startswith(stage) and s is not baseline and s.depth is not None]
        if rivals and not math.isnan(baseline.metrics["R@1"]):
            deltas = "; ".join(f"{s.method} {100 * (s.metrics['R@1'] - baseline.metrics['R@1']):+.1f}" for s in rivals)
            lines += ["", f"R@1 against the pointwise baseline ({baseline.method}, the bar every listwise method must "
                          f"clear), in points: {deltas}."]
    return lines


def _published_section(settings: dict, scores: list[MethodScores]) -> list[str]:
    """A preset's published numbers beside the measured ones, and every setting that ran other than published."""
    if "published" not in settings:
        return []
    measured = {(s.direction, s.method): s.metrics for s in scores}
    rows = compare(tuple(Expected(**e) for e in settings["published"]), measured)
    lines = ["", f"## Published beside measured (preset {settings['preset']})", "",
             "| direction | row | metric | published | measured here |", "|---|---|---|---|---|"]
    lines += [f"| {c.expected.direction} | {c.expected.method} | {c.expected.metric} | {c.expected.value:g} | "
              f"{'-' if c.measured is None else f'{c.measured:.1f}'} |" for c in rows]
    lines += ["", f"Published: {settings['published_source']}."]
    differ = [f"{key} {settings[key]!r} (published: {value!r})"
              for key, value in (settings.get("preset_settings") or {}).items()
              if key in settings and settings[key] != value]
    if differ:
        lines.append(f"Not the published run's settings, so not comparable: {'; '.join(differ)}.")
    return lines


def _depth_section(settings: dict) -> list[str]:
    """Each reranked method's depth and window, where they come from, and what differs from its paper."""
    depths = settings.get("depths") or {}
    if not depths:
        return []
    lines = ["", "## Reranking depth", "", "| method | reranked | per call | step | from |", "|---|---|---|---|---|"]
    lines += [f"| {name} | top {d['depth']} | {d['window']} | {d['step'] if d['depth'] > d['window'] else '-'} | "
              f"{d['source']} |" for name, d in depths.items()]
    notes = settings.get("depth_notes") or []
    if notes:
        lines += ["", *(f"- Not as in the paper: {note}" for note in notes)]
    return lines


def _beyond(metric: str, depth: int | None) -> bool:
    """R@K or mAP@K of a row the model reranked to `depth`, with K past it."""
    name, _, cutoff = metric.partition("@")
    return depth is not None and name in ("R", "mAP") and int(cutoff) > depth


def write_chart(scores: list[MethodScores], path: Path) -> None:
    # A Figure without pyplot (matplotlib's way for files on a server): no GUI backend, no global state,
    # and half a second less to import.
    from matplotlib.figure import Figure

    labels = [f"{s.direction}\n{s.method}" for s in scores]
    values = [100 * s.metrics["R@1"] if not math.isnan(s.metrics["R@1"]) else 0.0 for s in scores]
    figure = Figure(figsize=(max(4.0, 1.1 * len(scores) + 1), 3.6), dpi=100)
    axes = figure.subplots()
    bars = axes.bar(range(len(scores)), values, color="#3b6ea5")
    axes.bar_label(bars, fmt="%.1f", fontsize=8)
    axes.set_xticks(range(len(scores)), labels, fontsize=8)
    axes.set_ylabel("R@1 (%)")
    axes.set_ylim(0, 105)
    axes.set_title("Recall@1 per method")
    figure.tight_layout()
    figure.savefig(path)
