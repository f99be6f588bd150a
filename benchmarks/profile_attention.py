"""Run one compiler kernel a few times so Nsight Compute can profile it.

    ncu --clock-control none --section SpeedOfLight --section WarpStateStats --section Occupancy \
        -k regex:_attn_fwd -s 2 -c 1 python3 benchmarks/profile_attention.py attention/full
"""

from __future__ import annotations

import sys

import torch

from kernelscale.problems import load_problem
from kernelscale.problems.module import apply_sizes, import_source
from kernelscale.propose.compiler.proposer import CompilerProposer
from kernelscale.verify.inputs import make_inputs, make_model


def main(problem_id: str) -> None:
    problem = load_problem(problem_id)
    code = CompilerProposer(device="cuda").first_kernel(problem)
    reference = import_source(problem.source, "problem")
    apply_sizes(reference, problem.sizes_for("cuda"))
    candidate = import_source(code, "candidate")
    model, _ = make_model(candidate, "ModelNew", 0, "cuda", reference)
    inputs = make_inputs(reference, 0, 1.0, "cuda")
    for _ in range(4):
        model(*inputs)
    torch.cuda.synchronize()
    print(f"{problem_id}: ran the compiler's first kernel 4 times")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "attention/full")
