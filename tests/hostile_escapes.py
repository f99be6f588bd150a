"""Hostile candidates that pass someone else's work off as their kernel's, found by the second
review: each gets past a check that only its own process makes, so what is asserted is the
verdict from the oracle (with the screen off, and where the row says so, with it on).
"""

from __future__ import annotations

from hostile_protocol import SCALED_EXP_KERNEL, UNTIMED_CALLS, ProtocolCheat

TORCH_IN_AN_INTERPRETED_KERNEL = '''
import torch
import torch.nn as nn
import triton
import triton.language as tl

_WORK = []


def _host_work():
    x, y, out = _WORK
    out.copy_(torch.exp(x) * 2.0 + y)


@triton.jit
def kernel(flag_ptr, BLOCK: tl.constexpr):
    # Under the interpreter this body is Python on the host: the call below does the whole
    # answer with torch while the launch was exempt from the op recorder. (On a GPU it would
    # not compile: a kernel cannot call a plain function.)
    _host_work()
    tl.store(flag_ptr + tl.arange(0, BLOCK), tl.zeros((BLOCK,), dtype=tl.int32))


class ModelNew(nn.Module):
    """The kernel launched is a stub; its body calls a host function that computes the answer
    with torch into the output, which the kernel never touches."""

    def forward(self, x, y):
        out = torch.empty_like(x)
        flag = torch.empty(1, dtype=torch.int32, device=x.device)
        _WORK[:] = [x, y, out]
        kernel[(1,)](flag, BLOCK=1)
        _WORK.clear()
        return out
'''

ESCAPE_CHEATS = [
    ProtocolCheat(
        "torch_in_an_interpreted_kernel",
        "torch fallback",
        "scaled_exp",
        TORCH_IN_AN_INTERPRETED_KERNEL,
        "rejected",
        "torch_fallback",
    ),
]

COMPLEX_OUTPUT_IN_BF16 = '''
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def phase_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    a = tl.load(x_ptr + offs, mask=mask).to(tl.float32)
    # cos and sin rounded to bf16: 2**-9 off, inside the bf16 input's 1e-2, far outside 1e-4
    re = tl.cos(a).to(tl.bfloat16).to(tl.float32)
    im = tl.sin(a).to(tl.bfloat16).to(tl.float32)
    tl.store(out_ptr + 2 * offs, re, mask=mask)
    tl.store(out_ptr + 2 * offs + 1, im, mask=mask)


class ModelNew(nn.Module):
    """A complex64 output (fp32 parts) computed to bf16 precision: the input is bf16, and the
    tolerance came from the first floating tensor, which a complex output is not."""

    def forward(self, x):
        out = torch.empty(x.shape, dtype=torch.complex64, device=x.device)
        n = x.numel()
        phase_kernel[(triton.cdiv(n, 1024),)](x, out.view(torch.float32), n, BLOCK=1024)
        return out
'''

HONEST_COMPLEX_PHASE = COMPLEX_OUTPUT_IN_BF16.replace(
    "tl.cos(a).to(tl.bfloat16).to(tl.float32)", "tl.cos(a)"
).replace("tl.sin(a).to(tl.bfloat16).to(tl.float32)", "tl.sin(a)")

ESCAPE_CHEATS.append(
    ProtocolCheat(
        "complex_output_in_bf16",
        "comparison floor",
        "complex_phase",
        COMPLEX_OUTPUT_IN_BF16,
        "incorrect",
        failing_trial_prefix="trial 1",
    )
)

DESCRIBES_A_BROADCAST_OUTPUT = '''
import sys

import torch
import torch.nn as nn

_runner = sys.modules["__main__"]


def _commit(self, msg):
    return {"ok": True, "digests": [[0] * 8]}


# The runner's own digest and poisoning would touch every element of the view; a subverted
# runner (the screen is off, or native code writes the replies) skips both.
_runner.Runner.commit = _commit
sys.modules["kernelscale.verify.inputs"].poison = lambda tensors: None


class ModelNew(nn.Module):
    """Four bytes of storage described as 2**40 elements (stride 0): the descriptor's storage
    fits the slab, so the oracle rebuilt the view and its digest made it contiguous, 4 TB."""

    def forward(self, x, y):
        return torch.zeros(1, device=x.device).expand(2**40)
'''

ESCAPE_CHEATS.append(
    ProtocolCheat(
        "describes_a_broadcast_output",
        "oracle survival",
        "scaled_exp",
        DESCRIBES_A_BROADCAST_OUTPUT,
        "runtime_error",
        reason_start="the runner's outputs cannot be read",
    )
)

OVERFLOWS_THE_ERROR = '''
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def flip_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    tl.store(out_ptr + offs, tl.where(x < 0, 1e308, -1e308), mask=mask)


class ModelNew(nn.Module):
    """Every element the opposite of the reference's ±1e308: each error, 2e308, is infinite in
    double precision, though both outputs are finite."""

    def forward(self, x):
        out = torch.empty_like(x)
        n = x.numel()
        flip_kernel[(triton.cdiv(n, 256),)](x, out, n, BLOCK=256)
        return out
'''

ESCAPE_CHEATS.append(
    ProtocolCheat(
        "overflows_the_error",
        "oracle survival",
        "f64_extremes",
        OVERFLOWS_THE_ERROR,
        "incorrect",
        failing_trial_prefix="trial 1",
    )
)

HONEST_F64_EXTREMES = OVERFLOWS_THE_ERROR.replace(
    "tl.where(x < 0, 1e308, -1e308)", "tl.where(x < 0, -1e308, 1e308)"
)

COMPILES_INTO_THE_RECORDER = '''
import torch
import torch.nn as nn
import triton
import triton.language as tl

_WORK = {}


def _backend(graph, example_inputs):
    """A Dynamo backend. Dynamo calls it, and then what it returns, for each frame it compiles;
    the op recorder's own handler is such a frame, and the recorder is off inside its handler."""

    def run(*args):
        if "xy" in _WORK:
            x, y = _WORK.pop("xy")
            _WORK["out"] = torch.exp(x) * 2.0 + y
        return graph(*args)

    return run


@triton.jit
def stub(flag_ptr, BLOCK: tl.constexpr):
    tl.store(flag_ptr + tl.arange(0, BLOCK), tl.zeros((BLOCK,), dtype=tl.int32))


class _Touch(nn.Module):
    def forward(self, x, y):
        x.view(-1)  # one op on a tensor: its handler frame is the one compiled
        if "out" not in _WORK:  # the handler was not compiled: the same work, in plain sight
            _WORK["out"] = torch.exp(x) * 2.0 + y


class ModelNew(nn.Module):
    """`nn.Module.compile` (a method, not `torch.compile`) with a backend of its own, on a module
    that only views its input: forward itself is never compiled (Dynamo skips frames under a
    dispatch mode), but its callback stays set, and the recorder's handler, which runs with the
    mode popped, is compiled with `_backend`. The answer is computed there with torch; the
    recorder sees `view` and `empty`."""

    def __init__(self):
        super().__init__()
        self.touch = _Touch()
        self.touch.compile(backend=_backend)

    def forward(self, x, y):
        _WORK["xy"] = (x, y)
        self.touch(x, y)
        flag = torch.empty(1, dtype=torch.int32, device=x.device)
        stub[(1,)](flag, BLOCK=1)
        return _WORK.pop("out")
'''

ESCAPE_CHEATS.append(
    ProtocolCheat(
        "compiles_into_the_recorder",
        "torch fallback",
        "scaled_exp",
        COMPILES_INTO_THE_RECORDER,
        "rejected",
        "torch_fallback",
    )
)

COMPUTES_IN_A_POINTER = '''
import torch
import torch.nn as nn
import triton
import triton.language as tl


class _Pointer:
    """Stands for a tensor where Triton takes one (anything with `data_ptr`); Triton's launch
    calls its methods with the recorder paused."""

    def __init__(self):
        self.work = None

    @property
    def dtype(self):
        return self.out.dtype

    def data_ptr(self):  # the one method a GPU launch calls (the interpreter's copies come later)
        self._compute()
        return self.out.data_ptr()

    def _compute(self):
        if self.work is not None:
            x, y = self.work
            self.work = None
            self.out.copy_(torch.exp(x) * 2.0 + y)

    def new_empty(self, *args, **kwargs):
        return self.out.new_empty(*args, **kwargs)

    def storage_offset(self):
        return self.out.storage_offset()

    def size(self, *args):
        return self.out.size(*args)

    def stride(self, *args):
        return self.out.stride(*args)

    def untyped_storage(self):
        self._compute()
        return self.out.untyped_storage()


@triton.jit
def stub(flag_ptr, out_ptr, BLOCK: tl.constexpr):
    tl.store(flag_ptr + tl.arange(0, BLOCK), tl.zeros((BLOCK,), dtype=tl.int32))


class ModelNew(nn.Module):
    """Launches a stub with an object of its own where Triton takes a tensor; the class is named
    only in `__init__`, so the screen does not read its methods as forward's. Triton called
    them inside the launch, where the recorder was paused: the answer computed there."""

    def __init__(self):
        super().__init__()
        self.pointer = _Pointer()

    def forward(self, x, y):
        out = torch.empty_like(x)
        self.pointer.out = out
        self.pointer.work = (x, y)
        flag = torch.empty(1, dtype=torch.int32, device=x.device)
        stub[(1,)](flag, self.pointer, BLOCK=1)
        return out
'''

ESCAPE_CHEATS.append(
    ProtocolCheat(
        "computes_in_a_pointer",
        "torch fallback",
        "scaled_exp",
        COMPUTES_IN_A_POINTER,
        "rejected",
        "torch_fallback",
    )
)

COMPUTES_IN_THE_GRID = '''
import torch
import torch.nn as nn
import triton
import triton.language as tl


class _Planner:
    """Its `grid` is the candidate's code that Triton calls inside the launch; the class is
    named only in `__init__`, so the screen does not read its methods as forward's."""

    def __init__(self):
        self.work = None

    def grid(self, meta):
        if self.work is not None:
            x, y, out = self.work
            self.work = None
            out.copy_(torch.exp(x) * 2.0 + y)
        return (1,)


@triton.jit
def stub(flag_ptr, BLOCK: tl.constexpr):
    tl.store(flag_ptr + tl.arange(0, BLOCK), tl.zeros((BLOCK,), dtype=tl.int32))


class ModelNew(nn.Module):
    """Launches a stub whose grid function computes the answer with torch: on a GPU the launch
    ran with the op recorder paused, and the grid inside it."""

    def __init__(self):
        super().__init__()
        self.planner = _Planner()

    def forward(self, x, y):
        out = torch.empty_like(x)
        self.planner.work = (x, y, out)
        flag = torch.empty(1, dtype=torch.int32, device=x.device)
        stub[self.planner.grid](flag, BLOCK=1)
        return out
'''

# Under the CPU interpreter the launch is not paused, so this is caught with or without the fix;
# the fix is what holds on a GPU (tests/test_op_recorder.py stands in for that launch).
ESCAPE_CHEATS.append(
    ProtocolCheat(
        "computes_in_the_grid",
        "torch fallback",
        "scaled_exp",
        COMPUTES_IN_THE_GRID,
        "rejected",
        "torch_fallback",
    )
)


# A candidate that stalls one call, the checked warm-up before the timed ones (it can count the
# calls), for longer than the timing budget (max_timing_s, 5 s), and is honest otherwise. While
# the budget's clock started before that warm-up, on a GPU the timed loop first stopped before
# its first call (the median of no calls: an exception in the oracle, a verifier error that
# stopped the whole search), then, made to take one call, judged the timer rule on that single
# reading and rejected it (an H200). The clock now starts after the warm-up: `correct`. On the
# CPU timing stops by count (`cpu_calls`), so the planted candidate means something on a GPU
# only; test_a_verdict_always_has_a_timed_call shows the one-call floor there.
STALLS_ITS_WARM_UP = (
    SCALED_EXP_KERNEL
    + f"""
import time


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x, y):
        self.calls += 1
        if self.calls == {UNTIMED_CALLS}:  # the warm-up call on scaled_exp
            time.sleep(6.0)
        return scaled_exp(x, y)
"""
)
ESCAPE_CHEATS.append(
    ProtocolCheat(
        "stalls_its_warm_up",
        "oracle survival",
        "scaled_exp",
        STALLS_ITS_WARM_UP,
        "correct",
        gpu_only="timing stops by count on the CPU, by the clock on a GPU",
    )
)
