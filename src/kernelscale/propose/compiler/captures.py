"""Find what a mod captures (closure cells, module globals, default values, partial arguments,
and what tuples, lists and dicts among them hold) and rebind it.

Tracing runs a *copy* of each mod whose captured Python numbers are replaced by symbolic
parameters, so a kernel never bakes in a value that depends on the shape (an image width derived
from S) or the seed. Captured tensors stay real; they are recognised by identity when a mod
indexes them. Each capture gets a name and a path (how to reach it from the mod), which the
generated `ModelNew.__init__` follows to pull the same objects out of the mods it is given.

Path steps: ("free", var) a closure variable, ("global", name) a module global, ("item", i) an
element of a tuple/list or the value of a dict key, ("default", name) / ("kwdefault", name) a
parameter's default value, ("wrapped",) the function a torch.compile'd mod wraps, ("func",) / ("pos", i) / ("kw", key) the parts of a functools.partial.
"""

from __future__ import annotations

import functools
import re
import sys
import types
from dataclasses import dataclass

import torch


@dataclass
class Capture:
    name: str  # a Python identifier, unique per trace
    path: tuple  # from the root mod ("score_mod" or "mask_mod"), then steps
    kind: str  # "tensor" | "scalar"
    value: object  # the trace-time value


class Binder:
    """Rebinds mods for tracing and records their captures."""

    def __init__(self, make_param):
        self.make_param = make_param  # (Capture) -> symbolic stand-in for a Python number
        self.captures: dict[str, Capture] = {}
        self.tensor_names: dict[int, str] = {}
        self._functions: dict[int, object] = {}

    def bind(self, fn, path: tuple):
        if isinstance(fn, functools.partial):
            args = [self.value(a, path + (("pos", i),)) for i, a in enumerate(fn.args)]
            kwargs = {k: self.value(v, path + (("kw", k),)) for k, v in fn.keywords.items()}
            return functools.partial(self.bind(fn.func, path + (("func",),)), *args, **kwargs)
        if callable(getattr(fn, "_torchdynamo_orig_callable", None)) and hasattr(fn, "__wrapped__"):
            # a torch.compile'd mod computes what the function it wraps computes: trace that one
            return self.bind(fn.__wrapped__, path + (("wrapped",),))
        if not isinstance(fn, types.FunctionType) or _library(fn):
            return fn  # builtins, torch's and other libraries' functions: nothing of the user's inside
        if id(fn) in self._functions:
            return self._functions[id(fn)]
        self._functions[id(fn)] = fn  # recursion guard while rebinding
        closure = None
        if fn.__closure__:
            closure = tuple(
                self._cell(var, cell, path) for var, cell in zip(fn.__code__.co_freevars, fn.__closure__)
            )
        globs = dict(fn.__globals__)
        for name in _global_names(fn.__code__):
            if name in globs:
                globs[name] = self.value(globs[name], path + (("global", name),))
        new = types.FunctionType(fn.__code__, globs, fn.__name__, self._defaults(fn, path), closure)
        if fn.__kwdefaults__:
            new.__kwdefaults__ = {
                k: self.value(v, path + (("kwdefault", k),)) for k, v in fn.__kwdefaults__.items()
            }
        self._functions[id(fn)] = new
        return new

    def _defaults(self, fn, path: tuple) -> tuple | None:
        """Default values of the trailing positional parameters: `def mod(..., bias=bias)` is a
        capture as much as a closure is."""
        if not fn.__defaults__:
            return fn.__defaults__
        code = fn.__code__
        names = code.co_varnames[code.co_argcount - len(fn.__defaults__) : code.co_argcount]
        return tuple(self.value(v, path + (("default", n),)) for n, v in zip(names, fn.__defaults__))

    def _cell(self, var: str, cell, path: tuple):
        try:
            contents = cell.cell_contents
        except ValueError:  # an empty cell (a variable assigned later)
            return cell
        return types.CellType(self.value(contents, path + (("free", var),)))

    def value(self, value, path: tuple):
        if isinstance(value, torch.Tensor):
            if id(value) not in self.tensor_names:
                name = self._register(path, "tensor", value)
                self.tensor_names[id(value)] = name
            return value
        if _numpy_scalar(value):  # np.int64(9), np.float32(0.7): a number as any other
            value = value.item()
        if isinstance(value, (bool, int, float)):
            return self.make_param(self.captures[self._register(path, "scalar", value)])
        if isinstance(value, (types.FunctionType, functools.partial)):
            return self.bind(value, path)
        if type(value) in (tuple, list):
            return type(value)(self.value(v, path + (("item", i),)) for i, v in enumerate(value))
        if type(value) is dict and all(type(k) in (str, int) for k in value):
            # keys written into the generated module's paths as literals: str and int only
            return {k: self.value(v, path + (("item", k),)) for k, v in value.items()}
        return value

    def _register(self, path: tuple, kind: str, value) -> str:
        step = path[-1]
        base = re.sub(r"\W", "_", str(step[1] if len(step) > 1 else step[0])).strip("_") or "c"
        base = base if not base[0].isdigit() else f"c{base}"
        name, n = base, 1
        while name in self.captures:
            name, n = f"{base}_{n}", n + 1
        self.captures[name] = Capture(name, path, kind, value)
        return name


# Libraries whose functions a mod may call: run as they are, never rebound (their globals are
# not the user's captures; rebinding torch's own code made its numbers kernel parameters).
LIBRARIES = {"torch", "triton", "numpy", "functorch", "sympy", "kernelscale"}
# ... except kernelscale's own problem files: a built-in variant's helpers (natten_mask's nested
# functions) hold the variant's numbers, which must stay parameters checked when a module is built,
# not constants of the shape it was traced at.
VARIANT_MODULES = ("kernelscale.problems.",)


def _library(fn) -> bool:
    module = getattr(fn, "__module__", None) or ""
    if module.startswith(VARIANT_MODULES):
        return False  # written as a user writes a variant: its captures are the variant's
    top = module.partition(".")[0]
    return top in LIBRARIES or top in sys.stdlib_module_names


def _numpy_scalar(value) -> bool:
    """A numpy number (not imported: a variant that uses numpy has imported it already)."""
    return type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0 and hasattr(value, "item")


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def follow(root, path):
    """The object at `path` from a root mod: the inverse of how Binder named it.

    Copied verbatim into generated modules (they import nothing of kernelscale)."""
    obj = root
    for step in path[1:]:
        if step[0] == "free":
            obj = obj.__closure__[obj.__code__.co_freevars.index(step[1])].cell_contents
        elif step[0] == "global":
            obj = obj.__globals__[step[1]]
        elif step[0] == "item":
            obj = obj[step[1]]
        elif step[0] == "default":
            code = obj.__code__
            names = code.co_varnames[code.co_argcount - len(obj.__defaults__) : code.co_argcount]
            obj = obj.__defaults__[names.index(step[1])]
        elif step[0] == "kwdefault":
            obj = obj.__kwdefaults__[step[1]]
        elif step[0] == "wrapped":
            obj = obj.__wrapped__
        elif step[0] == "func":
            obj = obj.func
        elif step[0] == "pos":
            obj = obj.args[step[1]]
        elif step[0] == "kw":
            obj = obj.keywords[step[1]]
        else:
            raise ValueError(f"unknown capture step {step!r}")
    if type(obj).__module__ == "numpy":  # paths reach numpy only for numbers (see _numpy_scalar)
        obj = obj.item()  # traced as the Python number it holds
    return obj
