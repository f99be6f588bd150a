"""Where the runner's ~0.3 ms per-call floor on a GPU comes from (diagnostic, GPU only).

Times shipped examples in one process with the runner's per-call pattern (L2 flushed,
synchronize, event pair around the call, synchronize), adding the runner's pieces one at a
time: no_grad, the op recorder (a dispatch mode), the recorder paused around Triton launches,
the audit hook; then the same with a sleep kernel queued before the start event, which hides
host-side overhead, so the difference is host time. A call that allocates its outputs and
launches nothing is timed at the first and the last stage.

    PYTHONPATH=src python3 benchmarks/call_overhead.py --out overhead.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics

import torch

from kernelscale.problems import load_problem
from kernelscale.problems.module import apply_sizes, import_source
from kernelscale.verify import guards, op_policy


def _load(stem: str):
    problem = load_problem(f"ops/{stem}")
    reference = import_source(problem.source, f"ref_{stem}")
    apply_sizes(reference, problem.sizes_for("cuda"))
    from importlib import resources

    code = (resources.files("kernelscale.examples") / f"{stem}.py").read_text()
    example = import_source(code, f"ex_{stem}")
    with torch.device("cuda"):
        torch.manual_seed(0)
        model = example.ModelNew(*reference.get_init_inputs()).cuda().eval()
        inputs = [x.cuda() if isinstance(x, torch.Tensor) else x for x in reference.get_inputs()]
    return model, inputs


def _time(fn, inputs, calls: int, flush, *, recorder: bool, sleep: bool) -> float:
    times = []
    for _ in range(calls):
        flush.zero_()
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        if sleep:
            torch.cuda._sleep(2_000_000)
        start.record()
        with torch.no_grad(), op_policy.recording() if recorder else contextlib.nullcontext():
            fn(*inputs)
        torch.cuda.synchronize()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times[3:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--calls", type=int, default=60)
    ap.add_argument("--examples", nargs="*", default=["rms_norm", "softmax", "matmul_bf16"])
    args = ap.parse_args()
    flush = torch.empty(64 * 2**20, dtype=torch.int32, device="cuda")
    loaded = {stem: _load(stem) for stem in args.examples}
    null = (lambda *xs: torch.empty_like(xs[0]), loaded[args.examples[0]][1])
    rows = []

    def stage(label: str, recorder: bool, sleep: bool = False) -> None:
        for stem, (model, inputs) in list(loaded.items()) + [("null", null)]:
            ms = _time(model, inputs, args.calls, flush, recorder=recorder, sleep=sleep)
            rows.append({"stage": label, "what": stem, "median_ms": ms})
            print(f"{label:34s} {stem:12s} {ms:.4f} ms", flush=True)

    stage("1 plain event pair", recorder=False)
    stage("2 + op recorder", recorder=True)
    op_policy.pause_recording_in_triton_launches()
    stage("3 + recorder paused in launches", recorder=True)
    guards.Guards()
    guards.install_audit_hook()
    stage("4 + guards and audit hook", recorder=True)
    stage("5 = 4 with a sleep before start", recorder=True, sleep=True)
    stage("6 = 1 with a sleep before start", recorder=False, sleep=True)
    with open(args.out, "w") as handle:
        json.dump(rows, handle, indent=1)


if __name__ == "__main__":
    main()
