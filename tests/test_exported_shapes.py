"""The exported prefill module at shapes other than the one it was built for: a user calls it at
their own sequence lengths. Its block schedule belongs to one shape; before, every shape used the
constructor's, and a longer sequence read past it (a segfault under the interpreter, an illegal
access or a wrong answer on a GPU)."""

from __future__ import annotations

import pytest

from kernelscale.problems import load_problem
from kernelscale.problems.attention.reference import attention_reference
from kernelscale.problems.attention.variant import load_variant_module, resolve_mods
from kernelscale.problems.module import import_source
from kernelscale.propose.compiler.generate import generate
from test_compiler_common import SMALL, inputs, max_err  # sets TRITON_INTERPRET first

BUILT = {"B": 1, "Hq": 2, "Hkv": 2, "Sq": 128, "Skv": 128, "D": 16}


@pytest.mark.parametrize("name", ["causal", "sliding_window", "alibi_causal"])
def test_other_shapes_are_exact_prepared_or_not(name):
    path = load_problem(f"attention/{name}").path
    mods = resolve_mods(load_variant_module(path), BUILT, "cpu")
    module = import_source(generate(*mods, SMALL), f"shapes_{name}")
    model = module.ModelNew(*mods, BUILT)
    for sq, skv in ((128, 128), (256, 256), (64, 64), (96, 224)):
        q, k, v = inputs(1, 2, 2, sq, skv, 16, seed=sq + skv)
        assert max_err(model(q, k, v), attention_reference(q, k, v, *mods)) < 1e-4, (sq, skv)
    by_shape = {key[0]: launch for key, launch in model.launches.items()}
    assert not by_shape[(1, 2, 256, 16)].scheduled  # not prepared: no schedule, every block
    model.prepare(1, 2, 2, 256, 256, "cpu")  # now it is: its own schedule
    q, k, v = inputs(1, 2, 2, 256, 256, 16, seed=3)
    assert max_err(model(q, k, v), attention_reference(q, k, v, *mods)) < 1e-4
    assert model.launches[next(key for key in model.launches if key[0] == q.shape)].scheduled
