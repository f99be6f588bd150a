"""Baselines for attention problems: FlexAttention (compiled, with its BlockMask) and SDPA.

`make_baseline(name, model, init_inputs)` is what the verifier asks a problem module for any
baseline other than eager/compile; it returns a callable (q, k, v) -> out, or None where the
baseline cannot express the variant or cannot run on the device.
"""

from __future__ import annotations

import torch

from kernelscale.problems.attention.blockmask import iter_mask_chunks, mask_dependence

SDPA_BACKENDS = {"sdpa_cudnn": "CUDNN_ATTENTION", "sdpa_flash": "FLASH_ATTENTION"}
# Past dynamo's default of 8, a new score_mod silently runs FlexAttention unfused, ~30x slower.
DYNAMO_LIMIT = 256


def make_baseline(name: str, model, init_inputs):
    score_mod, mask_mod, shape = init_inputs
    device = torch.device(shape.get("device", "cpu"))
    if name == "flex":
        return flex_baseline(score_mod, mask_mod, shape, device)
    if name in SDPA_BACKENDS:
        return sdpa_baseline(name, score_mod, mask_mod, shape, device)
    return None


def raise_dynamo_limits() -> None:
    import torch._dynamo

    config = torch._dynamo.config
    for key in (
        "recompile_limit",
        "cache_size_limit",
        "accumulated_recompile_limit",
        "accumulated_cache_size_limit",
    ):
        if hasattr(config, key):
            setattr(config, key, max(getattr(config, key), DYNAMO_LIMIT))


_COMPILED_FLEX = None


def flex_baseline(
    score_mod, mask_mod, shape: dict, device: torch.device, block_size: int = 128, kernel_options=None
):
    """torch.compile(flex_attention, dynamic=False) with a BlockMask built once; GPU only.
    kernel_options={"BACKEND": "FLASH"} picks its FlashAttention-4 path (flash-attn-4 installed)."""
    global _COMPILED_FLEX
    if device.type != "cuda":
        return None  # a GPU baseline: its CPU path is neither fast nor what users run
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    raise_dynamo_limits()
    if _COMPILED_FLEX is None:
        _COMPILED_FLEX = torch.compile(flex_attention, dynamic=False)
    block_mask = None
    if mask_mod is not None:
        dep_b, dep_h = mask_dependence(mask_mod, shape["B"], shape["Hq"], shape["Sq"], shape["Skv"], device)
        block_mask = create_block_mask(
            mask_mod,
            shape["B"] if dep_b else None,
            shape["Hq"] if dep_h else None,
            shape["Sq"],
            shape["Skv"],
            device=device,
            BLOCK_SIZE=block_size,
        )
    gqa = shape["Hq"] != shape["Hkv"]
    compiled = _COMPILED_FLEX

    def run(q, k, v):
        return compiled(
            q, k, v, score_mod=score_mod, block_mask=block_mask, enable_gqa=gqa, kernel_options=kernel_options
        )

    return run


def sdpa_mode(score_mod, mask_mod, shape: dict, device) -> str | None:
    """ "full" or "causal" when SDPA computes exactly this variant on this grid, else None."""
    if score_mod is not None and not is_identity(score_mod, device):
        return None
    if mask_mod is None:
        return "full"
    full = causal = True
    B, H, Sq, Skv = shape["B"], shape["Hq"], shape["Sq"], shape["Skv"]
    for _, _, row0, grid in iter_mask_chunks(mask_mod, B, H, Sq, Skv, device):
        rows = torch.arange(row0, row0 + grid.shape[2], device=grid.device).view(-1, 1)
        tril = rows >= torch.arange(Skv, device=grid.device).view(1, -1)  # SDPA's is_causal: top-left
        full = full and bool(grid.all())
        causal = causal and bool(torch.equal(grid[0, 0], tril))
        if not (full or causal):
            return None
    return "full" if full else "causal"


def is_identity(score_mod, device) -> bool:
    """Whether score_mod returns the score unchanged, on a random probe (a no-op mod)."""
    n = 8
    zero = torch.zeros((1, 1, 1, 1), dtype=torch.int32, device=device)
    pos = torch.arange(n, dtype=torch.int32, device=device)
    idx = [zero, zero, pos.view(1, 1, n, 1), pos.view(1, 1, 1, n)]
    scores = torch.randn(1, 1, n, n, device=device)
    try:
        out = torch.as_tensor(score_mod(scores, *idx), device=device)
    except Exception:  # a mod that cannot run on the probe is surely not a no-op
        return False
    return out.shape == scores.shape and bool(torch.equal(out.float(), scores))


def sdpa_baseline(name: str, score_mod, mask_mod, shape: dict, device: torch.device):
    """SDPA pinned to one backend; None if the variant is not full/causal or the backend refuses."""
    if device.type != "cuda":
        return None
    mode = sdpa_mode(score_mod, mask_mod, shape, device)
    if mode is None:
        return None
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.nn.functional import scaled_dot_product_attention

    backend = getattr(SDPBackend, SDPA_BACKENDS[name])
    gqa = shape["Hq"] != shape["Hkv"]

    def run(q, k, v):
        with sdpa_kernel(backend):
            return scaled_dot_product_attention(q, k, v, is_causal=mode == "causal", enable_gqa=gqa)

    if not _runs(run, shape, device):
        return None
    return run


def _runs(run, shape: dict, device) -> bool:
    """Probe the backend on a small slice of the shape: it raises when it cannot take it."""
    dtype = getattr(torch, shape["dtype"])
    s = min(shape["Sq"], 256), min(shape["Skv"], 256)
    q = torch.randn(1, shape["Hq"], s[0], shape["D"], dtype=dtype, device=device)
    k = torch.randn(1, shape["Hkv"], s[1], shape["D"], dtype=dtype, device=device)
    try:
        run(q, k, k)
        return True
    except RuntimeError:
        return False
