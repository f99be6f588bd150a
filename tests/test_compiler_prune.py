"""Bias pruning (prune.py): KV blocks whose softmax weight the bias provably makes negligible are
skipped, the output still matches the reference, and any NaN or inf in the inputs skips nothing.

Each generated module records, under its test-only TRACE_PRUNING switch, the KV-block range
[lo, hi) every program visits: that is how these tests see that blocks were skipped."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kernelscale.problems import load_problem
from kernelscale.problems.attention.reference import attention_reference
from kernelscale.problems.attention.variant import load_variant_module, resolve_mods
from kernelscale.problems.module import import_source
from kernelscale.propose.compiler import CompilerError
from kernelscale.propose.compiler.generate import compile_mods, generate, render
from kernelscale.propose.compiler.proposer import CompilerProposer
from kernelscale.propose.compiler.prune import prune_scale
from kernelscale.propose.compiler.space import Config, Features
from test_compiler_common import inputs, max_err

TILES = {"block_m": 32, "block_n": 32, "num_warps": 4, "num_stages": 2}


def _suite(name, B=1, Hq=2, Hkv=2, Sq=256, Skv=256, D=16):
    shape = {"B": B, "Hq": Hq, "Hkv": Hkv, "Sq": Sq, "Skv": Skv, "D": D}
    return resolve_mods(load_variant_module(load_problem(f"attention/{name}").path), shape, "cpu")


def _steep_alibi(causal: bool):
    """ALiBi with the slopes of a many-head model's first heads (0.5, 0.25): the suite's slopes
    for two heads (1/16, 1/256) are too gentle to rule out a block at a few hundred keys."""
    slopes = torch.tensor([0.5, 0.25])

    def score_mod(score, b, h, q_idx, kv_idx):
        return score + slopes[h] * (kv_idx - q_idx)

    def mask_mod(b, h, q_idx, kv_idx):
        return q_idx >= kv_idx

    return score_mod, mask_mod if causal else None


def _run(mods, q, k, v, prune: bool, tag: str, **knobs):
    """(output, per-program [lo, hi) of shape (B*H, query blocks, 2) or None)."""
    source = generate(*mods, Config(**{**TILES, **knobs}, bias_prune=prune))
    module = import_source(source, f"prune_{tag}_{prune}")
    if prune:
        module.TRACE_PRUNING["on"] = True
    B, Hq, Sq, D = q.shape
    shape = {"B": B, "Hq": Hq, "Hkv": k.shape[1], "Sq": Sq, "Skv": k.shape[2], "D": D}
    model = module.ModelNew(*mods, shape)
    out = model(q, k, v)
    return out, next(iter(model.launches.values())).trace if prune else None


def _visited(trace) -> int:
    return int((trace[..., 1] - trace[..., 0]).clamp(min=0).sum())


CASES = [  # name, mods, (B, Hq, Hkv, Sq, Skv, D), other knobs
    ("relative_positional", lambda: _suite("relative_positional"), (1, 2, 2, 256, 256, 16), {}),
    ("alibi_steep", lambda: _steep_alibi(False), (1, 2, 2, 512, 512, 16), {}),
    ("alibi_causal_steep", lambda: _steep_alibi(True), (1, 2, 2, 512, 512, 32), {}),
    # the mask's schedule in one loop, and no schedule at all: the range clamps both loops
    ("alibi_causal_one_loop", lambda: _steep_alibi(True), (1, 2, 1, 320, 320, 16), {"split_loops": False}),
    (
        "alibi_causal_no_schedule",
        lambda: _steep_alibi(True),
        (1, 2, 2, 320, 320, 16),
        {"use_schedule": False},
    ),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("name, make, dims, knobs", CASES, ids=[c[0] for c in CASES])
def test_pruned_kernel_matches_reference_and_skips_blocks(name, make, dims, knobs, dtype):
    mods = make()
    q, k, v = inputs(*dims, dtype=dtype)
    out, trace = _run(mods, q, k, v, True, f"{name}_{dtype}", **knobs)
    plain, _ = _run(mods, q, k, v, False, f"{name}_{dtype}", **knobs)
    ref = attention_reference(q, k, v, *mods)
    tol = 1e-4 if dtype == torch.float32 else 2e-2  # as the suite's tests: big logits round
    assert max_err(out, ref) < tol and max_err(out, plain) < tol
    assert bool((trace >= 0).all())  # every program recorded its range
    n_kv = -(-dims[4] // TILES["block_n"])
    assert _visited(trace) < trace.shape[0] * trace.shape[1] * n_kv
    if mods[1] is not None:  # blocks left of the range: skipped by the bound, not by the mask
        assert bool((trace[..., 0] > 0).any())


@pytest.mark.parametrize("name", ["alibi", "alibi_causal", "relative_positional"])
def test_suite_variants_with_pruning_match_the_reference(name):
    # the suite's own mods, GQA and a ragged, rectangular shape (bottom-right offset Skv - Sq)
    mods = _suite(name, Hq=4, Hkv=2, Sq=200, Skv=330, D=24)
    q, k, v = inputs(1, 4, 2, 200, 330, 24)
    out, trace = _run(mods, q, k, v, True, f"suite_{name}", use_schedule=name != "alibi_causal")
    assert max_err(out, attention_reference(q, k, v, *mods)) < 1e-4
    assert bool((trace >= 0).all())


def test_fully_masked_rows_stay_zero_when_pruning():
    # Sq > Skv, bottom-right: the first 60 query rows keep no key at all
    mods = _suite("alibi_causal", Sq=160, Skv=100)
    q, k, v = inputs(1, 2, 2, 160, 100, 16)
    out, _ = _run(mods, q, k, v, True, "masked_rows")
    assert torch.all(out[:, :, :60] == 0) and torch.isfinite(out).all()
    assert max_err(out, attention_reference(q, k, v, *mods)) < 1e-4


def test_large_scores_leave_little_to_skip_and_stay_exact():
    # q and k times 30: the data's part of the logits (S) outweighs the bias over these 256 keys
    mods = _suite("relative_positional", Sq=256, Skv=256)
    q, k, v = inputs(1, 2, 2, 256, 256, 16)
    q, k = q * 30, k * 30
    out, trace = _run(mods, q, k, v, True, "large")
    assert bool((trace[..., 0] == 0).all()) and bool((trace[..., 1] == 8).all())
    assert max_err(out, attention_reference(q, k, v, *mods)) < 1e-4


def _poison(q, k, v, where: str, value: float):
    q, k, v = q.clone(), k.clone(), v.clone()
    {"q": q, "k": k, "v": v}[where][0, 1, 200, 3] = value  # head 1, far from head 1's kept keys
    return q, k, v


@pytest.mark.parametrize("where, value", [("q", float("nan")), ("k", float("nan")), ("k", float("inf"))])
@pytest.mark.parametrize("prune_v", [False, True], ids=["", "inf_v"])
def test_nan_or_inf_in_the_inputs_skips_nothing(where, value, prune_v):
    mods = _suite("relative_positional", Sq=256, Skv=256)
    q, k, v = _poison(*inputs(1, 2, 2, 256, 256, 16), where, value)
    if prune_v:
        v[0, 1, 250, 0] = float("inf")
    out, trace = _run(mods, q, k, v, True, f"poison_{where}_{value}_{prune_v}")
    plain, _ = _run(mods, q, k, v, False, f"poison_{where}_{value}_{prune_v}")
    assert torch.equal(torch.isnan(out), torch.isnan(plain)) and bool(torch.isnan(out[0, 1]).any())
    assert torch.allclose(out.nan_to_num(), plain.nan_to_num(), atol=1e-6)
    poisoned = trace[1, 200 // 32] if where == "q" and not prune_v else trace[1]
    assert bool((poisoned[..., 0] == 0).all()) and bool((poisoned[..., 1] == 8).all())
    assert bool((trace[0, :, 1] < 8).all())  # head 0 still prunes: its K, V and q are finite


def test_prune_scale_recognises_c_qk_plus_a_bias():
    def logits(score_mod):
        return compile_mods(score_mod, None).rewritten.logits

    assert prune_scale(logits(lambda s, b, h, q, kv: s + (q - kv))) is not None
    assert prune_scale(logits(lambda s, b, h, q, kv: 2.0 * s - 0.5 * torch.abs(q - kv))) is not None
    assert prune_scale(logits(lambda s, b, h, q, kv: s)) is None  # no bias: nothing to prune
    assert prune_scale(logits(lambda s, b, h, q, kv: s + q)) is None  # a row term only (dropped)
    assert prune_scale(logits(lambda s, b, h, q, kv: -s + kv)) is None  # c < 0
    assert prune_scale(logits(lambda s, b, h, q, kv: s * (kv + 1))) is None  # c varies
    assert prune_scale(logits(lambda s, b, h, q, kv: 30.0 * torch.tanh(s / 30.0) + kv)) is None


@pytest.mark.parametrize(
    "name", ["softcap", "softcap_causal", "full", "causal", "alibi", "relative_positional"]
)
def test_proposer_offers_pruning_only_where_the_logits_qualify(name):
    qualifies = name in ("alibi", "relative_positional")
    compiled = compile_mods(*_suite(name))
    features = Features(**{**compiled.features.__dict__, "D": 64})
    assert features.bias_prune == qualifies
    plan = CompilerProposer(device="cpu").plan(features, None)
    assert not plan[0].bias_prune  # an alternative, never the first guess
    assert any(c.bias_prune for c in plan) == qualifies
    if qualifies:  # but tried second: a search of a few attempts reaches it
        assert plan[1] == replace(plan[0], bias_prune=True)


def test_knob_off_or_misapplied():
    mods = _suite("relative_positional")
    off = generate(*mods, Config(**TILES))
    assert "bias_prune" not in off and "_kept_blocks" not in off and "TRACE_PRUNING" not in off
    with pytest.raises(CompilerError, match="c\\*qk \\+ bias"):
        generate(*_suite("softcap"), Config(**TILES, bias_prune=True))
    with pytest.raises(CompilerError, match="prefill"):
        generate(*mods, Config(**TILES, bias_prune=True, decode=True))


def test_a_nan_threshold_skips_nothing():
    # a query tile of zeros against an infinite key: S = c * 0 * inf is NaN, as is that tile's
    # output in the plain kernel (0 * inf in q.k); "gap > NaN" is false, so every block is kept
    mods = _suite("relative_positional", Sq=256, Skv=256)
    q, k, v = _poison(*inputs(1, 2, 2, 256, 256, 16), "k", float("inf"))
    q[0, 1, :32] = 0.0
    out, trace = _run(mods, q, k, v, True, "nan_threshold")
    plain, _ = _run(mods, q, k, v, False, "nan_threshold")
    assert bool(torch.isnan(plain[0, 1, :32]).all())
    assert torch.equal(torch.isnan(out), torch.isnan(plain))
    assert trace[1, 0].tolist() == [0, 8]


def test_a_nan_bias_keeps_every_block_of_its_rows():
    # a bias that is NaN at the last keys (log of a negative number), far from the keys the bias
    # favours: the plain kernel's rows all see the NaN, so every gap is NaN and nothing is skipped
    def score_mod(score, b, h, q_idx, kv_idx):
        return score - kv_idx + torch.log(250.5 - kv_idx)

    q, k, v = inputs(1, 2, 2, 256, 256, 16)
    out, trace = _run((score_mod, None), q, k, v, True, "nan_bias")
    plain, _ = _run((score_mod, None), q, k, v, False, "nan_bias")
    assert bool(torch.isnan(plain).all()) and bool(torch.isnan(out).all())
    assert bool((trace[..., 0] == 0).all()) and bool((trace[..., 1] == 8).all())


def test_gap_table_is_the_least_row_gap_per_block_pair():
    # against a plain loop over rows: ragged tiles, a mask that empties some rows and blocks
    from kernelscale.propose.compiler.biasgaps import _GAP_SLACK_ABS, _GAP_SLACK_REL, bias_gaps

    score_mod, _ = _steep_alibi(False)

    def mask_mod(b, h, q_idx, kv_idx):
        return (q_idx >= kv_idx + 20) | (kv_idx >= 80)

    Sq, Skv, BM, BN = 70, 90, 16, 32
    gaps = bias_gaps(score_mod, mask_mod, 1, 2, Sq, Skv, BM, BN, "cpu")
    assert gaps.shape == (1, 2, 5, 4) and bool((gaps[..., 3] == float("inf")).all())
    q, kv = torch.arange(Sq).view(-1, 1), torch.arange(Skv).view(1, -1)
    for h in range(2):
        bias = (torch.tensor([0.5, 0.25])[h] * (kv - q)).double() * 1.4426950408889634
        bias = bias.masked_fill(~mask_mod(0, h, q, kv), float("-inf"))
        for i in range(5):
            for j in range(3):
                want = float("inf")
                for r in range(i * BM, min(Sq, (i + 1) * BM)):
                    best, most = bias[r].max().item(), bias[r, j * BN : (j + 1) * BN].max().item()
                    if most > float("-inf"):
                        slack = _GAP_SLACK_ABS + _GAP_SLACK_REL * (abs(best) + abs(most))
                        want = min(want, best - most - slack)
                assert gaps[0, h, i, j].item() == pytest.approx(want, rel=1e-6), (h, i, j)


@pytest.mark.parametrize("where", ["none", "k_nan", "v_inf"])
def test_statistics_over_slices_of_a_long_cache_see_every_key(where):
    # 1024 keys: the K / V statistics pass runs in several slices per head, and the main kernel
    # takes the max over them; a NaN key or an infinite value in the last slice must still stop
    # all pruning for its head (and only its head), a clean head still prunes.
    mods = _suite("relative_positional", Sq=64, Skv=1024)
    q, k, v = inputs(1, 2, 2, 64, 1024, 16, seed=3)
    if where == "k_nan":
        k[0, 1, 1000, 5] = float("nan")
    elif where == "v_inf":
        v[0, 1, 1000, 5] = float("inf")
    module = import_source(generate(*mods, Config(**TILES, bias_prune=True)), f"prune_slices_{where}")
    module.TRACE_PRUNING["on"] = True
    model = module.ModelNew(*mods, {"B": 1, "Hq": 2, "Hkv": 2, "Sq": 64, "Skv": 1024, "D": 16})
    out = model(q, k, v)
    (launch,) = model.launches.values()
    trace = launch.trace
    assert launch.stats_launch[0].grid[1] > 1  # the statistics really ran in slices
    plain, _ = _run(mods, q, k, v, False, f"slices_{where}")
    assert torch.equal(torch.isnan(out), torch.isnan(plain))
    assert torch.allclose(out.nan_to_num(), plain.nan_to_num(), atol=1e-5)
    blocks = -(-1024 // TILES["block_n"])
    assert bool((trace[0, :, 1] < blocks).all())  # head 0: clean, pruned
    head1_all = bool((trace[1, :, 0] == 0).all()) and bool((trace[1, :, 1] == blocks).all())
    assert head1_all == (where != "none")


_PROPERTY_MODULES: dict = {}


def _property_module(symmetric: bool, causal: bool, slopes):
    """A pruned module per bias structure (its slopes are a captured tensor, so one source)."""

    def score_mod(score, b, h, q_idx, kv_idx):
        distance = torch.abs(q_idx - kv_idx) if symmetric else q_idx - kv_idx
        return score * 1.5 - slopes[h] * distance

    def mask_mod(b, h, q_idx, kv_idx):
        return q_idx >= kv_idx

    mods = (score_mod, mask_mod if causal else None)
    key = (symmetric, causal)
    if key not in _PROPERTY_MODULES:
        source = generate(*mods, Config(**TILES, bias_prune=True))
        _PROPERTY_MODULES[key] = import_source(source, f"prune_property_{symmetric}_{causal}")
    return _PROPERTY_MODULES[key], mods


@settings(max_examples=10, deadline=None)
@given(
    symmetric=st.booleans(),
    causal=st.booleans(),
    slope_exp=st.lists(st.floats(-5.0, 2.0), min_size=2, max_size=2),
    scale=st.sampled_from([0.05, 1.0, 6.0]),
    sq=st.integers(40, 160),
    skv=st.integers(40, 260),
    seed=st.integers(0, 2**16),
)
def test_pruning_is_exact_for_random_biases_and_input_scales(
    symmetric, causal, slope_exp, scale, sq, skv, seed
):
    # Whatever the slopes (2^-5 .. 4 per key), the inputs' magnitude and the shape, the pruned
    # kernel is the reference within fp32's tolerance: the bound widens with the data, never
    # wrongly skips.
    slopes = torch.tensor([2.0**e for e in slope_exp])
    module, mods = _property_module(symmetric, causal, slopes)
    q, k, v = (t * scale for t in inputs(1, 2, 2, sq, skv, 16, seed=seed))
    model = module.ModelNew(*mods, {"B": 1, "Hq": 2, "Hkv": 2, "Sq": sq, "Skv": skv, "D": 16})
    ref = attention_reference(q, k, v, *mods)
    assert max_err(model(q, k, v), ref) < 1e-4 * max(1.0, scale)


@pytest.mark.parametrize("name", ["relative_positional", "alibi_causal"])
def test_a_pruned_kernel_passes_the_verifier(cpu_pool, name):
    # The whole protocol with the screen on: the gap table is built when the model is, never in
    # forward (which runs no torch compute), and every call's output is checked.
    problem = load_problem(f"attention/{name}")
    compiled, features = CompilerProposer(device="cpu")._compile(problem)
    assert features.bias_prune
    code = render(compiled, Config(**TILES, bias_prune=True))
    verdict = cpu_pool.verify(problem, code, timeout_s=300.0)
    assert verdict.status == "correct", verdict.headline() + verdict.log_tail


def test_another_shape_runs_unpruned_and_exact():
    # forward never builds a gap table: a shape other than the model's runs every block
    mods = _suite("relative_positional", Sq=128, Skv=128)
    module = import_source(generate(*mods, Config(**TILES, bias_prune=True)), "prune_other_shape")
    module.TRACE_PRUNING["on"] = True
    model = module.ModelNew(*mods, {"B": 1, "Hq": 2, "Hkv": 2, "Sq": 128, "Skv": 128, "D": 16})
    q, k, v = inputs(1, 2, 2, 96, 160, 16)
    assert max_err(model(q, k, v), attention_reference(q, k, v, *mods)) < 1e-4
    (launch,) = model.launches.values()
    assert launch.stats_launch is None  # no statistics, no pruning
