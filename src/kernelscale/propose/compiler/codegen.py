"""Expression graph -> Triton statements, each node hoisted to the outermost level it allows.

Levels (see graph.LEVELS): "program" values are scalars computed once per program (b, h and
captured numbers: ALiBi's slope, 1/cap, scale·log2 e); "row" values are (BLOCK_M, 1) columns
computed once per program (doc_ids[q_idx]); "col" values are (1, BLOCK_N) rows computed once per
KV block (doc_ids[kv_idx], kv·slope); only "element" values cost work per score.

Names the emitted code relies on: off_b, off_h (query head), q_idx (BLOCK_M, 1), kv_idx
(1, BLOCK_N), qk (the fp32 q·kᵀ block), sm_scale, P_<name> (captured numbers) and, per
captured tensor, c_<name> (pointer), c_<name>_n<i> (sizes), c_<name>_s<i> (strides).
"""

from __future__ import annotations

import itertools

from kernelscale.propose.compiler import graph as g

LEAVES = {"q": "q_idx", "kv": "kv_idx", "b": "off_b", "h": "off_h", "qk": "qk", "score": "qk", "Sq": "Sq"}
INFIX = {
    "add": "+",
    "sub": "-",
    "mul": "*",
    "lt": "<",
    "le": "<=",
    "gt": ">",
    "ge": ">=",
    "eq": "==",
    "ne": "!=",
    "and": "&",
    "or": "|",
    "xor": "^",
    "shl": "<<",
    "shr": ">>",
}
FLOAT_FN = {
    "exp": "tl.exp",
    "exp2": "tl.exp2",
    "log": "tl.log",
    "log2": "tl.log2",
    "sqrt": "tl.sqrt",
    "rsqrt": "tl.rsqrt",
    "sigmoid": "tl.sigmoid",
    "floor": "tl.floor",
    "ceil": "tl.ceil",
    "sin": "tl.sin",
    "cos": "tl.cos",
}


class Emitter:
    """Names nodes and writes their statements; one instance per generated kernel."""

    def __init__(self, params: dict, fast_tanh: bool):
        self.params = params  # trace-time values of captured numbers (for sign facts)
        self.tanh = "_tanh_fast" if fast_tanh else "_tanh_exact"
        self.guards: list[g.Node] = []  # static facts the code relies on (param > 0 ...)
        self._counter = itertools.count()

    def emit(self, roots, levels: tuple[str, ...], known: dict, prefix: str) -> tuple[list[str], dict]:
        """Statements for the nodes of `roots` at `levels` not already in `known`."""
        names, lines = dict(known), []
        for node in g.walk(roots):
            if node in names:
                continue
            text = self._leaf(node)
            if text is None:
                if node.level not in levels:
                    continue
                var = f"{prefix}{next(self._counter)}"
                lines.append(f"{var} = {self._expr(node, names)}")
                text = var
            names[node] = text
        return lines, names

    def _leaf(self, node: g.Node) -> str | None:
        if node.op == "arg":
            return LEAVES[node.args[0]]
        if node.op == "param":
            return "sm_scale" if node.args[0] == "__sm_scale" else f"P_{node.args[0]}"
        if node.op == "const":
            v = node.value
            if isinstance(v, float) and v != v:
                return 'float("nan")'
            if isinstance(v, float) and abs(v) == float("inf"):
                return f'float("{"-" if v < 0 else ""}inf")'
            return repr(v)
        return None

    def _expr(self, n: g.Node, names: dict) -> str:
        a = [names[c] for c in n.children]
        kinds = [c.kind for c in n.children]
        f = [x if k == "float" else f"tl.cast({x}, tl.float32)" for x, k in zip(a, kinds)]
        op = n.op
        if op == "load":
            return self._load(n, a)
        if op in INFIX:
            return f"({a[0]} {INFIX[op]} {a[1]})"
        if op == "div":
            return f"({f[0]} / {f[1]})"
        if op in ("floordiv", "mod"):
            return self._floordiv_mod(n, a, f)
        if op in ("min", "max"):
            x, y = f if "float" in kinds else a
            return f"tl.{op}imum({x}, {y})"
        if op == "where":
            x, y = f[1:] if n.kind == "float" else a[1:]
            return f"tl.where({a[0]}, {x}, {y})"
        if op in FLOAT_FN:
            return f"{FLOAT_FN[op]}({f[0]})"
        if op == "tanh":
            return f"{self.tanh}({f[0]})"
        if op == "saturate":
            return f"_saturate({f[0]})"
        if op == "round_bf16":  # to the half type torch computed in, and back
            return f"_round_bf16({f[0]})"
        if op == "round_fp16":
            return f"{f[0]}.to(tl.float16).to(tl.float32)"
        unary = {
            "neg": f"(-{a[0]})",
            "abs": f"tl.abs({a[0]})",
            "not": f"({a[0]} == 0)",
            "square": f"({a[0]} * {a[0]})",
            "cast_float": f[0] if a else "",
            "cast_int": f"tl.cast({a[0]}, tl.int32)",
            "cast_long": f"tl.cast({a[0]}, tl.int64)",
            "cast_bool": f"({a[0]} != 0)",
        }
        return unary[op]

    def _load(self, n: g.Node, idx: list[str]) -> str:
        name = n.args[0]
        parts = []
        for k, (i, node) in enumerate(zip(idx, n.children)):
            if not self.nonneg(node):  # torch reads t[-1] as the last element: wrap, as it does
                i = f"tl.where({i} < 0, {i} + c_{name}_n{k}, {i})"
            # then clamped: lanes past the edge of a ragged tile never read out of bounds
            parts.append(f"tl.minimum(tl.maximum({i}, 0), c_{name}_n{k} - 1) * c_{name}_s{k}")
        value = f"tl.load(c_{name} + {' + '.join(parts) if parts else '0'})"
        if n.kind == "float":
            return f"tl.cast({value}, tl.float32)"
        return f"({value} != 0)" if n.kind == "bool" else value

    def _floordiv_mod(self, n: g.Node, a: list[str], f: list[str]) -> str:
        x, y = n.children
        if n.kind == "float":
            quotient = f"tl.floor({f[0]} / {f[1]})"
            return quotient if n.op == "floordiv" else f"({f[0]} - {quotient} * {f[1]})"
        sym = "//" if n.op == "floordiv" else "%"
        if self.nonneg(x) and self.positive(y):
            return f"({a[0]} {sym} {a[1]})"
        # Triton's // and % truncate toward zero; torch floors: correct when signs differ.
        fix = f"((({a[0]} % {a[1]}) != 0) & ((({a[0]} % {a[1]}) < 0) != ({a[1]} < 0)))"
        if n.op == "floordiv":
            return f"(({a[0]} // {a[1]}) - tl.cast({fix}, tl.int32))"
        return f"(({a[0]} % {a[1]}) + tl.where({fix}, {a[1]}, 0))"

    def nonneg(self, n: g.Node) -> bool:
        if n.op == "arg":
            return True
        if n.op == "const":
            return n.value >= 0
        if n.op == "param":
            return self._fact(n, "ge", 0)
        if n.op in ("add", "mul", "floordiv", "mod", "min", "cast_int", "cast_long"):
            return all(self.nonneg(c) for c in n.children)
        if n.op == "max":
            return any(self.nonneg(c) for c in n.children)
        return n.op in ("abs", "square")

    def positive(self, n: g.Node) -> bool:
        if n.op == "const":
            return n.value > 0
        return n.op == "param" and self._fact(n, "gt", 0)

    def _fact(self, param: g.Node, op: str, bound) -> bool:
        """A sign fact about a captured number, true now and guarded for later values."""
        value = self.params.get(param.args[0])
        ok = value is not None and (value > bound if op == "gt" else value >= bound)
        if ok:
            self.guards.append(g.make(op, param, g.const(bound)))
        return ok
