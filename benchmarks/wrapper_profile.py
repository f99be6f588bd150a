"""Where an exported attention module's host time per call goes (one GPU).

Builds the decode module (full and alibi: alibi adds a table kernel) at B=8, Hq=32, Hkv=8, Sq=1,
Skv=32768, D=128, bf16 and the prefill module (causal, B=4, H=16, S=4096, D=128) through the
compiler, the way benchmarks/attention_decode.py does, then times, per module:

- the whole call `model(q, k, v)`: wall time of N back-to-back calls (synchronised at the end:
  the larger of host and GPU time) and the host's own time per call, measured over HOST_CALLS
  calls started on an idle GPU queue so that the queue never fills and blocks the host;
- each kernel launch alone through Triton's launcher, `kernel[grid](*args, **options)`, with the
  arguments the module passed it (recorded on a throwaway model), and the same launch through
  the compiled kernel's own launcher (the binder skipped), where this Triton allows it;
- torch.empty of the output (and of the split buffer);
- cProfile over PROFILE_CALLS calls, top 25 functions by own time.

Writes wrapper-profile-<card>.json and .txt under --out.

    PYTHONPATH=src python3 benchmarks/wrapper_profile.py --out /tmp/wp
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import time
from pathlib import Path

if "--smoke" in sys.argv:
    os.environ["TRITON_INTERPRET"] = "1"  # must precede the first import of triton
sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402
import triton  # noqa: E402
import triton.testing  # noqa: E402
from attention_decode import GPU_SHAPE, PREFILL, SMOKE, SMOKE_PREFILL, SMOKE_SHAPE, Case, make_inputs  # noqa: E402

DEVICE = "cpu" if SMOKE else "cuda"
sync = torch.cuda.synchronize if DEVICE == "cuda" else (lambda: None)

# ~100 calls (200 launches): well inside the GPU's launch queue
HOST_CALLS = 2 if SMOKE else 100
PROFILE_CALLS = 2 if SMOKE else 200
KERNELS = ("_attn_decode", "_combine", "_attn_fwd", "_rel_table0", "_rel_table1")


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument(
        "--smoke", action="store_true", help="interpreter on the CPU, tiny shapes: the script's own check"
    )
    return ap.parse_args()


def host_and_wall(fn, calls):
    """(host µs per call from an idle queue, median of 5; wall µs per call over `calls`)."""
    fn()
    sync()
    hosts = []
    for _ in range(5):
        sync()
        start = time.perf_counter()
        for _ in range(HOST_CALLS):
            fn()
        hosts.append((time.perf_counter() - start) * 1e6 / HOST_CALLS)
    sync()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    sync()
    wall = (time.perf_counter() - start) * 1e6 / calls
    return sorted(hosts)[2], wall


class Recorder:
    """Stands in for a Triton kernel object: records the first launch's grid and arguments."""

    def __init__(self, name, kernel, seen):
        self.name, self.kernel, self.seen = name, kernel, seen

    def __getitem__(self, grid):
        def launch(*args, **kwargs):
            self.seen.setdefault(self.name, (grid, list(args), kwargs))
            return self.kernel[grid](*args, **kwargs)

        return launch

    def __getattr__(self, name):
        return getattr(self.kernel, name)


def record_launches(case, config):
    """{kernel name: (grid, args, options)} of one call, on a model of its own."""
    model = case.model(config)
    module = sys.modules[type(model).__module__]
    seen, real = {}, {}
    for name in KERNELS:
        if hasattr(module, name):
            real[name] = getattr(module, name)
            setattr(module, name, Recorder(name, real[name], seen))
    try:
        model(case.q, case.k, case.v)
    finally:
        for name, kernel in real.items():
            setattr(module, name, kernel)
    sync()
    return {name: (real[name], *launch) for name, launch in seen.items()}


def direct(compiled, grid, args):
    """The compiled kernel launched through its own launcher, or the error that stops it."""
    if DEVICE != "cuda":
        return None, "no GPU"
    try:
        g = (tuple(grid) + (1, 1))[:3]
        dev = torch.cuda.current_device()
        run, fn, packed = compiled.run, compiled.function, compiled.packed_metadata
        get_stream = triton.runtime.driver.active.get_current_stream

        def launch():
            run(g[0], g[1], g[2], get_stream(dev), fn, packed, None, None, None, *args)

        launch()
        sync()
        return launch, None
    except Exception as exc:  # the private API differs on this Triton
        return None, f"{type(exc).__name__}: {exc}"


def profile_text(fn):
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(PROFILE_CALLS):
        fn()
    prof.disable()
    sync()
    stream = io.StringIO()
    pstats.Stats(prof, stream=stream).sort_stats("tottime").print_stats(25)
    return stream.getvalue()


def measure(label, case, calls):
    config = case.configs()[0]
    launches = record_launches(case, config)
    model = case.model(config)
    row = {"label": label, "shape": case.shape, "config": config.as_dict(), "launches": {}}
    call = lambda: model(case.q, case.k, case.v)  # noqa: E731
    for _ in range(3):
        result = call()
    row["max_abs_err"] = (result[:1].float() - case.reference.float()).abs().max().item()
    module = sys.modules[type(model).__module__]
    row["direct_on"] = getattr(module, "DIRECT", {}).get("on")  # absent before the direct launch
    plans = getattr(model, "launches", {}).values()
    row["direct_launches"] = [
        name
        for plan in plans
        for name in ("main", "combine")
        if getattr(getattr(plan, name, None), "direct", None)
    ]
    row["model_host_us"], row["model_wall_us"] = host_and_wall(call, calls)
    if DEVICE == "cuda":
        row["kernel_ms"] = triton.testing.do_bench(call, warmup=5, rep=25, return_mode="median")
    else:
        row["kernel_ms"] = float("nan")
    for name, (kernel, grid, args, options) in launches.items():
        entry = {"grid": list(grid), "n_args": len(args), "options": options}
        launch = lambda kernel=kernel, grid=grid, args=args, options=options: kernel[grid](*args, **options)  # noqa: E731
        compiled = launch()
        entry["host_us"], entry["wall_us"] = host_and_wall(launch, calls)
        fast, error = direct(compiled, grid, args)
        entry["direct_error"] = error
        if fast is not None:
            entry["direct_host_us"], entry["direct_wall_us"] = host_and_wall(fast, calls)
        row["launches"][name] = entry
    out = launches.get("_attn_decode", launches.get("_attn_fwd"))[2][3]
    empty = lambda: torch.empty(out.shape, dtype=out.dtype, device=out.device)  # noqa: E731
    row["empty_out_host_us"], _ = host_and_wall(empty, calls)
    if "_combine" in launches:
        part = launches["_combine"][2][0]
        empty_part = lambda: torch.empty(part.numel(), dtype=part.dtype, device=part.device)  # noqa: E731
        row["empty_part_host_us"], _ = host_and_wall(empty_part, calls)
    row["profile"] = profile_text(call)
    return row


def main():
    args = parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    card = torch.cuda.get_device_name().replace(" ", "_") if DEVICE == "cuda" else "cpu"
    result = {"card": card, "torch": torch.__version__, "triton": triton.__version__, "calls": args.calls}
    decode = {**(SMOKE_SHAPE if SMOKE else GPU_SHAPE), "Sq": 1}
    inputs = make_inputs(decode, DEVICE)
    pname, pshape = SMOKE_PREFILL if SMOKE else PREFILL
    rows = []
    for label, name, shape, ins in (
        ("decode full", "full", decode, inputs),
        ("decode alibi", "alibi", decode, inputs),
        (f"prefill {pname}", pname, pshape, make_inputs(pshape, DEVICE)),
    ):
        rows.append(measure(label, Case(name, shape, ins, DEVICE), args.calls))
        result["rows"] = rows
        (out / f"wrapper-profile-{card}.json").write_text(
            json.dumps(
                {**result, "rows": [{k: v for k, v in r.items() if k != "profile"} for r in rows]}, indent=1
            )
        )
    text = [f"{card} torch {torch.__version__} triton {triton.__version__}"]
    for r in rows:
        text.append(
            f"\n== {r['label']}: host {r['model_host_us']:.1f} us/call, wall {r['model_wall_us']:.1f} "
            f"us/call, kernel {r['kernel_ms'] * 1e3:.1f} us"
        )
        for name, e in r["launches"].items():
            text.append(
                f"  {name}: {e['n_args']} args, kernel[grid] host {e['host_us']:.1f} us, direct "
                f"{e.get('direct_host_us', float('nan')):.1f} us {e['direct_error'] or ''}"
            )
        text.append(
            f"  torch.empty out {r['empty_out_host_us']:.1f} us, part {r.get('empty_part_host_us', 0):.1f} us"
        )
        text.append(
            f"  max abs err {r['max_abs_err']:.2e}, DIRECT {r['direct_on']}, direct {r['direct_launches']}"
        )
        text.append(r["profile"])
    (out / f"wrapper-profile-{card}.txt").write_text("\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    main()
