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
    check_gpus,
    console,
    fail,
    parse_budget,
)

BudgetOption = Annotated[
    str | None,
    typer.Option(
        "--budget",
        help="Time budget per problem: 900 (seconds), 2.5, 90s, 15m, 1h, 1h30m, 2.5m; `none` for no time "
        "limit (default 15m; a resumed run keeps its own).",
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
MaxCallsOption = Annotated[
    int | None, typer.Option("--max-calls", help="LLM: at most this many requests per problem.")
]
MaxTokensOption = Annotated[
    int | None,
    typer.Option(
        "--max-tokens-total",
        help="LLM: stop once this many tokens (prompt + completion) were used per problem.",
    ),
]
FreshBaselinesOption = Annotated[
    bool,
    typer.Option(
        "--fresh-baselines",
        help="Time the baselines (and the trusted runner's step costs) again instead of reusing an earlier run's.",
    ),
]
ExecutorOption = Annotated[
    str, typer.Option("--executor", help="local (this machine's GPUs) or ray (a Ray cluster).")
]
AddressOption = Annotated[
    str | None,
    typer.Option(
        "--address", help="Ray cluster: auto or ray://host:port (default: start a local Ray instance)."
    ),
]
BackendsOption = Annotated[
    str | None,
    typer.Option(
        "--backends",
        help="The compiler's kernel backends, comma-separated: triton, fa4, gluon "
        "(default: every one this machine can run).",
    ),
]
WorkersOption = Annotated[
    int | None,
    typer.Option(
        "--workers",
        help="Verifier workers: CPU stand-ins locally; with ray, how many actors (default: every GPU).",
    ),
]
StrategyOptOption = Annotated[
    list[str] | None,
    typer.Option(
        "--strategy-option",
        help="KEY=VALUE for the strategy, e.g. chains=8 (parallel), population=16 (evolve).",
    ),
]


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
    budget: BudgetOption = None,
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
            help="Folder for best_kernel.py and summary.json (default: "
            "runs/run-<id>); the report comes from `kernelscale report RUN_ID`.",
        ),
    ] = None,
    db: DbOption = DEFAULT_DB,
    resume: Annotated[int | None, typer.Option("--resume", help="Continue run RUN_ID.")] = None,
    attempts: AttemptsOption = None,
    target: TargetOption = None,
    tolerance: ToleranceOption = None,
    language: LanguageOption = "triton",
    as_json: JsonOption = False,
    max_calls: MaxCallsOption = None,
    max_tokens_total: MaxTokensOption = None,
    strategy_option: StrategyOptOption = None,
    fresh_baselines: FreshBaselinesOption = False,
    executor: ExecutorOption = "local",
    address: AddressOption = None,
    workers: WorkersOption = None,
    backends: BackendsOption = None,
) -> None:
    """Search for the fastest verified kernel for one problem within the budget."""
    from kernelscale.cli.progress import ProgressPrinter, print_summary
    from kernelscale.search.solve import solve as run_solve

    if problem is None and resume is None:
        fail("give a PROBLEM, or --resume RUN_ID")
    settings = _settings(locals())
    printer = ProgressPrinter(console(), quiet=as_json)
    try:
        result = run_solve(problem, settings, resume=resume, progress=printer)
    except KeyboardInterrupt:  # before the first attempt: the run was not kept
        fail("interrupted before the first verdict; nothing was recorded", 130)
    except Exception as exc:  # noqa: BLE001 - every failure here is one line for the user
        _fail_known(exc)
    print_summary(console(), result, as_json)
    if result.stopped == "interrupted":
        fail(f"interrupted; every finished attempt is stored: continue with --resume {result.run_id}", 130)
    if result.verifier_failed:
        fail(
            f"{result.detail} (run {result.run_id} stopped; fix the problem or the machine, then solve again)",
            1,
        )
    if result.stopped == "error":
        fail(
            f"{result.detail} (finished attempts are stored in run {result.run_id}; "
            f"continue with --resume {result.run_id})",
            1,
        )


def _settings(flags: dict):
    """The flags `solve` and `bench` share (their parameters, by name) as RunSettings; a bad
    value is one line and exit 2."""
    from kernelscale.search.settings import RunSettings, SettingsError

    if flags["executor"] == "local":  # a Ray driver may have no GPU of its own
        check_device(flags["device"])
        check_gpus(flags["gpus"], flags["device"])
    budget, proposer = flags["budget"], flags["proposer"]
    llm = _llm_options(proposer, flags["preset"], flags["model"], flags["base_url"], flags["api_key_env"])
    try:
        return RunSettings(
            proposer=proposer,
            strategy=flags["strategy"],
            strategy_options=_strategy_options(flags["strategy_option"]),
            budget_s=parse_budget(budget if budget is not None else "15m"),
            max_attempts=flags["attempts"],
            target_speedup=flags["target"],
            device=flags["device"],
            gpus=flags["gpus"],
            out_dir=flags["out"],
            db_path=flags["db"],
            llm=llm,
            language=flags["language"],
            tolerance=flags["tolerance"],
            max_calls=flags["max_calls"],
            max_tokens_total=flags["max_tokens_total"],
            executor=flags["executor"],
            address=flags["address"],
            workers=flags["workers"],
            backends=tuple(b.strip() for b in flags["backends"].split(",")) if flags["backends"] else None,
            fresh_baselines=flags["fresh_baselines"],
            keep_run_budget=flags["resume"] is not None and budget is None,  # a resumed run keeps its own
        ).check()
    except SettingsError as exc:
        fail(str(exc))


def _strategy_options(pairs: list[str] | None) -> dict:
    options = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            fail(f"--strategy-option takes KEY=VALUE, got {pair!r}")
        try:
            options[key.strip()] = int(value) if value.strip().lstrip("-").isdigit() else float(value)
        except ValueError:
            options[key.strip()] = value
    return options


def bench(
    suite: Annotated[
        str | None, typer.Argument(help="ops, attention, attention-decode, or a directory of problem files.")
    ] = None,
    budget: BudgetOption = None,
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
    language: LanguageOption = "triton",
    max_calls: MaxCallsOption = None,
    max_tokens_total: MaxTokensOption = None,
    strategy_option: StrategyOptOption = None,
    fresh_baselines: FreshBaselinesOption = False,
    executor: ExecutorOption = "local",
    address: AddressOption = None,
    workers: WorkersOption = None,
    backends: BackendsOption = None,
) -> None:
    """Solve every problem of a suite (budget per problem), then report."""
    from kernelscale.cli.bench_run import run_bench

    if suite is None and resume is None:
        fail("give a SUITE_OR_DIR, or --resume RUN_ID")
    settings = _settings(locals())
    try:
        run_bench(suite, settings, resume, out, html)
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
    from kernelscale.search.evaluator import VerifierFailure
    from kernelscale.search.session import SolveError
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
    if isinstance(exc, (ProposerError, VerifierFailure)):
        fail(f"{exc} (nothing was verified, so no run was recorded)", 1)
    if isinstance(exc, known):
        # A store error names bad input (an unknown run id, a foreign database): exit 2 like `show`.
        failed_at_runtime = isinstance(exc, ProposerError | RuntimeError) and not isinstance(exc, StoreError)
        fail(str(exc) or type(exc).__name__, 1 if failed_at_runtime else 2)
    raise exc
