"""The built-in attention compiler: score_mod / mask_mod -> specialised Triton kernels.

trace (tracer, ops, captures) -> expression graph (graph) -> rewrite -> codegen into the
template (generate) for one `Config` of the search space (space): the prefill kernel
(templates/kernel.py.j2) or, for few query rows against a long cache, the split-KV decode kernel
(templates/decode.py.j2), which share the per-block step (templates/_step.j2). `CompilerProposer`
proposes configs to the verifier. Imports are lazy so `import kernelscale.propose` stays cheap.
"""

from __future__ import annotations

__all__ = ["CompilerError", "CompilerProposer", "generate"]


def __getattr__(name):
    if name == "CompilerProposer":
        from kernelscale.propose.compiler.proposer import CompilerProposer

        return CompilerProposer
    if name == "CompilerError":
        from kernelscale.propose.compiler.errors import CompilerError

        return CompilerError
    if name == "generate":
        from kernelscale.propose.compiler.generate import generate

        return generate
    raise AttributeError(name)
