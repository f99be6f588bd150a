"""Masked inputs and committed outputs (verify/masking.py), checked from outside the runner.

The end-to-end proof is in hostile_protocol.py (work done on staged inputs is garbage, work done
after `done` breaks the commitment, work moved into the key or commit step is timed there);
here the pieces the oracle relies on: a mask hides the data and comes off exactly, the pad does
not depend on strides or on which process draws it, and the runner's Triton digest and the
oracle's torch digest are the same integers.
"""

from __future__ import annotations

import os

os.environ["TRITON_INTERPRET"] = "1"  # before triton is first imported by this process

import pytest  # noqa: E402
import torch  # noqa: E402

from kernelscale.verify import masking, masking_kernels  # noqa: E402
from kernelscale.verify.inputs import fingerprint  # noqa: E402

DTYPES = [torch.float32, torch.bfloat16, torch.float16, torch.float64, torch.int64, torch.int32]
DTYPES += [torch.uint8, torch.bool, torch.complex64]


def _sample(dtype: torch.dtype, shape=(33, 70)) -> torch.Tensor:
    x = torch.randn(shape, dtype=torch.float64) * 7
    if dtype == torch.complex64:
        return torch.complex(x.float(), -x.float())
    return x.to(dtype)


def _bits(t):
    return masking.bits_of(t)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_a_mask_hides_the_values_and_comes_off_exactly(dtype):
    x = _sample(dtype)
    values = [x, 3, "text", x.t()]  # a view with other strides, and plain values
    masked = masking.masked_copy(values, key=1234)
    assert masked[1:3] == [3, "text"]
    changed = (_bits(masked[0]) != _bits(x)).float().mean().item()
    assert changed > (0.4 if dtype == torch.bool else 0.95)
    assert masked[3].stride() == x.t().stride()
    masking.unmask_(masked, key=1234)
    assert torch.equal(_bits(masked[0]), _bits(x)) and torch.equal(_bits(masked[3]), _bits(x.t()))
    if dtype == torch.bool:
        assert set(masked[0].view(torch.uint8).unique().tolist()) <= {0, 1}


def test_a_wrong_key_leaves_garbage_and_two_inputs_get_different_pads():
    x = torch.randn(64, 64)
    masked = masking.masked_copy([x, x], key=7)
    assert not torch.equal(_bits(masked[0]), _bits(masked[1]))
    masking.unmask_(masked, key=8)
    assert (_bits(masked[0]) != _bits(x)).float().mean().item() > 0.95


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.int64, torch.bool], ids=str)
def test_the_philox_pad_does_not_depend_on_strides(dtype):
    """On a GPU the oracle and the runner may hold the same values with other strides."""
    x = _sample(dtype)
    contiguous = x.clone()
    masking_kernels.xor_pad(_bits(contiguous).view(-1), 99, dtype == torch.bool)
    strided = x.t().contiguous().t()  # same values, column-major
    assert not strided.is_contiguous()
    pad = torch.zeros(strided.shape, dtype=_bits(strided).dtype)
    masking_kernels.xor_pad(pad.view(-1), 99, dtype == torch.bool)
    _bits(strided).bitwise_xor_(pad)
    assert torch.equal(_bits(contiguous), _bits(strided))
    assert (_bits(contiguous) != _bits(x)).any()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.int64, torch.uint8], ids=str)
def test_the_runners_triton_digest_equals_the_oracles_torch_digest(dtype):
    x = _sample(dtype, (257, 129))  # not a multiple of the block or of the weights
    flat = _bits(x).contiguous().view(-1)
    weights = masking._weights(masking.derive(5, 0), flat.numel(), "cpu")
    assert masking_kernels.digest(flat, *weights, masking.WEIGHTS) == masking._torch_digest(flat, weights)
    assert masking._torch_digest(flat, weights, chunk=1000) == masking._torch_digest(flat, weights)


def test_a_digest_sees_one_changed_element_and_depends_on_the_key():
    out = torch.randn(100, 100)
    before = masking.torch_digests([out, 2.5], key=11)
    assert before[1] is None
    changed = out.clone()
    changed[57, 3] = torch.nextafter(changed[57, 3], torch.tensor(10.0))
    assert masking.torch_digests([changed, 2.5], key=11) != before
    assert masking.torch_digests([out, 2.5], key=12) != before
    assert masking.torch_digests([out.t().contiguous().t(), 2.5], key=11) == before  # values, not layout


def test_elements_a_table_period_apart_weigh_differently():
    """Each column of a matrix 4096 wide sorted: with the table cycled alone, every element of a
    column had one weight and the sorted matrix the digest of the unsorted one, for any key."""
    x = torch.randn(8, masking.WEIGHTS)
    assert masking.torch_digests([x.sort(dim=0).values], key=7) != masking.torch_digests([x], key=7)
    swapped = x.clone().view(-1)
    swapped[[5, 5 + masking.WEIGHTS]] = swapped[[5 + masking.WEIGHTS, 5]]
    assert masking.torch_digests([swapped], key=8) != masking.torch_digests([x], key=8)


def test_a_runner_that_knows_the_key_cannot_flip_the_signs_of_doubles():
    """Two elements whose weights have the same lowest bit in every lane (among 257 there are
    two): with 64-bit words, flipping both signs moved each lane by 2**63 times an even sum."""
    x = torch.randn(2 * masking.WEIGHTS, dtype=torch.float64)
    key = 77
    weights = masking._weights(masking.derive(key, 0), x.numel(), "cpu")
    position = torch.arange(x.numel())
    low = torch.stack([masking.lane_weights(weights, lane, position) & 1 for lane in range(masking.LANES)])
    seen: dict = {}
    for i, signature in enumerate(map(tuple, low.T.tolist())):
        if signature in seen:
            break
        seen[signature] = i
    flipped = x.clone()
    flipped[[seen[signature], i]] *= -1
    assert masking.torch_digests([flipped], key) != masking.torch_digests([x], key)


def test_the_fingerprint_of_masked_inputs_is_stable_where_values_are_nan():
    masked = masking.masked_copy([torch.randn(1000)], key=3)
    assert fingerprint(masked) == fingerprint([masked[0].clone()])


def test_a_digest_has_independent_lanes_and_one_ulp_moves_every_one():
    """A runner knows the key once asked: one 64-bit lane can be forged by a generalized birthday
    search (tests/hostile_digest.py); each lane must move on its own."""
    out = torch.randn(64, 64)
    (before,) = masking.torch_digests([out], key=3)
    assert len(before) == masking.LANES and len(set(before)) == masking.LANES
    changed = out.clone()
    changed[5, 7] = torch.nextafter(changed[5, 7], torch.tensor(10.0))
    (after,) = masking.torch_digests([changed], key=3)
    assert all(a != b for a, b in zip(after, before))
