"""Trace score_mod / mask_mod into expression graphs with symbolic stand-ins.

The mods run once on `Sym` objects: Python operators and torch functions (through
`__torch_function__`) build graph nodes instead of computing. Indexing a captured tensor with
symbolic indices becomes a `load`. Anything else names itself in a CompilerError. Python control
flow on a value that depends on the indices cannot be traced (use torch.where / & / |); on a
captured number it is evaluated and recorded as a guard the generated module checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from kernelscale.propose.compiler import graph as g
from kernelscale.propose.compiler.captures import Binder, Capture
from kernelscale.propose.compiler.errors import CompilerError
from kernelscale.propose.compiler.evaluate import evaluate, is_static
from kernelscale.propose.compiler.ops import lookup_op
from kernelscale.propose.compiler.precision import DTYPES, LOWP, settle


@dataclass
class Trace:
    score: g.Node | None  # the modified score (float), in terms of arg("score")
    mask: g.Node | None  # keep (bool)
    captures: dict[str, Capture]
    guards: list[tuple[g.Node, object]] = field(default_factory=list)  # static node == value

    @property
    def params(self) -> dict[str, object]:
        return {c.name: c.value for c in self.captures.values() if c.kind == "scalar"}

    @property
    def values(self) -> dict[str, object]:
        """Every capture's trace-time value (numbers and tensors) by name."""
        return {c.name: c.value for c in self.captures.values()}

    @property
    def tensors(self) -> dict[str, Capture]:
        return {c.name: c for c in self.captures.values() if c.kind == "tensor"}


class Tracer:
    def __init__(self):
        self.binder = Binder(self._param)
        self.guards: list[tuple[g.Node, object]] = []
        self.where = "score_mod"

    def _param(self, capture: Capture) -> Sym:
        kind = (
            "bool"
            if isinstance(capture.value, bool)
            else "int"
            if isinstance(capture.value, int)
            else "float"
        )
        return Sym(g.Node("param", (capture.name,), kind), self)

    def lift(self, value) -> g.Node:
        """A graph node for an operand: Sym, Python number, 0-d or captured tensor."""
        if isinstance(value, Sym):
            return value.node
        if isinstance(value, (bool, int, float)):
            return g.const(value)
        if isinstance(value, torch.Tensor):
            name = self.binder.tensor_names.get(id(value))
            if name is not None and value.dim() == 0:
                return g.Node("load", (name,), _tensor_kind(value))
            if value.dim() == 0:
                return g.const(value.item())
            raise CompilerError(
                f"tensor of shape {tuple(value.shape)} used whole in {self.where} "
                f"(index it with the index arguments, e.g. t[q_idx])"
            )
        raise CompilerError(f"cannot compile a value of type {type(value).__name__} in {self.where}")

    def load(self, tensor: torch.Tensor, index) -> Sym:
        name = self.binder.tensor_names.get(id(tensor))
        if name is None:
            raise CompilerError(
                f"{self.where} indexes a tensor the compiler cannot reach (made inside the mod, or "
                f"held in an object's attribute?); capture it as a closure variable, a global, a "
                f"default value or a partial argument (or in a tuple, list or dict of those)"
            )
        items = index if isinstance(index, tuple) else (index,)
        if len(items) != tensor.dim() or any(
            i is Ellipsis or isinstance(i, slice) or i is None for i in items
        ):
            raise CompilerError(
                f"{self.where}: `{name}[...]` must index every one of its {tensor.dim()} "
                f"dims with a scalar index (no slices)"
            )
        nodes = [self.lift(i) for i in items]
        if any(n.kind == "float" for n in nodes):
            raise CompilerError(f"{self.where}: `{name}` indexed with a float value")
        if any(n.kind == "bool" for n in nodes):
            raise CompilerError(
                f"{self.where}: `{name}` indexed with a boolean, which torch reads as a mask that "
                f"selects elements, not as a position; index it with .long() of it"
            )
        width = "i64" if tensor.dtype == torch.int64 else LOWP.get(tensor.dtype)
        return Sym(g.Node("load", (name, *nodes), _tensor_kind(tensor)), self, width)

    def concrete(self, sym: Sym, what: str):
        """A Python value where Python needs one (if, int(), range): only for static values."""
        if not is_static(sym.node):
            raise CompilerError(
                f"{self.where} uses a value that depends on the indices or the score in "
                f"Python {what} ({sym.node!r}); use torch.where, &, |, ~ instead"
            )
        value = evaluate(sym.node, {c.name: c.value for c in self.binder.captures.values()})
        self.guards.append((sym.node, value))
        return value


class Sym:
    """A traced value; operators build graph nodes."""

    __slots__ = ("node", "tracer", "lowp")

    def __init__(self, node: g.Node, tracer: Tracer, lowp: str | None = None):
        # lowp: the half precision torch would compute this value in (precision.py), "i64" for
        # an integer torch holds in int64 (`.long()`, an int64 table's element), or None
        self.node, self.tracer, self.lowp = node, tracer, lowp

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        tracer = next(a.tracer for a in _flatten(args, kwargs) if isinstance(a, Sym))
        out = lookup_op(func, tracer.where)(tracer, *args, **(kwargs or {}))
        return settle(getattr(func, "__name__", ""), out, list(_flatten(args, kwargs)))

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        if name == "dtype":
            if self.lowp is not None:
                return DTYPES[self.lowp]  # bf16, fp16 or int64
            return {"bool": torch.bool, "int": torch.int32, "float": torch.float32}[self.node.kind]
        if name == "device":
            return torch.device("cpu")
        handler = lookup_op(name, self.tracer.where)
        return lambda *args, **kwargs: settle(
            name, handler(self.tracer, self, *args, **kwargs), [self, *_flatten(args, kwargs)]
        )

    def __bool__(self):
        return bool(self.tracer.concrete(self, "control flow (if / and / or / min / max)"))

    def __index__(self):
        return int(self.tracer.concrete(self, "indexing"))

    def __int__(self):
        return int(self.tracer.concrete(self, "int()"))

    def __float__(self):
        return float(self.tracer.concrete(self, "float() / math.*"))

    def __hash__(self):
        return id(self)

    def __repr__(self):
        return f"Sym({self.node!r})"


def _binary(op: str, reflected: bool = False):
    def method(self, other):
        a, b = (other, self) if reflected else (self, other)
        return settle(op, lookup_op(op, self.tracer.where)(self.tracer, a, b), [a, b])

    return method


for _name in (
    "add",
    "sub",
    "mul",
    "truediv",
    "floordiv",
    "mod",
    "pow",
    "and",
    "or",
    "xor",
    "lshift",
    "rshift",
    "lt",
    "le",
    "gt",
    "ge",
    "eq",
    "ne",
):
    setattr(Sym, f"__{_name}__", _binary(_name))
    if _name not in ("lt", "le", "gt", "ge", "eq", "ne"):
        setattr(Sym, f"__r{_name}__", _binary(_name, reflected=True))
for _name in ("neg", "abs", "invert"):
    setattr(
        Sym,
        f"__{_name}__",
        lambda self, _op=_name: settle(_op, lookup_op(_op, self.tracer.where)(self.tracer, self), [self]),
    )
Sym.__pos__ = lambda self: self


def _tensor_kind(tensor: torch.Tensor) -> str:
    return "bool" if tensor.dtype == torch.bool else "float" if tensor.dtype.is_floating_point else "int"


def _flatten(args, kwargs):
    for a in list(args) + list((kwargs or {}).values()):
        if isinstance(a, (tuple, list)):
            yield from a
        else:
            yield a


def trace(score_mod, mask_mod) -> Trace:
    """Trace both mods with one binder, so shared captures get one name."""
    tracer = Tracer()
    idx = {n: Sym(g.arg(n), tracer) for n in g.INDEX_ARGS}
    score = mask = None
    if score_mod is not None:
        tracer.where = "score_mod"
        fn = tracer.binder.bind(score_mod, ("score_mod",))
        out = _run(tracer, fn, (Sym(g.arg("score"), tracer), idx["b"], idx["h"], idx["q"], idx["kv"]))
        score = out if out.kind == "float" else g.make("cast_float", out)
    if mask_mod is not None:
        tracer.where = "mask_mod"
        fn = tracer.binder.bind(mask_mod, ("mask_mod",))
        out = _run(tracer, fn, (idx["b"], idx["h"], idx["q"], idx["kv"]))
        mask = out if out.kind == "bool" else g.make("cast_bool", out)
    return Trace(score, mask, tracer.binder.captures, tracer.guards)


def _run(tracer: Tracer, fn, args) -> g.Node:
    try:
        return tracer.lift(fn(*args))
    except CompilerError:
        raise
    except Exception as exc:
        raise CompilerError(f"cannot trace {tracer.where}: {type(exc).__name__}: {exc}") from None
