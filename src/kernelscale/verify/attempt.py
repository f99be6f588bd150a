"""One attempt, end to end, from the oracle's side (DESIGN §3.2–3.5).

load → correctness trials (candidate, reference, candidate again; fresh seeds, one secret, one
rescaled) → guards → interleaved timing rounds (candidate, then every baseline) → guards →
correctness once more on new inputs → verdict. Any failure ends the attempt with its status.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path

import torch

from kernelscale.problems.problem import Problem
from kernelscale.verify.compare import compare_outputs
from kernelscale.verify.inputs import fingerprint
from kernelscale.verify.options import VerifyOptions
from kernelscale.verify.replies import AttemptFailed, expect as _expect
from kernelscale.verify.sandbox import Child, ChildGone, ChildTimeout, sandbox_env
from kernelscale.verify.timing_rounds import time_interleaved
from kernelscale.verify.verdict import Verdict


def trial_plan(options: VerifyOptions, secret_seed: int, scale: float | None = None) -> list[tuple[str, int, float]]:
    """(name, seed, input scale): fresh seeds, the run's secret seed, and one rescaled trial."""
    scale = scale or options.input_scale
    fresh = [secrets.randbits(31) for _ in range(options.trials)]
    plan = [(f"seed {s}", s, 1.0) for s in fresh[: options.trials - 2]]
    plan.append(("secret seed", secret_seed, 1.0))
    plan.append((f"seed {fresh[-1]} x{scale:g}", fresh[-1], scale))
    return plan


def run_attempt(oracle, problem: Problem, code: str, options: VerifyOptions) -> Verdict:
    workdir = Path(tempfile.mkdtemp(prefix="attempt-", dir=oracle.workdir))
    started = time.monotonic()
    child = None
    try:
        loaded = oracle.load(problem)
        child, cost = _start(oracle, loaded, code, options, workdir)
        deadline = started + options.timeout_s
        verdict = _verify(oracle, loaded, child, options, deadline, cost)
    except AttemptFailed as failed:
        verdict = failed.verdict
    except ChildTimeout:
        verdict = Verdict("timeout", f"no result within {options.timeout_s:g} s (compile and run); process group killed")
    except ChildGone as gone:
        verdict = Verdict("runtime_error", f"candidate process {gone}")
    finally:
        if child is not None:
            tail = child.log_tail()
            child.kill()
    if child is not None and not verdict.log_tail and verdict.status != "correct":
        verdict.log_tail = tail
    verdict.device = oracle.environment
    verdict.interpreted = oracle.device != "cuda"
    verdict.cost_s["total"] = round(time.monotonic() - started, 3)
    exchange = workdir / "exchange"
    if exchange.is_symlink():
        shutil.rmtree(exchange.resolve(), ignore_errors=True)
    shutil.rmtree(workdir, ignore_errors=True)
    return verdict


def _start(oracle, loaded, code: str, options: VerifyOptions, workdir: Path):
    t0 = time.monotonic()
    (workdir / "candidate.py").write_text(code)
    exchange = _exchange_dir(workdir)
    extra = {"TRITON_INTERPRET": "1"} if oracle.device != "cuda" else {}
    memory = int((options.memory_limit_gb or 6.0) * 2**30) if oracle.device != "cuda" else None
    child = Child("kernelscale.verify.runner", [], workdir, sandbox_env(extra, home=str(workdir)), memory)
    reply = child.request(
        {"op": "load", "problem": loaded.problem.to_json(), "device": oracle.device,
         "code_file": str(workdir / "candidate.py"), "forbid_copies": loaded.forbid_copies,
         "exchange_dir": str(exchange)},
        t0 + options.timeout_s,
    )
    _expect(reply, child)
    return child, {"process_start": round(time.monotonic() - t0, 3)}


def _exchange_dir(workdir: Path) -> Path:
    """Outputs travel through files: in memory (/dev/shm) where there is one, else the workdir.
    A GPU-sized output is hundreds of MB per call, and disk made that most of an attempt."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        folder = workdir / "exchange"
        folder.symlink_to(tempfile.mkdtemp(prefix="ks-exchange-", dir=shm))
        return folder.resolve()
    return workdir


def _verify(oracle, loaded, child: Child, options: VerifyOptions, deadline: float, cost: dict) -> Verdict:
    tol = None
    stats: dict = {"max_abs_error": 0.0, "max_rel_error": 0.0}
    t0 = time.monotonic()
    plan = trial_plan(options, oracle.secret_seed, loaded.problem.input_scale)
    for index, (name, seed, scale) in enumerate(plan):
        tol = _trial(oracle, loaded, child, name, seed, scale, deadline, stats, again=True)
        if index == 0:
            cost["first_trial"] = round(time.monotonic() - t0, 3)
    _expect(child.request({"op": "guards"}, deadline))
    cost["correctness"] = round(time.monotonic() - t0, 3)
    t1 = time.monotonic()
    oracle.timing_setup(loaded)
    cost["baseline_setup"] = round(time.monotonic() - t1, 3)
    t2 = time.monotonic()
    timing = time_interleaved(oracle, loaded, child, options, deadline)
    _expect(child.request({"op": "guards"}, deadline))
    cost["timing"] = round(time.monotonic() - t2, 3)
    seed = secrets.randbits(31)
    _trial(oracle, loaded, child, f"after timing, seed {seed}", seed, 1.0, deadline, stats, again=False)
    verdict = Verdict("correct", f"all trials within atol=rtol={tol:g}", **_error_fields(stats))
    timing.fill(verdict, oracle, loaded, options)
    verdict.cost_s = cost
    return verdict


def _trial(oracle, loaded, child, name, seed, scale, deadline, stats, again: bool) -> float:
    """Candidate, reference, candidate again on the same seeded inputs; compare both calls."""
    call = {"op": "call", "seed": seed, "init_seed": seed, "scale": scale}
    first = _expect(child.request(call, deadline))
    want, inputs = oracle.reference(loaded, seed, seed, scale)
    replies = [first] + ([_expect(child.request(call, deadline))] if again else [])
    tol = loaded.problem.tolerance_for(_dominant_dtype(want, inputs))
    for which, reply in enumerate(replies):
        _check_reply(reply, inputs, want, tol, name if which == 0 else f"{name}, second call", stats)
    return tol


def _check_reply(reply, inputs, want, tol, trial: str, stats: dict) -> None:
    if reply["inputs"] != fingerprint(inputs):
        raise AttemptFailed(Verdict("runtime_error", "the problem's get_inputs() is not deterministic for a "
                                    "seed: the two processes made different inputs (not the candidate's fault)"))
    if reply["mutated_inputs"]:
        raise AttemptFailed(Verdict("incorrect", f"modified its input(s) {reply['mutated_inputs']} in place",
                                    failing_trial=trial))
    # weights_only: a crafted pickle cannot run code here. Compared on the reference's device.
    device = next((w.device for w in want if isinstance(w, torch.Tensor)), "cpu")
    got = torch.load(reply["file"], weights_only=True, map_location=device)
    Path(reply["file"]).unlink(missing_ok=True)
    mismatch, trial_stats = compare_outputs(got, want, tol)
    for key in ("max_abs_error", "max_rel_error"):
        stats[key] = max(stats[key], trial_stats.get(key) or 0.0)
    if mismatch is not None:
        raise AttemptFailed(Verdict(
            "incorrect", mismatch.reason, max_abs_error=mismatch.max_abs_error,
            max_rel_error=mismatch.max_rel_error, worst_index=mismatch.worst_index, failing_trial=trial,
        ))


def _dominant_dtype(outputs: list, inputs: list) -> torch.dtype:
    """The output's floating dtype decides the tolerance (bf16 output: bf16 tolerance)."""
    for x in outputs + inputs:
        if isinstance(x, torch.Tensor) and x.is_floating_point():
            return x.dtype
    return torch.float32


def _error_fields(stats: dict) -> dict:
    return {"max_abs_error": stats["max_abs_error"], "max_rel_error": stats["max_rel_error"]}
