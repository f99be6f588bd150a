"""The reference's half-precision arithmetic, reproduced where a mod computes in it.

The reference runs a mod in torch, whose type promotion decides each result's dtype: the score
is fp32, but arithmetic among bf16 or fp16 tensors only (a bf16 table times an index, a python
float, another bf16 value) stays in that dtype and is rounded to it at every step, and
`.to(torch.bfloat16)` rounds on purpose. The kernel computes in fp32, so each such result is
rounded the same way (round_bf16 / round_fp16 nodes): a bf16 ALiBi slope times a distance of
1000 differs by up to 4 otherwise, far outside any tolerance.

Each traced value carries the precision torch would give it (`Sym.lowp`: None for fp32, "bf16"
or "fp16"); `settle` applies torch's rule to an op's result: fp32 among the float operands wins,
bf16 with fp16 promotes to fp32, one half type alone (with integers or Python numbers) stays.
0-d tensors are read as Python numbers, as torch's promotion ranks them below dimensioned ones.
"""

from __future__ import annotations

import torch

from kernelscale.propose.compiler import graph as g

LOWP = {torch.bfloat16: "bf16", torch.float16: "fp16"}
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "i64": torch.int64}
# Ops that set their result's precision themselves (casts), so settle leaves them alone.
CASTS = {"to", "type", "type_as", "float", "half", "bfloat16", "double", "int", "long", "bool"}


def rounded(node: g.Node, lowp: str | None) -> g.Node:
    """`node` (float) rounded to `lowp` (None: fp32, nothing to do)."""
    return node if lowp is None else g.make(f"round_{lowp}", node)


def settle(name: str, out, operands):
    """`out`, the result of op `name` on `operands`, with torch's precision for it."""
    from kernelscale.propose.compiler.tracer import Sym

    if not isinstance(out, Sym) or name.strip("_") in CASTS:
        return out
    if out.node.kind == "int":  # int64 wins over int32, as in torch (0-d tensors rank below)
        wide = any(isinstance(a, Sym) and a.lowp == "i64" for a in operands) or any(
            isinstance(a, torch.Tensor) and a.dim() > 0 and a.dtype == torch.int64 for a in operands
        )
        return Sym(out.node, out.tracer, "i64") if wide else out
    if out.node.kind != "float":
        return out
    kinds = set()
    for a in operands:
        if isinstance(a, Sym) and a.node.kind == "float":
            kinds.add(a.lowp or "fp32")
        elif isinstance(a, torch.Tensor) and a.dim() > 0 and a.is_floating_point():
            kinds.add(LOWP.get(a.dtype, "fp32"))
    if len(kinds) != 1 or kinds == {"fp32"}:
        return out
    (lowp,) = kinds
    node = out.node if out.node.op == "load" else rounded(out.node, lowp)
    return Sym(node, out.tracer, lowp)
