"""Start a process the verifier does not trust, talk to it with deadlines, and kill it whole.

The child runs under the strongest OS isolation this machine allows (`isolation.py`: PID,
network, IPC and mount namespaces, a read-only root, private /tmp and /dev/shm, uid `nobody`,
rlimits), in its own session, with an allow-listed environment (no keys, no tokens) and its
caches inside its own sandbox. Only its working directory (and any `writable` directories the
caller names) can be written, at the same path inside and out. Messages are JSON lines over its
stdin/stdout; a deadline is enforced with `select`, never a thread. `kill` ends the PID
namespace (every process in it) and the process group; `child.isolation` says what was active.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
import weakref
from pathlib import Path

from kernelscale.verify import isolation
from kernelscale.verify.isolation import IsolationReport, SandboxLimits

ENV_ALLOWED = (
    "PATH",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "CUDA_VISIBLE_DEVICES",
    "CUDA_HOME",
    "CUDA_PATH",
    "LD_LIBRARY_PATH",
    "TRITON_INTERPRET",
    "TRITON_CACHE_DIR",
    "TRITON_PTXAS_PATH",
    "CC",
    "CXX",
    "PYTHONPATH",
    "VIRTUAL_ENV",
    "NCCL_NVLS_ENABLE",
    "TORCH_SYMM_MEM_DISABLE_MULTICAST",
    "NVSHMEM_DISABLE_NVLS",
    "TORCH_CUDA_ARCH_LIST",
    "OMP_NUM_THREADS",
)
LOG_TAIL_BYTES = 64 << 10  # what log_tail reads from the end of the child's log
# The longest reply line the oracle holds: replies are a few KB (descriptors, fingerprints, a
# traceback); anything near this is a child flooding the channel.
MAX_REPLY_BYTES = 16 << 20
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


def _package_root() -> str:
    import kernelscale

    return str(Path(kernelscale.__file__).resolve().parent.parent)


def _cache_env(report: IsolationReport, workdir: Path) -> dict[str, str]:
    """Every cache and temp location the candidate's libraries write, inside its sandbox: the
    private /tmp where there is one, else its own working directory. Never a host cache that the
    oracle or a later candidate reads (the caller's TRITON_CACHE_DIR is overridden)."""
    private = "private-tmp" in report.layers
    base = "/tmp/ks" if private else str(workdir / ".cache")
    return {
        "TMPDIR": "/tmp" if private else f"{base}/tmp",
        "TRITON_CACHE_DIR": f"{base}/triton",
        "TRITON_HOME": f"{base}/triton-home",
        "TORCHINDUCTOR_CACHE_DIR": f"{base}/inductor",
        "XDG_CACHE_HOME": f"{base}/xdg",
        "TORCH_EXTENSIONS_DIR": f"{base}/torch_extensions",
        "CUDA_CACHE_PATH": f"{base}/nv",
    }


def _symlinked_dirs(workdir: Path) -> list[Path]:
    """Directories the oracle handed over as symlinks in the working directory (the output
    exchange in /dev/shm): bound writable at their real path, as the symlink expects."""
    return [entry.resolve() for entry in workdir.iterdir() if entry.is_symlink() and entry.resolve().is_dir()]


def _give_to(uid: int, paths: list[Path]) -> None:
    for top in paths:
        os.chown(top, uid, uid)
        for root, dirs, files in os.walk(top):
            for name in dirs + files:
                os.chown(os.path.join(root, name), uid, uid, follow_symlinks=False)


def _pid_namespace_inits(pid: int) -> list[int]:
    """The children of bwrap or unshare: the first process of the candidate's PID namespace."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            return [int(p) for p in children.read().split()]
    except (OSError, ValueError):
        return []


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return True


def _kill_tree(proc: subprocess.Popen, namespaced: bool) -> None:
    """SIGKILL to the first process of the child's PID namespace makes the kernel kill every
    process in it (a `setsid` grandchild too); then the process group; then wait until empty."""
    inits = _pid_namespace_inits(proc.pid) if namespaced else []
    for pid in inits:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.monotonic() + 10
    while any(not _gone(pid) for pid in inits) and time.monotonic() < deadline:
        time.sleep(0.01)  # the namespace is empty once its first process has exited


class Child:
    """A subprocess speaking JSON lines, inside OS isolation, in its own session.

    `writable`: more host directories the child may write (bound at the same path); `pass_fds`:
    descriptors it inherits (e.g. a socket for shipping tensors); `limits`: sizes of the private
    /tmp and /dev/shm and the rlimits (`memory_bytes` is the address-space cap, CPU only); `gpu`:
    bind only this GPU (gpu_confine.GpuConfinement; bubblewrap only)."""

    def __init__(
        self,
        module: str,
        args: list[str],
        workdir: Path,
        env: dict[str, str],
        memory_bytes: int | None = None,
        *,
        writable: tuple[Path, ...] = (),
        pass_fds: tuple[int, ...] = (),
        limits: SandboxLimits | None = None,
        gpu=None,
    ):
        mechanism = isolation.probe()
        limits = limits or SandboxLimits()
        if memory_bytes:
            limits = SandboxLimits(**{**limits.__dict__, "memory_bytes": memory_bytes})
        workdir = Path(os.path.realpath(workdir))
        (workdir / ".cache" / "tmp").mkdir(parents=True, exist_ok=True)  # TMPDIR without a private /tmp
        open_dirs = [workdir, *map(Path, writable), *_symlinked_dirs(workdir)]
        if mechanism.drop_uid:
            _give_to(mechanism.uid, open_dirs)
        env = dict(env)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_package_root(), env.get("PYTHONPATH")) if p)
        if gpu is not None and mechanism.name == "bwrap":
            env["CUDA_VISIBLE_DEVICES"] = gpu.uuid  # the one GPU bound in, whatever its index
        launch = isolation.build(
            mechanism, [sys.executable, "-m", module, *args], open_dirs, limits, env, workdir, gpu=gpu
        )
        env.update(_cache_env(launch.report, workdir))
        self.isolation: IsolationReport = launch.report
        self.log_path = workdir / "child.log"
        flags = os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
        self._log = os.fdopen(os.open(self.log_path, flags, 0o644), "w+b")  # read back by log_tail
        self.proc = subprocess.Popen(
            launch.argv,
            cwd=workdir,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            start_new_session=True,
            pass_fds=pass_fds,
        )
        # Killed even if the caller loses it (an exception between start and its `kill`).
        self._reaper = weakref.finalize(self, _kill_tree, self.proc, self.isolation.mechanism != "plain")
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.proc.stdout, selectors.EVENT_READ)
        self._buffer = bytearray()  # appended in place: a long line costs linear time

    def send(self, message: dict) -> None:
        try:
            self.proc.stdin.write((json.dumps(message) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise ChildGone(self.describe_exit()) from None

    def recv(self, deadline: float) -> dict:
        """The next JSON line. The child writes whatever it likes into this pipe, so a line
        longer than MAX_REPLY_BYTES, or one the parser cannot hold (nested past the recursion
        limit, an integer past its digit limit), is the child's broken protocol, never this
        process's memory or its error."""
        end = self._buffer.find(b"\n")
        while end < 0:
            if len(self._buffer) > MAX_REPLY_BYTES:
                raise ChildGone(f"broke the result protocol: a reply longer than {MAX_REPLY_BYTES} bytes")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ChildTimeout()
            if not self._selector.select(timeout=remaining):
                continue
            chunk = os.read(self.proc.stdout.fileno(), 1 << 16)
            if not chunk:
                raise ChildGone(self.describe_exit())
            found = chunk.find(b"\n")  # only the new bytes: rescanning all of them is quadratic
            end = len(self._buffer) + found if found >= 0 else -1
            self._buffer += chunk
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        if len(line) > MAX_REPLY_BYTES:
            raise ChildGone(f"broke the result protocol: a reply longer than {MAX_REPLY_BYTES} bytes")
        try:
            message = json.loads(line)
        except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
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
        """The log's last lines, read through the descriptor opened at the start, never by path:
        the folder is the child's to write, and a link it puts where the log was would be
        followed with this process's rights (any file on the host, into the verdict)."""
        try:
            self._log.flush()
            fd = self._log.fileno()
            size = os.fstat(fd).st_size
            data = os.pread(fd, min(size, LOG_TAIL_BYTES), max(0, size - LOG_TAIL_BYTES))
        except (OSError, ValueError):  # ValueError: closed by `kill`
            return ""
        return "\n".join(data.decode(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """Kill everything the child started (see `_kill_tree`), then close the channel."""
        self._reaper()
        self._selector.close()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self._log.close()
