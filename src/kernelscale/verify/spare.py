"""A runner started ahead of its attempt.

Starting a runner (its sandbox, the interpreter, importing torch and triton) takes 1.5-2 s, and
every attempt needs a new one. The oracle starts the next attempt's runner as soon as it has
answered a request (and once when it starts), while the command on the other side proposes and
records; the attempt then only sends the candidate's code. Until then the runner runs nothing but
our own code: it imports its libraries and waits. It gets a fresh attempt folder of its own, and
nothing of a previous candidate's is alive when it starts (that attempt's process tree was
killed first).

Before the attempt times anything (its baselines, a calibration), it waits for the spare's
imports to finish, so that they cannot load the host while something is timed. A spare that
does not fit the next request (another memory limit) or that died is discarded, and the attempt
starts its runner itself, as it did before.
"""

from __future__ import annotations

import shutil
import time

from kernelscale.verify.candidate import CandidateProcess, attempt_dir
from kernelscale.verify.sandbox import ChildGone, ChildTimeout

WARM_TIMEOUT_S = 120.0  # a runner that has not imported torch by then is broken, not slow


class Spares:
    """At most one runner waiting for the oracle's next attempt."""

    def __init__(self, oracle):
        self.oracle = oracle
        self.runner: CandidateProcess | None = None
        self.warming = False  # the `warm` request is sent and its reply not yet read

    def prepare(self, memory_gb: float | None) -> None:
        """Start the next attempt's runner now; best effort (the attempt starts one otherwise)."""
        self.discard()
        runner = CandidateProcess(self.oracle, None, attempt_dir(self.oracle), memory_gb)
        try:
            runner.spawn()
            runner.child.send({"op": "warm", "device": self.oracle.device})
        except (OSError, ChildGone):
            _remove(runner)
            return
        self.runner, self.warming = runner, True

    def take(self, loaded, memory_gb: float | None) -> CandidateProcess | None:
        """The waiting runner for this attempt, its imports done; None when there is none that
        fits, and the caller starts a runner itself."""
        runner, self.runner = self.runner, None
        if runner is None:
            return None
        if runner.memory_gb != memory_gb or not self._settled(runner):
            _remove(runner)
            return None
        runner.loaded = loaded
        return runner

    def discard(self) -> None:
        if self.runner is not None:
            _remove(self.runner)
            self.runner = None

    def _settled(self, runner: CandidateProcess) -> bool:
        if not self.warming:
            return True
        self.warming = False
        try:
            reply = runner.child.recv(time.monotonic() + WARM_TIMEOUT_S)
        except (ChildGone, ChildTimeout):
            return False
        return bool(reply.get("ok"))


def _remove(runner: CandidateProcess) -> None:
    runner.kill()
    shutil.rmtree(runner.workdir, ignore_errors=True)
