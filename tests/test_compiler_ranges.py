"""64-bit integer arithmetic narrowed to int32 where value ranges allow (ranges.py): the FA4
hooks compute integers in 32 bits, and a T5-style bucket computes in 64 with `.long()`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

import fa4_model
from kernelscale.problems.attention.reference import attention_reference
from kernelscale.problems.module import import_source
from kernelscale.propose.compiler.errors import CompilerError
from kernelscale.propose.compiler.generate import compile_mods, generate
from kernelscale.propose.compiler.ranges import INDEX_MAX, narrowable
from kernelscale.propose.compiler.space import Config, Features, fa4_configs
from test_compiler_fa4 import _err, _inputs

FA4 = Config(backend="fa4")
FA4_HOOKS = Config(backend="fa4", rel_tables=False)  # the bucket computed in the hook, not a table
T5 = Path(__file__).parent / "problems" / "t5_bucketed_bias.py"


def _t5(B=1, H=4, S=192, D=32):
    spec = importlib.util.spec_from_file_location("t5_ranges", T5)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make(B, H, H, S, S, D, "cpu")


def _narrowable(score_mod):
    compiled = compile_mods(score_mod, None)
    return narrowable([compiled.trace.score], compiled.trace.values)


@pytest.mark.parametrize("config", [FA4_HOOKS, FA4], ids=["in-hook", "tables"])
def test_the_t5_bucket_runs_in_int32_on_fa4_and_matches_the_reference(config, monkeypatch):
    score_mod, mask_mod = _t5()
    calls = fa4_model.install(monkeypatch)
    source = generate(score_mod, mask_mod, config)
    shape = {"B": 1, "Hq": 4, "Hkv": 4, "Sq": 192, "Skv": 192, "D": 32}
    model = import_source(source, "test_ranges_t5").ModelNew(score_mod, mask_mod, shape)
    q, k, v = _inputs(1, 4, 4, 192, 192, 32)
    out = model(q, k, v)
    ref = attention_reference(q.float(), k.float(), v.float(), score_mod, mask_mod)
    assert _err(out, ref) < 2e-2 and len(calls) == 1
    assert f"INDEX_MAX = {INDEX_MAX}" in source


def test_the_proposer_offers_fa4_for_the_t5_bucket():
    features = compile_mods(*_t5()).features
    assert not features.wide_ints
    assert fa4_configs(Features(**{**features.__dict__, "D": 128}))


def test_the_numbers_the_ranges_relied_on_are_checked_when_the_module_is_built(monkeypatch):
    """The bucket fits int32 for the traced `exact` and `scale`; other values are refused."""
    score_mod, mask_mod = _t5()
    fa4_model.install(monkeypatch)
    module = import_source(generate(score_mod, mask_mod, FA4), "test_ranges_guard")
    score_mod.__closure__[[c for c in score_mod.__code__.co_freevars].index("exact")].cell_contents = 2**20
    with pytest.raises(ValueError, match="recompile"):
        module.ModelNew(score_mod, mask_mod, {"B": 1, "Hq": 4, "Hkv": 4, "Sq": 64, "Skv": 64, "D": 32})


def test_shapes_beyond_the_ranges_proof_are_refused(monkeypatch):
    score_mod, mask_mod = _t5()
    fa4_model.install(monkeypatch)
    module = import_source(generate(score_mod, mask_mod, FA4), "test_ranges_index_max")
    model = module.ModelNew(score_mod, mask_mod, {"B": 1, "Hq": 4, "Hkv": 4, "Sq": 64, "Skv": 64, "D": 32})
    with pytest.raises(ValueError, match="indices up to"):
        model.prepare(1, 4, 4, 64, INDEX_MAX + 1, "cpu")


@pytest.mark.parametrize(
    "score_mod",
    [
        lambda s, b, h, q, kv: s + ((q.long() * 100000 * 100000 + kv) % 3).float(),  # 1e10: overflows int32
        lambda s, b, h, q, kv: s + ((kv - q).long() * 3000000000 % 11).float(),  # a constant beyond int32
        lambda s, b, h, q, kv: s + (1000.0 / (kv - q).float()).long().float(),  # a division by 0..
        lambda s, b, h, q, kv: s + (s * 1e12).long().float(),  # the score: unbounded
        lambda s, b, h, q, kv: s + torch.tanh(s).long().float(),  # bounded, but the score may be NaN
        lambda s, b, h, q, kv: s + torch.sqrt((kv - q).float()).long().float(),  # NaN below zero
        lambda s, b, h, q, kv: s + ((q.long() << 40) % 5).float(),  # a shift
        lambda s, b, h, q, kv: s + ((q.long() * 3000) ^ (kv.long() * 3000)).float(),  # xor of large values
    ],
    ids=["product", "constant", "division", "score", "nan-score", "nan-sqrt", "shift", "xor"],
)
def test_values_that_may_leave_int32_keep_64_bits(score_mod):
    assert _narrowable(score_mod) is None
    with pytest.raises(CompilerError, match="may leave int32"):
        generate(score_mod, None, FA4)


@pytest.mark.parametrize(
    "score_mod, relied",
    [
        (lambda s, b, h, q, kv: s + torch.log(kv.float() + 1).long().float(), []),
        (lambda s, b, h, q, kv: s + ((kv - q).long() % 7).float() * 0.5, []),
        (lambda s, b, h, q, kv: s + (torch.tanh(kv.float()) * 3).long().float(), []),
        (lambda s, b, h, q, kv: s + ((q.long() & 255) | (kv.long() & 7)).float(), []),
    ],
    ids=["log", "mod", "tanh", "bitwise"],
)
def test_bounded_64_bit_values_narrow(score_mod, relied):
    assert _narrowable(score_mod) == relied


def test_the_hook_in_int32_equals_torchs_int64_at_the_largest_indices(monkeypatch):
    """The generated score hook (integers in int32, as in FA4) against the mod in torch's int64,
    at distances up to INDEX_MAX - 1 either way."""
    score_mod, mask_mod = _t5()
    fa4_model.install(monkeypatch)
    module = import_source(generate(score_mod, mask_mod, FA4_HOOKS), "test_ranges_extremes")
    model = module.ModelNew(score_mod, mask_mod, {"B": 1, "Hq": 4, "Hkv": 4, "Sq": 64, "Skv": 64, "D": 32})
    score_hook, _, _ = model._hooks(32)
    aux = [fa4_model.AuxTensor(model._buffers["c_" + name]) for name in module.AUX_NAMES]
    top = INDEX_MAX - 1
    q = torch.tensor([0, top, 5, top, 0, 3, 40], dtype=torch.int32)
    kv = torch.tensor([top, 0, 5, top, 9, 0, 1], dtype=torch.int32)
    h = torch.tensor([0, 1, 2, 3, 0, 1, 2], dtype=torch.int32)
    zero = torch.zeros(7)
    got = score_hook(zero.clone(), h * 0, h, q, kv, None, aux)
    want = score_mod(zero.clone(), h.long() * 0, h.long(), q.long(), kv.long())
    assert torch.allclose(got.float(), want.float(), atol=1e-6)
