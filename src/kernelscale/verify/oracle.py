"""The oracle: one long-lived process per device (`python -m kernelscale.verify.oracle`).

It draws every input set from secret seeds, ships it by value, computes the reference, compares,
and measures time from its own process; the candidate runs in a fresh runner process per attempt
and only ever sees input values. The oracle keeps each problem's module, reference op list,
compiled baselines and measured handshake cost between attempts.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from kernelscale.problems.module import apply_sizes, import_source
from kernelscale.problems.problem import Problem
from kernelscale.verify.baseline_process import start_processes
from kernelscale.verify.baselines import (
    TIMING_INIT_SEED,
    BaselineSet,
    Roofline,
    build_baselines,
    measure_roofline,
)
from kernelscale.verify.exchange import Exchange, load_values
from kernelscale.verify.inputs import make_inputs, make_model, outputs_as_list, same_view, tensor_bytes
from kernelscale.verify.op_policy import is_data_movement, recording
from kernelscale.verify.slab import slab_bytes
from kernelscale.verify.timing import Stopwatch, rounded
from kernelscale.verify.trials import Case, apply_shift
from kernelscale.verify.verdict import describe_environment, verifier_error

# After stopping a build, the GPU work it had queued (a compiled kernel's first calls, a few ms
# at most) drains before anything is timed.
PAUSE_SETTLE_S = 0.05


class ProblemSetupError(Exception):
    """The problem itself cannot be verified (not the candidate's fault)."""


@contextmanager
def _problem_step(what: str):
    """Name the problem's own function that failed, on its first run in this oracle."""
    try:
        yield
    except torch.cuda.OutOfMemoryError:
        raise
    except Exception as exc:
        raise ProblemSetupError(f"the problem's {what} raised {type(exc).__name__}: {exc}") from None


def _check_reference_outputs(outputs: list) -> None:
    if not outputs:
        raise ProblemSetupError("the problem's Model.forward returned an empty tuple: nothing to compare")
    for index, value in enumerate(outputs):
        if not isinstance(value, torch.Tensor):
            where = "" if len(outputs) == 1 else f" (output {index})"
            raise ProblemSetupError(
                f"the problem's Model.forward returned {type(value).__name__}{where}: the verifier "
                "compares a tensor, or a tuple or list of tensors"
            )


@dataclass
class LoadedProblem:
    problem: Problem
    module: object
    forbid_copies: bool
    timing_seed: int
    baselines: BaselineSet = field(default_factory=BaselineSet)
    timing_model: object = None
    output_bytes: int = 0  # of one reference call at the timing shape (for the roofline floor)
    input_bytes: int = (
        0  # room for one input set in the slab (slab.slab_bytes), made before the candidate runs
    )
    calibration: object = None  # the handshake and shipping costs of a trusted runner (calibration.py)
    # Baselines built and timed in processes of their own (baseline_process.py), by name, until
    # they are timed after a candidate; then their samples, kept for later attempts here.
    baseline_processes: dict = field(default_factory=dict)
    timed_apart: dict = field(default_factory=dict)
    output_twins: list = field(default_factory=list)  # [i, j]: the reference returns one tensor twice
    input_rank: int = 1  # dimensions of its largest floating input: one mixed-rows trial along each
    load_s: dict = field(default_factory=dict)  # seconds per step of loading it here (its first attempt)


@dataclass
class Reference:
    """One attempt's reference model, built from that attempt's init seed (never an input seed)."""

    model: object
    init_seed: int
    init_message: dict  # how the runner gets the same init arguments: by value or by recipe


class Oracle:
    def __init__(self, device: str, workdir: Path):
        self.device = device
        self.workdir = workdir
        self.environment = describe_environment(device)
        self.roofline: Roofline | None = None  # measured by `measure_ceilings`, after the spares start
        self.start_s: dict[str, float] = {}  # seconds of the oracle's own start-up steps
        self.problems: dict[str, LoadedProblem] = {}
        self.known_baselines: dict[str, float] = {}  # of the request being served (VerifyOptions)
        self._flush: torch.Tensor | None = None
        self._probe: torch.Tensor | None = None
        self._gpu: tuple | None = None  # (GpuConfinement or None, a line for the report), once
        self.spares = None  # spare.Spares: the next attempt's runner, started ahead (set by serve)
        # Compiled baselines build in processes of their own, in parallel with the attempt, on
        # the GPU (where they compile); on the CPU in line (tests set this to use processes).
        self.separate_baselines = device == "cuda"
        self._warming: threading.Thread | None = None
        self.warm_s: float | None = None  # seconds of the masking kernels' warm-up (warm_kernel.py)

    def start_warm(self) -> None:
        """Compile the masking kernels in a thread while the oracle waits for its first request
        and loads its problem (a fresh machine's Triton cache holds none of them)."""
        if self.device != "cuda":
            return

        def warm() -> None:
            from kernelscale.verify import warm_kernel

            started = time.monotonic()
            try:
                warm_kernel.warm_oracle_masking()
            except Exception:  # noqa: BLE001 (best effort: the first call compiles them instead)
                pass
            self.warm_s = round(time.monotonic() - started, 3)

        self._warming = threading.Thread(target=warm, name="ks-warm", daemon=True)
        self._warming.start()

    def measure_ceilings(self) -> None:
        """The card's matmul and copy ceilings (the roofline floor a time is held to): measured
        once the runners started ahead are on their way, since a fresh machine's first cuBLAS
        call (loading the library from disk) would otherwise delay them."""
        if self.device == "cuda" and self.roofline is None:
            started = time.monotonic()
            self.roofline = measure_roofline()
            self.start_s["roofline"] = round(time.monotonic() - started, 3)

    def wait_warm(self) -> dict | None:
        """Before anything masks or is timed: the warm-up's compile must not share the host.
        The first time, its seconds and how long the attempt waited for it; then None."""
        if self._warming is None:
            return None
        asked = time.monotonic()
        self._warming.join()
        self._warming = None
        return {"took": self.warm_s, "waited": round(time.monotonic() - asked, 3)}

    def gpu_confinement(self):
        """The one-GPU confinement for candidate sandboxes (gpu_confine.py), probed once; on the
        CPU, or when it cannot be had, None with the reason for the isolation report."""
        if self._gpu is None:
            if self.device != "cuda":
                self._gpu = (None, "")
            else:
                from kernelscale.verify import gpu_confine

                try:
                    self._gpu = gpu_confine.for_this_process(self.workdir)
                except Exception as exc:  # a probe that breaks leaves the sandbox as it was
                    self._gpu = (None, f"every GPU visible: the probe failed ({type(exc).__name__}: {exc})")
        return self._gpu

    def load(self, problem: Problem) -> LoadedProblem:
        key = problem.content_hash()
        if key not in self.problems:
            started = time.monotonic()
            folder = self.workdir / key
            folder.mkdir(parents=True, exist_ok=True)
            module = import_source(problem.source, problem.file_stem, folder)
            apply_sizes(module, problem.sizes_for(self.device))
            imported = time.monotonic()
            forbid_copies, twins, rank, steps = self._first_reference_run(module)
            self.problems[key] = LoadedProblem(
                problem=problem,
                module=module,
                forbid_copies=forbid_copies,
                timing_seed=secrets.randbits(31),
                output_twins=twins,
                input_rank=rank,
                load_s={"import": round(imported - started, 3)} | steps,
            )
        return self.problems[key]

    def _first_reference_run(self, module) -> tuple[bool, list[list[int]], int, dict[str, float]]:
        """The problem's first run here: does its reference only copy data (then copies are the
        work, not bookkeeping), which of its outputs are one tensor returned twice (a candidate
        may return them so too), and how many dimensions has its largest floating input (the
        mixed-rows trials run along each)? A failure names the problem's own function, and
        outputs that are not tensors are refused now: every candidate would be judged against
        them in vain. Also returns the seconds of each step (the first CUDA work is here)."""
        steps: dict[str, float] = {}
        watch = Stopwatch(steps)
        with _problem_step("Model(*get_init_inputs())"):
            model, _ = make_model(module, "Model", 0, self.device)
        watch.lap("model")
        with _problem_step("get_inputs()"):
            inputs = make_inputs(module, 0, 1.0, self.device)
        watch.lap("inputs")
        with _problem_step("Model.forward"), torch.no_grad(), recording() as recorder:
            out = model(*inputs)
        self.settle()
        watch.lap("forward")
        outs = outputs_as_list(out)
        _check_reference_outputs(outs)
        twins = [[i, j] for j in range(len(outs)) for i in range(j) if same_view(outs[i], outs[j])]
        floating = [x.dim() for x in inputs if isinstance(x, torch.Tensor) and x.is_floating_point()]
        return is_data_movement(recorder.ops), twins, max(floating, default=1), rounded(steps)

    def new_reference(self, loaded: LoadedProblem, exchange: Exchange) -> Reference:
        """A fresh init seed per attempt; the init arguments travel by value where they can."""
        init_seed = secrets.randbits(31)
        model, init_args = make_model(loaded.module, "Model", init_seed, self.device)
        recipe = getattr(loaded.module, "init_recipe", None)
        if recipe is not None:
            return Reference(model, init_seed, {"init_recipe": list(recipe())})
        path = exchange.write("init", init_args)
        try:
            load_values(path)
        except Exception as exc:
            raise ProblemSetupError(
                f"get_init_inputs() returns values that cannot travel by value "
                f"(tensors, numbers, strings, lists, dicts only): {exc}"
            ) from None
        return Reference(model, init_seed, {"init_file": str(path)})

    def case_inputs(self, loaded: LoadedProblem, case: Case) -> list:
        inputs = make_inputs(loaded.module, case.seed, 1.0, self.device)
        if case.shift == "problem":  # the problem's own edge trial (trials.py)
            with _problem_step("edge_inputs"), torch.no_grad():
                return list(loaded.module.edge_inputs(inputs, case.seed))
        return apply_shift(inputs, case)

    def reference_outputs(self, reference: Reference, inputs: list) -> list:
        with torch.no_grad():
            out = outputs_as_list(reference.model(*inputs))
        return [o.detach() if isinstance(o, torch.Tensor) else o for o in out]

    def flush_l2(self) -> None:
        """Evict the L2 from this process before a timed call: the candidate cannot skip it."""
        if self.device != "cuda":
            return
        if self._flush is None:
            from kernelscale.verify.timing import l2_flush_buffer

            self._flush = l2_flush_buffer(self.device)
        self._flush.zero_()
        torch.cuda.synchronize()

    def settle(self) -> None:
        """Wait for this process's GPU work (outside any timed window: for the cost split)."""
        if self.device == "cuda":
            torch.cuda.synchronize()

    def probe_gpu(self) -> None:
        """A one-element kernel from this process, synchronized, right after the candidate says
        `done`: if its work is still running on the GPU, this waits behind it (timed by the
        caller and held to the figure with a trusted runner)."""
        if self.device != "cuda":
            return
        if self._probe is None:
            self._probe = torch.zeros(1, device="cuda")
        self._probe.add_(1.0)
        torch.cuda.synchronize()

    def timing_setup(self, loaded: LoadedProblem) -> None:
        """Build the timing model and baselines once per problem (compilation happens here, or
        starts here in processes of its own)."""
        if loaded.timing_model is not None:
            return
        # Baselines a stored earlier measurement already covers are not built (compiled) again.
        wanted = tuple(name for name in loaded.problem.baselines if name not in self.known_baselines)
        apart = tuple(name for name in wanted if name != "eager") if self.separate_baselines else ()
        if apart:  # started first, so that their compiles overlap everything from here on
            folder = self.workdir / loaded.problem.content_hash()
            loaded.baseline_processes = start_processes(
                apart, loaded.problem, self.device, loaded.timing_seed, folder
            )
        model, init_inputs = make_model(loaded.module, "Model", TIMING_INIT_SEED, self.device)
        inputs = make_inputs(loaded.module, loaded.timing_seed, 1.0, self.device)
        loaded.input_bytes = slab_bytes(inputs)
        with torch.no_grad():
            out = outputs_as_list(model(*inputs))
        del inputs
        loaded.output_bytes = tensor_bytes(out)
        del out
        loaded.timing_model = model
        in_line = tuple(name for name in wanted if name not in apart)
        loaded.baselines = build_baselines(in_line, loaded.module, model, init_inputs, self.device)

    def wait_for_builds(self, loaded: LoadedProblem) -> None:
        for process in loaded.baseline_processes.values():
            process.wait_built()

    @contextmanager
    def builds_paused(self, loaded: LoadedProblem):
        """Baseline builds stopped while the body times something (a calibration, a candidate's
        timed calls, baselines): a compile must share neither the host nor the GPU with timed
        calls. They go on when it ends, whatever happened, while nothing is timed."""
        processes = list(loaded.baseline_processes.values())
        try:
            for process in processes:
                process.pause()
            if any(p.paused for p in processes):
                time.sleep(PAUSE_SETTLE_S)
            yield
        finally:
            for process in processes:
                process.resume()

    def close(self) -> None:
        for loaded in self.problems.values():
            for process in loaded.baseline_processes.values():
                process.close()
            loaded.baseline_processes.clear()


def _send(results, message: dict) -> bool:
    """One JSON line to the pool; False when the pool has closed its end."""
    try:
        results.write(json.dumps(message, default=str) + "\n")
    except (BrokenPipeError, ConnectionResetError):
        # what is still buffered would fail again at exit, with a traceback on the user's terminal
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, results.fileno())
        os.close(devnull)
        return False
    return True


def serve(device: str) -> None:
    """Answer verification requests, one JSON line each, until stdin closes."""
    from kernelscale.verify.attempt import run_attempt
    from kernelscale.verify.options import VerifyOptions
    from kernelscale.verify.spare import Spares

    results = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray prints from problem modules must not break the channel
    workdir = Path(os.environ.get("KERNELSCALE_ORACLE_DIR") or Path.cwd())
    oracle = Oracle(device, workdir)
    oracle.spares = Spares(oracle)
    oracle.spares.prepare(None, count=2)  # the first attempt calibrates with one of them
    oracle.start_warm()
    oracle.measure_ceilings()
    _send(results, {"hello": oracle.environment})
    for line in sys.stdin:
        request = json.loads(line)
        problem = Problem.from_json(request["problem"])
        options = VerifyOptions.from_json(request.get("options", {}))
        oracle.known_baselines = dict(options.known_baselines or {})
        try:
            verdict = run_attempt(oracle, problem, request["code"], options)
        except Exception as exc:  # the reference or a baseline broke: report it, keep serving
            text = str(exc).splitlines()[0][:300] if str(exc) else ""
            # a ProblemSetupError's message names what failed; other exceptions need their type
            verdict = verifier_error(
                text if isinstance(exc, ProblemSetupError) else f"{type(exc).__name__}: {text}"
            )
        if not _send(results, {"id": request.get("id"), "verdict": verdict.to_json()}):
            break  # the pool is gone (its process ended): nobody to answer, clean up and go
        oracle.spares.prepare(options.memory_limit_gb)  # while the other side records and proposes
    oracle.spares.discard()
    oracle.close()
    _remove_attempts_dir()


def _remove_attempts_dir() -> None:
    """The pool's folder for this oracle's attempt folders, once they are gone (the pool removes
    it too, after this process; a pool that never closed leaves only what this left)."""
    folder = os.environ.get("KERNELSCALE_ATTEMPTS_DIR")
    if folder:
        try:
            os.rmdir(folder)
        except OSError:  # not empty: an attempt folder that could not go
            pass


def main() -> None:
    device = sys.argv[1] if len(sys.argv) > 1 else ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda":
        torch.cuda.set_device(0)  # the pool pins each oracle with CUDA_VISIBLE_DEVICES
    serve(device)


if __name__ == "__main__":
    main()
