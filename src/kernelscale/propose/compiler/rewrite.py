"""Algebraic rewrites that make the traced score cheaper inside the kernel's inner loop.

* The softmax works in exp2: logits = log2(e) · score_mod(qk · scale), with the constant factors
  gathered into one per-program product (scale · log2 e · 1/cap ...) so the inner loop does one
  multiply where the mod does several.
* Softmax is shift invariant: an additive term that depends only on (b, h, q_idx) and captured
  numbers adds the same value to a whole row and cancels, so it is dropped (score + (q − kv)
  becomes score − kv; ALiBi's slope·(kv − q) becomes slope·kv), where fp32 agrees (numerics.py).
* Terms that may hold finite values near fp32's limit (finfo.min masking) are saturated before
  the log2 e factor, which would overflow them to −inf (numerics.py).
* Bounds: when the logits are bounded (soft-capping: |cap·tanh(·)| ≤ cap), the upper bound can
  serve as a fixed row max, removing the online max and the accumulator rescaling.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kernelscale.propose.compiler import graph as g
from kernelscale.propose.compiler.evaluate import evaluate, is_static
from kernelscale.propose.compiler.numerics import Checks

LOG2E = 1.4426950408889634
SCALE = g.Node("param", ("__sm_scale",), "float")  # 1/sqrt(D), a kernel argument
QK = g.arg("qk")
ROW_VARYING = {"qk", "score", "kv"}  # a term depending on none of these is constant along a row
# Ops whose result jumps as an operand crosses a point: their operands are computed as written.
DISCRETE = (
    g.COMPARE
    | g.LOGICAL
    | {"floor", "ceil", "cast_int", "cast_long", "cast_bool", "floordiv", "mod", "load", "not"}
)
DISCRETE |= {"shl", "shr", "round_bf16", "round_fp16"}  # rounding to a half type too


@dataclass
class Rewritten:
    logits: g.Node  # log2-domain logits in terms of qk (float)
    mask: g.Node | None
    dropped: list[g.Node]  # additive terms removed by shift invariance
    bounds: tuple[g.Node, g.Node] | None  # static (lo, hi) of the logits, if bounded
    # what the dropping and the saturation relied on (numerics.py): facts about captured
    # numbers, and captured tensors' bounds that the module checks when it is built
    checks: Checks = field(default_factory=Checks)


def rewrite(
    score: g.Node | None, mask: g.Node | None, base: float = LOG2E, params: dict | None = None
) -> Rewritten:
    """base: the factor that turns natural-log units into the kernel's (log2 e for an exp2
    softmax, 1.0 for a backend that applies it itself, as FlashAttention-4 does); params: the
    captured numbers' and tensors' trace-time values (which decide whether a row term is tame)."""
    scaled = g.make("mul", QK, SCALE)
    body = scaled if score is None else substitute(score, {g.arg("score"): scaled})
    kept, dropped, checks = [], [], Checks()
    for sign, factors in terms(simplify(body)):
        natural = product(factors, sign)
        if checks.huge(natural, params or {}):  # finfo.min: saturated, so log2 e · it stays finite
            term = product([g.make("saturate", natural), g.const(base)], 1)
        else:
            term = product(factors + [g.const(base)], sign)
        if term.deps & ROW_VARYING or not checks.droppable(term, params or {}):
            kept.append(term)
        else:
            dropped.append(term)
    logits = _sum(kept) if kept else g.const(0.0)
    mask = simplify(mask, exact=True) if mask is not None else None
    return Rewritten(logits, mask, dropped, _static_bounds(logits), checks)


def positive_scale(node: g.Node) -> bool:
    """A product of the softmax scale and positive constants: a factor that keeps the row max
    where it is, so a kernel may take the max before multiplying by it."""
    factors = [node]
    while factors:
        f = factors.pop()
        if f.op == "mul":
            factors += list(f.children)
        elif not (f == SCALE or (f.is_const and f.value > 0)):
            return False
    return True


def substitute(node: g.Node, table: dict) -> g.Node:
    memo: dict = {}

    def go(n: g.Node) -> g.Node:
        if n in table:
            return table[n]
        if n not in memo:
            args = tuple(go(a) if isinstance(a, g.Node) else a for a in n.args)
            memo[n] = n if args == n.args else g.Node(n.op, args, n.kind)
        return memo[n]

    return go(node)


def simplify(node: g.Node, exact: bool = False) -> g.Node:
    """Constant folding, division by per-program values as multiplication, and product
    regrouping, bottom up. The last two round differently from the mod's own arithmetic, which a
    softmax does not notice but a comparison can (kv / S < 0.35 flips at kv = 14, S = 40 when
    computed as kv · (1 / S)): values that reach a comparison, a rounding, a cast to an integer
    or an index (DISCRETE) keep their arithmetic as written; `exact` asks that for the root."""
    memo: dict = {}

    def go(n: g.Node, exact: bool) -> g.Node:
        if (n, exact) in memo:
            return memo[(n, exact)]
        inner = exact or n.op in DISCRETE
        args = tuple(
            go(a, inner or (n.op == "where" and i == 0)) if isinstance(a, g.Node) else a
            for i, a in enumerate(n.args)
        )
        out = g.Node(n.op, args, n.kind)
        if out.op not in ("const", "param", "arg", "load") and all(c.is_const for c in out.children):
            out = g.const(evaluate(out, {}))
        elif exact or out.kind != "float":
            pass
        elif out.op == "div" and _uniform(args[1]):
            out = product(_factors(args[0]) + [_reciprocal(args[1])], 1)
        elif out.op == "mul":
            out = product(_factors(out), 1)
        memo[(n, exact)] = out
        return out

    return go(node, exact)


def _uniform(node: g.Node) -> bool:
    return node.level == "program"


def _reciprocal(node: g.Node) -> g.Node:
    if node.is_const and node.value != 0:
        return g.const(1.0 / node.value)
    return g.make("div", g.const(1.0), node)


def _factors(node: g.Node) -> list[g.Node]:
    if node.op == "mul" and node.kind == "float":
        return _factors(node.args[0]) + _factors(node.args[1])
    return [node]


def product(factors: list[g.Node], sign: int) -> g.Node:
    """Non-uniform factors in order, times one folded per-program factor (sign included)."""
    varying = [f for f in factors if not _uniform(f)]
    scalar, coef = float(sign), None
    for f in factors:
        if f.is_const:
            scalar *= f.value
        elif _uniform(f):
            coef = f if coef is None else g.make("mul", coef, f)
    if scalar != 1.0 and (varying or coef is not None) and not (scalar == -1.0 and coef is None):
        coef = g.const(scalar) if coef is None else g.make("mul", coef, g.const(scalar))
    out = None
    for f in varying:
        out = f if out is None else g.make("mul", out, f)
    if out is None:
        return coef if coef is not None else g.const(scalar)
    if coef is not None:
        return g.make("mul", out, coef)
    out = out if out.kind == "float" else g.make("cast_float", out)
    return g.make("neg", out) if scalar == -1.0 else out


def terms(node: g.Node) -> list[tuple[int, list[g.Node]]]:
    """The node as a signed sum of products; a per-program factor is distributed over a sum
    (that is what exposes q-only terms inside slope·(kv − q))."""
    if node.op == "add":
        return terms(node.args[0]) + terms(node.args[1])
    if node.op == "sub":
        return terms(node.args[0]) + [(-s, f) for s, f in terms(node.args[1])]
    if node.op == "neg":
        return [(-s, f) for s, f in terms(node.args[0])]
    if node.op == "mul":
        a, b = terms(node.args[0]), terms(node.args[1])
        if (
            len(a) == 1
            and all(_uniform(f) for f in a[0][1])
            or len(b) == 1
            and all(_uniform(f) for f in b[0][1])
        ):
            return [(sa * sb, fa + fb) for sa, fa in a for sb, fb in b]
        return [(1, _factors(node))]
    return [(1, [node])]


def _sum(nodes: list[g.Node]) -> g.Node:
    out = nodes[0]
    for n in nodes[1:]:
        out = g.make("sub", out, n.args[0]) if n.op == "neg" else g.make("add", out, n)
    return out


def _static_bounds(node: g.Node) -> tuple[g.Node, g.Node] | None:
    lo, hi = bounds(node)
    return (lo, hi) if lo is not None and hi is not None else None


def bounds(n: g.Node) -> tuple[g.Node | None, g.Node | None]:
    """Static (lo, hi) nodes bounding a value, None where unbounded; conservative."""
    if is_static(n):
        return n, n
    if n.op == "tanh":
        return g.const(-1.0), g.const(1.0)
    if n.op == "sigmoid":
        return g.const(0.0), g.const(1.0)
    kids = [bounds(c) for c in n.children]
    if n.op == "neg":
        ((lo, hi),) = kids
        return _neg(hi), _neg(lo)
    if n.op == "add":
        return _both("add", kids[0][0], kids[1][0]), _both("add", kids[0][1], kids[1][1])
    if n.op == "sub":
        return _both("sub", kids[0][0], kids[1][1]), _both("sub", kids[0][1], kids[1][0])
    if n.op == "mul" and any(is_static(c) for c in n.children):
        s, (lo, hi) = (n.args[0], kids[1]) if is_static(n.args[0]) else (n.args[1], kids[0])
        if lo is None or hi is None:
            return None, None
        a, b = g.make("mul", s, lo), g.make("mul", s, hi)
        return g.make("min", a, b), g.make("max", a, b)
    if n.op in ("min", "max", "where"):
        (alo, ahi), (blo, bhi) = kids[-2:]
        if n.op == "min":
            return _both("min", alo, blo), _either("min", ahi, bhi)
        if n.op == "max":
            return _either("max", alo, blo), _both("max", ahi, bhi)
        return _both("min", alo, blo), _both("max", ahi, bhi)
    return None, None


def _neg(x):
    return None if x is None else g.make("neg", x)


def _both(op, a, b):
    return None if a is None or b is None else g.make(op, a, b)


def _either(op, a, b):
    """min(x, y) ≤ hi(y) even when x is unbounded (and max(x, y) ≥ lo(y))."""
    if a is None or b is None:
        return a if b is None else b
    return g.make(op, a, b)
