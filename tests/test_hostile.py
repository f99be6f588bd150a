"""Every planted cheat comes back not `correct`, with the rule or reason named.

Each cheat runs twice where it makes sense: with the static screen (the normal path) and with
the screen off, which shows the sandbox and the runtime checks stand on their own.
"""

from __future__ import annotations

import os
import types

import pytest

from hostile_candidates import CHEATS, NO_MODEL_NEW, Cheat

SCREEN_OFF = [c for c in CHEATS if c.unscreened is not None]


def _check(verdict, expected: tuple[str, str | None]) -> None:
    status, rule = expected
    assert verdict.status == status, verdict.headline() + "\n" + verdict.log_tail
    if rule is not None:
        assert verdict.rule == rule, verdict.headline()
    if status != "correct":
        assert verdict.reason, "a verdict that is not correct must say why"


@pytest.mark.parametrize("cheat", CHEATS, ids=lambda c: c.name)
def test_cheat_is_caught(cpu_pool, scaled_exp, cheat: Cheat):
    timeout = 12.0 if cheat.name == "loops_forever" else 60.0
    _check(cpu_pool.verify(scaled_exp, cheat.source(), timeout_s=timeout), cheat.screened)


@pytest.mark.parametrize("cheat", SCREEN_OFF, ids=lambda c: c.name)
def test_cheat_is_caught_without_the_screen(cpu_pool, scaled_exp, cheat: Cheat, monkeypatch):
    # The secret is in the test's environment; the candidate must not see it.
    monkeypatch.setenv("KS_TEST_API_KEY", "sk-this-must-not-leak")
    _check(cpu_pool.verify(scaled_exp, cheat.source(), screen=False), cheat.unscreened)


def test_honest_kernel_is_correct(cpu_pool, scaled_exp):
    code = os.path.dirname(__file__) + "/problems/good_scaled_exp.py"
    verdict = cpu_pool.verify(scaled_exp, open(code).read())
    assert verdict.status == "correct", verdict.headline() + verdict.log_tail
    assert verdict.interpreted and verdict.speedup == {}
    assert verdict.max_abs_error is not None and verdict.max_rel_error is not None


def test_module_without_model_new_is_rejected(cpu_pool, scaled_exp):
    code = NO_MODEL_NEW.format(imports="", helpers="", forward="        return scaled_exp(x, y)")
    _check(cpu_pool.verify(scaled_exp, code), ("rejected", "no_model_new"))


def test_timer_mismatch_rule_on_forged_samples():
    from kernelscale.verify.timing import Samples, timer_consistency

    assert timer_consistency(Samples([0.5, 0.6], [0.6, 0.7])) is None
    # An event interval lies inside the host interval around it; a longer one is forged.
    assert "exceeds the host wall time" in timer_consistency(Samples([0.5, 9.0], [0.6, 1.0]))


def test_cuda_extension_counts_as_a_kernel():
    from kernelscale.verify.screen import screen

    code = """
import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

ext = load_inline("scaled_exp", cpp_sources="", cuda_sources="", functions=["scaled_exp"])


class ModelNew(nn.Module):
    def forward(self, x, y):
        return ext.scaled_exp(x, y)
"""
    assert [v.rule for v in screen(code)] == []


def test_a_class_made_by_type_is_screened():
    """type(name, bases, dict) makes a tensor subclass with no class statement to see."""
    from kernelscale.verify.screen import screen

    cheat = next(c for c in CHEATS if c.name == "tensor_subclass_by_type")
    assert "tensor_subclass" in [v.rule for v in screen(cheat.source())]
    assert not [v for v in screen("t = type(3)\n") if v.rule == "tensor_subclass"]


@pytest.mark.parametrize(
    "line",
    [
        "lib = np.ctypeslib.load_library('libc', '/lib')",
        "from numpy import ctypeslib",
        "data = np.load('x.npy', allow_pickle=True)",
        "state = torch.load('x.pt', weights_only=False)",
    ],
)
def test_doors_to_native_code_and_pickles_are_screened(line):
    """Each runs code whose names never appear in the source (a shared object, a pickle)."""
    from kernelscale.verify.screen import screen

    found = screen("import numpy as np\nimport torch\n" + line + "\n")
    assert {"forbidden_call", "forbidden_import"} & {v.rule for v in found}, found
    assert not [v for v in screen("import torch\nt = torch.load('x.pt', weights_only=True)\n") if v.line == 2]


def test_a_replacement_at_the_freed_originals_address_is_still_a_patch(monkeypatch):
    """The guards compared id()s: once the replaced function was freed (nothing else held it),
    its replacement could land at the same address, i.e. the same id, and go unnoticed (CI saw
    patches_event_elapsed_time pass that way). Here the original is held by nothing but the
    module attribute, as a class's method is held by the class alone."""
    from kernelscale.verify import guards, timing

    exec("def _probe(a, b):\n    return 1.0", timing.__dict__)  # noqa: S102 - a fresh function object
    monkeypatch.setattr(guards, "_watched", lambda: {"timing._probe": timing._probe})
    watch = guards.Guards()
    code = timing._probe.__code__
    for _ in range(2):  # the first replacement frees the original; the second takes its place
        timing._probe = types.FunctionType(code, {})
    try:
        assert [rule for rule, _ in watch.violations()] == ["monkey_patch"]
    finally:
        del timing._probe
