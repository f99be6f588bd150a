"""The strategy registry: a name on the command line to a `Strategy` object.

Entries are import paths, resolved when asked for, so that naming a strategy imports only its
module (the compiler's search pulls in the attention compiler; the LLM strategies do not).
"""

from __future__ import annotations

import importlib
import inspect

from kernelscale.search.base import Strategy

STRATEGIES: dict[str, str] = {
    "refine": "kernelscale.search.refine:RefineStrategy",
    "parallel": "kernelscale.search.parallel:ParallelStrategy",
    "evolve": "kernelscale.search.evolve:EvolveStrategy",
    "compiler": "kernelscale.search.compiler_search:CompilerSearch",
}


def strategy_names() -> list[str]:
    return list(STRATEGIES)


def make_strategy(name: str, **options) -> Strategy:
    """Build a strategy by name. Options it does not take, and options set to None, are ignored,
    so a caller can pass one set of settings (workers, seed, ...) whatever the strategy."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r} (known: {', '.join(STRATEGIES)})")
    module_name, _, attribute = STRATEGIES[name].partition(":")
    factory = getattr(importlib.import_module(module_name), attribute)
    accepted = inspect.signature(factory).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    chosen = {k: v for k, v in options.items() if v is not None and (takes_any or k in accepted)}
    return factory(**chosen)
