"""Correctness of one candidate output against the reference (runs in the oracle).

Element-wise `allclose` alone can be gamed by its absolute floor: on outputs smaller than atol
(most entries of a softmax over a long row) zeros or a coarse grid pass. So three measures must
pass together: allclose (atol = rtol = tol, one ulp of slack for 16-bit outputs), the relative
error of the whole output ‖out − ref‖ / ‖ref‖ ≤ tol, and the share of significant elements
(|ref| above 1/16 of the output's RMS) off by more than rtol (+ ulp) plus tol × RMS, at most 1%.
On a shifted or rescaled trial the caller may scale atol (only atol) by how much larger the
output's RMS is than on a plain draw: an honest sum's rounding error grows with its magnitude.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

MAX_OFF_SHARE = 0.01  # of significant elements, beyond rtol


@dataclass
class Mismatch:
    reason: str
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    worst_index: list[int] | None = None


def compare_outputs(
    got: list[Any], want: list[Any], tol: float | Sequence[float], atol_scale: Sequence[float] | None = None
) -> tuple[Mismatch | None, dict]:
    """None when every output passes; the error statistics either way (worst over outputs).
    `tol` is one tolerance for all outputs or one per output; `atol_scale[i]` multiplies the
    absolute floor of output i only (default 1.0 each)."""
    if len(got) != len(want):
        return Mismatch(f"returned {len(got)} output(s), the reference returns {len(want)}"), {}
    stats: dict = {"max_abs_error": 0.0, "max_rel_error": 0.0, "norm_rel_error": 0.0}
    for i, (g, w) in enumerate(zip(got, want)):
        label = f"output {i}" if len(want) > 1 else "output"
        scale = atol_scale[i] if atol_scale is not None and i < len(atol_scale) else 1.0
        problem = _check_one(label, g, w, tol if isinstance(tol, (int, float)) else tol[i], stats, scale)
        if problem is not None:
            return problem, stats
    return None, stats


def output_rms(outputs: list[Any]) -> list[float]:
    """The RMS of each floating tensor output over its finite entries; 0.0 for anything else."""
    rms = []
    for o in outputs:
        if not isinstance(o, torch.Tensor) or not o.is_floating_point() or not o.numel():
            rms.append(0.0)
            continue
        x = o.detach().double()
        finite = torch.isfinite(x)
        count = int(finite.sum())
        total = float(torch.where(finite, x, 0.0).pow(2).sum())
        rms.append(math.sqrt(total / count) if count else 0.0)
    return rms


def atol_scales(want: list[Any], plain_rms: list[float]) -> list[float]:
    """Per output, how much larger it is than on a plain draw (never below 1): an honest
    kernel's absolute rounding error grows with the magnitude of what it sums, while atol was
    set for the plain input distribution. 1.0 where there is no plain RMS to compare with."""
    scales = []
    for i, rms in enumerate(output_rms(want)):
        base = plain_rms[i] if i < len(plain_rms) else 0.0
        ratio = rms / base if base > 0 and math.isfinite(base) and math.isfinite(rms) else 1.0
        scales.append(max(1.0, ratio))
    return scales


def _check_one(
    label: str, got: Any, want: Any, tol: float, stats: dict, scale: float = 1.0
) -> Mismatch | None:
    if not isinstance(want, torch.Tensor):
        # A tensor where the reference returns a plain value: `==` would be a tensor, and its
        # truth value an exception here instead of the candidate's mismatch.
        same = not isinstance(got, torch.Tensor) and got == want
        return None if same else Mismatch(f"{label}: {str(got)[:80]} != {want!r}")
    problem = _form(label, got, want)
    if problem:
        return Mismatch(problem)
    if not (want.is_floating_point() or want.is_complex()):
        return _exact(label, got, want, stats)
    # A complex output is compared as its real and imaginary parts (`.double()` would drop one).
    g, w = (_real_view(got).double(), _real_view(want).double())
    problem = _non_finite(g, w)
    if problem:
        return Mismatch(f"{label} {problem[0]}", worst_index=problem[1])
    finite = torch.isfinite(w)
    g, w = torch.where(finite, g, 0.0), torch.where(finite, w, 0.0)
    err = (g - w).abs()
    worst = _first(err == err.max()) if err.numel() else None
    _record(stats, err, w, worst)
    degenerate = _degenerate(got, want)
    if degenerate:
        return Mismatch(f"{label} {degenerate}", stats["max_abs_error"], stats["max_rel_error"], worst)
    slack = tol + _ulp(want.dtype)
    # Only the absolute floor scales: the whole-output and share checks below stay as they are.
    bad = err > tol * scale + slack * w.abs()
    if bad.any():
        index = _first(bad & (err == err[bad].max()))
        bounds = (
            f"atol=rtol={tol:g}" if scale == 1.0 else f"atol={tol * scale:.3g} (x{scale:.3g}), rtol={tol:g}"
        )
        return _mismatch(
            stats,
            index,
            f"{label} mismatch: {int(bad.sum())} of {bad.numel()} elements outside "
            + bounds
            + (f" (+1 ulp of {_name(want.dtype)})" if _ulp(want.dtype) else ""),
        )
    return _whole_output(label, err, w, tol, slack, stats)


def _real_view(t: torch.Tensor) -> torch.Tensor:
    return torch.view_as_real(t.detach()) if t.is_complex() else t.detach()


def _exact(label: str, got: torch.Tensor, want: torch.Tensor, stats: dict) -> Mismatch | None:
    """Integer and bool outputs (indices, counts, masks) have one right answer: a float tolerance
    (set by a bf16 input, 1e-2) would pass an index of 100 or more off by one."""
    differs = got != want
    err = (got.double() - want.double()).abs()
    _record(stats, err, want.double(), _first(differs) if differs.any() else None)
    if differs.any():
        return _mismatch(
            stats,
            _first(differs),
            f"{label} mismatch: {int(differs.sum())} of {differs.numel()} elements differ "
            f"({_name(want.dtype)} outputs must match exactly)",
        )
    return None


def _whole_output(label: str, err: torch.Tensor, w: torch.Tensor, tol: float, slack: float, stats: dict):
    scaled, unit, norm = _in_range(w)
    if norm > 0:
        relative = float((err / unit if unit != 1.0 else err).norm()) / norm
        stats["norm_rel_error"] = max(stats["norm_rel_error"], relative)
        if relative > slack:
            return _mismatch(
                stats,
                stats.get("worst_index"),
                f"{label}: relative error of the whole output "
                f"‖out − ref‖/‖ref‖ = {relative:.3g} exceeds {tol:g}",
            )
    rms = unit * float(scaled.pow(2).mean().sqrt()) if w.numel() else 0.0
    significant = w.abs() >= rms / 16
    # An honest sum's error scales with the size of its terms, not with its result: an element
    # that cancels down to a tenth of the RMS carries the rounding of terms as large as the RMS
    # (bf16 attention on an H200: 1.1% of such elements off by more than rtol alone). So each
    # element may also be off by tol × RMS; a zeroed or coarsely rounded one (≥ RMS/16) is not.
    off = significant & (err > slack * w.abs() + tol * rms)
    count, total = int(off.sum()), int(significant.sum())
    if count > max(1, MAX_OFF_SHARE * total):
        return _mismatch(
            stats,
            _first(off),
            f"{label}: {count} of {total} significant elements are off by more "
            f"than rtol={tol:g} + {tol:g} × the output's RMS (at most {MAX_OFF_SHARE:.0%} may be)",
        )
    return None


def _in_range(w: torch.Tensor) -> tuple[torch.Tensor, float, float]:
    """(w / unit, unit, its norm): w itself, unless its norm overflows (doubles near the range's
    edge, where inf / inf is NaN, which no "above the bound" test rejects); then w relative to
    its largest element. The common case costs no pass beyond the norm the caller needs."""
    norm = float(w.norm()) if w.numel() else 0.0
    if math.isfinite(norm):
        return w, 1.0, norm
    top = float(w.abs().max())
    unit = top if 0 < top < math.inf else 1.0
    scaled = w / unit if unit != 1.0 else w
    return scaled, unit, float(scaled.norm())


def _form(label: str, got: Any, want: torch.Tensor) -> str | None:
    """Exactly a dense torch.Tensor of the reference's shape, dtype and layout."""
    if type(got) is not torch.Tensor:
        return f"{label} is a {type(got).__name__}, not exactly torch.Tensor"
    if got.shape != want.shape:
        return f"{label} shape {tuple(got.shape)} != reference {tuple(want.shape)}"
    if got.dtype != want.dtype:
        return f"{label} dtype {got.dtype} != reference {want.dtype}"
    if got.layout != want.layout:
        return f"{label} layout {got.layout} != reference {want.layout}"
    if want.is_contiguous() and not got.is_contiguous():
        return (
            f"{label} is not contiguous (strides {got.stride()}) where the reference is: return a new tensor"
        )
    if got.numel() > 1 and not _dense(got):
        return f"{label} is not dense (strides {got.stride()}): return a new, non-overlapping tensor"
    excess = got.untyped_storage().nbytes() - got.numel() * got.element_size()
    if excess > 0 and got.device.type == "cpu":
        return f"{label} is a view into a larger buffer ({excess} bytes beyond it): return a new tensor"
    return None


def _dense(t: torch.Tensor) -> bool:
    """Non-overlapping and dense in some dimension order (a transposed result is fine)."""
    dims = [d for d in range(t.dim()) if t.shape[d] > 1]
    expected = 1
    for d in sorted(dims, key=lambda d: t.stride(d)):
        if t.stride(d) != expected:
            return False
        expected *= t.shape[d]
    return True


def _non_finite(g: torch.Tensor, w: torch.Tensor) -> tuple[str, list[int] | None] | None:
    """NaN and ±Inf must sit exactly where the reference has them, and nowhere else."""
    g_fin, w_fin = torch.isfinite(g), torch.isfinite(w)
    extra = ~g_fin & w_fin
    if extra.any():
        return f"has NaN/Inf where the reference is finite (first at {_first(extra)})", _first(extra)
    differs = ~w_fin & ~((g == w) | (torch.isnan(g) & torch.isnan(w)))
    if differs.any():
        return f"differs from the reference's NaN/Inf at {_first(differs)}", _first(differs)
    return None


def _record(stats: dict, err: torch.Tensor, w: torch.Tensor, worst) -> None:
    if not err.numel():
        return
    rel = err / w.abs().clamp_min(1e-12)
    finite = rel[torch.isfinite(rel)]
    # Two finite doubles ±1e308 apart differ by infinity: no finite ratio is left to take the max
    # of (an exception in the oracle, a verifier error: `overflows_the_error`).
    stats["max_abs_error"] = max(stats["max_abs_error"], float(err.max()))
    stats["max_rel_error"] = max(stats["max_rel_error"], float(finite.max()) if finite.numel() else math.inf)
    stats["worst_index"] = worst


def _mismatch(stats: dict, index, reason: str) -> Mismatch:
    return Mismatch(reason, stats["max_abs_error"], stats["max_rel_error"], index)


def _name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _ulp(dtype: torch.dtype) -> float:
    """One unit in the last place, relative, of a 16-bit output dtype. The reference is itself
    rounded to that dtype, so a correct kernel may sit a rounding step away from it (a bf16
    attention output near 4 differs by two ulps, 0.06, more than atol + rtol·|x| = 0.05)."""
    return {torch.bfloat16: 2.0**-7, torch.float16: 2.0**-10}.get(dtype.to_real(), 0.0)


def _degenerate(got: torch.Tensor, want: torch.Tensor) -> str | None:
    """All-zero or constant output where the reference is neither: an absolute tolerance can
    otherwise pass zeros on small-magnitude problems."""
    if got.numel() < 2:
        return None
    if not got.any() and want.any():
        return "is all zeros, the reference is not"
    if bool((got == got.flatten()[0]).all()) and not bool((want == want.flatten()[0]).all()):
        return "is constant, the reference is not"
    return None


def _first(mask: torch.Tensor) -> list[int] | None:
    hits = mask.nonzero()
    return [int(v) for v in hits[0]] if len(hits) else None
