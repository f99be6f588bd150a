"""`kernelscale solve PROBLEM` and `kernelscale bench SUITE_OR_DIR`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from kernelscale.cli.common import (
    DEFAULT_DB,
    DbOption,
    DeviceOption,
    ToleranceOption,
    check_device,
    console,
    fail,
    parse_budget,
)

BudgetOption = Annotated[
    str,
    typer.Option(
        "--budget", help="Time budget: 900 (seconds), 90s, 15m, 1h, 1h30m, 2.5m; none or 0 for no limit."
    ),
]
ProposerOption = Annotated[str, typer.Option("--proposer", help="compiler (attention, no LLM) or llm.")]
StrategyOption = Annotated[
    str | None, typer.Option("--strategy", help="refine, parallel, evolve (llm) or compiler.")
]
ModelOption = Annotated[str | None, typer.Option("--model", help="LLM model name (overrides the preset).")]
BaseUrlOption = Annotated[str | None, typer.Option("--base-url", help="OpenAI-compatible endpoint URL.")]
KeyEnvOption = Annotated[
    str | None, typer.Option("--api-key-env", help="Environment variable holding the API key.")
]
PresetOption = Annotated[
    str | None,
    typer.Option(
        "--preset", help="nim, deepseek, openai, vllm or ollama (default: from --base-url, else nim)."
    ),
]
LanguageOption = Annotated[
    str, typer.Option("--language", help="What the LLM writes: triton, or cuda (load_inline).")
]
GpusOption = Annotated[str | None, typer.Option("--gpus", help="GPUs for the verifier pool: 0,1 or all.")]
AttemptsOption = Annotated[int | None, typer.Option("--attempts", help="Stop after this many attempts.")]
TargetOption = Annotated[float | None, typer.Option("--target", help="Stop once this speedup is reached.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")]


def _llm_options(proposer: str, preset: str | None, model, base_url, api_key_env):
    if proposer != "llm":
        return None
    from kernelscale.propose.llm.options import LLMOptions, preset_for

    try:
        return LLMOptions(
            preset=preset or preset_for(base_url), model=model, base_url=base_url, api_key_env=api_key_env
        )
    except ValueError as exc:
        fail(str(exc))


def solve(
    problem: Annotated[str | None, typer.Argument(help="attention/<name>, ops/<name>, or a file.")] = None,
    budget: BudgetOption = "15m",
    proposer: ProposerOption = "compiler",
    strategy: StrategyOption = None,
    device: DeviceOption = None,
    model: ModelOption = None,
    base_url: BaseUrlOption = None,
    api_key_env: KeyEnvOption = None,
    preset: PresetOption = None,
    gpus: GpusOption = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Folder for best_kernel.py and summary.json (default: runs/run-<id>); "
            "the report comes from `kernelscale report RUN_ID`.",
        ),
    ] = None,
    db: DbOption = DEFAULT_DB,
    resume: Annotated[int | None, typer.Option("--resume", help="Continue run RUN_ID.")] = None,
    attempts: AttemptsOption = None,
    target: TargetOption = None,
    tolerance: ToleranceOption = None,
    language: LanguageOption = "triton",
    as_json: JsonOption = False,
) -> None:
    """Search for the fastest verified kernel for one problem within the budget."""
    from kernelscale.cli.progress import ProgressPrinter, print_summary
    from kernelscale.search.solve import solve as run_solve

    check_device(device)
    if problem is None and resume is None:
        fail("give a PROBLEM, or --resume RUN_ID")
    printer = ProgressPrinter(console(), quiet=as_json)
    budget_s = parse_budget(budget)
    try:
        result = run_solve(
            problem,
            proposer=proposer,
            strategy=strategy,
            budget_s=budget_s,
            max_attempts=attempts,
            target_speedup=target,
            device=device,
            gpus=gpus,
            out_dir=out,
            db_path=db,
            resume=resume,
            llm=_llm_options(proposer, preset, model, base_url, api_key_env),
            progress=printer,
            tolerance=tolerance,
            language=language,
        )
    except KeyboardInterrupt:
        fail(f"interrupted; every finished attempt is stored: continue with --resume {printer.run_id}", 130)
    except Exception as exc:  # noqa: BLE001 - every failure here is one line for the user
        _fail_known(exc)
    print_summary(console(), result, as_json)
    if result.stopped.startswith("proposer error"):
        fail(
            f"{result.stopped.removeprefix('proposer error: ')} (finished attempts are stored in run "
            f"{result.run_id}; continue with --resume {result.run_id})",
            1,
        )


def bench(
    suite: Annotated[
        str | None, typer.Argument(help="ops, attention, or a directory of problem files.")
    ] = None,
    budget: BudgetOption = "15m",
    proposer: ProposerOption = "compiler",
    strategy: StrategyOption = None,
    device: DeviceOption = None,
    model: ModelOption = None,
    base_url: BaseUrlOption = None,
    api_key_env: KeyEnvOption = None,
    preset: PresetOption = None,
    gpus: GpusOption = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for the report (default: runs/bench-<id>).")
    ] = None,
    db: DbOption = DEFAULT_DB,
    resume: Annotated[int | None, typer.Option("--resume", help="Continue run RUN_ID.")] = None,
    attempts: AttemptsOption = None,
    target: TargetOption = None,
    tolerance: ToleranceOption = None,
    html: Annotated[bool, typer.Option("--html/--no-html", help="Also write report.html.")] = True,
) -> None:
    """Solve every problem of a suite (budget per problem), then report."""
    from kernelscale.cli.bench_run import run_bench

    check_device(device)
    if suite is None and resume is None:
        fail("give a SUITE_OR_DIR, or --resume RUN_ID")
    budget_s = parse_budget(budget)
    settings = dict(
        proposer=proposer,
        strategy=strategy,
        budget_s=budget_s,
        max_attempts=attempts,
        target_speedup=target,
        device=device,
        gpus=gpus,
        db_path=db,
        resume=resume,
        llm=_llm_options(proposer, preset, model, base_url, api_key_env),
        tolerance=tolerance,
    )
    try:
        run_bench(suite, settings, out, html)
    except KeyboardInterrupt:
        fail("interrupted; finished problems and attempts are stored: continue with --resume RUN_ID", 130)
    except Exception as exc:  # noqa: BLE001
        _fail_known(exc)


def _fail_known(exc: Exception) -> None:
    """Known failures become one line; anything else is a bug and keeps its traceback."""
    if isinstance(exc, (typer.Exit, typer.Abort)):  # click's Exit is a RuntimeError: let it through
        raise exc
    from kernelscale.problems import ProblemError
    from kernelscale.propose.base import ProposerError
    from kernelscale.search.bench import BenchError
    from kernelscale.search.solve import SolveError
    from kernelscale.store.db import StoreError

    known = (
        ProblemError,
        ProposerError,
        SolveError,
        StoreError,
        BenchError,
        ValueError,
        RuntimeError,
        asyncio.TimeoutError,
        OSError,
    )
    if isinstance(exc, known):
        # A store error names bad input (an unknown run id, a foreign database): exit 2 like `show`.
        failed_at_runtime = isinstance(exc, ProposerError | RuntimeError) and not isinstance(exc, StoreError)
        fail(str(exc) or type(exc).__name__, 1 if failed_at_runtime else 2)
    raise exc
