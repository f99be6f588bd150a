"""Bias pruning: which variants may skip the KV blocks their bias makes negligible.

When the logits (log2 units) are c·qk + bias(b, h, q_idx, kv_idx), with c > 0 per program and the
bias free of q and k (relative positions, ALiBi), Cauchy–Schwarz bounds the data's part of every
logit a program sees: |c·qk| ≤ S = c · max_r ‖q_r‖ · max_j ‖k_j‖. A query row r's largest logit is
then ≥ best(r) − S, best(r) being the row's largest bias over the keys its mask keeps, and a KV
block's logits are ≤ most(r, block) + S. With gap = the least, over the query block's rows, of
best(r) − most(r, block), each of the block's weights is ≤ 2^−(gap − 2S) of the row's largest, and
leaving out every such block moves the output by < 2 · Skv · max|v| · 2^−(gap − 2S). A block is
left out only when gap > 2S + log2 Skv + log2 max(1, max|v|) + 40: the output moves by less than
2^−39 · min(1, max|v|), far under fp32's resolution, whatever the inputs are. NaN or inf in q, k
or v makes S (so the threshold) infinite or NaN, and a NaN gap or threshold keeps the block.

This module decides whether the traced logits have that form and finds c; biasgaps.py builds the
gap table on the host (its source is inlined into the generated module) and templates/_prune.j2
holds the kernels' side (the K / V statistics, the threshold, the range of blocks to visit).
"""

from __future__ import annotations

from kernelscale.propose.compiler import graph as g
from kernelscale.propose.compiler.rewrite import QK, positive_scale

DATA = frozenset({"qk", "score"})


def prune_scale(logits: g.Node) -> g.Node | None:
    """c when logits = c·qk + bias, with c a product of the softmax scale and positive constants
    and a bias that varies along a row (depends on kv) and never reads qk; None otherwise: a
    score through tanh (soft-capping), qk times an index, or no bias at all (nothing to prune)."""
    data, bias = [], []
    for sign, term in _signed_terms(logits):
        (data if term.deps & DATA else bias).append((sign, term))
    if len(data) != 1 or not any("kv" in term.deps for _, term in bias):
        return None
    sign, term = data[0]
    if sign < 0 or term.op != "mul" or term.args[0] != QK or not positive_scale(term.args[1]):
        return None
    return term.args[1]


def _signed_terms(node: g.Node) -> list[tuple[int, g.Node]]:
    """The node as a signed sum of terms, through add, sub and neg only (as rewrite builds it)."""
    if node.op == "add":
        return _signed_terms(node.args[0]) + _signed_terms(node.args[1])
    if node.op == "sub":
        return _signed_terms(node.args[0]) + [(-s, t) for s, t in _signed_terms(node.args[1])]
    if node.op == "neg":
        return [(-s, t) for s, t in _signed_terms(node.args[0])]
    return [(1, node)]
