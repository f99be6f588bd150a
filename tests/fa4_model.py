"""A plain-torch model of the parts of FlashAttention-4 and CuTe DSL a generated FA4 module uses,
so that the module (its hooks, block sparsity, native masks, scales, aux tensors) runs on the CPU.

This is not FA4: it is FA4's documented contract written out in torch, against which the
generated module's own logic is checked. The real kernel runs only on a GPU (marked tests and
benchmarks/attention_backends.py). Hooks get 1-D vectors, as FA4's do (there of vec_size lanes,
here of every score of a head at once); `_flash_attn_fwd` follows flash_attn.cute.interface:
q/k/v as (B, S, H, D), scores times softmax_scale before the score_mod, the mask_mod evaluated
only in the partial blocks of the block sparsity, full blocks kept, other blocks skipped,
bottom-right causal / local windows, fully masked rows giving zeros.
"""

from __future__ import annotations

import math
import sys
import types
from collections import namedtuple

import torch

BlockSparseTensorsTorch = namedtuple(  # FA4's fields, in FA4's order
    "BlockSparseTensorsTorch",
    "mask_block_cnt mask_block_idx full_block_cnt full_block_idx cu_total_m_blocks cu_block_idx_offsets"
    " block_size dq_write_order dq_write_order_full spt",
    defaults=(None,) * 8,
)


class Fragment:
    """cute.make_rmem_tensor: a register tensor with load/store and per-lane indexing."""

    def __init__(self, shape, dtype):
        self.data = torch.zeros(shape, dtype=dtype)
        self.shape = self.data.shape

    def store(self, value):
        self.data.copy_(value)

    def load(self):
        return self.data.clone()

    def __getitem__(self, i):
        return self.data[i]

    def __setitem__(self, i, value):
        self.data[i] = value


class AuxTensor:
    """An aux tensor as the hooks see it: scalar-indexed, with an element_type."""

    def __init__(self, t):
        self.t, self.element_type = t, t.dtype

    def __getitem__(self, idx):
        idx = tuple(int(i) for i in (idx if isinstance(idx, tuple) else (idx,)))
        # CuTe reads raw memory: Python's wrapping of t[-1] must not hide a negative index here
        if not all(0 <= i < n for i, n in zip(idx, self.t.shape)):
            raise IndexError(f"aux tensor of shape {tuple(self.t.shape)} read at {idx}")
        return self.t[idx]


def _math():
    m = types.SimpleNamespace()
    for name in ("exp2", "log", "log2", "sqrt", "rsqrt", "sin", "cos", "floor", "ceil"):
        setattr(m, name, getattr(torch, name))
    m.tanh = lambda x, fastmath=False: torch.tanh(x)
    return m


def fake_modules(calls: list) -> dict[str, types.ModuleType]:
    """sys.modules entries for cutlass, cutlass.cute and flash_attn.cute; `calls` records each
    _flash_attn_fwd call's keyword arguments."""
    cutlass = types.ModuleType("cutlass")
    cutlass.Float32, cutlass.Int32, cutlass.Boolean = torch.float32, torch.int32, torch.bool
    cutlass.BFloat16, cutlass.Float16 = torch.bfloat16, torch.float16
    cutlass.range_constexpr = range
    cute = types.ModuleType("cutlass.cute")
    cute.jit = lambda fn: fn
    cute.math = _math()
    cute.full_like = lambda ref, value, dtype: torch.full(ref.shape, value, dtype=dtype)
    cute.where = torch.where
    cute.make_rmem_tensor = Fragment
    cute.size = lambda shape: math.prod(shape)
    cutlass.cute = cute
    flash_attn = types.ModuleType("flash_attn")
    fa_cute = types.ModuleType("flash_attn.cute")
    interface = types.ModuleType("flash_attn.cute.interface")
    sparsity = types.ModuleType("flash_attn.cute.block_sparsity")
    sparsity.BlockSparseTensorsTorch = BlockSparseTensorsTorch
    sparsity.normalize_block_sparse_config = normalize_block_sparse_config

    def _flash_attn_fwd(q, k, v, **kw):
        calls.append(kw)
        kw["out"].copy_(attention(q, k, v, **kw).to(kw["out"].dtype))
        _flash_attn_fwd.compile_cache.compile(kw, q, k, v)

    _flash_attn_fwd.compile_cache = CompileCache(calls)
    interface._flash_attn_fwd = _flash_attn_fwd
    interface.AuxData = AuxData
    return {
        "cutlass": cutlass,
        "cutlass.cute": cute,
        "flash_attn": flash_attn,
        "flash_attn.cute": fa_cute,
        "flash_attn.cute.interface": interface,
        "flash_attn.cute.block_sparsity": sparsity,
    }


AuxData = namedtuple("AuxData", "tensors scalars", defaults=(None, None))
Normalized = namedtuple("Normalized", "tensors broadcast_pattern q_subtile_factor kv_subtile_factor")


def normalize_block_sparse_config(tensors, *, batch_size, num_head, seqlen_q, seqlen_k, block_size, q_stage):
    """As FA4's: counts and indices broadcast to (B, H, M blocks[, N blocks]) of the sparse blocks;
    a tile smaller than the sparse Q block is a subtile factor the kernel has to know."""
    bm, bn = tensors.block_size
    assert q_stage == 1 and bm % block_size[0] == 0 and bn == block_size[1]
    m, n = -(-seqlen_q // bm), -(-seqlen_k // bn)
    cnt = [t.expand(batch_size, num_head, m) for t in (tensors.mask_block_cnt, tensors.full_block_cnt)]
    idx = [t.expand(batch_size, num_head, m, n) for t in (tensors.mask_block_idx, tensors.full_block_idx)]
    normal = BlockSparseTensorsTorch(cnt[0], idx[0], cnt[1], idx[1], block_size=tensors.block_size)
    return Normalized(normal, None, bm // block_size[0], 1)


class CompileCache:
    """FA4's in-memory JIT cache (`.cache`, a dict from compile key to compiled kernel). Its keys
    stand for FA4's: what the kernel specialises on (masking flags, the hooks, dtype, head dim,
    stride patterns); a compiled kernel takes FA4's SM90 positional arguments."""

    def __init__(self, calls):
        self.cache, self.calls = {}, calls

    def compile(self, kw, q, k, v):
        key = (
            kw["causal"],
            kw["window_size_left"] is not None,
            kw["score_mod"],
            kw["mask_mod"],
            kw["block_sparse_tensors"] is not None,
            q.dtype,
            q.shape[-1],
            q.stride(),
            k.stride(),
        )
        if key not in self.cache:
            self.cache[key] = self._compiled(kw)

    def _compiled(self, kw):
        def sm90(
            q,
            k,
            v,
            out,
            lse,
            scale,
            cu_q,
            cu_k,
            used_q,
            used_k,
            pages,
            left,
            right,
            sink,
            sparse,
            aux,
            total_m,
            total_splits,
        ):
            assert all(a is None for a in (lse, cu_q, cu_k, used_q, used_k, pages, sink))
            assert total_m is None and total_splits is None and aux.scalars is None
            planned = kw["block_sparse_tensors"]
            assert (sparse is None) == (planned is None)
            if sparse is not None:  # FA4's eight tensors, the first four already (B, H, ...)
                B, H = q.shape[0], q.shape[2]
                assert len(sparse) == 8 and all(t is None for t in sparse[4:])
                assert all(t.shape[:2] == (B, H) for t in sparse[:4])
                sparse = BlockSparseTensorsTorch(*sparse[:4], block_size=planned.block_size)
            self.calls.append({"direct": True, "window_size_left": left, "softmax_scale": scale})
            got = attention(
                q,
                k,
                v,
                scale,
                causal=kw["causal"],
                window_size_left=left,
                window_size_right=right,
                score_mod=kw["score_mod"],
                mask_mod=kw["mask_mod"],
                block_sparse_tensors=sparse,
                aux_tensors=aux.tensors,
            )
            out.copy_(got.to(out.dtype))

        return sm90


def attention(
    q,
    k,
    v,
    softmax_scale,
    causal=False,
    window_size_left=None,
    window_size_right=None,
    score_mod=None,
    mask_mod=None,
    block_sparse_tensors=None,
    aux_tensors=None,
    out=None,
    tile_mn=None,
    pack_gqa=None,
):
    """FA4's forward on (B, S, H, D) tensors, in fp32; returns (B, S, H, D)."""
    B, Sq, H, D = q.shape
    Skv, Hkv = k.shape[1], k.shape[2]
    qf, kf, vf = (t.float().transpose(1, 2) for t in (q, k, v))
    kf, vf = (t.repeat_interleave(H // Hkv, dim=1) for t in (kf, vf))
    scores = qf @ kf.transpose(-1, -2) * softmax_scale  # (B, H, Sq, Skv)
    grid = [
        t.expand(B, H, Sq, Skv).reshape(-1).to(torch.int32).contiguous()
        for t in (
            torch.arange(B).view(B, 1, 1, 1),
            torch.arange(H).view(1, H, 1, 1),
            torch.arange(Sq).view(1, 1, Sq, 1),
            torch.arange(Skv).view(1, 1, 1, Skv),
        )
    ]
    aux = [AuxTensor(t) for t in aux_tensors or []]
    if score_mod is not None:
        scores = score_mod(scores.reshape(-1), *grid, seqlen_info=None, aux_tensors=aux).view(B, H, Sq, Skv)
    b, h, qi, kv = (t.view(B, H, Sq, Skv) for t in grid)
    keep = torch.ones(B, H, Sq, Skv, dtype=torch.bool)
    offset = Skv - Sq
    if causal:
        keep &= kv <= qi + offset
    if window_size_left is not None:
        keep &= (kv >= qi + offset - window_size_left) & (kv <= qi + offset + window_size_right)
    if block_sparse_tensors is not None:
        mask = mask_mod(*grid, None, aux).view(B, H, Sq, Skv)
        keep &= _sparse_keep(block_sparse_tensors, mask, B, H, Sq, Skv)
    elif mask_mod is not None:
        keep &= mask_mod(*grid, None, aux).view(B, H, Sq, Skv)
    scores = scores.masked_fill(~keep, float("-inf"))
    # As FA4's online softmax, in fp32 and log2 units: the scores times log2 e (so a finite score
    # beyond 3.4e38 / log2 e, finfo.min, overflows to -inf there as it does in FA4), and a row
    # max of exactly -inf counted as 0, so fully masked rows stay zero.
    scores = scores * math.log2(math.e)
    row_max = scores.amax(-1, keepdim=True)
    row_max = torch.where(row_max == float("-inf"), 0.0, row_max)
    p = torch.exp2(scores - row_max)
    p = p / p.sum(-1, keepdim=True).clamp_min(1e-30)
    return (p @ vf).transpose(1, 2)


def _sparse_keep(bs, mask, B, H, Sq, Skv):
    """Elements kept by FA4's block sparsity: full blocks whole, partial blocks through the mask."""
    bm, bn = bs.block_size
    keep = torch.zeros(B, H, Sq, Skv, dtype=torch.bool)
    for kind, cnt, idx in (
        ("part", bs.mask_block_cnt, bs.mask_block_idx),
        ("full", bs.full_block_cnt, bs.full_block_idx),
    ):
        if cnt is None:
            continue
        cnt, idx = cnt.expand(B, H, -1), idx.expand(B, H, -1, -1)
        for bi in range(B):
            for hi in range(H):
                for m in range(cnt.shape[2]):
                    rows = slice(m * bm, (m + 1) * bm)
                    for n in idx[bi, hi, m, : int(cnt[bi, hi, m])].tolist():
                        cols = slice(n * bn, (n + 1) * bn)
                        keep[bi, hi, rows, cols] |= True if kind == "full" else mask[bi, hi, rows, cols]
    return keep


def install(monkeypatch) -> list:
    calls: list = []
    for name, module in fake_modules(calls).items():
        monkeypatch.setitem(sys.modules, name, module)
    return calls
