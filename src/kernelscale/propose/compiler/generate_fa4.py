"""From a traced variant to a module that runs FlashAttention-4's CuTe DSL forward kernel.

FA4 (`flash_attn.cute`, the kernels behind FlexAttention's FLASH backend) is a warp-specialised
Hopper/Blackwell kernel with hooks for a score_mod and a mask_mod written in CuTe DSL. This
module fills those hooks from the compiler's expression graph, with its rewrites applied:

* terms that depend only on the query row are dropped (softmax is shift invariant) and constant
  factors are folded, as for the Triton backend;
* a score that is only `qk · c` (c: the softmax scale and positive constants) needs no hook at
  all: FA4 gets `softmax_scale = c` and runs its plain path;
* a mask that is exactly bottom-right causal, or a bottom-right sliding window, on the prepared
  shape is handed to FA4's own causal / local masking (checked element by element when the
  module is built, see the template's `_native_mask`); any other mask is a mask_mod plus our
  block schedule as FA4's block sparsity (full blocks skip the mask_mod);
* with config.rel_tables, costly terms of the distance kv − q (tables.py) are filled once per
  call by the Triton backend's fill kernels and read by the hooks with one gather each.

The score hook works in natural-log units (FA4 multiplies by log2 e itself), so the rewrite runs
with base 1.0 instead of the Triton backend's log2 e.
"""

from __future__ import annotations

import ast
import importlib.util
import os
from dataclasses import dataclass, replace

import torch

from kernelscale.propose.compiler import graph as g
from kernelscale.propose.compiler.codegen import Emitter
from kernelscale.propose.compiler.cute_codegen import CuteEmitter
from kernelscale.propose.compiler.evaluate import is_static, python_source
from kernelscale.propose.compiler.ranges import INDEX_MAX, int32_narrowing
from kernelscale.propose.compiler.rewrite import QK, Rewritten, positive_scale, rewrite, substitute
from kernelscale.propose.compiler.space import Config
from kernelscale.propose.compiler.tables import (
    RelTable,
    find_tables,
    own_helpers,
    short,
    table_kernel,
    tabulate,
    tensor_args,
)
from kernelscale.propose.compiler.templating import blockmask_source, follow_source, template

# FA4's Hopper forward tile for head dims up to 128 is 128 x 128, and its block sparsity needs the
# sparse KV block to equal the tile's N; the schedule uses the same blocks.
SPARSE_BLOCK = (128, 128)
INLINE_MAX = 256  # elements of a captured table written into the hooks (see _inline_tables)
SCORE = g.arg("score")  # FA4's score: q·k times its softmax_scale
HOOK_ARGS = "score, b_idx, h_idx, q_idx, kv_idx, seqlen_info, aux_tensors"
MASK_ARGS = "b_idx, h_idx, q_idx, kv_idx, seqlen_info, aux_tensors"


@dataclass
class Fa4Hooks:
    """The generated hook functions' source and what the module needs to call FA4 with them."""

    source: str  # defines _make_hooks(P, N, T, sm_scale) -> (score_mod | None, mask_mod | None)
    softmax_scale: str  # Python expression of FA4's softmax_scale (in terms of P and sm_scale)
    rewritten: Rewritten
    guards: list[g.Node]  # sign facts about captured numbers the code relies on
    tensor_names: list[str]  # captured tensors passed to FA4, in aux_tensors order
    inline_names: list[str]  # captured tensors whose values are written into the hooks
    gather_arities: list[int]  # _gather<n> helpers the hooks call
    tables: list[RelTable]  # tables of distances (tables.py), passed to FA4 after the tensors
    fill_kernels: list[dict]  # their Triton fill kernels, as templates/_tables.j2 takes them


def _param_text(name: str) -> str:
    return "sm_scale" if name == "__sm_scale" else f"P[{name!r}]"


def build_hooks(trace, config: Config) -> Fa4Hooks:
    rw, hooked, tables = _tabulated(trace, config)
    inline = _inline_tables(trace, [hooked.logits, hooked.mask])
    tensor_names = [n for n in trace.tensors if n not in inline]
    if tables:  # an aux tensor costs FA4 its vectorised path: pass only what the hooks read
        loaded = {n.args[0] for n in g.walk([hooked.logits, hooked.mask]) if n.op == "load"}
        tensor_names = [n for n in tensor_names if n in loaded]
    slots = {n: i for i, n in enumerate(tensor_names + [t.name for t in tables])}
    emitter = CuteEmitter(trace.params, slots, config.fast_tanh, inline)
    logits, scale = _fold_scale(hooked.logits)
    lines = [f"def _make_hooks(P, N, T, sm_scale{', Sq' if tables else ''}):"]
    lines += [f"    P_{name} = P[{name!r}]" for name in trace.params]
    lines += [f"    T_{name} = T[{name!r}]" for name in sorted(inline)]
    read = [n for n in trace.tensors if n in inline or n in tensor_names or not tables]
    sizes = [(n, max(1, trace.tensors[n].value.dim())) for n in read] + [(t.name, 3) for t in tables]
    lines += [f"    N_{name}_{k} = N[{name!r}][{k}]" for name, ndim in sizes for k in range(ndim)]
    softmax_scale = python_source(scale, _param_text) if scale is not None else "1.0"
    if logits == SCORE and scale is not None and positive_scale(scale):
        lines.append("    score_mod = None")  # FA4's plain path: scale folded into its exp2
    else:
        body, names = emitter.emit([logits], "s")
        lines += _hook("score_mod", HOOK_ARGS, body, names[logits])
    if hooked.mask is not None:
        body, names = emitter.emit([hooked.mask], "m")
        lines += _hook("mask_mod", MASK_ARGS, body, names[hooked.mask])
    else:
        lines.append("    mask_mod = None")
    lines.append("    return score_mod, mask_mod")
    source = "\n".join(lines) + "\n"
    ast.parse(source)  # a generator bug surfaces here, not in the user's process
    loads = [n for n in g.walk([hooked.logits, hooked.mask]) if n.op == "load" and n.args[0] not in inline]
    arities = sorted({len(n.children) for n in loads})
    fill = Emitter(trace.params, config.fast_tanh)  # the tables' fill kernels, in Triton
    kernels = [own_helpers(table_kernel(fill, t, i)) for i, t in enumerate(tables)]
    guards = list(dict.fromkeys(emitter.guards + fill.guards))
    return Fa4Hooks(source, softmax_scale, rw, guards, tensor_names, sorted(inline), arities, tables, kernels)


def _tabulated(trace, config: Config) -> tuple[Rewritten, Rewritten, list[RelTable]]:
    """(the rewrite, what the hooks compute: the rewrite with its tables' lookups, the tables).
    Tables are found before 0-d tensors become one-element tables: the fill kernels read a 0-d
    tensor as the Triton backend does, by its pointer alone. A table term never involves the
    score, so this rewrite's base (1.0, not the Triton backend's log2 e) leaves it as it is."""
    raw = rewrite(trace.score, trace.mask, base=1.0, params=trace.values)
    tables = find_tables([raw.logits, raw.mask]) if config.rel_tables else []
    rw = hooked = _scalars_as_tables(raw)
    if tables:
        logits, mask = tabulate([raw.logits, raw.mask], tables)
        hooked = _scalars_as_tables(replace(raw, logits=logits, mask=mask))
    return rw, hooked, tables


def _scalars_as_tables(rw: Rewritten) -> Rewritten:
    """A 0-d captured tensor read as a one-element table at index 0 (the module registers it with
    shape (1,)): CuTe's per-lane gather takes at least one index."""
    nodes = g.walk([rw.logits, rw.mask])
    table = {
        n: g.Node("load", (n.args[0], g.const(0)), n.kind) for n in nodes if n.op == "load" and not n.children
    }
    if not table:
        return rw
    logits = substitute(rw.logits, table)
    mask = substitute(rw.mask, table) if rw.mask is not None else None
    return replace(rw, logits=logits, mask=mask)


def fa4_available() -> bool:
    """flash-attn-4's CuTe DSL package is importable here (looked up, not imported: importing it
    loads CUDA libraries)."""
    try:
        spec = importlib.util.find_spec("flash_attn")
    except (ImportError, ValueError):
        return False
    locations = spec.submodule_search_locations if spec is not None else None
    return bool(locations) and any(os.path.isdir(os.path.join(p, "cute")) for p in locations)


def _inline_tables(trace, roots) -> set[str]:
    """Captured 1-D tensors of at most INLINE_MAX elements read only at indices that depend on
    (b, h) and constants: per-head values such as ALiBi slopes. Their values become a select in
    the hook (constant per program, so hoisted out of the score loop by the compiler), so FA4
    gets no aux tensor for them; with none at all it skips its per-score index wrapping."""
    loads = [n for n in g.walk(roots) if n.op == "load"]
    out = set()
    for name, cap in trace.tensors.items():
        mine = [n for n in loads if n.args[0] == name]
        if cap.value.dim() <= 1 and cap.value.numel() <= INLINE_MAX and cap.value.dtype != torch.bool:
            if mine and all(n.children[0].level == "program" for n in mine):
                out.add(name)
    return out


def render_fa4(trace, config: Config) -> str:
    """Standalone module source defining `ModelNew(score_mod, mask_mod, shape)` on FA4."""
    hooks = build_hooks(trace, config)
    rw = hooks.rewritten
    narrowed = int32_narrowing([[trace.score, trace.mask], [rw.logits, rw.mask]], trace.values)
    guards = [(python_source(n, _param_text), repr(v)) for n, v in trace.guards + (narrowed or [])]
    guards += [
        (python_source(n, _param_text), "True") for n in dict.fromkeys(hooks.guards + rw.checks.guards)
    ]
    return template("fa4.py.j2").render(
        config=config.template_dict(),
        score_text=g.render(trace.score) if trace.score is not None else "None",
        mask_text=g.render(trace.mask) if trace.mask is not None else "None",
        logits_text=g.render(rw.logits),
        dropped_text=", ".join(g.render(d) for d in rw.dropped) or "nothing",
        has_mask=rw.mask is not None,
        sparse_block=SPARSE_BLOCK,
        tensor_paths={n: c.path for n, c in trace.tensors.items()},
        param_paths={n: trace.captures[n].path for n in trace.params},
        tensor_names=hooks.tensor_names,
        inline_names=hooks.inline_names,
        guards=guards,
        index_max=INDEX_MAX if narrowed is not None else None,
        bounded=_with_int32_tables(trace, rw.checks.bounded),
        gather_arities=hooks.gather_arities,
        rel_tables=hooks.fill_kernels,
        hook_key="key" if hooks.tables else "D",
        tables_text=", ".join(short(g.render(t.node), 200) for t in hooks.tables),
        table_shapes=[(t.name, t.per_b, t.per_h) for t in hooks.tables],
        fill_dims={n: c.value.dim() for n, c in trace.tensors.items()},
        user_capture_args=[a for n, c in trace.tensors.items() for a in tensor_args(n, c.value.dim())],
        param_args=[f"P_{n}" for n in trace.params],
        hooks_source=hooks.source,
        softmax_scale=hooks.softmax_scale,
        blockmask_source=blockmask_source(),
        follow_source=follow_source(),
    )


def _with_int32_tables(trace, bounded: dict) -> dict:
    """The hooks read integer tables as Int32: an int64 table's values are checked to fit, once,
    when the module is built (two ids 2**32 apart would otherwise be equal in the hooks)."""
    out = dict(bounded)
    for name, cap in trace.tensors.items():
        if cap.value.dtype == torch.int64:
            limit, _ = out.get(name, (float(2**31), False))
            out[name] = (min(limit, float(2**31)), False)
    return out


def _hook(name: str, args: str, body: list[str], result: str) -> list[str]:
    # Python locals of _make_hooks (P_*, N_*, sm_scale) become closure cells of the hook: FA4
    # keys its compile cache on the hook's source and closure values, so new values recompile.
    out = ["", "    @cute.jit", f"    def {name}({args}):"]
    out += [f"        {line}" for line in body]
    out.append(f"        return {result}")
    return out


def _fold_scale(logits: g.Node) -> tuple[g.Node, g.Node | None]:
    """(logits in terms of FA4's pre-scaled score, the scale) when qk enters only as qk · c with c
    static: FA4 multiplies by its softmax_scale before the hook, so the hook need not; else
    (logits, None) and FA4's scale is 1."""
    nodes = g.walk([logits])
    users = [n for n in nodes if QK in n.children]
    if len(users) != 1 or users[0].op != "mul" or users[0].args[0] != QK or not is_static(users[0].args[1]):
        return logits, None
    return substitute(logits, {users[0]: SCORE}), users[0].args[1]
