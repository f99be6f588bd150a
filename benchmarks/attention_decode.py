"""Decode-shaped attention: the compiler's split-KV kernel vs FlexAttention and cuDNN, one GPU.

B=8 sequences, Hq=32 query heads on Hkv=8 KV heads, Skv=32768 cached keys, D=128, bf16, Sq = 1
(decoding) and 16 (speculative decoding), the query rows at the end of the cache. Every kernel
is first checked against the fp32 reference (batch 0), then timed with triton.testing.do_bench
(median, L2 flushed before every call), and again as CUDA-graph replays (L2 flushed, no host
work in the figure: a kernel of a few tens of µs is otherwise timed at the host's launch speed). Peers: FlexAttention (compiled, Triton backend), its FLASH
backend where it imports, cuDNN SDPA where SDPA can express the variant. Also the wrapper
overhead: wall time per call of 1000 back-to-back calls vs do_bench's kernel time, for a decode
and a prefill shape. Work runs most-important first and stops starting new work at --deadline;
the JSON is rewritten after every step, so a cut-short run still leaves its numbers.

    python benchmarks/attention_decode.py --deadline 100 --out docs/benchmarks     # GPU, ~2 min
    python benchmarks/attention_decode.py --smoke --out /tmp/decode                # interpreter, tiny
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

SMOKE = "--smoke" in sys.argv
if SMOKE:
    os.environ["TRITON_INTERPRET"] = "1"  # must precede the first import of triton
os.environ.setdefault("TRITON_CACHE_DIR", os.path.join(tempfile.gettempdir(), "ks-triton-cache"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402
import triton  # noqa: E402

from kernelscale.problems.attention.baselines import raise_dynamo_limits, sdpa_baseline  # noqa: E402
from kernelscale.problems.attention.blockmask import mask_dependence  # noqa: E402
from kernelscale.problems.attention.problem import suite_dir  # noqa: E402
from kernelscale.problems.attention.reference import attention_reference  # noqa: E402
from kernelscale.problems.attention.variant import load_variant_module, resolve_mods  # noqa: E402
from kernelscale.problems.module import import_source  # noqa: E402
from kernelscale.propose.compiler.generate import compile_mods, render  # noqa: E402
from kernelscale.propose.compiler.proposer import CompilerProposer  # noqa: E402
from kernelscale.propose.compiler.space import Features, is_decode_shape  # noqa: E402

VARIANTS = ("full", "causal", "sliding_window", "alibi", "softcap", "relative_positional", "document")
SQS = (1, 16)
GPU_SHAPE = {"B": 8, "Hq": 32, "Hkv": 8, "Skv": 32768, "D": 128, "dtype": "bfloat16"}
SMOKE_SHAPE = {"B": 1, "Hq": 4, "Hkv": 1, "Skv": 260, "D": 16, "dtype": "bfloat16"}
PREFILL = ("causal", {"B": 4, "Hq": 16, "Hkv": 16, "Sq": 4096, "Skv": 4096, "D": 128, "dtype": "bfloat16"})
SMOKE_PREFILL = ("causal", {"B": 1, "Hq": 1, "Hkv": 1, "Sq": 32, "Skv": 32, "D": 16, "dtype": "bfloat16"})
TOL = 1e-2  # bf16 output vs the fp32 reference


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--deadline", type=float, default=100.0, help="seconds; no new work starts after this")
    ap.add_argument("--out", default="benchmarks/results", help="folder for attention-decode-<card>.json")
    ap.add_argument(
        "--configs", type=int, default=3, help="compiler configs tried at Sq=1 (the first at every Sq)"
    )
    ap.add_argument("--calls", type=int, default=1000, help="back-to-back calls for the wrapper overhead")
    ap.add_argument("--smoke", action="store_true", help="Triton interpreter on the CPU at a tiny shape")
    return ap.parse_args()


def timer(fn, device):
    """do_bench median (ms; L2 flushed before every call); on the CPU one interpreted call."""
    if device != "cuda":
        start = time.perf_counter()
        fn()
        return (time.perf_counter() - start) * 1e3
    return triton.testing.do_bench(fn, warmup=5, rep=25, return_mode="median")


FLUSH_BYTES = 256 << 20  # larger than any card's L2


def graph_timer(fn, device, reps=50):
    """Median ms of one CUDA-graph replay of `fn`, L2 flushed before each: the GPU's time with
    no host work in it, as a serving engine that captures its decode step sees it. do_bench's
    figure for a kernel of a few tens of µs is the host's launch time instead (the GPU waits).
    None where `fn` cannot be captured."""
    if device != "cuda":
        return None
    try:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            fn()
            fn()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            fn()
    except Exception as exc:  # noqa: BLE001 - reported as not capturable, never fatal
        print(f"  not capturable in a CUDA graph: {type(exc).__name__}: {str(exc)[:120]}", flush=True)
        torch.cuda.synchronize()
        return None
    flush = torch.empty(FLUSH_BYTES, dtype=torch.int8, device=device)
    pairs = [
        (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(reps)
    ]
    graph.replay()
    for start, end in pairs:
        flush.zero_()  # the replay is queued while this runs, so the GPU never waits on the host
        start.record()
        graph.replay()
        end.record()
    torch.cuda.synchronize()
    return statistics.median(start.elapsed_time(end) for start, end in pairs)


def check(out, reference):
    """(max abs error on batch 0, within tolerance and finite)."""
    a, b = out[:1].float(), reference.float()
    return (a - b).abs().max().item(), bool(torch.allclose(a, b, atol=TOL, rtol=TOL)) and bool(
        torch.isfinite(a).all()
    )


class Case:
    """One variant at one Sq: its mods, shared inputs, the reference and a results row."""

    def __init__(self, name, shape, inputs, device):
        self.name, self.shape, self.device = name, shape, device
        path = suite_dir() / f"{name}.py"
        with torch.device(device):
            torch.manual_seed(0)
            self.score_mod, self.mask_mod = resolve_mods(load_variant_module(path), shape, device, path)
        self.q, self.k, self.v = inputs
        self.reference = attention_reference(
            self.q[:1], self.k[:1], self.v[:1], self.score_mod, self.mask_mod
        )
        kv_bytes = 2 * self.k.numel() * self.k.element_size()
        self.row = {"variant": name, "Sq": shape["Sq"], "shape": shape, "kv_bytes": kv_bytes, "ours": []}
        self.compiled = compile_mods(self.score_mod, self.mask_mod)

    def configs(self):
        features = Features(
            **{**self.compiled.features.__dict__, "D": self.shape["D"], "decode": is_decode_shape(self.shape)}
        )
        return CompilerProposer(device=self.device).plan(features, None)

    def model(self, config):
        module = import_source(render(self.compiled, config), f"decode_{self.name}_{self.shape['Sq']}")
        with torch.device(self.device):
            return module.ModelNew(self.score_mod, self.mask_mod, {**self.shape, "device": self.device})

    def ours(self, index):
        config = self.configs()[index]
        entry = {"config": config.as_dict()}
        model = self.model(config)
        for _ in range(3):  # the first call compiles and builds the launch plan: check a later one
            out = model(self.q, self.k, self.v)
        entry["max_abs_err"], entry["ok"] = check(out, self.reference)
        if entry["ok"]:
            entry["ms"] = timer(lambda: model(self.q, self.k, self.v), self.device)
            entry["gbps"] = self.row["kv_bytes"] / entry["ms"] / 1e6
            entry["graph_ms"] = graph_timer(lambda: model(self.q, self.k, self.v), self.device)
        launches = getattr(model, "launches", {}).values()  # the decode module keeps its launch plans
        entry["splits"] = sorted({launch.splits for launch in launches if hasattr(launch, "splits")})
        self.row["ours"].append(entry)
        timed = [e for e in self.row["ours"] if "ms" in e]
        if timed:
            best = min(timed, key=lambda e: e["ms"])
            self.row.update(ours_ms=best["ms"], ours_gbps=best["gbps"], best_config=best["config"])
            graphed = [e["graph_ms"] for e in timed if e.get("graph_ms")]
            if graphed:
                self.row["ours_graph_ms"] = min(graphed)
        return entry.get("ms", "incorrect")

    def peer(self, name, make):
        fn = make()
        if fn is None:
            self.row[f"{name}_ms"] = None
            return "not defined here"
        fn(self.q, self.k, self.v)
        err, ok = check(fn(self.q, self.k, self.v), self.reference)
        self.row[f"{name}_max_abs_err"] = err
        if not ok:
            self.row[f"{name}_error"] = "does not match the reference"
            return "incorrect"
        self.row[f"{name}_ms"] = timer(lambda: fn(self.q, self.k, self.v), self.device)
        self.row[f"{name}_graph_ms"] = graph_timer(lambda: fn(self.q, self.k, self.v), self.device)
        return self.row[f"{name}_ms"]


def flex(case, backend=None):
    """FlexAttention compiled with its BlockMask; backend "FLASH" picks the flash-attention-4 path."""
    if case.device != "cuda":
        return None
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    s = case.shape
    block_mask = None
    if case.mask_mod is not None:
        dep_b, dep_h = mask_dependence(case.mask_mod, s["B"], s["Hq"], s["Sq"], s["Skv"], case.device)
        block_mask = create_block_mask(
            case.mask_mod,
            s["B"] if dep_b else None,
            s["Hq"] if dep_h else None,
            s["Sq"],
            s["Skv"],
            device=case.device,
        )
    compiled = torch.compile(flex_attention, dynamic=False)
    options = {"kernel_options": {"BACKEND": backend}} if backend else {}
    return lambda q, k, v: compiled(
        q, k, v, score_mod=case.score_mod, block_mask=block_mask, enable_gqa=s["Hq"] != s["Hkv"], **options
    )


def cudnn(case):
    return sdpa_baseline("sdpa_cudnn", case.score_mod, case.mask_mod, case.shape, torch.device(case.device))


def overhead(case, config_index, calls):
    """Wall time per call of `calls` back-to-back calls vs the kernel time, and the host's own
    time per call while the GPU queue still has room (what the wrapper costs on the CPU)."""
    model = case.model(case.configs()[config_index])
    fn = lambda: model(case.q, case.k, case.v)  # noqa: E731
    fn()
    sync = torch.cuda.synchronize if case.device == "cuda" else (lambda: None)
    kernel_ms = timer(fn, case.device)
    sync()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    sync()
    wall_ms = (time.perf_counter() - start) * 1e3 / calls
    host_calls = min(calls, 100)
    start = time.perf_counter()
    for _ in range(host_calls):
        fn()
    host_us = (time.perf_counter() - start) * 1e6 / host_calls
    sync()
    return {
        "variant": case.name,
        "shape": case.shape,
        "calls": calls,
        "kernel_ms": kernel_ms,
        "wall_ms_per_call": wall_ms,
        "overhead_us": (wall_ms - kernel_ms) * 1e3,
        "host_us_per_call": host_us,
    }


def make_inputs(shape, device):
    gen = torch.Generator(device=device).manual_seed(1)
    dtype = getattr(torch, shape["dtype"])
    q = torch.randn(shape["B"], shape["Hq"], shape["Sq"], shape["D"], generator=gen, device=device).to(dtype)
    k = torch.randn(shape["B"], shape["Hkv"], shape["Skv"], shape["D"], generator=gen, device=device).to(
        dtype
    )
    v = torch.randn(shape["B"], shape["Hkv"], shape["Skv"], shape["D"], generator=gen, device=device).to(
        dtype
    )
    return q, k, v


def tasks(device, args):
    """(label, function) in priority order: ours everywhere first, then the peers, then more."""
    base = SMOKE_SHAPE if SMOKE else GPU_SHAPE
    inputs = {sq: make_inputs({**base, "Sq": sq}, device) for sq in SQS}
    cases, state = {}, {"overhead": []}

    def case(name, sq):
        if (name, sq) not in cases:
            cases[(name, sq)] = Case(name, {**base, "Sq": sq}, inputs[sq], device)
        return cases[(name, sq)]

    def measure_overhead():
        pname, pshape = SMOKE_PREFILL if SMOKE else PREFILL
        calls = args.calls if device == "cuda" else 3
        state["overhead"].append({"kind": "decode", **overhead(case("full", 1), 0, calls)})
        prefill = Case(pname, pshape, make_inputs(pshape, device), device)
        state["overhead"].append({"kind": "prefill", **overhead(prefill, 0, calls)})
        return state["overhead"][-1]["overhead_us"]

    work = [(f"ours {n} Sq={sq}", lambda n=n, sq=sq: case(n, sq).ours(0)) for sq in SQS for n in VARIANTS]
    work.append(("wrapper overhead", measure_overhead))
    work += [
        (f"cudnn {n} Sq={sq}", lambda n=n, sq=sq: case(n, sq).peer("cudnn", lambda: cudnn(case(n, sq))))
        for sq in SQS
        for n in VARIANTS
    ]

    def peers(sq, label, key, backend):
        return [
            (f"{label} {n} Sq={sq}", lambda n=n: case(n, sq).peer(key, lambda: flex(case(n, sq), backend)))
            for n in VARIANTS
        ]

    # FlexAttention compiles per variant and shape (seconds each): Sq=1 first, where the bars are.
    work += peers(1, "flex", "flex", None) + peers(1, "flex FLASH", "flex_flash", "FLASH")
    work += [
        (f"ours {n} Sq=1 config {i}", lambda n=n, i=i: case(n, 1).ours(i))
        for i in range(1, args.configs)
        for n in VARIANTS
    ]
    work += peers(16, "flex", "flex", None) + peers(16, "flex FLASH", "flex_flash", "FLASH")
    return work, cases, state


def environment(device):
    env = {"torch": torch.__version__, "triton": triton.__version__, "device": device}
    if device == "cuda":
        env.update(card=torch.cuda.get_device_name(), cuda=torch.version.cuda)
    return env


def summary(rows):
    lines = [
        f"{'variant':20s} {'Sq':>3s} {'ours ms':>8s} {'GB/s':>7s} {'flex':>8s} {'FLASH':>8s} {'cudnn':>8s}"
        f" | graphs: {'ours':>8s} {'flex':>8s} {'cudnn':>8s}"
    ]
    for r in rows:

        def f(key, fmt="8.3f", r=r):
            return format(r[key], fmt) if isinstance(r.get(key), float) else f"{'-':>{fmt.split('.')[0]}}"

        lines.append(
            f"{r['variant']:20s} {r['Sq']:3d} {f('ours_ms')} {f('ours_gbps', '7.0f')} {f('flex_ms')} "
            f"{f('flex_flash_ms')} {f('cudnn_ms')} |         {f('ours_graph_ms')} {f('flex_graph_ms')} "
            f"{f('cudnn_graph_ms')}"
        )
    return "\n".join(lines)


def main():
    args = parse_args()
    device = "cpu" if SMOKE else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        sys.exit("no GPU visible: use --smoke to check the script on the CPU")
    raise_dynamo_limits()
    env = environment(device)
    out = Path(args.out) / f"attention-decode-{env.get('card', 'cpu').replace(' ', '_')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    work, cases, state = tasks(device, args)
    log, skipped, errors = (lambda msg: print(msg, flush=True)), [], []
    for label, fn in work:
        if time.monotonic() - start > args.deadline:
            skipped.append(label)
            continue
        try:
            log(f"{time.monotonic() - start:6.1f}s {label}: {fn()}")
        except Exception as exc:  # noqa: BLE001 - a peer that cannot run here is a result, not a crash
            errors.append({"task": label, "error": f"{type(exc).__name__}: {str(exc)[:300]}"})
            log(f"{time.monotonic() - start:6.1f}s {label}: {errors[-1]['error']}")
        rows = [c.row for c in cases.values()]
        out.write_text(
            json.dumps(
                {
                    "environment": env,
                    "interpreted": SMOKE,
                    "deadline_s": args.deadline,
                    "gbps_means": "K and V bytes of the whole cache / ours_ms",
                    "rows": rows,
                    "overhead": state["overhead"],
                    "errors": errors,
                    "skipped": skipped,
                },
                indent=1,
            )
        )
    log(summary([c.row for c in cases.values()]))
    log(f"skipped after the deadline: {len(skipped)} tasks" if skipped else "nothing skipped")
    log(f"wrote {out} in {time.monotonic() - start:.0f} s")


if __name__ == "__main__":
    main()
