"""Correctness of one candidate output against the reference (runs in the oracle)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class Mismatch:
    reason: str
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    worst_index: list[int] | None = None


def compare_outputs(got: list[Any], want: list[Any], tol: float) -> tuple[Mismatch | None, dict]:
    """None when every output passes; the error statistics either way (worst over outputs)."""
    if len(got) != len(want):
        return Mismatch(f"returned {len(got)} output(s), the reference returns {len(want)}"), {}
    stats: dict = {"max_abs_error": 0.0, "max_rel_error": 0.0}
    for i, (g, w) in enumerate(zip(got, want)):
        label = f"output {i}" if len(want) > 1 else "output"
        problem = _check_one(label, g, w, tol, stats)
        if problem is not None:
            return problem, stats
    return None, stats


def _check_one(label: str, got: Any, want: Any, tol: float, stats: dict) -> Mismatch | None:
    if not isinstance(want, torch.Tensor):
        return None if got == want else Mismatch(f"{label}: {got!r} != {want!r}")
    if type(got) is not torch.Tensor:
        return Mismatch(f"{label} is a {type(got).__name__}, not exactly torch.Tensor")
    for attr in ("shape", "dtype"):
        if getattr(got, attr) != getattr(want, attr):
            return Mismatch(f"{label} {attr} {tuple(got.shape) if attr == 'shape' else got.dtype} "
                            f"!= reference {tuple(want.shape) if attr == 'shape' else want.dtype}")
    g, w = got.detach().double(), want.detach().double()
    if not torch.isfinite(g).all() and torch.isfinite(w).all():
        index = _first(~torch.isfinite(g))
        return Mismatch(f"{label} has NaN/Inf (first at {index})", worst_index=index)
    err = (g - w).abs()
    rel = err / w.abs().clamp_min(1e-12)
    worst = _first(err == err.max()) if err.numel() else None
    stats["max_abs_error"] = max(stats["max_abs_error"], float(err.max()) if err.numel() else 0.0)
    stats["max_rel_error"] = max(stats["max_rel_error"], float(rel[torch.isfinite(rel)].max()) if err.numel() else 0.0)
    stats["worst_index"] = worst
    degenerate = _degenerate(g, w)
    if degenerate:
        return Mismatch(f"{label} {degenerate}", stats["max_abs_error"], stats["max_rel_error"], worst)
    bad = err > tol + (tol + _ulp(want.dtype)) * w.abs()
    if bad.any():
        index = _first(bad & (err == err[bad].max()))
        return Mismatch(
            f"{label} mismatch: {int(bad.sum())} of {bad.numel()} elements outside atol=rtol={tol:g}"
            + (f" (+1 ulp of {str(want.dtype).removeprefix('torch.')})" if _ulp(want.dtype) else ""),
            stats["max_abs_error"], stats["max_rel_error"], index,
        )
    return None


def _ulp(dtype: torch.dtype) -> float:
    """One unit in the last place, relative, of a 16-bit output dtype. The reference is itself
    rounded to that dtype, so a correct kernel may sit a rounding step away from it (a bf16
    attention output near 4 differs by two ulps, 0.06, more than atol + rtol·|x| = 0.05)."""
    return {torch.bfloat16: 2.0**-7, torch.float16: 2.0**-10}.get(dtype, 0.0)


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
