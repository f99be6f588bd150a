"""Why our FA4 module and FlexAttention's FLASH backend differ on one variant (one GPU).

Both run FlashAttention-4's forward kernel through `_flash_attn_fwd`; they differ only in what
they hand it: the hooks (score_mod, mask_mod, their aux tensors and softmax_scale) and the
masking plan (block sparsity, causal/window, tile, pack-GQA). This script records the keyword
arguments of one call of each (a spy on `_flash_attn_fwd`, which both look up at call time),
then calls `_flash_attn_fwd` itself with the four combinations hooks x plan, and for each one
reports: correct against the fp32 reference, do_bench ms (L2 flushed), the GPU time of its
kernels per call from torch.profiler (no host time), and host us per call. The two modules are
also timed as a user calls them. Block counts of each plan (partial, full) are printed too.

    PYTHONPATH=src python3 benchmarks/fa4_flash_diff.py --variants document --dims 128 --out /tmp/o
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402
import triton.testing  # noqa: E402
from attention_bench import build, check  # noqa: E402
from fa4_host_profile import host_us  # noqa: E402

from kernelscale.problems.attention.baselines import flex_baseline  # noqa: E402
from kernelscale.problems.module import import_source  # noqa: E402
from kernelscale.propose.compiler.generate import compile_mods, render  # noqa: E402
from kernelscale.propose.compiler.space import Config  # noqa: E402

PLAN = ("block_sparse_tensors", "causal", "window_size_left", "window_size_right", "tile_mn", "pack_gqa")


def spy_call(namespace, fn):
    """Keyword arguments of the one `_flash_attn_fwd` call fn makes (q, k, v aside)."""
    real = namespace._flash_attn_fwd
    seen = []

    def spy(*args, **kwargs):
        seen.append(kwargs)
        return real(*args, **kwargs)

    spy.compile_cache = real.compile_cache
    namespace._flash_attn_fwd = spy
    try:
        fn()
        torch.cuda.synchronize()
    finally:
        namespace._flash_attn_fwd = real
    return seen[-1]


def gpu_ms(fn, calls=20):
    """GPU time of the kernels per call, from the profiler (host time excluded)."""
    fn()
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(calls):
            fn()
        torch.cuda.synchronize()
    kernels = {}
    for event in prof.key_averages():
        total = getattr(event, "self_device_time_total", 0) or getattr(event, "self_cuda_time_total", 0)
        if total:
            kernels[event.key[:60]] = total / calls / 1e3
    return sum(kernels.values()), dict(sorted(kernels.items(), key=lambda kv: -kv[1])[:4])


def plan_blocks(kwargs):
    sparse = kwargs.get("block_sparse_tensors")
    if sparse is None:
        return None
    return {
        "partial": int(sparse.mask_block_cnt.sum()),
        "full": int(sparse.full_block_cnt.sum()) if sparse.full_block_cnt is not None else 0,
        "shape": list(sparse.mask_block_cnt.shape),
        "block_size": list(sparse.block_size) if sparse.block_size else None,
    }


def measure(label, fn, out_bhsd, reference, tol, log):
    entry = {}
    try:
        fn()
        torch.cuda.synchronize()
        entry["max_abs_err"], entry["ok"] = check(out_bhsd(), reference, tol)
        entry["do_bench_ms"] = triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median")
        entry["gpu_ms"], entry["kernels"] = gpu_ms(fn)
        entry["host_us"] = host_us(fn)
    except Exception as exc:  # a combination FA4 refuses is a result
        entry["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
    log(f"  {label}: {json.dumps(entry)}")
    return entry


def one(name, D, log):
    from flash_attn.cute import interface

    problem, model, init, (q, k, v), shape = build(name, D, "cuda")
    score_mod, mask_mod, _ = init
    reference = model(q[:1], k[:1], v[:1])
    tol = 1e-2
    compiled = compile_mods(score_mod, mask_mod)
    mod = import_source(render(compiled, Config(backend="fa4")), f"diff_{name}_{D}")
    with torch.device("cuda"):
        ours = mod.ModelNew(*init)
    flex = flex_baseline(
        score_mod, mask_mod, dict(init[2]), torch.device("cuda"), kernel_options={"BACKEND": "FLASH"}
    )
    row = {"variant": name, "D": D, "shape": shape}
    row["ours_module"] = measure(
        "ours module", lambda: ours(q, k, v), lambda: ours(q, k, v), reference, tol, log
    )
    row["flex_flash"] = measure(
        "flex FLASH", lambda: flex(q, k, v), lambda: flex(q, k, v), reference, tol, log
    )
    kw_o = spy_call(mod, lambda: ours(q, k, v))  # the module binds FA4's entry point
    kw_f = spy_call(interface, lambda: flex(q, k, v))
    row["ours_kwargs"] = sorted(k for k, val in kw_o.items() if val is not None)
    row["flex_kwargs"] = sorted(k for k, val in kw_f.items() if val is not None)
    row["ours_blocks"], row["flex_blocks"] = plan_blocks(kw_o), plan_blocks(kw_f)
    log(f"  blocks ours {row['ours_blocks']} flex {row['flex_blocks']}")
    log(f"  kwargs ours {row['ours_kwargs']} flex {row['flex_kwargs']}")
    combos = {}
    for hooks_from, hooks_kw in (("ours", kw_o), ("flex", kw_f)):
        for plan_from, plan_kw in (("ours", kw_o), ("flex", kw_f)):
            kw = {key: val for key, val in hooks_kw.items() if key not in PLAN}
            kw.update({key: val for key, val in plan_kw.items() if key in PLAN})
            kw.pop("return_lse", None), kw.pop("lse", None)
            out = torch.empty(q.shape[0], q.shape[2], q.shape[1], D, dtype=q.dtype, device=q.device)
            kw["out"] = out

            def call(kw=kw):
                interface._flash_attn_fwd(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), **kw)

            label = f"hooks {hooks_from} + plan {plan_from}"
            combos[label] = measure(label, call, lambda out=out: out.transpose(1, 2), reference, tol, log)
    row["combinations"] = combos
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--variants", nargs="*", default=["document"])
    ap.add_argument("--dims", nargs="*", type=int, default=[128])
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    card = torch.cuda.get_device_name().replace(" ", "-")
    rows = []

    def log(text):
        print(text, flush=True)

    for name in args.variants:
        for D in args.dims:
            log(f"{name} D={D}")
            try:
                rows.append(one(name, D, log))
            except Exception as exc:  # one variant's failure is a result
                log(f"{name} D={D}: {type(exc).__name__}: {str(exc)[:400]}")
    (out / f"fa4-flash-diff-{card}.json").write_text(json.dumps(rows, indent=1, default=str))


if __name__ == "__main__":
    main()
