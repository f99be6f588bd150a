"""Where the FA4 backend's host time per call goes, next to the Triton backend and cuDNN (one GPU).

The verifier times a call from an idle GPU (synchronize, start event, call, synchronize), so a
module's host time counts in full. This script builds, for a few prefill variants at B=4, H=16,
S=4096, D=128, bf16, the compiler's first Triton configuration and its FA4 module, and measures:

- `verifier_ms`: the verifier's protocol (L2 flushed, synchronized, an event pair per call);
- `do_bench_ms`: triton.testing.do_bench (the L2 flush ahead of each call hides host time);
- `host_us`: wall time for the call to return, started on an idle GPU queue;
- for FA4: the host time of `_flash_attn_fwd` alone, and of the compiled kernel called directly
  with the arguments the interface passed it (recorded once through a wrapper around FA4's
  compile cache; allowed here, in a benchmark, and refused by the screen in a candidate), with a
  bitwise check that the direct call writes what the interface call wrote;
- the FA4 module with its own direct call (config fa4_direct, the default): the same
  figures, and a bitwise check against the module that calls the entry point every time;
- cProfile of the FA4 module's forward, top 20 functions by cumulative time;
- the verifier runner's conditions one at a time: the aten ops per forward and the time with its
  op recorder on, then the audit events per forward and the time with an audit hook installed.

Writes fa4-host-<card>.json and .txt under --out.

    PYTHONPATH=src python3 benchmarks/fa4_host_profile.py --out /tmp/fa4host
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import triton.testing  # noqa: E402
from attention_bench import build  # noqa: E402

from kernelscale.problems.module import import_source  # noqa: E402
from kernelscale.propose.compiler.generate import compile_mods, render  # noqa: E402
from kernelscale.propose.compiler.proposer import CompilerProposer  # noqa: E402
from kernelscale.propose.compiler.space import Config  # noqa: E402
from kernelscale.verify.op_policy import OpRecorder, recording  # noqa: E402

VARIANTS = ("causal", "full", "alibi", "prefix_lm")


def verifier_ms(fn, calls=30):
    flush = torch.empty(256 * 2**20 // 4, dtype=torch.int32, device="cuda")
    times = []
    for _ in range(calls):
        flush.zero_()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        fn()
        torch.cuda.synchronize()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def host_us(fn, calls=50):
    times = []
    for _ in range(calls):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e6)
    torch.cuda.synchronize()
    return statistics.median(times)


class _Recorder:
    """Stands in for FA4's compile cache during one call: hands out the compiled function
    wrapped so that its arguments are kept."""

    def __init__(self, real):
        self.real, self.calls = real, []

    def __contains__(self, key):
        return key in self.real

    def __setitem__(self, key, fn):
        self.real[key] = fn

    def __getitem__(self, key):
        fn = self.real[key]

        def record(*args, **kwargs):
            self.calls.append((fn, args, kwargs))
            return fn(*args, **kwargs)

        return record


def describe(value):
    if isinstance(value, torch.Tensor):
        return f"tensor{tuple(value.shape)}:{value.dtype}:{value.data_ptr():x}"
    if isinstance(value, (tuple, list)):
        return type(value).__name__ + "(" + ", ".join(describe(v) for v in value) + ")"
    return repr(value)[:80]


def fa4_direct(model, q, k, v, report):
    """Record the compiled call behind the module's forward, then call it directly."""
    from flash_attn.cute import interface

    real = interface._flash_attn_fwd.compile_cache
    recorder = interface._flash_attn_fwd.compile_cache = _Recorder(real)
    try:
        out = model(q, k, v)
        torch.cuda.synchronize()
    finally:
        interface._flash_attn_fwd.compile_cache = real
    report["compiled_calls"] = len(recorder.calls)
    if len(recorder.calls) != 1:
        return
    fn, args, kwargs = recorder.calls[0]
    report["args"] = [describe(a) for a in args]
    report["kwargs"] = sorted(kwargs)
    direct_out = torch.full_like(out, float("nan"))
    mapping = {out.data_ptr(): direct_out.transpose(1, 2)}
    call = [mapping.get(a.data_ptr(), a) if isinstance(a, torch.Tensor) else a for a in args]
    fn(*call, **kwargs)
    torch.cuda.synchronize()
    report["direct_bitwise_equal"] = bool(torch.equal(direct_out, out))
    report["direct_host_us"] = host_us(lambda: fn(*call, **kwargs))
    report["direct_verifier_ms"] = verifier_ms(lambda: fn(*call, **kwargs))


def profile_top(fn, calls=200):
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(calls):
        fn()
    prof.disable()
    torch.cuda.synchronize()
    text = io.StringIO()
    pstats.Stats(prof, stream=text).sort_stats("cumulative").print_stats(20)
    return text.getvalue()


class _CountingRecorder(OpRecorder):
    """The verifier's op recorder, also counting the ops it saw."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return super().__torch_dispatch__(func, types, args, kwargs)


def recorded(call):
    def run():
        with torch.no_grad(), recording():
            call()

    return run


AUDIT = {"on": False, "events": 0, "names": {}}


def _count_audit(event, args):
    if AUDIT["on"]:
        AUDIT["events"] += 1
        AUDIT["names"][event] = AUDIT["names"].get(event, 0) + 1


def runner_conditions(kernels, q, k, v, log):
    """What the verifier's runner adds around a forward, one condition at a time: its op
    recorder (a TorchDispatchMode, every aten op through Python) and an audit hook (every audit
    event through a Python function; installed last, since it cannot be removed)."""
    rows = {}
    for label, kernel in kernels.items():
        call = lambda kernel=kernel: kernel(q, k, v)  # noqa: E731
        counter = _CountingRecorder()
        with torch.no_grad(), counter:
            call()
        torch.cuda.synchronize()
        rows[label] = {
            "aten_ops_per_call": counter.count,
            "ops": sorted(counter.ops),
            "plain_ms": verifier_ms(call),
            "recorded_ms": verifier_ms(recorded(call)),
            "recorded_host_us": host_us(recorded(call)),
        }
    sys.addaudithook(_count_audit)
    for label, kernel in kernels.items():
        call = lambda kernel=kernel: kernel(q, k, v)  # noqa: E731
        AUDIT.update(on=True, events=0, names={})
        call()
        AUDIT["on"] = False
        torch.cuda.synchronize()
        rows[label]["audit_events_per_call"] = AUDIT["events"]
        rows[label]["audit_names"] = dict(AUDIT["names"])
        rows[label]["audited_recorded_ms"] = verifier_ms(recorded(call))
        rows[label]["audited_plain_ms"] = verifier_ms(call)
    for label, row in rows.items():
        log(f"runner conditions {label}: {json.dumps(row)}")
    return rows


def one_variant(name, log, kernels):
    problem, model, init, (q, k, v), shape = build(name, 128, "cuda")
    score_mod, mask_mod, _ = init
    compiled = compile_mods(score_mod, mask_mod)
    triton_config = CompilerProposer(device="cuda", fa4=False).plan(compiled.features, None)[0]
    row = {"variant": name, "shape": shape}
    configs = (
        ("triton", triton_config),
        # the direct module first: it takes its compiled kernel from what its own first call
        # added to FA4's cache, and the entry-point module would compile the same one first
        ("fa4_direct", Config(backend="fa4")),
        ("fa4", Config(backend="fa4", fa4_direct=False)),
    )
    for label, config in configs:
        mod = import_source(render(compiled, config), f"host_{name}_{label}")
        with torch.device("cuda"):
            kernel = mod.ModelNew(*init)
        kernel(q, k, v)
        torch.cuda.synchronize()
        kernels[f"{name}_{label}"] = kernel
        entry = row[label] = {}
        call = lambda kernel=kernel: kernel(q, k, v)  # noqa: E731
        entry["verifier_ms"] = verifier_ms(call)
        entry["do_bench_ms"] = triton.testing.do_bench(call, warmup=25, rep=100, return_mode="median")
        entry["host_us"] = host_us(call)
        if label == "fa4":
            fa4_direct(kernel, q, k, v, entry)
            row["fa4_profile"] = profile_top(call)
        if label == "fa4_direct":  # the module's own direct call: FA4's kernel, bit for bit
            entry["direct_keys"] = sum(c is not None for c in kernel.compiled.values())
        if label == "fa4":
            direct = kernels[f"{name}_fa4_direct"]
            row["fa4_direct"]["bitwise_equal_to_entry_point"] = bool(torch.equal(direct(q, k, v), call()))
        log(f"{name} {label}: {json.dumps({key: val for key, val in entry.items() if key != 'args'})}")
    if name in ("causal", "full"):
        sdpa = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=name == "causal")  # noqa: E731
        with torch.nn.attention.sdpa_kernel(torch.nn.attention.SDPBackend.CUDNN_ATTENTION):
            sdpa()
            row["cudnn"] = {"verifier_ms": verifier_ms(sdpa), "host_us": host_us(sdpa)}
            row["cudnn"]["do_bench_ms"] = triton.testing.do_bench(
                sdpa, warmup=25, rep=100, return_mode="median"
            )
        log(f"{name} cudnn: {row['cudnn']}")
    row["inputs"] = (q, k, v)
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    card = torch.cuda.get_device_name().replace(" ", "-")
    lines = []

    def log(text):
        print(text, flush=True)
        lines.append(text)

    rows, kernels = [], {}
    for name in args.variants:
        try:
            rows.append(one_variant(name, log, kernels))
        except Exception as exc:  # one variant's failure is a result
            log(f"{name}: {type(exc).__name__}: {str(exc)[:400]}")
    if rows:  # every variant has the same input shape: the first one's inputs serve all
        conditions = runner_conditions(kernels, *rows[0]["inputs"], log)
        rows.append({"variant": "runner_conditions", **conditions})
    for row in rows:
        row.pop("inputs", None)
    for row in rows:
        if "fa4_profile" in row:
            lines.append(f"\n== {row['variant']} FA4 module, cProfile ==\n{row['fa4_profile']}")
    (out / f"fa4-host-{card}.json").write_text(json.dumps(rows, indent=1))
    (out / f"fa4-host-{card}.txt").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
