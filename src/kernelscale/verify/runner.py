"""The candidate's process: `python -m kernelscale.verify.runner`, one per attempt.

It receives seeds, makes the inputs itself, runs the candidate and hands back its outputs and
raw timings. It never holds the reference's outputs or the verdict: those live in the oracle.
Candidate prints go to the log, not to the result channel (stdout is moved away first).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path


def _open_channel():
    """Keep the real stdout for results; point fd 1 at stderr so candidate prints go to the log."""
    result_fd = os.dup(1)
    os.dup2(2, 1)
    return os.fdopen(result_fd, "w", buffering=1), sys.stdin


def _tail(exc: BaseException, limit: int = 14) -> str:
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    text = "".join(lines).strip().splitlines()
    return "\n".join(text[-limit:])


def _status_of(exc: BaseException) -> str:
    name = type(exc).__name__
    module = type(exc).__module__ or ""
    if name in ("CompilationError", "CompileTimeAssertionFailure") or "triton.compiler" in module:
        return "compile_error"
    return "runtime_error"


class Runner:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.problem = None
        self.candidate = None
        self.models: dict[int, object] = {}
        self.device = "cpu"
        self.forbid_copies = False
        self.allow_torch = False
        self.guards = None
        self.outputs_seen = 0
        self.input_buffers: dict[int, object] = {}

    def load(self, msg: dict) -> dict:
        from kernelscale.problems.module import apply_sizes, import_source
        from kernelscale.problems.problem import Problem
        from kernelscale.verify import guards, op_policy

        problem = Problem.from_json(msg["problem"])
        self.device = msg["device"]
        self.forbid_copies = bool(msg.get("forbid_copies"))
        self.allow_torch = problem.allow_torch
        self.exchange = Path(msg.get("exchange_dir") or self.workdir)
        self.problem = import_source(problem.source, "problem", self.workdir)
        apply_sizes(self.problem, problem.sizes_for(self.device))
        op_policy.pause_recording_in_triton_launches()
        self.guards = guards.Guards()
        guards.install_audit_hook()
        code = Path(msg["code_file"]).read_text()
        try:
            self.candidate = import_source(code, "candidate", self.workdir)
        except BaseException as exc:  # a candidate may raise anything at import
            return {"ok": False, "status": "compile_error", "reason": _tail(exc)}
        if not hasattr(self.candidate, "ModelNew"):
            return {"ok": False, "status": "rejected", "rule": "no_model_new", "reason": "no ModelNew after import"}
        return {"ok": True}

    def _model(self, init_seed: int):
        from kernelscale.verify.inputs import make_model

        if init_seed not in self.models:
            self.models[init_seed], _ = make_model(self.candidate, "ModelNew", init_seed, self.device, self.problem)
        return self.models[init_seed]

    def call(self, msg: dict) -> dict:
        import torch

        from kernelscale.verify import inputs as inp
        from kernelscale.verify.op_policy import compute_ops, recording

        model = self._model(msg["init_seed"])
        pristine = inp.make_inputs(self.problem, msg["seed"], msg["scale"], self.device)
        prints = inp.fingerprint(pristine)
        args = self._stable_copies(pristine)
        inp.poison_allocator(2 * inp.tensor_bytes(pristine), self.device)
        with torch.no_grad(), recording() as recorder:
            out = model(*args)
        running = self.guards.threads_running()
        if running:
            return {"ok": False, "status": "rejected", "rule": "threads", "reason": running}
        if self.device == "cuda":
            torch.cuda.synchronize()
        outs = inp.outputs_as_list(out)
        bad_type = [type(o).__name__ for o in outs if isinstance(o, torch.Tensor) and type(o) is not torch.Tensor]
        if bad_type:
            return {"ok": False, "status": "rejected", "rule": "tensor_subclass",
                    "reason": f"forward returned a {bad_type[0]}, not exactly torch.Tensor"}
        work = compute_ops(recorder.ops, self.forbid_copies)
        if work and not self.allow_torch:
            return {"ok": False, "status": "rejected", "rule": "torch_fallback",
                    "reason": "forward ran torch compute ops: " + ", ".join(f"aten.{op}" for op in sorted(work))}
        mutated = [i for i, (a, p) in enumerate(zip(args, pristine)) if isinstance(p, torch.Tensor) and not _same(a, p)]
        path = self.exchange / f"out-{self.outputs_seen}.pt"
        self.outputs_seen += 1
        torch.save([o.detach().cpu() if isinstance(o, torch.Tensor) else o for o in outs], path)
        inp.poison(outs)
        return {"ok": True, "file": str(path), "inputs": prints, "mutated_inputs": mutated}

    def _stable_copies(self, pristine: list) -> list:
        """Copy the inputs into the same buffers every call: new contents at old addresses, so a
        candidate caching outputs by data_ptr or id() hits its cache on new inputs and fails."""
        import torch

        copies = []
        for i, x in enumerate(pristine):
            if not isinstance(x, torch.Tensor):
                copies.append(x)
                continue
            buf = self.input_buffers.get(i)
            if buf is None or buf.shape != x.shape or buf.dtype != x.dtype or buf.stride() != x.stride():
                buf = self.input_buffers[i] = torch.empty_strided(x.shape, x.stride(), dtype=x.dtype, device=x.device)
            buf.copy_(x)
            copies.append(buf)
        return copies

    def time(self, msg: dict) -> dict:
        from kernelscale.verify import timing
        from kernelscale.verify.inputs import make_inputs

        model = self._model(msg["init_seed"])
        inputs = make_inputs(self.problem, msg["seed"], 1.0, self.device)
        if msg.get("warmup"):
            timing.warm_up(model, inputs, self.device)
        flush = timing.l2_flush_buffer(self.device) if msg.get("flush", True) else None
        samples = timing.time_block(model, inputs, int(msg["calls"]), self.device, flush)
        return {"ok": True, "samples": samples.to_json(), "native_threads": self.guards.native_threads()}

    def check_guards(self, msg: dict) -> dict:
        found = self.guards.violations()
        if found:
            rule, detail = found[0]
            return {"ok": False, "status": "rejected", "rule": rule, "reason": detail}
        return {"ok": True}

    def handle(self, msg: dict) -> dict:
        op = msg.get("op")
        handler = {"load": self.load, "call": self.call, "time": self.time, "guards": self.check_guards}.get(op)
        if handler is None:
            return {"ok": False, "status": "runtime_error", "reason": f"unknown op {op!r}"}
        try:
            return handler(msg)
        except BaseException as exc:  # anything the candidate raises is its verdict, not our crash
            if isinstance(exc, KeyboardInterrupt):
                raise
            reason = _tail(exc)
            if "out of memory" in reason.lower():
                reason = "out of memory: " + reason.splitlines()[-1]
            return {"ok": False, "status": _status_of(exc), "reason": reason}


def _same(a, b) -> bool:
    import torch

    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.is_floating_point():
        return bool(torch.equal(torch.nan_to_num(a, nan=1.5), torch.nan_to_num(b, nan=1.5)))
    return bool(torch.equal(a, b))


def main() -> None:
    results, commands = _open_channel()
    runner = Runner(Path.cwd())
    for line in commands:
        msg = json.loads(line)
        if msg.get("op") == "exit":
            break
        reply = runner.handle(msg)
        results.write(json.dumps(reply, default=str) + "\n")
        results.flush()


if __name__ == "__main__":
    main()
