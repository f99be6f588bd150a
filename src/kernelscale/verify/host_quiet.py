"""Trusted measurements only while no candidate runs anywhere on the host.

A calibration (the harness's cost around a call, the steps around the window) and the baselines'
times are measured once and reused: by every later attempt of the problem in the oracle, and by
later runs through the store. Oracles on one host share its CPUs, and a candidate of one oracle
can load every core (or the memory bus) while another oracle measures: an inflated harness would
lower every later reported time of that problem on that host, slower baselines would raise every
speedup. So those measurements take the host exclusively:

* while an oracle has a candidate's code in a process (from `start` to `kill`), it holds a
  shared lock on a host-wide file (`CandidateHold`);
* a measurement takes that lock exclusively (`quiet`): it waits for the candidates alive
  anywhere on the host to end, and no new one starts until it is done.

A second file is a turnstile: a candidate passes it (shared, at once released) before taking its
shared hold, and a measurement holds it exclusively while it waits, so that a stream of
back-to-back attempts on other GPUs cannot starve it; it holds the turnstile at most
GATE_HOLD_S at a time, so that one long-lived candidate cannot stall every new one on the host
for long. The locks are `flock`s on files in a folder of /dev/shm that only the oracle's user
may enter (KERNELSCALE_HOST_LOCK_DIR sets another), held by the oracles' processes, never by a
candidate's (the descriptors are not inherited, the sandbox has a /dev/shm of its own and runs
as another user); a lock goes with the process that held it, so a crashed oracle leaves nothing
held. A measurement waits at most WAIT_LIMIT_S, then goes ahead and says so. Where the sandbox
has no PID namespace (`plain`), a candidate's process can outlive its kill: there no
measurement counts as quiet.
"""

from __future__ import annotations

import fcntl
import os
import stat
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ALIVE = "kernelscale-candidates.lock"
TURNSTILE = "kernelscale-measuring.lock"
WAIT_LIMIT_S = 900.0  # longer than an attempt's default deadline (300 s) with its start and end
GATE_HOLD_S = 60.0  # the longest a waiting measurement keeps new candidates out at a time
POLL_S = 0.01

_depth = 0  # quiet() sections open in this process: nested ones take nothing more
_holds = 0  # CandidateHolds alive in this process: its own measurements cannot wait for them


def lock_dir() -> Path:
    chosen = os.environ.get("KERNELSCALE_HOST_LOCK_DIR")
    if chosen:
        return Path(chosen)
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())
    return base / f"kernelscale-locks-{os.getuid()}"  # 0700: no other user, no candidate, opens it


def _open(name: str) -> int | None:
    """A descriptor on the host's lock file (this user's oracles share it); None where it cannot
    be opened."""
    try:
        folder = lock_dir()
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        seen = os.lstat(folder)
        # made by someone else (a process of another user got there first, in the shared
        # /dev/shm), a link, or open to others: not ours to lock with
        if not stat.S_ISDIR(seen.st_mode) or seen.st_uid != os.getuid() or seen.st_mode & 0o077:
            return None
        fd = os.open(folder / name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    except OSError:
        return None
    return fd


def _lock(fd: int | None, mode: int, deadline: float) -> bool:
    """flock(fd, mode), waiting until `deadline`; True when held (or nothing to hold)."""
    if fd is None:
        return True
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_S)


class CandidateHold:
    """Held while this process has a candidate's code in a runner: many at once, never during a
    measurement. `release` (or the process's end) lets measurements go."""

    def __init__(self, wait_limit_s: float = WAIT_LIMIT_S):
        global _holds
        _holds += 1
        deadline = time.monotonic() + wait_limit_s
        gate = _open(TURNSTILE)
        if gate is not None:
            _lock(gate, fcntl.LOCK_SH, deadline)  # waits while a measurement holds or wants the host
            os.close(gate)
        self.counted = True
        self.fd = _open(ALIVE)
        if not _lock(self.fd, fcntl.LOCK_SH, deadline):
            os.close(self.fd)  # a measurement has gone on for longer than the limit: go ahead
            self.fd = None

    def release(self) -> None:
        global _holds
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops its lock
            self.fd = None
        if self.counted:
            _holds -= 1
            self.counted = False


@contextmanager
def quiet(record: dict | None = None, wait_limit_s: float = WAIT_LIMIT_S):
    """The body runs while no candidate is alive on the host (or after `wait_limit_s` of waiting
    for one to end). `record` gets the seconds waited (`host_quiet_wait`) and, where the wait
    ran out, `host_quiet_gave_up` = 1.0: figures measured then are not to be kept for reuse."""
    global _depth
    if _depth:
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1
        return
    started = time.monotonic()
    # a candidate of this very process is alive: waiting for it would wait for ourselves
    deadline = started + (wait_limit_s if not _holds else 0.0)
    gate, alive = _open(TURNSTILE), _open(ALIVE)
    held = _take_the_host(gate, alive, deadline)
    if record is not None:
        record["host_quiet_wait"] = round(record.get("host_quiet_wait", 0.0) + time.monotonic() - started, 3)
        if not held or not _kills_are_final():
            record["host_quiet_gave_up"] = 1.0
    _depth = 1
    try:
        yield
    finally:
        _depth = 0
        for fd in (alive, gate):
            if fd is not None:
                os.close(fd)


def _take_the_host(gate: int | None, alive: int | None, deadline: float) -> bool:
    """Both locks exclusively, by `deadline`; the turnstile is let go again after GATE_HOLD_S
    without the host, for a moment, so that new candidates are kept out at most that long."""
    while True:
        if not _lock(gate, fcntl.LOCK_EX, deadline):
            return False
        if _lock(alive, fcntl.LOCK_EX, min(deadline, time.monotonic() + GATE_HOLD_S)):
            return True
        if time.monotonic() >= deadline:
            return False
        if gate is not None:
            fcntl.flock(gate, fcntl.LOCK_UN)  # a queued candidate may start now
            time.sleep(POLL_S)


def _kills_are_final() -> bool:
    """Whether the sandbox ends a candidate's whole process tree: with a PID namespace. The
    `plain` fallback has none, and a `setsid` grandchild can outlive the attempt."""
    from kernelscale.verify import isolation

    try:
        return "pid-namespace" in isolation.probe().layers()
    except RuntimeError:
        return False
