"""`kernelscale bench`: one verifier pool for the whole suite, the bench bookkeeping, a report."""

from __future__ import annotations

import asyncio
from pathlib import Path

from kernelscale.cli.common import console
from kernelscale.cli.progress import ProgressPrinter
from kernelscale.search.base import Budget
from kernelscale.search.solve import make_proposer, solve_problem_async
from kernelscale.store.db import Store
from kernelscale.verify.pool import VerifierPool


def run_bench(suite: str | None, settings: dict, out: Path | None, html: bool) -> int:
    from kernelscale.report.build import report_run
    from kernelscale.search.bench import bench

    out_console = console()
    if suite is not None and settings["resume"] is None:
        _print_skipped_files(out_console, suite)
    printer = ProgressPrinter(out_console)
    store = Store(settings["db_path"])
    loop = asyncio.new_event_loop()
    pool = VerifierPool(device=settings["device"], gpus=settings["gpus"])
    try:
        loop.run_until_complete(pool.start())

        def solve_one(problem, run_id: int, budget_s: float) -> None:
            proposer = make_proposer(settings["proposer"], problem, pool.device, settings["llm"])
            budget = Budget(budget_s, settings["max_attempts"], settings["target_speedup"])
            loop.run_until_complete(
                solve_problem_async(
                    problem,
                    store=store,
                    pool=pool,
                    run_id=run_id,
                    proposer=proposer,
                    strategy=settings["strategy"],
                    budget=budget,
                    progress=printer,
                    history=store.attempts(run_id, problem.content_hash()),
                )
            )

        def on_event(kind: str, info: dict) -> None:
            extra = f" ({info['error']})" if kind == "error" else ""
            out_console.print(
                f"[{info['index'] + 1}/{info['total']}] {info['problem']}: {kind}{extra}", highlight=False
            )

        result = bench(
            suite,
            solve_fn=solve_one,
            store=store,
            per_problem_budget_s=settings["budget_s"],
            resume=settings["resume"],
            tolerance=settings["tolerance"],
            on_event=on_event,
            options={k: settings[k] for k in ("proposer", "strategy", "device")}
            | {"device_key": pool.device_key},
        )
        folder = out or Path("runs") / f"bench-{result.run_id}"
        paths = report_run(store, result.run_id, folder, html=html)
        out_console.print(
            f"bench run {result.run_id}: {result.status}; report: {paths.get('html', paths['markdown'])}",
            highlight=False,
        )
        return result.run_id
    finally:
        loop.run_until_complete(pool.close())
        loop.close()
        store.close()


def _print_skipped_files(out_console, suite: str) -> None:
    """Name the files of the suite that are not problems (bench runs the rest)."""
    from kernelscale.problems import scan_suite

    for entry in scan_suite(suite).skipped:
        out_console.print(f"skipped {entry.path}: {entry.why}", highlight=False, markup=False, soft_wrap=True)
