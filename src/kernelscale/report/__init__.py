"""Reports: per-problem and per-suite summaries, tables, plots and a static HTML page."""

from __future__ import annotations

__all__ = ["report_run", "summarize_run"]


def report_run(store, run_id, out_dir, html=True):
    """Write a run's report into `out_dir` (see report.build.report_run); imported lazily because
    matplotlib and jinja2 are only needed when a report is actually written."""
    from kernelscale.report.build import report_run as _report_run

    return _report_run(store, run_id, out_dir, html=html)


def summarize_run(store, run_id):
    from kernelscale.report.summary import summarize_run as _summarize_run

    return _summarize_run(store, run_id)
