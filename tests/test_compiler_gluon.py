"""The Gluon (warp-specialised Hopper) backend, on the CPU.

Two checks stand in for the GPU here:
* the generated kernel compiled for sm_90 by Triton's own Gluon compiler, down to a cubin
  (tests/gluon_compile.py): the source is valid Gluon, its layouts, TMA descriptors and
  partitions are accepted, and the register split is the intended one;
* the generated module run against tests/gluon_model.py, a plain-torch model of the Gluon subset
  it uses, with the loader partition as a thread and modelled mbarriers: the online softmax, the
  pipeline order, the ring's slots and parities, masks and score code, against the fp32
  reference. The real kernel runs only on a Hopper GPU (test_gluon_on_gpu, skipped here).
"""

from __future__ import annotations

import os
import shutil

# Before anything imports triton: Triton's own library functions (tl.zeros ...) are made
# interpretable only when the interpreter is on at import, and the Triton kernels that other test
# files run in this process need that (test_compiler_common sets it too, but is imported later).
# Not where a GPU is visible: there the Gluon kernel is compiled in this process, and the Gluon
# compiler cannot use those functions once they are the interpreter's.
if shutil.which("nvidia-smi") is None:
    os.environ.setdefault("TRITON_INTERPRET", "1")

import ast  # noqa: E402

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import gluon_compile
import gluon_model
from kernelscale.problems.attention.reference import attention_reference
from kernelscale.problems.module import import_source
from kernelscale.propose.compiler.errors import CompilerError
from kernelscale.propose.compiler.generate import compile_mods, generate, render
from kernelscale.propose.compiler.space import Config, Features, gluon_configs
from test_compiler_fa4 import SUITE, _err, _inputs, _suite_mods
from test_compiler_property import PROPERTY_RUN, _conds, _float_exprs, _int_exprs, make_mods

GLUON = Config(backend="gluon", block_m=128, block_n=128, num_warps=8, num_stages=2, rel_tables=False)
needs_compiler = pytest.mark.skipif(
    not gluon_compile.gluon_compiler_available(), reason="this Triton has no Gluon compiler"
)


def _shape(name, D=64):
    """A small shape per variant, ragged against the 128-row tiles where the variant allows."""
    if name.startswith("natten"):
        return 1, 2, 2, 144, 144, D  # a 12 x 12 image
    if name == "gqa_causal":
        return 1, 8, 2, 200, 200, D
    return 1, 2, 2, 200, 300 if "causal" not in name else 200, D


def _emulated(source, score_mod, mask_mod, shape, q, k, v, tag):
    with pytest.MonkeyPatch.context() as mp:
        gluon_model.install(mp)
        module = import_source(source, f"test_gluon_{tag}")
        gluon_model.allow_cpu(module)
        return module.ModelNew(score_mod, mask_mod, shape)(q, k, v)


def _check(name, config=GLUON, D=64):
    B, Hq, Hkv, Sq, Skv, D = _shape(name, D)
    (score_mod, mask_mod), shape = _suite_mods(name, B, Hq, Hkv, Sq, Skv, D)
    q, k, v = _inputs(B, Hq, Hkv, Sq, Skv, D)
    source = generate(score_mod, mask_mod, config)
    out = _emulated(source, score_mod, mask_mod, shape, q, k, v, name)
    ref = attention_reference(q.float(), k.float(), v.float(), score_mod, mask_mod)
    assert torch.isfinite(out.float()).all()
    assert _err(out, ref) < 2e-2, name
    return source


@pytest.mark.parametrize("name", SUITE)
def test_every_builtin_variant_matches_the_reference(name):
    source = _check(name)
    tree = ast.parse(source)
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "triton.experimental.gluon.language.nvidia.hopper" in imported
    assert "flash_attn.cute.interface" not in imported  # imports only what its backend needs
    assert "Gluon backend" in source.split('"""')[1]


@pytest.mark.parametrize(
    "config",
    [
        Config(**{**GLUON.as_dict(), "num_stages": 3}),
        Config(**{**GLUON.as_dict(), "block_n": 64}),
        Config(**{**GLUON.as_dict(), "use_schedule": False}),
        Config(**{**GLUON.as_dict(), "num_warps": 4}),
        Config(**{**GLUON.as_dict(), "num_warps": 4, "num_stages": 3, "reverse_m": True}),
        Config(**{**GLUON.as_dict(), "reverse_m": True}),
    ],
)
def test_ring_depth_tile_and_unscheduled_masks(config):
    _check("causal", config)
    _check("document", config)


@pytest.mark.parametrize("warps", [8, 4])
def test_a_bounded_score_with_the_fixed_row_max(warps):
    """softcap's scores are bounded: the row max is fixed and nothing is rescaled."""
    config = Config(**{**GLUON.as_dict(), "fixed_max": True, "num_warps": warps})
    source = _check("softcap", config)
    assert "FIXED_MAX" in source
    _check("softcap_causal", config)


def test_head_dim_128_and_fp16():
    _check("alibi_causal", D=128)
    (score_mod, mask_mod), shape = _suite_mods("softcap", 1, 2, 2, 130, 260, 64)
    q, k, v = (t.to(torch.float16) for t in _inputs(1, 2, 2, 130, 260, 64))
    out = _emulated(generate(score_mod, mask_mod, GLUON), score_mod, mask_mod, shape, q, k, v, "fp16")
    assert out.dtype == torch.float16
    assert _err(out, attention_reference(q.float(), k.float(), v.float(), score_mod, mask_mod)) < 2e-2


def test_fully_masked_rows_give_zeros_and_other_shapes_run_unscheduled():
    def mask_mod(b, h, q_idx, kv_idx):
        return (q_idx >= 150) & (kv_idx <= q_idx)

    shape = {"B": 1, "Hq": 2, "Hkv": 2, "Sq": 256, "Skv": 256, "D": 64}
    q, k, v = _inputs(1, 2, 2, 256, 256, 64)
    source = generate(None, mask_mod, GLUON)
    with pytest.MonkeyPatch.context() as mp:
        gluon_model.install(mp)
        module = import_source(source, "test_gluon_rows")
        gluon_model.allow_cpu(module)
        model = module.ModelNew(None, mask_mod, shape)
        out = model(q, k, v)
        assert out[:, :, :150].abs().max().item() == 0.0
        assert _err(out, attention_reference(q.float(), k.float(), v.float(), None, mask_mod)) < 2e-2
        q2, k2, v2 = _inputs(1, 2, 2, 300, 300, 64)  # not prepared: every block, mask evaluated
        out2 = model(q2, k2, v2)
    assert _err(out2, attention_reference(q2.float(), k2.float(), v2.float(), None, mask_mod)) < 2e-2


@settings(max_examples=20, **PROPERTY_RUN)
@given(score=_float_exprs(_int_exprs()), mask=st.none() | _conds(_int_exprs()))
def test_random_mods_match_reference(score, mask):
    """The score and mask code for the compiler's grammar of mods (negative floor division and
    modulo, lookups, comparisons, where, tanh ...) agrees with the reference."""
    from test_compiler_property import H, S

    score_mod, mask_mod = make_mods(score, mask)
    mask_mod = None if mask is None else mask_mod
    q, k, v = _inputs(1, H, H, S, S, 64)
    shape = {"B": 1, "Hq": H, "Hkv": H, "Sq": S, "Skv": S, "D": 64}
    out = _emulated(generate(score_mod, mask_mod, GLUON), score_mod, mask_mod, shape, q, k, v, "prop")
    ref = attention_reference(q.float(), k.float(), v.float(), score_mod, mask_mod)
    assert torch.isfinite(out.float()).all()
    assert _err(out, ref) < 2e-2, (score, mask)


def _mutated(old, new, config=GLUON):
    (score_mod, mask_mod), shape = _suite_mods("causal", 1, 2, 2, 640, 640, 64)
    source = generate(score_mod, mask_mod, config)
    assert old in source
    q, k, v = _inputs(1, 2, 2, 640, 640, 64)
    return _emulated(source.replace(old, new), score_mod, mask_mod, shape, q, k, v, "mutant"), (
        q,
        k,
        v,
        mask_mod,
    )


def test_the_model_catches_a_wgmma_read_before_its_wait():
    with pytest.raises(RuntimeError, match="still outstanding"):
        _mutated("warpgroup_mma_wait(1, deps=(qk_tok,))", "warpgroup_mma_wait(2, deps=(qk_tok,))")


def _fails(old, new, monkeypatch, config=GLUON):
    """The mutated kernel deadlocks, raises or computes a wrong result: never a silent pass."""
    monkeypatch.setattr(gluon_model, "WAIT_TIMEOUT_S", 3.0)
    try:
        out, (q, k, v, mask_mod) = _mutated(old, new, config)
    except RuntimeError:
        return
    ref = attention_reference(q.float(), k.float(), v.float(), None, mask_mod)
    assert not (_err(out, ref) < 2e-2)


def test_the_model_catches_a_ring_slot_waited_on_the_wrong_parity(monkeypatch):
    _fails(
        "mbarrier.wait(k_ready.index(slot), (i // NUM) & 1)",
        "mbarrier.wait(k_ready.index(slot), 0)",
        monkeypatch,
    )


def test_the_model_catches_ping_pong_turns_on_the_wrong_parity(monkeypatch):
    pingpong = Config(**{**GLUON.as_dict(), "num_warps": 4})
    _fails("& 1) ^ (1 - PART))", "& 1))", monkeypatch, pingpong)  # both wait for the other first


def test_the_model_catches_a_slot_released_by_one_ping_pong_warpgroup_only(monkeypatch):
    pingpong = Config(**{**GLUON.as_dict(), "num_warps": 4})
    _fails(
        "count=READERS)\n        mbarrier.init(v_ready",
        "count=1)\n        mbarrier.init(v_ready",
        monkeypatch,
        pingpong,
    )


def test_the_model_catches_a_loader_that_skips_the_empty_wait(monkeypatch):
    _fails("mbarrier.wait(v_empty.index(slot), phase ^ 1)", "pass", monkeypatch)


def test_the_model_catches_a_v_slot_released_before_its_product_was_read(monkeypatch):
    """V's slot handed back before the p·v that reads it was waited for: the loader may overwrite
    it, and the model's late wgmma read shows it (or the run fails), never a silent pass."""
    _fails(
        "            acc = warpgroup_mma_wait(0, deps=(acc_tok,))\n            mbarrier.arrive(v_empty.index(prev), count=1)\n",
        "            mbarrier.arrive(v_empty.index(prev), count=1)\n            acc = warpgroup_mma_wait(0, deps=(acc_tok,))\n",
        monkeypatch,
    )


def _t5(Sq, Skv, D=64):
    from pathlib import Path

    from kernelscale.problems.attention.variant import load_variant_module, resolve_mods

    path = Path(__file__).parent / "problems" / "t5_bucketed_bias.py"
    shape = {"B": 1, "Hq": 2, "Hkv": 2, "Sq": Sq, "Skv": Skv, "D": D}
    return resolve_mods(load_variant_module(str(path)), shape, "cpu", path), shape


@pytest.mark.parametrize("tables", [True, False])
def test_a_t5_bias_with_and_without_the_table_of_distances(tables):
    """With the table, Triton's fill kernel writes it once per call and the Gluon score code
    reads it with one lookup; without, the score code does the bucketing itself."""
    (score_mod, mask_mod), shape = _t5(200, 330)
    config = Config(**{**GLUON.as_dict(), "rel_tables": tables})
    source = generate(score_mod, mask_mod, config)
    assert ("def _rel_table0(" in source) == tables
    assert ("gl.log(" in source) != tables  # the bucket's logarithm: in the table, or per score
    q, k, v = _inputs(1, 2, 2, 200, 330, 64)
    out = _emulated(source, score_mod, mask_mod, shape, q, k, v, f"t5_{tables}")
    assert _err(out, attention_reference(q.float(), k.float(), v.float(), score_mod, mask_mod)) < 2e-2


def test_decode_pruning_and_odd_tiles_are_refused():
    compiled = compile_mods(None, None)
    for bad in (
        Config(**{**GLUON.as_dict(), "decode": True}),
        Config(**{**GLUON.as_dict(), "block_m": 64}),
        Config(**{**GLUON.as_dict(), "num_stages": 4}),
    ):
        with pytest.raises(CompilerError):
            render(compiled, bad)


def test_the_module_refuses_inputs_it_cannot_run_with_one_clear_error():
    (score_mod, mask_mod), shape = _suite_mods("causal", 1, 2, 2, 128, 128, 64)
    module = import_source(generate(score_mod, mask_mod, GLUON), "test_gluon_refuse")
    q, k, v = _inputs(1, 2, 2, 128, 128, 64)
    with pytest.raises(ValueError, match="sm_90 GPUs only"):
        module.ModelNew(score_mod, mask_mod, shape)(q, k, v)  # the CPU is not a Hopper GPU
    assert not module.supported(q.float(), k.float(), v.float())


def _features(**kw):
    base = dict(has_mask=True, has_tanh=True, bounded=True, score_cost=3, D=128)
    return Features(**{**base, **kw})


def test_the_proposer_offers_gluon_right_after_the_first_configs():
    from kernelscale.propose.compiler.proposer import CompilerProposer

    plan = CompilerProposer(device="cuda", fa4=True, gluon=True).plan(_features(), None)
    assert plan[0].backend == "triton" and plan[1].backend == "fa4" and plan[2].backend == "gluon"
    assert plan[2] == gluon_configs(_features())[0]
    gluon = [c for c in plan if c.backend == "gluon"]
    assert {c.num_stages for c in gluon} == {2, 3} and {c.block_n for c in gluon} == {64, 128}
    assert {c.num_warps for c in gluon} == {4, 8} and plan[2].num_warps == 4  # ping-pong first
    for features in (_features(decode=True), _features(dtype="float32"), _features(D=96)):
        plan = CompilerProposer(device="cuda", fa4=False, gluon=True).plan(features, None)
        assert not any(c.backend == "gluon" for c in plan)
    assert not any(c.backend == "gluon" for c in CompilerProposer(device="cpu").plan(_features(), None))
    note = CompilerProposer(device="cuda", fa4=False, gluon=False).note
    assert "Gluon skipped" in note and "FlashAttention-4 skipped" in note
    assert "Gluon (Hopper)" in CompilerProposer(device="cuda", fa4=False, gluon=True).note


def test_backends_limit_the_plan_to_those_named():
    from kernelscale.propose.base import ProposerError
    from kernelscale.propose.compiler.proposer import CompilerProposer

    def backends(chosen):
        proposer = CompilerProposer(device="cuda", fa4=True, gluon=True, backends=chosen)
        return {c.backend for c in proposer.plan(_features(), None)}

    assert backends(None) == {"triton", "fa4", "gluon"}
    assert backends(("triton",)) == {"triton"}
    assert backends(("gluon", "fa4")) == {"gluon", "fa4"}
    note = CompilerProposer(device="cuda", fa4=False, gluon=True, backends=("gluon",)).note
    assert note == "compiler backends: Gluon (Hopper)"
    with pytest.raises(ProposerError, match="--backends fa4"):
        CompilerProposer(device="cuda", fa4=False, gluon=True, backends=("fa4", "gluon"))


def test_the_screen_admits_gluon_modules():
    from kernelscale.verify.screen import screen

    (score_mod, mask_mod), _ = _suite_mods("document", 1, 2, 2, 128, 128, 64)
    source = generate(score_mod, mask_mod, GLUON)
    assert screen(source) == []
    hidden = source.replace("        return o\n", "        torch.softmax(o, -1)\n        return o\n", 1)
    assert "torch_fallback" in {v.rule for v in screen(hidden)}


@needs_compiler
@pytest.mark.parametrize("name", SUITE)
def test_every_builtin_variant_compiles_for_sm90(name):
    B, Hq, Hkv, Sq, Skv, D = _shape(name, 128)
    (score_mod, mask_mod), shape = _suite_mods(name, B, Hq, Hkv, Sq, Skv, D)
    module = import_source(generate(score_mod, mask_mod, GLUON), f"test_gluon_sm90_{name}")
    model = module.ModelNew(score_mod, mask_mod, shape)
    kernel = gluon_compile.compile_model(module, model, *_inputs(B, Hq, Hkv, Sq, Skv, D))
    ptx = kernel["ptx"]
    assert "wgmma.mma_async" in ptx and "cp.async.bulk.tensor" in ptx
    # the loader gives registers back, the two compute warpgroups take them (warp specialisation)
    assert "setmaxnreg.dec.sync.aligned.u32 \t24" in ptx and "setmaxnreg.inc.sync.aligned.u32 \t240" in ptx
    assert kernel["shared"] <= 232448


@needs_compiler
@settings(max_examples=6, **PROPERTY_RUN)
@given(score=_float_exprs(_int_exprs()), mask=st.none() | _conds(_int_exprs()))
def test_random_mods_compile_for_sm90(score, mask):
    """Gluon's typing of the emitted statements (scalars beside tensors, int64 lookups, wrapped
    negative indices, where, tanh) as its compiler sees them, not only as the model runs them."""
    from test_compiler_property import H, S

    score_mod, mask_mod = make_mods(score, mask)
    mask_mod = None if mask is None else mask_mod
    shape = {"B": 1, "Hq": H, "Hkv": H, "Sq": S, "Skv": S, "D": 64}
    module = import_source(generate(score_mod, mask_mod, GLUON), "test_gluon_sm90_prop")
    model = module.ModelNew(score_mod, mask_mod, shape)
    kernel = gluon_compile.compile_model(module, model, *_inputs(1, H, H, S, S, 64))
    assert "wgmma.mma_async" in kernel["ptx"]


@needs_compiler
def test_a_mod_computed_in_bf16_compiles_for_sm90():
    """A bf16 table times a distance: torch rounds to bf16, so the kernel does (integer bit ops)."""
    table = torch.linspace(-1, 1, 4).to(torch.bfloat16)

    def score_mod(score, b, h, q_idx, kv_idx):
        return score + torch.sigmoid(table[h] * (q_idx - kv_idx).to(torch.bfloat16)).float()

    shape = {"B": 1, "Hq": 4, "Hkv": 4, "Sq": 256, "Skv": 256, "D": 64}
    source = generate(score_mod, None, GLUON)
    assert "_round_bf16(" in source and "_sigmoid(" in source
    module = import_source(source, "test_gluon_sm90_bf16")
    kernel = gluon_compile.compile_model(
        module, module.ModelNew(score_mod, None, shape), *_inputs(1, 4, 4, 256, 256, 64)
    )
    assert "wgmma.mma_async" in kernel["ptx"]
    q, k, v = _inputs(1, 4, 4, 256, 256, 64)
    out = _emulated(source, score_mod, None, shape, q, k, v, "bf16")
    assert _err(out, attention_reference(q.float(), k.float(), v.float(), score_mod, None)) < 2e-2


@needs_compiler
def test_the_t5_kernel_with_its_table_compiles_for_sm90():
    (score_mod, mask_mod), shape = _t5(256, 256, 128)
    config = Config(**{**GLUON.as_dict(), "rel_tables": True})
    module = import_source(generate(score_mod, mask_mod, config), "test_gluon_sm90_t5")
    model = module.ModelNew(score_mod, mask_mod, shape)
    kernel = gluon_compile.compile_model(module, model, *_inputs(1, 2, 2, 256, 256, 128))
    assert "wgmma.mma_async" in kernel["ptx"]


@needs_compiler
@pytest.mark.parametrize(
    "stages, block_n, D, warps",
    [(3, 128, 128, 8), (2, 64, 64, 8), (3, 64, 64, 8), (2, 128, 128, 4), (3, 128, 64, 4)],
)
def test_other_configs_compile_for_sm90(stages, block_n, D, warps):
    config = Config(
        **{**GLUON.as_dict(), "num_stages": stages, "block_n": block_n, "fast_tanh": True, "num_warps": warps}
    )
    (score_mod, mask_mod), shape = _suite_mods("softcap_causal", 1, 2, 2, 256, 256, D)
    module = import_source(generate(score_mod, mask_mod, config), "test_gluon_sm90_cfg")
    model = module.ModelNew(score_mod, mask_mod, shape)
    kernel = gluon_compile.compile_model(module, model, *_inputs(1, 2, 2, 256, 256, D))
    ptx = kernel["ptx"]
    assert "tanh.approx.f32" in ptx
    assert kernel["shared"] <= 232448
    if warps == 4:  # ping-pong: the loader gives registers up, both compute warpgroups take 240
        assert (
            "setmaxnreg.dec.sync.aligned.u32 \t24" in ptx and "setmaxnreg.inc.sync.aligned.u32 \t240" in ptx
        )


@pytest.mark.skipif(
    not (torch.cuda.is_available() and torch.cuda.get_device_capability()[0] == 9),
    reason="the Gluon kernel runs on Hopper GPUs only",
)
@pytest.mark.parametrize("name", SUITE)
def test_gluon_on_gpu(name):
    from importlib import resources

    from kernelscale.problems.attention.variant import load_variant_module, resolve_mods

    path = resources.files("kernelscale.problems.attention.suite") / f"{name}.py"
    S = 1024 if name.startswith("natten") else 1000  # NATTEN's sequence is a square image
    shape = {"B": 2, "Hq": 8, "Hkv": 2 if name == "gqa_causal" else 8, "Sq": S, "Skv": S, "D": 128}
    score_mod, mask_mod = resolve_mods(
        load_variant_module(str(path)), shape, "cuda", path
    )  # captures on the GPU
    q, k, v = (t.cuda() for t in _inputs(2, 8, shape["Hkv"], S, S, 128))
    module = import_source(generate(score_mod, mask_mod, GLUON), f"test_gluon_gpu_{name}")
    out = module.ModelNew(score_mod, mask_mod, {**shape, "device": "cuda"})(q, k, v)
    ref = attention_reference(q.float(), k.float(), v.float(), score_mod, mask_mod)
    assert _err(out, ref) < 2e-2
