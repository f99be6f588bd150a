"""A runner started ahead of its attempt.

Starting a runner (its sandbox, the interpreter, importing torch and triton) takes 1.5-2 s, and
every attempt needs a new one. The oracle starts the next attempt's runner as soon as it has
answered a request (and two when it starts: the first attempt also calibrates with one), while the command on the other side proposes and
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

import time
from pathlib import Path

from kernelscale.verify import runner_seed
from kernelscale.verify.candidate import CandidateProcess, attempt_dir
from kernelscale.verify.cleanup import remove_tree
from kernelscale.verify.sandbox import ChildGone, ChildTimeout

WARM_TIMEOUT_S = 120.0  # a runner that has not imported torch by then is broken, not slow


class Spares:
    """Runners waiting for the oracle's next attempt (each its `warm` request sent)."""

    def __init__(self, oracle):
        self.oracle = oracle
        self.runners: list[CandidateProcess] = []
        self.unsettled: set[int] = set()  # ids of runners whose `warm` reply is not read yet
        self.warm_s: dict[int, dict] = {}  # runner id -> its warm-up's seconds per step

    @property
    def runner(self) -> CandidateProcess | None:
        """The next runner an attempt would take (None when none waits)."""
        return self.runners[0] if self.runners else None

    def prepare(self, memory_gb: float | None, count: int = 1) -> None:
        """Start `count` runners now, in place of any waiting; best effort (an attempt starts
        one otherwise). Two when the oracle starts: its first attempt also calibrates with a
        trusted runner, which takes the other."""
        self.discard()
        for _ in range(count):
            runner = CandidateProcess(self.oracle, None, attempt_dir(self.oracle), memory_gb)
            warm = {"op": "warm", "device": self.oracle.device} | self._seed_for(runner)
            try:
                runner.spawn()
                runner.child.send(warm)
            except (OSError, ChildGone):
                _remove(runner)
                return
            self.runners.append(runner)
            self.unsettled.add(id(runner))

    def take(self, loaded, memory_gb: float | None) -> CandidateProcess | None:
        """A waiting runner for this attempt, its imports done; None when there is none that
        fits, and the caller starts a runner itself."""
        while self.runners:
            runner = self.runners.pop(0)
            if runner.memory_gb == memory_gb and self._settled(runner):
                runner.loaded = loaded
                return runner
            _remove(runner)
        return None

    def settle(self) -> None:
        """Wait for every waiting runner's warm-up (imports, CUDA context, kernels compiled):
        called before anything is timed, so that none of them loads the host while something is."""
        ready = []
        for runner in self.runners:
            if self._settled(runner):
                ready.append(runner)
            else:  # broken while warming: an attempt starts its own
                _remove(runner)
        self.runners = ready

    def discard(self) -> None:
        for runner in self.runners:
            _remove(runner)
        self.runners.clear()
        self.unsettled.clear()
        self.warm_s.clear()

    def _settled(self, runner: CandidateProcess) -> bool:
        if id(runner) not in self.unsettled:
            return True
        self.unsettled.discard(id(runner))
        try:
            reply = runner.child.recv(time.monotonic() + WARM_TIMEOUT_S)
        except (ChildGone, ChildTimeout):
            return False
        if isinstance(reply.get("warm_s"), dict):
            self.warm_s[id(runner)] = reply["warm_s"] | {"seeded_files": reply.get("seeded", 0)}
        if reply.get("ok") and reply.get("exported"):  # asked for only on a GPU (_seed_for)
            runner_seed.keep(runner.workdir / runner_seed.EXPORT_IN_WORKDIR, self.seed)
        return bool(reply.get("ok"))

    @property
    def seed(self) -> Path:
        return runner_seed.kept_seed(self.oracle.environment)

    def _seed_for(self, runner: CandidateProcess) -> dict:
        """What the runner's warm-up starts from (the kept seed) or exports (while there is none);
        nothing on the CPU, where no kernel is compiled."""
        if self.oracle.device != "cuda" or not _sealed():
            return {}
        given = runner_seed.hand_to_runner(self.seed, runner.workdir)
        if given is not None:
            return {"seed_dir": str(given)}
        return {"export_dir": str(runner.workdir / runner_seed.EXPORT_IN_WORKDIR)}


def _sealed() -> bool:
    """Is every runner's folder out of every other runner's reach? Only with PID and mount
    namespaces (bwrap, unshare). Without them (plain) every runner is the same uid, a candidate's
    process can outlive its attempt, and it could write into a later runner's folder: into the
    seed that runner copies into its cache, or into its export before the oracle keeps it. The
    kept copy is loaded by every later runner on this machine (a later run's trusted calibration
    runner under bubblewrap included), so it is neither made nor used there."""
    from kernelscale.verify import isolation

    return isolation.probe().name in ("bwrap", "unshare")


def _remove(runner: CandidateProcess) -> None:
    runner.kill()
    remove_tree(runner.workdir)
