"""Expression graph -> CuTe DSL statements for FlashAttention-4's score_mod / mask_mod hooks.

FA4 calls a score_mod per group of `vec_size` scores (1 when the mod reads captured tensors) with
TensorSSA vectors: score (fp32), b_idx, h_idx, q_idx, kv_idx (int32). Every value the emitted code
computes is such a vector of the same length, so constants and captured numbers are broadcast
with `cute.full_like(q_idx, value, dtype)`, and every conversion is spelled out: the graph knows
each node's kind (bool / int / float), CuTe's implicit promotion rules are not relied on.

Names the emitted code relies on: score, b_idx, h_idx, q_idx, kv_idx (the hook's arguments),
aux_tensors (FA4's captured-tensor list, then the tables of distances), P_<name> (captured numbers,
Python values baked in at build time), N_<name>_<i> (sizes of captured tensors and tables), Sq
(the query length, where a table's lookup needs it), and the helpers `_gather<n>(tensor, i0, ..)`
(a per-lane load from an n-dim tensor), `_floor_div` and `_floor_mod` of the fa4 template.

Integer division and modulo are written so that they floor whatever CuTe's `//` does with
negative operands (truncate or floor), and only where the operands' signs are not known.
"""

from __future__ import annotations

import itertools

from kernelscale.propose.compiler import graph as g
from kernelscale.propose.compiler.codegen import INFIX as TRITON_INFIX
from kernelscale.propose.compiler.codegen import Emitter
from kernelscale.propose.compiler.rewrite import LOG2E

REL_PREFIX = "__rel"  # tables of distances (tables.py): filled by us, read only in range

LEAVES = {"q": "q_idx", "kv": "kv_idx", "b": "b_idx", "h": "h_idx", "qk": "score", "score": "score"}
DTYPES = {"float": "cutlass.Float32", "int": "cutlass.Int32", "bool": "cutlass.Boolean"}
# Python's operators, as the Triton backend writes them; CuTe's TensorSSA overloads the same ones
INFIX = {op: sym for op, sym in TRITON_INFIX.items() if op not in g.LOGICAL | {"shl", "shr"}}
BITWISE = {op: TRITON_INFIX[op] for op in (*sorted(g.LOGICAL), "shl", "shr")}
MATH = {
    "exp2": "cute.math.exp2({0})",
    "exp": "cute.math.exp2({0} * " + repr(LOG2E) + ")",
    "log": "cute.math.log({0})",
    "log2": "cute.math.log2({0})",
    "sqrt": "cute.math.sqrt({0})",
    "rsqrt": "cute.math.rsqrt({0})",
    "sigmoid": "(1.0 / (1.0 + cute.math.exp2({0} * " + repr(-LOG2E) + ")))",
    "sin": "cute.math.sin({0})",
    "cos": "cute.math.cos({0})",
}


class CuteEmitter:
    """Names nodes and writes their CuTe statements; one instance per generated module."""

    def __init__(
        self, params: dict, tensor_slots: dict[str, int], fast_tanh: bool, inline: set[str] = frozenset()
    ):
        self.tensor_slots = tensor_slots  # captured tensor name -> index in aux_tensors
        self.inline = inline  # small tables read at (b, h) only: their values are in the hook
        self.fast_tanh = fast_tanh
        self._signs = Emitter(params, fast_tanh)  # sign facts about captured numbers (and guards)
        self._counter = itertools.count()

    @property
    def guards(self) -> list[g.Node]:
        return self._signs.guards

    def emit(self, roots, prefix: str) -> tuple[list[str], dict]:
        """Statements computing every node of `roots`, children first; returns (lines, names)."""
        names: dict = {}
        lines: list[str] = []
        for node in g.walk(roots):
            leaf = self._leaf(node)
            if leaf is not None:
                names[node] = leaf
                continue
            var = f"{prefix}{next(self._counter)}"
            if node.op == "load":
                lines += self._load(node, var, names)
            else:
                lines.append(f"{var} = {self._expr(node, names)}")
            names[node] = var
        return lines, names

    def _leaf(self, node: g.Node) -> str | None:
        if node.op == "arg" and node.args[0] == "Sq":  # a table's lookup: Sq is a local of _make_hooks
            return self._broadcast("Sq", "int")
        if node.op == "arg":
            return LEAVES[node.args[0]]
        if node.op == "param":
            name = "sm_scale" if node.args[0] == "__sm_scale" else f"P_{node.args[0]}"
            return self._broadcast(name, node.kind)
        if node.op == "const":
            return self._broadcast(_literal(node.value), node.kind)
        return None

    @staticmethod
    def _broadcast(text: str, kind: str) -> str:
        # the kinds are named after the Python constructors that make a value of them
        return f"cute.full_like(q_idx, {kind}({text}), {DTYPES[kind]})"

    def _expr(self, n: g.Node, names: dict) -> str:
        op, kids = n.op, n.children
        if op in ("add", "sub", "mul", "min", "max") or op in g.COMPARE:
            common = "float" if any(c.kind == "float" for c in kids) else "int"
            a, b = (_as(names[c], c.kind, common) for c in kids)
            if op in ("min", "max"):
                return f"cute.where({a} {'<' if op == 'min' else '>'} {b}, {a}, {b})"
            return f"({a} {INFIX[op]} {b})"
        if op in BITWISE:
            kind = n.kind if op in g.LOGICAL else "int"
            a, b = (_as(names[c], c.kind, kind) for c in kids)
            return f"({a} {BITWISE[op]} {b})"
        if op == "div":
            a, b = (_as(names[c], c.kind, "float") for c in kids)
            return f"({a} / {b})"
        if op in ("floordiv", "mod"):
            return self._floordiv_mod(n, names)
        if op == "where":
            cond, x, y = kids
            return f"cute.where({_as(names[cond], cond.kind, 'bool')}, {_as(names[x], x.kind, n.kind)}, {_as(names[y], y.kind, n.kind)})"
        return self._unary(n, names[kids[0]], kids[0].kind)

    def _unary(self, n: g.Node, x: str, kind: str) -> str:
        op = n.op
        if op in MATH:
            return MATH[op].format(_as(x, kind, "float"))
        if op in ("round_bf16", "round_fp16"):  # to the half type torch computed in, and back
            half = "cutlass.BFloat16" if op == "round_bf16" else "cutlass.Float16"
            return f"{_as(x, kind, 'float')}.to({half}).to(cutlass.Float32)"
        if op == "saturate":
            return f"_saturate({_as(x, kind, 'float')})"
        if op == "tanh":
            fast = ", fastmath=True" if self.fast_tanh else ""
            return f"cute.math.tanh({_as(x, kind, 'float')}{fast})"
        if op in ("floor", "ceil"):
            return f"cute.math.{op}({x})" if kind == "float" else x
        if op == "neg":
            return f"(-{_as(x, kind, n.kind)})"
        if op == "abs":
            v = _as(x, kind, n.kind)
            return f"cute.where({v} < {_zero(n.kind)}, -{v}, {v})"
        if op == "square":
            v = _as(x, kind, n.kind)
            return f"({v} * {v})"
        if op == "not":
            return f"({_as(x, kind, 'int')} == 0)"
        if op in ("cast_float", "cast_int", "cast_long", "cast_bool"):  # long: narrowed (ranges.py)
            return _as(x, kind, n.kind)
        raise ValueError(f"the CuTe backend has no rule for {op}")

    def _floordiv_mod(self, n: g.Node, names: dict) -> str:
        x, y = n.children
        if n.kind == "float":
            a, b = _as(names[x], x.kind, "float"), _as(names[y], y.kind, "float")
            quotient = f"cute.math.floor({a} / {b})"
            return quotient if n.op == "floordiv" else f"({a} - {quotient} * {b})"
        a, b = _as(names[x], x.kind, "int"), _as(names[y], y.kind, "int")
        sym = "//" if n.op == "floordiv" else "%"
        if self._signs.nonneg(x) and self._signs.positive(y):
            return f"({a} {sym} {b})"
        # |a| // |b| is the same under truncating and flooring division; the sign and the floor
        # correction are then explicit.
        return f"_floor_{'div' if n.op == 'floordiv' else 'mod'}({a}, {b})"

    def _load(self, n: g.Node, var: str, names: dict) -> list[str]:
        name, idx_nodes = n.args[0], n.children
        lines = []
        indices = []
        for k, node in enumerate(idx_nodes):
            i = _as(names[node], node.kind, "int")
            size = f"cute.full_like(q_idx, N_{name}_{k}, cutlass.Int32)"
            if name.startswith(REL_PREFIX) and not self._signs.nonneg(node):
                # a table's lookup is in range for every real score, no wrap; FA4 may score rows
                # past Sq (a tile's padding), whose distances fall below 0: clamped, not read there
                lines.append(f"{var}_w{k} = cute.where({i} < 0, {_zero('int')}, {i})")
                i = f"{var}_w{k}"
            elif not self._signs.nonneg(node):
                # torch reads t[-1] as the last element: negative indices wrap, as there; what is
                # still below zero (a lane past the edge) is clamped
                lines.append(f"{var}_w{k} = cute.where({i} < 0, {i} + {size}, {i})")
                i = f"{var}_w{k}"
                lines.append(f"{var}_w{k} = cute.where({i} < 0, {_zero('int')}, {i})")
            # clamped like the Triton backend: a captured tensor is never read out of bounds
            last = f"cute.full_like(q_idx, N_{name}_{k} - 1, cutlass.Int32)"
            lines.append(f"{var}_i{k} = cute.where({i} >= {size}, {last}, {i})")
            indices.append(f"{var}_i{k}")
        if name in self.inline:  # no memory access: a select over the table's values
            stored = "float" if n.kind == "float" else "int"
            loaded = f"_select(T_{name}, {indices[0]}, {DTYPES[stored]})"
            lines.append(f"{var} = {_as(loaded, stored, n.kind)}")
            return lines
        loaded = f"_gather{len(indices)}(aux_tensors[{self.tensor_slots[name]}], {', '.join(indices)})"
        lines.append(f"{var} = {_as(loaded, 'stored', n.kind)}")
        return lines


def _as(text: str, kind: str, want: str) -> str:
    """`text` (a vector of `kind`, or 'stored' for a captured tensor's own dtype) as `want`."""
    if kind == want:
        return text
    if want == "bool":
        return f"({text}.to(cutlass.Int32) != 0)" if kind != "float" else f"({text} != 0.0)"
    if kind == "bool":  # through int32: 0 / 1, as torch converts booleans
        text = f"{text}.to(cutlass.Int32)"
        if want == "int":
            return text
    return f"{text}.to({DTYPES[want]})"


def _zero(kind: str) -> str:
    return f"cute.full_like(q_idx, {'0.0' if kind == 'float' else '0'}, {DTYPES[kind]})"


def _literal(value) -> str:
    if isinstance(value, float) and value != value:
        return '"nan"'
    if isinstance(value, float) and abs(value) == float("inf"):
        return f'"{"-" if value < 0 else ""}inf"'
    return repr(value)
