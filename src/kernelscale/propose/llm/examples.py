"""Choose the one shipped example (a hand-written ModelNew) that the first prompt shows the model.

An example shows the expected *form* (module layout, launch, host code the screen accepts); the
closer its computation is to the problem, the more of its technique carries over. Similarity is
judged between references: each example solves a built-in ops problem of the same stem, and the
identifiers of that reference (torch ops, dtypes, reductions) are compared with the problem's.
The example that solves the problem itself is never shown: that would hand over the answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from kernelscale.problems.loader import builtin_dir
from kernelscale.problems.problem import Problem

DEFAULT_STEM = "softmax"
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Words every module has; they say nothing about the computation.
_COMMON = frozenset(
    "import torch nn as self def return class Model ModelNew Module super __init__ forward x y get_inputs "
    "get_init_inputs from triton tl language jit randn shape dim None True False int float in for if".split()
)


@dataclass(frozen=True)
class Example:
    stem: str
    code: str


def shipped_examples() -> dict[str, str]:
    """stem -> source of every example module shipped in `kernelscale.examples`."""
    folder = resources.files("kernelscale.examples")
    return {
        Path(entry.name).stem: entry.read_text()
        for entry in folder.iterdir()
        if entry.name.endswith(".py") and not entry.name.startswith("_")
    }


def choose_example(problem: Problem, choice: str | None = "auto") -> Example | None:
    """`auto`: the most similar shipped example; `none`/None: no example; a stem or a file path: that one."""
    if choice in (None, "none"):
        return None
    examples = shipped_examples()
    if choice != "auto":
        if choice in examples:
            return Example(choice, examples[choice])
        path = Path(choice)
        if not path.is_file():
            raise ValueError(
                f"no example {choice!r} (shipped: {', '.join(sorted(examples))}; or a file path)"
            )
        return Example(path.stem, path.read_text())
    candidates = {stem: code for stem, code in examples.items() if stem != problem.file_stem}
    if not candidates:
        return None
    target = _words(problem.source)
    scored = sorted(
        (
            (_similarity(target, _words(_reference_of(stem) or code)), stem)
            for stem, code in candidates.items()
        ),
        key=lambda item: (-item[0], item[1] != DEFAULT_STEM, item[1]),
    )
    return Example(scored[0][1], candidates[scored[0][1]])


def _reference_of(stem: str) -> str | None:
    """The built-in ops reference an example solves, when there is one."""
    path = builtin_dir("ops") / f"{stem}.py"
    return path.read_text() if path.is_file() else None


def _words(source: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(source) if w not in _COMMON and len(w) > 1}


def _similarity(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0
