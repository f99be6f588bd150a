"""Relative-position tables: costly score terms that depend on (kv − q) computed once per call.

A T5-style bucketed bias looks up `table[bucket(kv − q), h]`, where `bucket` takes a log, a
few comparisons and a clamp: work on every score element, then a dependent load. But the term
takes only Sq + Skv − 1 distinct values per (b, h), one per distance. When a subexpression of the
score or the mask reaches q and kv only through distances (affine forms c·(kv − q) + r, where r
has neither), it is *tabulated*: a small kernel evaluates it once per call for every distance,
into a (B or 1, H or 1, Sq + Skv − 1) tensor, and the attention kernel's inner loop does one
load from it (`table[b, h, kv − q + Sq − 1]`, a strip that stays in cache) instead of the chain.

Only terms that cost work per element are worth it (a load, a transcendental, a division): an
ALiBi slope · (kv − q) is a multiply-add, cheaper than any load, and stays where it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kernelscale.propose.compiler import graph as g
from kernelscale.propose.compiler.codegen import Emitter
from kernelscale.propose.compiler.rewrite import substitute

COSTLY = {
    "load",
    "log",
    "log2",
    "exp",
    "exp2",
    "sqrt",
    "rsqrt",
    "tanh",
    "sigmoid",
    "sin",
    "cos",
    "div",
    "floordiv",
    "mod",
}
# The Triton helpers the fill kernels call, renamed to the _tl_ copies of templates/_tl_helpers.j2
# where a template (Gluon's, FA4's) has helpers of the same names for its own kernel.
TRITON_HELPERS = re.compile(r"(?<![\w.])(_saturate|_round_bf16|_tanh_exact|_tanh_fast)\(")
POSITIONS = frozenset({"q", "kv"})
SQ = g.Node("arg", ("Sq",), "int")  # the query length: a kernel argument (program level)


@dataclass(frozen=True)
class RelTable:
    """One tabulated subexpression; `name` is its tensor's name in the generated kernels."""

    name: str
    node: g.Node  # in terms of q and kv, which it reaches only through distances
    per_b: bool
    per_h: bool

    @property
    def dtype(self) -> str:
        return {"float": "torch.float32", "int": "torch.int32", "bool": "torch.int8"}[self.node.kind]

    def lookup(self) -> g.Node:
        """The load that replaces the subexpression in the attention kernel."""
        distance = g.make("add", g.make("sub", g.arg("kv"), g.arg("q")), g.make("sub", SQ, g.const(1)))
        b = g.arg("b") if self.per_b else g.const(0)
        h = g.arg("h") if self.per_h else g.const(0)
        return g.Node("load", (self.name, b, h, distance), self.node.kind)


def find_tables(roots) -> list[RelTable]:
    """The outermost subexpressions of `roots` worth tabulating, each once."""
    found: dict[g.Node, None] = {}
    seen: set[g.Node] = set()

    def visit(node: g.Node) -> None:
        if node in seen or node in found:
            return
        seen.add(node)
        if _worth_a_table(node):
            found[node] = None
            return
        for child in node.children:
            visit(child)

    for root in roots:
        if root is not None:
            visit(root)
    return [RelTable(f"__rel{i}", node, "b" in node.deps, "h" in node.deps) for i, node in enumerate(found)]


def tabulate(roots, tables: list[RelTable]) -> list:
    """`roots` with every tabulated subexpression replaced by its lookup (None stays None)."""
    table = {t.node: t.lookup() for t in tables}
    return [substitute(r, table) if r is not None else None for r in roots]


def _worth_a_table(node: g.Node) -> bool:
    deps = node.deps
    if deps & {"score", "qk"} or not POSITIONS <= deps:
        return False
    return _through_distances(node) and _costs_per_element(node)


def _through_distances(node: g.Node) -> bool:
    """Whether q and kv reach `node` only through affine distances c·(kv − q) + r."""
    if not node.deps & POSITIONS:
        return True
    form = _affine(node)
    if form is not None and form[0] == -form[1] != 0:
        return True
    if node.op == "arg":
        return False  # q or kv on its own
    return all(_through_distances(child) for child in node.children)


def _affine(node: g.Node) -> tuple[int, int] | None:
    """(coefficient of q, coefficient of kv) when `node` is an integer affine form in them with
    constant coefficients (the rest may be anything free of q and kv); else None."""
    if not node.deps & POSITIONS:
        return (0, 0)
    if node.kind != "int":
        return None
    if node.op == "arg":
        return (1, 0) if node.args[0] == "q" else (0, 1)
    parts = [_affine(c) for c in node.children]
    if None in parts:
        return None
    if node.op in ("add", "sub"):
        sign = 1 if node.op == "add" else -1
        return (parts[0][0] + sign * parts[1][0], parts[0][1] + sign * parts[1][1])
    if node.op == "neg":
        return (-parts[0][0], -parts[0][1])
    if node.op == "mul":
        for k, other in ((0, 1), (1, 0)):
            factor = node.children[k]
            if factor.is_const and isinstance(factor.value, int):
                return (factor.value * parts[other][0], factor.value * parts[other][1])
    return None


def _costs_per_element(node: g.Node) -> bool:
    """A load, a transcendental or a division among the parts that depend on both q and kv (the
    parts that depend on one only are hoisted out of the inner loop already)."""
    return any(n.op in COSTLY and POSITIONS <= n.deps for n in g.walk([node]))


# What the backends' templates need of the tables' fill kernels (templates/_tables.j2): the Triton
# and Gluon modules and the FA4 module launch the same Triton kernels.


def table_kernel(em: Emitter, table: RelTable, index: int) -> dict:
    """What the template needs to emit the kernel that fills one table: the term's Triton
    statements at every level, evaluated at q = 0 and kv = the distance."""
    lines, names = em.emit([table.node], g.LEVELS, {}, f"t{index}_")
    return {
        "text": short(g.render(table.node), 120),
        "lines": lines,
        "value": names[table.node],
        "dtype": table.dtype,
        "per_b": table.per_b,
        "per_h": table.per_h,
    }


def tensor_args(name: str, ndim: int) -> list[str]:
    """A captured tensor as kernel arguments: pointer, sizes, strides (the emitted loads use them)."""
    return [f"c_{name}"] + [f"c_{name}_n{i}" for i in range(ndim)] + [f"c_{name}_s{i}" for i in range(ndim)]


def short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def own_helpers(kernel: dict) -> dict:
    """A fill kernel of table_kernel calling the _tl_ helpers."""
    return {**kernel, "lines": [TRITON_HELPERS.sub(r"_tl\1(", line) for line in kernel["lines"]]}
