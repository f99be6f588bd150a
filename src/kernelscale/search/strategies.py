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
    """Build a strategy by name. An option the strategy does not take is an error (a misspelt or
    misplaced option must not be dropped silently); options set to None keep their defaults."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r} (known: {', '.join(STRATEGIES)})")
    module_name, _, attribute = STRATEGIES[name].partition(":")
    factory = getattr(importlib.import_module(module_name), attribute)
    accepted = inspect.signature(factory).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    chosen = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(k for k in chosen if not takes_any and k not in accepted)
    if unknown:
        known = ", ".join(k for k in accepted if k != "self") or "none"
        raise ValueError(f"strategy {name} takes no option {', '.join(unknown)} (its options: {known})")
    return factory(**chosen)


def default_options(name: str, workers: int) -> dict:
    """What a strategy is given for a pool of `workers` verifier workers. LLM strategies keep more
    proposals in flight than there are GPUs, so verifying never waits on a model still thinking;
    the compiler proposes instantly, so one evaluation per worker keeps every GPU busy."""
    concurrent = max(4, workers)
    return {
        "compiler": {"workers": workers},
        "parallel": {"chains": concurrent},
        "evolve": {"workers": concurrent},
    }.get(name, {})
