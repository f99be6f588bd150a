"""From a traced variant to a module that runs a warp-specialised Hopper kernel written in Gluon.

Gluon (`triton.experimental.gluon`) is Triton's lower-level dialect: layouts, shared memory,
TMA, mbarriers, wgmma and warp specialisation are explicit. The kernel (templates/gluon.py.j2)
follows FlashAttention-3's forward on Hopper: a one-warp loader partition streams K and V with
TMA into a ring of shared-memory slots; two consumer warpgroups issue the next block's q·kᵀ and
the previous block's p·v as asynchronous wgmma before the current block's softmax, so the tensor
cores and the softmax overlap. With num_warps 8 both warpgroups share one 128-row query tile and
issue together; with num_warps 4 each is a partition of its own on a 64-row half, and they take
turns to issue (FlashAttention-3's ping-pong), so one's softmax runs beside the other's products.
The score and mask come from the same expression graph, rewrites and block schedule as the
Triton backend; the statements are the Triton emitter's, in Gluon's
namespace (its elementwise functions have the same names and meaning on tensors whose layouts
come from the accumulator's).

Tables of distances (tables.py) are filled by the Triton backend's kernels, once per call, and
read by the Gluon kernel's score code as any captured tensor. What it does not take: the decode
shapes (the split-KV kernel's), bias pruning, head dims other than 64 and 128, and dtypes other
than bf16 / fp16. Those stay with the other backends.
"""

from __future__ import annotations

import importlib.util
import re

from kernelscale.propose.compiler.errors import CompilerError
from kernelscale.propose.compiler.space import Config
from kernelscale.propose.compiler.tables import own_helpers
from kernelscale.propose.compiler.templating import template

# Triton spellings the Gluon namespace lacks, and their stand-ins in the template.
RENAMES = {"gl.sigmoid(": "_sigmoid("}
MIN_TRITON = (3, 6)  # the oldest Triton the kernel was compiled with
TRITON_NAME = re.compile(r"(?<![\w.])tl\.")


def gluon_available() -> bool:
    """Whether the kernel can run here: Gluon's Hopper language in this Triton (3.6 or later:
    the kernel was compiled with 3.6 and 3.9) and a GPU of compute capability 9.x (wgmma and
    setmaxnreg are sm_90a instructions)."""
    try:
        if importlib.util.find_spec("triton.experimental.gluon.language.nvidia.hopper") is None:
            return False
    except (ImportError, ValueError):
        return False
    import torch
    import triton

    major, minor = (int(re.match(r"\d+", part).group()) for part in triton.__version__.split(".")[:2])
    if (major, minor) < MIN_TRITON:
        return False
    return torch.cuda.is_available() and torch.cuda.get_device_capability()[0] == 9


def to_gluon(line: str) -> str:
    """One emitted Triton statement in Gluon's namespace."""
    text = TRITON_NAME.sub("gl.", line)
    for old, new in RENAMES.items():
        text = text.replace(old, new)
    return text


def render_gluon(parts: dict, config: Config) -> str:
    """The module source for `config` from generate.kernel_parts (its statements in Triton's
    namespace; the tables' fill kernels stay Triton kernels)."""
    if config.decode or config.bias_prune:
        raise CompilerError("the Gluon backend takes prefill kernels without bias pruning")
    if config.block_m != 128 or config.block_n not in (64, 128) or config.num_warps not in (4, 8):
        raise CompilerError("the Gluon kernel runs 128-row query tiles, 64 or 128 keys, 4 or 8 warps")
    if config.num_stages not in (2, 3):
        raise CompilerError("the Gluon kernel's K/V ring has 2 or 3 slots")
    steps = {
        key: {
            "body": [to_gluon(line) for line in step["body"]],
            "logits": to_gluon(step["logits"]) if step["logits"] else step["logits"],
            "mask": to_gluon(step["mask"]) if step["mask"] else step["mask"],
        }
        for key, step in parts["step_lines"].items()
    }
    linear = parts["linear"]
    return template("gluon.py.j2").render(
        **{
            **parts,
            "outer_lines": [to_gluon(line) for line in parts["outer_lines"]],
            "step_lines": steps,
            "linear": to_gluon(linear) if linear else linear,
            "rel_tables": [own_helpers(table) for table in parts["rel_tables"]],
        }
    )
