"""Process-level guards installed in the candidate's process before its code is imported.

* Identity snapshot of the functions the timing and checks rely on: a candidate that replaces
  `time.perf_counter` or `torch.cuda.Event.elapsed_time` is caught even if it hid the
  assignment from the static screen.
* An audit hook (it cannot be removed once added) that refuses sockets and any subprocess
  other than the compilers Triton and `load_inline` need, found outside every place the
  candidate can write. Advisory, like everything in the candidate's process: the OS sandbox
  (`isolation.py`) is what holds.
* The Python thread count, which must not grow while the candidate runs.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time

import torch

ALLOWED_EXECUTABLES = frozenset(
    {
        "ptxas",
        "ptxas-blackwell",
        "nvcc",
        "nvlink",
        "fatbinary",
        "cuobjdump",
        "nvdisasm",
        "ninja",
        "c++",
        "g++",
        "gcc",
        "cc",
        "x86_64-linux-gnu-gcc",
        "x86_64-linux-gnu-g++",
        "ldconfig",
        "ldconfig.real",
        "which",
        "uname",
        "cicc",
    }
)
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
        # the objects themselves, not their ids: a replaced function that nothing else held is
        # freed, and its replacement can be allocated at the same address, i.e. the same id()
        # (a cheat that replaces one on every call passed unnoticed now and then that way)
        self.snapshot = dict(_watched())
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
        for name, original in self.snapshot.items():
            if _resolve(name) is not original:
                found.append(("monkey_patch", f"{name} was replaced while the candidate ran"))
        if threading.active_count() > self.python_threads:
            found.append(
                ("threads", f"{threading.active_count() - self.python_threads} Python thread(s) started")
            )
        return found


def _candidate_writable_roots() -> list[str]:
    roots = [os.getcwd(), os.environ.get("HOME"), os.environ.get("TMPDIR"), "/tmp", "/var/tmp", "/dev/shm"]
    return [os.path.realpath(r) for r in roots if r]


def _planted(path: str) -> str | None:
    """Why `path` may be the candidate's own program: a name on the allow-list proves nothing
    if the file, or any link on the way to it, sits where the candidate can write (`./cc` linked
    to /bin/sh). As root `os.access` says yes to everything, so there only the known writable
    places count; the OS sandbox (read-only root, uid nobody) is what really holds."""
    roots = _candidate_writable_roots()
    for _ in range(40):  # the kernel's own limit on links followed
        folder = os.path.realpath(os.path.dirname(os.path.abspath(path)))
        if _read_only(folder):
            pass  # a read-only mount (the sandbox's root): nothing can be planted there
        elif any(folder == r or folder.startswith(r + os.sep) for r in roots):
            return f"{path} is in a directory the candidate can write ({folder})"
        elif os.getuid() != 0 and os.access(folder, os.W_OK):
            return f"{path} is in a directory the candidate can write ({folder})"
        if not os.path.islink(path):
            return None
        path = os.path.join(os.path.dirname(path), os.readlink(path))
    return f"{path}: too many symbolic links"


def _read_only(folder: str) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _program(event: str, args: tuple) -> str:
    """The file an exec/spawn audit event is about to run, resolved as the OS will."""
    executable = args[0] if args else None
    if event == "subprocess.Popen" and executable is None and len(args) > 1:
        argv = args[1]
        executable = argv if isinstance(argv, (str, bytes)) else (argv[0] if argv else "")
    if isinstance(executable, (list, tuple)):
        executable = executable[0] if executable else ""
    program = os.fsdecode(executable or "")
    if program and os.sep not in program:
        path = os.environ.get("PATH", os.defpath)
        program = shutil.which(program, path=path) or program
    return program


def _audit(event: str, args: tuple) -> None:
    if event in BLOCKED_EVENTS:
        raise PermissionError(f"sandbox: {event} is not allowed in a candidate")
    if event in ("subprocess.Popen", "os.posix_spawn", "os.exec"):
        program = _program(event, args)
        name = os.path.basename(program)
        if name not in ALLOWED_EXECUTABLES:
            raise PermissionError(f"sandbox: starting {name!r} is not allowed in a candidate")
        planted = _planted(program)
        if planted:
            raise PermissionError(f"sandbox: starting {name!r} is not allowed in a candidate: {planted}")


def install_audit_hook() -> None:
    sys.addaudithook(_audit)
