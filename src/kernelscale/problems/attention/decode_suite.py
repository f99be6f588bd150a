"""Decode shapes of the built-in variants: a few query rows against a long KV cache, with GQA.

Sq = 1 is plain token-by-token decoding, Sq = 16 speculative decoding or chunked prefill. The
query rows sit at the end of the cache (the positional variants align them bottom-right). The
2D neighbourhood variants need Sq == Skv and have no decode shape.
"""

from __future__ import annotations

DECODE_VARIANTS = (
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
)
DECODE_SQ = (1, 16)
# B=8 sequences of 32768 cached tokens, 32 query heads reading 8 KV heads (Llama-3-8B-like).
DECODE_SHAPE = "Skv=32768,Hq=32,Hkv=8,B=8"


def decode_problem_ids() -> list[str]:
    return [f"attention/{name}:Sq={sq},{DECODE_SHAPE}" for name in DECODE_VARIANTS for sq in DECODE_SQ]
