"""Host time per call of the Gluon backend's module against the Triton backend's (H200).

For one variant and shape: do_bench (kernel time, L2 flushed), the wall time of a call followed
by a synchronize (what a per-call protocol such as the verifier's sees), and the host time until
forward returns (no synchronize). Writes JSON to --out.

    python benchmarks/gluon_host.py --variant relative_positional --out host.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402
import triton  # noqa: E402

from kernelscale.problems.attention.variant import load_variant_module, resolve_mods  # noqa: E402
from kernelscale.problems.module import import_source  # noqa: E402
from kernelscale.propose.compiler.generate import generate  # noqa: E402
from kernelscale.propose.compiler.space import Config  # noqa: E402

CONFIGS = {
    "triton": Config(block_n=64, num_warps=4, num_stages=2),
    "gluon": Config(backend="gluon", block_n=128, num_warps=4, num_stages=2, rel_tables=False),
    "gluon8": Config(backend="gluon", block_n=128, num_warps=8, num_stages=2, rel_tables=False),
}


def measure(model, q, k, v, calls=200):
    for _ in range(10):
        model(q, k, v)
    torch.cuda.synchronize()
    kernel = triton.testing.do_bench(lambda: model(q, k, v), warmup=25, rep=100, return_mode="median")
    walls, hosts = [], []
    for _ in range(calls):
        t0 = time.perf_counter()
        model(q, k, v)
        t1 = time.perf_counter()
        torch.cuda.synchronize()
        walls.append((time.perf_counter() - t0) * 1e3)
        hosts.append((t1 - t0) * 1e3)
    walls.sort()
    hosts.sort()
    return {"do_bench_ms": kernel, "synced_call_ms": walls[calls // 2], "host_ms": hosts[calls // 2]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--variant", default="relative_positional")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    path = (
        Path(__file__).resolve().parents[1]
        / "src/kernelscale/problems/attention/suite"
        / f"{args.variant}.py"
    )
    shape = {"B": 4, "Hq": 16, "Hkv": 16, "Sq": 4096, "Skv": 4096, "D": 128}
    score_mod, mask_mod = resolve_mods(load_variant_module(str(path)), shape, "cuda", path)
    gen = torch.Generator(device="cuda").manual_seed(0)
    q, k, v = (
        torch.randn(4, 16, 4096, 128, device="cuda", generator=gen, dtype=torch.bfloat16) for _ in range(3)
    )
    rows = {"card": torch.cuda.get_device_name(), "variant": args.variant, "shape": shape}
    for name, config in CONFIGS.items():
        module = import_source(generate(score_mod, mask_mod, config), f"host_{name}")
        model = module.ModelNew(score_mod, mask_mod, {**shape, "device": "cuda"})
        rows[name] = measure(model, q, k, v)
        print(name, rows[name], flush=True)
    Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
