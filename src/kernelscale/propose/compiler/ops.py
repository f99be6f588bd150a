"""The torch operations the tracer understands, by name, and how each becomes graph nodes.

`__torch_function__` hands us torch functions, Tensor methods and operator slots alike; they
are matched by name (`torch.add`, `Tensor.add`, `Tensor.__radd__` all mean add). Every handler
takes (tracer, *args, **kwargs) and returns a Sym.
"""

from __future__ import annotations

import torch

from kernelscale.propose.compiler import graph as g
from kernelscale.propose.compiler.errors import CompilerError
from kernelscale.propose.compiler.precision import LOWP, rounded

BINARY = {
    "add": "add",
    "sub": "sub",
    "subtract": "sub",
    "mul": "mul",
    "multiply": "mul",
    "div": "div",
    "divide": "div",
    "truediv": "div",
    "true_divide": "div",
    "floordiv": "floordiv",
    "floor_divide": "floordiv",
    "mod": "mod",
    "remainder": "mod",
    "minimum": "min",
    "maximum": "max",
    "fmin": "min",
    "fmax": "max",
    "lt": "lt",
    "less": "lt",
    "le": "le",
    "less_equal": "le",
    "gt": "gt",
    "greater": "gt",
    "ge": "ge",
    "greater_equal": "ge",
    "eq": "eq",
    "ne": "ne",
    "not_equal": "ne",
    "and": "and",
    "logical_and": "and",
    "bitwise_and": "and",
    "or": "or",
    "logical_or": "or",
    "bitwise_or": "or",
    "xor": "xor",
    "logical_xor": "xor",
    "bitwise_xor": "xor",
    "lshift": "shl",
    "bitwise_left_shift": "shl",
    "rshift": "shr",
    "bitwise_right_shift": "shr",
}
UNARY = {
    "neg": "neg",
    "negative": "neg",
    "abs": "abs",
    "absolute": "abs",
    "tanh": "tanh",
    "exp": "exp",
    "exp2": "exp2",
    "log": "log",
    "log2": "log2",
    "sqrt": "sqrt",
    "rsqrt": "rsqrt",
    "sigmoid": "sigmoid",
    "logical_not": "not",
    "floor": "floor",
    "ceil": "ceil",
    "square": "square",
    "sin": "sin",
    "cos": "cos",
    "float": "cast_float",
    "int": "cast_int",
    "long": "cast_long",
    "bool": "cast_bool",
}
DTYPE_CASTS = {torch.bool: "cast_bool"}


def lookup_op(func, where: str):
    """Handler for a torch function / method / operator name, or a CompilerError naming it."""
    name = func if isinstance(func, str) else getattr(func, "__name__", repr(func))
    core, reflected = name, False
    if name.startswith("__") and name.endswith("__"):
        core = name[2:-2]
        if core.startswith("r") and core[1:] in BINARY | {"pow": 1}:
            core, reflected = core[1:], True
        elif core.startswith("i") and core[1:] in BINARY:
            core = core[1:]
    handler = _SPECIAL.get(core)
    if handler is None and core in BINARY:
        handler = _binary_handler(BINARY[core])
    if handler is None and core in UNARY:
        handler = _unary_handler(UNARY[core])
    if handler is None:
        raise CompilerError(f"cannot compile `torch.{name}` in {where}")
    if reflected:
        return lambda tracer, a, b, **kw: handler(tracer, b, a, **kw)
    return handler


def _sym(tracer, node, lowp=None):
    from kernelscale.propose.compiler.tracer import Sym

    return Sym(node, tracer, lowp)


def _binary_handler(op):
    def handler(tracer, a, b, **kwargs):
        _no_other_options(tracer, op, kwargs, allowed=("alpha",))
        if kwargs.get("alpha", 1) != 1:
            b = _mul(tracer, b, kwargs["alpha"])
        a, b = _int32_operand(tracer, a, b), _int32_operand(tracer, b, a)
        return _sym(tracer, g.make(op, tracer.lift(a), tracer.lift(b)))

    return handler


def _int32_operand(tracer, x, other):
    """`x` as torch reads it against `other`: a Python int (or captured one) beyond int32 meets an
    int32 tensor wrapped to 32 bits (q_idx * 2654435761 wraps), where Triton would widen it."""
    Sym = _SymType()
    if not isinstance(other, Sym) or other.node.kind != "int" or other.lowp == "i64":
        return x
    if isinstance(x, Sym) and x.node.op == "param" and x.node.kind == "int":
        value = tracer.binder.captures[x.node.args[0]].value
        if isinstance(value, int) and g.wrap_int32(value) != value:
            x = tracer.concrete(x, "arithmetic beyond int32")  # baked in, and guarded
    if isinstance(x, int) and not isinstance(x, bool) and g.wrap_int32(x) != x:
        return g.wrap_int32(x)
    return x


def _no_other_options(tracer, op: str, kwargs: dict, allowed: tuple[str, ...] = ()) -> None:
    """An option the compiler does not model is an error, never silently dropped (a dropped
    `rounding_mode` once turned a floor division into a true one)."""
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise CompilerError(f"cannot compile `{op}` with {', '.join(unknown)}= in {tracer.where}")


def _div(tracer, a, b, rounding_mode=None, **kwargs):
    """torch.div: true division, or rounded toward -inf (`floor`) or toward zero (`trunc`)."""
    _no_other_options(tracer, "div", kwargs)
    x, y = tracer.lift(a), tracer.lift(b)
    if rounding_mode is None:
        return _sym(tracer, g.make("div", x, y))
    if rounding_mode == "floor":
        return _sym(tracer, g.make("floordiv", x, y))
    if rounding_mode != "trunc":
        raise CompilerError(f"cannot compile `div` with rounding_mode={rounding_mode!r} in {tracer.where}")
    if "float" in (x.kind, y.kind):
        q = g.make("div", x, y)
        return _sym(
            tracer, g.make("where", g.make("lt", q, g.const(0.0)), g.make("ceil", q), g.make("floor", q))
        )
    # integers: the floor quotient, one up where the signs differ and the division is inexact
    floor = g.make("floordiv", x, y)
    inexact = g.make("ne", g.make("mod", x, y), g.const(0))
    signs_differ = g.make("ne", g.make("lt", x, g.const(0)), g.make("lt", y, g.const(0)))
    bump = g.make("and", inexact, signs_differ)
    return _sym(tracer, g.make("where", bump, g.make("add", floor, g.const(1)), floor))


def _sign(tracer, x):
    node = tracer.lift(x)
    one, zero = (g.const(1.0), g.const(0.0)) if node.kind == "float" else (g.const(1), g.const(0))
    minus = g.make("neg", one)
    inner = g.make("where", g.make("lt", node, zero), minus, zero)
    return _sym(tracer, g.make("where", g.make("gt", node, zero), one, inner))


def _float_of(tracer, x) -> g.Node:
    node = tracer.lift(x)
    return node if node.kind == "float" else g.make("cast_float", node)


def _log1p(tracer, x):
    return _sym(tracer, g.make("log", g.make("add", g.const(1.0), _float_of(tracer, x))))


def _expm1(tracer, x):
    return _sym(tracer, g.make("sub", g.make("exp", _float_of(tracer, x)), g.const(1.0)))


def _softplus(tracer, x, beta=1.0, threshold=20.0):
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold (as torch does)."""
    node = _float_of(tracer, x)
    scaled = g.make("mul", node, g.const(float(beta)))
    smooth = g.make(
        "div", g.make("log", g.make("add", g.const(1.0), g.make("exp", scaled))), g.const(float(beta))
    )
    return _sym(tracer, g.make("where", g.make("gt", scaled, g.const(float(threshold))), node, smooth))


def _unary_handler(op):
    def handler(tracer, a, *rest, **kwargs):
        if rest or kwargs:
            raise CompilerError(f"cannot compile `{op}` with extra arguments in {tracer.where}")
        return _sym(tracer, g.make(op, tracer.lift(a)), "i64" if op == "cast_long" else None)

    return handler


def _mul(tracer, a, b):
    return _sym(tracer, g.make("mul", tracer.lift(a), tracer.lift(b)))


def _invert(tracer, a):
    node = tracer.lift(a)
    if node.kind != "bool":
        raise CompilerError(f"cannot compile bitwise `~` on an integer in {tracer.where} (only on booleans)")
    return _sym(tracer, g.make("not", node))


def _where(tracer, cond, a=None, b=None):
    if a is None or b is None:
        raise CompilerError(f"cannot compile one-argument `torch.where` in {tracer.where}")
    c = tracer.lift(cond)
    c = c if c.kind == "bool" else g.make("cast_bool", c)
    return _sym(tracer, g.make("where", c, tracer.lift(a), tracer.lift(b)))


def _clamp(tracer, x, min=None, max=None):
    node = tracer.lift(x)
    if min is not None:
        node = g.make("max", node, tracer.lift(min))
    if max is not None:
        node = g.make("min", node, tracer.lift(max))
    return _sym(tracer, node)


def _min_max(op):
    def handler(tracer, a, b=None, **kwargs):
        if b is None or kwargs:
            raise CompilerError(
                f"cannot compile a reduction `torch.{op}` in {tracer.where} (use torch.{op}imum(a, b))"
            )
        return _sym(tracer, g.make(op, tracer.lift(a), tracer.lift(b)))

    return handler


def _pow(tracer, base, exponent):
    x = tracer.lift(base)
    e = tracer.lift(exponent)
    if not e.is_const:
        raise CompilerError(f"cannot compile `pow` with a non-constant exponent in {tracer.where}")
    forms = {0.5: ("sqrt",), -0.5: ("rsqrt",), 2: ("square",)}
    if e.value in forms:
        return _sym(tracer, g.make(forms[e.value][0], x))
    if e.value in (1, 3, 4, -1):
        out = x
        for _ in range(abs(int(e.value)) - 1):
            out = g.make("mul", out, x)
        return _sym(tracer, g.make("div", g.const(1.0), out) if e.value < 0 else out)
    raise CompilerError(f"cannot compile `pow(x, {e.value})` in {tracer.where}")


def _to(tracer, x, *args, **kwargs):
    dtype = kwargs.get("dtype")
    for a in args:
        if isinstance(a, torch.dtype):
            dtype = a
    if dtype is None:
        return x  # a device move: nothing to do in a kernel
    node = tracer.lift(x)
    if dtype == torch.bool:
        return _sym(tracer, g.make("cast_bool", node))
    if dtype.is_floating_point:  # to bf16 / fp16 rounds, as torch's cast does (precision.py)
        lowp = LOWP.get(dtype)
        node = node if node.kind == "float" else g.make("cast_float", node)
        return _sym(tracer, rounded(node, lowp), lowp)
    if dtype == torch.int64:  # 64-bit arithmetic from here on, as in torch
        return x if getattr(x, "lowp", None) == "i64" else _sym(tracer, g.make("cast_long", node), "i64")
    return _sym(tracer, node if node.kind == "int" else g.make("cast_int", node))


def _like(fill):
    def handler(tracer, x, value=None, **kwargs):
        v = fill if value is None else value
        dtype = kwargs.get("dtype")
        if dtype is not None and not isinstance(v, _SymType()):
            v = bool(v) if dtype == torch.bool else float(v) if dtype.is_floating_point else int(v)
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and tracer.lift(x).kind == "float":
            v = float(v)
        return _sym(tracer, tracer.lift(v))

    return handler


def _new(fill):
    """x.new_ones(size, dtype=...) and kin, for a size of one element (FlexAttention's
    and_masks / or_masks / noop_mask start from `b.new_ones((), dtype=torch.bool)`)."""

    def handler(tracer, x, *args, size=None, dtype=None, **kwargs):
        args = list(args)
        if fill != "tensor":
            size = args.pop(0) if args and size is None else size
        value = args.pop(0) if args else kwargs.pop("fill_value", kwargs.pop("data", fill))
        _no_other_options(
            tracer, "new_*", kwargs, allowed=("device", "requires_grad", "layout", "pin_memory")
        )
        if args or any(
            int(n) != 1 for n in ([] if size is None else [size] if isinstance(size, int) else size)
        ):
            raise CompilerError(
                f"cannot compile a new tensor of size {size} in {tracer.where} (only one element)"
            )
        return _like(value)(tracer, x, dtype=dtype)

    return handler


def _SymType():
    from kernelscale.propose.compiler.tracer import Sym

    return Sym


def _getitem(tracer, tensor, index):
    if not isinstance(tensor, torch.Tensor):
        raise CompilerError(f"cannot index a traced value in {tracer.where} (only captured tensors)")
    return tracer.load(tensor, index)


def _relu(tracer, x):
    return _sym(tracer, g.make("max", tracer.lift(x), g.const(0)))


def _masked_fill(tracer, x, mask, value):
    cond = tracer.lift(mask)
    cond = cond if cond.kind == "bool" else g.make("cast_bool", cond)
    return _sym(tracer, g.make("where", cond, tracer.lift(value), tracer.lift(x)))


def _isnan(tracer, x):
    node = tracer.lift(x)
    return _sym(tracer, g.make("ne", node, node) if node.kind == "float" else g.const(False))


def _isinf(tracer, x):
    node = tracer.lift(x)
    if node.kind != "float":
        return _sym(tracer, g.const(False))
    return _sym(tracer, g.make("eq", g.make("abs", node), g.const(float("inf"))))


def _isfinite(tracer, x):
    node = tracer.lift(x)
    if node.kind != "float":
        return _sym(tracer, g.const(True))
    finite = g.make("lt", g.make("abs", node), g.const(float("inf")))  # false for NaN too
    return _sym(tracer, finite)


_SPECIAL = {
    "masked_fill": _masked_fill,
    "isnan": _isnan,
    "isinf": _isinf,
    "isfinite": _isfinite,
    "div": _div,
    "divide": _div,
    "true_divide": _div,
    "sign": _sign,
    "log1p": _log1p,
    "expm1": _expm1,
    "softplus": _softplus,
    "where": _where,
    "clamp": _clamp,
    "clip": _clamp,
    "min": _min_max("min"),
    "max": _min_max("max"),
    "pow": _pow,
    "to": _to,
    "type": _to,
    "zeros_like": _like(0),
    "ones_like": _like(1),
    "full_like": _like(None),
    "new_ones": _new(1),
    "new_zeros": _new(0),
    "new_full": _new(None),
    "new_tensor": _new("tensor"),
    "clamp_min": lambda tracer, x, min: _clamp(tracer, x, min=min),
    "clamp_max": lambda tracer, x, max: _clamp(tracer, x, max=max),
    "getitem": _getitem,
    "invert": _invert,
    "bitwise_not": _invert,
    "relu": _relu,
    "type_as": lambda tracer, x, other: _to(tracer, x, other.dtype),
    "half": lambda tracer, x: _to(tracer, x, torch.float16),
    "bfloat16": lambda tracer, x: _to(tracer, x, torch.bfloat16),
    "double": lambda tracer, x: _to(tracer, x, torch.float64),
}
