"""`python variant.py`: check a variant on its small shape, as attention-gym's examples do.

Runs the compiler's kernel (on the GPU if there is one, else under Triton's interpreter) and,
on a GPU, FlexAttention, against the fp32 reference, and prints the max errors.
"""

from __future__ import annotations

import os
import sys


def main(path: str) -> None:
    import torch

    if not torch.cuda.is_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")  # before the compiler imports triton
    from kernelscale.problems.attention.baselines import flex_baseline
    from kernelscale.problems.attention.problem import load_attention_problem
    from kernelscale.problems.module import apply_sizes, import_source
    from kernelscale.propose.compiler.generate import generate

    device = "cuda" if torch.cuda.is_available() else "cpu"
    problem = load_attention_problem(path)
    module = import_source(problem.source, "variant_check")
    apply_sizes(module, problem.cpu_sizes)
    with torch.device(device):
        torch.manual_seed(0)
        score_mod, mask_mod, shape = module.get_init_inputs()
        q, k, v = module.get_inputs()
    reference = module.Model(score_mod, mask_mod, shape)(q, k, v)
    kernel = import_source(generate(score_mod, mask_mod), "variant_check_kernel")
    with torch.device(device):
        out = kernel.ModelNew(score_mod, mask_mod, shape)(q, k, v)
    results = {"compiler": out}
    flex = flex_baseline(score_mod, mask_mod, shape, torch.device(device))
    if flex is not None:
        results["flex"] = flex(q, k, v)
    print(f"{problem.name} at {shape}:")
    ok = True
    for name, value in results.items():
        err = (value.float() - reference.float()).abs().max().item()
        ok &= err < 2e-2
        print(f"  {name:9s} max abs error vs fp32 reference: {err:.2e}")
    sys.exit(0 if ok else 1)
