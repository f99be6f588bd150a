"""Attention problems: FlexAttention-style variants, their fp32 reference and their baselines.

Imports are lazy: `kernelscale.problems` loads this package for every attention id, and the
reference/baseline modules are only needed by the verifier's processes.
"""

from __future__ import annotations

__all__ = ["load_attention_problem"]


def load_attention_problem(ref, display_name=None, shape=None):
    from kernelscale.problems.attention.problem import load_attention_problem as _load

    return _load(ref, display_name=display_name, shape=shape)
