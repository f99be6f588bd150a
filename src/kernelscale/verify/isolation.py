"""OS isolation for the candidate's process: which mechanism this machine allows, and the command.

Three mechanisms, tried in this order once per process and cached:

* `bwrap` (bubblewrap): new PID, network, IPC and mount namespaces; the root filesystem
  read-only; fresh /proc, a minimal /dev with the GPU devices bound in, private size-limited
  tmpfs on /tmp and /dev/shm; only the attempt's directories writable (bound at the same path).
* `unshare` (util-linux): the same namespaces; the launcher mounts the private tmpfs, binds the
  writable directories and remounts everything else read-only.
* `plain`: a new session only. Used where the kernel refuses namespaces (some containers,
  gVisor); the report then says which layers are missing.

In every mechanism the launcher (`isolation_launch.py`) sets rlimits and drops privileges: to uid
and gid 65534 (`nobody`) when started as root, else the user's uid without capabilities.
`KERNELSCALE_ISOLATION=bwrap|unshare|plain` forces one (an unavailable forced one is an error).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

FORCE_ENV = "KERNELSCALE_ISOLATION"
MECHANISMS = ("bwrap", "unshare", "plain")
NOBODY = 65534
LAUNCHER = str(Path(__file__).with_name("isolation_launch.py"))
GPU_DEVICES = ("/dev/nvidia*", "/dev/nvidia-caps", "/dev/dri")
NAMESPACE_LAYERS = (
    "pid-namespace",
    "network-namespace",
    "ipc-namespace",
    "mount-namespace",
    "private-tmp",
    "private-shm",
)
ALL_LAYERS = (
    *NAMESPACE_LAYERS,
    "read-only-root",
    "unprivileged-uid",
    "no-capabilities",
    "process-limit",
    "rlimits",
    "new-session",
)


@dataclass(frozen=True)
class IsolationReport:
    """What protected one candidate process: recorded in the verdict."""

    mechanism: str
    layers: tuple[str, ...]
    uid: int
    note: str = ""  # why a mechanism or a layer is missing, when one is
    gpus: str = ""  # which GPUs the sandbox could reach, on a GPU ("one GPU: ..." or why every one)

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(layer for layer in ALL_LAYERS if layer not in self.layers)

    def to_json(self) -> dict:
        return {
            "mechanism": self.mechanism,
            "layers": list(self.layers),
            "missing": list(self.missing),
            "uid": self.uid,
            "note": self.note,
            "gpus": self.gpus,
        }


@dataclass(frozen=True)
class SandboxLimits:
    memory_bytes: int | None = None  # address space; only useful on the CPU (CUDA maps huge ranges)
    tmp_bytes: int = 4 << 30
    shm_bytes: int = 2 << 30
    processes: int = 8192  # tasks (threads count too) of the sandbox uid: torch + Triton need a few hundred
    open_files: int = 8192
    file_bytes: int = 16 << 30


@dataclass(frozen=True)
class Mechanism:
    """A probed way to start a sandboxed process on this machine."""

    name: str
    drop_uid: bool  # switch to NOBODY (only when started as root, and only if Python still runs)
    note: str = ""

    def layers(self) -> tuple[str, ...]:
        found = ["new-session", "rlimits", "no-capabilities"]
        if self.name in ("bwrap", "unshare"):
            found += [*NAMESPACE_LAYERS, "read-only-root"]  # the probe fails if the root stays writable
        if self.drop_uid:
            found += ["unprivileged-uid", "process-limit"]
        elif self.name != "plain" and os.getuid() != 0:
            found.append("process-limit")  # counted per user namespace: only the sandbox's tasks
        return tuple(layer for layer in ALL_LAYERS if layer in found)

    @property
    def uid(self) -> int:
        return NOBODY if self.drop_uid else os.getuid()


@dataclass
class Launch:
    """The argv to start, and what it will be protected by."""

    argv: list[str]
    report: IsolationReport


def _python_paths(env: dict[str, str]) -> list[str]:
    """Everything the sandboxed interpreter must read: the interpreter, the standard library,
    site-packages, this package and PYTHONPATH entries."""
    import kernelscale

    paths = {
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        os.path.dirname(os.path.realpath(sys.executable)),
        str(Path(kernelscale.__file__).resolve().parent.parent),
    }
    paths.update(p for p in sys.path if p and os.path.isdir(p))
    paths.update(p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and os.path.isdir(p))
    return sorted(os.path.realpath(p) for p in paths)


def _closed_ancestor(path: str) -> str | None:
    """The top-most ancestor of `path` that others cannot enter (e.g. /root, mode 0700)."""
    parts = Path(path).parts
    for depth in range(2, len(parts)):
        folder = os.path.join(*parts[:depth])
        try:
            if not os.stat(folder).st_mode & 0o001:
                return folder
        except OSError:
            return None
    return None


def _bwrap_argv(
    mech: Mechanism, writable: list[str], limits: SandboxLimits, env: dict[str, str], gpu=None
) -> list[str]:
    argv = [
        "bwrap",
        "--die-with-parent",
        "--new-session",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--ro-bind",
        "/",
        "/",
    ]
    closed: list[str] = []
    if mech.drop_uid:
        # Directories `nobody` cannot enter (a Python under /root) are replaced by an empty tmpfs
        # with only the needed subtrees bound back read-only: nothing else of them is visible.
        needed = _python_paths(env)
        closed = sorted({c for c in map(_closed_ancestor, needed) if c})
        for folder in closed:
            argv += ["--perms", "0755", "--tmpfs", folder]
        made: set[str] = set()
        for path in needed:
            inside = [folder for folder in closed if path.startswith(folder + "/")]
            if inside:
                argv += _open_parents(path, inside[0], made) + ["--ro-bind", path, path]
    argv += ["--dev", "/dev"]
    devices = list(gpu.nodes) if gpu else [d for p in GPU_DEVICES for d in sorted(glob.glob(p))]
    for device in devices:
        argv += ["--dev-bind", device, device]
    argv += ["--proc", "/proc"]
    if gpu:  # the driver's folders of the other GPUs are hidden too
        argv += ["--tmpfs", os.path.dirname(gpu.proc_dir), "--ro-bind", gpu.proc_dir, gpu.proc_dir]
    argv += [
        "--perms",
        "1777",
        "--size",
        str(limits.tmp_bytes),
        "--tmpfs",
        "/tmp",
        "--perms",
        "1777",
        "--size",
        str(limits.shm_bytes),
        "--tmpfs",
        "/dev/shm",
    ]
    made: set[str] = set()
    for path in _python_paths(env):  # a venv under /tmp would be hidden by the private /tmp
        fresh = [root for root in ("/tmp", "/dev/shm") if path.startswith(root + "/")]
        if fresh:
            argv += _open_parents(path, fresh[0], made) + ["--ro-bind", path, path]
    for path in writable:
        fresh = [root for root in ("/tmp", "/dev/shm", *closed) if path.startswith(root + "/")]
        argv += (_open_parents(path, fresh[0], made) if fresh else []) + ["--bind", path, path]
    return argv + ["--"]


def _open_parents(path: str, top: str, made: set[str]) -> list[str]:
    """bwrap makes the missing parents of a mount point with mode 0700, which `nobody` cannot
    enter: make the ones between the fresh tmpfs `top` and `path` first, with mode 0755."""
    chain, parent = [], os.path.dirname(path)
    while parent != top and parent not in made and parent != "/":
        chain.append(parent)
        parent = os.path.dirname(parent)
    made.update(chain)
    return [arg for folder in reversed(chain) for arg in ("--perms", "0755", "--dir", folder)]


def _unshare_argv() -> list[str]:
    argv = [
        "unshare",
        "--pid",
        "--fork",
        "--kill-child",
        "--mount-proc",
        "--net",
        "--ipc",
        "--mount",
        "--uts",
        "--propagation",
        "private",
    ]
    if os.getuid() != 0:
        argv[1:1] = ["--user", "--map-root-user"]
    return argv + ["--"]


def _launcher_spec(
    mech: Mechanism, writable: list[str], limits: SandboxLimits, chdir: str | None, env: dict[str, str]
) -> dict:
    processes = limits.processes if (mech.drop_uid or (mech.name != "plain" and os.getuid() != 0)) else None
    spec = {
        "limits": {
            "core": 0,
            "open_files": limits.open_files,
            "file_bytes": limits.file_bytes,
            "processes": processes,
            "memory_bytes": limits.memory_bytes,
        },
        "uid": NOBODY if mech.drop_uid else None,
        "gid": NOBODY if mech.drop_uid else None,
        "chdir": chdir,
        "mounts": mech.name == "unshare",
        "writable": writable,
        "tmp_bytes": limits.tmp_bytes,
        "shm_bytes": limits.shm_bytes,
    }
    # What the private tmpfs would hide, and (for `nobody`) folders it cannot enter, replaced by
    # an empty tmpfs: the interpreter's own paths there are bound back read-only.
    needed = _python_paths(env)
    spec["hide"] = sorted({c for c in map(_closed_ancestor, needed) if c}) if mech.drop_uid else []
    hidden = ("/tmp/", "/dev/shm/", *(folder + "/" for folder in spec["hide"]))
    spec["readable"] = [p for p in needed if p.startswith(hidden)]
    return spec


def build(
    mech: Mechanism,
    program: list[str],
    writable: list[Path],
    limits: SandboxLimits,
    env: dict[str, str],
    chdir: Path | None = None,
    gpu=None,
) -> Launch:
    """The argv that runs `program` under `mech`, with `writable` the only writable host paths.
    `gpu` (a gpu_confine.GpuConfinement, bubblewrap only) binds one GPU instead of all."""
    paths = [os.path.realpath(p) for p in writable]
    spec = _launcher_spec(mech, paths, limits, os.path.realpath(chdir) if chdir else None, env)
    launcher = [sys.executable, "-I", "-S", LAUNCHER, json.dumps(spec), "--", *program]
    if mech.name == "bwrap":
        prefix = _bwrap_argv(mech, paths, limits, env, gpu)
    elif mech.name == "unshare":
        prefix = _unshare_argv()
    else:
        prefix = []
    if prefix:
        prefix[0] = shutil.which(prefix[0]) or prefix[0]  # the sandbox's PATH may not hold it
    gpu_note = gpu.describe() if gpu and mech.name == "bwrap" else ""
    report = IsolationReport(mech.name, mech.layers(), mech.uid, mech.note, gpu_note)
    return Launch(prefix + launcher, report)


def _try(mech: Mechanism) -> str | None:
    """Start a trivial sandboxed process with `mech`; None when it worked, else why not."""
    with tempfile.TemporaryDirectory(prefix="ks-probe-") as outer:
        # enterable, not listable, like the folders real attempt folders sit in (the pool's,
        # 0711): at 0700 `nobody` could never enter it, so a `plain` sandbox as `nobody` always
        # failed its probe where the oracle is root, and candidates ran as root instead
        os.chmod(outer, 0o711)
        folder = os.path.join(outer, "attempt")
        os.mkdir(folder)
        if mech.drop_uid:
            os.chown(folder, NOBODY, NOBODY)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        }
        report = [sys.executable, "-I", "-S", LAUNCHER, "--report"]
        launch = build(mech, report, [Path(folder)], SandboxLimits(), env, Path(folder))
        try:
            done = subprocess.run(
                launch.argv, env=env, capture_output=True, timeout=60, start_new_session=True
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{mech.name}: {exc}"
        if done.returncode != 0:
            return f"{mech.name}: {done.stderr.decode(errors='replace').strip().splitlines()[-1:] or done.returncode}"
        try:
            seen = json.loads(done.stdout.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            return f"{mech.name}: no probe report"
        if seen["uid"] != mech.uid or seen["no_new_privs"] != "1" or int(seen["cap_eff"], 16):
            return f"{mech.name}: ran as uid {seen['uid']} with capabilities {seen['cap_eff']}"
        if not os.path.exists(os.path.join(folder, "probe-ok")):
            return f"{mech.name}: the working directory was not writable inside"
        if mech.name != "plain" and seen["pid"] > 2:
            return f"{mech.name}: no new PID namespace (pid {seen['pid']})"
    return None


def _candidates(forced: str | None) -> list[Mechanism]:
    names = [forced] if forced else [m for m in MECHANISMS if m == "plain" or shutil.which(m)]
    root = os.getuid() == 0
    found = [Mechanism(name, drop) for name in names for drop in ((True, False) if root else (False,))]
    # No namespaces and no other user: a candidate would run as root with the host in reach.
    # Only when asked for by name (FORCE_ENV=plain), never as the probe's last resort.
    return [m for m in found if forced or not (root and m.name == "plain" and not m.drop_uid)]


_chosen: Mechanism | None = None


def probe(refresh: bool = False) -> Mechanism:
    """The strongest mechanism that starts a process here (cached for this process)."""
    global _chosen
    if _chosen is not None and not refresh:
        return _chosen
    forced = os.environ.get(FORCE_ENV) or None
    if forced and forced not in MECHANISMS:
        raise ValueError(f"{FORCE_ENV}={forced!r}: expected one of {', '.join(MECHANISMS)}")
    failures = []
    for mech in _candidates(forced):
        why = _try(mech)
        if why is None:
            note = "; ".join(failures)
            _chosen = Mechanism(mech.name, mech.drop_uid, note)
            return _chosen
        failures.append(why + ("" if not mech.drop_uid else " (as uid 65534)"))
    root_hint = (
        f"; without one a candidate would run as root: install bubblewrap, or set {FORCE_ENV}=plain to accept that"
        if os.getuid() == 0 and not forced
        else ""
    )
    raise RuntimeError("no sandbox mechanism works here: " + "; ".join(failures) + root_hint)
