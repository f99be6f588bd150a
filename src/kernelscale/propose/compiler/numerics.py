"""Where the kernel's arithmetic could leave the reference's fp32 arithmetic, and what keeps it on it.

The rewrites are exact in real numbers; two of them are not in fp32 for some values:

* Dropping a row term (softmax is shift invariant) is exact only while the term is finite and
  small beside the scores: a row term of −inf empties the row (the reference's output is 0), one
  of −1e9 swamps the scores (the reference averages the row). A term is dropped only when its
  ops cannot make it infinite and what it reads is under TAME, at trace time and, for captured
  numbers and tensors, whenever the module is built (guards and bounds, below).
* The softmax runs in log2 units, so a score is multiplied by log2 e, and FA4 does the same inside
  its kernel. A finite score near the fp32 limit (torch.finfo(torch.float32).min, the usual
  "masked" value of HF-style masks) overflows to −inf there: a row of them gives zeros instead of
  the reference's average. A term that may hold such values is saturated to ±SATURATE first,
  finite values only (a true −inf stays −inf); a term that reads captured tensors or numbers
  whose values are all under HUGE at trace time is not, and the module checks they stay so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from kernelscale.propose.compiler import graph as g

# Below this in magnitude, adding a dropped row term to an fp32 score moves it by at most
# TAME · 2^-24 < 0.004.
TAME = 65536.0
# Ops that can make a row term infinite from finite inputs (log 0, x / 0, exp overflow).
UNTAME_OPS = {"log", "log2", "div", "exp", "exp2", "rsqrt"}
# Finite values above this may overflow once multiplied by log2 e and a row max subtracted.
HUGE = 1e30
# Saturated values: times log2 e (1.44) and minus another such value, still under fp32's 3.4e38.
SATURATE = 1e38


@dataclass
class Checks:
    """What the rewrites relied on, to be re-checked on the values a module is built with."""

    guards: list[g.Node] = field(default_factory=list)  # static facts about captured numbers
    # captured tensor -> (bound on its finite values, whether infinities are allowed)
    bounded: dict[str, tuple[float, bool]] = field(default_factory=dict)

    def droppable(self, term: g.Node, captured: dict) -> bool:
        """Whether a row term may be dropped; if so, records what that relies on."""
        nodes = g.walk([term])
        for n in nodes:
            if n.op in UNTAME_OPS or (n.op == "load" and n.kind == "float" and n.level != "program"):
                return False
            if _largest(n, captured) >= TAME:  # NaN and infinities included
                return False
        for n in nodes:
            if n.op == "param" and n.kind == "float":
                self.guards.append(g.make("lt", g.make("abs", n), g.const(TAME)))
            elif n.op == "load" and n.kind == "float":
                self._bound(n.args[0], TAME, inf_ok=False)
        return True

    def huge(self, term: g.Node, captured: dict) -> bool:
        """Whether a term may hold finite values near fp32's limit (then it is saturated); if
        not, records what that relies on."""
        nodes = g.walk([term])
        if any(_largest(n, captured, finite=True) >= HUGE for n in nodes):
            return True
        for n in nodes:
            if n.op == "param" and n.kind == "float" and n.args[0] != "__sm_scale":
                finite = g.make("lt", g.make("abs", n), g.const(float("inf")))
                small = g.make("lt", g.make("abs", n), g.const(HUGE))
                self.guards.append(g.make("or", g.make("not", finite), small))
            elif n.op == "load" and n.kind == "float":
                self._bound(n.args[0], HUGE, inf_ok=True)
        return False

    def _bound(self, name: str, limit: float, inf_ok: bool) -> None:
        old = self.bounded.get(name, (limit, inf_ok))
        self.bounded[name] = (min(old[0], limit), old[1] and inf_ok)


def _largest(n: g.Node, captured: dict, finite: bool = False) -> float:
    """The largest magnitude a leaf holds at trace time (0 for other nodes); with `finite`, of
    its finite values only. NaN counts as infinite."""
    value = n.value if n.is_const else captured.get(n.args[0]) if n.op in ("param", "load") else None
    if isinstance(value, torch.Tensor) and value.is_floating_point() and value.numel():
        mags = value.detach().abs().float()
        mags = torch.where(torch.isnan(mags), float("inf"), mags)
        if finite:
            mags = mags[torch.isfinite(mags)]
        return float(mags.max()) if mags.numel() else 0.0
    if isinstance(value, float):
        mag = abs(value) if value == value else float("inf")
        return 0.0 if finite and mag == float("inf") else mag
    return 0.0
