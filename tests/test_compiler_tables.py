"""Relative-position tables (compiler/tables.py): which terms are tabulated, and kernels that use
them match the fp32 reference under the interpreter, with and without the tables."""

from __future__ import annotations

import pytest
import torch

from conftest import TESTS
from kernelscale.problems import load_problem
from kernelscale.problems.attention.variant import load_variant_module, resolve_mods
from kernelscale.propose.compiler import graph as g
from kernelscale.propose.compiler.generate import compile_mods
from kernelscale.propose.compiler.space import Config, relevant
from kernelscale.propose.compiler.tables import _through_distances, find_tables
from test_compiler_common import inputs, max_err, run_compiled
from test_compiler_suite import SUITE

SHAPE = {"B": 2, "Hq": 4, "Hkv": 2, "Sq": 96, "Skv": 160, "D": 32}  # GQA, Sq != Skv, ragged tiles
T5 = TESTS / "problems" / "t5_bucketed_bias.py"


def _t5_mods(shape=SHAPE):
    return resolve_mods(load_variant_module(T5), shape, "cpu")


def _tables(score_mod, mask_mod):
    compiled = compile_mods(score_mod, mask_mod)
    return find_tables([compiled.rewritten.logits, compiled.rewritten.mask])


def _attention_kernel(source: str) -> str:
    start = source.index("def _attn_fwd(")
    return source[start : source.index("\ndef ", start + 1)]


Q, KV, H = g.arg("q"), g.arg("kv"), g.arg("h")
OFFSET = g.Node("param", ("offset",), "int")


@pytest.mark.parametrize(
    "node, through",
    [
        (g.make("sub", KV, Q), True),
        (g.make("add", g.make("sub", g.make("add", Q, OFFSET), KV), H), True),  # q + offset − kv + h
        (g.make("mul", g.make("sub", Q, KV), g.const(3)), True),
        (g.make("abs", g.make("sub", KV, Q)), True),
        (g.make("sub", g.make("mul", Q, g.const(2)), KV), False),  # 2q − kv
        (g.make("mul", Q, KV), False),
        (g.make("add", g.make("log", g.make("cast_float", KV)), Q), False),  # log(kv) + q
        (g.make("sub", g.make("mul", KV, OFFSET), g.make("mul", Q, OFFSET)), False),  # unknown factor
    ],
)
def test_terms_reach_positions_only_through_distances(node, through):
    assert _through_distances(node) is through


@pytest.mark.parametrize("name", SUITE)
def test_no_builtin_variant_has_a_term_worth_a_table(name):
    """Their distance terms are a multiply-add at most (ALiBi, relative_positional, windows):
    cheaper than a load, so they stay in the inner loop."""
    problem = load_problem(f"attention/{name}")
    shape = problem.cpu_sizes["SHAPE"]
    assert _tables(*resolve_mods(load_variant_module(problem.path), shape, "cpu")) == []


def test_the_t5_bucket_and_its_lookup_become_one_table_per_head():
    (table,) = _tables(*_t5_mods())
    assert table.per_h and not table.per_b and table.node.kind == "float"
    ops = {n.op for n in g.walk([table.node])}
    assert {"log", "load", "where"} <= ops  # the whole chain, lookup included
    assert compile_mods(*_t5_mods()).features.tables == 1
    assert "rel_tables" in relevant(compile_mods(*_t5_mods()).features)


@pytest.mark.parametrize("rel_tables", [True, False])
def test_t5_bias_matches_the_reference_with_and_without_tables(rel_tables):
    torch.manual_seed(0)
    q, k, v = inputs(SHAPE["B"], SHAPE["Hq"], SHAPE["Hkv"], SHAPE["Sq"], SHAPE["Skv"], SHAPE["D"])
    config = Config(block_m=32, block_n=64, num_warps=4, num_stages=2, rel_tables=rel_tables)
    out, ref, source = run_compiled(*_t5_mods(), q, k, v, config, tag=f"t5_{rel_tables}")
    assert max_err(out, ref) < 1e-4
    inner = _attention_kernel(source)
    if rel_tables:
        assert "tl.log(" not in inner and "c___rel0" in inner and "(_rel_table0, _Kernel(" in source
    else:
        assert "tl.log(" in inner and "_rel_table0" not in source


def test_per_batch_term_and_a_tabulated_mask_match_the_reference():
    gen = torch.Generator().manual_seed(1)
    per_batch = torch.randn(SHAPE["B"], 5, generator=gen)

    def score_mod(score, b, h, q_idx, kv_idx):
        return score + per_batch[b, torch.abs(kv_idx - q_idx) % 5]

    def mask_mod(b, h, q_idx, kv_idx):
        return ((kv_idx - q_idx) % 3) != 1

    tables = _tables(score_mod, mask_mod)
    assert [(t.per_b, t.per_h, t.node.kind) for t in tables] == [
        (True, False, "float"),
        (False, False, "bool"),
    ]
    q, k, v = inputs(SHAPE["B"], SHAPE["Hq"], SHAPE["Hkv"], SHAPE["Sq"], SHAPE["Skv"], SHAPE["D"], seed=2)
    out, ref, source = run_compiled(
        score_mod, mask_mod, q, k, v, Config(block_m=32, block_n=32), tag="rel_mask"
    )
    assert "(_rel_table1, _Kernel(" in source  # launched by the plan
    assert max_err(out, ref) < 1e-4


@pytest.mark.parametrize("rel_tables", [True, False])
@pytest.mark.parametrize("sq", [1, 3])
def test_t5_bias_at_decode_shapes_matches_the_reference(rel_tables, sq):
    """The split-KV decode kernel with GQA packing reads the same tables (refilled every call)."""
    shape = {"B": 2, "Hq": 8, "Hkv": 2, "Sq": sq, "Skv": 200, "D": 32}
    q, k, v = inputs(shape["B"], shape["Hq"], shape["Hkv"], sq, shape["Skv"], shape["D"], seed=4)
    config = Config(
        decode=True, block_m=16, block_n=32, num_warps=4, num_stages=2, num_splits=3, rel_tables=rel_tables
    )
    out, ref, source = run_compiled(*_t5_mods(shape), q, k, v, config, tag=f"t5_dec_{sq}_{rel_tables}")
    assert max_err(out, ref) < 1e-4
    main = source[source.index("def _attn_decode(") : source.index("def _combine(")]
    main = main[: main.index("\n\n\n")]
    assert ("tl.log(" in main) is not rel_tables and ("_rel_table0" in source) is rel_tables
