"""Start a process the verifier does not trust, talk to it with deadlines, and kill it whole.

The child runs in its own process group and session, in a temporary directory, with an
allow-listed environment (no keys, no tokens), core dumps off and, on the CPU, a memory limit.
Messages are JSON lines over its stdin/stdout; a deadline is enforced with `select`, never a
thread. On timeout the whole group is killed, so compilers or helpers it started go too.
"""

from __future__ import annotations

import json
import os
import re
import resource
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

ENV_ALLOWED = (
    "PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "CUDA_VISIBLE_DEVICES", "CUDA_HOME", "CUDA_PATH",
    "LD_LIBRARY_PATH", "TRITON_INTERPRET", "TRITON_CACHE_DIR", "TRITON_PTXAS_PATH", "CC", "CXX",
    "PYTHONPATH", "VIRTUAL_ENV", "NCCL_NVLS_ENABLE", "TORCH_SYMM_MEM_DISABLE_MULTICAST",
    "NVSHMEM_DISABLE_NVLS", "TORCH_CUDA_ARCH_LIST", "OMP_NUM_THREADS",
)
SECRET_LOOKING = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH", re.IGNORECASE)


class ChildTimeout(Exception):
    pass


class ChildGone(Exception):
    """The child exited or closed its channel; `describe()` says how it ended."""


def sandbox_env(extra: dict[str, str] | None = None, home: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in ENV_ALLOWED and not SECRET_LOOKING.search(k)}
    env.update(extra or {})
    env["HOME"] = home or env.get("HOME", "/tmp")
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return {k: v for k, v in env.items() if not SECRET_LOOKING.search(k)}


def _limits(memory_bytes: int | None):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if memory_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))

    return apply


class Child:
    """A subprocess speaking JSON lines, in its own process group."""

    def __init__(self, module: str, args: list[str], workdir: Path, env: dict[str, str],
                 memory_bytes: int | None = None):
        self.log_path = workdir / "child.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=workdir, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
            start_new_session=True, preexec_fn=_limits(memory_bytes),
        )
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.proc.stdout, selectors.EVENT_READ)
        self._buffer = b""

    def send(self, message: dict) -> None:
        try:
            self.proc.stdin.write((json.dumps(message) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise ChildGone(self.describe_exit()) from None

    def recv(self, deadline: float) -> dict:
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ChildTimeout()
            if not self._selector.select(timeout=remaining):
                continue
            chunk = os.read(self.proc.stdout.fileno(), 1 << 16)
            if not chunk:
                raise ChildGone(self.describe_exit())
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            raise ChildGone(f"broke the result protocol: {line[:200]!r}") from None
        if not isinstance(message, dict):
            raise ChildGone("broke the result protocol")
        return message

    def request(self, message: dict, deadline: float) -> dict:
        self.send(message)
        return self.recv(deadline)

    def describe_exit(self) -> str:
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return "stopped answering"
        if code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exited with status {code}"

    def log_tail(self, lines: int = 25) -> str:
        self._log.flush()
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """Kill the whole process group (the child and anything it started)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self._selector.close()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self._log.close()
