"""The comparison rules on hand-made outputs (no processes): tolerance, ulp slack, degenerate outputs."""

from __future__ import annotations

import torch

from kernelscale.verify.compare import compare_outputs


def test_bf16_output_one_rounding_step_off_passes_but_a_real_error_fails():
    want = torch.full((64,), 4.5, dtype=torch.bfloat16)
    want[0] = -2.25
    two_ulps = want.clone()
    two_ulps[1] = 4.5 + 2 * 2.0**-5  # two bf16 steps at 4.5: 0.0625 > atol + rtol*4.5
    assert compare_outputs([two_ulps], [want], 1e-2)[0] is None
    wrong = want.clone()
    wrong[1] = 4.75
    mismatch, _ = compare_outputs([wrong], [want], 1e-2)
    assert mismatch is not None and mismatch.worst_index == [1]


def test_fp32_gets_no_ulp_slack():
    want = torch.linspace(-3, 3, 128)
    off = want.clone()
    off[7] += 2e-4 + 2e-4 * abs(float(want[7]))  # just outside atol=rtol=1e-4
    mismatch, stats = compare_outputs([off], [want], 1e-4)
    assert mismatch is not None and stats["max_abs_error"] > 1e-4


def test_zero_and_constant_outputs_are_named():
    want = torch.randn(32, 32) * 1e-5  # an absolute tolerance alone would pass zeros here
    assert "all zeros" in compare_outputs([torch.zeros_like(want)], [want], 1e-4)[0].reason
    assert "constant" in compare_outputs([torch.full_like(want, 1e-6)], [want], 1e-4)[0].reason


def test_shape_dtype_and_subclass_checks():
    want = torch.ones(4, 4)
    assert "shape" in compare_outputs([torch.ones(4, 5)], [want], 1e-4)[0].reason
    assert "dtype" in compare_outputs([torch.ones(4, 4, dtype=torch.float64)], [want], 1e-4)[0].reason

    class Sub(torch.Tensor):
        pass

    assert (
        "not exactly torch.Tensor"
        in compare_outputs([torch.ones(4, 4).as_subclass(Sub)], [want], 1e-4)[0].reason
    )
    assert "NaN" in compare_outputs([torch.full((4, 4), float("nan"))], [want], 1e-4)[0].reason
