"""Render the prompts (jinja2 templates shipped in `templates/`) from a problem, a history, settings.

Every prompt is one self-contained user message: the reference, the task and rules, and for
feedback the previous code with the verifier's verdict. R1's authors advise against system
prompts, and a stateless prompt keeps its size bounded however long a chain grows, lets any
chain resume from the store, and never sends reasoning back (DeepSeek's API refuses that).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kernelscale.problems.problem import TOLERANCE_PRESETS, Problem
from kernelscale.propose.base import Attempt, primary_speedup
from kernelscale.propose.best import best_timed
from kernelscale.propose.llm.examples import choose_example
from kernelscale.verify.verdict import Verdict

LANGUAGES = ("triton", "cuda")
LOG_LINES, LOG_CHARS = 40, 3000  # a compile error's tail: enough for the message, not the whole log
HISTORY_LINES = 8


@dataclass(frozen=True)
class GPUFacts:
    """What the model should know about the target GPU; an H100 SXM unless told otherwise."""

    name: str = "NVIDIA H100 80GB HBM3 (SXM)"
    sm_count: int = 132
    mem_bandwidth_gbs: float = 3350.0
    bf16_tflops: float = 989.0  # dense tensor-core peak
    l2_mb: float = 50.0
    smem_kb_per_sm: int = 228


@dataclass
class PromptSettings:
    language: str = "triton"  # or "cuda" (torch.utils.cpp_extension.load_inline)
    gpu: GPUFacts = field(default_factory=GPUFacts)
    interpreter: bool = False  # verified by Triton's CPU interpreter at a small shape
    example: str | None = "auto"  # see examples.choose_example
    start_kernel: str | None = None  # a correct kernel to start from (the attention compiler's best)

    def __post_init__(self) -> None:
        if self.language not in LANGUAGES:
            raise ValueError(f"unknown kernel language {self.language!r} (known: {', '.join(LANGUAGES)})")


def first_prompt(problem: Problem, settings: PromptSettings) -> str:
    example = choose_example(problem, settings.example)
    return _render("first.md.j2", problem, settings, example=example, start_kernel=settings.start_kernel)


def feedback_prompt(problem: Problem, history: Sequence[Attempt], settings: PromptSettings) -> str:
    """Feedback on the last attempt; when it held no code, on the last one that did."""
    last = history[-1]
    base = last if last.candidate.code.strip() else _last_with_code(history)
    return _render(
        "feedback.md.j2",
        problem,
        settings,
        previous=_attempt_view(base) if base else None,
        no_code=(last.candidate.provenance.get("no_code") or last.verdict.reason)
        if base is not last
        else None,
        history=_history_lines(history),
        best=_best_line(history),
    )


def crossover_prompt(problem: Problem, parents: Sequence[Attempt], settings: PromptSettings) -> str:
    return _render("crossover.md.j2", problem, settings, parents=[_attempt_view(p) for p in parents])


def rules_for(problem: Problem) -> dict[str, str]:
    """The static screen's rules as the model should hear them, for this problem's policy."""
    return {k: v for k, v in _screen_rules().items() if not (problem.allow_torch and k == "torch_fallback")}


def _screen_rules() -> dict[str, str]:
    # Imported when a prompt is made: the screen is the verifier's, the prompt only quotes it.
    from kernelscale.verify.screen import RULES

    return RULES


@functools.cache
def _environment():
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("kernelscale.propose.llm", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def _render(template: str, problem: Problem, settings: PromptSettings, **context) -> str:
    text = (
        _environment()
        .get_template(template)
        .render(
            problem=problem,
            language=settings.language,
            gpu=settings.gpu,
            interpreter=settings.interpreter,
            rules=rules_for(problem),
            tolerance=_tolerance_text(problem),
            baselines=list(problem.baselines),
            variant=_variant(problem),
            sizes=problem.sizes_for("cpu" if settings.interpreter else "cuda"),
            **context,
        )
    )
    return text.strip() + "\n"


def _variant(problem: Problem) -> dict | None:
    """An attention problem's variant file (its generated reference module only imports it);
    named by file name alone: the user's directories are none of the endpoint's business."""
    if problem.kind != "attention" or not problem.path:
        return None
    path = Path(problem.path)
    if path.suffix != ".py" or not path.is_file():
        return None
    return {"name": path.name, "source": path.read_text()}


def _tolerance_text(problem: Problem) -> str:
    if problem.tolerance_override is not None:
        return f"atol = rtol = {problem.tolerance_override:g}"
    preset = TOLERANCE_PRESETS.get(problem.tolerance, TOLERANCE_PRESETS["strict"])
    if problem.dtype:
        return f"atol = rtol = {preset.get(problem.dtype, preset['float32']):g} ({problem.dtype})"
    return f"atol = rtol = {preset['float32']:g} for float32, {preset['bfloat16']:g} for float16/bfloat16"


def _last_with_code(history: Sequence[Attempt]) -> Attempt | None:
    return next((a for a in reversed(history) if a.candidate.code.strip()), None)


def _attempt_view(attempt: Attempt) -> dict:
    code = attempt.candidate.code
    return {"code": code.rstrip() + "\n", "verdict": verdict_view(attempt.verdict, code)}


def verdict_view(verdict: Verdict, code: str = "") -> dict:
    """The verdict, compacted to what helps the next attempt (templates/_verdict.md.j2 renders it)."""
    lines = code.splitlines()
    line_text = lines[verdict.line - 1].strip() if verdict.line and 0 < verdict.line <= len(lines) else None
    rule_text = _screen_rules().get(verdict.rule) if verdict.rule else None
    log = "\n".join(verdict.log_tail.strip().splitlines()[-LOG_LINES:])[-LOG_CHARS:]
    reason = verdict.reason.strip()[:LOG_CHARS]
    if log and reason in log:  # the log already ends with the message: say it once
        reason = ""
    timings = [
        {"name": name, "ms": ms, "speedup": verdict.speedup.get(name)}
        for name, ms in verdict.baselines.items()
    ]
    return {
        "status": verdict.status,
        "headline": verdict.headline(),
        "reason": reason,
        "rule": verdict.rule,
        "rule_text": rule_text,
        "line": verdict.line,
        "line_text": line_text,
        "log": log if log and log not in verdict.reason else "",
        "max_abs_error": verdict.max_abs_error,
        "max_rel_error": verdict.max_rel_error,
        "worst_index": verdict.worst_index,
        "failing_trial": verdict.failing_trial,
        "time_ms": verdict.time_ms,
        "timings": timings,
        "interpreted": verdict.interpreted,
        "suspect": verdict.suspect,
        "suspect_reason": verdict.suspect_reason,
    }


def _history_lines(history: Sequence[Attempt]) -> list[str]:
    start = max(0, len(history) - HISTORY_LINES)
    return [f"#{i + 1} {a.verdict.headline()[:160]}" for i, a in enumerate(history[start:], start)]


def _best_line(history: Sequence[Attempt]) -> str | None:
    # Interpreted times are not performance numbers: no "best" among them.
    best = best_timed(history)
    if best is None:
        return None
    speedup = primary_speedup(best.verdict)
    gain = f", {speedup:.2f}x over the strongest baseline" if speedup else ""
    return f"{best.verdict.time_ms:.4f} ms{gain}"
