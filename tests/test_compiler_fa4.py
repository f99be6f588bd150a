"""The FlashAttention-4 backend's code generation, on the CPU.

The generated module runs here against tests/fa4_model.py, a plain-torch model of FA4's
interface and of the CuTe DSL calls the hooks make: what is checked is the module's own logic
(hooks from the expression graph, scales, native masks, block sparsity, aux tensors), compared
with the fp32 reference. The real kernel runs only on a GPU (test_fa4_on_gpu, skipped here)."""

from __future__ import annotations

import ast

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import fa4_model
from kernelscale.problems.attention.reference import attention_reference
from kernelscale.problems.attention.variant import load_variant_module, resolve_mods
from kernelscale.problems.module import import_source
from kernelscale.propose.compiler.generate import generate
from kernelscale.propose.compiler.space import Config
from test_compiler_property import PROPERTY_RUN, _conds, _float_exprs, _int_exprs, make_mods

SUITE = [
    "alibi", "alibi_causal", "causal", "document", "full", "gqa_causal", "natten2d", "natten2d_dilated",
    "prefix_lm", "relative_positional", "sliding_window", "softcap", "softcap_causal",
]  # fmt: skip
FA4 = Config(backend="fa4")


def _suite_mods(name, B, Hq, Hkv, Sq, Skv, D):
    from importlib import resources

    path = resources.files("kernelscale.problems.attention.suite") / f"{name}.py"
    module = load_variant_module(str(path))
    shape = {"B": B, "Hq": Hq, "Hkv": Hkv, "Sq": Sq, "Skv": Skv, "D": D}
    return resolve_mods(module, shape, "cpu", path), shape


def _inputs(B, Hq, Hkv, Sq, Skv, D, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q, k, v = (
        torch.randn(B, h, s, D, generator=gen).to(torch.bfloat16)
        for h, s in ((Hq, Sq), (Hkv, Skv), (Hkv, Skv))
    )
    return q, k, v


def _run(score_mod, mask_mod, shape, q, k, v, monkeypatch, config=FA4, tag="fa4"):
    calls = fa4_model.install(monkeypatch)
    source = generate(score_mod, mask_mod, config)
    module = import_source(source, f"test_{tag}")
    out = module.ModelNew(score_mod, mask_mod, shape)(q, k, v)
    return out, calls, source


def _err(out, ref):
    return (out.float() - ref.float()).abs().max().item()


@pytest.mark.parametrize("name", SUITE)
def test_every_builtin_variant_matches_the_reference(name, monkeypatch):
    B, Hq, Hkv, S, D = 1, 4, 2 if name == "gqa_causal" else 4, 256, 32
    if name.startswith("natten"):
        S = 256
    (score_mod, mask_mod), shape = _suite_mods(name, B, Hq, Hkv, S, S, D)
    q, k, v = _inputs(B, Hq, Hkv, S, S, D)
    out, calls, source = _run(score_mod, mask_mod, shape, q, k, v, monkeypatch, tag=name)
    ref = attention_reference(q.float(), k.float(), v.float(), score_mod, mask_mod)
    assert out.shape == ref.shape and out.dtype == torch.bfloat16
    assert _err(out, ref) < 2e-2, name
    assert len(calls) == 1
    tree = ast.parse(source)
    assert "flash_attn.cute.interface" in {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "import triton" not in source  # the module imports only what its backend needs


def test_decode_shape_with_bottom_right_causal(monkeypatch):
    (score_mod, mask_mod), shape = _suite_mods("causal", 1, 4, 1, 3, 300, 32)
    q, k, v = _inputs(1, 4, 1, 3, 300, 32)
    out, calls, _ = _run(score_mod, mask_mod, shape, q, k, v, monkeypatch, tag="dec")
    assert calls[0]["causal"] is True and calls[0]["mask_mod"] is None
    assert _err(out, attention_reference(q.float(), k.float(), v.float(), score_mod, mask_mod)) < 2e-2


def test_native_masks_are_chosen_only_when_exact(monkeypatch):
    """Causal and sliding window go to FA4's own masking; the same window with one element
    changed does not, and keeps its mask_mod with block sparsity."""
    (score_mod, mask_mod), shape = _suite_mods("sliding_window", 1, 2, 2, 384, 384, 32)
    q, k, v = _inputs(1, 2, 2, 384, 384, 32)
    _, calls, _ = _run(score_mod, mask_mod, shape, q, k, v, monkeypatch, tag="win")
    assert calls[0]["window_size_left"] is not None and calls[0]["mask_mod"] is None

    def almost(b, h, q_idx, kv_idx):
        return mask_mod(b, h, q_idx, kv_idx) & ~((q_idx == 300) & (kv_idx == 299))

    out, calls, _ = _run(None, almost, shape, q, k, v, monkeypatch, tag="almost")
    assert calls[0]["window_size_left"] is None and calls[0]["causal"] is False
    bs = calls[0]["block_sparse_tensors"]
    assert bs is not None and bs.mask_block_cnt.dtype == torch.int32
    assert _err(out, attention_reference(q.float(), k.float(), v.float(), None, almost)) < 2e-2


def test_fa4_knobs_reach_fa4(monkeypatch):
    (score_mod, mask_mod), shape = _suite_mods("gqa_causal", 1, 4, 2, 128, 128, 32)
    q, k, v = _inputs(1, 4, 2, 128, 128, 32)
    config = Config(backend="fa4", fa4_tile_m=64, fa4_pack_gqa=2)
    out, calls, _ = _run(score_mod, mask_mod, shape, q, k, v, monkeypatch, config=config, tag="knobs")
    assert calls[0]["tile_mn"] == (64, 128) and calls[0]["pack_gqa"] is False
    assert _err(out, attention_reference(q.float(), k.float(), v.float(), score_mod, mask_mod)) < 2e-2


@pytest.mark.parametrize(("name", "D", "tile_mn"), [("softcap", 32, (192, 176)), ("alibi", 128, (128, 176))])
def test_the_kv_tile_knob_reaches_fa4_where_nothing_is_block_sparse(monkeypatch, name, D, tile_mn):
    (score_mod, mask_mod), shape = _suite_mods(name, 1, 2, 2, 128, 128, D)
    q, k, v = _inputs(1, 2, 2, 128, 128, D)
    config = Config(backend="fa4", fa4_tile_n=176)
    out, calls, _ = _run(
        score_mod, mask_mod, shape, q, k, v, monkeypatch, config=config, tag=f"tile_n_{name}"
    )
    assert calls[0]["tile_mn"] == tile_mn
    assert _err(out, attention_reference(q.float(), k.float(), v.float(), score_mod, mask_mod)) < 2e-2


def test_block_sparsity_keeps_the_kv_tile_at_the_sparse_block(monkeypatch):
    (score_mod, mask_mod), shape = _suite_mods("document", 1, 2, 2, 256, 256, 32)
    q, k, v = _inputs(1, 2, 2, 256, 256, 32)
    config = Config(backend="fa4", fa4_tile_n=176)
    _, calls, _ = _run(score_mod, mask_mod, shape, q, k, v, monkeypatch, config=config, tag="tile_n_sparse")
    assert calls[0]["block_sparse_tensors"] is not None and calls[0]["tile_mn"] is None


def test_the_kv_tile_is_searched_only_without_a_mask():
    from kernelscale.propose.compiler.space import fa4_configs

    unmasked = fa4_configs(_features(has_mask=False))
    assert {c.fa4_tile_n for c in unmasked} == {0, 176, 192}
    assert not unmasked[1].fa4_direct and unmasked[2].fa4_tile_n == 176  # the entry point first
    assert {c.fa4_tile_n for c in fa4_configs(_features())} == {0}
    assert {c.fa4_tile_n for c in fa4_configs(_features(has_mask=False, D=256))} == {0}


def test_captured_numbers_reach_the_hooks_and_recompile_keys(monkeypatch):
    """A captured number is a closure value of the hook (FA4 keys its compile cache on those), so
    two modules for two values differ in it and both are right."""
    q, k, v = _inputs(1, 2, 2, 128, 128, 16)
    shape = {"B": 1, "Hq": 2, "Hkv": 2, "Sq": 128, "Skv": 128, "D": 16}

    def make(cap):
        def softcap(score, b, h, q_idx, kv_idx):
            return cap * torch.tanh(score / cap)

        return softcap

    for cap in (5.0, 20.0):
        softcap = make(cap)
        out, calls, _ = _run(softcap, None, shape, q, k, v, monkeypatch, tag=f"cap{int(cap)}")
        hook = calls[0]["score_mod"]
        cells = [c.cell_contents for c in hook.__closure__ or ()]
        assert cap in cells, cells
        assert _err(out, attention_reference(q.float(), k.float(), v.float(), softcap, None)) < 2e-2


def test_plain_scaled_scores_need_no_hook(monkeypatch):
    (score_mod, mask_mod), shape = _suite_mods("causal", 1, 2, 2, 128, 128, 64)
    q, k, v = _inputs(1, 2, 2, 128, 128, 64)
    _, calls, _ = _run(score_mod, mask_mod, shape, q, k, v, monkeypatch, tag="plain")
    assert calls[0]["score_mod"] is None and abs(calls[0]["softmax_scale"] - 0.125) < 1e-12


def test_fp32_inputs_are_refused_with_a_clear_error(monkeypatch):
    (score_mod, mask_mod), shape = _suite_mods("full", 1, 2, 2, 64, 64, 16)
    q, k, v = (t.float() for t in _inputs(1, 2, 2, 64, 64, 16))
    with pytest.raises(TypeError, match="bf16 or fp16"):
        _run(score_mod, mask_mod, shape, q, k, v, monkeypatch, tag="fp32")


@settings(max_examples=30, **PROPERTY_RUN)
@given(score=_float_exprs(_int_exprs()), mask=st.none() | _conds(_int_exprs()))
def test_random_mods_match_reference(score, mask):
    """The hook code for the compiler's grammar of mods (integer floor division and modulo of
    negative values, lookups, comparisons, where, tanh ...) agrees with the reference."""
    score_mod, mask_mod = make_mods(score, mask)
    mask_mod = None if mask is None else mask_mod
    from test_compiler_property import H, S

    q, k, v = _inputs(1, H, H, S, S, 16)
    shape = {"B": 1, "Hq": H, "Hkv": H, "Sq": S, "Skv": S, "D": 16}
    with pytest.MonkeyPatch.context() as mp:
        out, _, _ = _run(score_mod, mask_mod, shape, q, k, v, mp, tag="prop")
    ref = attention_reference(q.float(), k.float(), v.float(), score_mod, mask_mod)
    assert torch.isfinite(out.float()).all()
    assert _err(out, ref) < 2e-2, (score, mask)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="FA4 runs on Hopper/Blackwell GPUs only")
def test_fa4_on_gpu():
    pytest.importorskip("flash_attn.cute")
    (score_mod, mask_mod), shape = _suite_mods("alibi_causal", 2, 8, 8, 1024, 1024, 128)
    q, k, v = (t.cuda() for t in _inputs(2, 8, 8, 1024, 1024, 128))
    module = import_source(generate(score_mod, mask_mod, FA4), "test_fa4_gpu")
    out = module.ModelNew(score_mod, mask_mod, shape)(q, k, v)
    ref = attention_reference(q.float(), k.float(), v.float(), score_mod, mask_mod)
    assert _err(out, ref) < 2e-2


def _features(**kw):
    from kernelscale.propose.compiler.space import Features

    base = dict(has_mask=True, has_tanh=True, bounded=True, score_cost=3, D=128)
    return Features(**{**base, **kw})


def test_the_proposer_offers_fa4_second_where_it_applies():
    from kernelscale.propose.compiler.proposer import CompilerProposer

    plan = CompilerProposer(device="cuda", fa4=True).plan(_features(), None)
    assert plan[0].backend == "triton" and plan[1] == Config(backend="fa4", fast_tanh=True)
    fa4 = [c for c in plan if c.backend == "fa4"]
    assert {(c.native_mask, c.fast_tanh) for c in fa4} == {(True, True), (False, True), (True, False)}
    assert {c.fa4_tile_m for c in fa4} == {0, 64, 128} and {c.fa4_pack_gqa for c in fa4} == {0, 1, 2}
    assert all(
        sum(c != d for c, d in zip(c.as_dict().values(), fa4[0].as_dict().values())) == 1 for c in fa4[1:]
    )
    for features in (_features(decode=True), _features(dtype="float32"), _features(D=512)):
        assert not any(
            c.backend == "fa4" for c in CompilerProposer(device="cuda", fa4=True).plan(features, None)
        )
    assert not any(c.backend == "fa4" for c in CompilerProposer(device="cpu").plan(_features(), None))


def test_inlined_per_head_tables_leave_fa4_no_aux_tensor(monkeypatch):
    """ALiBi's slopes are read at h only: their values go into the hook (a select), so FA4 gets
    no aux tensors; a table indexed by q or kv stays an aux tensor."""
    (score_mod, mask_mod), shape = _suite_mods("alibi", 1, 4, 4, 128, 128, 32)
    q, k, v = _inputs(1, 4, 4, 128, 128, 32)
    _, calls, source = _run(score_mod, mask_mod, shape, q, k, v, monkeypatch, tag="inl")
    assert calls[0]["aux_tensors"] is None and "INLINE_NAMES = ['slopes']" in source
    (score_mod, mask_mod), shape = _suite_mods("document", 1, 4, 4, 128, 128, 32)
    _, calls, _ = _run(score_mod, mask_mod, shape, q, k, v, monkeypatch, tag="doc")
    assert len(calls[0]["aux_tensors"]) == 1


def test_a_module_built_on_another_device_follows_the_inputs(monkeypatch):
    """Built for "meta"-free CPU tensors and called on others: the plan's block sparsity moves
    with the inputs once; an unprepared shape is a clear error, not a silent rebuild in forward."""
    (score_mod, mask_mod), shape = _suite_mods("prefix_lm", 1, 2, 2, 256, 256, 32)
    calls = fa4_model.install(monkeypatch)
    module = import_source(generate(score_mod, mask_mod, FA4), "test_fa4_dev")
    model = module.ModelNew(score_mod, mask_mod, {**shape, "device": "cpu"})
    q, k, v = _inputs(1, 2, 2, 256, 256, 32)
    model(q, k, v)
    assert calls[0]["block_sparse_tensors"].mask_block_cnt.device == q.device
    q2, k2, v2 = _inputs(1, 2, 2, 128, 128, 32)
    with pytest.raises(ValueError, match="call prepare"):
        model(q2, k2, v2)
    model.prepare(1, 2, 2, 128, 128, "cpu")
    assert (
        _err(model(q2, k2, v2), attention_reference(q2.float(), k2.float(), v2.float(), score_mod, mask_mod))
        < 2e-2
    )


def test_the_screen_admits_fa4_modules_and_only_fa4s_entry_point():
    from kernelscale.verify.screen import screen

    (score_mod, mask_mod), _ = _suite_mods("document", 1, 2, 2, 128, 128, 32)
    source = generate(score_mod, mask_mod, FA4)
    assert screen(source) == []
    rules = lambda src: {v.rule for v in screen(src)}  # noqa: E731
    assert "private_access" in rules(source.replace("_flash_attn_fwd\n", "_flash_attn_fwd, _validate\n", 1))
    assert "forbidden_call" in rules(source + "\nx = cute.runtime.load_module\n")
    assert "forbidden_import" in rules(source.replace("import cutlass\n", "import cutlass.base_dsl\n"))
    assert "forbidden_import" in rules(
        source.replace("import cutlass\n", "from cutlass import base_dsl as b\n")
    )
    assert "forbidden_import" in rules(
        source.replace("import cutlass\n", "from cutlass.cute import runtime\n")
    )
    # a forward that launches nothing of its own is still refused
    no_launch = source.replace("        _flash_attn_fwd(\n", "        print(\n")
    assert "no_kernel" in rules(no_launch)
    # host code hidden in a nested function is checked unless that function is a kernel
    hidden = source.replace(
        "    return score_mod, mask_mod",
        "    def sneak(x):\n        return torch.softmax(x, -1)\n    sneak(None)\n    return score_mod, mask_mod",
    )
    assert "torch_fallback" in rules(hidden)


def test_the_run_header_says_which_backends_propose():
    from types import SimpleNamespace

    from kernelscale.cli.progress import ProgressPrinter
    from kernelscale.propose.compiler.proposer import CompilerProposer

    assert "skipped: flash-attn-4 is not installed" in CompilerProposer(device="cuda", fa4=False).note
    assert "FlashAttention-4" in CompilerProposer(device="cuda", fa4=True).note
    assert CompilerProposer(device="cpu").note == ""
    lines = []
    printer = ProgressPrinter(SimpleNamespace(print=lambda text, **kw: lines.append(text)))
    note = CompilerProposer(device="cuda", fa4=False).note
    info = {"run_id": 1, "problem": "attention/causal", "device": "H200", "workers": 1}
    printer("start", info | {"proposer": "compiler", "budget_s": 60, "proposer_note": note})
    assert note in lines


def test_a_mask_causal_on_all_heads_but_one_is_not_taken_for_causal(monkeypatch):
    """Native masking is chosen on the whole (b, h) grid: one head that differs keeps the mask
    hook, and the output is still right for that head."""
    q, k, v = _inputs(2, 4, 4, 256, 256, 32)
    shape = {"B": 2, "Hq": 4, "Hkv": 4, "Sq": 256, "Skv": 256, "D": 32}

    def mostly_causal(b, h, q_idx, kv_idx):
        return (q_idx >= kv_idx) | ((h == 3) & (b == 1))

    out, calls, _ = _run(None, mostly_causal, shape, q, k, v, monkeypatch, tag="mostly")
    assert calls[0]["causal"] is False and calls[0]["mask_mod"] is not None
    assert _err(out, attention_reference(q.float(), k.float(), v.float(), None, mostly_causal)) < 2e-2
