"""The split-KV decode kernel under the interpreter: every built-in variant at decode shapes (the
query rows at the end of the cache), GQA packing, ragged caches, empty splits and fully masked
rows, the exactness of the split combine, and the proposer choosing it by shape."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kernelscale.problems import list_problem_ids, load_problem
from kernelscale.problems.attention.reference import attention_reference
from kernelscale.problems.attention.variant import load_variant_module, resolve_mods
from kernelscale.problems.module import import_source
from kernelscale.propose.compiler.generate import generate
from kernelscale.propose.compiler.proposer import CompilerProposer
from kernelscale.propose.compiler.space import Config, Features, is_decode_shape
from test_compiler_common import inputs, max_err, run_compiled

# natten2d needs Sq == Skv == W*W: it has no decode shape.
DECODE_SUITE = [
    "alibi",
    "alibi_causal",
    "causal",
    "document",
    "full",
    "gqa_causal",
    "prefix_lm",
    "relative_positional",
    "sliding_window",
    "softcap",
    "softcap_causal",
]
# Skv = 203 is a multiple of no tile (32, 64) and of no split count used here.
SKV = 203
DECODE = Config(decode=True, block_m=64, block_n=32, num_warps=4, num_stages=2, num_splits=3)


def _mods(name, shape):
    return resolve_mods(load_variant_module(load_problem(f"attention/{name}").path), shape, "cpu")


@pytest.mark.parametrize("sq, group", [(1, 8), (3, 1), (16, 4)])
@pytest.mark.parametrize("name", DECODE_SUITE)
def test_builtin_variant_at_decode_shapes_matches_reference(name, sq, group):
    shape = {"B": 2, "Hq": group * 2 if group > 1 else 2, "Hkv": 2, "Sq": sq, "Skv": SKV, "D": 32}
    torch.manual_seed(5)
    score_mod, mask_mod = _mods(name, shape)
    q, k, v = inputs(shape["B"], shape["Hq"], shape["Hkv"], sq, SKV, 32, torch.bfloat16, seed=sq)
    out, ref, source = run_compiled(score_mod, mask_mod, q, k, v, DECODE, tag=f"dec_{name}_{sq}")
    assert "_attn_decode" in source
    assert out.dtype == torch.bfloat16 and out.shape == q.shape
    assert max_err(out, ref) < 2e-2


@pytest.mark.parametrize(
    "config",
    [
        DECODE,
        Config(decode=True, block_m=16, block_n=64, num_splits=8, split_loops=False),
        Config(decode=True, block_m=32, block_n=32, num_splits=4, use_schedule=False),
    ],
)
def test_empty_splits_and_fully_masked_rows(config):
    # Keys 30..160 are masked for every row, so the middle splits see nothing at all; every third
    # query row is masked out entirely; 4 query heads per KV head, 16 rows packed with a ragged tile.
    q, k, v = inputs(B=2, Hq=8, Hkv=2, Sq=5, Skv=SKV, D=24)
    mask = lambda b, h, qi, kv: (qi % 3 != 0) & ((kv < 30) | (kv > 160)) & ((h % 2 == 0) | (kv > qi))  # noqa: E731
    score = lambda s, b, h, qi, kv: s - 0.05 * torch.abs(qi - kv)  # noqa: E731
    out, ref, _ = run_compiled(score, mask, q, k, v, config, tag="dec_empty")
    assert torch.isfinite(out).all()
    assert torch.all(out[:, :, ::3] == 0)
    assert max_err(out, ref) < 1e-4


_SPLIT_MODULE = {}


def _split_module():
    """One generated decode module (ALiBi-like score, a mask with a hole) shared by the property test."""
    if not _SPLIT_MODULE:
        slopes = torch.tensor([0.5, 0.25, 0.125, 0.0625])
        score = lambda s, b, h, qi, kv: s + slopes[h] * (kv - qi)  # noqa: E731
        mask = lambda b, h, qi, kv: (kv < 40) | (kv >= 90)  # noqa: E731
        source = generate(score, mask, Config(decode=True, block_m=16, block_n=16, num_splits=0))
        _SPLIT_MODULE.update(
            module=import_source(source, "test_dec_split"), score=score, mask=mask, slopes=slopes
        )
    return _SPLIT_MODULE


@settings(max_examples=12, deadline=None)
@given(splits=st.integers(1, 12), skv=st.integers(1, 150), sq=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_split_combine_is_exact(splits, skv, sq, seed):
    # Any number of splits (more splits than blocks too) gives the one-pass softmax: the
    # combine rescales each split's (max, sum, acc) to the global max exactly.
    m = _split_module()
    q, k, v = inputs(B=1, Hq=4, Hkv=2, Sq=sq, Skv=skv, D=16, seed=seed)
    captured = {"slopes": m["slopes"]}
    out = m["module"].attention(q, k, v, kv_splits=splits, **captured)
    one = m["module"].attention(q, k, v, kv_splits=1, **captured)
    ref = attention_reference(q, k, v, m["score"], m["mask"])
    assert max_err(out, ref) < 1e-5
    assert max_err(out, one) < 1e-5


def test_model_serves_other_cache_lengths():
    # The exported module as a user calls it: one ModelNew, a cache that grows between calls.
    shape = {"B": 1, "Hq": 4, "Hkv": 1, "Sq": 1, "Skv": 100, "D": 16}
    score_mod, mask_mod = _mods("sliding_window", shape)
    module = import_source(generate(score_mod, mask_mod, DECODE), "test_dec_grow")
    model = module.ModelNew(score_mod, mask_mod, shape)
    for skv in (100, 100, 130, 150):
        if skv == 150:
            model.prepare(1, 4, 1, 1, skv, "cpu")  # the block schedule for the longer cache
        q, k, v = inputs(1, 4, 1, 1, skv, 16, seed=skv)
        assert max_err(model(q, k, v), attention_reference(q, k, v, score_mod, mask_mod)) < 1e-5
    assert len(model.schedules) == 2 and len(model.launches) == 3


def _features(decode):
    return Features(has_mask=True, has_tanh=False, bounded=False, score_cost=0, D=128, decode=decode)


def test_proposer_picks_the_decode_kernel_by_shape():
    assert is_decode_shape({"Sq": 1, "Skv": 32768}) and is_decode_shape({"Sq": 16, "Skv": 32768})
    assert not is_decode_shape({"Sq": 4096, "Skv": 4096}) and not is_decode_shape({"Sq": 32, "Skv": 64})
    decode_plan = CompilerProposer(device="cuda").plan(_features(True), None)
    assert decode_plan[0].decode and decode_plan[0].num_splits == 0
    assert any(not c.decode for c in decode_plan)  # the prefill kernel stays for the verifier to judge
    assert not any(c.decode for c in CompilerProposer(device="cuda").plan(_features(False), None))


def test_proposer_first_kernel_for_a_decode_problem_is_the_decode_kernel():
    problem = load_problem("attention/alibi:Sq=1,Skv=32768,Hq=32,Hkv=8,B=8")
    assert "_attn_decode" in CompilerProposer(device="cuda").first_kernel(problem)


@pytest.mark.parametrize("name", ["causal", "sliding_window", "prefix_lm", "document", "gqa_causal"])
def test_query_rows_align_bottom_right(name):
    def grid(sq, skv):
        shape = {"B": 1, "Hq": 4, "Hkv": 4, "Sq": sq, "Skv": skv, "D": 16}
        torch.manual_seed(0)
        _, mask_mod = _mods(name, shape)
        idx = lambda n, d: torch.arange(n, dtype=torch.int32).view([n if i == d else 1 for i in range(4)])  # noqa: E731
        return torch.broadcast_to(mask_mod(idx(1, 0), idx(1, 1), idx(sq, 2), idx(skv, 3)), (1, 1, sq, skv))[
            0, 0
        ]

    square = grid(64, 64)
    decode = grid(4, 64)
    assert torch.equal(decode, square[-4:])  # the last rows of the square mask
    if name in ("causal", "gqa_causal"):
        assert torch.equal(square, torch.tril(torch.ones(64, 64, dtype=torch.bool)))


def test_decode_suite_lists_decode_shapes_of_the_builtin_variants():
    ids = list_problem_ids("attention-decode")
    assert "attention/alibi:Sq=1,Skv=32768,Hq=32,Hkv=8,B=8" in ids
    assert len(ids) == 2 * len(DECODE_SUITE)
    problem = load_problem("attention/causal:Sq=16,Skv=32768,Hq=32,Hkv=8,B=8")
    gpu, cpu = problem.gpu_sizes["SHAPE"], problem.cpu_sizes["SHAPE"]
    assert (gpu["Sq"], gpu["Skv"], gpu["Hq"], gpu["Hkv"], gpu["B"]) == (16, 32768, 32, 8, 8)
    assert cpu["Sq"] == 16 and cpu["Skv"] < gpu["Skv"] and cpu["Hq"] // cpu["Hkv"] == 4


def test_first_decode_kernel_passes_the_verifier(cpu_pool):
    # The whole protocol (fresh inputs per trial, every call checked) on the CPU shape of a
    # decode problem: one query row, four query heads on one KV head, a bottom-right causal mask.
    problem = load_problem("attention/causal:Sq=1,Skv=32768,Hq=32,Hkv=8,B=8")
    code = CompilerProposer(device="cpu").first_kernel(problem)
    assert "_attn_decode" in code
    verdict = cpu_pool.verify(problem, code, timeout_s=300.0)
    assert verdict.ok, verdict


def test_query_offset_is_a_captured_number_not_a_constant():
    # One module per variant serves every cache length: the offset Skv - Sq is a constexpr
    # argument (folded by Triton per value), never text baked into the kernel.
    sources = set()
    for sq, skv in ((1, 100), (3, 100), (1, 4000)):
        score_mod, mask_mod = _mods(
            "alibi_causal", {"B": 1, "Hq": 4, "Hkv": 1, "Sq": sq, "Skv": skv, "D": 16}
        )
        sources.add(generate(score_mod, mask_mod, DECODE))
    assert len(sources) == 1
    assert "P_offset: tl.constexpr" in sources.pop()


@pytest.mark.parametrize("name", ["softcap", "softcap_causal"])
def test_fixed_row_max_across_splits(name):
    # With the bound as a fixed row max every split shares one max: the combine weights are 1.
    shape = {"B": 1, "Hq": 4, "Hkv": 1, "Sq": 3, "Skv": SKV, "D": 32}
    score_mod, mask_mod = _mods(name, shape)
    q, k, v = inputs(1, 4, 1, 3, SKV, 32, seed=7)
    config = Config(decode=True, block_m=16, block_n=32, num_splits=5, fixed_max=True)
    out, ref, source = run_compiled(score_mod, mask_mod, q, k, v, config, tag=f"dec_fixed_{name}")
    module = import_source(source, f"test_dec_fixed_{name}")
    assert module._row_max({"SOFTCAP": 30.0}, 32**-0.5)[0]  # the fixed max is really in use
    assert max_err(out, ref) < 1e-4


AUTO = Config(decode=True, block_m=16, block_n=16, num_warps=4, num_stages=2, num_splits=0)


def _auto_module():
    source = generate(lambda s, b, h, qi, kv: s, lambda b, h, qi, kv: kv >= 0, AUTO)
    return import_source(source, "test_dec_auto")


def test_auto_splits_rule_in_numbers():
    # H200 (132 SMs), B=8 Hkv=8 with one query tile: 64 programs want 17 splits. The whole
    # 32768-key cache (512 blocks of 64) keeps them; a 1024-key window's 17 live blocks give 4
    # splits of at least MIN_BLOCKS_PER_SPLIT blocks; a span of 3 blocks is one split.
    auto = _auto_module()
    assert auto.MIN_BLOCKS_PER_SPLIT == 4
    assert auto._auto_splits(64, 512, 132) == 17
    assert auto._auto_splits(64, 17, 132) == 4
    assert auto._auto_splits(64, 3, 132) == 1
    assert auto._auto_splits(1, 512, 132) == auto.MAX_SPLITS
    # A tile of 64 packed rows (Sq=16, 4 query heads per KV head) writes 4x the partials per
    # split: a 17-block window stays one split, the whole cache still fills the GPU.
    assert auto._auto_splits(64, 17, 132, rows=64) == 1
    assert auto._auto_splits(64, 512, 132, rows=64) == 17
    assert auto._auto_splits(64, 17, 132, rows=16) == 4
    assert auto._auto_splits(1, 32, 1) == 8  # the interpreter's one "SM"


@pytest.mark.parametrize(
    "name, mask_mod, splits",
    [
        ("full", None, 8),  # 32 blocks of 16: 32 // 4
        ("window", None, 2),  # the built-in window of Skv // 4 keys: 9 live blocks
        ("narrow", lambda b, h, qi, kv: kv >= 470 + qi, 1),  # 3 live blocks: one split, no combine
    ],
    ids=["full", "window", "narrow"],
)
def test_auto_splits_follow_the_live_span(name, mask_mod, splits, monkeypatch):
    # A 512-key cache on an H200-sized "GPU" (132 SMs) with one program per (b, KV head): the SM
    # count asks for 128 splits, the blocks per split allow 32 // 4 = 8 unmasked, but a window
    # keeps only its live blocks' share. The output still matches the fp32 reference.
    shape = {"B": 1, "Hq": 4, "Hkv": 1, "Sq": 1, "Skv": 512, "D": 16}
    score_mod, variant_mask = _mods("sliding_window" if name == "window" else "full", shape)
    mask_mod = mask_mod or variant_mask
    module = import_source(generate(score_mod, mask_mod, AUTO), f"test_dec_auto_{name}")
    monkeypatch.setattr(module, "_sm_count", lambda device: 132)
    model = module.ModelNew(score_mod, mask_mod, shape)
    q, k, v = inputs(1, 4, 1, 1, 512, 16, seed=3)
    out = model(q, k, v)
    (launch,) = model.launches.values()
    assert launch.splits == splits
    assert max_err(out, attention_reference(q, k, v, score_mod, mask_mod)) < 1e-5
    # Explicit counts keep their meaning: kv_splits as given, a configured num_splits capped by
    # the blocks in the cache (not by the live span).
    schedule, captured = model._schedule(q, k), model._captured()
    assert module._Launch(q, k, v, schedule, 8, captured).splits == 8
    monkeypatch.setitem(module.CONFIG, "num_splits", 20)
    assert module._Launch(q, k, v, schedule, None, captured).splits == 20
    monkeypatch.setitem(module.CONFIG, "num_splits", 40)
    assert module._Launch(q, k, v, schedule, None, captured).splits == 32


def test_a_tile_of_many_rows_streams_a_short_span_in_one_split(monkeypatch):
    # 16 query heads on one KV head times Sq=4: 64 packed rows per tile. The window's 9 live
    # blocks would be 2 splits for one row; for 64 rows each split would write partials about as
    # large as the K/V it read, so the span is one split (measured faster on an H200 at Sq=16).
    shape = {"B": 1, "Hq": 16, "Hkv": 1, "Sq": 4, "Skv": 512, "D": 16}
    score_mod, mask_mod = _mods("sliding_window", shape)
    tall = Config(decode=True, block_m=64, block_n=16, num_warps=4, num_stages=2, num_splits=0)
    module = import_source(generate(score_mod, mask_mod, tall), "test_dec_auto_rows")
    monkeypatch.setattr(module, "_sm_count", lambda device: 132)
    model = module.ModelNew(score_mod, mask_mod, shape)
    q, k, v = inputs(1, 16, 1, 4, 512, 16, seed=5)
    out = model(q, k, v)
    (launch,) = model.launches.values()
    assert launch.splits == 1
    assert max_err(out, attention_reference(q, k, v, score_mod, mask_mod)) < 1e-5
