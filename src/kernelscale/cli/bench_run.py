"""`kernelscale bench`: the suite through one Session (search.bench_run), then the report."""

from __future__ import annotations

from pathlib import Path

from kernelscale.cli.common import console
from kernelscale.cli.progress import ProgressPrinter


def run_bench(suite: str | None, settings, resume: int | None, out: Path | None, html: bool) -> int:
    from kernelscale.report.build import report_run
    from kernelscale.search.bench_run import bench_suite
    from kernelscale.store.db import Store

    out_console = console()
    if suite is not None and resume is None:
        _print_skipped_files(out_console, suite)

    def on_event(kind: str, info: dict) -> None:
        extra = f" ({info['error']})" if kind == "error" else ""
        out_console.print(
            f"[{info['index'] + 1}/{info['total']}] {info['problem']}: {kind}{extra}", highlight=False
        )

    result = bench_suite(
        suite, settings, resume=resume, progress=ProgressPrinter(out_console), on_event=on_event
    )
    store = Store(settings.db_path)
    try:
        folder = out or Path("runs") / f"bench-{result.run_id}"
        paths = report_run(store, result.run_id, folder, html=html)
    finally:
        store.close()
    out_console.print(
        f"bench run {result.run_id}: {result.status}; report: {paths.get('html', paths['markdown'])}",
        highlight=False,
    )
    return result.run_id


def _print_skipped_files(out_console, suite: str) -> None:
    """Name the files of the suite that are not problems (bench runs the rest)."""
    from kernelscale.problems import scan_suite

    for entry in scan_suite(suite).skipped:
        out_console.print(f"skipped {entry.path}: {entry.why}", highlight=False, markup=False, soft_wrap=True)
