"""Torch operations in mods beyond the basics: each compiles to a kernel that matches the fp32
reference, and an option the compiler does not model is an error, never silently dropped (a
dropped `rounding_mode` once turned torch.div's floor division into a true division)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from kernelscale.propose.compiler.errors import CompilerError
from kernelscale.propose.compiler.generate import compile_mods
from kernelscale.propose.compiler.space import Config
from test_compiler_common import inputs, max_err, run_compiled

S = 48

MODS = {
    "div_floor": lambda s, b, h, q, kv: s + torch.div(q - kv, 5, rounding_mode="floor") * 0.05,
    "div_trunc_int": lambda s, b, h, q, kv: s + torch.div(kv - q, 7, rounding_mode="trunc") * 0.05,
    "div_trunc_method": lambda s, b, h, q, kv: s + (q - kv).div(3, rounding_mode="trunc") * 0.05,
    "div_trunc_float": lambda s, b, h, q, kv: s + torch.div(s, 0.7, rounding_mode="trunc") * 0.05,
    "sign_int": lambda s, b, h, q, kv: s + torch.sign(kv - q) * 0.3,
    "sign_float": lambda s, b, h, q, kv: s + torch.sign(s) * 0.3,
    "shifts": lambda s, b, h, q, kv: s + ((kv >> 2) & 1) * 0.5 + ((q << 1) % 7) * 0.1,
    "log1p": lambda s, b, h, q, kv: s + torch.log1p((kv - q).abs().float()),
    "expm1": lambda s, b, h, q, kv: s + torch.expm1(-(kv - q).abs().float() * 0.1),
    "softplus": lambda s, b, h, q, kv: s + F.softplus(s) * 0.1,
    "softplus_beta": lambda s, b, h, q, kv: s + F.softplus(s, beta=2.0, threshold=1.0) * 0.1,
    "sin_cos": lambda s, b, h, q, kv: s + torch.cos((kv - q).float()) + ((kv - q).float() * 0.1).sin(),
    "masked_fill": lambda s, b, h, q, kv: s.masked_fill(kv > q, float("-inf")),
    "nan_inf_guards": lambda s, b, h, q, kv: torch.where(
        torch.isnan(s) | torch.isinf(s) | ~torch.isfinite(s), 0.0, s
    ),
}


@pytest.mark.parametrize("name", sorted(MODS))
def test_mod_matches_the_reference(name):
    q, k, v = inputs(B=1, Hq=2, Hkv=2, Sq=S, Skv=S, D=16, seed=5)
    out, ref, _ = run_compiled(MODS[name], None, q, k, v, Config(block_m=16, block_n=16), tag=f"op_{name}")
    assert max_err(out, ref) < 1e-4


@pytest.mark.parametrize(
    "mod, words",
    [
        (lambda s, b, h, q, kv: s + torch.div(kv, 3, rounding_mode="round"), "rounding_mode='round'"),
        (lambda s, b, h, q, kv: torch.add(s, kv, out=None), "out="),
        (lambda s, b, h, q, kv: torch.mul(s, 2.0, out=None), "out="),
    ],
)
def test_an_option_the_compiler_does_not_model_is_an_error(mod, words):
    with pytest.raises(CompilerError, match=words.replace("(", r"\(")):
        compile_mods(mod, None)
