"""The expression graph the compiler traces score_mod / mask_mod into.

Nodes are immutable and compare structurally, so equal subexpressions of the score and the mask
are one node (common subexpression elimination for free). Each node knows its value kind
(bool / int / float) and which kernel inputs it depends on, which decides where codegen puts it:
per program (b, h and parameters only), per query row, per key column, or per score element.

Leaves:
  arg(name)          name in score, b, h, q, kv (q_idx / kv_idx) and qk (the raw q·k dot)
  const(value)       a Python number
  param(name)        a Python number captured by a mod (closure or global): a kernel argument,
                     so one kernel serves every shape and every value of it
  load(name, *idx)   an element of a captured tensor
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

UNARY = {
    "neg",
    "abs",
    "tanh",
    "exp",
    "exp2",
    "log",
    "log2",
    "sqrt",
    "rsqrt",
    "sigmoid",
    "not",
    "floor",
    "ceil",
    "cast_float",
    "cast_int",
    "cast_long",
    "cast_bool",
    "square",
    "sin",
    "cos",
    "saturate",
    "round_bf16",
    "round_fp16",
}
BINARY = {
    "add",
    "sub",
    "mul",
    "div",
    "floordiv",
    "mod",
    "min",
    "max",
    "lt",
    "le",
    "gt",
    "ge",
    "eq",
    "ne",
    "and",
    "or",
    "xor",
    "shl",
    "shr",
}
COMPARE = {"lt", "le", "gt", "ge", "eq", "ne"}
LOGICAL = {"and", "or", "xor"}
FLOAT_UNARY = {"tanh", "exp", "exp2", "log", "log2", "sqrt", "rsqrt", "sigmoid", "cast_float", "sin", "cos"}
# saturate(x): finite x clamped to +-1e38, infinities and NaN kept (numerics.py says why)
FLOAT_UNARY |= {"saturate", "round_bf16", "round_fp16"}  # round_*: to a half type and back
INDEX_ARGS = ("b", "h", "q", "kv")
# Dependence "levels", innermost last: codegen hoists a node to the outermost level it allows.
LEVELS = ("program", "row", "col", "element")


@dataclass(frozen=True)
class Node:
    op: str
    args: tuple = ()
    kind: str = "float"  # "bool" | "int" | "float"
    _hash: int = field(default=0, compare=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "_hash", hash((self.op, self.args, self.kind)))

    def __hash__(self) -> int:
        return self._hash

    @cached_property
    def children(self) -> tuple[Node, ...]:
        return tuple(a for a in self.args if isinstance(a, Node))

    @cached_property
    def deps(self) -> frozenset[str]:
        """Kernel inputs this value depends on: subset of score/qk, b, h, q, kv, param names."""
        if self.op == "arg":
            return frozenset({self.args[0]})
        if self.op == "param":
            return frozenset({"param"})
        # a load is never static: its value lives in a tensor, not in Python
        out: frozenset[str] = frozenset({"tensor"}) if self.op == "load" else frozenset()
        for child in self.children:
            out |= child.deps
        return out

    @property
    def level(self) -> str:
        deps = self.deps
        if deps & {"score", "qk"} or {"q", "kv"} <= deps:
            return "element"
        if "kv" in deps:
            return "col"
        if "q" in deps:
            return "row"
        return "program"

    @property
    def is_const(self) -> bool:
        return self.op == "const"

    @property
    def value(self):
        return self.args[0]

    def __repr__(self) -> str:
        return render(self)


def const(value) -> Node:
    if isinstance(value, bool):
        return Node("const", (value,), "bool")
    if isinstance(value, int):
        return Node("const", (value,), "int")
    return Node("const", (float(value),), "float")


def arg(name: str) -> Node:
    return Node("arg", (name,), "float" if name in ("score", "qk") else "int")


def result_kind(op: str, kinds: list[str]) -> str:
    """Value kind of an op's result, following torch's promotion for these cases."""
    if op in COMPARE or op == "not" or op == "cast_bool":
        return "bool"
    if op in FLOAT_UNARY or op == "div":
        return "float"
    if op in ("cast_int", "cast_long"):
        return "int"
    if op in LOGICAL:
        return "bool" if all(k == "bool" for k in kinds) else "int"
    if op == "where":
        kinds = kinds[1:]
    if "float" in kinds:
        return "float"
    if op in ("floor", "ceil"):
        return kinds[0]
    return "int" if "int" in kinds or op not in ("min", "max", "where") else kinds[0]


def make(op: str, *args) -> Node:
    kinds = [a.kind for a in args if isinstance(a, Node)]
    return Node(op, tuple(args), result_kind(op, kinds))


INT32 = (-(2**31), 2**31 - 1)


def wrap_int32(value: int) -> int:
    """A Python int as torch converts it for an int32 tensor's arithmetic: two's complement."""
    return (value - INT32[0]) % 2**32 + INT32[0]


def wide_ints(roots) -> bool:
    """Does the graph compute in 64-bit integers (`.long()`, a constant beyond int32)?"""
    return any(
        n.op == "cast_long" or (n.is_const and n.kind == "int" and not INT32[0] <= n.value <= INT32[1])
        for n in walk(roots)
    )


def walk(roots) -> list[Node]:
    """Every node reachable from roots, children before parents (a topological order)."""
    seen: dict[Node, None] = {}

    def visit(node: Node):
        if node in seen:
            return
        for child in node.children:
            visit(child)
        seen[node] = None

    for root in roots:
        if root is not None:
            visit(root)
    return list(seen)


def render(node: Node) -> str:
    """Readable infix form, for error messages, tests and the generated module's docstring."""
    if node.op == "const":
        return repr(node.value)
    if node.op in ("arg", "param"):
        return node.args[0]
    if node.op == "load":
        return f"{node.args[0]}[{', '.join(render(i) for i in node.args[1:])}]"
    inner = ", ".join(render(a) if isinstance(a, Node) else repr(a) for a in node.args)
    return f"{node.op}({inner})"
