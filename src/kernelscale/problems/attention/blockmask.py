"""Evaluate a FlexAttention-style `mask_mod` over the index grid, in bounded memory.

Standalone on purpose (imports only torch): the attention compiler inlines this file's source
into every generated kernel module, whose `ModelNew.__init__` builds its block schedule with it,
and the problem side uses it for block density and for deciding whether SDPA can express a mask.

A mask is evaluated with broadcast index tensors b (B,1,1,1), h (1,H,1,1), q (1,1,Sq,1) and
kv (1,1,1,Skv), all int32 as FlexAttention passes them. Which of b and h it depends on is read off
the shape of its result on a small probe: a mask that ignores h returns a size-1 head dim, so it is
evaluated once instead of H times.
"""

import torch

# Elements of the boolean grid (and of the mask's int32 intermediates) evaluated at once.
_CHUNK_ELEMS = 1 << 24


def _index(n, dim, device):
    shape = [1, 1, 1, 1]
    shape[dim] = n
    return torch.arange(n, dtype=torch.int32, device=device).view(shape)


def mask_dependence(mask_mod, B, H, Sq, Skv, device):
    """(depends on b, depends on h), read off the broadcast shape of a small probe."""
    probe = mask_mod(
        _index(B, 0, device),
        _index(H, 1, device),
        _index(min(Sq, 4), 2, device),
        _index(min(Skv, 4), 3, device),
    )
    shape = torch.as_tensor(probe).shape
    shape = (1,) * (4 - len(shape)) + tuple(shape)
    return shape[0] != 1 and B > 1, shape[1] != 1 and H > 1


def iter_mask_chunks(mask_mod, B, H, Sq, Skv, device, row_align=1):
    """Yield (b, h, row0, grid) with grid a bool tensor (1, 1, rows, Skv); b/h are None when
    the mask does not depend on them. Rows come in multiples of `row_align` (a block height)."""
    dep_b, dep_h = mask_dependence(mask_mod, B, H, Sq, Skv, device)
    rows = max(row_align, (_CHUNK_ELEMS // max(Skv, 1)) // row_align * row_align)
    kv = _index(Skv, 3, device)
    for b in range(B) if dep_b else [None]:
        bt = torch.full((1, 1, 1, 1), b or 0, dtype=torch.int32, device=device)
        for h in range(H) if dep_h else [None]:
            ht = torch.full((1, 1, 1, 1), h or 0, dtype=torch.int32, device=device)
            for row0 in range(0, Sq, rows):
                n = min(rows, Sq - row0)
                q = torch.arange(row0, row0 + n, dtype=torch.int32, device=device).view(1, 1, n, 1)
                grid = torch.as_tensor(mask_mod(bt, ht, q, kv), device=device)
                yield b, h, row0, torch.broadcast_to(grid.to(torch.bool), (1, 1, n, Skv))


def block_any_all(mask_mod, B, H, Sq, Skv, BLOCK_M, BLOCK_N, device):
    """Per block, whether any / all of its in-range entries are kept.

    Returns two bool tensors (Bm, Hm, ceil(Sq/BLOCK_M), ceil(Skv/BLOCK_N)) with Bm in {1, B} and
    Hm in {1, H}: size 1 where the mask ignores that dim. Out-of-range entries of ragged edge
    blocks count as neither kept nor dropped (the kernel masks them by bounds anyway).
    """
    dep_b, dep_h = mask_dependence(mask_mod, B, H, Sq, Skv, device)
    nq, nk = -(-Sq // BLOCK_M), -(-Skv // BLOCK_N)
    shape = (B if dep_b else 1, H if dep_h else 1, nq, nk)
    any_ = torch.zeros(shape, dtype=torch.bool, device=device)
    all_ = torch.ones(shape, dtype=torch.bool, device=device)
    for b, h, row0, grid in iter_mask_chunks(mask_mod, B, H, Sq, Skv, device, BLOCK_M):
        rows = grid.shape[2]
        pad_r, pad_c = -rows % BLOCK_M, -Skv % BLOCK_N
        g = grid[0, 0]
        lo = torch.nn.functional.pad(g, (0, pad_c, 0, pad_r), value=False)
        hi = torch.nn.functional.pad(g, (0, pad_c, 0, pad_r), value=True)
        r, c = lo.shape[0] // BLOCK_M, lo.shape[1] // BLOCK_N
        qb = slice(row0 // BLOCK_M, row0 // BLOCK_M + r)
        any_[b or 0, h or 0, qb] = lo.view(r, BLOCK_M, c, BLOCK_N).any(3).any(1)
        all_[b or 0, h or 0, qb] = hi.view(r, BLOCK_M, c, BLOCK_N).all(3).all(1)
    return any_, all_


def block_runs(blocks):
    """Contiguous runs of True along the last dim, as a compact per-row list.

    blocks: bool (..., n). Returns (num int32 (...), runs int32 (..., n, 2)) where runs[..., i]
    holds [start, end) of the i-th run for i < num; the rest is zero. Contiguous runs let the
    kernel walk each run with a plain pipelined range loop instead of one index load per block.
    """
    n = blocks.shape[-1]
    prev = torch.nn.functional.pad(blocks[..., :-1], (1, 0), value=False)
    nxt = torch.nn.functional.pad(blocks[..., 1:], (0, 1), value=False)
    starts, ends = blocks & ~prev, blocks & ~nxt
    pos = torch.arange(n, device=blocks.device).expand_as(blocks)
    big = torch.full_like(pos, n)
    start_pos = torch.where(starts, pos, big).sort(-1).values
    end_pos = torch.where(ends, pos + 1, big).sort(-1).values
    num = starts.sum(-1).to(torch.int32)
    keep = pos < num.unsqueeze(-1)
    runs = torch.stack([torch.where(keep, start_pos, 0), torch.where(keep, end_pos, 0)], -1)
    return num, runs.to(torch.int32).contiguous()
