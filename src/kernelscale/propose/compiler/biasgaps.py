"""The gap table of bias pruning (prune.py): per query block and KV block, how far the block's
bias lies below each row's best, evaluated once per shape on the host.

Standalone on purpose (imports only torch): the attention compiler inlines this file's source
into the generated modules that prune, whose ModelNew builds the table with it, as it inlines
blockmask.py for the mask's block schedule. The bias is the score_mod at score 0 (the logits are
c·qk + bias, so that is the bias, plus terms constant along a row, which cancel in a gap),
evaluated with broadcast int32 index tensors as the reference evaluates the mods.
"""

import torch

_LOG2E = 1.4426950408889634
# Elements of the (rows, Skv) bias grid evaluated at once: a few float64 copies live at once.
_GAP_CHUNK_ELEMS = 1 << 22
# The kernel computes the bias in fp32, in its own order of operations (row terms dropped): a gap
# is taken smaller by 1 log2 unit plus 2^-16 of the biases compared, which covers that rounding
# while the bias terms stay under ~2^20 in log2 units, and costs nothing beside the 40-bit margin.
_GAP_SLACK_ABS = 1.0
_GAP_SLACK_REL = 2.0**-16


def _gap_index(n, dim, device):
    shape = [1, 1, 1, 1]
    shape[dim] = n
    return torch.arange(n, dtype=torch.int32, device=device).view(shape)


def _gap_dependence(score_mod, mask_mod, B, H, Sq, Skv, device):
    """(depends on b, depends on h) of the bias and the mask, read off a small probe's shape."""
    idx = (
        _gap_index(B, 0, device),
        _gap_index(H, 1, device),
        _gap_index(min(Sq, 4), 2, device),
        _gap_index(min(Skv, 4), 3, device),
    )
    zero = torch.zeros((1, 1, 1, 1), dtype=torch.float32, device=device)
    shapes = [torch.as_tensor(score_mod(zero, *idx)).shape]
    if mask_mod is not None:
        shapes.append(torch.as_tensor(mask_mod(*idx)).shape)
    shape = torch.broadcast_shapes(*shapes)
    shape = (1,) * (4 - len(shape)) + tuple(shape)
    return shape[0] != 1 and B > 1, shape[1] != 1 and H > 1


def _block_gaps(bias, keep, BLOCK_M, BLOCK_N):
    """bias float64 (n, Skv) in log2 units, keep bool (n, Skv) -> (ceil(n / BLOCK_M), nk) gaps."""
    n, Skv = bias.shape
    inf = float("inf")
    kept = torch.where(keep, bias, -inf)
    best = kept.amax(1, keepdim=True)  # NaN stays NaN: amax propagates it
    kept = torch.nn.functional.pad(kept, (0, -Skv % BLOCK_N), value=-inf)
    most = kept.view(n, -1, BLOCK_N).amax(2)
    gap = best - most - (_GAP_SLACK_ABS + _GAP_SLACK_REL * (best.abs() + most.abs()))
    # A block with nothing kept for this row (masked, or a bias of -inf: finite q and k give it
    # weight 0) constrains nothing; inf - inf and NaN stay NaN, which the kernel keeps.
    gap = torch.where(most == -inf, inf, gap)
    gap = torch.nn.functional.pad(gap, (0, 0, 0, -n % BLOCK_M), value=inf)  # rows past Sq
    return gap.view(-1, BLOCK_M, gap.shape[1]).amin(1)  # amin propagates NaN too


def bias_gaps(score_mod, mask_mod, B, H, Sq, Skv, BLOCK_M, BLOCK_N, device):
    """float32 (Bg, Hg, ceil(Sq / BLOCK_M), n_pad), Bg in {1, B} and Hg in {1, H} (1 where neither
    mod reads that index), n_pad = the KV block count rounded up to a power of two (the kernel
    reads a row as one vector). Entry [b, h, i, j]: the least, over query rows r of block i, of
    best(r) - most(r, j) in log2 units, less a rounding slack; +inf in the padding."""
    dep_b, dep_h = _gap_dependence(score_mod, mask_mod, B, H, Sq, Skv, device)
    nq, nk = -(-Sq // BLOCK_M), -(-Skv // BLOCK_N)
    n_pad = 1 << (nk - 1).bit_length()
    out = torch.full((B if dep_b else 1, H if dep_h else 1, nq, n_pad), float("inf"), device=device)
    rows = max(BLOCK_M, (_GAP_CHUNK_ELEMS // max(Skv, 1)) // BLOCK_M * BLOCK_M)
    kv = _gap_index(Skv, 3, device)
    for b in range(B) if dep_b else [0]:
        bt = torch.full((1, 1, 1, 1), b, dtype=torch.int32, device=device)
        for h in range(H) if dep_h else [0]:
            ht = torch.full((1, 1, 1, 1), h, dtype=torch.int32, device=device)
            for row0 in range(0, Sq, rows):
                n = min(rows, Sq - row0)
                q = torch.arange(row0, row0 + n, dtype=torch.int32, device=device).view(1, 1, n, 1)
                zero = torch.zeros((1, 1, n, Skv), dtype=torch.float32, device=device)
                bias = torch.as_tensor(score_mod(zero, bt, ht, q, kv), device=device)
                bias = torch.broadcast_to(bias.double(), (1, 1, n, Skv))[0, 0] * _LOG2E
                keep = torch.ones((n, Skv), dtype=torch.bool, device=device)
                if mask_mod is not None:
                    grid = torch.as_tensor(mask_mod(bt, ht, q, kv), device=device)
                    keep = torch.broadcast_to(grid.to(torch.bool), (1, 1, n, Skv))[0, 0]
                qb = row0 // BLOCK_M
                out[b if dep_b else 0, h if dep_h else 0, qb : qb + -(-n // BLOCK_M), :nk] = _block_gaps(
                    bias, keep, BLOCK_M, BLOCK_N
                )
    return out
