"""The independent fp32 reference for attention variants: materialised scores, never FlexAttention.

scores = (q·kᵀ)·scale in fp32, score_mod applied with broadcast int32 index tensors, masked
entries set to -inf, softmax, @v. Rows with every entry -inf give zeros (not NaN). Work is cut
into (batch, head-group, row) chunks so B=4, H=16, S=4096 stays within a few hundred MB.
"""

from __future__ import annotations

import math

import torch

# fp32 score elements per chunk: 2^25 x 4 B = 128 MB, a few copies live at once.
_CHUNK_ELEMS = 1 << 25


def attention_reference(q, k, v, score_mod=None, mask_mod=None, scale: float | None = None):
    """q (B,Hq,Sq,D), k/v (B,Hkv,Skv,D) -> (B,Hq,Sq,D) in q.dtype. Query head h reads kv head h // G."""
    B, Hq, Sq, D = q.shape
    Hkv, Skv = k.shape[1], k.shape[2]
    if Hq % Hkv:
        raise ValueError(f"Hq={Hq} is not a multiple of Hkv={Hkv}")
    group = Hq // Hkv
    scale = 1.0 / math.sqrt(D) if scale is None else scale
    out = torch.empty(B, Hq, Sq, v.shape[-1], dtype=q.dtype, device=q.device)
    heads = max(1, min(Hq, _CHUNK_ELEMS // (Sq * Skv)))
    rows = max(1, min(Sq, _CHUNK_ELEMS // (heads * Skv)))
    kv_index = lambda n: torch.arange(n, dtype=torch.int32, device=q.device)  # noqa: E731
    kv_idx = kv_index(Skv).view(1, 1, 1, Skv)
    for b in range(B):
        b_idx = torch.full((1, 1, 1, 1), b, dtype=torch.int32, device=q.device)
        for h0 in range(0, Hq, heads):
            hs = torch.arange(h0, min(h0 + heads, Hq), device=q.device)
            kf = k[b].index_select(0, hs // group).float()  # (h, Skv, D)
            vf = v[b].index_select(0, hs // group).float()
            h_idx = hs.to(torch.int32).view(1, -1, 1, 1)
            for r0 in range(0, Sq, rows):
                r1 = min(r0 + rows, Sq)
                qf = q[b, h0 : h0 + len(hs), r0:r1].float()  # (h, r, D)
                q_idx = torch.arange(r0, r1, dtype=torch.int32, device=q.device).view(1, 1, -1, 1)
                scores = (qf @ kf.transpose(-1, -2) * scale).unsqueeze(0)  # (1, h, r, Skv)
                probs = _probs(scores, score_mod, mask_mod, b_idx, h_idx, q_idx, kv_idx)
                out[b, h0 : h0 + len(hs), r0:r1] = (probs[0] @ vf).to(q.dtype)
    return out


def _probs(scores, score_mod, mask_mod, b, h, q_idx, kv_idx):
    """Safe softmax of the modified, masked scores (1, h, r, Skv); all -inf rows give zeros."""
    if score_mod is not None:
        modded = torch.as_tensor(score_mod(scores, b, h, q_idx, kv_idx), device=scores.device)
        scores = torch.broadcast_to(modded.float(), scores.shape)
    if mask_mod is not None:
        keep = torch.as_tensor(mask_mod(b, h, q_idx, kv_idx), device=scores.device)
        scores = scores.masked_fill(~torch.broadcast_to(keep.bool(), scores.shape), float("-inf"))
    row_max = scores.amax(-1, keepdim=True)
    alive = row_max > float("-inf")
    exp = torch.exp(scores - torch.where(alive, row_max, torch.zeros_like(row_max)))
    total = exp.sum(-1, keepdim=True)
    return torch.where(alive, exp / torch.where(alive, total, torch.ones_like(total)), torch.zeros_like(exp))
