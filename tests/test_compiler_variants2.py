"""More variants beyond the built-in suite, each a class the compiler once refused or got wrong:
FlexAttention's own mask combinators, and integer arithmetic whose width torch decides (int32
index arithmetic wraps, `.long()` and int64 tables compute in 64 bits). Each runs the Triton
prefill and decode kernels under the interpreter, and the FA4 module against tests/fa4_model.py."""

from __future__ import annotations

import pytest
import torch

import fa4_model
from kernelscale.problems.module import import_source
from kernelscale.propose.compiler.errors import CompilerError
from kernelscale.propose.compiler.generate import compile_mods, generate
from kernelscale.propose.compiler.space import Config, Features, fa4_configs
from test_compiler_variants import _check_fa4, _check_triton


def _flex_combinator_mods():
    """and_masks / or_masks / noop_mask start from `b.new_ones((), dtype=torch.bool)`: refused
    before as `torch.new_ones`, though they are how FlexAttention users combine masks."""
    flex = pytest.importorskip("torch.nn.attention.flex_attention")

    def causal(b, h, q_idx, kv_idx):
        return kv_idx <= q_idx

    def window(b, h, q_idx, kv_idx):
        return q_idx - kv_idx < 8

    def sink(b, h, q_idx, kv_idx):
        return kv_idx < 2

    return None, flex.or_masks(flex.and_masks(causal, window, flex.noop_mask), sink)


def test_flex_attention_mask_combinators_triton():
    _check_triton(*_flex_combinator_mods(), Sq=16, Skv=45, tag="flexcomb")


def test_flex_attention_mask_combinators_fa4(monkeypatch):
    _check_fa4(*_flex_combinator_mods(), monkeypatch, tag="flexcomb")


def test_new_tensors_of_one_element_only():
    def score_mod(score, b, h, q_idx, kv_idx):
        return (
            score
            + q_idx.new_full((), 2) * 0.5
            + score.new_zeros(1)
            - torch.clamp_min(q_idx - kv_idx, 0) * 0.1
        )

    _check_triton(score_mod, None, Sq=16, Skv=45, tag="newfull")
    with pytest.raises(CompilerError, match="new tensor of size"):
        generate(None, lambda b, h, q, kv: b.new_ones((2, 3), dtype=torch.bool) & (kv <= q))


def _int32_wrap_mods():
    """A hashed sparse mask: q_idx is int32, so torch wraps 2654435761 (a literal, and the same
    value captured) and the products to 32 bits; the kernel once crashed on the literal under
    the interpreter (int32 out of range) and widened it to 64 bits on the GPU."""
    knuth, window = 2654435761, 2**32 + 5  # torch reads the window as 5

    def mask_mod(b, h, q_idx, kv_idx):
        hashed = (q_idx * 2654435761 + kv_idx * knuth) % 7
        return (hashed < 4) & ((kv_idx - q_idx).abs() < window)

    return None, mask_mod


def test_int_constants_beyond_int32_wrap_as_in_torch_triton():
    _check_triton(*_int32_wrap_mods(), Sq=16, Skv=45, tag="wrap32")


def test_int_constants_beyond_int32_wrap_as_in_torch_fa4(monkeypatch):
    _check_fa4(*_int32_wrap_mods(), monkeypatch, tag="wrap32")


def _int64_mods():
    """`.long()` makes torch compute in 64 bits (1e10 does not wrap), as does an int64 table's
    element; the kernel computed both in int32 before: silently wrong."""
    big = torch.arange(64, dtype=torch.int64) * 2**33 + 5

    def score_mod(score, b, h, q_idx, kv_idx):
        return score + ((kv_idx - q_idx).to(torch.int64) * 3000000000 % 11).float() * 0.1

    def mask_mod(b, h, q_idx, kv_idx):
        return ((q_idx.long() * 100000 * 100000 + kv_idx) % 3 != 0) & ((big[kv_idx] + q_idx) % 7 < 5)

    return score_mod, mask_mod


def test_int64_arithmetic_is_computed_in_64_bits_triton():
    _check_triton(*_int64_mods(), Sq=16, Skv=45, tag="int64")


def test_int64_arithmetic_is_refused_by_fa4_and_left_out_of_its_plan():
    compiled = compile_mods(*_int64_mods())
    assert compiled.features.wide_ints
    features = Features(**{**compiled.features.__dict__, "D": 128})
    assert fa4_configs(features) == []
    with pytest.raises(CompilerError, match="FA4 hooks compute integers in 32 bits"):
        generate(*_int64_mods(), config=_fa4())
    assert not compile_mods(*_int32_wrap_mods()).features.wide_ints


def _fa4():
    from kernelscale.propose.compiler.space import Config

    return Config(backend="fa4")


def _int64_table_mods(offset: int):
    """An int64 table compared, not computed with: 32-bit in the FA4 hooks, so two ids that
    differ by a multiple of 2**32 were the same there (document masks with large ids)."""
    ids = torch.arange(130, dtype=torch.int64) // 7 * (2**32 if offset else 1) + offset

    def mask_mod(b, h, q_idx, kv_idx):
        return ids[q_idx] == ids[kv_idx]

    return None, mask_mod


def test_int64_tables_within_int32_run_on_fa4(monkeypatch):
    _check_fa4(*_int64_table_mods(0), monkeypatch, tag="ids32")


def test_int64_tables_beyond_int32_are_refused_by_the_fa4_module(monkeypatch):
    fa4_model.install(monkeypatch)
    score_mod, mask_mod = _int64_table_mods(5)
    module = import_source(generate(score_mod, mask_mod, Config(backend="fa4")), "test_fa4_ids64")
    shape = {"B": 2, "Hq": 4, "Hkv": 2, "Sq": 130, "Skv": 130, "D": 16}
    with pytest.raises(ValueError, match="recompile for these mods"):
        module.ModelNew(score_mod, mask_mod, shape)
