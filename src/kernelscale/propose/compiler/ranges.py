"""Value ranges over the expression graph: where 64-bit integer arithmetic can run in 32 bits.

A mod that computes with `.long()` (a T5-style bucket: `(log(dist / c) * s).long()`) computes in
int64, and FA4's hooks compute integers in int32. The two agree wherever no integer the graph
computes from such a value can leave int32. This bounds every node by interval arithmetic, with
the kernel's indices b, h, q, kv in [0, INDEX_MAX) and captured numbers at their values (which
the module then checks are the ones it is built with); a node it cannot bound (a load, the
score, a division by a range holding 0) is unbounded.
"""

from __future__ import annotations

import math

from kernelscale.propose.compiler import graph as g

INDEX_MAX = 2**24  # batch, head and sequence indices a narrowed module accepts (checked per shape)
INF = math.inf
UNBOUNDED = (-INF, INF)
UNIT = {"tanh": (-1.0, 1.0), "sin": (-1.0, 1.0), "cos": (-1.0, 1.0), "sigmoid": (0.0, 1.0)}
MONOTONE = {"exp": math.exp, "exp2": lambda x: 2.0**x, "log": math.log, "log2": math.log2, "sqrt": math.sqrt}
KEEP = {"cast_float", "saturate", "round_bf16", "round_fp16"}  # the value, up to rounding


def narrowable(roots, values: dict) -> list[tuple[g.Node, object]] | None:
    """None where the graph's 64-bit integers may leave int32 (or a constant already does);
    else the captured numbers the ranges relied on, as (node, value) guards."""
    nodes = g.walk(roots)
    bounds: dict[g.Node, tuple[float, float]] = {}
    for n in nodes:
        bounds[n] = _bound(n, [bounds[c] for c in n.children], values)
    wide = _wide_nodes(nodes)
    if any(not (g.INT32[0] <= bounds[n][0] and bounds[n][1] <= g.INT32[1]) for n in wide):
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


def _bound(n: g.Node, kids: list, values: dict) -> tuple[float, float]:
    op = n.op
    if op == "const":
        return (float(n.value), float(n.value)) if _is_number(n.value) else UNBOUNDED
    if op == "param":
        value = values.get(n.args[0])
        return (float(value), float(value)) if _is_number(value) else UNBOUNDED
    if op == "arg":
        return (0.0, float(INDEX_MAX - 1)) if n.args[0] in ("b", "h", "q", "kv") else UNBOUNDED
    if op in g.COMPARE or op in g.LOGICAL or op in ("not", "cast_bool") or n.kind == "bool":
        return (0.0, 1.0)
    if op in ("add", "sub", "mul", "min", "max"):
        return _arith(op, *kids)
    if op in ("div", "floordiv"):
        return _divide(op, *kids)
    if op == "mod":
        return _modulo(*kids)
    if op == "where":
        return (min(kids[1][0], kids[2][0]), max(kids[1][1], kids[2][1]))
    return _unary(op, kids[0]) if len(kids) == 1 else UNBOUNDED


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _arith(op, a, b):
    if op == "add":
        return (a[0] + b[0], a[1] + b[1])
    if op == "sub":
        return (a[0] - b[1], a[1] - b[0])
    if op == "min":
        return (min(a[0], b[0]), min(a[1], b[1]))
    if op == "max":
        return (max(a[0], b[0]), max(a[1], b[1]))
    products = [x * y for x in a for y in b]
    return UNBOUNDED if any(p != p for p in products) else (min(products), max(products))  # inf * 0


def _divide(op, a, b):
    if b[0] <= 0 <= b[1]:
        return UNBOUNDED
    quotients = [x / y for x in a for y in b if math.isfinite(x) or math.isfinite(y)]
    if len(quotients) < 4 or any(q != q for q in quotients):
        return UNBOUNDED
    lo, hi = min(quotients), max(quotients)
    return (math.floor(lo), math.floor(hi)) if op == "floordiv" else (lo, hi)


def _modulo(a, b):
    # torch's remainder takes the divisor's sign: |result| < |divisor|
    if b[0] <= 0 <= b[1] or not (math.isfinite(b[0]) and math.isfinite(b[1])):
        return UNBOUNDED
    top = max(abs(b[0]), abs(b[1]))
    return (0.0, top) if b[0] > 0 else (-top, 0.0)


def _unary(op, x):
    lo, hi = x
    if op in UNIT:
        return UNIT[op]
    if op in KEEP:
        return (lo - abs(lo) * 0.01, hi + abs(hi) * 0.01) if op != "cast_float" else x
    if op == "neg":
        return (-hi, -lo)
    if op == "abs":
        return (0.0 if lo <= 0 <= hi else min(abs(lo), abs(hi)), max(abs(lo), abs(hi)))
    if op == "square":
        top = max(lo * lo, hi * hi)
        return (0.0 if lo <= 0 <= hi else min(lo * lo, hi * hi), top)
    if op in ("floor", "ceil"):
        fn = math.floor if op == "floor" else math.ceil
        return tuple(fn(v) if math.isfinite(v) else v for v in x)
    if op in ("cast_int", "cast_long"):  # truncation toward zero
        return tuple(math.trunc(v) if math.isfinite(v) else v for v in x)
    if op in MONOTONE:
        return (_monotone(op, lo), _monotone(op, hi))
    return UNBOUNDED


def _monotone(op, v):
    if op in ("log", "log2", "sqrt") and v <= 0:
        return -INF if op != "sqrt" else 0.0
    try:
        return MONOTONE[op](v)
    except OverflowError:
        return INF
