"""Synthetic runs written through the real Store API, shared by the report and bench tests.

The numbers are chosen so that the summary can be checked by hand (see test_report_summary.py):
the GPU suite run has five problems, one solved only by a suspect kernel, one never solved.
"""

from __future__ import annotations

from pathlib import Path

from kernelscale.problems.problem import Problem
from kernelscale.propose.base import Attempt, Candidate
from kernelscale.store.db import Store
from kernelscale.verify.verdict import Verdict

GPU = {"kind": "cuda", "name": "NVIDIA H100 80GB HBM3", "torch": "2.11.0", "triton": "3.6.0", "cuda": "13.0"}
CPU = {"kind": "cpu", "name": "x86_64", "torch": "2.13.0", "triton": "3.6.0"}

REFERENCE = """import torch
import torch.nn as nn

N = {n}


class Model(nn.Module):
    def forward(self, x):
        return torch.relu(x) * {n}


def get_inputs():
    return [torch.randn(N)]


def get_init_inputs():
    return []
"""

KERNEL = """import torch
import triton
import triton.language as tl


@triton.jit
def kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    # a < b && c > d: escaped in HTML, "{marker}"
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    x = tl.load(x_ptr + offs, mask=offs < n, other=0.0)
    tl.store(out_ptr + offs, tl.maximum(x, 0.0) * {scale}, mask=offs < n)


class ModelNew(torch.nn.Module):
    def forward(self, x):
        out = torch.empty_like(x)
        kernel[(triton.cdiv(x.numel(), 1024),)](x, out, x.numel(), BLOCK=1024)
        return out
"""


def problem(name: str, n: int, kind: str = "kernelbench", **options) -> Problem:
    return Problem(name=name, source=REFERENCE.format(n=n), kind=kind, dtype="float32", **options)


def correct(time_ms: float, speedup: dict[str, float], device: dict = GPU, **extra) -> Verdict:
    baselines = {name: time_ms * ratio for name, ratio in speedup.items()}
    return Verdict(
        "correct", time_ms=time_ms, baselines=baselines, speedup=dict(speedup), device=device, **extra
    )


def failed(status: str, reason: str, device: dict = GPU, **extra) -> Verdict:
    return Verdict(status, reason=reason, device=device, **extra)


def record(store: Store, run_id: int, key: str, verdict: Verdict, elapsed_s: float, marker: str) -> int:
    """One attempt with its verdict, exactly as a solve loop stores it."""
    cand = Candidate(code=KERNEL.format(marker=marker, scale=elapsed_s), proposer="fake")
    verdict_id = store.add_verdict(cand.code_hash, key, "dev", verdict)
    return store.add_attempt(run_id, key, Attempt(cand, verdict, elapsed_s=elapsed_s), verdict_id)


def build_gpu_run(store: Store) -> int:
    """Five problems; by eager: a 3.0x (best of 2; a suspect 20x ignored), b 1.2x, c 0.8x, d none, e suspect only.

    Strongest baseline (compile): a 1.8x, b 0.9x, c 0.5x.
    """
    run_id = store.create_run("bench", "ops", {"per_problem_budget_s": 60})
    plan = {
        "ops/a": [
            (failed("compile_error", "NameError: tl.maxi"), 10.0),
            (correct(1.0, {"eager": 2.0, "compile": 1.2}), 30.0),
            (correct(2 / 3, {"eager": 3.0, "compile": 1.8}), 50.0),
            (correct(0.1, {"eager": 20.0, "compile": 12.0}, suspect=True, suspect_reason="above 10x"), 60.0),
        ],
        "ops/b": [
            (failed("incorrect", "max abs error 3.1e-2 > 1e-4", max_abs_error=0.031), 5.0),
            (correct(2.0, {"eager": 1.2, "compile": 0.9}), 40.0),
        ],
        "ops/c": [(correct(3.0, {"eager": 0.8, "compile": 0.5}), 20.0)],
        "ops/d": [
            (failed("rejected", "forward calls torch.matmul", rule="torch_fallback", line=12), 3.0),
            (failed("incorrect", "all-zero output"), 9.0),
        ],
        "ops/e": [(correct(0.05, {"eager": 15.0, "compile": 9.0}, suspect=True), 25.0)],
    }
    for position, (name, attempts) in enumerate(plan.items()):
        key = store.add_problem(run_id, problem(name, 64 + position, tolerance="loose"), position)
        for i, (verdict, elapsed) in enumerate(attempts):
            record(store, run_id, key, verdict, elapsed, f"MARK_{name[-1]}_{i}")
        store.set_problem_status(run_id, key, "done", seconds=60.0)
    store.finish_run(run_id, "done")
    return run_id


def build_interpreted_run(store: Store) -> int:
    """CPU interpreter: two of three correct. The verdicts carry speedups that must never be claimed."""
    run_id = store.create_run("bench", "ops", {"device": "cpu"})
    plan = {
        "ops/x": [
            (correct(40.0, {"eager": 0.01}, device=CPU, interpreted=True), 12.0),
            (correct(5.0, {"eager": 0.5}, device=CPU, interpreted=True), 30.0),
        ],
        "ops/y": [
            (failed("runtime_error", "IndexError", device=CPU, interpreted=True), 2.0),
            (correct(80.0, {"eager": 0.02}, device=CPU, interpreted=True), 7.5),
        ],
        "ops/z": [(failed("incorrect", "mismatch", device=CPU, interpreted=True), 4.0)],
    }
    for position, (name, attempts) in enumerate(plan.items()):
        key = store.add_problem(run_id, problem(name, 8 + position), position)
        for i, (verdict, elapsed) in enumerate(attempts):
            record(store, run_id, key, verdict, elapsed, f"MARK_{name[-1]}_{i}")
        store.set_problem_status(run_id, key, "done", seconds=31.0)
    store.finish_run(run_id, "done")
    return run_id


ATTENTION_SPEEDUPS = {
    "attention/full": {"eager": 9.0, "flex": 1.6, "sdpa_cudnn": 1.05},
    "attention/causal": {"eager": 8.0, "flex": 1.1, "sdpa_cudnn": 0.95},
    "attention/softcap": {"eager": 12.0, "flex": 2.1},
    "attention/document": {"eager": 20.0, "flex": 0.9},
}


def build_attention_run(store: Store) -> int:
    """Four attention variants, each solved once, with a FlexAttention baseline (Figure 3)."""
    run_id = store.create_run("bench", "attention", {})
    for position, (name, speedup) in enumerate(ATTENTION_SPEEDUPS.items()):
        key = store.add_problem(run_id, problem(name, 128 + position, kind="attention"), position)
        record(store, run_id, key, failed("timeout", "killed after 120 s"), 30.0, "t")
        record(store, run_id, key, correct(0.5, speedup), 100.0 + 50 * position, f"MARK_{position}")
        store.set_problem_status(run_id, key, "done", seconds=400.0)
    store.finish_run(run_id, "done")
    return run_id


def make_store(tmp_path: Path) -> tuple[Store, dict[str, int]]:
    store = Store(tmp_path / "kernelscale.db")
    runs = {
        "gpu": build_gpu_run(store),
        "cpu": build_interpreted_run(store),
        "attention": build_attention_run(store),
    }
    return store, runs


def test_builder_writes_through_the_store(tmp_path):
    store, runs = make_store(tmp_path)
    assert [r.name for r in store.run_problems(runs["gpu"])] == [f"ops/{c}" for c in "abcde"]
    assert len(store.attempt_rows(runs["gpu"])) == 10
    assert all(a.verdict.interpreted for a in store.attempts(runs["cpu"]))
    store.close()
