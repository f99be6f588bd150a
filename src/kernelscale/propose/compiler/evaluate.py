"""Evaluate, or print as Python, graph nodes that depend only on constants and parameters.

Used for guards (a parameter the trace had to specialise on, e.g. in an `if`) and for the fixed
row max, which the generated module computes in Python from the captured parameter values.
"""

from __future__ import annotations

import math
import operator

import torch

from kernelscale.propose.compiler.errors import CompilerError
from kernelscale.propose.compiler.graph import Node

_PY = {
    "neg": "(-{0})",
    "abs": "abs({0})",
    "tanh": "math.tanh({0})",
    "exp": "math.exp({0})",
    "exp2": "(2.0 ** {0})",
    "log": "math.log({0})",
    "log2": "math.log2({0})",
    "sqrt": "math.sqrt({0})",
    "rsqrt": "(1.0 / math.sqrt({0}))",
    "sigmoid": "(1.0 / (1.0 + math.exp(-{0})))",
    "not": "(not {0})",
    "floor": "math.floor({0})",
    "ceil": "math.ceil({0})",
    "cast_float": "float({0})",
    "cast_int": "int({0})",
    "cast_long": "int({0})",
    "cast_bool": "bool({0})",
    "square": "({0} * {0})",
    "sin": "math.sin({0})",
    "cos": "math.cos({0})",
    "round_bf16": "float(torch.tensor({0}, dtype=torch.bfloat16))",
    "round_fp16": "float(torch.tensor({0}, dtype=torch.float16))",
    "saturate": "(max(-1e38, min(1e38, {0})) if math.isfinite({0}) else {0})",
    "shl": "({0} << {1})",
    "shr": "({0} >> {1})",
    "add": "({0} + {1})",
    "sub": "({0} - {1})",
    "mul": "({0} * {1})",
    "div": "({0} / {1})",
    "floordiv": "({0} // {1})",
    "mod": "({0} % {1})",
    "min": "min({0}, {1})",
    "max": "max({0}, {1})",
    "lt": "({0} < {1})",
    "le": "({0} <= {1})",
    "gt": "({0} > {1})",
    "ge": "({0} >= {1})",
    "eq": "({0} == {1})",
    "ne": "({0} != {1})",
    "and": "({0} and {1})",
    "or": "({0} or {1})",
    "xor": "({0} != {1})",
    "where": "({1} if {0} else {2})",
}


def is_static(node: Node) -> bool:
    """Depends on nothing but constants and captured Python numbers."""
    return node.deps <= {"param"}


def python_source(node: Node, param_expr) -> str:
    """Python expression text; param_expr(name) gives the text that reads a parameter."""
    if not is_static(node):
        raise CompilerError(f"internal: {node!r} is not static")
    if node.op == "const":
        value = node.value
        if isinstance(value, float) and not math.isfinite(value):
            return f"float('{value}')"  # repr gives inf / nan, names a generated module lacks
        return repr(value)
    if node.op == "param":
        return param_expr(node.args[0])
    return _PY[node.op].format(*(python_source(c, param_expr) for c in node.children))


_FN = {
    "neg": operator.neg,
    "abs": abs,
    "tanh": math.tanh,
    "exp": math.exp,
    "exp2": lambda x: 2.0**x,
    "log": math.log,
    "log2": math.log2,
    "sqrt": math.sqrt,
    "rsqrt": lambda x: 1.0 / math.sqrt(x),
    "sigmoid": lambda x: 1.0 / (1.0 + math.exp(-x)),
    "not": operator.not_,
    "floor": math.floor,
    "ceil": math.ceil,
    "cast_float": float,
    "cast_int": int,
    "cast_long": int,
    "cast_bool": bool,
    "square": lambda x: x * x,
    "sin": math.sin,
    "cos": math.cos,
    "round_bf16": lambda x: float(torch.tensor(x, dtype=torch.bfloat16)),
    "round_fp16": lambda x: float(torch.tensor(x, dtype=torch.float16)),
    "saturate": lambda x: max(-1e38, min(1e38, x)) if math.isfinite(x) else x,
    "shl": operator.lshift,
    "shr": operator.rshift,
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "div": operator.truediv,
    "floordiv": operator.floordiv,
    "mod": operator.mod,
    "min": min,
    "max": max,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
    "eq": operator.eq,
    "ne": operator.ne,
    "and": lambda a, b: a and b,
    "or": lambda a, b: a or b,
    "xor": operator.ne,
    "where": lambda c, a, b: a if c else b,
}


def evaluate(node: Node, params: dict):
    """The value of a static node given parameter values."""
    if not is_static(node):
        raise CompilerError(f"internal: {node!r} is not static")
    if node.op == "const":
        return node.value
    if node.op == "param":
        return params[node.args[0]]
    return _FN[node.op](*(evaluate(c, params) for c in node.children))
