"""`kernelscale runs`, `show RUN_ID` and `report RUN_ID [--html]`: plain functions for the typer app.

Parameters carry typer annotations, so `app.command()(runs)` registers them as they are, and
their defaults are plain values, so they can be called from Python too. Usage errors (no
database, unknown run) print one line on stderr and exit with status 2, like every command.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import Annotated

import typer

DEFAULT_DB = Path("kernelscale.db")
DbOption = Annotated[
    Path, typer.Option("--db", envvar="KERNELSCALE_DB", help="SQLite store of runs and attempts.")
]
RunArg = Annotated[int, typer.Argument(help="Run id, as listed by `kernelscale runs`.", show_default=False)]


def runs(
    db: DbOption = DEFAULT_DB, limit: Annotated[int, typer.Option(help="How many recent runs to list.")] = 20
) -> None:
    """List recent runs with how many of their problems were solved."""
    from kernelscale.report import tables

    store = _open_store(db)
    try:
        records = store.list_runs(limit)
        counts = {run.id: _solved_counts(store, run.id) for run in records}
    finally:
        store.close()
    console = _console()
    if not records:
        console.print(f"no runs in {db}")
        return
    console.print(tables.to_rich(tables.runs_table(records, counts)))


def show(
    run_id: RunArg,
    db: DbOption = DEFAULT_DB,
    attempts: Annotated[int, typer.Option(help="Show the last N attempts.")] = 50,
) -> None:
    """One run: its summary, every problem, and its latest attempts with their verdicts."""
    from kernelscale.report import tables

    store = _open_store(db)
    try:
        summary = _summary(store, run_id)
        rows = store.attempt_rows(run_id)
    finally:
        store.close()
    console = _console()
    for table in (
        tables.overview_table(summary),
        tables.speed_table(summary),
        tables.problems_table(summary),
        tables.attempts_table(rows, limit=attempts),
    ):
        console.print(tables.to_rich(table))
    for prob in summary.problems:  # the same attempt solve wrote as best_kernel.py (propose.best)
        best = (
            f"attempt #{prob.best_attempt_id}" if prob.best_attempt_id else "none (no trusted correct kernel)"
        )
        console.print(f"best for {prob.name}: {best}", highlight=False)


def report(
    run_id: RunArg,
    db: DbOption = DEFAULT_DB,
    out: Annotated[
        Path | None, typer.Option(help="Folder for the report (default: reports/run-<id>).")
    ] = None,
    html: Annotated[
        bool, typer.Option("--html/--no-html", help="Also write a self-contained report.html.")
    ] = False,
) -> None:
    """Write a run's report (Markdown, JSON, PNG figures, best kernels; HTML with --html)."""
    from kernelscale.report import tables
    from kernelscale.report.build import report_run
    from kernelscale.store.db import StoreError

    store = _open_store(db)
    folder = out or Path("reports") / f"run-{run_id}"
    try:
        summary = _summary(store, run_id)
        paths = report_run(store, run_id, folder, html=html)
    except StoreError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot write the report to {folder}: {exc.strerror or exc}")
    finally:
        store.close()
    console = _console()
    for table in (
        tables.overview_table(summary),
        tables.speed_table(summary),
        tables.problems_table(summary),
    ):
        console.print(tables.to_rich(table))
    main = paths.get("html", paths["markdown"])
    console.print(f"report: {main}  ({len(paths)} files in {folder})", highlight=False, soft_wrap=True)


# -- helpers ----------------------------------------------------------------------------------
def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(2)


def _open_store(db: Path):
    """Open an existing store; never create one as a side effect of reading."""
    from kernelscale.store.db import Store, StoreError

    db = Path(db)
    if not db.is_file():
        _fail(f"no database at {db} (pass --db, or run `kernelscale solve` first)")
    try:
        return Store(db)
    except (StoreError, sqlite3.DatabaseError) as exc:
        _fail(f"cannot open {db}: {exc}")


def _summary(store, run_id: int):
    from kernelscale.report.summary import summarize_run
    from kernelscale.store.db import StoreError

    try:
        return summarize_run(store, run_id)
    except StoreError as exc:
        _fail(str(exc))


def _solved_counts(store, run_id: int) -> tuple[int, int]:
    """(problems, problems with a correct non-suspect attempt), from the light attempt rows."""
    problems = len(store.run_problems(run_id))
    solved = set()
    for row in store.attempt_rows(run_id):
        if row.verdict.ok and not row.verdict.suspect:
            solved.add(row.problem_hash)
    return problems, len(solved)


def _console():
    from rich.console import Console

    console = Console()
    # Piped output would otherwise be cut at 80 columns, folding every table.
    return console if console.is_terminal else Console(width=160)
