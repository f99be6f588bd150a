"""Baselines that compile, each built and timed in a process of its own (`python -m` this module).

Compiling FlexAttention and `torch.compile` takes 10-35 s on an H200 host (Dynamo, Inductor,
Triton), most of a problem's first verdict when done in line, before the candidate. In a process
of its own it runs while the candidate starts, compiles and passes its correctness trials; in the
oracle's process it would hold the interpreter lock the oracle needs. Nothing is timed while a
compile runs: the oracle stops every build (SIGSTOP to its session, compiler workers included)
around the calibration, the candidate's timed calls and the baselines' calls, and lets it go on
after (oracle.builds_paused). An early verdict does not wait for a build; a run's last attempts
do (VerifyOptions.wait_for_builds). Baselines are timed here on request, only after the
candidate's process tree is killed, one process at a time, by the same method (timing.py) on the
same input set (the problem's timing seed and the timing model's init seed). The process runs our
code only, the problem's own reference and baselines, never a candidate's.

It keeps off the host's first cores: the upper half of the cores the oracle may use, at nice 10,
so that a compile does not slow the oracle or a candidate's runner while they work untimed.

The protocol is one JSON line each way: a setup line, then `built` (or a note why not); then
for each `time` request the samples (or a note). The process exits when its stdin closes.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from kernelscale.verify.timing import Samples

BUILD_TIMEOUT_S = 900.0  # Inductor on a busy host: minutes at worst; past this it is broken
TIME_TIMEOUT_S = 300.0


class BaselineProcess:
    """The oracle's handle on one baseline's process (a session of its own, so that pausing or
    killing it reaches the compiler's worker processes too)."""

    def __init__(self, setup: dict, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.log_path = folder / "baseline.log"
        self._replies: queue.Queue = queue.Queue()
        self._started = time.monotonic()
        self.built_note: str | None = None  # why it is not available, once the build is answered
        self.ready_s: float | None = None  # from its start to its build's answer (imports included)
        self._built = False
        self.paused = False
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "kernelscale.verify.baseline_process"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=folder,
                env=os.environ | {"PYTHONUNBUFFERED": "1"},
                start_new_session=True,
            )
        threading.Thread(target=self._read, daemon=True).start()
        self._send(setup | {"folder": str(folder)})

    @property
    def building(self) -> bool:
        """Still compiling (its build not answered yet); never waits."""
        if not self._built:
            try:
                reply = self._gone_if_none(self._replies.get_nowait(), "building")
            except queue.Empty:
                if time.monotonic() - self._started < BUILD_TIMEOUT_S:
                    return True
                reply = self._reply(time.monotonic(), "building")
            self._take_build_reply(reply)
        return False

    def wait_built(self) -> str | None:
        """Block until the build is answered; None when it is ready, else why it is not."""
        if not self._built:
            self.resume()
            self._take_build_reply(self._reply(self._started + BUILD_TIMEOUT_S, "building"))
        return self.built_note

    def pause(self) -> None:
        """Stop a build (SIGSTOP to its session) while something is timed: a compile must not
        share the host or the GPU with timed calls. A built process only waits; left as it is."""
        if self.building and self.process.poll() is None:
            self._signal(signal.SIGSTOP)
            self.paused = True

    def resume(self) -> None:
        if self.paused:
            self._signal(signal.SIGCONT)
            self.paused = False

    def _take_build_reply(self, reply: dict) -> None:
        self._built = True
        self.ready_s = round(reply.pop("_at", time.monotonic()) - self._started, 3)
        self.built_note = None if reply.get("built") else reply.get("note", "not built")
        if self.built_note is not None:
            self.close()

    def _signal(self, signum: int) -> None:
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass

    def time(self, calls: int, round_calls: int, target_spread: float, seconds: float) -> Samples | str:
        """Timed calls in the process (built first); the samples, or a note why there are none."""
        note = self.wait_built()
        if note is not None:
            return note
        request = {"calls": calls, "round_calls": round_calls, "target_spread": target_spread}
        self._send(request | {"seconds": seconds})
        reply = self._reply(time.monotonic() + TIME_TIMEOUT_S, "timing")
        if "samples" not in reply:
            return reply.get("note", "failed while timing")
        return Samples.from_json(reply["samples"])

    def close(self) -> None:
        """End it and its compiler workers at once: it holds nothing worth a clean exit, and
        the interpreter's exit waits for Inductor's worker pool (seconds, measured on an H200
        host after the baselines' calls, before the verdict)."""
        self.resume()
        self._signal(signal.SIGKILL)
        try:
            self.process.stdin.close()
        except OSError:
            pass
        self.process.wait()

    def _send(self, message: dict) -> None:
        try:
            self.process.stdin.write((json.dumps(message) + "\n").encode())
            self.process.stdin.flush()
        except OSError:
            pass  # it died: the reply reader reports that

    def _read(self) -> None:
        for line in self.process.stdout:
            try:
                self._replies.put(json.loads(line) | {"_at": time.monotonic()})
            except (ValueError, TypeError):
                continue
        self._replies.put(None)  # end of output: the process is gone

    def _reply(self, deadline: float, doing: str) -> dict:
        try:
            reply = self._replies.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            self._signal(signal.SIGKILL)
            return {"note": f"no answer while {doing} in {deadline - self._started:.0f} s; killed"}
        return self._gone_if_none(reply, doing)

    def _gone_if_none(self, reply: dict | None, doing: str) -> dict:
        """The reader's end-of-output marker (None) as a note: the process is gone."""
        if reply is not None:
            return reply
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = "unknown"
        return {"note": f"its process exited (code {code}) while {doing}: {self._log_tail()}"}

    def _log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no log"
        return lines[-1][:200] if lines else "no log"


def start_processes(names: tuple[str, ...], problem, device: str, timing_seed: int, folder: Path) -> dict:
    """One process per name, all building at once (their compiles overlap each other too)."""
    setup = {"problem": problem.to_json(), "device": device, "timing_seed": timing_seed}
    return {name: BaselineProcess(setup | {"name": name}, folder / f"baseline-{name}") for name in names}


def _keep_off_first_cores() -> None:
    """The upper half of this process's cores (at least one), nice 10. Inductor compiles with this
    process's pool of workers sized to those cores (on an H200 host, torch.compile of the
    attention reference was ready about 22 s after its start with a pool of 8 workers, 35 s
    after with none)."""
    cores = sorted(os.sched_getaffinity(0))
    upper = cores[len(cores) // 2 :] or cores
    os.sched_setaffinity(0, upper)
    os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", str(len(upper)))
    os.nice(10)


def _serve() -> None:
    """The process's side: build one baseline, then answer timing requests until stdin closes."""
    _keep_off_first_cores()
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray prints from the problem module or the compiler must not break the channel
    setup = json.loads(sys.stdin.readline())
    try:
        fn, inputs, note = _build(setup)
    except Exception as exc:  # the baseline cannot be built here: say why, in one line
        fn, inputs, note = None, [], f"not built: {_one_line(exc)}"
    if fn is None:
        out.write(json.dumps({"note": note or "not available for this problem or device"}) + "\n")
        return
    out.write(json.dumps({"built": True}) + "\n")
    for line in sys.stdin:
        out.write(json.dumps(_time(fn, inputs, setup["device"], json.loads(line))) + "\n")


def _build(setup: dict):
    import torch

    from kernelscale.problems.module import apply_sizes, import_source
    from kernelscale.problems.problem import Problem
    from kernelscale.verify import timing
    from kernelscale.verify.baselines import TIMING_INIT_SEED, build_baselines
    from kernelscale.verify.inputs import make_inputs, make_model

    device = setup["device"]
    if device == "cuda":
        torch.cuda.set_device(0)  # the oracle's CUDA_VISIBLE_DEVICES is inherited
    problem = Problem.from_json(setup["problem"])
    module = import_source(problem.source, problem.file_stem, setup["folder"])
    apply_sizes(module, problem.sizes_for(device))
    model, init_inputs = make_model(module, "Model", TIMING_INIT_SEED, device)
    found = build_baselines((setup["name"],), module, model, init_inputs, device)
    fn = found.callables.get(setup["name"])
    if fn is None:
        return None, [], found.notes.get(setup["name"])
    inputs = make_inputs(module, setup["timing_seed"], 1.0, device)
    timing.warm_up(fn, inputs, device)  # the compile itself happens here, on the first call
    if device == "cuda":
        torch.cuda.empty_cache()
    return fn, inputs, None


def _time(fn, inputs: list, device: str, request: dict) -> dict:
    from kernelscale.verify import timing

    try:
        timing.warm_up(fn, inputs, device)  # clocks and caches, as an in-line baseline gets
        flush = timing.l2_flush_buffer(device)
        samples = timing.time_rounds(
            fn,
            inputs,
            device,
            flush,
            calls=int(request["calls"]),
            round_calls=int(request["round_calls"]),
            target_spread=float(request["target_spread"]),
            deadline=time.monotonic() + float(request["seconds"]),
        )
    except Exception as exc:
        return {"note": f"failed while timing: {_one_line(exc)}"}
    return {"samples": samples.to_json()}


def _one_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0][:160] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"


if __name__ == "__main__":
    _serve()
