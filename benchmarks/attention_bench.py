"""Attention compiler vs FlexAttention and SDPA, timed in one process on one GPU.

For each built-in variant and head dim: build the compiler's kernels for a few configs of each
backend (Triton; FlashAttention-4's CuTe DSL kernel with generated hooks where flash_attn.cute
imports; the warp-specialised Gluon kernel on Hopper GPUs), check each against the fp32 reference (batch 0 of the same inputs), time them,
FlexAttention (compiled, with its BlockMask; its Triton backend and, where FA4 imports, its FLASH
backend) and SDPA cuDNN / flash where defined, with `triton.testing.do_bench` (median, L2 flushed
before every call), and write a JSON plus a table.

    python benchmarks/attention_bench.py --out results.json              # GPU, B=4 H=16 S=4096
    python benchmarks/attention_bench.py --backends triton fa4 --configs 1 --out backends.json
    python benchmarks/attention_bench.py --backends triton gluon --configs 1 --gluon-configs 3
    python benchmarks/attention_bench.py --cpu-smoke                     # interpreter, tiny shape

Results are written after every variant, so a run cut short still leaves its numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from dataclasses import replace
from pathlib import Path

SMOKE = "--cpu-smoke" in sys.argv
if SMOKE:
    os.environ["TRITON_INTERPRET"] = "1"  # must precede the first import of triton
# FlexAttention moves Triton's cache unless it is set before torch/triton are imported.
os.environ.setdefault("TRITON_CACHE_DIR", os.path.join(tempfile.gettempdir(), "ks-triton-cache"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402
import triton  # noqa: E402

from kernelscale.problems.attention.baselines import (  # noqa: E402
    flex_baseline,
    raise_dynamo_limits,
    sdpa_baseline,
)
from kernelscale.problems.attention.problem import builtin_names, load_attention_problem  # noqa: E402
from kernelscale.problems.module import apply_sizes, import_source  # noqa: E402
from kernelscale.propose.compiler.generate import compile_mods, render  # noqa: E402
from kernelscale.propose.compiler.generate_fa4 import fa4_available  # noqa: E402
from kernelscale.propose.compiler.generate_gluon import gluon_available  # noqa: E402
from kernelscale.propose.compiler.proposer import CompilerProposer  # noqa: E402
from kernelscale.propose.compiler.space import Features, fa4_configs, gluon_configs  # noqa: E402

SMOKE_SHAPE = {"B": 1, "Sq": 128, "Skv": 128}
D64_VARIANTS = ("full", "causal", "document", "relative_positional", "alibi", "softcap", "sliding_window")
TARGETS = {
    "full": 1.15,
    "causal": 1.2,
    "relative_positional": 1.2,
    "alibi": 1.25,
    "softcap": 2.1,
    "document": 1.1,
    "sliding_window": 1.15,
    "natten2d": 1.5,
}


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", nargs="*", default=None, help="default: the whole built-in suite")
    ap.add_argument("--dims", nargs="*", type=int, default=[128, 64])
    ap.add_argument("--configs", type=int, default=3, help="Triton compiler configs per variant and D")
    ap.add_argument("--backends", nargs="*", default=["triton"], choices=["triton", "fa4", "gluon"])
    ap.add_argument(
        "--fa4-configs", type=int, default=1, help="FA4 configs: its default, then its knobs one by one"
    )
    ap.add_argument("--gluon-configs", type=int, default=1, help="Gluon configs: its first, then its knobs")
    ap.add_argument("--peers", nargs="*", default=["flex", "flex_flash", "sdpa_cudnn", "sdpa_flash"])
    ap.add_argument(
        "--out", default=None, help="JSON path (default: benchmarks/results/attention-<card>.json)"
    )
    ap.add_argument("--deadline-s", type=float, default=480.0, help="stop starting new work after this")
    ap.add_argument("--errors", default=None, help="folder for the full traceback of each failed kernel")
    ap.add_argument("--cpu-smoke", action="store_true", help="interpreter at a tiny shape: proves the script")
    return ap.parse_args()


def build(name: str, D: int, device: str):
    """(problem module, reference model, init inputs, inputs) at the GPU shape (or the smoke one)."""
    ref = name if name.endswith(".py") else f"attention/{name}"  # a variant file outside the suite
    problem = load_attention_problem(f"{ref}:D={D}")
    module = import_source(problem.source, f"bench_{Path(name).stem}_{D}")
    shape = dict(problem.gpu_sizes["SHAPE"])
    if SMOKE:
        shape = {**problem.cpu_sizes["SHAPE"], **SMOKE_SHAPE, "D": min(D, 64)}
        if name.startswith("natten"):
            shape.update(Sq=144, Skv=144)  # a 12x12 image
    apply_sizes(module, {"SHAPE": shape})
    with torch.device(device):
        torch.manual_seed(0)
        init = module.get_init_inputs()
        torch.manual_seed(1)
        inputs = module.get_inputs()
    return problem, module.Model(*init), init, inputs, shape


def configs_for(name, compiled, D, count, device, backends=("triton",), fa4_count=1, gluon_count=1):
    chosen = []
    if "triton" in backends:
        proposer = CompilerProposer(device=device, fa4=False, gluon=False)  # the others are added below
        base = compiled.features
        features = Features(**{**base.__dict__, "D": D})
        chosen = proposer.plan(features, None)[:count]
        if features.tables and all(c.rel_tables for c in chosen) and count > 1:  # tables vs none
            chosen.append(replace(chosen[0], rel_tables=False))
        if features.bias_prune and not any(c.bias_prune for c in chosen) and count > 1:  # pruned vs not
            chosen.append(replace(chosen[0], bias_prune=True))
    if "fa4" in backends and fa4_available():
        features = Features(**{**compiled.features.__dict__, "D": D})
        chosen += fa4_configs(features)[:fa4_count]
    if "gluon" in backends and gluon_available():
        features = Features(**{**compiled.features.__dict__, "D": D})
        chosen += gluon_configs(features)[:gluon_count]
    return chosen


def timer(fn, device):
    if device != "cuda":
        start = time.perf_counter()
        fn()
        return (time.perf_counter() - start) * 1e3  # interpreted: not a performance number
    return triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median")


def check(out, reference, tol):
    """Max abs error and allclose on batch 0 (the reference runs on that slice to save time)."""
    a, b = out[:1].float(), reference.float()
    err = (a - b).abs().max().item()
    return err, bool(torch.allclose(a, b, atol=tol, rtol=tol)) and bool(torch.isfinite(a).all())


def bench_variant(name, D, device, args, log):
    problem, model, init, (q, k, v), shape = build(name, D, device)
    score_mod, mask_mod, _ = init
    reference = model(q[:1], k[:1], v[:1])
    tol = 1e-2 if q.dtype != torch.float32 else 1e-4
    compiled = compile_mods(score_mod, mask_mod)
    row = {"variant": name, "D": D, "shape": shape, "flops": problem.flops, "configs": []}
    for config in configs_for(
        name, compiled, D, args.configs, device, args.backends, args.fa4_configs, args.gluon_configs
    ):
        entry = {"config": config.as_dict()}
        try:
            mod = import_source(render(compiled, config), f"cand_{Path(name).stem}_{D}")
            with torch.device(device):
                kernel = mod.ModelNew(*init)
            out = kernel(q, k, v)
            entry["max_abs_err"], entry["ok"] = check(out, reference, tol)
            if entry["ok"]:
                entry["ms"] = timer(lambda kernel=kernel: kernel(q, k, v), device)
        except Exception as exc:  # a config that fails to build or run is a result, not a crash
            entry["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
            if args.errors:
                Path(args.errors).mkdir(parents=True, exist_ok=True)
                tag = f"{Path(name).stem}-{D}-{config.backend}.txt"
                (Path(args.errors) / tag).write_text(traceback.format_exc())
        row["configs"].append(entry)
        log(f"  {name} D={D} {config.as_dict()} -> {entry.get('ms', entry.get('error', 'incorrect'))}")
    timed = [c for c in row["configs"] if "ms" in c]
    if timed:
        best = min(timed, key=lambda c: c["ms"])
        row.update(ours_ms=best["ms"], best_config=best["config"])
    for backend in ("triton", "fa4", "gluon"):
        mine = [c["ms"] for c in timed if c["config"].get("backend", "triton") == backend]
        if mine:
            row[f"ours_{backend}_ms"] = min(mine)
    row.update(baselines(score_mod, mask_mod, dict(init[2]), device, q, k, v, reference, tol, args.peers))
    peers = [row[f"{p}_ms"] for p in ("flex", "flex_flash", "sdpa_cudnn", "sdpa_flash") if row.get(f"{p}_ms")]
    if peers and row.get("ours_ms"):
        row["best_peer_ms"] = min(peers)
        row["speedup_best_peer"] = row["best_peer_ms"] / row["ours_ms"]
    for base in ("flex", "flex_flash", "sdpa_cudnn", "sdpa_flash"):
        if row.get("ours_ms") and row.get(f"{base}_ms"):
            row[f"speedup_{base}"] = row[f"{base}_ms"] / row["ours_ms"]
    if row.get("ours_ms") and device == "cuda":
        row["ours_tflops"] = problem.flops / row["ours_ms"] / 1e9
    return row


def baselines(
    score_mod, mask_mod, shape, device, q, k, v, reference, tol, peers=("flex", "sdpa_cudnn", "sdpa_flash")
):
    """Flex and SDPA times (None where not expressible or not on this device), each checked too."""
    out = {}
    makers = {"flex": lambda: flex_baseline(score_mod, mask_mod, shape, torch.device(device))}
    if fa4_available():  # FlexAttention's FLASH backend runs FA4's kernels
        makers["flex_flash"] = lambda: flex_baseline(
            score_mod, mask_mod, shape, torch.device(device), kernel_options={"BACKEND": "FLASH"}
        )
    for name in ("sdpa_cudnn", "sdpa_flash"):
        makers[name] = lambda n=name: sdpa_baseline(n, score_mod, mask_mod, shape, torch.device(device))
    for name, make in makers.items():
        if name not in peers:
            continue
        try:
            fn = make()
            if fn is None:
                continue
            err, ok = check(fn(q, k, v), reference, tol)
            out[f"{name}_max_abs_err"] = err
            out[f"{name}_ms"] = timer(lambda fn=fn: fn(q, k, v), device)
        except Exception as exc:
            out[f"{name}_error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
    return out


def environment(device):
    env = {"torch": torch.__version__, "triton": triton.__version__, "device": device}
    if device == "cuda":
        env["card"] = torch.cuda.get_device_name()
        env["cuda"] = torch.version.cuda
    return env


def backend_table(rows):
    """Per variant and D: each backend of ours, each peer, best ours against the best peer."""
    cols = (
        "ours_triton_ms",
        "ours_fa4_ms",
        "ours_gluon_ms",
        "flex_ms",
        "flex_flash_ms",
        "sdpa_cudnn_ms",
        "sdpa_flash_ms",
    )
    head = f"{'variant':20s} {'D':>4s} " + " ".join(f"{c[:-3]:>13s}" for c in cols) + f" {'x best peer':>11s}"
    lines = [head, "-" * len(head)]
    for r in rows:
        cells = " ".join(f"{r[c]:13.3f}" if r.get(c) else f"{'-':>13s}" for c in cols)
        x = f"{r['speedup_best_peer']:11.2f}" if r.get("speedup_best_peer") else f"{'-':>11s}"
        lines.append(f"{r['variant']:20s} {r['D']:4d} {cells} {x}")
    return "\n".join(lines)


def table(rows):
    head = f"{'variant':22s} {'D':>4s} {'ours ms':>9s} {'flex ms':>9s} {'x flex':>7s} {'target':>6s} {'cudnn ms':>9s} {'x cudnn':>7s}  best config"
    lines = [head, "-" * len(head)]
    for r in rows:

        def f(key, fmt="9.3f", r=r):
            return (
                format(r[key], fmt)
                if r.get(key) is not None
                else " " * int(fmt.split(".")[0])
                if False
                else f"{'-':>{fmt.split('.')[0]}}"
            )

        cfg = r.get("best_config") or {}
        short = (
            f"{cfg.get('block_m')}x{cfg.get('block_n')} w{cfg.get('num_warps')} s{cfg.get('num_stages')}"
            if cfg
            else "-"
        )
        short += "".join(f" {k}" for k in ("fast_tanh", "fixed_max") if cfg.get(k))
        target = TARGETS.get(r["variant"]) if r["D"] == 128 else None
        lines.append(
            f"{r['variant']:22s} {r['D']:4d} {f('ours_ms')} {f('flex_ms')} {f('speedup_flex', '7.2f')} "
            f"{format(target, '6.2f') if target else '     -'} {f('sdpa_cudnn_ms')} {f('speedup_sdpa_cudnn', '7.2f')}  {short}"
        )
    return "\n".join(lines)


def main():
    args = parse_args()
    device = "cpu" if SMOKE else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        sys.exit("no GPU visible: use --cpu-smoke to check the script on the CPU")
    raise_dynamo_limits()
    env = environment(device)
    card = env.get("card", "cpu").replace(" ", "_")
    out = Path(args.out or Path(__file__).parent / "results" / f"attention-{card}.json")
    names = args.variants or builtin_names()
    plan = [(n, d) for d in args.dims for n in names if d == 128 or n in D64_VARIANTS or args.variants]
    start, rows = time.monotonic(), []
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    for name, D in plan:
        if time.monotonic() - start > args.deadline_s:
            log(f"deadline: skipping {name} D={D}")
            rows.append({"variant": name, "D": D, "skipped": "deadline"})
            continue
        try:
            rows.append(bench_variant(name, D, device, args, log))
        except Exception as exc:
            rows.append({"variant": name, "D": D, "error": f"{type(exc).__name__}: {str(exc)[:300]}"})
            log(f"{name} D={D} failed: {rows[-1]['error']}")
        out.write_text(json.dumps({"environment": env, "interpreted": SMOKE, "rows": rows}, indent=1))
    done = [r for r in rows if "skipped" not in r and "error" not in r]
    log(table(done))
    log(backend_table(done))
    log(f"wrote {out} in {time.monotonic() - start:.0f} s")


if __name__ == "__main__":
    main()
