"""Shared by the sandbox tests: a planted child program, mechanism selection and /proc scans.

Every assertion is made from outside the sandboxed process. A layer the OS does not allow is a
skip with the reason, never a silent pass; `KERNELSCALE_REQUIRE_SANDBOX=1` (CI) turns a missing
bubblewrap into a failure instead.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from kernelscale.verify import isolation
from kernelscale.verify.sandbox import Child, sandbox_env

# The planted program: answers one JSON request per line by doing the hostile thing it names.
CHILD = r"""
import ctypes, json, os, signal, socket, sys

def facts(msg):
    flags = os.statvfs("/").f_flag
    shm = os.statvfs("/dev/shm")
    caps = [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff")][0]
    ns = {k: os.readlink(f"/proc/self/ns/{k}") for k in ("pid", "net", "ipc", "mnt")}
    return {"uid": os.getuid(), "pid": os.getpid(), "root_ro": bool(flags & os.ST_RDONLY),
            "shm_bytes": shm.f_blocks * shm.f_frsize, "cap_eff": caps, "ns": ns,
            "env": {k: v for k, v in os.environ.items()}}

def orphan(msg):
    # Double fork; the grandchild leaves the session and outlives its parent, then writes.
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            script = f"sleep {msg['sleep']}; echo escaped > {msg['marker']}"
            libc = ctypes.CDLL(None)
            argv = (ctypes.c_char_p * 5)(b"/bin/sh", b"-c", script.encode(), msg["token"].encode(), None)
            libc.execv(b"/bin/sh", argv)
        os._exit(0)
    os.wait()
    return {"forked": True}

def udp(msg):
    errors = []
    for how in ("sendto", "sendmsg"):
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            data = f"leak-{how}".encode()
            if how == "sendto":
                s.sendto(data, ("127.0.0.1", msg["port"]))
            else:
                s.sendmsg([data], [], 0, ("127.0.0.1", msg["port"]))
        except OSError as exc:
            errors.append(f"{how}: {exc}")
    return {"errors": errors}

def fill(msg):
    written = {}
    for folder in ("/dev/shm", "/tmp"):
        total, chunk = 0, b"\0" * (1 << 20)
        try:
            with open(f"{folder}/fill-{os.getpid()}", "wb") as f:
                while total < msg["cap"]:
                    f.write(chunk); f.flush(); total += len(chunk)
        except OSError:
            pass
        written[folder] = total
    return {"written": written}

def use_tmp(msg):
    for folder in ("/dev/shm", "/tmp"):
        with open(f"{folder}/honest-{os.getpid()}", "wb") as f:
            f.write(b"\1" * (1 << 20))
    return {"ok": True}

def kill_all(msg):
    ppid = int([l.split()[1] for l in open("/proc/self/status") if l.startswith("PPid")][0])
    targets = {ppid, 1} | {int(p) for p in os.listdir("/proc") if p.isdigit()}
    hit = []
    for pid in sorted(targets - {os.getpid()}):
        try:
            os.kill(pid, signal.SIGKILL); hit.append(pid)
        except OSError:
            pass
    return {"ppid": ppid, "hit": hit}

def run_cc(msg):
    os.symlink("/bin/sh", "cc")
    import subprocess
    done = subprocess.run(["./cc", "-c", f"id -u; echo planted > {msg['outside']}"], capture_output=True)
    return {"out": done.stdout.decode(), "err": done.stderr.decode()}

for line in sys.stdin:
    msg = json.loads(line)
    print(json.dumps(globals()[msg["op"]](msg)), flush=True)
"""

MODULE = "planted_child"


def require(mechanism: str, monkeypatch) -> isolation.Mechanism:
    """Force `mechanism` for Children started by this test; skip (or fail in CI) where the OS
    refuses it. The probe cache is reset when the test ends (see `mechanism` fixtures)."""
    monkeypatch.setenv(isolation.FORCE_ENV, mechanism)
    monkeypatch.setattr(isolation, "_chosen", None)
    if mechanism != "plain" and not shutil.which(mechanism):
        if mechanism == "bwrap" and os.environ.get("KERNELSCALE_REQUIRE_SANDBOX"):
            pytest.fail("bubblewrap is required here (apt-get install -y bubblewrap)")
        pytest.skip(
            f"{mechanism} is not installed (Debian: apt-get install -y "
            f"{'bubblewrap' if mechanism == 'bwrap' else 'util-linux'})"
        )
    try:
        return isolation.probe(refresh=True)
    except RuntimeError as exc:
        if mechanism == "bwrap" and os.environ.get("KERNELSCALE_REQUIRE_SANDBOX"):
            pytest.fail(f"bubblewrap is required to work here: {exc}")
        pytest.skip(f"the OS refuses the {mechanism} sandbox here: {exc}")


def require_layer(child: Child, layer: str) -> None:
    report = child.isolation
    if layer not in report.layers:
        why = "the plain mechanism has no namespaces" if report.mechanism == "plain" else report.note
        pytest.skip(f"layer {layer!r} is not active with {report.mechanism} on this machine: {why}")


def start_child(workdir: Path, **kwargs) -> Child:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / f"{MODULE}.py").write_text(CHILD)
    return Child(MODULE, [], workdir, sandbox_env({}, home=str(workdir)), **kwargs)


def ask(child: Child, op: str, **fields) -> dict:
    return child.request({"op": op, **fields}, time.monotonic() + 60)


def processes_with(token: str) -> list[int]:
    """Every live process whose command line contains `token` (zombies excluded)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if token.encode() in cmdline and state != "Z":
            found.append(int(pid))
    return found
