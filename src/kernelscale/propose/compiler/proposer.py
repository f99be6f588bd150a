"""`CompilerProposer`: the built-in, no-LLM proposer for attention problems.

It compiles the problem's variant once, then proposes kernels for untried configurations:
the measured default (`default_config`) first, then neighbours of the fastest verified config (one knob
changed at a time), then the rest of the relevant space in a fixed order. For a decode-shaped
problem (few query rows, long cache) the split-KV decode kernel's configs come first and the
prefill kernel's after them, so the verifier can still judge between the two. A config already
proposed (in this run or in the history of a resumed one) is never proposed again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from kernelscale.problems.attention.variant import full_shape, load_variant_module, resolve_mods
from kernelscale.problems.problem import Problem, ProblemError
from kernelscale.propose.base import Attempt, Candidate, ProposerError
from kernelscale.propose.best import best_timed
from kernelscale.propose.compiler.errors import CompilerError
from kernelscale.propose.compiler.generate import Compiled, compile_mods, render
from kernelscale.propose.compiler.generate_fa4 import fa4_available
from kernelscale.propose.compiler.generate_gluon import gluon_available
from kernelscale.propose.compiler.space import (
    CHOICES,
    Config,
    Features,
    decode_default_config,
    decode_relevant,
    default_config,
    enumerate_space,
    fa4_configs,
    fa4_relevant,
    fits,
    gluon_configs,
    gluon_relevant,
    is_decode_shape,
    neighbours,
    relevant,
)

UNAVAILABLE = {
    "fa4": "FlashAttention-4 needs a CUDA device and flash-attn-4 (pip install 'kernelscale[fa4]')",
    "gluon": "the Gluon kernel needs a Hopper GPU (sm_90) and Triton 3.6 or later",
}


class CompilerProposer:
    name = "compiler"

    def __init__(
        self,
        device: str = "cuda",
        fa4: bool | None = None,
        gluon: bool | None = None,
        backends: tuple[str, ...] | None = None,
    ):
        """`backends` limits the kernels to those backends (None: every one that runs here);
        asking for one that cannot run here is an error, not a silent Triton-only run."""
        self.device = device
        # FlashAttention-4's kernels run on a GPU with flash-attn-4 installed (the verifier's
        # runner imports from the same interpreter and PYTHONPATH as this process)
        self.fa4 = device == "cuda" and fa4_available() if fa4 is None else fa4
        # the Gluon kernel needs a Hopper GPU and a Triton with Gluon's Hopper language
        self.gluon = device == "cuda" and gluon_available() if gluon is None else gluon
        self.backends = set(backends) if backends else {"triton", "fa4", "gluon"}
        available = {"fa4": self.fa4, "gluon": self.gluon}
        for name in sorted(self.backends & {"fa4", "gluon"}):
            if backends and not available[name]:
                raise ProposerError(f"--backends {name}: {UNAVAILABLE[name]}")
        self.fa4 = self.fa4 and "fa4" in self.backends
        self.gluon = self.gluon and "gluon" in self.backends
        self._compiled: dict[str, Compiled] = {}
        self._issued: dict[str, set[tuple]] = {}

    @property
    def note(self) -> str:
        """One line for the run's header: which backends the candidates come from."""
        if self.device != "cuda" and not (self.fa4 or self.gluon):
            return ""
        names = ["Triton"] * ("triton" in self.backends) + ["FlashAttention-4"] * self.fa4
        names += ["Gluon (Hopper)"] * self.gluon
        skipped = [
            f"{label} skipped: {why}"
            for label, on, key, why in (
                ("FlashAttention-4", self.fa4, "fa4", "flash-attn-4 is not installed"),
                ("Gluon", self.gluon, "gluon", "needs a Hopper GPU and Triton >= 3.6"),
            )
            if not on and key in self.backends
        ]
        return f"compiler backends: {', '.join(names)}" + (f" ({'; '.join(skipped)})" if skipped else "")

    async def propose(self, problem: Problem, history: Sequence[Attempt], n: int = 1) -> list[Candidate]:
        compiled, features = self._compile(problem)
        issued = self._issued.setdefault(problem.content_hash(), set())
        issued |= {
            _key(a.candidate.provenance.get("config")) for a in history if a.candidate.proposer == self.name
        }
        best = _fastest(history, self.name)
        out = []
        for config in self.plan(features, best):
            if len(out) >= n:
                break
            if _key(config.as_dict()) in issued:
                continue
            issued.add(_key(config.as_dict()))
            parents = [best[1].candidate.code_hash] if best else []
            code = render(compiled, config)
            out.append(
                Candidate(
                    code=code, proposer=self.name, parents=parents, provenance={"config": config.as_dict()}
                )
            )
        return out

    def first_kernel(self, problem: Problem) -> str | None:
        """The kernel this proposer would try first, or None when the variant cannot be compiled
        (the LLM proposer starts from it)."""
        try:
            compiled, features = self._compile(problem)
        except ProposerError:
            return None
        return render(compiled, self.plan(features, None)[0])

    def plan(self, features: Features, best: tuple[Config, Attempt] | None) -> list[Config]:
        """Configs in the order worth trying: default, neighbours of the best, everything else."""
        kernels = [(relevant(features), default_config(features, self.device))]
        if features.decode:
            kernels.insert(0, (decode_relevant(features), decode_default_config(features, self.device)))
        order: list[Config] = []
        for space, first in kernels:
            if self.device != "cuda":
                space.pop("fast_tanh", None)  # inline PTX does not run under the interpreter
            order.append(first)
            if best is not None and best[0].backend == "triton" and best[0].decode == first.decode:
                order += neighbours(best[0], space)
            order += neighbours(first, space)
        fa4 = fa4_configs(features) if self.fa4 else []
        if best is not None and best[0].backend == "fa4":
            fa4 = [best[0]] + neighbours(best[0], fa4_relevant(features)) + fa4
        gluon = gluon_configs(features) if self.gluon else []
        if best is not None and best[0].backend == "gluon":
            gluon = [best[0]] + neighbours(best[0], gluon_relevant(features)) + gluon
        # each backend's first config right after the Triton default (FA4's and the Gluon one's
        # are often the faster), and the default with bias pruning where the logits allow it:
        # on an H200 it ran relative_positional 6.5x faster, and as one neighbour among many a
        # 4-minute solve never reached it
        pruned = [replace(kernels[-1][1], bias_prune=True)] if features.bias_prune else []
        order[1:1] = fa4[:1] + gluon[:1] + pruned
        order += fa4[1:] + gluon[1:]
        for space, first in kernels:
            order += enumerate_space(space, first)
        return [
            c
            for c in dict.fromkeys(order)
            if c.backend in self.backends and (c.backend != "triton" or not features.D or fits(c, features.D))
        ]

    def _compile(self, problem: Problem) -> tuple[Compiled, Features]:
        key = problem.content_hash()
        if key not in self._compiled:
            if problem.kind != "attention" or not problem.path:
                raise ProposerError(
                    f"the compiler handles attention problems only; {problem.name} is {problem.kind}"
                )
            try:
                self._compiled[key] = compile_problem(problem, self.device)
            except (CompilerError, ProblemError) as exc:
                raise ProposerError(f"attention compiler: {exc}") from None
        compiled = self._compiled[key]
        shape = full_shape(problem.gpu_sizes.get("SHAPE", {}))
        features = compiled.features
        return compiled, Features(
            **{
                **features.__dict__,
                "D": shape["D"],
                "decode": is_decode_shape(shape),
                "dtype": shape["dtype"],
            }
        )


def compile_problem(problem: Problem, device: str = "cpu") -> Compiled:
    """Trace the problem's variant, on the CPU, at the shape it is verified at on `device`.

    Captured numbers are parameters, so the kernel serves other shapes, except where the mod
    needed a Python value of one (`math.sqrt(D)`, `if Sq == 1`, `int(0.25 * Skv)`): the trace
    then records a guard, and the module refuses mods that break it. Traced at the CPU's small
    shape, a GPU run's every candidate broke its guard on D or S."""
    sizes = problem.sizes_for(device).get("SHAPE") or problem.gpu_sizes.get("SHAPE", {})
    shape = full_shape(sizes)
    score_mod, mask_mod = resolve_mods(load_variant_module(problem.path), shape, "cpu", problem.path)
    return compile_mods(score_mod, mask_mod)


def _key(config: dict | None) -> tuple:
    if not config:
        return ()
    full = {**Config().as_dict(), **config}
    return tuple(sorted((k, full[k]) for k in CHOICES))


def _fastest(history: Sequence[Attempt], name: str) -> tuple[Config, Attempt] | None:
    """The fastest correct attempt of this proposer with a measured (not interpreted) time."""
    best = best_timed(a for a in history if a.candidate.proposer == name)
    if best is None:
        return None
    try:
        return Config.from_dict(best.candidate.provenance["config"]), best
    except (CompilerError, KeyError, TypeError):
        return None
