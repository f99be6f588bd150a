"""The comparison rules on hand-made outputs (no processes): tolerance, ulp slack, degenerate outputs."""

from __future__ import annotations

import pytest
import torch

from kernelscale.verify.compare import atol_scales, compare_outputs, output_rms


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


def _tiled_matmul(factor: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """An honest fp32 matmul the way a tiled kernel sums (exact 64-wide tiles, accumulated in
    fp32) against the float64 product rounded once: its error is pure accumulation rounding."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(256, 1024, generator=g) * factor
    b = torch.randn(1024, 256, generator=g) * factor
    want = (a.double() @ b.double()).float()
    got = torch.zeros(256, 256)
    for k in range(0, 1024, 64):
        got += (a[:, k : k + 64].double() @ b[k : k + 64].double()).float()
    return got, want


def test_honest_matmul_on_large_inputs_passes_with_the_scaled_floor_only():
    # The H200 false rejection in miniature: x16 inputs make the outputs ~256x larger, and the
    # rounding error of near-zero outputs exceeds atol=1e-4 set for plain draws.
    got_plain, want_plain = _tiled_matmul(1.0, seed=0)
    assert compare_outputs([got_plain], [want_plain], 1e-4)[0] is None
    got, want = _tiled_matmul(16.0, seed=1)
    scales = atol_scales([want], output_rms([want_plain]))
    assert 200 < scales[0] < 320
    unscaled = compare_outputs([got], [want], 1e-4)[0]
    assert unscaled is not None and "elements outside atol=rtol=0.0001" in unscaled.reason
    assert compare_outputs([got], [want], 1e-4, scales)[0] is None


def test_atol_scales_never_shrink_and_ignore_what_has_no_plain_rms():
    plain = output_rms([torch.ones(8), torch.zeros(8), torch.arange(8), 3])
    assert plain[2:] == [0.0, 0.0]  # integer tensor and scalar: no RMS
    now = [torch.full((8,), 4.0), torch.ones(8), torch.arange(8) * 5, 3]
    assert atol_scales(now, plain) == [4.0, 1.0, 1.0, 1.0]
    assert atol_scales([torch.full((8,), 0.5)], plain) == [1.0]  # smaller outputs: scale 1
    assert atol_scales(now, []) == [1.0] * 4  # no plain trial seen
    inf = torch.tensor([float("inf"), 3.0, 4.0])
    assert output_rms([inf]) == [pytest.approx((12.5) ** 0.5)]  # finite entries only


@pytest.mark.parametrize("scale", [16.0, 256.0])
@pytest.mark.parametrize("cheat", ["grid", "zeroed"])
def test_scaled_floor_never_rescues_a_softmax_gamed_under_it(scale, cheat):
    g = torch.Generator().manual_seed(0)
    want = torch.softmax(torch.randn(64, 4096, generator=g) * 4, dim=-1)
    floor = 1e-4 * scale
    if cheat == "grid":
        step = 2 * floor * 0.999
        got = torch.round(want / step) * step
    else:
        got = torch.where(want < floor, 0.0, want)
    assert ((got - want).abs() <= floor + 1e-4 * want).all()  # within the scaled allclose
    mismatch = compare_outputs([got], [want], 1e-4, [scale])[0]
    assert mismatch is not None and "relative error of the whole output" in mismatch.reason


def test_scaled_floor_never_rescues_zeroed_elements_caught_by_the_share():
    # bf16 tolerance on a x16 trial: the scaled floor (0.16) covers every element below it. A
    # kernel that zeroes the band just above RMS/16 (1.4% of the elements) stays inside that
    # floor and under the whole-output bound; the share of significant elements catches it.
    g = torch.Generator().manual_seed(0)
    want = torch.randn(256, 256, generator=g, dtype=torch.float64)
    band = (want.abs() >= 0.0625) & (want.abs() < 0.08)
    got = torch.where(band, 0.0, want)
    tol, scale = 1e-2, 16.0
    assert ((got - want).abs() <= tol * scale).all()
    assert float((got - want).norm() / want.norm()) < tol
    mismatch = compare_outputs([got], [want], tol, [scale])[0]
    assert mismatch is not None and "significant elements are off" in mismatch.reason


def test_honest_bf16_attention_noise_passes_the_share_check():
    """Averages over many values (attention with P rounded to bf16, as flash kernels do) cancel
    down to small results that keep the rounding of their large terms: measured on an H200,
    1.1% of the significant elements of our compiler's causal kernel were off by more than
    rtol alone. Each element may also be off by tol × RMS; this case fails without that."""
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(8, n, 64, generator=g) * 0.5 for n in (256, 1024, 1024))
    p = torch.softmax((q.double() @ k.double().transpose(1, 2)) / 8, -1)
    want = (p @ v.double()).to(torch.bfloat16)
    got = (p.bfloat16().float() @ v.bfloat16().float()).bfloat16()
    w, err = want.double(), (got.double() - want.double()).abs()
    significant = w.abs() >= float(w.pow(2).mean().sqrt()) / 16
    share_rtol_alone = float((significant & (err > (1e-2 + 2**-8) * w.abs())).sum() / significant.sum())
    assert share_rtol_alone > 0.01  # the rule without the RMS term would reject this kernel
    assert compare_outputs([got], [want], 1e-2)[0] is None


def test_a_tensor_where_the_reference_returns_a_plain_value_is_a_mismatch_not_an_error():
    mismatch, _ = compare_outputs([torch.ones(3)], [3], 1e-4)
    assert mismatch is not None
    assert compare_outputs([3], [3], 1e-4)[0] is None


def test_integer_outputs_must_match_exactly_whatever_the_tolerance():
    want = torch.arange(0, 4096, 16)  # indices, many of them 100 or more
    off = want + (want >= 128).long()  # within atol + rtol x |w| at the bf16 tolerance
    mismatch, _ = compare_outputs([off], [want], 1e-2)
    assert mismatch is not None and "must match exactly" in mismatch.reason
    assert compare_outputs([want.clone()], [want], 1e-2)[0] is None
    flags = torch.rand(64) > 0.5
    assert compare_outputs([~flags], [flags], 1e-2)[0] is not None


def test_a_complex_output_is_compared_in_both_parts():
    want = torch.randn(64, dtype=torch.complex64)
    wrong_imag = torch.complex(want.real, torch.zeros(64))
    assert compare_outputs([wrong_imag], [want], 1e-4)[0] is not None
    assert compare_outputs([want.clone()], [want], 1e-4)[0] is None
