"""The FA4 module's direct call (config fa4_direct): after the first call for a shape, FA4's
compiled kernel is called with FA4's SM90 arguments instead of through its entry point. Run on
the CPU against tests/fa4_model.py, whose compile cache hands out kernels that check their
arguments; on a GPU the same path runs FA4's real kernel (benchmarks/fa4_host_profile.py)."""

from __future__ import annotations

import sys

import pytest
import torch

import fa4_model
from kernelscale.problems.attention.reference import attention_reference
from kernelscale.problems.module import import_source
from kernelscale.propose.compiler.generate import generate
from kernelscale.propose.compiler.space import Config
from test_compiler_fa4 import _err, _inputs, _suite_mods

FA4 = Config(backend="fa4")
TAGS = iter(range(10**6))  # a fresh module name each time: each binds the fake FA4 of its test


def _model(name, B, Hq, Hkv, S, D, monkeypatch, config=FA4, hopper=True):
    (score_mod, mask_mod), shape = _suite_mods(name, B, Hq, Hkv, S, S, D)
    calls = fa4_model.install(monkeypatch)
    module = import_source(generate(score_mod, mask_mod, config), f"test_direct_{name}_{next(TAGS)}")
    monkeypatch.setattr(module, "_hopper", lambda device: hopper)
    return module.ModelNew(score_mod, mask_mod, shape), (score_mod, mask_mod), calls


def _check(model, mods, seed, shape=(1, 4, 2, 192, 32)):
    B, Hq, Hkv, S, D = shape
    q, k, v = _inputs(B, Hq, Hkv, S, S, D, seed=seed)
    out = model(q, k, v)
    assert _err(out, attention_reference(q.float(), k.float(), v.float(), *mods)) < 2e-2
    return out


@pytest.mark.parametrize("name", ["causal", "gqa_causal", "sliding_window", "alibi", "softcap"])
def test_calls_after_the_first_go_to_the_compiled_kernel_on_fresh_inputs(name, monkeypatch):
    """First call through the entry point, every later one direct, each right for its own inputs
    (not the first call's), with the entry point's window and scale."""
    model, mods, calls = _model(name, 1, 4, 2, 192, 32, monkeypatch)
    for seed in range(3):
        _check(model, mods, seed)
    assert [c.get("direct", False) for c in calls] == [False, True, True]
    assert calls[1]["window_size_left"] == calls[0]["window_size_left"]
    assert calls[1]["softmax_scale"] == calls[0]["softmax_scale"]


@pytest.mark.parametrize("name", ["document", "prefix_lm"])
def test_a_block_sparse_plan_goes_direct_with_fa4s_normalised_blocks(name, monkeypatch):
    """The block sparsity reaches the compiled kernel as FA4's entry point hands it over:
    normalised to (B, H, ...) by FA4's own function; each later call right for its inputs."""
    model, mods, calls = _model(name, 2, 4, 2, 192, 32, monkeypatch)
    for seed in range(3):
        _check(model, mods, seed, shape=(2, 4, 2, 192, 32))
    assert [c.get("direct", False) for c in calls] == [False, True, True]


@pytest.mark.parametrize("why", ["tile 64", "subtiled", "head dim 192"])
def test_a_block_sparse_plan_keeps_the_entry_point_where_fa4s_tile_is_not_our_block(why, monkeypatch):
    config = Config(backend="fa4", fa4_tile_m=64) if why == "tile 64" else FA4
    D = 192 if why == "head dim 192" else 32
    model, mods, calls = _model("document", 1, 4, 4, 192, D, monkeypatch, config)
    module_globals = type(model).forward.__globals__
    if why == "subtiled":  # FA4 would split our blocks over several tiles
        real = module_globals["normalize_block_sparse_config"]
        monkeypatch.setitem(
            module_globals,
            "normalize_block_sparse_config",
            lambda *a, **kw: real(*a, **kw)._replace(q_subtile_factor=2),
        )
    for seed in range(3):
        _check(model, mods, seed, shape=(1, 4, 4, 192, D))
    assert not any(c.get("direct") for c in calls) and len(calls) == 3


def test_a_new_shape_goes_through_the_entry_point_once(monkeypatch):
    model, mods, calls = _model("causal", 1, 4, 2, 192, 32, monkeypatch)
    _check(model, mods, 0)
    _check(model, mods, 1)
    model.prepare(1, 4, 2, 128, 128, "cpu")
    _check(model, mods, 2, shape=(1, 4, 2, 128, 32))
    _check(model, mods, 3, shape=(1, 4, 2, 128, 32))
    assert [c.get("direct", False) for c in calls] == [False, True, False, True]


@pytest.mark.parametrize(
    "why",
    [
        "not hopper",
        "block sparsity off hopper",
        "knob off",
        "gradient",
        "misaligned stride",
        "two kernels compiled",
    ],
)
def test_every_call_keeps_the_entry_point_where_the_arguments_are_not_known(why, monkeypatch):
    name = "document" if why == "block sparsity off hopper" else "causal"
    config = Config(backend="fa4", fa4_direct=False) if why == "knob off" else FA4
    model, mods, calls = _model(name, 1, 4, 4, 192, 32, monkeypatch, config, hopper="hopper" not in why)
    if why == "two kernels compiled":  # which of them is ours is unknown
        cache = sys.modules["flash_attn.cute.interface"]._flash_attn_fwd.compile_cache
        real = cache.compile
        monkeypatch.setattr(
            cache, "compile", lambda kw, *a: (real(kw, *a), cache.cache.setdefault(len(cache.cache), None))
        )
    for seed in range(3):
        q, k, v = _inputs(1, 4, 4, 192, 192, 32 if why != "misaligned stride" else 36, seed=seed)
        if why == "misaligned stride":  # D=36: the heads' stride is not a multiple of 16 bytes
            model.prepare(1, 4, 4, 192, 192, "cpu")
        if why == "gradient":
            q.requires_grad_(True)
        with torch.no_grad() if why != "gradient" else torch.enable_grad():
            out = model(q, k, v)
        assert _err(out, attention_reference(q.float(), k.float(), v.float(), *mods)) < 2e-2
    assert not any(c.get("direct") for c in calls) and len(calls) == 3


def test_the_screen_admits_the_direct_call():
    from kernelscale.verify.screen import screen

    (score_mod, mask_mod), _ = _suite_mods("alibi_causal", 1, 2, 2, 128, 128, 32)
    source = generate(score_mod, mask_mod, FA4)
    assert "_call_compiled(direct" in source and screen(source) == []


def test_the_entry_point_call_is_the_first_fa4_neighbour():
    """Where the direct call fails (an FA4 version with another argument list), the next FA4
    candidate the search tries is the same kernel through the entry point."""
    from dataclasses import replace

    from kernelscale.propose.compiler.proposer import CompilerProposer
    from test_compiler_fa4 import _features

    fa4 = [c for c in CompilerProposer(device="cuda", fa4=True).plan(_features(), None) if c.backend == "fa4"]
    assert fa4[0].fa4_direct and fa4[1] == replace(fa4[0], fa4_direct=False)
