"""The exported modules' launch plans: a prepared plan launches through the compiled kernel's
own launcher where the Triton release is one whose private API was read and no launch hook is
set, and through kernel[grid] otherwise. The interpreter has no compiled kernel, so the direct
path is driven here with stand-ins for Triton's compiled kernel, driver and knobs."""

from __future__ import annotations

import types

import pytest
import torch

from kernelscale.problems.attention.reference import attention_reference
from kernelscale.problems.module import import_source
from kernelscale.propose.compiler.generate import generate
from kernelscale.propose.compiler.space import Config
from test_compiler_common import SMALL, inputs, max_err  # sets TRITON_INTERPRET first

DECODE = Config(decode=True, block_m=16, block_n=32, num_splits=3)


def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


def _model(tag, config, Sq, Skv):
    module = import_source(generate(None, causal, config), f"test_launch_{tag}")
    shape = {"B": 1, "Hq": 2, "Hkv": 1, "Sq": Sq, "Skv": Skv, "D": 32}
    return module, module.ModelNew(None, causal, shape)


@pytest.mark.parametrize("decode", [True, False])
def test_a_plan_launches_through_kernel_grid_under_the_interpreter_and_when_switched_off(decode):
    Sq, Skv = (4, 96) if decode else (64, 64)
    module, model = _model(f"switch_{decode}", DECODE if decode else SMALL, Sq, Skv)
    q, k, v = inputs(Hq=2, Hkv=1, Sq=Sq, Skv=Skv)
    expected = model(q, k, v)
    (plan,) = model.launches.values()
    assert plan.main.direct is None  # the interpreter hands back no compiled kernel
    tried = []
    plan.main.direct = lambda args: tried.append(len(args)) or True  # would skip the kernel
    module.DIRECT["on"] = False
    out = model(q, k, v)
    module.DIRECT["on"] = True
    assert tried == [] and torch.equal(out, expected)
    assert max_err(out, attention_reference(q, k, v, None, causal)) < 1e-4


def test_a_direct_launch_that_raises_is_not_hidden():
    # No try/except in a module the verifier takes: a broken launch fails the call, as any would.
    _, model = _model("raises", DECODE, 4, 96)
    q, k, v = inputs(Hq=2, Hkv=1, Sq=4, Skv=96)
    model(q, k, v)
    (plan,) = model.launches.values()

    def broken(args):
        raise IndexError("tuple index out of range")

    plan.main.direct = broken
    with pytest.raises(IndexError):
        model(q, k, v)


def test_a_direct_launch_that_declines_goes_through_kernel_grid_this_time():
    module, model = _model("declines", DECODE, 4, 96)
    q, k, v = inputs(Hq=2, Hkv=1, Sq=4, Skv=96)
    expected = model(q, k, v)
    (plan,) = model.launches.values()
    plan.main.direct = lambda args: False  # launch hooks set, say
    assert torch.equal(model(q, k, v), expected)
    assert module.DIRECT["on"]


class _Hooks:
    def __init__(self):
        self.launch_enter_hook = types.SimpleNamespace(calls=[])
        self.launch_exit_hook = types.SimpleNamespace(calls=[])


def _fake_triton(monkeypatch, module, version="3.6.0"):
    """Stand-ins for the compiled kernel, the active driver and the knobs, as in Triton 3.6."""
    import triton
    import triton.runtime

    launched = []
    compiled = types.SimpleNamespace(
        run=lambda *a: launched.append(a),
        function="fn",
        packed_metadata="meta",
        src=types.SimpleNamespace(fn=types.SimpleNamespace(arg_names=["a", "b", "c"])),
    )
    device = {"current": 0}
    active = types.SimpleNamespace(
        get_current_device=lambda: device["current"], get_current_stream=lambda d: f"stream{d}"
    )
    monkeypatch.setattr(triton.runtime, "driver", types.SimpleNamespace(active=active))
    hooks = _Hooks()
    monkeypatch.setattr(triton, "knobs", types.SimpleNamespace(runtime=hooks), raising=False)
    monkeypatch.setattr(module.triton, "__version__", version)
    return compiled, launched, device, hooks


def test_the_direct_launcher_passes_every_argument_after_the_grid_stream_and_kernel(monkeypatch):
    module, _ = _model("direct", DECODE, 4, 96)
    compiled, launched, device, hooks = _fake_triton(monkeypatch, module)
    launch = module._direct_runner(compiled, (5, 2), 3)
    assert launch([1, 2, 3])
    assert launched == [(5, 2, 1, "stream0", "fn", "meta", None, None, None, 1, 2, 3)]
    hooks.launch_enter_hook.calls.append(print)  # a profiler's hook: Triton's launcher runs it
    assert not launch([1, 2, 3])
    hooks.launch_enter_hook.calls.clear()
    assert launch([1, 2, 3])
    hooks.launch_exit_hook = print  # a hook set the pre-3.4 way: not the chain the plan checked
    assert not launch([1, 2, 3])
    hooks.launch_exit_hook = types.SimpleNamespace(calls=[])
    assert not launch([1, 2, 3])
    launch = module._direct_runner(compiled, (5, 2), 3)
    device["current"] = 1  # the kernel was loaded on device 0
    assert not launch([1, 2, 3])
    assert len(launched) == 2


@pytest.mark.parametrize("version", ["3.5.1", "3.10.0", "4.0.0"])
def test_other_triton_releases_launch_through_kernel_grid(monkeypatch, version):
    module, _ = _model("versions", DECODE, 4, 96)
    compiled, _, _, _ = _fake_triton(monkeypatch, module, version)
    assert module._direct_runner(compiled, (5,), 3) is None


def test_a_compiled_kernel_of_another_layout_launches_through_kernel_grid(monkeypatch):
    module, _ = _model("layout", DECODE, 4, 96)
    compiled, _, _, _ = _fake_triton(monkeypatch, module, "3.9.0+git")
    assert module._direct_runner(compiled, (5,), 2) is None  # bound arguments of another count
    del compiled.packed_metadata
    assert module._direct_runner(compiled, (5,), 3) is None
    assert module._direct_runner(None, (5,), 3) is None  # the interpreter's launch returns None


BIAS = torch.linspace(-1.0, 1.0, 2)


def head_bias(score, b, h, q_idx, kv_idx):
    return score + BIAS[h]


@pytest.mark.parametrize("config", [DECODE, SMALL], ids=["decode", "prefill"])
def test_a_replaced_buffer_makes_a_new_plan(config):
    module = import_source(generate(head_bias, None, config), f"test_launch_replaced_{config.decode}")
    Sq = 4 if config.decode else 64
    model = module.ModelNew(head_bias, None, {"B": 1, "Hq": 2, "Hkv": 1, "Sq": Sq, "Skv": 96, "D": 32})
    q, k, v = inputs(Hq=2, Hkv=1, Sq=Sq, Skv=96)
    model(q, k, v)
    (first,) = model.launches.values()
    (name,) = model._buffers
    model._buffers[name] = -model._buffers[name]  # what .to() does: a new tensor in its place
    out = model(q, k, v)
    (second,) = model.launches.values()
    assert second is not first
    reference = attention_reference(q, k, v, lambda s, b, h, qi, ki: s - BIAS[h], None)
    assert max_err(out, reference) < 1e-4
