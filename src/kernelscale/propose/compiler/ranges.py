"""Value ranges over the expression graph: where 64-bit integer arithmetic can run in 32 bits.

A mod that computes with `.long()` (a T5-style bucket: `(log(dist / c) * s).long()`) computes in
int64, and FA4's hooks compute integers in int32. The two agree wherever no integer the graph
computes from such a value can leave int32. This bounds every node by interval arithmetic, with
the kernel's indices b, h, q, kv in [0, ARG_MAX] and captured numbers at their values (which the
module then checks are the ones it is built with); a node it cannot bound (a load, the score, a
division by a range holding 0, a shift) is unbounded. It also tracks whether a float may be NaN:
casting NaN (or an infinity) to an integer is undefined, and differs between the two widths.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from kernelscale.propose.compiler import graph as g
from kernelscale.propose.compiler.errors import CompilerError

INDEX_MAX = 2**24  # batch, head and sequence sizes a narrowed module accepts (checked per shape)
ARG_MAX = 2 * INDEX_MAX  # indices bounded with room for FA4's padded last tiles
INF = math.inf
UNIT = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0), "sin": (-1.0, 1.0), "cos": (-1.0, 1.0)}
MONOTONE = {"exp": math.exp, "exp2": lambda x: 2.0**x, "log": math.log, "log2": math.log2, "sqrt": math.sqrt}
NAN_BELOW_ZERO = {"log", "log2", "sqrt", "rsqrt"}
ROUNDING = {"saturate", "round_bf16", "round_fp16"}  # the value, up to a rounding
# Transcendentals in fp32 are within a few ulps of these double-precision bounds: widened by this.
SLACK = 1e-5


class Range(NamedTuple):
    lo: float
    hi: float
    nan: bool = False  # may be NaN


UNBOUNDED = Range(-INF, INF)


def int32_narrowing(graphs: list, values: dict) -> list[tuple[g.Node, object]] | None:
    """None where no graph (a list of roots) computes in 64-bit integers; else the guards under
    which int32 arithmetic agrees with it, for all of them. A CompilerError where it may not."""
    if not any(g.wide_ints(roots) for roots in graphs):
        return None
    relied = [narrowable(roots, values) for roots in graphs]
    if any(r is None for r in relied):
        raise CompilerError(
            "the FA4 hooks compute integers in 32 bits; this variant computes in 64 (.long(), or a "
            "constant beyond int32 with one) and its values may leave int32: use the Triton backend"
        )
    return list(dict.fromkeys(pair for r in relied for pair in r))


def narrowable(roots, values: dict) -> list[tuple[g.Node, object]] | None:
    """None where the graph's 64-bit integers may leave int32 (or a constant already does);
    else the captured numbers the ranges relied on, as (node, value) guards."""
    nodes = g.walk(roots)
    bounds: dict[g.Node, Range] = {}
    for n in nodes:
        bounds[n] = _bound(n, [bounds[c] for c in n.children], values)
    wide = _wide_nodes(nodes)
    if any(not (g.INT32[0] <= bounds[n].lo and bounds[n].hi <= g.INT32[1]) for n in wide):
        return None
    relied = {p for n in wide for p in g.walk([n]) if p.op == "param" and _is_number(values.get(p.args[0]))}
    return [(p, values[p.args[0]]) for p in relied]


def _wide_nodes(nodes) -> list[g.Node]:
    """Integer nodes computed from a 64-bit value: a `.long()` or a constant beyond int32."""
    wide: set[g.Node] = set()
    for n in nodes:  # children first
        big = n.is_const and n.kind == "int" and not g.INT32[0] <= n.value <= g.INT32[1]
        computed = n.kind == "int" and n.op != "load"  # a load's value is data, its index is checked
        if n.op == "cast_long" or big or (computed and any(c in wide for c in n.children)):
            wide.add(n)
    return [n for n in nodes if n in wide]


def _bound(n: g.Node, kids: list[Range], values: dict) -> Range:
    op = n.op
    if op in ("const", "param"):
        value = n.value if op == "const" else values.get(n.args[0])
        return Range(float(value), float(value)) if _is_number(value) else Range(-INF, INF, n.kind == "float")
    if op == "arg":
        return Range(0.0, float(ARG_MAX)) if n.args[0] in g.INDEX_ARGS else Range(-INF, INF, True)
    if op == "load":  # captured data: any value, NaN too for floats
        return Range(-INF, INF, n.kind == "float")
    if n.kind == "bool":  # comparisons (NaN compares false, in either width) and logic
        return Range(0.0, 1.0)
    if op in g.LOGICAL:  # bitwise on integers
        return _bitwise(op, *kids)
    if op in ("add", "sub", "mul", "min", "max"):
        return _arith(op, *kids)
    if op in ("div", "floordiv", "mod"):
        return _divide(op, *kids)
    if op in ("cast_int", "cast_long") and n.children[0].kind != "float":
        return kids[0]  # an integer or a bool: exact
    if op == "where":
        return Range(min(kids[1].lo, kids[2].lo), max(kids[1].hi, kids[2].hi), kids[1].nan or kids[2].nan)
    return _unary(op, kids[0]) if len(kids) == 1 else UNBOUNDED


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _arith(op, a: Range, b: Range) -> Range:
    nan = a.nan or b.nan
    if op == "add":
        nan |= (a.lo == -INF and b.hi == INF) or (a.hi == INF and b.lo == -INF)  # inf - inf
        return Range(a.lo + b.lo, a.hi + b.hi, nan) if not nan else UNBOUNDED._replace(nan=True)
    if op == "sub":
        nan |= (a.lo == -INF and b.lo == -INF) or (a.hi == INF and b.hi == INF)
        return Range(a.lo - b.hi, a.hi - b.lo, nan) if not nan else UNBOUNDED._replace(nan=True)
    if op == "min":
        return Range(min(a.lo, b.lo), min(a.hi, b.hi), nan)
    if op == "max":
        return Range(max(a.lo, b.lo), max(a.hi, b.hi), nan)
    if (_holds_zero(a) and _infinite(b)) or (_holds_zero(b) and _infinite(a)):
        return UNBOUNDED._replace(nan=True)  # inf * 0
    products = [x * y for x in (a.lo, a.hi) for y in (b.lo, b.hi)]
    return Range(min(products), max(products), nan)


def _holds_zero(r: Range) -> bool:
    return r.lo <= 0 <= r.hi


def _infinite(r: Range) -> bool:
    return math.isinf(r.lo) or math.isinf(r.hi)


def _divide(op, a: Range, b: Range) -> Range:
    if _holds_zero(b) or not all(map(math.isfinite, (a.lo, a.hi, b.lo, b.hi))):
        return UNBOUNDED._replace(nan=True)  # x / 0, inf / inf
    nan = a.nan or b.nan
    if op == "mod":  # torch's remainder takes the divisor's sign: |result| < |divisor|
        top = max(abs(b.lo), abs(b.hi))
        return Range(0.0, top, nan) if b.lo > 0 else Range(-top, 0.0, nan)
    quotients = [x / y for x in (a.lo, a.hi) for y in (b.lo, b.hi)]
    lo, hi = min(quotients), max(quotients)
    return Range(math.floor(lo), math.floor(hi), nan) if op == "floordiv" else Range(lo, hi, nan)


def _bitwise(op, a: Range, b: Range) -> Range:
    if a.lo < 0 or b.lo < 0 or not (math.isfinite(a.hi) and math.isfinite(b.hi)):
        return UNBOUNDED
    if op == "and":
        return Range(0.0, min(a.hi, b.hi))
    top = 2 ** int(max(a.hi, b.hi)).bit_length() - 1  # or / xor: no bit above the larger's top bit
    return Range(0.0, float(top))


def _unary(op, x: Range) -> Range:
    if op in ("cast_int", "cast_long"):  # of a float: truncation; NaN or an infinity is undefined
        if x.nan or not (math.isfinite(x.lo) and math.isfinite(x.hi)):
            return UNBOUNDED
        return Range(math.trunc(x.lo) - 1, math.trunc(x.hi) + 1)  # one each side: fp32 vs double
    if op in UNIT:
        nan = x.nan or (op in ("sin", "cos") and not (math.isfinite(x.lo) and math.isfinite(x.hi)))
        return Range(*UNIT[op], nan)
    if op in ("cast_float", "cast_bool"):
        return x
    if op in ROUNDING:
        return Range(x.lo - abs(x.lo) * 0.01, x.hi + abs(x.hi) * 0.01, x.nan)
    if op == "neg":
        return Range(-x.hi, -x.lo, x.nan)
    if op in ("abs", "square"):
        f = abs if op == "abs" else (lambda v: v * v)
        low = 0.0 if _holds_zero(x) else min(f(x.lo), f(x.hi))
        return Range(low, max(f(x.lo), f(x.hi)), x.nan)
    if op in ("floor", "ceil"):
        fn = math.floor if op == "floor" else math.ceil
        return Range(*(fn(v) if math.isfinite(v) else v for v in (x.lo, x.hi)), x.nan)
    if op in MONOTONE:
        nan = x.nan or (op in NAN_BELOW_ZERO and x.lo < 0)
        lo, hi = _monotone(op, x.lo), _monotone(op, x.hi)
        return Range(lo - abs(lo) * SLACK - SLACK, hi + abs(hi) * SLACK + SLACK, nan)
    return UNBOUNDED._replace(nan=x.nan or op in NAN_BELOW_ZERO)


def _monotone(op, v):
    if op in NAN_BELOW_ZERO and v <= 0:
        return -INF if op != "sqrt" else 0.0
    try:
        return MONOTONE[op](v)
    except OverflowError:
        return INF
