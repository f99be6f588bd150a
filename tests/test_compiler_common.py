"""Shared by the compiler tests (no tests here): run generated kernels in-process under Triton's
interpreter against the fp32 reference."""

from __future__ import annotations

import os

os.environ["TRITON_INTERPRET"] = "1"  # before triton is first imported by this process

import torch  # noqa: E402

from kernelscale.problems.attention.reference import attention_reference  # noqa: E402
from kernelscale.problems.module import import_source  # noqa: E402
from kernelscale.propose.compiler.generate import generate  # noqa: E402
from kernelscale.propose.compiler.space import Config  # noqa: E402

SMALL = Config(block_m=32, block_n=32, num_warps=4, num_stages=2)


def inputs(B=1, Hq=2, Hkv=2, Sq=64, Skv=64, D=32, dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(B, Hq, Sq, D, generator=gen).to(dtype)
    k = torch.randn(B, Hkv, Skv, D, generator=gen).to(dtype)
    v = torch.randn(B, Hkv, Skv, D, generator=gen).to(dtype)
    return q, k, v


def run_compiled(score_mod, mask_mod, q, k, v, config: Config = SMALL, tag="t"):
    """(kernel output, reference output, generated source)."""
    source = generate(score_mod, mask_mod, config)
    module = import_source(source, f"test_{tag}")
    shape = {
        "B": q.shape[0],
        "Hq": q.shape[1],
        "Hkv": k.shape[1],
        "Sq": q.shape[2],
        "Skv": k.shape[2],
        "D": q.shape[3],
    }
    model = module.ModelNew(score_mod, mask_mod, shape)
    return model(q, k, v), attention_reference(q, k, v, score_mod, mask_mod), source


def max_err(a, b) -> float:
    return (a.float() - b.float()).abs().max().item()
