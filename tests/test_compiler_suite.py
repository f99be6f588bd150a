"""Every built-in variant's generated kernel matches the fp32 reference under the interpreter,
plus the shapes that break naive kernels: Sq != Skv, GQA, ragged tiles, fully masked rows."""

from __future__ import annotations

import pytest
import torch

from kernelscale.problems import load_problem
from kernelscale.problems.attention.variant import load_variant_module, resolve_mods
from kernelscale.propose.compiler.space import Config
from test_compiler_common import SMALL, inputs, max_err, run_compiled

SUITE = [
    "alibi",
    "alibi_causal",
    "causal",
    "document",
    "full",
    "gqa_causal",
    "natten2d",
    "natten2d_dilated",
    "prefix_lm",
    "relative_positional",
    "sliding_window",
    "softcap",
    "softcap_causal",
]


def _mods(name, shape):
    problem = load_problem(f"attention/{name}")
    return resolve_mods(load_variant_module(problem.path), shape, "cpu")


@pytest.mark.parametrize("name", SUITE)
def test_builtin_variant_matches_reference(name):
    small = load_problem(f"attention/{name}").cpu_sizes["SHAPE"]
    shape = (
        {**small, "Sq": 128, "Skv": 128}
        if not name.startswith("natten")
        else {**small, "Sq": 144, "Skv": 144}
    )
    torch.manual_seed(3)
    score_mod, mask_mod = _mods(name, shape)
    q, k, v = inputs(shape["B"], shape["Hq"], shape["Hkv"], shape["Sq"], shape["Skv"], 32, torch.bfloat16)
    out, ref, _ = run_compiled(score_mod, mask_mod, q, k, v, Config(block_m=64, block_n=32), tag=name)
    assert out.dtype == torch.bfloat16 and out.shape == q.shape
    assert max_err(out, ref) < 2e-2


@pytest.mark.parametrize(
    "config",
    [
        SMALL,
        Config(block_m=32, block_n=64, split_loops=False, reverse_m=True),
        Config(block_m=64, block_n=32, use_schedule=False),
    ],
)
def test_rectangular_gqa_ragged_and_fully_masked_rows(config):
    # Sq != Skv, neither a multiple of the tiles, D not a power of two, 3 query heads per kv head,
    # and every third query row masked out entirely (those rows must be zeros, not NaN).
    q, k, v = inputs(B=2, Hq=6, Hkv=2, Sq=70, Skv=100, D=24)
    mask = lambda b, h, qi, kv: (qi % 3 != 0) & ((kv <= qi + 20) | (h == b))  # noqa: E731
    score = lambda s, b, h, qi, kv: s - 0.05 * torch.abs(qi - kv)  # noqa: E731
    out, ref, _ = run_compiled(score, mask, q, k, v, config, tag="ragged")
    assert torch.isfinite(out).all()
    assert torch.all(out[:, :, ::3] == 0)
    assert max_err(out, ref) < 1e-4


def test_captured_numbers_are_kernel_arguments_not_constants():
    # natten2d's width comes from S in make(): one generated module must serve both shapes.
    shapes = [{"B": 1, "Hq": 1, "Hkv": 1, "Sq": s, "Skv": s, "D": 16} for s in (64, 144)]
    sources = set()
    for shape in shapes:
        score_mod, mask_mod = _mods("natten2d", shape)
        q, k, v = inputs(1, 1, 1, shape["Sq"], shape["Skv"], 16)
        out, ref, source = run_compiled(score_mod, mask_mod, q, k, v, tag=f"natten{shape['Sq']}")
        assert max_err(out, ref) < 1e-4
        sources.add(source)
    assert len(sources) == 1


def test_document_layout_comes_from_the_mods_given():
    shape = {"B": 1, "Hq": 2, "Hkv": 2, "Sq": 128, "Skv": 128, "D": 16}
    torch.manual_seed(0)
    first = _mods("document", shape)
    torch.manual_seed(1)
    second = _mods("document", shape)
    q, k, v = inputs(1, 2, 2, 128, 128, 16)
    out1, ref1, src1 = run_compiled(*first, q, k, v, tag="doc1")
    out2, ref2, src2 = run_compiled(*second, q, k, v, tag="doc2")
    assert src1 == src2 and max_err(out1, ref1) < 1e-4 and max_err(out2, ref2) < 1e-4
    assert max_err(ref1, ref2) > 1e-2  # the layouts really differ
