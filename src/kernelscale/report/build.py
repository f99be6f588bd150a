"""Write a run's report into a folder: Markdown, JSON, PNG figures, the best kernels, and HTML.

Everything is derived from the store, so a report can be rebuilt at any time (during a run, after
a resume, on another machine with a copy of the database).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path

from kernelscale.report import plots, tables
from kernelscale.report.html import FigureRef, KernelRef, render_html
from kernelscale.report.summary import RunSummary, summarize_run
from kernelscale.store.db import AttemptRow, Store


def report_run(store: Store, run_id: int, out_dir: str | Path, html: bool = True) -> dict[str, Path]:
    """Write the report of `run_id` into `out_dir`; returns what was written, by role.

    Keys: "markdown", "json", "html" (when asked), "figure:<key>" per figure and
    "kernel:<problem>" per solved problem. Raises StoreError for an unknown run.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize_run(store, run_id)
    rows = store.attempt_rows(run_id)
    top = [tables.overview_table(summary), tables.speed_table(summary), tables.problems_table(summary)]
    attempts = tables.attempts_table(rows)
    figures = make_figures(store, summary, out / "figures")
    kernels = best_kernels(summary, rows)
    paths: dict[str, Path] = {f"figure:{f.key}": f.path for f in figures}
    paths.update(write_kernels(kernels, out / "kernels"))
    paths["markdown"] = out / "report.md"
    paths["markdown"].write_text(markdown(summary, top, attempts, figures, out))
    paths["json"] = out / "summary.json"
    paths["json"].write_text(json.dumps(summary_json(summary), indent=2, default=str))
    if html:
        paths["html"] = out / "report.html"
        paths["html"].write_text(render_html(summary, top, attempts, figures, kernels, db=str(store.path)))
    return paths


def make_figures(store: Store, summary: RunSummary, folder: Path) -> list[FigureRef]:
    """The figures that have something honest to show; interpreted runs get no speed figures."""
    found: list[FigureRef] = []
    flex = plots.speedup_bars(summary, folder / "speedup_flex.png")
    if flex is not None:
        found.append(FigureRef("speedup_flex", "Speedup over FlexAttention per attention variant", flex))
    elif summary.baselines and len(summary.problems) > 1:
        bars = plots.speedup_bars(summary, folder / "speedup_eager.png", baseline=summary.baselines[0])
        if bars is not None:
            found.append(FigureRef("speedup_eager", f"Speedup over {summary.baselines[0]} per problem", bars))
    solved = plots.solved_over_time(summary, folder / "solved_over_time.png")
    if solved is not None:
        found.append(
            FigureRef("solved_over_time", "Share of problems solved against time per problem", solved)
        )
    for prob in summary.problems:
        name = file_name(prob.name)
        attempts = store.attempts(summary.run.id, prob.problem_hash)
        path = plots.best_over_time(
            attempts, folder / f"best_{name}.png", title=f"{prob.name}: best speedup over time"
        )
        if path is not None:
            found.append(FigureRef(f"best:{prob.name}", f"{prob.name}: best speedup so far", path))
    return found


def best_kernels(summary: RunSummary, rows: list[AttemptRow]) -> list[KernelRef]:
    by_id = {row.id: row for row in rows}
    found = []
    for prob in summary.problems:
        if prob.best_code is None:
            continue
        row = by_id.get(prob.best_attempt_id)
        headline = row.verdict.headline() if row else ""
        found.append(KernelRef(prob.name, prob.best_attempt_id, headline, prob.best_code))
    return found


def write_kernels(kernels: list[KernelRef], folder: Path) -> dict[str, Path]:
    written = {}
    for kernel in kernels:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{file_name(kernel.problem)}.py"
        header = f"# best kernel for {kernel.problem}, attempt #{kernel.attempt_id}: {kernel.headline}\n"
        path.write_text(header + kernel.code)
        written[f"kernel:{kernel.problem}"] = path
    return written


def markdown(
    summary: RunSummary, top: list[tables.Table], attempts: tables.Table, figures: list[FigureRef], out: Path
) -> str:
    run = summary.run
    parts = [f"# kernelscale report: run {run.id} ({run.command} {run.target})\n"]
    parts += [tables.to_markdown(t) for t in top]
    for fig in figures:
        parts.append(f"![{fig.caption}]({fig.path.relative_to(out).as_posix()})\n")
    parts.append(tables.to_markdown(attempts))
    return "\n".join(parts)


def summary_json(summary: RunSummary) -> dict:
    """The summary for machines (benchmark docs, dashboards); kernels' code lives in kernels/."""
    data = asdict(summary)
    for prob in data["problems"]:
        prob.pop("best_code", None)
    data["n_problems"], data["n_correct"] = summary.n_problems, summary.n_correct
    data["correctness_rate"] = summary.correctness_rate
    return data


def file_name(problem: str) -> str:
    """A file-safe stem for a problem name: "attention/full" -> "attention__full"."""
    stem = problem.replace("/", "__").replace("\\", "__")
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._") or "problem"
