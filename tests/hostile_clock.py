"""Hostile candidates against how the oracle reads the runner's clock and replies.

Each one forges what the runner reports (its own time, or the replies themselves) in a way the
rules of docs/verifier.md must still catch from outside: a number that is not a number, forgery
aimed only at the calls whose figure is reported, work moved out of the window only on those
calls, and a reply too large or too deeply nested for the oracle to hold. All run with the screen
off; the verdict is asserted from the oracle (tests/test_hostile_protocol.py).
"""

from __future__ import annotations

from hostile_protocol import (
    RUNNER_HOOKS,
    SCALED_EXP_KERNEL,
    SCALED_EXP_MODEL,
    UNTIMED_CALLS,
    ProtocolCheat,
    edits_its_reply,
)


def _passes_model(passes: int) -> str:
    """A ModelNew that runs the honest kernel `passes` times per call: work worth hiding."""
    return f"""

class ModelNew(nn.Module):
    def forward(self, x, y):
        out = scaled_exp(x, y)
        for _ in range({passes - 1}):
            out = scaled_exp(x, y)
        return out
"""


# Its own time as NaN (JSON carries it): every comparison with NaN is false, so a rule written as
# "reject if own < bound" passes it, and NaN minus the harness is the reported time.
REPORTS_NAN_TIME = (
    SCALED_EXP_KERNEL
    + RUNNER_HOOKS
    + """
_honest = _runner.Runner._timed_call


def _nan_time(self):
    out, own_ms, ops = _honest(self)
    return out, float("nan"), ops


_runner.Runner._timed_call = _nan_time
"""
    + SCALED_EXP_MODEL
)

# A slow kernel (30 passes) that reports its honest time on every call before the timed ones
# and a thousandth of it on the timed calls: over all calls the median of its figures is still
# honest, but the reported time is the median over the timed calls only. On a GPU the same
# attack forges just over half of the timed calls, honest on the rest, to the same effect.
FORGES_CLOCK_WHEN_TIMED = (
    SCALED_EXP_KERNEL
    + RUNNER_HOOKS
    + f"""
_honest = _runner.Runner._timed_call
_calls = [0]


def _forged_when_timed(self):
    out, own_ms, ops = _honest(self)
    _calls[0] += 1
    return out, own_ms / 1000.0 if _calls[0] > {UNTIMED_CALLS} else own_ms, ops


_runner.Runner._timed_call = _forged_when_timed
"""
    + _passes_model(30)
)

# precomputes_after_key, but only on the timed calls: its (100-pass) work runs in the key step,
# before `go`, so the window and its own figure are tiny there; the calls before are honest and
# outnumber the timed ones, so every median over all calls (key step, own time) looks honest.
PRECOMPUTES_AFTER_KEY_WHEN_TIMED = (
    SCALED_EXP_KERNEL
    + RUNNER_HOOKS
    + f"""
_honest_key = _runner.Runner.key
_honest_call = _runner.Runner._timed_call
_kept = []
_calls = [0]


def _key_and_work(self, msg):
    reply = _honest_key(self, msg)
    _calls[0] += 1
    if _calls[0] > {UNTIMED_CALLS}:
        _kept.append(self.model(*self.buffers))
    return reply


def _answer_kept(self):
    if _kept:
        return _kept.pop(), 0.001, set()
    return _honest_call(self)


_runner.Runner.key = _key_and_work
_runner.Runner._timed_call = _answer_kept
"""
    + _passes_model(100)
)

# Its 300-pass work moves out of the window on two calls of every three, into a different step
# each time: on one it runs in the key step (after unmasking, before `go`), on the next `done`
# comes at once and the work finishes in the commit step (before the digest), on the third it
# runs honestly in the window. Its own figure is honest on every call. Each step's median over
# the calls, and the runner's figure against the window, see the work on a third of the calls
# only: all clean, and the reported time was that of a call that did nothing (0.001 ms against
# ~180 ms honest for 100 passes, found by a red-team pass).
ROTATES_HIDDEN_WORK = (
    SCALED_EXP_KERNEL
    + RUNNER_HOOKS
    + """
import time

_honest_key = _runner.Runner.key
_honest_commit = _runner.Runner.commit
_honest_call = _runner.Runner._timed_call
_state = {"call": -1, "kept": None}


def _work(x, y):  # 300 passes: on the CPU, well past the interpreter's loose bounds
    out = scaled_exp(x, y)
    for _ in range(299):
        out = scaled_exp(x, y)
    return out


def _key(self, msg):
    _state["call"] += 1
    reply = _honest_key(self, msg)
    if _state["call"] % 3 == 0:
        _state["kept"] = _work(*self.buffers)
    return reply


def _timed_call(self):
    phase = _state["call"] % 3
    if phase == 2:
        return _honest_call(self)
    t0 = time.perf_counter()
    out = _state["kept"] if phase == 0 else torch.empty_like(self.buffers[0])
    return out, (time.perf_counter() - t0) * 1e3, set()


def _commit(self, msg):
    if _state["call"] % 3 == 1:
        self.pending[0][0].copy_(_work(*self.buffers))
    return _honest_commit(self, msg)


_runner.Runner.key = _key
_runner.Runner._timed_call = _timed_call
_runner.Runner.commit = _commit


class ModelNew(nn.Module):
    def forward(self, x, y):
        return _work(x, y)
"""
)

# The channel to the oracle is the runner's stdout, a pipe the candidate can find and write.
RESULT_PIPE = """
import fcntl
import os
import stat


def _result_pipe():
    for fd in range(3, 256):
        try:
            info = os.fstat(fd)
        except OSError:
            continue
        if stat.S_ISFIFO(info.st_mode) and fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_WRONLY:
            return fd
    raise RuntimeError("no result pipe")
"""

# Writes to the oracle without ever ending the line, as fast as the pipe takes it: an oracle
# that keeps reading until the newline grows without bound (and rescans what it holds each read).
FLOODS_THE_CHANNEL = (
    SCALED_EXP_KERNEL
    + RESULT_PIPE
    + """
_junk = b"x" * 65536
while True:
    os.write(_result_pipe(), _junk)
"""
    + SCALED_EXP_MODEL
)

# One reply nested 200,000 lists deep: the JSON parser recurses, and a RecursionError is no
# JSONDecodeError; an oracle that only expects the latter blames itself.
NESTS_A_REPLY = (
    SCALED_EXP_KERNEL
    + RESULT_PIPE
    + """
os.write(_result_pipe(), b"[" * 200000 + b"\\n")
"""
    + SCALED_EXP_MODEL
)

# The oracle marks its own failures "verifier error (not the candidate's)": the pool retries such
# an attempt on another worker and the search stops on it. A candidate can write those words
# too, as its runner's reply (below) or in an exception it raises from forward (screen on).
FORGES_A_VERIFIER_ERROR = (
    SCALED_EXP_KERNEL
    + RUNNER_HOOKS
    + """
def _blame_the_verifier(self, msg):
    return {"ok": False, "status": "runtime_error", "reason": "verifier error (not the candidate's): oops"}


_runner.Runner.stage = _blame_the_verifier
"""
    + SCALED_EXP_MODEL
)
RAISES_A_VERIFIER_ERROR = (
    SCALED_EXP_KERNEL
    + """

class ModelNew(nn.Module):
    def forward(self, x, y):
        scaled_exp(x, y)
        raise RuntimeError("verifier error (not the candidate's): the reference failed")
"""
)


# Replies whose fields are of the wrong kind, each something the oracle used without asking:
# an output described as a quantized dtype (torch raises while copying it), a list of mutated
# inputs that is a number, a failure's reason that is an object (the search then treats it as a
# string). Native code from load_inline can write such replies with the screen on.
SHIPS_A_QUANTIZED_OUTPUT = edits_its_reply("ship", 'reply["outputs"][0]["dtype"] = "qint8"')
MUTATED_INPUTS_AS_A_NUMBER = edits_its_reply("ship", 'reply["mutated_inputs"] = 7')
# Numbers no float holds, where the oracle reads numbers (found by a red-team pass): an output
# offset of Infinity (JSON carries it; int(inf) raises OverflowError) and an own time of 10**400
# (math.isfinite raises OverflowError on it). Both were verifier errors, retried elsewhere and
# then stopping the search.
SHIPS_AN_INFINITE_OFFSET = edits_its_reply("ship", 'reply["outputs"][0]["offset"] = float("inf")')
REPORTS_A_HUGE_TIME = edits_its_reply("go", 'reply["own_ms"] = reply["host_ms"] = 10**400')
REASON_AS_AN_OBJECT = edits_its_reply(
    "ship", 'reply = {"ok": False, "status": "rejected", "rule": ["x"], "reason": {"not": "a string"}}'
)

# Passes the screen: module-level code may use torch as it likes, and torch.save writes a file.
# The oracle creates the input slab in the attempt folder at the first call, after the
# candidate's import; a file already there made that creation raise in the oracle.
PLANTS_THE_INPUT_SLAB = (
    SCALED_EXP_KERNEL
    + """
torch.save(torch.zeros(1), "inputs.slab")
torch.save(torch.zeros(1), "outputs.slab")
"""
    + SCALED_EXP_MODEL
)

# Describes its one output a thousand times over: each descriptor lies within the output slab, so
# each alone is valid, and the oracle allocated a slab's worth per descriptor (1 GB here, and
# ~100,000 of them fit a reply) before the count of outputs was ever compared.
DESCRIBES_ITS_OUTPUT_A_THOUSAND_TIMES = edits_its_reply(
    "ship", 'reply["outputs"] = [dict(reply["outputs"][0], storage_bytes=self.outputs_slab.capacity)] * 1000'
)

CLOCK_CHEATS = [
    ProtocolCheat(
        "reports_nan_time",
        "forged times",
        "scaled_exp",
        REPORTS_NAN_TIME,
        "rejected",
        "timer_mismatch",
        reason_start="the runner reported",
    ),
    ProtocolCheat(
        "forges_clock_when_timed",
        "forged times",
        "scaled_exp",
        FORGES_CLOCK_WHEN_TIMED,
        "rejected",
        "timer_mismatch",
        reason_start="timed calls:",
    ),
    ProtocolCheat(
        "precomputes_after_key_when_timed",
        "forged times",
        "scaled_exp",
        PRECOMPUTES_AFTER_KEY_WHEN_TIMED,
        "rejected",
        "timer_mismatch",
        reason_start="timed calls: unmasking the inputs",
    ),
    ProtocolCheat(
        "rotates_hidden_work",
        "forged times",
        "scaled_exp",
        ROTATES_HIDDEN_WORK,
        "rejected",
        "timer_mismatch",
        reason_start="the steps between the key and the digest took",
    ),
    ProtocolCheat(
        "floods_the_channel",
        "oracle survival",
        "scaled_exp",
        FLOODS_THE_CHANNEL,
        "runtime_error",
        reason_start="candidate process broke the result protocol: a reply longer than",
    ),
    ProtocolCheat(
        "nests_a_reply",
        "oracle survival",
        "scaled_exp",
        NESTS_A_REPLY,
        "runtime_error",
        reason_start="candidate process broke the result protocol",
    ),
    ProtocolCheat(
        "describes_its_output_a_thousand_times",
        "oracle survival",
        "scaled_exp",
        DESCRIBES_ITS_OUTPUT_A_THOUSAND_TIMES,
        "runtime_error",
        reason_start="the runner's outputs cannot be read: the descriptors claim",
    ),
]

# Passes the screen (no named torch call, no patching): forward launches a stub and returns a
# tuple subclass whose own __iter__ computes the answer with tensor operators. The runner
# unpacked the result with list(), after its clock had stopped and its op recorder had closed:
# the work was neither timed by it nor recorded (found by a third red-team pass; `correct` at
# 1.13 ms, the same operators in forward are `rejected: torch_fallback`).
COMPUTES_IN_ITS_ITER = """
import torch
import torch.nn as nn
import triton
import triton.language as tl

E = 2.718281828459045


@triton.jit
def touch_kernel(out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(out_ptr + offs, 0.0, mask=offs < n)


class Later(tuple):
    def __iter__(self):
        return iter((E ** self.x * 2.0 + self.y,))


class ModelNew(nn.Module):
    def forward(self, x, y):
        out = torch.empty_like(x)
        touch_kernel[(1,)](out, 1, BLOCK=16)
        result = Later((out,))
        result.x, result.y = x, y
        return result
"""

# Honest 100-pass work inside the window, but its runner reports 60% of the call's own wall time:
# inside the rule's slack (on the CPU 50% + 10 ms; on a GPU 10% + 20 µs + three handshake
# spreads), and the reported time was that figure (a third red-team pass: 52.9 ms for 122 ms).
UNDERCUTS_ITS_WINDOW = edits_its_reply(
    "go",
    'reply["own_ms"] = 0.6 * (time.perf_counter() - t0) * 1e3',
    model=_passes_model(100),
    before="t0 = time.perf_counter()",
)
