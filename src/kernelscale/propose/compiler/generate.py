"""From mods to kernel module source: trace, rewrite, place each node, fill the template."""

from __future__ import annotations

from dataclasses import dataclass

from kernelscale.propose.compiler import graph as g
from kernelscale.propose.compiler.codegen import Emitter
from kernelscale.propose.compiler.errors import CompilerError
from kernelscale.propose.compiler.evaluate import python_source
from kernelscale.propose.compiler.generate_fa4 import render_fa4
from kernelscale.propose.compiler.generate_gluon import render_gluon
from kernelscale.propose.compiler.prune import prune_scale
from kernelscale.propose.compiler.ranges import int32_narrowing
from kernelscale.propose.compiler.rewrite import QK, SCALE, Rewritten, positive_scale, rewrite
from kernelscale.propose.compiler.space import Config, Features
from kernelscale.propose.compiler.tables import find_tables, short, table_kernel, tabulate, tensor_args
from kernelscale.propose.compiler.templating import biasgaps_source, blockmask_source, follow_source, template
from kernelscale.propose.compiler.tracer import Trace, trace


@dataclass
class Compiled:
    """A traced variant, ready to emit kernels for any Config."""

    trace: Trace
    rewritten: Rewritten

    @property
    def features(self) -> Features:
        nodes = g.walk([self.rewritten.logits])
        element = [n for n in nodes if n.level == "element" and n.op not in ("arg", "const", "param")]
        return Features(
            has_mask=self.rewritten.mask is not None,
            has_tanh=any(n.op == "tanh" for n in nodes),
            bounded=self.rewritten.bounds is not None,
            score_cost=len(element),
            D=0,
            tables=len(find_tables([self.rewritten.logits, self.rewritten.mask])),
            wide_ints=self._wide_ints(),
            bias_prune=prune_scale(self.rewritten.logits) is not None,
        )

    def _wide_ints(self) -> bool:
        """64-bit integer arithmetic whose values may leave int32 (FA4's hooks compute in int32)."""
        graphs = [[self.trace.score, self.trace.mask], [self.rewritten.logits, self.rewritten.mask]]
        try:
            int32_narrowing(graphs, self.trace.values)
        except CompilerError:
            return True
        return False


def compile_mods(score_mod, mask_mod) -> Compiled:
    tr = trace(score_mod, mask_mod)
    return Compiled(tr, rewrite(tr.score, tr.mask, params=tr.values))


def generate(score_mod, mask_mod, config: Config | None = None) -> str:
    """Standalone module source defining `attention(q, k, v, schedule=None, **captured)` and
    `ModelNew(score_mod, mask_mod, shape)`; config.decode selects the split-KV decode kernel."""
    compiled = compile_mods(score_mod, mask_mod)
    return render(compiled, config or Config())


def _param_text(name: str) -> str:
    return "sm_scale" if name == "__sm_scale" else f"P[{name!r}]"


def render(compiled: Compiled, config: Config) -> str:
    if config.bias_prune and (config.backend != "triton" or config.decode):
        raise CompilerError("bias_prune applies to the Triton prefill kernel only")
    if config.backend == "fa4":
        return render_fa4(compiled.trace, config)
    if config.backend == "gluon":
        return render_gluon(kernel_parts(compiled, config, tables_on=config.rel_tables), config)
    parts = kernel_parts(compiled, config, tables_on=config.rel_tables)
    return template("decode.py.j2" if config.decode else "kernel.py.j2").render(
        **parts,
        prune=_pruning(compiled.rewritten.logits, parts["known"]) if config.bias_prune else None,
        biasgaps_source=biasgaps_source() if config.bias_prune else "",
    )


def kernel_parts(compiled: Compiled, config: Config, tables_on: bool) -> dict:
    """What a kernel template needs of the variant: the emitted statements of the logits and the
    mask at each level (Triton syntax), the captures as kernel arguments, guards and bounds."""
    tr, rw = compiled.trace, compiled.rewritten
    em = Emitter(tr.params, config.fast_tanh)
    tables = find_tables([rw.logits, rw.mask]) if tables_on else []
    logits, mask = tabulate([rw.logits, rw.mask], tables)
    roots = [logits] + ([mask] if mask is not None else [])
    scale = linear_scale(logits)
    outer, known = em.emit(roots + ([scale] if scale is not None else []), ("program", "row"), {}, "u")
    step_roots = [r for r in roots if scale is None or r is not logits]
    full_body, full_names = em.emit(step_roots if scale is None else [], ("col", "element"), known, "f")
    part_body, part_names = em.emit(step_roots, ("col", "element"), known, "m")
    step_lines = {
        "full": {"body": full_body, "logits": full_names.get(logits), "mask": None},
        "part": {
            "body": part_body,
            "logits": part_names.get(logits),
            "mask": part_names[mask] if mask is not None else None,
        },
    }
    table_kernels = [table_kernel(em, t, i) for i, t in enumerate(tables)]
    guards = [(python_source(n, _param_text), repr(v)) for n, v in tr.guards]
    guards += [(python_source(n, _param_text), "True") for n in dict.fromkeys(em.guards + rw.checks.guards)]
    bounds = None
    if rw.bounds is not None:
        bounds = tuple(python_source(b, _param_text) for b in rw.bounds)
    tensors, params = tr.tensors, tr.params
    user_args = [arg for name, cap in tensors.items() for arg in tensor_args(name, cap.value.dim())]
    return dict(
        config=config.template_dict(),
        score_text=g.render(tr.score) if tr.score is not None else "None",
        mask_text=g.render(tr.mask) if tr.mask is not None else "None",
        logits_text=g.render(rw.logits),
        dropped_text=", ".join(g.render(d) for d in rw.dropped) or "nothing",
        tables_text=", ".join(short(g.render(t.node), 200) for t in tables) or "nothing",
        has_mask=rw.mask is not None,
        tensor_paths={n: c.path for n, c in tensors.items()},
        param_paths={n: tr.captures[n].path for n in params},
        tensor_names=list(tensors),
        param_names=list(params),
        param_args=[f"P_{n}" for n in params],
        capture_names=", ".join(tr.captures) or "none",
        user_capture_args=user_args,
        capture_args=user_args + [arg for t in tables for arg in tensor_args(t.name, 3)],
        rel_tables=table_kernels,
        outer_lines=outer,
        step_lines=step_lines,
        can_inf=_can_be_inf(rw.logits),
        linear=known[scale] if scale is not None else None,
        logits_element=logits.level == "element",
        guards=guards,
        bounded=rw.checks.bounded,
        bounds=bounds,
        blockmask_source=blockmask_source(),
        follow_source=follow_source(),
        known=known,
    )


def _pruning(logits: g.Node, known: dict) -> dict:
    """What the template needs for bias pruning (prune.py): the kernel's name for c in
    logits = c·qk + bias, and c as text for the module's docstring."""
    scale = prune_scale(logits)
    if scale is None:
        raise CompilerError(f"bias_prune needs logits c*qk + bias(indices); these are {g.render(logits)}")
    return {"scale": known[scale], "scale_text": g.render(scale)}


def linear_scale(logits: g.Node) -> g.Node | None:
    """The per-program factor c when logits = qk * c with c > 0 (scale, log2 e and positive
    constants only): the kernel then takes the row max on raw qk and fuses c into one FMA."""
    if logits.op != "mul" or logits.args[0] != QK or logits.args[1].level != "program":
        return None
    return logits.args[1] if positive_scale(logits.args[1]) else None


# Float values the compiler cannot bound away from -inf: a logarithm or a division (of zero), an
# exponential (whose overflow a minus sign turns into -inf), and values it does not see at all:
# a captured tensor's elements (an additive bias with -inf at padded keys) and captured numbers.
CAN_BE_INF = {"log", "log2", "div", "rsqrt", "exp", "exp2", "load", "param"}


def _can_be_inf(logits: g.Node) -> bool:
    """Could the score itself be -inf (not only through the mask)? Then every block guards its
    row max (a where per row and block, cheap beside the per-score work)."""
    for n in g.walk([logits]):
        if n.kind == "float" and n.op in CAN_BE_INF and n != SCALE:
            return True
        if n.is_const and isinstance(n.value, float) and abs(n.value) == float("inf"):
            return True
    return False
