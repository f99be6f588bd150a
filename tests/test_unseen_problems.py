"""KernelBench-format problems the verifier had not seen, each with an honest Triton candidate
(must be `correct`) and one slightly wrong (must not be). Each case here once got a wrong
verdict or an unclear one; the problems are in tests/problems/."""

from __future__ import annotations

from pathlib import Path

import torch

from kernelscale.problems import load_problem
from kernelscale.verify.slab import MappedSlab, OracleSlab

PROBLEMS = Path(__file__).parent / "problems"

ELEMENTWISE = """
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def kernel(x_ptr, o_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = offs < n
    x = tl.load(x_ptr + offs, mask=m)
    tl.store(o_ptr + offs, EXPR, mask=m)


class ModelNew(nn.Module):
    def forward(self, x):
        x = x.contiguous()
        out = torch.empty_like(x)
        n = x.numel()
        kernel[(triton.cdiv(n, 256),)](x, out, n, BLOCK=256)
        return RETURNED
"""

BOOL_MASK = """
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def mask_kernel(x_ptr, y_ptr, o_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = offs < n
    x = tl.load(x_ptr + offs, mask=m)
    y = tl.load(y_ptr + offs, mask=m)
    tl.store(o_ptr + offs, MASK, mask=m)


class ModelNew(nn.Module):
    def forward(self, x, y):
        out = torch.empty(x.shape, dtype=torch.bool, device=x.device)
        n = x.numel()
        mask_kernel[(triton.cdiv(n, 256),)](x, y, out, n, BLOCK=256)
        return out
"""

# tanh written out: exp(-2|x|) never overflows
TANH = "tl.where(x < 0, -1.0, 1.0) * (1.0 - tl.exp(-2.0 * tl.abs(x))) / (1.0 + tl.exp(-2.0 * tl.abs(x)))"


def _elementwise(expr: str, returned: str = "out") -> str:
    return ELEMENTWISE.replace("EXPR", expr).replace("RETURNED", returned)


def test_a_bool_output_is_compared_not_refused_as_late(cpu_pool):
    """A bool output made every verdict `rejected: late_outputs`, honest or not: the trusted
    calibration runner returns `torch.empty` outputs, whose bool bytes may be any value, and the
    slab moved them as bools, which turns every nonzero byte into 1, so the shipped outputs no
    longer had the digest the runner committed to. The slab now moves bytes."""
    problem = load_problem(PROBLEMS / "bool_mask.py")
    honest = cpu_pool.verify(problem, BOOL_MASK.replace("MASK", "(x > y) & (x > 0)"))
    assert honest.status == "correct", honest.headline()
    wrong = cpu_pool.verify(problem, BOOL_MASK.replace("MASK", "x > y"))
    assert wrong.status == "incorrect" and "bool outputs must match exactly" in wrong.reason


def test_the_slab_moves_bool_bytes_as_they_lie(tmp_path):
    """Bytes other than 0 and 1 in a bool tensor arrive as they were sent: the digest the runner
    commits to is of those bytes."""
    oracle_side = OracleSlab(tmp_path / "out.slab", 4096, writable_by_others=True)
    runner_side = MappedSlab(tmp_path / "out.slab", oracle_side.capacity)
    sent = torch.tensor([0, 1, 2, 255, 7], dtype=torch.uint8).view(torch.bool)
    got = oracle_side.read(runner_side.write([sent]))[0]
    assert got.dtype == torch.bool and got.view(torch.uint8).tolist() == [0, 1, 2, 255, 7]
    back = runner_side.read(oracle_side.write([sent]))[0]
    assert back.view(torch.uint8).tolist() == [0, 1, 2, 255, 7]


def test_an_in_place_reference_does_not_change_the_second_calls_inputs(cpu_pool):
    """The first trial calls the candidate twice on one input set, with the reference in between:
    a reference that works in place (`x.mul_(2).add_(1)`) changed that set, so the second call
    got other inputs than the reference had, and an honest kernel was `incorrect` at
    "trial 1, second call". A candidate that mirrors the reference and writes into its input is
    refused with a reason that says so: inputs are the verifier's, outputs are compared."""
    problem = load_problem(PROBLEMS / "inplace_affine.py")
    honest = cpu_pool.verify(problem, _elementwise("x * 2.0 + 1.0"))
    assert honest.status == "correct", honest.headline()
    wrong = cpu_pool.verify(problem, _elementwise("x * 2.0 + 1.01"))
    assert wrong.status == "incorrect" and wrong.failing_trial == "trial 1"
    mirrors = cpu_pool.verify(
        problem, _elementwise("x * 2.0 + 1.0").replace("out = torch.empty_like(x)", "out = x")
    )
    assert mirrors.status == "rejected" and "shares memory with input 0" in mirrors.reason


def test_outputs_the_reference_returns_as_one_tensor_may_be_one_tensor(cpu_pool):
    """`y = tanh(x); return y, y`: a candidate returning its one output twice did the
    reference's work and was `rejected: aliasing` (output 0 shares memory with output 1). Where
    the reference's outputs are one tensor, the candidate's may be the same tensor (the same
    view); any other sharing between outputs is still refused."""
    problem = load_problem(PROBLEMS / "tanh_twice.py")
    honest = cpu_pool.verify(problem, _elementwise(TANH, "out, out"))
    assert honest.status == "correct", honest.headline()
    wrong = cpu_pool.verify(problem, _elementwise(TANH + " * 1.01", "out, out"))
    assert wrong.status == "incorrect"
    other_view = cpu_pool.verify(problem, _elementwise(TANH, "out, out.view(-1)[:]"))
    assert other_view.status == "correct", other_view.headline()  # same shape, strides and address
    two_views = cpu_pool.verify(problem, _elementwise(TANH, "out, out[1:]"))
    assert two_views.status == "rejected" and "shares memory with output" in two_views.reason


def test_outputs_the_reference_keeps_apart_must_stay_apart(cpu_pool, tmp_path):
    """The allowance above is the reference's own structure: two outputs equal in value on every
    draw but separate in the reference must still be separate memory."""
    path = tmp_path / "tanh_and_copy.py"
    path.write_text((PROBLEMS / "tanh_twice.py").read_text().replace("return y, y", "return y, y.clone()"))
    verdict = cpu_pool.verify(load_problem(path), _elementwise(TANH, "out, out"))
    assert verdict.status == "rejected" and "output 0 shares memory with output 1" in verdict.reason
