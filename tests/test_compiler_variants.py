"""Variants beyond the built-in suite, each a class of mods the compiler once got wrong or refused:
indices that rely on torch's semantics (negative indices wrap), captures reached in ways other
than closures and globals, and values whose rewrite changed a comparison's outcome. Each runs
the Triton prefill and decode kernels under the interpreter, and the FA4 module against
tests/fa4_model.py, against the fp32 reference."""

from __future__ import annotations

import pytest
import torch

import fa4_model
from kernelscale.problems.attention.reference import attention_reference
from kernelscale.problems.module import import_source
from kernelscale.propose.compiler.generate import generate
from kernelscale.propose.compiler.space import Config
from test_compiler_common import SMALL, inputs, max_err, run_compiled

DECODE = Config(decode=True, block_m=16, block_n=32, num_warps=4, num_stages=2, num_splits=2)
TRITON = [SMALL, Config(block_m=32, block_n=32, num_stages=2, rel_tables=False), DECODE]


def _check_triton(score_mod, mask_mod, Sq=3, Skv=45, Hq=4, Hkv=2, tag="v"):
    q, k, v = inputs(B=2, Hq=Hq, Hkv=Hkv, Sq=Sq, Skv=Skv, D=16)
    for i, config in enumerate(TRITON):
        out, ref, _ = run_compiled(score_mod, mask_mod, q, k, v, config, tag=f"{tag}{i}")
        assert max_err(out, ref) < 1e-4, config


def _check_fa4(score_mod, mask_mod, monkeypatch, Sq=130, Skv=130, tag="v"):
    shape = {"B": 2, "Hq": 4, "Hkv": 2, "Sq": Sq, "Skv": Skv, "D": 16}
    q, k, v = (t.to(torch.bfloat16) for t in inputs(2, 4, 2, Sq, Skv, 16))
    fa4_model.install(monkeypatch)
    module = import_source(generate(score_mod, mask_mod, Config(backend="fa4")), f"test_fa4_{tag}")
    out = module.ModelNew(score_mod, mask_mod, shape)(q, k, v)
    ref = attention_reference(q.float(), k.float(), v.float(), score_mod, mask_mod)
    assert max_err(out, ref) < 2e-2


def _negative_index_mods(n):
    """A relative bias read at q − kv, negative distances wrapping to the table's end as torch
    reads them, and a per-head value read at h − H (every index negative)."""
    rel = torch.randn(n, generator=torch.Generator().manual_seed(3))
    per_head = torch.tensor([0.5, -1.0, 2.0, 0.0])

    def score_mod(score, b, h, q_idx, kv_idx):
        return score + rel[q_idx - kv_idx] + per_head[h - 4]

    def mask_mod(b, h, q_idx, kv_idx):
        return rel[kv_idx - q_idx - 1] > -1.0

    return score_mod, mask_mod


def test_negative_indices_wrap_as_in_torch_triton():
    _check_triton(*_negative_index_mods(2 * 45 + 8), Sq=16, Skv=45, tag="neg")


def test_negative_indices_wrap_as_in_torch_fa4(monkeypatch):
    _check_fa4(*_negative_index_mods(2 * 130 + 8), monkeypatch, tag="neg")


def _default_and_dict_mods():
    """Captures held as parameter defaults (positional and keyword-only) and in a dict."""
    slopes = torch.linspace(0.1, 1.0, 4)
    cfg = {"bias": torch.randn(45, generator=torch.Generator().manual_seed(4)), "window": 9}

    def score_mod(score, b, h, q_idx, kv_idx, slopes=slopes, k=0.5, *, table=cfg["bias"]):
        return score - k * slopes[h] * (q_idx - kv_idx).abs() + table[kv_idx % 45]

    def mask_mod(b, h, q_idx, kv_idx):
        return (kv_idx - q_idx).abs() < cfg["window"] + h

    return score_mod, mask_mod


def test_captures_in_defaults_and_dicts_triton():
    score_mod, mask_mod = _default_and_dict_mods()
    _check_triton(score_mod, mask_mod, Sq=16, Skv=45, tag="dflt")
    # a number in a default is a captured number like any other: a parameter, not baked text
    source = generate(score_mod, mask_mod, SMALL)
    assert "P_k: tl.constexpr" in source and "P_window: tl.constexpr" in source


def test_captures_in_defaults_and_dicts_fa4(monkeypatch):
    _check_fa4(*_default_and_dict_mods(), monkeypatch, tag="dflt")


def _float_boundary_mods(Skv):
    """Comparisons of float arithmetic that land exactly on their threshold for some pairs
    (|kv − q| / 40 == 0.35 at distance 14): the kernel must round as the mod does."""
    frac, width = 0.35, Skv

    def score_mod(score, b, h, q_idx, kv_idx):
        return torch.where((kv_idx * 3).float() / width >= 0.3, score, score - 1.0)

    def mask_mod(b, h, q_idx, kv_idx):
        return (kv_idx.float() / width - q_idx.float() / width).abs() < frac

    return score_mod, mask_mod


def test_comparisons_see_the_mods_own_rounding_triton():
    _check_triton(*_float_boundary_mods(40), Sq=40, Skv=40, tag="round")


def test_comparisons_see_the_mods_own_rounding_fa4(monkeypatch):
    _check_fa4(*_float_boundary_mods(40), monkeypatch, Sq=40, Skv=40, tag="round")


def _zero_dim_mods():
    """0-d captured tensors of each kind: a temperature, an integer shift, a boolean switch."""
    temp, shift, flag = torch.tensor(0.8), torch.tensor(3), torch.tensor(True)
    rel = torch.randn(8, generator=torch.Generator().manual_seed(5))

    def score_mod(score, b, h, q_idx, kv_idx):
        return torch.where(flag, score * temp, score) + rel[shift] * 0.1

    def mask_mod(b, h, q_idx, kv_idx):
        return (kv_idx - q_idx).abs() < shift + 7

    return score_mod, mask_mod


def test_zero_dim_captured_tensors_triton():
    _check_triton(*_zero_dim_mods(), Sq=16, Skv=45, tag="zerod")


def test_zero_dim_captured_tensors_fa4(monkeypatch):
    # the FA4 module once wrote `t[]` for them: a SyntaxError on import
    _check_fa4(*_zero_dim_mods(), monkeypatch, tag="zerod")


SHAPE_IN_MOD = """
import math

SHAPE = {"B": 1, "Hq": 2, "Hkv": 2, "Sq": 48, "Skv": 96, "D": 128, "dtype": "float32"}


def make(B, Hq, Hkv, Sq, Skv, D, device):
    def score_mod(score, b, h, q_idx, kv_idx):
        return score * math.sqrt(D) / 8.0

    def mask_mod(b, h, q_idx, kv_idx):
        w = int(Skv * 0.25)
        if Sq == 1:
            return kv_idx >= Skv - w
        return (q_idx + (Skv - Sq) - kv_idx).abs() <= w

    return score_mod, mask_mod
"""


def test_a_gpu_run_traces_at_the_gpu_shape(tmp_path):
    """Python values of the shape inside a mod (math.sqrt(D), int(0.25 * Skv)) are guards of the
    trace: traced at the CPU's small shape (D = 64), the kernel for a GPU run (D = 128) refused
    the mods it was built for, on every candidate."""
    from kernelscale.problems import load_problem
    from kernelscale.problems.attention.variant import load_variant_module, resolve_mods
    from kernelscale.propose.compiler.proposer import CompilerProposer

    path = tmp_path / "shape_in_mod.py"
    path.write_text(SHAPE_IN_MOD)
    problem = load_problem(str(path))
    gpu = {k: v for k, v in problem.gpu_sizes["SHAPE"].items() if k != "dtype"}
    assert problem.cpu_sizes["SHAPE"]["D"] != gpu["D"]
    module = import_source(CompilerProposer(device="cuda", fa4=False).first_kernel(problem), "test_gpu_shape")
    score_mod, mask_mod = resolve_mods(load_variant_module(path), gpu, "cpu")
    q, k, v = inputs(1, 2, 2, gpu["Sq"], gpu["Skv"], gpu["D"])
    out = module.ModelNew(score_mod, mask_mod, gpu)(q, k, v)
    assert max_err(out, attention_reference(q, k, v, score_mod, mask_mod)) < 1e-4


def _row_term_mods(head_bias):
    """Terms constant along a row, which softmax's shift invariance would drop, but whose fp32
    values are not negligible: −1e9 every fifth row (it swamps the scores: the row averages v),
    −inf in a per-row table (the row is empty: zeros) and per-head values (−inf kills a head)."""
    qpad = torch.zeros(2, 16)
    qpad[:, ::4] = float("-inf")

    def score_mod(score, b, h, q_idx, kv_idx):
        return score + (q_idx % 5 == 2) * -1e9 + qpad[b, q_idx] + head_bias[h] + 0.01 * q_idx

    return score_mod, None


def test_row_terms_that_are_not_negligible_are_kept_triton():
    head_bias = torch.tensor([float("-inf"), 0.5, 0.0, -0.25])
    _check_triton(*_row_term_mods(head_bias), Sq=16, Skv=45, tag="rowterm")


def test_row_terms_that_are_not_negligible_are_kept_fa4(monkeypatch):
    head_bias = torch.tensor([float("-inf"), 0.5, 0.0, -0.25])
    _check_fa4(*_row_term_mods(head_bias), monkeypatch, Sq=16, Skv=130, tag="rowterm")


def test_a_dropped_per_head_term_refuses_values_it_was_not_dropped_for():
    """Traced with moderate per-head values the term is dropped; the module then refuses a head
    bias of −inf, whose rows it would compute as if it were 0."""
    tame, wild = torch.tensor([0.1, 0.5, 0.0, -0.25]), torch.tensor([float("-inf"), 0.5, 0.0, 0.0])
    source = generate(*_row_term_mods(tame), SMALL)
    module = import_source(source, "test_rowterm_guard")
    shape = {"B": 2, "Hq": 4, "Hkv": 2, "Sq": 16, "Skv": 45, "D": 16}
    q, k, v = inputs(2, 4, 2, 16, 45, 16)
    assert (
        max_err(
            module.ModelNew(*_row_term_mods(tame), shape)(q, k, v),
            attention_reference(q, k, v, *_row_term_mods(tame)),
        )
        < 1e-4
    )
    with pytest.raises(ValueError, match="head_bias under 65536 in magnitude and finite"):
        module.ModelNew(*_row_term_mods(wild), shape)(q, k, v)


def _inf_bias_mods(B, Sq, Skv):
    """An additive bias tensor holding −inf (padding), a whole KV block of it for every row and
    whole rows of it, at sizes that are multiples of the tiles (no ragged edge to hide it)."""
    gen = torch.Generator().manual_seed(6)
    bias = torch.randn(B, Sq, Skv, generator=gen)
    bias[torch.rand(B, Sq, Skv, generator=gen) < 0.3] = float("-inf")
    bias[:, ::3, :] = float("-inf")
    bias[:, :, :32] = float("-inf")

    def score_mod(score, b, h, q_idx, kv_idx):
        return score + bias[b, q_idx, kv_idx]

    return score_mod, None


def test_minus_inf_from_a_captured_tensor_triton():
    _check_triton(*_inf_bias_mods(2, 64, 64), Sq=64, Skv=64, tag="infbias")
    _check_triton(*_inf_bias_mods(2, 2, 128), Sq=2, Skv=128, tag="infbias_dec")


def test_minus_inf_from_a_captured_tensor_fa4(monkeypatch):
    _check_fa4(*_inf_bias_mods(2, 128, 128), monkeypatch, Sq=128, Skv=128, tag="infbias")


def _numpy_mods():
    np = pytest.importorskip("numpy")
    window, temperature, shift = np.int64(9), np.float32(0.7), np.float64(0.25)

    def score_mod(score, b, h, q_idx, kv_idx):
        return score * temperature + shift * kv_idx

    def mask_mod(b, h, q_idx, kv_idx):
        return (kv_idx - q_idx).abs() < window

    return score_mod, mask_mod


def test_numpy_numbers_are_captured_numbers_triton():
    # refused before: "cannot compile a value of type float32"
    score_mod, mask_mod = _numpy_mods()
    _check_triton(score_mod, mask_mod, Sq=16, Skv=45, tag="numpy")
    assert "P_window: tl.constexpr" in generate(score_mod, mask_mod, SMALL)


def test_numpy_numbers_are_captured_numbers_fa4(monkeypatch):
    _check_fa4(*_numpy_mods(), monkeypatch, tag="numpy")


def test_a_boolean_index_is_refused_in_one_line():
    """torch reads t[bool] as a mask selection (the reference fails on it), not as t[0] / t[1]."""
    from kernelscale.propose.compiler.errors import CompilerError

    t = torch.tensor([0.0, 1.0])
    with pytest.raises(CompilerError, match="indexed with a boolean.*long"):
        generate(lambda s, b, h, q, kv: s + t[kv > q], None)
    generate(lambda s, b, h, q, kv: s + t[(kv > q).long()], None)


EVERYTHING = '''
"""Every class of capture and value above in one variant file, verified as a user would."""
import numpy as np
import torch

SHAPE = {"B": 2, "Hq": 2, "Hkv": 2, "Sq": 64, "Skv": 64, "D": 32, "dtype": "float32"}


def make(B, Hq, Hkv, Sq, Skv, D, device):
    rel = torch.randn(2 * Skv).to(device)
    pad = torch.zeros(B, Skv)
    pad[:, :32] = float("-inf")  # a whole KV block of -inf for every row
    pad = pad.to(device)
    cfg = {"width": Skv, "head": torch.tensor([0.1, -0.2]).to(device)}
    edge = np.float32(0.35)

    def score_mod(score, b, h, q_idx, kv_idx, rel=rel, pad=pad):
        return score + rel[q_idx - kv_idx] + pad[b, kv_idx] + cfg["head"][h] + (q_idx % 5 == 2) * -1e9

    def mask_mod(b, h, q_idx, kv_idx):
        return (kv_idx.float() / cfg["width"] - q_idx.float() / cfg["width"]).abs() < edge

    return score_mod, mask_mod
'''


def test_a_variant_of_every_class_verifies_end_to_end(tmp_path):
    """Through the screen and the sandboxed verifier: the generated module, not only its kernel."""
    import kernelscale
    from kernelscale.propose.compiler.proposer import CompilerProposer

    path = tmp_path / "everything.py"
    path.write_text(EVERYTHING)
    problem = kernelscale.load_problem(str(path))
    code = CompilerProposer(device="cpu").first_kernel(problem)
    verdict = kernelscale.verify(problem, code, device="cpu")
    assert verdict.status == "correct", verdict.headline() + verdict.log_tail


def _finfo_mods(B, Sq, Skv):
    """HF-style masking with torch.finfo(float32).min, a finite value that log2 e (the exp2
    softmax's, and FA4's inside its kernel) would overflow to −inf: every fourth row is all
    "masked", which the reference averages (its values are equal), not zeros. The same value
    also arrives from a captured tensor, next to a true −inf that must stay one."""
    lowest = torch.finfo(torch.float32).min
    pad = torch.zeros(B, Skv)
    pad[:, -5:] = lowest
    pad[1, :] = float("-inf")  # the second batch sees nothing: zeros

    def score_mod(score, b, h, q_idx, kv_idx):
        masked = (kv_idx > q_idx + (Skv - Sq)) | (q_idx % 4 == 0)
        return torch.where(masked, torch.finfo(score.dtype).min, score) + pad[b, kv_idx]

    return score_mod, None


def test_finfo_min_masking_is_not_overflowed_to_minus_inf_triton():
    _check_triton(*_finfo_mods(2, 64, 64), Sq=64, Skv=64, tag="finfo")
    _check_triton(*_finfo_mods(2, 3, 45), Sq=3, Skv=45, tag="finfo_dec")


def test_finfo_min_masking_is_not_overflowed_to_minus_inf_fa4(monkeypatch):
    _check_fa4(*_finfo_mods(2, 128, 128), monkeypatch, Sq=128, Skv=128, tag="finfo")


def test_a_torch_compiled_mod_is_traced_through_the_function_it_wraps():
    """torch.compile's wrapper reaches torch's own code; the binder rebound it and made dozens of
    torch's internal numbers kernel parameters, which ModelNew then failed to find."""
    window = 9

    def plain(score, b, h, q_idx, kv_idx):
        return score - 0.1 * (kv_idx - q_idx).abs()

    def mask(b, h, q_idx, kv_idx):
        return (kv_idx - q_idx).abs() < window

    score_mod = torch.compile(plain, backend="eager")
    source = generate(score_mod, mask, SMALL)
    params = [line for line in source.splitlines() if line.startswith("PARAM_PATHS")]
    assert params == ["PARAM_PATHS = {'window': ('mask_mod', ('free', 'window'))}"], params
    _check_triton(score_mod, mask, Sq=16, Skv=45, tag="compiled")


def _half_precision_mods():
    """Arithmetic torch runs in a half type: bf16 slopes times a distance (a bf16 result, as in
    models built in bf16) and an fp16 table times a Python number."""
    slopes = torch.tensor([0.3, 0.7, 0.11, 0.05]).to(torch.bfloat16)
    table = torch.randn(64, generator=torch.Generator().manual_seed(8)).half()

    def score_mod(score, b, h, q_idx, kv_idx):
        bias = slopes[h] * (kv_idx - q_idx) + table[kv_idx % 64] * 1.37
        return score + bias.float()

    return score_mod, None


def test_half_precision_arithmetic_rounds_as_torch_does_triton():
    _check_triton(*_half_precision_mods(), Sq=16, Skv=100, tag="half")


def test_half_precision_arithmetic_rounds_as_torch_does_fa4(monkeypatch):
    _check_fa4(*_half_precision_mods(), monkeypatch, Sq=130, Skv=130, tag="half")


def test_a_cast_to_a_half_type_rounds():
    """`.to(torch.bfloat16)` and `.half()` round (they were dropped as float-to-float no-ops);
    `.float()` of a half value is exact and rounds nothing."""
    from kernelscale.propose.compiler.generate import compile_mods

    score = compile_mods(lambda s, b, h, q, kv: s.to(torch.bfloat16).float() + s.half(), None).trace.score
    assert g_render(score) == "add(cast_float(round_bf16(score)), round_fp16(score))"


def g_render(node):
    from kernelscale.propose.compiler.graph import render

    return render(node)


def test_a_builtin_variants_helpers_are_the_variants_own_captures():
    """natten's mask is built by a helper in kernelscale's own problem files: its numbers (the
    image width, the dilation) are captures of the variant, so a module traced for one width
    computes another width's mask, not the traced one's."""
    from kernelscale.problems.attention.suite.natten2d import natten_mask

    source = generate(None, natten_mask(4, 3, 2), SMALL)
    module = import_source(source, "test_natten_width")
    q, k, v = inputs(B=1, Hq=2, Hkv=2, Sq=36, Skv=36, D=16)  # a 6x6 image, not the traced 4x4
    other = natten_mask(6, 3, 2)
    shape = {"B": 1, "Hq": 2, "Hkv": 2, "Sq": 36, "Skv": 36, "D": 16}
    out = module.ModelNew(None, other, shape)(q, k, v)
    assert max_err(out, attention_reference(q, k, v, None, other)) < 1e-4


def test_the_large_scores_trial_is_for_16_bit_attention_only(tmp_path):
    """An fp32 variant is held to 1e-4, below what an honest kernel's reordered fp32 sums of
    logits hundreds of units large differ by: the first kernel of EVERYTHING failed the trial
    about half the time. 16-bit variants keep it."""
    import kernelscale
    from kernelscale.problems.module import import_source
    from kernelscale.verify.trials import own_trial

    path = tmp_path / "everything.py"
    path.write_text(EVERYTHING)
    fp32, bf16 = kernelscale.load_problem(str(path)), kernelscale.load_problem("attention/causal")
    trials = [own_trial(import_source(p.source, f"own_trial_{i}")) for i, p in enumerate((fp32, bf16))]
    assert trials == [None, "large scores"]
