"""The progress lines of a search, as a user reads them."""

from __future__ import annotations

import io

from rich.console import Console

from kernelscale.cli.progress import ProgressPrinter
from kernelscale.propose.base import Attempt, Candidate
from kernelscale.verify.verdict import Verdict


def _attempt(n: int, config: dict, interpreted: bool = True) -> Attempt:
    verdict = Verdict("correct", time_ms=5.0, interpreted=interpreted)
    return Attempt(
        Candidate("# k", "compiler", provenance={"config": config}), verdict, attempt_id=n, elapsed_s=n
    )


def _lines(attempts: list[Attempt]) -> list[str]:
    out = io.StringIO()
    printer = ProgressPrinter(Console(file=out, width=300))
    printer(
        "start",
        {
            "run_id": 1,
            "problem": "p",
            "device": "cpu",
            "workers": 1,
            "proposer": "compiler",
            "budget_s": 60.0,
        },
    )
    for n, attempt in enumerate(attempts, 1):
        printer("attempt", {"attempt": attempt, "best": attempts[0], "n": n, "budget_s": 60.0})
    return out.getvalue().splitlines()


def test_interpreted_runs_say_so_once_and_lines_show_what_changed():
    first = {"block_m": 64, "block_n": 64, "num_warps": 4}
    lines = _lines([_attempt(1, first), _attempt(2, first | {"num_warps": 8}), _attempt(3, dict(first))])
    assert sum("not performance numbers" in line for line in lines) == 1
    assert not any("(interpreted, not a performance number)" in line for line in lines)
    attempts = [line for line in lines if line.startswith("#")]
    assert attempts[0].endswith("block_m=64 block_n=64 num_warps=4")
    assert attempts[1].endswith("num_warps=8") and "block_m" not in attempts[1]
    assert attempts[2].endswith("(first configuration)")
    assert all("best correct #1" in line for line in attempts)


def test_gpu_lines_keep_their_times():
    lines = _lines([_attempt(1, {"block_m": 64}, interpreted=False)])
    assert not any("not performance numbers" in line for line in lines)
    assert any("correct: 5.0000 ms" in line for line in lines)
