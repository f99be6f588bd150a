"""`kernelscale problems [SUITE]` and `kernelscale verify PROBLEM CANDIDATE.py`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from kernelscale.cli.common import DeviceOption, ToleranceOption, check_device, console, fail, read_text


def problems(
    suite: Annotated[
        str | None, typer.Argument(help="ops, attention, attention-decode, or a directory.")
    ] = None,
) -> None:
    """List problems (every built-in suite when no suite is given; attention includes its decode
    shapes), and the files skipped and why."""
    from rich.table import Column, Table

    from kernelscale.problems import ProblemError, scan_suite
    from kernelscale.problems.loader import BUILTIN_SUITES

    # Problem ids are copied into `solve`, and decode ids (attention/alibi:Sq=1,Skv=32768,...) are
    # long: fold them, never cut them.
    table = Table(Column("problem", overflow="fold"), "kind", "dtype", "baselines", "description")
    skipped = []
    try:
        names = [suite] if suite else list(BUILTIN_SUITES)
        if suite == "attention":
            names.append("attention-decode")
        for name in names:
            scan = scan_suite(name)
            skipped += scan.skipped
            for p in scan.problems:
                table.add_row(p.name, p.kind, p.dtype or "-", ", ".join(p.baselines), p.description)
    except ProblemError as exc:
        fail(str(exc))
    out = console()
    if table.row_count:
        out.print(table)
    for entry in skipped:
        out.print(f"skipped {entry.path}: {entry.why}", highlight=False, markup=False, soft_wrap=True)
    if not table.row_count:
        fail(f"{suite} holds no problem files")


def verify(
    problem: Annotated[str, typer.Argument(help="ops/<name>, attention/<name>, or a problem file.")],
    candidate: Annotated[Path, typer.Argument(help="A .py file defining ModelNew.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the verdict as one JSON object.")] = False,
    device: DeviceOption = None,
    trials: Annotated[int, typer.Option(min=5, help="Correctness trials before timing (at least 5).")] = 5,
    tolerance: ToleranceOption = None,
    timeout: Annotated[float, typer.Option(help="Seconds for the whole attempt (compile and run).")] = 300.0,
) -> None:
    """Verify one candidate: exit 0 when correct, 1 otherwise, 2 on bad input."""
    from kernelscale.problems import ProblemError, load_problem
    from kernelscale.verify.api import verify as run_verify

    check_device(device)
    if tolerance not in (None, "strict", "loose"):
        fail(f"--tolerance must be strict or loose, not {tolerance!r}")
    code = read_text(candidate, "candidate")
    try:
        loaded = load_problem(problem, tolerance=tolerance)
        verdict = run_verify(loaded, code, device=device, trials=trials, timeout_s=timeout)
    except (ProblemError, ValueError, RuntimeError) as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps(verdict.to_json(), default=str))
    else:
        print_verdict(verdict, candidate.name)
    raise typer.Exit(0 if verdict.ok else 1)


def print_verdict(verdict, candidate_name: str = "candidate.py") -> None:
    from kernelscale.cli.verdict_view import verdict_lines

    out = console()
    style = "green" if verdict.ok else "red"
    head, *frames = verdict_lines(verdict.status, verdict.reason, candidate_name, verdict.line)
    out.print(f"[{style}]{verdict.status}[/{style}]{head[len(verdict.status) :]}", highlight=False)
    for frame in frames:
        out.print(frame, highlight=False, markup=False)
    if verdict.max_abs_error is not None:
        out.print(f"max abs error {verdict.max_abs_error:.3g}, max rel error {verdict.max_rel_error:.3g}")
    if verdict.time_ms is not None:
        label = " (interpreted, not a performance number)" if verdict.interpreted else ""
        out.print(f"time {verdict.time_ms:.4f} ms{label}")
        for name, ms in verdict.baselines.items():
            ratio = verdict.speedup.get(name)
            out.print(f"  {name:<12} {ms:.4f} ms" + (f"  speedup {ratio:.2f}x" if ratio else ""))
    if verdict.suspect:
        out.print(f"[yellow]suspect[/yellow]: {verdict.suspect_reason}")
    if verdict.log_tail.strip() and not verdict.ok:
        out.print("candidate output (last lines):", highlight=False)
        out.print(verdict.log_tail.rstrip(), highlight=False, markup=False)
    device = verdict.device
    out.print(
        f"device: {device.get('name')} (torch {device.get('torch')}, triton {device.get('triton')})",
        highlight=False,
    )
