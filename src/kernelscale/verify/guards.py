"""Process-level guards installed in the candidate's process before its code is imported.

* Identity snapshot of the functions the timing and checks rely on: a candidate that replaces
  `time.perf_counter` or `torch.cuda.Event.elapsed_time` is caught even if it hid the
  assignment from the static screen.
* An audit hook (it cannot be removed once added) that refuses sockets and any subprocess
  other than the compilers Triton and `load_inline` need.
* The Python thread count, which must not grow while the candidate runs.
"""

from __future__ import annotations

import os
import sys
import threading
import time

import torch

ALLOWED_EXECUTABLES = frozenset({
    "ptxas", "ptxas-blackwell", "nvcc", "nvlink", "fatbinary", "cuobjdump", "nvdisasm", "ninja",
    "c++", "g++", "gcc", "cc", "x86_64-linux-gnu-gcc", "x86_64-linux-gnu-g++", "ldconfig",
    "ldconfig.real", "which", "uname", "cicc",
})
BLOCKED_EVENTS = ("socket.connect", "socket.bind", "socket.getaddrinfo", "socket.sendto", "os.system")


def _watched() -> dict[str, object]:
    from kernelscale.verify import timing

    watched = {
        # The runner's own timing code: patching it is the direct way to forge a time.
        "timing.time_block": timing.time_block,
        "timing.Samples.to_json": timing.Samples.to_json,
        "time.perf_counter": time.perf_counter,
        "time.perf_counter_ns": time.perf_counter_ns,
        "time.monotonic": time.monotonic,
        "time.time": time.time,
        "torch.equal": torch.equal,
        "torch.isnan": torch.isnan,
        "torch.Tensor.clone": torch.Tensor.clone,
        "torch.Tensor.copy_": torch.Tensor.copy_,
        "torch.Tensor.cpu": torch.Tensor.cpu,
        "torch.save": torch.save,
    }
    # Watched on CPU builds too: the classes exist there, and a patch is a patch.
    watched |= {
        "torch.cuda.Event": torch.cuda.Event,
        "torch.cuda.Event.elapsed_time": torch.cuda.Event.elapsed_time,
        "torch.cuda.Event.record": torch.cuda.Event.record,
        "torch.cuda.Event.synchronize": torch.cuda.Event.synchronize,
        "torch.cuda.synchronize": torch.cuda.synchronize,
    }
    return watched


def _resolve(path: str) -> object:
    root, *rest = path.split(".")
    from kernelscale.verify import timing

    obj = {"time": time, "torch": torch, "timing": timing}[root]
    for part in rest:
        obj = getattr(obj, part)
    return obj


class Guards:
    def __init__(self):
        self.snapshot = {name: id(fn) for name, fn in _watched().items()}
        self.python_threads = threading.active_count()

    def native_threads(self) -> int:
        try:
            return len(os.listdir("/proc/self/task"))
        except OSError:
            return -1

    def threads_running(self) -> str | None:
        """A Python thread still alive when forward returned can finish the work off the clock."""
        extra = threading.active_count() - self.python_threads
        return f"{extra} Python thread(s) still running after forward returned" if extra > 0 else None

    def violations(self) -> list[tuple[str, str]]:
        """(rule, detail) for every watched function replaced and for new Python threads."""
        found = []
        for name, ident in self.snapshot.items():
            if id(_resolve(name)) != ident:
                found.append(("monkey_patch", f"{name} was replaced while the candidate ran"))
        if threading.active_count() > self.python_threads:
            found.append(("threads", f"{threading.active_count() - self.python_threads} Python thread(s) started"))
        return found


def _audit(event: str, args: tuple) -> None:
    if event in BLOCKED_EVENTS:
        raise PermissionError(f"sandbox: {event} is not allowed in a candidate")
    if event in ("subprocess.Popen", "os.posix_spawn", "os.exec"):
        executable = args[0] if args else ""
        if isinstance(executable, (list, tuple)):
            executable = executable[0] if executable else ""
        name = os.path.basename(os.fsdecode(executable)) if executable else ""
        if name not in ALLOWED_EXECUTABLES:
            raise PermissionError(f"sandbox: starting {name!r} is not allowed in a candidate")


def install_audit_hook() -> None:
    sys.addaudithook(_audit)
