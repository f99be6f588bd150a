"""The pieces of a verifier pool: oracle processes, GPU choice, the static screen's verdict.

`kernelscale.verify.slots.SlotPool` dispatches attempts over workers built from these (one
oracle per GPU, or CPU stand-ins). The static screen runs in the pool, before a candidate
costs any GPU time. A crash, abort, illegal memory access or hang costs that attempt: runners
die alone; an oracle that dies or stops answering is replaced, and the pool goes on.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from kernelscale.problems.problem import Problem
from kernelscale.verify.cleanup import remove_tree, sweep_stale
from kernelscale.verify.sandbox import sandbox_env
from kernelscale.verify.screen import screen
from kernelscale.verify.verdict import Verdict

ORACLE_START_S = 600.0  # first start imports torch and, on a GPU, measures the roofline
ORACLE_EXIT_S = 10.0  # an idle oracle told to stop removes its spare runners, then exits
ATTEMPTS_PREFIX = "ks-oracle-"  # then the pool's pid, then mkdtemp's letters
ORACLE_MARGIN_S = 900.0  # beyond a candidate's own timeout: the reference and baselines compile


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def visible_gpus(spec: str | None) -> list[int]:
    import torch

    count = torch.cuda.device_count()
    if not spec or spec == "all":
        return list(range(count))
    chosen = [int(x) for x in spec.split(",") if x.strip()]
    bad = [g for g in chosen if g < 0 or g >= count]
    if bad:
        raise ValueError(f"GPU(s) {bad} not visible (this machine has {count})")
    return chosen


def screen_verdict(problem: Problem, code: str) -> Verdict | None:
    """The static screen's verdict, or None when the candidate may run."""
    try:
        found = screen(code, allow_torch=problem.allow_torch)
    except SyntaxError as exc:
        return Verdict("compile_error", f"SyntaxError: {exc.msg}", line=exc.lineno)
    except (ValueError, RecursionError) as exc:
        return Verdict("compile_error", f"cannot parse: {exc}")
    if not found:
        return None
    first = found[0]
    return Verdict("rejected", first.message(), rule=first.rule, line=first.line)


# `python -I` puts neither the working directory nor PYTHONPATH nor the user's site on sys.path,
# so the package is found through the path the parent imported it from.
ORACLE_BOOTSTRAP = (
    "import sys; sys.path.insert(0, sys.argv.pop(1)); from kernelscale.verify.oracle import main; main()"
)


def oracle_command(device: str) -> list[str]:
    """The oracle, isolated from anything a candidate could plant (e.g. `redis.py` in its cwd,
    which Inductor imports optionally): no cwd, PYTHONPATH or user site on sys.path."""
    import kernelscale

    package_root = os.path.dirname(os.path.dirname(os.path.realpath(kernelscale.__file__)))
    return [sys.executable, "-I", "-c", ORACLE_BOOTSTRAP, package_root, device]


def runner_seed_home() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "kernelscale" / "runner-seed"


def _attempts_dir() -> str | None:
    """A folder in /dev/shm for one oracle's attempt folders (enterable, not listable), so that
    whatever it leaves there when it is killed goes with it; None without a writable /dev/shm.
    Its name carries this process's pid: a later pool removes it if this one was killed before
    it could (cleanup.sweep_stale)."""
    if not (os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK)):
        return None
    sweep_stale("/dev/shm", ATTEMPTS_PREFIX)
    folder = tempfile.mkdtemp(prefix=f"{ATTEMPTS_PREFIX}{os.getpid()}-", dir="/dev/shm")
    os.chmod(folder, 0o711)
    return folder


def oracle_env(workdir: str, gpu: int | None) -> dict[str, str]:
    """Its working directory is `workdir` (enterable, not listable: attempt directories live
    there); its caches and HOME are in a private 0700 folder inside that no candidate is given."""
    os.chmod(workdir, 0o711)
    private = os.path.join(workdir, "private")
    os.mkdir(private, 0o700)
    env = sandbox_env({"KERNELSCALE_ORACLE_DIR": workdir}, home=private)
    env.update(
        TRITON_CACHE_DIR=f"{private}/triton",
        TRITON_HOME=private,
        TORCHINDUCTOR_CACHE_DIR=f"{private}/inductor",
        XDG_CACHE_HOME=f"{private}/xdg",
        TORCH_EXTENSIONS_DIR=f"{private}/torch_extensions",
        CUDA_CACHE_PATH=f"{private}/nv",
    )
    # kept across runs, in the user's own cache (never a candidate's): runner_seed.py
    env["KERNELSCALE_RUNNER_SEED"] = str(runner_seed_home())
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = str(gpu)
    # a forced sandbox mechanism, another size of the attempt folders, another folder for the
    # host-wide lock of trusted measurements (tests, diagnosis)
    for name in ("KERNELSCALE_ISOLATION", "KERNELSCALE_ATTEMPT_SCRATCH_MB", "KERNELSCALE_HOST_LOCK_DIR"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    return env


@dataclass
class _Oracle:
    device: str
    gpu: int | None
    proc: asyncio.subprocess.Process | None = None
    environment: dict = field(default_factory=dict)
    workdir: str = ""
    attempts: str | None = None  # its attempt folders' folder, in /dev/shm: removed after it

    async def start(self) -> None:
        self.workdir = tempfile.mkdtemp(prefix="kernelscale-oracle-")
        self.attempts = _attempts_dir()
        env = oracle_env(self.workdir, self.gpu)
        if self.attempts:
            env["KERNELSCALE_ATTEMPTS_DIR"] = self.attempts
        self.proc = await asyncio.create_subprocess_exec(
            *oracle_command(self.device),
            cwd=self.workdir,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            start_new_session=True,
            limit=2**26,
        )
        hello = await asyncio.wait_for(self.proc.stdout.readline(), ORACLE_START_S)
        if not hello:
            raise RuntimeError(
                f"the verifier oracle for {self.device} failed to start (see its stderr above)"
            )
        self.environment = json.loads(hello)["hello"]

    async def ask(self, request: dict, timeout: float) -> Verdict:
        self.proc.stdin.write((json.dumps(request) + "\n").encode())
        await self.proc.stdin.drain()
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise ConnectionError("the verifier oracle exited")
        return Verdict.from_json(json.loads(line)["verdict"])

    async def stop(self, graceful: bool = False) -> None:
        """End the oracle; `graceful` (an idle oracle, the pool closing): first let it see the end
        of its input, so that it removes its spare runners' attempt folders itself (in /dev/shm,
        each a tmpfs of its own where it may mount: folder_cap.py). Then its whole group goes."""
        if self.proc and self.proc.returncode is None:
            if graceful:
                try:
                    self.proc.stdin.close()
                    await asyncio.wait_for(self.proc.wait(), ORACLE_EXIT_S)
                except (TimeoutError, BrokenPipeError, ConnectionResetError):
                    pass
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await self.proc.wait()
        remove_tree(self.workdir)
        if self.attempts:  # what a killed oracle left: its spare runners' folders, an attempt's
            remove_tree(self.attempts)
