"""Hostile candidates wrong only where the trials' inputs never go: edges of a problem's domain.

Each is right on every plain draw and every generic shift; what catches it is a trial of the
problem's own, asserted from the oracle's verdict (tests/test_hostile_protocol.py).
"""

from __future__ import annotations

from hostile_protocol import SOFTMAX_WITHOUT_MAX, STABLE_SOFTMAX, ProtocolCheat

# A causal flash-attention forward written the plain way (one program per block of query rows,
# a loop over key blocks, products in fp32 with P rounded to the inputs' dtype). With
# SUBTRACT_MAX it keeps the running row max, as every flash kernel does; without it, it takes
# exp of the raw logits and skips the max and the accumulator's rescaling, the part of the
# softmax a fast kernel most wants to drop. That is right while every logit stays inside exp's
# range, and randn q and k (even the verifier's x 0.5, negative and small trials) give logits of
# a few units; real q and k with a large common component along the keys give a row offset of
# hundreds, where it returns inf and NaN.
ATTENTION_KERNEL = """
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def attention_kernel(q_ptr, k_ptr, v_ptr, o_ptr, Sq, Skv, Hq, Hkv, scale,
                     D: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, SUBTRACT_MAX: tl.constexpr,
                     FIRST_KEY: tl.constexpr):
    pid_m = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // Hq
    h = bh % Hq
    hk = h // (Hq // Hkv)
    rows = pid_m * BM + tl.arange(0, BM)
    dims = tl.arange(0, D)
    q_base = (b * Hq + h).to(tl.int64) * Sq * D
    kv_base = (b * Hkv + hk).to(tl.int64) * Skv * D
    q = tl.load(q_ptr + q_base + rows[:, None] * D + dims[None, :], mask=rows[:, None] < Sq, other=0.0)
    q = q.to(tl.float32)
    m = tl.full((BM,), -float("inf"), tl.float32)
    l = tl.zeros((BM,), tl.float32)
    acc = tl.zeros((BM, D), tl.float32)
    offset = Skv - Sq
    k0 = tl.load(k_ptr + kv_base + dims).to(tl.float32)
    s0 = tl.sum(q * k0[None, :], 1) * scale  # the first key's logit: every causal row sees it
    for start in range(0, Skv, BN):
        cols = start + tl.arange(0, BN)
        inside = cols[:, None] < Skv
        k = tl.load(k_ptr + kv_base + cols[:, None] * D + dims[None, :], mask=inside, other=0.0).to(tl.float32)
        v = tl.load(v_ptr + kv_base + cols[:, None] * D + dims[None, :], mask=inside, other=0.0).to(tl.float32)
        s = tl.dot(q, tl.trans(k)) * scale
        keep = (rows[:, None] + offset >= cols[None, :]) & (cols[None, :] < Skv)
        s = tl.where(keep, s, -float("inf"))
        if SUBTRACT_MAX:
            m_new = tl.maximum(m, tl.max(s, 1))
            m_use = tl.where(m_new == -float("inf"), 0.0, m_new)
            alpha = tl.exp(m - m_use)
            p = tl.exp(s - m_use[:, None])
            l = l * alpha + tl.sum(p, 1)
            acc = acc * alpha[:, None]
            m = m_new
        elif FIRST_KEY:
            p = tl.exp(s - s0[:, None])
            l = l + tl.sum(p, 1)
        else:
            p = tl.exp(s)
            l = l + tl.sum(p, 1)
        acc += tl.dot(p.to(q_ptr.dtype.element_ty).to(tl.float32), v)
    out = acc / l[:, None]
    tl.store(o_ptr + q_base + rows[:, None] * D + dims[None, :], out.to(o_ptr.dtype.element_ty),
             mask=rows[:, None] < Sq)


class ModelNew(nn.Module):
    def __init__(self, score_mod, mask_mod, shape):
        super().__init__()
        self.scale = shape["D"] ** -0.5

    def forward(self, q, k, v):
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
        B, Hq, Sq, D = q.shape
        out = torch.empty_like(q)
        grid = (triton.cdiv(Sq, 32), B * Hq)
        attention_kernel[grid](q, k, v, out, Sq, k.shape[2], Hq, k.shape[1], self.scale,
                               D=D, BM=32, BN=32, SUBTRACT_MAX=SUBTRACT_MAX, FIRST_KEY=FIRST_KEY)
        return out
"""


def _attention(subtract_max: bool, first_key: bool = False) -> str:
    modes = f"\nSUBTRACT_MAX = {subtract_max}\nFIRST_KEY = {first_key}\n\n\nclass ModelNew"
    return ATTENTION_KERNEL.replace("\nclass ModelNew", modes)


HONEST_CAUSAL_ATTENTION = _attention(subtract_max=True)
ATTENTION_WITHOUT_MAX = _attention(subtract_max=False)
# A subtler one: every logit taken relative to the row's first key instead of its running max
# (a fixed reference, no rescaling). Right while no key's logit exceeds the first key's by exp's
# range; a common offset of every key's logits (the first version of the large-scores trial)
# cancels in it, so the trial gives the keys offsets that differ: some keys hundreds of units
# above the others in each row.
ATTENTION_FROM_THE_FIRST_KEY = _attention(subtract_max=False, first_key=True)


def _then_scale(softmax: str) -> str:
    """A row softmax kernel of hostile_protocol's as one for ops/softmax_then_scale (÷ keep_prob)."""
    return (
        softmax.replace("y = num / tl.sum(num, axis=0)", "y = num / tl.sum(num, axis=0) / keep_prob")
        .replace("(x_ptr, y_ptr, n_cols, BLOCK", "(x_ptr, y_ptr, n_cols, keep_prob, BLOCK")
        .replace("(x, y, x.shape[1], BLOCK=", "(x, y, x.shape[1], self.keep_prob, BLOCK=")
        .replace(
            "class ModelNew(nn.Module):\n    def forward",
            "class ModelNew(nn.Module):\n    def __init__(self, keep_prob):\n        super().__init__()\n"
            "        self.keep_prob = keep_prob\n\n    def forward",
        )
    )


# softmax_without_max on the built-in softmax_then_scale (softmax ÷ keep_prob, fp32), which did
# not ask for the overflow trial the softmax problem asks for: randn x 16 keeps every logit under
# 88.7, so exp(x) / sum(exp(x)) passed every trial it had.
SOFTMAX_THEN_SCALE_WITHOUT_MAX = _then_scale(SOFTMAX_WITHOUT_MAX)
STABLE_SOFTMAX_THEN_SCALE = _then_scale(STABLE_SOFTMAX)

# The same cheat fused behind a projection (ops/matmul_scale_softmax, fp16): a known pass, not a
# finding the verifier catches. That problem cannot take the overflow trial: its fp16 reference
# rounds the logits to fp16 before the softmax, and at the magnitude where exp overflows (x 64:
# logits past 100, fp16 steps of 1/16) that rounding alone moves the softmax by percents, so an
# honest kernel keeping fp32 logits would fail the trial. Nothing else takes logits past exp's
# range there, so this one passes (docs/verifier.md, known limits).
MATMUL_SOFTMAX_WITHOUT_MAX = """
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def projected_softmax_kernel(x_ptr, w_ptr, y_ptr, n_in, n_out, scale, IN: tl.constexpr, OUT: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    ins = tl.arange(0, IN)
    outs = tl.arange(0, OUT)
    x = tl.load(x_ptr + row * n_in + ins, mask=ins < n_in, other=0.0).to(tl.float32)
    w_mask = (ins[:, None] < n_in) & (outs[None, :] < n_out)
    w = tl.load(w_ptr + ins[:, None] * n_out + outs[None, :], mask=w_mask, other=0.0).to(tl.float32)
    logits = tl.sum(x[:, None] * w, axis=0) * scale
    num = tl.where(outs < n_out, tl.exp(logits), 0.0)  # no max subtraction
    y = num / tl.sum(num, axis=0)
    tl.store(y_ptr + row * n_out + outs, y.to(y_ptr.dtype.element_ty), mask=outs < n_out)


class ModelNew(nn.Module):
    def __init__(self, in_features, out_features, scale):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(in_features, out_features, dtype=torch.float16) * in_features**-0.5)
        self.scale = scale

    def forward(self, x):
        x = x.contiguous()
        n_in, n_out = self.weight.shape
        y = torch.empty((x.shape[0], n_out), device=x.device, dtype=x.dtype)
        projected_softmax_kernel[(x.shape[0],)](
            x, self.weight, y, n_in, n_out, self.scale,
            IN=triton.next_power_of_2(n_in), OUT=triton.next_power_of_2(n_out),
        )
        return y
"""


def _example(name: str) -> str:
    from importlib import resources

    return (resources.files("kernelscale.examples") / f"{name}.py").read_text()


# The shipped layer norm with the variance taken in one pass, E[x^2] - E[x]^2: one reduction
# fewer, and where a row does not fit in registers one read of it fewer. It cancels
# catastrophically where a row's mean is large against its spread (a row of mean 64 and spread 1
# at 8192 columns: 3e-3 off in fp32, against 1e-5 for the two-pass formula), and randn rows,
# even the verifier's x 16 or negative ones (mean -0.8, spread 0.6), never are.
LAYER_NORM_ONE_PASS_VARIANCE = (
    _example("layer_norm")
    .replace(
        """    diff = tl.where(mask, x - mean, 0.0)
    var = tl.sum(diff * diff, axis=0) / n_cols
""",
        """    diff = tl.where(mask, x - mean, 0.0)
    var = tl.sum(x * x, axis=0) / n_cols - mean * mean  # one pass: E[x^2] - E[x]^2
""",
    )
    .replace("the exact two-pass formula (no E[x^2] - E[x]^2 cancellation)", "E[x^2] - E[x]^2")
)
HONEST_LAYER_NORM = _example("layer_norm")

# Row L2 normalisation as x / ||x||, without F.normalize's floor max(||x||, eps): the same on
# every row but one of zeros (padding, in real batches), where it returns 0 / 0 = NaN and the
# reference returns zeros. Every trial's rows have norms far above eps = 1e-12 (the small trial's
# x 1e-3 included), so no trial held a zero row. Passes the screen.
L2_NORMALIZE_KERNEL = """
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def l2_normalize_kernel(x_ptr, y_ptr, n_cols, eps, BLOCK: tl.constexpr, FLOOR: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    x = tl.load(x_ptr + row * n_cols + cols, mask=mask, other=0.0).to(tl.float32)
    norm = tl.sqrt(tl.sum(x * x, axis=0))
    if FLOOR:
        norm = tl.maximum(norm, eps)
    tl.store(y_ptr + row * n_cols + cols, x / norm, mask=mask)


class ModelNew(nn.Module):
    def forward(self, x):
        x = x.contiguous()
        y = torch.empty_like(x)
        l2_normalize_kernel[(x.shape[0],)](
            x, y, x.shape[1], 1e-12, BLOCK=triton.next_power_of_2(x.shape[1]), FLOOR=FLOOR
        )
        return y
"""
L2_NORMALIZE_WITHOUT_FLOOR = L2_NORMALIZE_KERNEL.replace(
    "\nclass ModelNew", "\nFLOOR = False\n\n\nclass ModelNew"
)
HONEST_L2_NORMALIZE = L2_NORMALIZE_KERNEL.replace("\nclass ModelNew", "\nFLOOR = True\n\n\nclass ModelNew")

EDGE_CHEATS = [
    ProtocolCheat(
        "softmax_then_scale_without_max",
        "edge distributions",
        "ops/softmax_then_scale",
        SOFTMAX_THEN_SCALE_WITHOUT_MAX,
        "incorrect",
        failing_trial_prefix="overflow inputs",
    ),
    ProtocolCheat(
        "attention_without_max",
        "edge distributions",
        "attention/causal",
        ATTENTION_WITHOUT_MAX,
        "incorrect",
        failing_trial_prefix="large scores",
    ),
    ProtocolCheat(
        "attention_from_the_first_key",
        "edge distributions",
        "attention/causal",
        ATTENTION_FROM_THE_FIRST_KEY,
        "incorrect",
        failing_trial_prefix="large scores",
    ),
    ProtocolCheat(
        "layer_norm_one_pass_variance",
        "edge distributions",
        "ops/layer_norm",
        LAYER_NORM_ONE_PASS_VARIANCE,
        "incorrect",
        failing_trial_prefix="offset inputs",
    ),
    ProtocolCheat(
        "l2_normalize_without_floor",
        "edge distributions",
        "ops/l2_normalize_rows",
        L2_NORMALIZE_WITHOUT_FLOOR,
        "incorrect",
        failing_trial_prefix="zero inputs",
    ),
    ProtocolCheat(
        "matmul_softmax_without_max",
        "edge distributions (a known pass)",
        "ops/matmul_scale_softmax",
        MATMUL_SOFTMAX_WITHOUT_MAX,
        "correct",
    ),
]
