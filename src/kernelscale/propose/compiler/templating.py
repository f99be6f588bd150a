"""The Jinja environment of the generated modules, and the sources they inline."""

from __future__ import annotations

import inspect
from functools import lru_cache
from importlib import resources

import jinja2

from kernelscale.problems.attention import blockmask
from kernelscale.propose.compiler import biasgaps
from kernelscale.propose.compiler.captures import follow


@lru_cache(maxsize=8)
def template(name: str) -> jinja2.Template:
    return _environment().get_template(name)


@lru_cache(maxsize=1)
def blockmask_source() -> str:
    """The block-mask helpers, inlined so that a generated module imports no kernelscale code."""
    return inspect.getsource(blockmask)


@lru_cache(maxsize=1)
def biasgaps_source() -> str:
    """The bias-pruning gap table's builder, inlined where a module prunes (biasgaps.py)."""
    return inspect.getsource(biasgaps)


@lru_cache(maxsize=1)
def follow_source() -> str:
    """How a module reaches the mods' captured objects, inlined as `_follow`."""
    return inspect.getsource(follow).replace("def follow(", "def _follow(", 1)


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    folder = resources.files("kernelscale.propose.compiler") / "templates"
    loader = jinja2.FunctionLoader(lambda name: (folder / name).read_text())
    return jinja2.Environment(loader=loader, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
