"""Tables of distances (compiler/tables.py) on the FA4 backend: Triton kernels fill them once per
call (on the CPU here, under TRITON_INTERPRET, set by test_compiler_common before triton is
imported), and the hooks read one entry per score instead of computing the term. Run against
tests/fa4_model.py, compared with the fp32 reference."""

from __future__ import annotations

import itertools

import pytest
import torch

import fa4_model
from conftest import TESTS
from kernelscale.problems.attention.reference import attention_reference
from kernelscale.problems.attention.variant import load_variant_module, resolve_mods
from kernelscale.problems.module import import_source
from kernelscale.propose.compiler import graph as g
from kernelscale.propose.compiler.generate import compile_mods, generate
from kernelscale.propose.compiler.generate_fa4 import build_hooks
from kernelscale.propose.compiler.rewrite import LOG2E
from kernelscale.propose.compiler.space import Config, Features, fa4_configs
from kernelscale.propose.compiler.tables import find_tables
from test_compiler_fa4 import _err, _inputs, _suite_mods

FA4 = Config(backend="fa4")
NO_TABLES = Config(backend="fa4", rel_tables=False)
T5 = TESTS / "problems" / "t5_bucketed_bias.py"
TAGS = itertools.count()  # a fresh module name each time: each binds the fake FA4 of its test


def _shape(B, Hq, Hkv, Sq, Skv, D=32):
    return {"B": B, "Hq": Hq, "Hkv": Hkv, "Sq": Sq, "Skv": Skv, "D": D}


def _hooks_text(source: str) -> str:
    start = source.index("def _make_hooks(")
    return source[start : source.index("\ndef ", start + 1)]


def _module(score_mod, mask_mod, monkeypatch, config=FA4, hopper=False):
    calls = fa4_model.install(monkeypatch)
    source = generate(score_mod, mask_mod, config)
    module = import_source(source, f"test_fa4_tables_{next(TAGS)}")
    monkeypatch.setattr(module, "_hopper", lambda device: hopper)
    return module, source, calls


def _check(model, mods, shape, seed=0):
    q, k, v = _inputs(shape["B"], shape["Hq"], shape["Hkv"], shape["Sq"], shape["Skv"], shape["D"], seed=seed)
    out = model(q, k, v)
    assert _err(out, attention_reference(q.float(), k.float(), v.float(), *mods)) < 2e-2
    return out


def _log_bucket(rel):
    """A costly function of the distance: what makes a term worth a table."""
    return torch.log(torch.abs(rel).float() + 1.0)


@pytest.mark.parametrize(
    "shape",
    [_shape(1, 4, 4, 192, 192), _shape(2, 4, 2, 96, 160), _shape(1, 4, 1, 160, 96)],
    ids=["square", "gqa-sq<skv", "mqa-sq>skv"],
)
def test_t5_bucket_on_fa4_reads_a_table_and_matches_the_reference(shape, monkeypatch):
    mods = resolve_mods(load_variant_module(T5), shape, "cpu")
    module, source, calls = _module(*mods, monkeypatch)
    _check(module.ModelNew(*mods, shape), mods, shape)
    assert len(calls) == 1
    hooks = _hooks_text(source)
    assert "_make_hooks(P, N, T, sm_scale, Sq)" in hooks and "N___rel0_2" in hooks
    assert "cute.math.log" not in hooks  # the bucket left the hook for the fill kernel
    assert module.AUX_NAMES == []  # the bias table is read only by the fill kernel
    assert "_gather3(aux_tensors[0]," in hooks
    assert "def _rel_table0(" in source and "import triton.language as tl" in source


def test_without_tables_the_hook_computes_the_bucket(monkeypatch):
    shape = _shape(1, 4, 4, 128, 128)
    mods = resolve_mods(load_variant_module(T5), shape, "cpu")
    module, source, _ = _module(*mods, monkeypatch, config=NO_TABLES)
    _check(module.ModelNew(*mods, shape), mods, shape)
    assert "cute.math.log" in _hooks_text(source) and "__rel" not in source
    assert "import triton" not in source


def test_each_backends_table_is_its_own_rewrites_term():
    """FA4's rewrite works in natural-log units (base 1), the Triton backend's in log2 e units; a
    table's term never involves the score, so a base only scales it: each backend's fill kernel
    computes its own rewrite's term, the Triton one log2 e times FA4's."""
    mods = resolve_mods(load_variant_module(T5), _shape(1, 4, 4, 64, 64), "cpu")
    compiled = compile_mods(*mods)
    (fa4_table,) = build_hooks(compiled.trace, FA4).tables
    (triton_table,) = find_tables([compiled.rewritten.logits, compiled.rewritten.mask])
    assert fa4_table.node.op == "load" and {"score", "qk"}.isdisjoint(fa4_table.node.deps)
    assert triton_table.node == g.make("mul", fa4_table.node, g.const(LOG2E))


def _bias_mods(B, H, per_b):
    gen = torch.Generator().manual_seed(3)
    bias = torch.randn(B if per_b else 1, H, 16, generator=gen)

    def score_mod(score, b, h, q_idx, kv_idx):
        bucket = (_log_bucket(kv_idx - q_idx) * 2.0).long()
        bucket = torch.where(bucket > 15, 15, bucket)
        return score + bias[b if per_b else 0, h, bucket]

    return score_mod, None


@pytest.mark.parametrize("per_b", [True, False], ids=["per-b-h", "per-h"])
def test_a_table_per_batch_and_head_or_per_head(per_b, monkeypatch):
    shape = _shape(2, 4, 2, 96, 128)
    mods = _bias_mods(2, 4, per_b)
    module, source, _ = _module(*mods, monkeypatch)
    _check(module.ModelNew(*mods, shape), mods, shape)
    assert f"torch.empty(({'B' if per_b else 1}, H, Sq + Skv - 1), dtype=torch.float32" in source


def test_a_costly_mask_of_the_distance_becomes_a_table(monkeypatch):
    """A boolean table (int8), read by the mask_mod in the blocks the block sparsity leaves."""
    shape = _shape(1, 2, 2, 192, 256)

    def mask_mod(b, h, q_idx, kv_idx):
        return _log_bucket(kv_idx - q_idx) < 3.5  # |kv - q| < e^3.5 - 1: a band, not FA4's window

    mods = (None, mask_mod)
    module, source, _ = _module(*mods, monkeypatch)
    model = module.ModelNew(*mods, shape)
    _check(model, mods, shape)
    assert "dtype=torch.int8" in source and "cute.math.log" not in _hooks_text(source)
    assert model.plans[(1, 2, 192, 256)]["mask_mod"]  # the hook ran, not FA4's own masking


@pytest.mark.parametrize("hopper", [False, True], ids=["entry-point", "direct"])
def test_the_tables_are_refilled_when_a_captured_tensor_changes(hopper, monkeypatch):
    """The fill kernels run at every call: a captured tensor changed in place between calls
    changes the output, through FA4's entry point and through the direct call alike."""
    shape = _shape(1, 4, 2, 128, 128)
    mods = resolve_mods(load_variant_module(T5), shape, "cpu")
    module, _, calls = _module(
        *mods, monkeypatch, config=Config(backend="fa4", fa4_direct=True), hopper=hopper
    )
    model = module.ModelNew(*mods, shape)
    first = _check(model, mods, shape)
    table = model._buffers["c_table"]
    tables = model.tables[(1, 4, 128, 128)]
    table.mul_(-3.0)  # the captured tensor itself: the module holds it, not a copy
    second = _check(model, mods, shape)
    assert _err(first, second) > 0.05
    assert model.tables[(1, 4, 128, 128)] is tables  # the same storage on every call of a shape
    assert [c.get("direct", False) for c in calls] == [False, hopper]


@pytest.mark.parametrize("name", ["alibi", "document", "softcap", "relative_positional"])
def test_variants_without_tables_get_the_same_module_with_the_knob_on_or_off(name, monkeypatch):
    (score_mod, mask_mod), _ = _suite_mods(name, 1, 4, 4, 128, 128, 32)
    on, off = (generate(score_mod, mask_mod, config) for config in (FA4, NO_TABLES))
    assert on.replace("'rel_tables': True", "'rel_tables': False") == off
    assert "__rel" not in on and "import triton" not in on


def test_the_fa4_configs_try_the_tables_off_where_there_are_some():
    features = compile_mods(*resolve_mods(load_variant_module(T5), _shape(1, 4, 4, 64, 64), "cpu")).features
    configs = fa4_configs(Features(**{**features.__dict__, "D": 128, "dtype": "bfloat16"}))
    assert configs[0].rel_tables and any(not c.rel_tables for c in configs)


def test_a_0d_tensor_is_read_by_its_pointer_in_a_table_and_as_one_element_in_the_hook(monkeypatch):
    """The module keeps a 0-d tensor as shape (1,) for the hooks' gather; the fill kernel takes it
    with its own 0 dims, as the Triton emitter's load of it expects."""
    shape = _shape(1, 2, 2, 96, 128)
    weight, temperature = torch.tensor(0.7), torch.tensor(1.3)

    def score_mod(score, b, h, q_idx, kv_idx):
        return score * temperature - _log_bucket(kv_idx - q_idx) * weight

    mods = (score_mod, None)
    module, source, _ = _module(*mods, monkeypatch)
    _check(module.ModelNew(*mods, shape), mods, shape)
    assert set(module.FILL_DIMS.values()) == {0}
    assert "def _rel_table0(" in source and "cute.math.log" not in _hooks_text(source)
