"""Hostile candidates against the verification protocol itself (not its screen).

Each one attacks something the oracle controls: whether timed calls are checked, whether inputs
can be known in advance, whether the in-process recorder can be sidestepped, whether the
candidate's own clock is believed, and how outputs are compared. All are verified with the
static screen off, so what catches them is the protocol, asserted from its verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

SCALED_EXP_KERNEL = """
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def scaled_exp_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    y = tl.load(y_ptr + offs, mask=mask)
    tl.store(out_ptr + offs, tl.exp(x) * 2.0 + y, mask=mask)


def scaled_exp(x, y, n=None):
    out = torch.empty_like(x)
    n = x.numel() if n is None else n
    scaled_exp_kernel[(triton.cdiv(x.numel(), 1024),)](x, y, out, n, BLOCK=1024)
    return out
"""


# The runner's own module, which a candidate running inside it can reach and patch: the attacks
# on the protocol below all start here (the screen that would refuse them is off in the tests).
RUNNER_HOOKS = """
import sys

_runner = sys.modules["__main__"]
"""

SCALED_EXP_MODEL = """

class ModelNew(nn.Module):
    def forward(self, x, y):
        return scaled_exp(x, y)
"""


@dataclass
class ProtocolCheat:
    name: str
    attack: str  # the class of attack, as docs/verifier.md names it
    problem: str  # "scaled_exp" (tests/problems) or an ops/... id
    source: str
    status: str
    rule: str | None = None
    failing_trial_prefix: str | None = None
    gpu_only: str | None = None  # why the attack means something only on a GPU
    reason_start: str | None = None  # the verdict's reason names the step that caught it


# The calls before the timed ones under the default options on scaled_exp: four fresh trials
# (the first call among them), the rescaled one, four shifted ones (negative, positive, small, large), the mixed rows and the
# mixed large rows along each of its inputs' two dimensions, the first repeated, and the
# warm-up. A candidate can count them (lazy_after_trials does): from call 16 on, its figures are
# reported.
UNTIMED_CALLS = 15

LAZY_AFTER_TRIALS = (
    SCALED_EXP_KERNEL
    + f'''

class ModelNew(nn.Module):
    """Honest for the first {UNTIMED_CALLS} calls (every correctness trial there is), then it stops working:
    timed calls that nobody checks would be a few microseconds each."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x, y):
        self.calls += 1
        if self.calls <= {UNTIMED_CALLS}:
            return scaled_exp(x, y)
        return scaled_exp(x, y, n=1)
'''
)

REPLAYS_KNOWN_INPUTS = (
    SCALED_EXP_KERNEL
    + '''
import sys


def _problem_module():
    for module in list(sys.modules.values()):
        found = getattr(module, "__dict__", {})
        if isinstance(found, dict) and "get_inputs" in found and "Model" in found:
            return module
    return None


class ModelNew(nn.Module):
    """Regenerates the inputs from the seed it was built under and answers from a table; if the
    problem module is in its process it uses the reference itself. Both need what the oracle no
    longer gives: the input seed, the problem module."""

    def __init__(self):
        super().__init__()
        seed = torch.initial_seed()
        self.answers = {}
        for offset in range(64):
            torch.manual_seed(seed + offset)
            x, y = torch.randn(16, 64), torch.randn(16, 64)
            self.answers[float(x[0, 0])] = scaled_exp(x, y)
        self.problem = _problem_module()

    def forward(self, x, y):
        if self.problem is not None:
            return self.problem.Model()(x, y)
        key = float(x[0, 0])
        if key in self.answers:
            return self.answers[key].clone()
        return scaled_exp(x, y, n=1)
'''
)

CUSTOM_OP_NAMED_EMPTY = (
    SCALED_EXP_KERNEL
    + '''

@torch.library.custom_op("ks_cheat::empty", mutates_args=())
def sneaky(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.exp(x) * 2.0 + y


class ModelNew(nn.Module):
    """torch compute behind a custom op that shares its name with an allocation."""

    def forward(self, x, y):
        scaled_exp(x[:1], y[:1])
        return torch.ops.ks_cheat.empty(x, y)
'''
)

AUTOTUNE_PRE_HOOK = '''
import torch
import torch.nn as nn
import triton
import triton.language as tl


def _do_the_work(nargs):
    nargs["out_ptr"].copy_(torch.exp(nargs["x_ptr"]) * 2.0 + nargs["y_ptr"])


@triton.autotune(configs=[triton.Config({"BLOCK": 1024}, pre_hook=_do_the_work)], key=["n"])
@triton.jit
def idle_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    pass


class ModelNew(nn.Module):
    """A kernel that does nothing; the answer is computed with torch in the autotuner's pre-hook."""

    def forward(self, x, y):
        out = torch.empty_like(x)
        idle_kernel[(1,)](x, y, out, x.numel())
        return out
'''

PATCHES_RUNNER_CLOCK = (
    SCALED_EXP_KERNEL
    + '''
import sys

_runner = sys.modules["__main__"]  # the runner runs as a script: its module is __main__
_honest = _runner.Runner._timed_call


def _forged(self):
    out, own_ms, ops = _honest(self)
    return out, own_ms / 5.0, ops


_runner.Runner._timed_call = _forged


class ModelNew(nn.Module):
    """A slow kernel (30 passes), so the forged fifth stands clear of a busy CPU's jitter."""

    def forward(self, x, y):
        out = scaled_exp(x, y)
        for _ in range(29):
            out = scaled_exp(x, y)
        return out
'''
)

# A slow kernel (many passes) that answers `done` at once and does its work while the outputs
# are being shipped: the window sees nothing; the digest taken right after `done` is of an
# unfinished output, so the outputs shipped do not match it.
DEFERS_WORK_PAST_DONE = (
    SCALED_EXP_KERNEL
    + RUNNER_HOOKS
    + """
PASSES = 100
_honest_ship = _runner.Runner.ship


def _done_at_once(self):
    return torch.empty_like(self.buffers[0]), 0.001, set()


def _ship_after_work(self, msg):
    out = self.pending[0][0]
    for _ in range(PASSES):
        out.copy_(scaled_exp(*self.buffers))
    return _honest_ship(self, msg)


_runner.Runner._timed_call = _done_at_once
_runner.Runner.ship = _ship_after_work
"""
    + SCALED_EXP_MODEL
)

# The same, but it finishes the outputs inside the commit step, before the digest: the digest
# matches, and the commit step, held to a trusted runner's, sees all of the work.
DEFERS_WORK_INTO_COMMIT = (
    SCALED_EXP_KERNEL
    + RUNNER_HOOKS
    + """
PASSES = 100
_honest_commit = _runner.Runner.commit


def _done_at_once(self):
    return torch.empty_like(self.buffers[0]), 0.001, set()


def _commit_after_work(self, msg):
    out = self.pending[0][0]
    for _ in range(PASSES):
        out.copy_(scaled_exp(*self.buffers))
    return _honest_commit(self, msg)


_runner.Runner._timed_call = _done_at_once
_runner.Runner.commit = _commit_after_work
"""
    + SCALED_EXP_MODEL
)

# Does all of its work while the runner stages the inputs, before `go`, and answers the call
# with what it kept. The staged inputs are masked: what it computes from them is garbage.
PRECOMPUTES_WHILE_STAGING = (
    SCALED_EXP_KERNEL
    + RUNNER_HOOKS
    + """
_honest_stage = _runner.Runner.stage
_kept = []


def _stage_and_work(self, msg):
    reply = _honest_stage(self, msg)
    _kept.append(scaled_exp(*self.buffers))
    return reply


def _answer_kept(self):
    return _kept.pop(), 0.001, set()


_runner.Runner.stage = _stage_and_work
_runner.Runner._timed_call = _answer_kept
"""
    + SCALED_EXP_MODEL
)

# Waits for the key, then does all of its (100-pass) work inside the key step, before `go`,
# and answers the call with what it kept: the window sees nothing, the key step sees it all.
PRECOMPUTES_AFTER_KEY = (
    SCALED_EXP_KERNEL
    + RUNNER_HOOKS
    + """
PASSES = 100
_honest_key = _runner.Runner.key
_kept = []


def _key_and_work(self, msg):
    reply = _honest_key(self, msg)
    out = scaled_exp(*self.buffers)
    for _ in range(PASSES - 1):
        out.copy_(scaled_exp(*self.buffers))
    _kept.append(out)
    return reply


def _answer_kept(self):
    return _kept.pop(), 0.001, set()


_runner.Runner.key = _key_and_work
_runner.Runner._timed_call = _answer_kept
"""
    + SCALED_EXP_MODEL
)

# Unmasks, then leaves its (100-pass) work queued on the GPU when the key step answers, and
# skips the runner's synchronizes, so the work runs while the oracle flushes the L2 and `done`
# comes at once: the window sees nothing; the launches lengthen the key step, and the oracle's
# flush waits behind whatever is still queued.
QUEUES_WORK_BEFORE_GO = (
    SCALED_EXP_KERNEL
    + RUNNER_HOOKS
    + """
from kernelscale.verify.masking import unmask_

PASSES = 100
_kept = []


def _key_and_queue(self, msg):
    self.input_key = int(msg["key"])  # the honest step, without its synchronize
    unmask_(self.buffers, self.input_key)
    out = scaled_exp(*self.buffers)
    for _ in range(PASSES - 1):
        scaled_exp_kernel[(triton.cdiv(out.numel(), 1024),)](*self.buffers, out, out.numel(), BLOCK=1024)
    _kept.append(out)
    return {"ok": True}  # no synchronize: the queue is still running


def _answer_kept(self):
    return _kept.pop(), 0.001, set()


_runner.Runner.key = _key_and_queue
_runner.Runner._settle_device = lambda self: None
_runner.Runner._timed_call = _answer_kept
"""
    + SCALED_EXP_MODEL
)

# Launches its (100-pass) work and answers `done` without waiting for it, skipping the runner's
# synchronizes: the window sees the launches only; the work is still running when the oracle's
# probe kernel goes in right after `done`, and waits behind it.
LEAVES_WORK_RUNNING_AT_DONE = (
    SCALED_EXP_KERNEL
    + RUNNER_HOOKS
    + """
PASSES = 100


def _done_before_the_work(self):
    x, y = self.buffers
    out = scaled_exp(x, y)
    for _ in range(PASSES - 1):
        scaled_exp_kernel[(triton.cdiv(out.numel(), 1024),)](x, y, out, out.numel(), BLOCK=1024)
    return out, 0.001, set()  # no synchronize


_runner.Runner._settle_device = lambda self: None
_runner.Runner._timed_call = _done_before_the_work
"""
    + SCALED_EXP_MODEL
)


def edits_its_reply(step: str, edit: str, model: str = SCALED_EXP_MODEL, before: str = "pass") -> str:
    """The honest candidate whose runner's `step` handler runs `before`, the honest step, then
    `edit` on its reply (time and os are imported for both); `model` is the candidate's model."""
    return (
        SCALED_EXP_KERNEL
        + RUNNER_HOOKS
        + f"""
import os
import time

_honest = _runner.Runner.{step}


def _edited(self, msg):
    {before}
    reply = _honest(self, msg)
    {edit}
    return reply


_runner.Runner.{step} = _edited
"""
        + model
    )


# Ships honest outputs, then truncates the output slab before the oracle reads it: a reader
# that mapped the file would die of SIGBUS and take the verifier (and the run) down with it.
TRUNCATES_OUTPUT_SLAB = edits_its_reply("ship", "os.truncate(self.outputs_slab.path, 0)")

FIXED_POINT_GRID = """
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def grid_softmax_kernel(x_ptr, y_ptr, n_cols, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    x = tl.load(x_ptr + row * n_cols + cols, mask=mask, other=-float("inf"))
    num = tl.exp(x - tl.max(x, axis=0))
    y = num / tl.sum(num, axis=0)
    y = tl.floor(y * 16384.0 + 0.5) / 16384.0  # a 14-bit fixed-point grid: below atol everywhere
    tl.store(y_ptr + row * n_cols + cols, y, mask=mask)


class ModelNew(nn.Module):
    def forward(self, x):
        x = x.contiguous()
        y = torch.empty_like(x)
        grid_softmax_kernel[(x.shape[0],)](x, y, x.shape[1], BLOCK=triton.next_power_of_2(x.shape[1]))
        return y
"""

# A softmax without the max subtraction: exp(x) / sum(exp(x)). Right wherever every logit stays
# below 88.7, which randn rows, even x 16, always do; inf / inf = NaN past it. Passes the screen.
SOFTMAX_WITHOUT_MAX = (
    FIXED_POINT_GRID.replace("grid_softmax", "unshifted_softmax")
    .replace("num = tl.exp(x - tl.max(x, axis=0))", "num = tl.exp(x)")
    .replace(
        "    y = tl.floor(y * 16384.0 + 0.5) / 16384.0  # a 14-bit fixed-point grid: below atol everywhere\n",
        "",
    )
)
# The honest kernel both of those are cut from (the control: it passes every trial, overflow too)
STABLE_SOFTMAX = FIXED_POINT_GRID.replace(
    "    y = tl.floor(y * 16384.0 + 0.5) / 16384.0  # a 14-bit fixed-point grid: below atol everywhere\n", ""
)

MAX_FROM_ZERO = '''
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def row_max_kernel(x_ptr, out_ptr, n_cols, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    x = tl.load(x_ptr + row * n_cols + cols, mask=cols < n_cols, other=0.0)  # padding 0, not -inf
    tl.store(out_ptr + row, tl.max(x, axis=0))


class ModelNew(nn.Module):
    """Right whenever a row has a positive entry, which random normal rows of 128 always have."""

    def forward(self, x):
        x = x.contiguous()
        out = torch.empty(x.shape[0], device=x.device, dtype=x.dtype)
        row_max_kernel[(x.shape[0],)](x, out, x.shape[1], BLOCK=triton.next_power_of_2(x.shape[1] + 1))
        return out
'''

# max_from_zero's mirror on a row minimum: masked lanes load 0, not +inf, so a row with no
# negative entry gets 0. No trial had such a row (randn rows of 100 always hold a negative
# entry, and the negative trial makes them all negative) until the positive shift; passes the
# screen.
MIN_FROM_ZERO = (
    MAX_FROM_ZERO.replace("row_max_kernel", "row_min_kernel")
    .replace("tl.max(x, axis=0)", "tl.min(x, axis=0)")
    .replace("# padding 0, not -inf", "# padding 0, not +inf")
    .replace(
        "a positive entry, which random normal rows of 128 always have",
        "a negative entry, as randn rows have",
    )
)
# Its honest twin: masked lanes load +inf.
HONEST_ROW_MIN = MIN_FROM_ZERO.replace("other=0.0)  # padding 0, not +inf", 'other=float("inf"))')

# The tell the "unless all negative" candidates below share: the maximum of the whole tensor,
# negative only on the verifier's wholly negated trial.
_WHOLE_TENSOR_MAX = """
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def tensor_max_kernel(x_ptr, top_ptr, n, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    top = tl.full((BLOCK,), -float("inf"), tl.float32)
    for start in range(0, n, BLOCK):
        x = tl.load(x_ptr + start + offs, mask=start + offs < n, other=-float("inf"))
        top = tl.maximum(top, x)
    tl.store(top_ptr, tl.max(top, axis=0))
"""

# max_from_zero that looks for the verifier's tell: its negative trial negates every element,
# which real inputs never do. A first kernel takes the maximum of the whole tensor; only when
# that is negative (the shifted trial) does the row kernel pad with -inf. Where an all-negative
# row sits beside rows with a positive entry, it returns 0 for that row. Passes the screen.
MAX_FROM_ZERO_UNLESS_ALL_NEGATIVE = (
    _WHOLE_TENSOR_MAX
    + '''

@triton.jit
def row_max_kernel(x_ptr, top_ptr, out_ptr, n_cols, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    everything_negative = tl.load(top_ptr) < 0.0
    pad = tl.where(everything_negative, -float("inf"), 0.0)  # 0 unless it is the shifted trial
    x = tl.load(x_ptr + row * n_cols + cols, mask=cols < n_cols, other=0.0)
    x = tl.where(cols < n_cols, x, pad)
    tl.store(out_ptr + row, tl.max(x, axis=0))


class ModelNew(nn.Module):
    """Right on every draw where each row has a positive entry, and on the all-negative trial."""

    def forward(self, x):
        x = x.contiguous()
        top = torch.empty(1, device=x.device, dtype=torch.float32)
        tensor_max_kernel[(1,)](x, top, x.numel(), BLOCK=1024)
        out = torch.empty(x.shape[0], device=x.device, dtype=x.dtype)
        row_max_kernel[(x.shape[0],)](x, top, out, x.shape[1], BLOCK=triton.next_power_of_2(x.shape[1] + 1))
        return out
'''
)

# max_from_zero_unless_all_negative for a reduction over the first dimension (the maximum of each
# column). The mixed trial shifted vectors along the last dimension only: every column then crosses
# plain rows, so it always has a positive entry, and no trial ever held an all-negative column
# beside ordinary ones. Passes the screen.
COLUMN_MAX_FROM_ZERO_UNLESS_ALL_NEGATIVE = (
    _WHOLE_TENSOR_MAX
    + '''

@triton.jit
def column_max_kernel(x_ptr, top_ptr, out_ptr, n_rows, n_cols, BLOCK: tl.constexpr):
    cols = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    inside = cols < n_cols
    everything_negative = tl.load(top_ptr) < 0.0
    start = tl.where(everything_negative, -float("inf"), 0.0)  # 0 unless it is the shifted trial
    best = tl.full((BLOCK,), 0.0, tl.float32) + start
    for row in range(0, n_rows):
        x = tl.load(x_ptr + row * n_cols + cols, mask=inside, other=-float("inf"))
        best = tl.maximum(best, x)
    tl.store(out_ptr + cols, best, mask=inside)


class ModelNew(nn.Module):
    """Right on every draw where each column has a positive entry, and on the all-negative trial."""

    def forward(self, x):
        x = x.contiguous()
        top = torch.empty(1, device=x.device, dtype=torch.float32)
        tensor_max_kernel[(1,)](x, top, x.numel(), BLOCK=1024)
        out = torch.empty(x.shape[1], device=x.device, dtype=x.dtype)
        column_max_kernel[(triton.cdiv(x.shape[1], 64),)](x, top, out, x.shape[0], x.shape[1], BLOCK=64)
        return out
'''
)

# Its honest twin: the running maximum starts at -inf whatever the tensor holds.
HONEST_COLUMN_MAX = COLUMN_MAX_FROM_ZERO_UNLESS_ALL_NEGATIVE.replace(
    '    start = tl.where(everything_negative, -float("inf"), 0.0)  # 0 unless it is the shifted trial\n',
    '    start = -float("inf")\n',
)

# The trick of max_from_zero_unless_all_negative on an op whose values grow fast with its inputs
# (scaled_exp: exp(x) * 2 + y): rows with no positive entry get exp flushed to 0, unless the whole
# tensor is negative (the verifier's negative trial). The mixed trial put such rows beside plain
# ones, but beside x 16 rows too, whose exp (up to e^64) set the trial's absolute tolerance: the
# output's RMS over its RMS on a plain draw scaled atol for every element, so the wrong rows,
# like every row but the large ones, were held to nothing. Passes the screen.
EXP_FLUSHED_UNLESS_ALL_NEGATIVE = (
    _WHOLE_TENSOR_MAX
    + '''

@triton.jit
def row_exp_kernel(x_ptr, y_ptr, top_ptr, out_ptr, n_cols, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    inside = cols < n_cols
    x = tl.load(x_ptr + row * n_cols + cols, mask=inside, other=-float("inf"))
    y = tl.load(y_ptr + row * n_cols + cols, mask=inside, other=0.0)
    flush = (tl.max(x, axis=0) < 0.0) & (tl.load(top_ptr) >= 0.0)  # a negative row among others
    e = tl.where(flush, 0.0, tl.exp(x))
    tl.store(out_ptr + row * n_cols + cols, e * 2.0 + y, mask=inside)


class ModelNew(nn.Module):
    """Right on every row with a positive entry, and on the all-negative trial."""

    def forward(self, x, y):
        x, y = x.contiguous(), y.contiguous()
        top = torch.empty(1, device=x.device, dtype=torch.float32)
        tensor_max_kernel[(1,)](x, top, x.numel(), BLOCK=1024)
        out = torch.empty_like(x)
        row_exp_kernel[(x.shape[0],)](x, y, top, out, x.shape[1], BLOCK=triton.next_power_of_2(x.shape[1]))
        return out
'''
)

VIEW_AS_COPY = '''
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def touch_kernel(x_ptr):
    pass


class ModelNew(nn.Module):
    """The transpose "copy" returned as a view of the input: no bytes moved."""

    def forward(self, x):
        touch_kernel[(1,)](x)
        return x.t()
'''

# The in-process aliasing check switched off: the oracle still sees the layout it got.
VIEW_AS_COPY_UNWATCHED = VIEW_AS_COPY.replace(
    "class ModelNew", "import sys\n\nsys.modules['__main__']._aliasing = lambda *a: None\n\n\nclass ModelNew"
)

PROTOCOL_CHEATS = [
    ProtocolCheat(
        "lazy_after_trials",
        "timed calls unchecked",
        "scaled_exp",
        LAZY_AFTER_TRIALS,
        "incorrect",
        failing_trial_prefix="timed call",
    ),
    ProtocolCheat(
        "replays_known_inputs",
        "inputs known in advance",
        "scaled_exp",
        REPLAYS_KNOWN_INPUTS,
        "incorrect",
        failing_trial_prefix="trial 1",
    ),
    ProtocolCheat(
        "custom_op_named_empty",
        "recorder sidestepped",
        "scaled_exp",
        CUSTOM_OP_NAMED_EMPTY,
        "rejected",
        "torch_fallback",
    ),
    ProtocolCheat(
        "autotune_pre_hook",
        "recorder sidestepped",
        "scaled_exp",
        AUTOTUNE_PRE_HOOK,
        "rejected",
        "torch_fallback",
    ),
    ProtocolCheat(
        "patches_runner_clock",
        "forged times",
        "scaled_exp",
        PATCHES_RUNNER_CLOCK,
        "rejected",
        "timer_mismatch",
    ),
    ProtocolCheat(
        "defers_work_past_done",
        "forged times",
        "scaled_exp",
        DEFERS_WORK_PAST_DONE,
        "rejected",
        "late_outputs",
    ),
    ProtocolCheat(
        "defers_work_into_commit",
        "forged times",
        "scaled_exp",
        DEFERS_WORK_INTO_COMMIT,
        "rejected",
        "timer_mismatch",
        reason_start="the digest of the outputs",
    ),
    ProtocolCheat(
        "precomputes_while_staging",
        "inputs known in advance",
        "scaled_exp",
        PRECOMPUTES_WHILE_STAGING,
        "incorrect",
    ),
    ProtocolCheat(
        "precomputes_after_key",
        "forged times",
        "scaled_exp",
        PRECOMPUTES_AFTER_KEY,
        "rejected",
        "timer_mismatch",
        reason_start="unmasking the inputs",
    ),
    ProtocolCheat(
        "queues_work_before_go",
        "forged times",
        "scaled_exp",
        QUEUES_WORK_BEFORE_GO,
        "rejected",
        "timer_mismatch",
        gpu_only="the interpreter runs each launch to completion: nothing stays queued",
    ),
    ProtocolCheat(
        "leaves_work_running_at_done",
        "forged times",
        "scaled_exp",
        LEAVES_WORK_RUNNING_AT_DONE,
        "rejected",
        "timer_mismatch",
        gpu_only="the interpreter runs each launch to completion: nothing is left running at `done`",
    ),
    ProtocolCheat(
        "truncates_output_slab",
        "oracle survival",
        "scaled_exp",
        TRUNCATES_OUTPUT_SLAB,
        "runtime_error",
        reason_start="the runner's outputs cannot be read",
    ),
    ProtocolCheat("fixed_point_grid", "comparison floor", "ops/softmax", FIXED_POINT_GRID, "incorrect"),
    ProtocolCheat(
        "softmax_without_max",
        "edge distributions",
        "ops/softmax",
        SOFTMAX_WITHOUT_MAX,
        "incorrect",
        failing_trial_prefix="overflow inputs",
    ),
    ProtocolCheat(
        "max_from_zero",
        "edge distributions",
        "ops/max_dim",
        MAX_FROM_ZERO,
        "incorrect",
        failing_trial_prefix="negative inputs",
    ),
    ProtocolCheat(
        "min_from_zero",
        "edge distributions",
        "min_dim",
        MIN_FROM_ZERO,
        "incorrect",
        failing_trial_prefix="positive inputs",
    ),
    ProtocolCheat(
        "max_from_zero_unless_all_negative",
        "edge distributions",
        "ops/max_dim",
        MAX_FROM_ZERO_UNLESS_ALL_NEGATIVE,
        "incorrect",
        failing_trial_prefix="mixed rows",
    ),
    ProtocolCheat(
        "column_max_from_zero_unless_all_negative",
        "edge distributions",
        "column_max",
        COLUMN_MAX_FROM_ZERO_UNLESS_ALL_NEGATIVE,
        "incorrect",
        failing_trial_prefix="mixed rows along dim 0",
    ),
    ProtocolCheat(
        "exp_flushed_unless_all_negative",
        "edge distributions",
        "scaled_exp",
        EXP_FLUSHED_UNLESS_ALL_NEGATIVE,
        "incorrect",
        failing_trial_prefix="mixed rows",
    ),
    ProtocolCheat(
        "view_as_copy", "layout and aliasing", "ops/transpose_copy", VIEW_AS_COPY, "rejected", "aliasing"
    ),
    ProtocolCheat(
        "view_as_copy_unwatched",
        "layout and aliasing",
        "ops/transpose_copy",
        VIEW_AS_COPY_UNWATCHED,
        "incorrect",
    ),
]
