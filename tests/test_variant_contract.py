"""A variant's make() runs exactly as the contract says: with its device argument and no ambient
`with torch.device(...)` context, whatever context the verifier calls it from."""

from __future__ import annotations

from pathlib import Path

import torch

from kernelscale.problems.attention.variant import (
    init_inputs,
    load_variant_module,
    resolve_mods,
)

VARIANT = str(Path(__file__).parent / "problems" / "cpu_generator_variant.py")
SHAPE = {"B": 1, "Hq": 2, "Hkv": 2, "Sq": 16, "Skv": 16, "D": 16, "dtype": "float32"}


def test_make_with_a_cpu_generator_builds_on_the_device_it_is_given():
    # The verifier builds init inputs under the target device's context ("meta" stands in for
    # cuda here: same leak, no GPU needed).
    with torch.device("meta"):
        score_mod, mask_mod, shape = init_inputs(VARIANT, SHAPE)
    assert mask_mod is None and shape["device"] == "meta"
    bias = score_mod.__closure__[0].cell_contents
    assert bias.device.type == "meta"  # moved to the device make() was given


def test_make_on_the_cpu_gives_cpu_tensors():
    score_mod, _ = resolve_mods(load_variant_module(VARIANT), SHAPE, "cpu", VARIANT)
    assert score_mod.__closure__[0].cell_contents.device.type == "cpu"


def test_the_cpu_generator_variant_verifies_end_to_end():
    import kernelscale
    from kernelscale.propose.compiler.proposer import CompilerProposer

    problem = kernelscale.load_problem(VARIANT)
    code = CompilerProposer(device="cpu").first_kernel(problem)
    verdict = kernelscale.verify(problem, code, device="cpu")
    assert verdict.status == "correct", verdict.headline()


def test_a_variant_under_tmp_verifies(tmp_path):
    """The candidate's sandbox has its own /tmp: the variant reaches it as text, not as a path
    it cannot read (which would blame every attempt on the candidate)."""
    import kernelscale
    from kernelscale.propose.compiler.proposer import CompilerProposer

    assert str(tmp_path).startswith("/tmp")
    variant = tmp_path / "my_bias.py"
    variant.write_text(
        "def score_mod(score, b, h, q_idx, kv_idx):\n    return score + (q_idx - kv_idx) * 0.01\n"
    )
    problem = kernelscale.load_problem(str(variant))
    code = CompilerProposer(device="cpu").first_kernel(problem)
    verdict = kernelscale.verify(problem, code, device="cpu")
    assert verdict.status == "correct", verdict.headline() + verdict.log_tail
