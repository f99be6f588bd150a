"""No false rejections: every shipped example verifies `correct` through the real verifier."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from kernelscale.problems import load_problem

EXAMPLES = sorted(
    p for p in Path(str(resources.files("kernelscale.examples"))).glob("*.py") if not p.name.startswith("_")
)


def test_there_are_enough_examples():
    assert len(EXAMPLES) >= 8


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_example_verifies_correct(cpu_pool, example: Path):
    verdict = cpu_pool.verify(load_problem(f"ops/{example.stem}"), example.read_text(), timeout_s=180.0)
    assert verdict.status == "correct", verdict.headline() + "\n" + verdict.log_tail
    assert verdict.interpreted and not verdict.speedup  # no speed claims from the interpreter
