"""A hostile candidate against the output commitment (masking.py's keyed digest).

The digest the runner commits to right after `done` is a keyed sum of the outputs' bits, and
the runner learns the key when it is asked for the digest. It is linear in the bits: knowing the
weights, a runner can move ±1 unit in the last place on about a hundred elements (well inside any
tolerance) so that finished outputs have the digest it committed to before finishing them.
Wagner's generalized birthday (a k-tree over 32 lists) finds such a change for a 64-bit sum in
~15 ms of numpy on a 2-core CPU. Verified with the screen off; asserted from
the oracle's verdict (tests/test_hostile_protocol.py).
"""

from __future__ import annotations

from hostile_protocol import RUNNER_HOOKS, SCALED_EXP_KERNEL, SCALED_EXP_MODEL, ProtocolCheat

COLLIDE = """
# Wagner's k-tree over one 64-bit lane: +-1 on the integer bits of 224 elements (32 groups of 7)
# so that the lane's keyed sum moves by exactly `target` (mod 2**64).
import itertools

import numpy as np

_CHOICES = np.array(list(itertools.product((-1, 0, 1), repeat=7)), dtype=np.int64)
_MASK64 = (1 << 64) - 1


def _merge(left, right, lo, hi):
    # pairs whose sum has bits [lo, hi) zero (lower bits are zero already)
    (a, _), (b, _) = left, right
    m = np.uint64(((1 << hi) - 1) if hi < 64 else _MASK64)
    ka = a & m
    kb = (np.uint64(0) - b) & m
    oa, ob = np.argsort(ka), np.argsort(kb)
    ka, kb = ka[oa], kb[ob]
    start = np.searchsorted(kb, ka, "left")
    counts = np.searchsorted(kb, ka, "right") - start
    hits = counts > 0
    ia, start, counts = oa[hits], start[hits], counts[hits]
    ja = np.repeat(ia, counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    ib = ob[np.repeat(start, counts) + offsets]
    return a[ja] + b[ib], (left, right, ja, ib)


def _leaves(tree, index):
    if isinstance(tree, int):
        return [(tree, index)]
    left, right, ia, ib = tree
    return _leaves(left[1], int(ia[index])) + _leaves(right[1], int(ib[index]))


def deltas(weights, target, n):
    # {element: +-1} over elements 0..n-1 (weights[element] its lane weight), or None
    groups = [np.arange(g * 7, g * 7 + 7) for g in range(32)]
    if groups[-1][-1] >= n:
        return None
    lists = []
    for g, idx in enumerate(groups):
        w = weights[idx].astype(np.uint64)
        sums = (_CHOICES.astype(np.uint64) * w[None, :]).sum(axis=1, dtype=np.uint64)
        if g == 0:
            sums = sums - np.uint64(target & _MASK64)
        lists.append((sums, g))
    bounds = [(0, 11), (11, 22), (22, 33), (33, 44), (44, 64)]
    for lo, hi in bounds:
        lists = [_merge(lists[i], lists[i + 1], lo, hi) for i in range(0, len(lists), 2)]
    (final, tree), = lists
    if not len(final):
        return None
    found = {}
    for g, row in _leaves(tree, 0):
        for k, d in zip(groups[g], _CHOICES[row]):
            if d:
                found[int(k)] = int(d)
    return found
"""

# Answers `done` at once with an unfinished output, commits to that, and only then does the
# work (while the outputs ship), changing a hundred elements by one ulp so that the digest of
# the finished outputs equals the one it committed to. Every lane of the digest is forged with
# what it can solve: a single 64-bit lane entirely, a wider digest only in its first lane.
COLLIDES_WITH_ITS_COMMIT = (
    SCALED_EXP_KERNEL
    + RUNNER_HOOKS
    + COLLIDE
    + """
import torch
from kernelscale.verify import masking

_honest_ship = _runner.Runner.ship
_honest_commit = _runner.Runner.commit
_state = {}


def _lanes(found):
    return list(found) if isinstance(found, (list, tuple)) else [found]


def _done_at_once(self):
    return torch.empty_like(self.buffers[0]), 0.001, set()


def _commit_and_remember(self, msg):
    reply = _honest_commit(self, msg)
    _state["key"], _state["digest"] = int(msg["key"]), _lanes(reply["digests"][0])
    return reply


def _ship_after_work(self, msg):
    out = self.pending[0][0]
    out.copy_(scaled_exp(*self.buffers))  # the work, after `done` and after the commit
    key = _state["key"]
    now = _lanes(masking.digests([out], key)[0])
    target = (_state["digest"][0] - now[0]) % 2**64
    flat = out.view(-1).view(torch.int32)
    n = flat.numel()
    weights = masking._weights(masking.derive(key, 0), n, "cpu")
    lane = masking.lane_weights(weights, 0, torch.arange(n)).numpy()
    change = deltas(lane, target, n) if target else {}
    for k, d in (change or {}).items():
        flat[k] += d
    return _honest_ship(self, msg)


_runner.Runner._timed_call = _done_at_once
_runner.Runner.commit = _commit_and_remember
_runner.Runner.ship = _ship_after_work
"""
    + SCALED_EXP_MODEL
)

# Each column of a 4096-wide matrix sorted (tests/problems/sort_columns.py): the window holds only
# a copy of the input, committed to as it is; the columns are sorted after the commit, while the
# outputs ship. With the digest's weight table cycled every 4096 elements, each column had one
# weight, so any reordering within a column kept the committed digest, whatever its key.
SORTS_AFTER_ITS_COMMIT = (
    RUNNER_HOOKS
    + """
import torch
import torch.nn as nn
import triton
import triton.language as tl

_honest_ship = _runner.Runner.ship


@triton.jit
def copy_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=offs < n), mask=offs < n)


def _ship_after_sorting(self, msg):
    out = self.pending[0][0]
    out.copy_(out.sort(dim=0).values)  # the work, after `done` and after the commit
    return _honest_ship(self, msg)


_runner.Runner.ship = _ship_after_sorting


class ModelNew(nn.Module):
    def forward(self, x):
        out = torch.empty_like(x)
        copy_kernel[(triton.cdiv(x.numel(), 1024),)](x, out, x.numel(), BLOCK=1024)
        return out
"""
)

# sorts_after_its_commit's honest twin: each element's rank in its column is the row it goes to.
HONEST_SORT_COLUMNS = """
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def sort_columns_kernel(x_ptr, out_ptr, N, M: tl.constexpr, BLOCK: tl.constexpr):
    cols = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    rows = tl.arange(0, M)
    column = tl.load(x_ptr + cols[:, None] + rows[None, :] * N)  # (BLOCK, M)
    for r in tl.static_range(M):
        x = tl.load(x_ptr + r * N + cols)
        before = (column < x[:, None]) | ((column == x[:, None]) & (rows[None, :] < r))
        rank = tl.sum(before.to(tl.int32), axis=1)
        tl.store(out_ptr + rank * N + cols, x)


class ModelNew(nn.Module):
    def forward(self, x):
        out = torch.empty_like(x)
        sort_columns_kernel[(triton.cdiv(x.shape[1], 512),)](x, out, x.shape[1], M=x.shape[0], BLOCK=512)
        return out
"""

# An integer output held to a float tolerance: the tolerance follows the bf16 input, so an index
# of 100 or more may be off by one (atol 0.01 + rtol 0.01 x 100 >= 1). This kernel is exact for
# indices under 128 and one too high for the rest.
ARGMAX_OFF_BY_ONE = """
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def argmax_kernel(x_ptr, out_ptr, N: tl.constexpr):
    row = tl.program_id(0)
    x = tl.load(x_ptr + row * N + tl.arange(0, N)).to(tl.float32)
    index = tl.argmax(x, axis=0)
    tl.store(out_ptr + row, index + (index >= 128).to(index.dtype))


class ModelNew(nn.Module):
    def forward(self, x):
        out = torch.empty(x.shape[0], dtype=torch.int64, device=x.device)
        argmax_kernel[(x.shape[0],)](x, out, N=x.shape[1])
        return out
"""

# Two outputs, bf16 and fp32: the tolerance was the first floating output's (bf16, 1e-2) for
# both, so the fp32 output could be rounded to bf16 (relative error up to 2**-9).
FP32_OUTPUT_IN_BF16 = """
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def two_kernel(x_ptr, half_ptr, exp_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    tl.store(half_ptr + offs, (x * 2.0).to(tl.bfloat16), mask=mask)
    rough = tl.exp(x).to(tl.bfloat16).to(tl.float32)
    tl.store(exp_ptr + offs, rough, mask=mask)


class ModelNew(nn.Module):
    def forward(self, x):
        half = torch.empty(x.shape, dtype=torch.bfloat16, device=x.device)
        out = torch.empty_like(x)
        two_kernel[(triton.cdiv(x.numel(), 256),)](x, half, out, x.numel(), BLOCK=256)
        return half, out
"""

DIGEST_CHEATS = [
    ProtocolCheat(
        "collides_with_its_commit",
        "forged times",
        "scaled_exp",
        COLLIDES_WITH_ITS_COMMIT,
        "rejected",
        "late_outputs",
    ),
    ProtocolCheat(
        "sorts_after_its_commit",
        "forged times",
        "sort_columns",
        SORTS_AFTER_ITS_COMMIT,
        "rejected",
        "late_outputs",
    ),
    ProtocolCheat(
        "argmax_off_by_one",
        "comparison floor",
        "argmax_rows",
        ARGMAX_OFF_BY_ONE,
        "incorrect",
    ),
    ProtocolCheat(
        "fp32_output_in_bf16",
        "comparison floor",
        "two_dtypes",
        FP32_OUTPUT_IN_BF16,
        "incorrect",
    ),
]
