"""The candidate's process: `python -m kernelscale.verify.runner`, one per attempt.

It imports the candidate, builds one `ModelNew` from init arguments the oracle shipped (by value,
or a recipe for attention mods, which are functions), and then serves, per call: `stage` (copy
an input set out of the oracle's input slab, into the same device buffers every time; the set
is masked), `key` (unmask it in place with the key just sent), `go` (call the model once,
synchronize, answer `done`), `commit` (a keyed digest of the outputs, key just sent) and `ship`
(copy the outputs into the output slab; slab.py). masking.py says why the mask and the digest.
Every call is the same call: correctness trials and timed calls cannot be told apart from in
here. The problem module is never imported and no seed ever arrives, so the inputs cannot be
known in advance.

Everything checked here (types, aliasing, torch fallbacks, threads, patched functions) is
advice for the proposer: this process runs the candidate's code, which can subvert it. The
verdict's integrity comes from the oracle (values compared there, time measured there).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from kernelscale.verify.candidate_errors import candidate_frames, status_of


def _open_channel():
    """Keep the real stdout for results; point fd 1 at stderr so candidate prints go to the log."""
    result_fd = os.dup(1)
    os.dup2(2, 1)
    return os.fdopen(result_fd, "w", buffering=1), sys.stdin


class Runner:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.model = None
        self.device = "cpu"
        self.forbid_copies = False
        self.allow_torch = False
        self.output_twins: frozenset = frozenset()  # output pairs the reference returns as one tensor
        self.guards = None
        self.code_file: str | None = None
        self.slabs: dict = {}  # path -> Slab: the oracle's input slab (read-only) and output slab
        self.outputs_slab = None  # the one the outputs go to (named by every `stage`)
        self.pinned_slabs = 0  # slabs the CUDA driver page-locked (0 to 2): the oracle records it
        self.buffers: list = []  # the staged inputs: the same device buffers every call
        self.pristine: list = []  # what was staged, to see in-place changes
        self.previous: list = []  # the last call's outputs, to see an output reused
        # The last `go`'s outputs, the ops it ran and the threads still running at `done`.
        self.pending: tuple[list, set, str | None] | None = None
        self.input_key: int | None = None  # the last `key`: `ship` masks the buffers again with it
        self._wake = None  # a one-element tensor touched before each call (_settle_device)

    def warm(self, msg: dict) -> dict:
        """Import what `load` needs before any candidate code exists (a runner started ahead of
        its attempt pays for it early), and on a GPU make the CUDA context, Triton's driver
        helpers and the kernels every call runs (warm_kernel.py; built into this attempt's own
        cache) now rather than in the candidate's first call; the reply says it is done."""
        import importlib
        import time

        from kernelscale.verify import runner_seed

        marks = [("start", time.monotonic())]
        seeded = runner_seed.into_cache(msg.get("seed_dir"))
        for name in ("torch", "triton", "kernelscale.problems.module", "kernelscale.verify.op_policy"):
            importlib.import_module(name)
        marks.append(("imports", time.monotonic()))
        if msg.get("device") == "cuda":
            import torch
            from triton.runtime import driver

            from kernelscale.verify import warm_kernel

            torch.empty(1, device="cuda")
            marks.append(("cuda_context", time.monotonic()))
            driver.active.get_current_device()
            marks.append(("triton_driver", time.monotonic()))
            warm_kernel.compile_and_run()
            marks.append(("kernels", time.monotonic()))
            warm_kernel.warm_harness()
            marks.append(("harness", time.monotonic()))
        # seconds per step, for the verdict's cost breakdown (where a runner's start goes)
        steps = {name: round(t - marks[i][1], 3) for i, (name, t) in enumerate(marks[1:])}
        exported = runner_seed.out_of_cache(msg.get("export_dir"))  # no candidate code has run yet
        return {"ok": True, "warm_s": steps, "seeded": seeded, "exported": exported}

    def load(self, msg: dict) -> dict:
        import torch

        from kernelscale.problems.module import import_source
        from kernelscale.verify import guards, op_policy

        self.device = msg["device"]
        if self.device != "cuda":  # cores shared with the oracle: a pool of threads stalled a 1 ms step to 65
            torch.set_num_threads(1)
        self.forbid_copies = bool(msg.get("forbid_copies"))
        self.allow_torch = bool(msg.get("allow_torch"))
        self.output_twins = frozenset((int(i), int(j)) for i, j in msg.get("output_twins") or [])
        self.code_file = msg["code_file"]
        op_policy.pause_recording_in_triton_launches()
        self.guards = guards.Guards()
        guards.install_audit_hook()
        code = Path(self.code_file).read_text()
        try:
            candidate = import_source(code, "candidate", self.workdir)
        except BaseException as exc:  # a candidate may raise anything at import
            return {"ok": False, "status": "compile_error", "reason": candidate_frames(exc, self.code_file)}
        if not hasattr(candidate, "ModelNew"):
            return {
                "ok": False,
                "status": "rejected",
                "rule": "no_model_new",
                "reason": "no ModelNew after import",
            }
        init_args = self._init_args(msg)
        with torch.device(self._torch_device()):
            torch.manual_seed(int(msg["init_seed"]))
            self.model = candidate.ModelNew(*init_args)
        if isinstance(self.model, torch.nn.Module):
            self.model = self.model.to(self._torch_device()).eval()
        return {"ok": True}

    def _init_args(self, msg: dict) -> list:
        """By value (a file of plain values and tensors), or by recipe: a function of the
        kernelscale.problems package that rebuilds functions (attention mods) from a path."""
        import importlib

        import torch

        from kernelscale.verify.exchange import load_values

        if msg.get("init_file"):
            return load_values(msg["init_file"], self._torch_device())
        module_name, function, args = msg["init_recipe"]
        if not module_name.startswith("kernelscale.problems."):
            raise ValueError(f"init recipe outside kernelscale.problems: {module_name}")
        with torch.device(self._torch_device()):
            torch.manual_seed(int(msg["init_seed"]))
            return list(getattr(importlib.import_module(module_name), function)(*args))

    def _torch_device(self):
        import torch

        return (
            torch.device("cuda", torch.cuda.current_device())
            if self.device == "cuda"
            else torch.device("cpu")
        )

    def stage(self, msg: dict) -> dict:
        """Copy an input set out of the input slab, into the staging buffers (outside the window)."""
        import torch

        from kernelscale.verify.inputs import fingerprint

        inputs_slab, self.outputs_slab = (self._slab(s, writable=i == 1) for i, s in enumerate(msg["slabs"]))
        values = inputs_slab.read(msg["inputs"], self._torch_device())
        if len(self.buffers) != len(values):
            self.buffers = [None] * len(values)
        for i, x in enumerate(values):
            buf = self.buffers[i]
            if not isinstance(x, torch.Tensor):
                self.buffers[i] = x
            elif isinstance(buf, torch.Tensor) and buf.shape == x.shape and buf.dtype == x.dtype:
                buf.copy_(x)  # same address, new contents: a cache keyed by data_ptr goes stale
            else:
                self.buffers[i] = x.clone()
        self.pristine = values
        self.input_key = None
        if self.device == "cuda":
            torch.cuda.synchronize()
        return {"ok": True, "inputs": fingerprint(values), "pinned_slabs": self.pinned_slabs}

    def key(self, msg: dict) -> dict:
        """Unmask the staged inputs in place: only from here on do they mean anything."""
        from kernelscale.verify.masking import unmask_

        self.input_key = int(msg["key"])
        unmask_(self.buffers, self.input_key)
        self._synchronize()
        return {"ok": True}

    def commit(self, msg: dict) -> dict:
        """A digest of the outputs under a key sent only now, right after `done`."""
        from kernelscale.verify.masking import digests

        if self.pending is None:
            return {"ok": False, "status": "runtime_error", "reason": "commit before go"}
        found = digests(self.pending[0], int(msg["key"]))
        self._synchronize()
        return {"ok": True, "digests": found}

    def _synchronize(self) -> None:
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()

    def _slab(self, where: dict, writable: bool):
        from kernelscale.verify.slab import MappedSlab

        path = where["path"]
        if path not in self.slabs:
            slab = self.slabs[path] = MappedSlab(Path(path), where["capacity"], writable=writable)
            if self.device == "cuda":
                # The driver pins only inside a CUDA context, which a model without CUDA
                # parameters lacks at its first staging: synchronizing makes the primary one.
                self._synchronize()
                self.pinned_slabs += int(slab.pin())
        return self.slabs[path]

    def go(self, msg: dict) -> dict:
        """One call of the model on the staged inputs, synchronized, then `done` at once. The
        oracle's clock runs from sending this request to reading the reply; the time measured
        here (CUDA events on a GPU) may only refine that figure. The outputs wait for `ship`."""
        from kernelscale.verify.inputs import candidate_outputs

        self._settle_device()
        self.host_ms = None  # the call's wall time until the forward returned (advisory)
        out, own_ms, ops = self._timed_call()
        running = self.guards.threads_running()  # now: by `ship`, a short-lived one may be gone
        self.pending = (candidate_outputs(out), ops, running)
        return {"ok": True, "own_ms": own_ms, "host_ms": self.host_ms}

    def ship(self, msg: dict) -> dict:
        """The last call's outputs to a file, after the advisory checks. The oracle times this
        step too and holds it to the same step of a trusted runner: work deferred past `done`
        shows up here."""
        import torch

        from kernelscale.verify.inputs import poison
        from kernelscale.verify.slab import SlabError

        if self.pending is None:
            return {"ok": False, "status": "runtime_error", "reason": "ship before go"}
        outs, ops, running = self.pending
        self.pending = None
        problem = self._advisory_checks(outs, ops, running)
        if problem:
            return problem
        try:
            shipped = self.outputs_slab.write(outs)
        except SlabError as exc:
            return {"ok": False, "status": "runtime_error", "reason": f"the outputs cannot be shipped: {exc}"}
        mutated = self._mutated_inputs()
        poison(outs)  # an output handed back again later is garbage by then
        self.previous = [o for o in outs if isinstance(o, torch.Tensor)]
        return {"ok": True, "outputs": shipped, "mutated_inputs": mutated}

    def _mutated_inputs(self) -> list[int]:
        """Inputs changed in place: the buffers, masked again, against what was staged (masked
        too, and left so: a candidate that returns a staged copy returns garbage)."""
        import torch

        from kernelscale.verify.masking import masked_copy, same_bits

        current = masked_copy(self.buffers, self.input_key) if self.input_key is not None else self.buffers
        return [
            i
            for i, (a, p) in enumerate(zip(current, self.pristine))
            if isinstance(p, torch.Tensor) and not same_bits(a, p)
        ]

    def _settle_device(self):
        """A one-element kernel and a synchronize, outside the timed region: after the oracle's
        L2 flush in another process every call on an H200 came out ~0.4 ms slower than in one
        process (a context switch is the suspect), so that switch happens here, not inside."""
        if self.device != "cuda":
            return
        import torch

        if self._wake is None:
            self._wake = torch.zeros(1, device=self._torch_device())
        self._wake.add_(1)
        torch.cuda.synchronize()

    def _timed_call(self):
        import torch

        from kernelscale.verify.inputs import candidate_outputs
        from kernelscale.verify.op_policy import recording

        cuda = self.device == "cuda"
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
        wall0 = time.perf_counter()
        with torch.no_grad(), recording() as recorder:  # unpacked on the clock, recorded
            out = candidate_outputs(self.model(*self.buffers))
        self.host_ms = (time.perf_counter() - wall0) * 1e3  # on a GPU: the host's share of the call
        if not cuda:
            return out, self.host_ms, recorder.ops
        torch.cuda.synchronize()
        end.record()
        end.synchronize()
        return out, start.elapsed_time(end), recorder.ops

    def _advisory_checks(self, outs: list, ops: set, running: str | None) -> dict | None:
        from kernelscale.verify.inputs import foreign_output
        from kernelscale.verify.op_policy import compute_ops

        if running:
            return _rejected("threads", running)
        if foreign := foreign_output(outs):
            return _rejected(
                "tensor_subclass", f"forward returned a {foreign}: return torch.Tensor (or a tuple of them)"
            )
        work = compute_ops(ops, self.forbid_copies)
        if work and not self.allow_torch:
            return _rejected(
                "torch_fallback",
                "forward ran torch compute ops: " + ", ".join(f"aten.{op}" for op in sorted(work)),
            )
        shared = _aliasing(outs, self.buffers, self.previous, self.output_twins)
        if shared:
            return _rejected("aliasing", shared)
        return None

    def check_guards(self, msg: dict) -> dict:
        found = self.guards.violations()
        if found:
            rule, detail = found[0]
            return _rejected(rule, detail)
        return {"ok": True}

    def handle(self, msg: dict) -> dict:
        op = msg.get("op")
        handlers = {
            "warm": self.warm,
            "load": self.load,
            "stage": self.stage,
            "key": self.key,
            "go": self.go,
            "commit": self.commit,
            "ship": self.ship,
            "guards": self.check_guards,
        }
        handler = handlers.get(op)
        if handler is None:
            return {"ok": False, "status": "runtime_error", "reason": f"unknown op {op!r}"}
        try:
            return handler(msg)
        except BaseException as exc:  # anything the candidate raises is its verdict, not our crash
            if isinstance(exc, KeyboardInterrupt):
                raise
            reason = candidate_frames(exc, self.code_file)
            if "out of memory" in reason.lower():
                reason = "out of memory: " + reason.splitlines()[-1]
            return {"ok": False, "status": status_of(exc), "reason": reason}


def _rejected(rule: str, reason: str) -> dict:
    return {"ok": False, "status": "rejected", "rule": rule, "reason": reason}


def _span(t) -> tuple[int, int]:
    storage = t.untyped_storage()
    return storage.data_ptr(), storage.data_ptr() + storage.nbytes()


def _aliasing(outs: list, inputs: list, previous: list, twins: frozenset = frozenset()) -> str | None:
    """An output must be new memory: not a view of an input, of another output or of the last
    call's output (a view returned as a "copy", or an answer cached between calls). Outputs
    `twins` names (where the reference returns one tensor twice) may be one tensor likewise."""
    import torch

    from kernelscale.verify.inputs import same_view

    tensors = [(i, o) for i, o in enumerate(outs) if isinstance(o, torch.Tensor) and o.numel()]
    others = [("input", i, x) for i, x in enumerate(inputs) if isinstance(x, torch.Tensor) and x.numel()]
    others += [("the previous call's output", i, x) for i, x in enumerate(previous) if x.numel()]
    for n, out in tensors:
        lo, hi = _span(out)
        twin = [m for m, t in tensors if (min(n, m), max(n, m)) in twins and same_view(out, t)]
        peers = others + [("output", m, t) for m, t in tensors if m != n and m not in twin]
        for what, index, x in peers:
            xlo, xhi = _span(x)
            if lo < xhi and xlo < hi and x.device == out.device:
                return f"output {n} shares memory with {what} {index}; return a new tensor"
    return None


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
