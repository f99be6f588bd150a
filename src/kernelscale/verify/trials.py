"""Which input sets an attempt sees: fresh draws, a rescaled set, and shifted distributions.

Every set is drawn by the oracle from a secret seed that never leaves it, then shipped by value.
Shifts probe the edges a kernel tuned on standard normal inputs gets wrong: all-negative rows
(a softmax or a max that assumes a positive entry), all-positive ones (a min that assumes a
negative entry: a row minimum whose masked lanes load 0 passed every other trial,
`min_from_zero`), large and small magnitudes (overflow, an
absolute tolerance that hides zeroed outputs). "overflow" (x 64, opt-in per problem) takes
randn values past 88.7, where exp overflows: a softmax that skips its max subtraction passes
every other trial. It is not on by default, since a reference that itself overflows (an exp
without a max) or rounds its intermediates in 16 bits is not meant to hold there. Only floating
inputs are shifted; integer inputs (indices, labels) keep their meaning.

A shift of the whole tensor is visible from any part of it (every element negative, every one
tiny), which real inputs never are: a kernel can check for it and be right only then, wrong
wherever such a row sits beside ordinary ones (`max_from_zero_unless_all_negative`). So more
trials mix them: some rows, a share drawn per trial, take one of the shifts each, the others stay
plain. A row is a vector along one dimension, and there is one such trial per dimension of the
problem's inputs: with rows along the last dimension only, a reduction over another one (the
maximum of each column) never met a wholly shifted vector beside plain ones, since every column
crossed plain rows (`column_max_from_zero_unless_all_negative`).

A problem may add a trial of its own, where its domain has an edge no generic shift reaches: a
module function `edge_inputs(inputs, seed)` that turns a fresh draw into that trial's set, named
by its `EDGE_TRIAL`. The attention problems' puts logits past exp's range without sharpening the
softmax (attention/variant.large_scores), which no scaling of q and k can do.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from typing import Any

import torch

from kernelscale.problems.problem import EDGE_SHIFTS

SHIFTS = EDGE_SHIFTS
OVERFLOW = 64.0  # randn x 64: a row of a few dozen has an element past exp's 88.7
# randn + 64: a mean 64 times the spread. A variance taken in one pass, E[x^2] - E[x]^2, cancels
# there (layer norm over 8192 fp32 columns: 3e-3 off) while the two-pass formula stays within
# 2e-5 of a float64 reference; randn rows, even the shifted ones, never have a mean that large
# against their spread (`layer_norm_one_pass_variance`). Opt-in, like overflow: an op whose
# result is not invariant to the offset (exp, a product) would be held to far larger values.
OFFSET = 64.0
# Shifts that can raise an output's magnitude by orders (exp of randn x 16: 1e16 and more). The
# comparison scales a trial's absolute tolerance by its output's RMS over a plain draw's, so in
# a mixed trial such rows set the tolerance of every other row: beside them the plain, negative
# and small rows were held to nothing (`exp_flushed_unless_all_negative`). They get mixed trials
# of their own, with plain rows, and the other shifts theirs.
RAISING = ("large", "overflow", "offset")
# "zero": rows of zeros (padding, in real batches). An op with a floor far below every other
# trial's magnitudes (F.normalize's max(||x||, 1e-12)) gives zeros there; a kernel without the
# floor gives 0 / 0 = NaN, and no other trial has a row small enough to tell
# (`l2_normalize_without_floor`). Opt-in: where a zero row makes ties (an argmax), which index
# an honest kernel returns is its own business.
# Per dtype: (small, large) factors. 16-bit types get milder ones: a correct kernel's rounding
# error grows with the magnitude of its scores.
MAGNITUDE = {
    torch.float32: (1e-3, 16.0),
    torch.float64: (1e-3, 16.0),
    torch.float16: (2.0**-5, 4.0),
    torch.bfloat16: (2.0**-5, 4.0),
}


@dataclass(frozen=True)
class Case:
    """One input set: `seed` stays in the oracle, `name` goes into verdicts."""

    name: str
    seed: int
    shift: str = "plain"  # plain | scaled | negative | positive | small | large | overflow | offset | zero | mixed | problem
    scale: float = 1.0  # for "scaled"
    mix: tuple[str, ...] = ()  # for "mixed": the shifts its rows may take
    dim: int = -1  # for "mixed": the dimension its rows run along, counted from the last


def fresh_seed() -> int:
    return secrets.randbits(31)


def correctness_plan(
    trials: int, scale: float, shifts: tuple[str, ...], rank: int = 1, own_trial: str | None = None
) -> list[Case]:
    """Fresh draws, one rescaled set, each shifted distribution the problem allows, the
    problem's own trial (`own_trial`, its name) if it has one, and shifted rows beside plain
    ones along each of the `rank` dimensions of its largest floating input."""
    plan = [Case(f"trial {i + 1}", fresh_seed()) for i in range(max(1, trials - 1))]
    plan.append(Case(f"rescaled x{scale:g}", fresh_seed(), "scaled", scale))
    edges = tuple(shift for shift in shifts if shift in SHIFTS)
    plan += [Case(f"{shift} inputs", fresh_seed(), shift) for shift in edges]
    if own_trial:
        plan.append(Case(own_trial, fresh_seed(), "problem"))
    # shifted rows beside plain ones (a whole-tensor shift alone can be detected), apart from
    # rows whose shift raises the output's magnitude (below)
    keeping = tuple(shift for shift in edges if shift not in RAISING)
    raising = tuple(shift for shift in edges if shift in RAISING)
    for label, mix in (("mixed rows", keeping), ("mixed large rows", raising)):
        if mix:
            # rows along every dimension: a kernel reducing over one of them sees wholly
            # shifted vectors there only (`column_max_from_zero_unless_all_negative`)
            plan.append(Case(label, fresh_seed(), "mixed", mix=mix))
            plan += [
                Case(f"{label} along dim {rank + dim}", fresh_seed(), "mixed", mix=mix, dim=dim)
                for dim in range(-2, -rank - 1, -1)
            ]
    return plan


def own_trial(module) -> str | None:
    """The name of the problem's own edge trial, where its module defines one."""
    if not callable(getattr(module, "edge_inputs", None)):
        return None
    return str(getattr(module, "EDGE_TRIAL", "") or "the problem's edge inputs")


def timed_call_name(index: int) -> str:
    """A timed call's name in a verdict; its inputs are a set never seen before (a fresh seed,
    drawn by the timed loop), so an answer cached by content misses."""
    return f"timed call {index + 1}"


def apply_shift(values: list[Any], case: Case) -> list[Any]:
    return [_shift(x, case) if isinstance(x, torch.Tensor) and x.is_floating_point() else x for x in values]


def _shift(x: torch.Tensor, case: Case) -> torch.Tensor:
    if case.shift == "mixed":
        return _mixed(x, case)
    small, large = MAGNITUDE.get(x.dtype, (1e-3, 16.0))
    if case.shift == "scaled":
        return x * case.scale
    if case.shift == "negative":
        return -(x.abs() + sign_gap(case.seed))
    if case.shift == "positive":
        return x.abs() + sign_gap(case.seed)
    if case.shift == "small":
        return x * small
    if case.shift == "large":
        return x * large
    if case.shift == "overflow":
        return x * OVERFLOW
    if case.shift == "offset":
        return x + OFFSET
    if case.shift == "zero":
        return torch.zeros_like(x)
    return x


def sign_gap(seed: int) -> float:
    """How far from zero the negative and positive shifts put every element: drawn per case
    in [1/16, 1/4). Not -|x| alone, whose elements come arbitrarily close to 0: the largest of
    a column of 8192 is about -1.5e-4, inside the tolerance of the 0 that a running maximum
    started at 0 returns, so `column_max_from_zero_unless_all_negative` passed on a GPU (at the
    interpreter's 48 rows, -3e-2, it failed). A small gap, far above every tolerance (bf16's
    1e-2 included): the shift feeds products too, and attention's logits grow with the square
    of its inputs' mean (a gap of 0.5 to 2 made an fp32 variant's honest kernel fail at 1e-4).
    Drawn, not fixed, so that no constant start sits just above it."""
    generator = torch.Generator().manual_seed(seed)
    return (1 + 3 * float(torch.rand((), generator=generator))) / 16


def _mixed(x: torch.Tensor, case: Case) -> torch.Tensor:
    """Some rows of x (vectors along dimension `case.dim` from the last, or the last where x has
    fewer; elements of a vector) shifted, each of `case.mix` on at least one where there are
    rows enough, the rest plain; x's layout is kept. How many are shifted is drawn per case,
    log-uniform between one per shift and half of them, so that no fixed share of odd rows
    marks the trial either."""
    axis = x.dim() + case.dim if x.dim() >= -case.dim else x.dim() - 1
    rows = (
        tuple(1 if d == axis else size for d, size in enumerate(x.shape)) if x.dim() >= 2 else tuple(x.shape)
    )
    count = math.prod(rows)
    if not count:
        return x
    generator = torch.Generator().manual_seed(case.seed)
    low = min(count, len(case.mix))
    high = max(low, count // 2)
    shifted = round(low * (high / low) ** float(torch.rand((), generator=generator)))
    choice = torch.full((count,), -1, dtype=torch.int64)
    choice[torch.randperm(count, generator=generator)[:shifted]] = torch.arange(shifted) % len(case.mix)
    choice = choice.view(rows).to(x.device)
    out = x
    for k, shift in enumerate(case.mix):
        out = torch.where(choice == k, _shift(x, Case(case.name, case.seed, shift)), out)
    return out
