"""Masked inputs and committed outputs: the candidate holds no usable data outside its timed call.

The oracle ships every input set XOR-ed bit for bit with a pad drawn from a secret key, and
sends the key only in a short step of its own just before `go`, so nothing can be computed
from the inputs while they are being staged (a loose-bounded step: copies of up to hundreds of
MB). Right after `done` and its probe, the oracle sends a second fresh key and the runner
answers with a keyed digest of its outputs; the oracle recomputes the digest over the outputs
it is then shipped, so outputs still being finished after `done` no longer match. Both steps
are timed by the oracle and held to a trusted runner's (timing_rounds): what they cost is one
pass over the inputs and one over the outputs, so the room they leave is small and fixed.

Pads on a GPU come from Philox (`tl.randint`), keyed by the element's index, so every launch
configuration and both processes draw the same pad; on the CPU from torch's generator (CPU
runs are interpreter runs whose times rank nothing). Digests are integer sums modulo 2**64 of
each element's bits times a keyed weight: exact in any summation order, so a Triton kernel in
the runner and torch in the oracle agree to the bit.
"""

from __future__ import annotations

from typing import Any

import torch

WEIGHTS = 4096  # keyed digest weights, cycled over the output (a power of two)
# Element i's weight in lane l is table[l, i mod WEIGHTS] XOR runs[l, i // WEIGHTS]: a table
# cycled alone gave elements i and i + WEIGHTS one weight, whatever the key, so an output permuted
# within those classes (each column of a matrix WEIGHTS wide, sorted) kept the digest committed
# before the permutation (`sorts_after_its_commit`); the per-run word gives every element of a
# class its own weight, and XOR, not a sum, leaves no key-independent pattern of changes that
# cancels (a sum would cancel +1/-1/-1/+1 across two classes and two runs).
# Independent 64-bit lanes per digest. The runner learns the key when it is asked for the digest,
# and the digest is linear in the bits: with one lane, Wagner's generalized birthday finds ±1-ulp
# changes on ~200 elements that give finished outputs the digest committed to before finishing
# them (15 ms of numpy; tests/hostile_digest.py). Eight lanes (512 bits) leave only lattice
# reduction in ~130 dimensions (seconds), far beyond any step's bound; the honest cost is eight
# multiply-adds per element in the same single pass.
LANES = 8
_BITS = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
_GOLDEN = 0x9E3779B97F4A7C15
_SEED_MASK = (1 << 62) - 1


def derive(key: int, index: int) -> int:
    """One key per tensor, so that two inputs never share a pad."""
    return ((key + (index + 1) * _GOLDEN) * 0xBF58476D1CE4E5B9) & _SEED_MASK


def masked_copy(values: list[Any], key: int) -> list[Any]:
    """The oracle's side: copies of the input set with every tensor's bits XOR-ed with its pad."""
    out = []
    for i, x in enumerate(values):
        if isinstance(x, torch.Tensor) and x.numel():
            x = x.clone()
            xor_pad_(x, derive(key, i))
        out.append(x)
    return out


def unmask_(values: list[Any], key: int) -> None:
    """The runner's side, in place: XOR with the same pads again gives the inputs back."""
    for i, x in enumerate(values):
        if isinstance(x, torch.Tensor) and x.numel():
            xor_pad_(x, derive(key, i))


def xor_pad_(t: torch.Tensor, key: int) -> None:
    """XOR t's bits with the pad keyed by `key`, element by element in logical order (so the
    result does not depend on t's strides). Bool tensors get one-bit pads: they stay bools."""
    bits = bits_of(t)
    one_bit = t.dtype == torch.bool
    if t.is_cuda:
        if t.is_contiguous():
            _philox_xor(bits.view(-1), key, one_bit)
            return
        pad = torch.zeros(bits.shape, dtype=bits.dtype, device=t.device)
        _philox_xor(pad.view(-1), key, one_bit)
    else:
        pad = _torch_pad(tuple(bits.shape), bits.dtype, key)
        if one_bit:
            pad &= 1
    bits.bitwise_xor_(pad)


def digests(values: list[Any], key: int, kernels: bool = True) -> list[list[int] | None]:
    """A keyed digest per tensor output (None for anything else): per lane l, Σ bits_i ·
    w_l(i) modulo 2**64 (`lane_weights`). The runner uses the Triton kernel on a GPU (`kernels`);
    the oracle recomputes in torch."""
    found = []
    for i, x in enumerate(values):
        if not isinstance(x, torch.Tensor):
            found.append(None)
            continue
        bits = bits_of(x.detach()).contiguous().view(-1)
        if bits.element_size() == 8:
            # As two 32-bit words: a 64-bit element's top bit (a double's sign) enters the sum
            # as a multiple of 2**63, which only each weight's lowest bit binds, so a runner
            # that knows the key could flip the signs of any elements whose weights' low bits
            # cancel in every lane (two of any 257) and keep the digest.
            bits = bits.view(torch.int32)
        weights = _weights(derive(key, i), bits.numel(), x.device)
        if kernels and bits.is_cuda and bits.numel():
            found.append(_triton_digest(bits, weights))
        else:
            found.append(_torch_digest(bits, weights))
    return found


def torch_digests(values: list[Any], key: int) -> list[list[int] | None]:
    """The oracle's recomputation, in plain torch (the same integers as `digests`)."""
    return digests(values, key, kernels=False)


def same_bits(a: Any, b: torch.Tensor) -> bool:
    """`a` is a tensor of b's shape and dtype holding exactly b's bits (NaN payloads included)."""
    if not isinstance(a, torch.Tensor) or a.shape != b.shape or a.dtype != b.dtype:
        return False
    return bool(torch.equal(bits_of(a), bits_of(b)))


def bits_of(t: torch.Tensor) -> torch.Tensor:
    if t.is_complex():
        t = torch.view_as_real(t)
    return t.view(_BITS[t.element_size()])


def _torch_pad(shape: tuple, dtype: torch.dtype, key: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(key)
    info = torch.iinfo(dtype)
    return torch.randint(info.min, info.max, shape, dtype=dtype, generator=generator)


def _weights(key: int, n: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """The table (LANES, WEIGHTS) and one word per lane and run of WEIGHTS elements (LANES,
    runs), drawn on the CPU (the same numbers everywhere), then moved: 256 KB plus 64 bytes per
    4096 elements."""
    generator = torch.Generator().manual_seed(key)
    info = torch.iinfo(torch.int64)
    runs = max(1, -(-n // WEIGHTS))
    table = torch.randint(info.min, info.max, (LANES, WEIGHTS), dtype=torch.int64, generator=generator)
    words = torch.randint(info.min, info.max, (LANES, runs), dtype=torch.int64, generator=generator)
    return table.to(device), words.to(device)


def lane_weights(
    weights: tuple[torch.Tensor, torch.Tensor], lane: int, position: torch.Tensor
) -> torch.Tensor:
    """The weights of the elements at `position` in one lane (the Triton kernel's formula too)."""
    table, runs = weights
    return table[lane][position & (WEIGHTS - 1)] ^ runs[lane][position // WEIGHTS]


def _torch_digest(
    flat: torch.Tensor, weights: tuple[torch.Tensor, torch.Tensor], chunk: int = 1 << 22
) -> list[int]:
    total = torch.zeros(LANES, dtype=torch.int64, device=flat.device)
    for start in range(0, flat.numel(), chunk):
        part = flat[start : start + chunk].to(torch.int64)
        position = torch.arange(start, start + part.numel(), device=flat.device)
        for lane in range(LANES):  # one lane at a time: LANES x a chunk would not fit a cache
            total[lane] += (part * lane_weights(weights, lane, position)).sum()
    return [int(v) for v in total]


def _philox_xor(flat: torch.Tensor, key: int, one_bit: bool) -> None:
    from kernelscale.verify import masking_kernels

    masking_kernels.xor_pad(flat, key, one_bit)


def _triton_digest(flat: torch.Tensor, weights: torch.Tensor) -> list[int]:
    from kernelscale.verify import masking_kernels

    return masking_kernels.digest(flat, *weights, WEIGHTS)
