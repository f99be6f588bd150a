"""The candidate's process as the oracle drives it: start, stage an input set, call, read back.

Every call goes the same way, whether it is a correctness trial or a timed call: the oracle
writes the input set masked (masking.py), the runner stages it into its buffers, the oracle
sends the key and the runner unmasks, the oracle flushes the L2 from its own process, then
sends `go` and reads the clock on both sides of the `done` reply (the window), then runs a
one-element probe kernel of its own, asks for a digest of the outputs under a fresh key
(`commit`) and then for the outputs themselves (`ship`), which must match that digest. The
inputs mean nothing before the key, and the outputs are fixed at the commit, so work outside
the window can only hide in the key, flush, probe and commit steps, each a pass of fixed size
timed from here and held to a trusted runner's (timing_rounds); staging and shipping are timed
and held too.
"""

from __future__ import annotations

import math
import os
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from kernelscale.verify import folder_cap, host_quiet
from kernelscale.verify.exchange import Exchange
from kernelscale.verify.inputs import fingerprint
from kernelscale.verify.masking import masked_copy, torch_digests
from kernelscale.verify.replies import AttemptFailed, expect, mutated_inputs
from kernelscale.verify.sandbox import Child, sandbox_env
from kernelscale.verify.slab import OracleSlab, SlabError, slab_bytes
from kernelscale.verify.timing import Stopwatch
from kernelscale.verify.verdict import Verdict

# Room in the output slab: twice the reference's outputs, so that an output returned as a view
# into a somewhat larger buffer still arrives whole (and is then refused as such by the comparison).
OUTPUT_ROOM = 2.0


def attempt_dir(oracle) -> Path:
    """In memory (/dev/shm) where there is one: the slabs that carry every call's inputs and
    outputs live here (slab.py). Only this folder is writable from the sandbox."""
    shm = Path(os.environ.get("KERNELSCALE_ATTEMPTS_DIR") or "/dev/shm")  # the pool's, per oracle
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else oracle.workdir
    folder = Path(tempfile.mkdtemp(prefix="ks-attempt-", dir=base))
    folder_cap.cap(folder)  # a tmpfs of its own where we may mount: what the candidate writes is capped
    return folder


@dataclass
class ClockReading:
    """One call's figures; every one but `own_ms` is read from the oracle's clock."""

    window_ms: float  # `go` sent → `done` read
    own_ms: float  # the runner's own figure (CUDA events on a GPU): advisory
    ship_ms: float  # `ship` sent → outputs written
    stage_ms: float = 0.0  # `stage` sent → inputs staged
    flush_ms: float = 0.0  # the oracle's own L2 flush, synchronized (0 on the CPU)
    probe_ms: float = 0.0  # the oracle's one-element kernel right after `done` (0 on the CPU)
    key_ms: float = 0.0  # `key` sent → inputs unmasked
    commit_ms: float = 0.0  # `commit` sent → digest of the outputs read
    # the runner's wall time until the forward returned (its host work; advisory, like own_ms;
    # NaN where the runner did not say)
    host_ms: float = math.nan


@dataclass
class CallResult:
    outputs: list
    window_ms: float  # measured by the oracle: `go` sent → `done` read
    own_ms: float  # the runner's own figure (CUDA events on a GPU): advisory
    ship_ms: float  # measured by the oracle: `ship` sent → outputs written
    mutated_inputs: list[int]
    reading: ClockReading  # every figure of this call (a timed call's are held by the timer rule)


class CandidateProcess:
    def __init__(self, oracle, loaded, workdir: Path, memory_gb: float | None):
        self.oracle = oracle
        self.loaded = loaded
        self.workdir = workdir
        self.exchange = Exchange(workdir)
        self.memory_gb = memory_gb
        self.child: Child | None = None
        self._tail = ""
        self.isolation: dict = {}
        self.clock: list[ClockReading] = []  # every call's times, in order
        self.inputs_slab: OracleSlab | None = None  # made by `start`, before the candidate's code
        self.outputs_slab: OracleSlab | None = None
        self.pinned_slabs = 0  # slabs the runner could page-lock: plain copies are slower, not wrong
        self.holds_candidate = False  # its code sent and the process not yet killed
        self.host_hold: host_quiet.CandidateHold | None = None  # from `start` to `kill`
        # Seconds the oracle spent per part of every call (its own work and each request's round
        # trip), summed: the verifier's own cost, read in a verdict (`exchange_s`).
        self.exchange_s: dict[str, float] = {}

    def spawn(self) -> None:
        """Start the runner in its sandbox: trusted code that imports its libraries and waits.
        The candidate's code arrives only with `start`; a runner spawned ahead of its attempt
        (spare.py) spares the attempt this step."""
        if self.child is not None:
            return
        device = self.oracle.device
        extra = {"TRITON_INTERPRET": "1"} if device != "cuda" else {}
        env = sandbox_env(extra, home=str(self.workdir))
        gpu, gpu_note = self.oracle.gpu_confinement()
        self.child = Child("kernelscale.verify.runner", [], self.workdir, env, self.memory_bytes(), gpu=gpu)
        self.isolation = self.child.isolation.to_json()
        self.isolation["gpus"] = self.isolation["gpus"] or gpu_note
        # the attempt folder a tmpfs of its own, capped in bytes and files (folder_cap.py)
        self.isolation["capped_folder"] = os.path.ismount(self.workdir)

    def hold_host(self) -> float:
        """Take the host against trusted measurements for an untrusted candidate (host_quiet.py),
        ahead of the attempt's deadline: the seconds it waited for one to end are not the
        candidate's."""
        if self.host_hold is not None:
            return 0.0
        t0 = time.monotonic()
        self.host_hold = host_quiet.CandidateHold()
        return time.monotonic() - t0

    def memory_bytes(self) -> int | None:
        """The address-space cap (CPU only: CUDA maps far more address space than it uses)."""
        return int((self.memory_gb or 6.0) * 2**30) if self.oracle.device != "cuda" else None

    def start(
        self, code: str, init_message: dict, init_seed: int, deadline: float, untrusted: bool = True
    ) -> float:
        """Start the runner (unless it was started ahead), import the candidate and build its
        model; returns the seconds spent. From here to `kill` an untrusted candidate holds the
        host against trusted measurements (host_quiet.py); the calibration's own null model
        (`untrusted=False`) does not."""
        t0 = time.monotonic()
        if untrusted:
            self.hold_host()
        code_file = self.workdir / "candidate.py"
        code_file.write_text(code)
        if self.child is not None:
            _readable_by_runner(self.workdir)  # written after the runner's uid was given the folder
        self.spawn()
        if getattr(self.loaded, "input_bytes", 0):  # before any candidate code runs (_make_slabs)
            self._make_slabs(self.loaded.input_bytes, candidate_ran=False)
        self.holds_candidate = True
        message = {
            "op": "load",
            "device": self.oracle.device,
            "code_file": str(code_file),
            "init_seed": init_seed,
            "forbid_copies": self.loaded.forbid_copies,
            "output_twins": getattr(self.loaded, "output_twins", []),
            "allow_torch": self.loaded.problem.allow_torch,
            **init_message,
        }
        expect(self.child.request(message, deadline), self.child)
        return time.monotonic() - t0

    def prepare(self, inputs: list) -> StagedInputs:
        """Mask an input set and stage it in the input slab's host buffer; its write into the
        file waits for `StagedInputs.flush` (or the call), so that the caller can overlap it
        with GPU work of its own (the previous call's reference). The runner sees nothing of
        it before the call's `stage` request; until its key it would be noise anyway."""
        spent = Stopwatch(self.exchange_s)
        key = fresh_key()
        masked = masked_copy(inputs, key)
        spent.lap("mask")
        slab = self._slabs(inputs)
        try:
            descriptors = slab.write(masked, deferred=True)  # waits for a flush still in flight
        except OSError as exc:
            raise _unwritable(exc) from None
        spent.lap("write")
        printed = fingerprint(masked)  # the masked copy is freed here: only its host copy is kept
        spent.lap("fingerprint")
        return StagedInputs(key, printed, descriptors, slab, slab.writes)

    def call(self, inputs: list, deadline: float, staged: StagedInputs | None = None) -> CallResult:
        """One call on `inputs`; `staged` is what `prepare(inputs)` returned, if it was called."""
        staged = staged or self.prepare(inputs)
        if staged.slab is not self.inputs_slab or staged.written != staged.slab.writes:
            raise ValueError("these inputs were staged for another runner, or replaced since")
        output_key = fresh_key()
        spent = Stopwatch(self.exchange_s)
        staged.flush()
        spent.lap("write")
        stage_ms = self._stage(staged, deadline, spent)
        key_ms = self._timed_request({"op": "key", "key": staged.key}, deadline)[1]
        spent.lap("key")
        sent = time.perf_counter()
        self.oracle.flush_l2()  # a probe as well: GPU work the candidate left queued delays it
        flush_ms = (time.perf_counter() - sent) * 1e3
        done, window_ms = self._timed_request({"op": "go"}, deadline)
        sent = time.perf_counter()
        self.oracle.probe_gpu()  # waits behind GPU work a forged `done` left running
        probe_ms = (time.perf_counter() - sent) * 1e3
        spent.lap("go")
        committed, commit_ms = self._timed_request({"op": "commit", "key": output_key}, deadline)
        reply, ship_ms = self._timed_request({"op": "ship"}, deadline)
        spent.lap("commit_ship")
        try:
            outputs = self.outputs_slab.read(reply.get("outputs"), self._compare_device())
        except SlabError as exc:
            raise AttemptFailed(
                Verdict("runtime_error", f"the runner's outputs cannot be read: {exc}")
            ) from None
        spent.lap("read")
        _check_commitment(outputs, output_key, committed.get("digests"))
        spent.lap("digest")
        own_ms = _runner_ms(done.get("own_ms"))
        reading = ClockReading(
            window_ms,
            own_ms,
            ship_ms,
            stage_ms,
            flush_ms,
            probe_ms,
            key_ms,
            commit_ms,
            _advisory_ms(done.get("host_ms")),
        )
        self.clock.append(reading)
        return CallResult(outputs, window_ms, reading.own_ms, ship_ms, mutated_inputs(reply), reading)

    def _stage(self, inputs: StagedInputs, deadline: float, spent: Stopwatch) -> float:
        request = {"op": "stage", "inputs": inputs.descriptors}
        request |= {"slabs": [self.inputs_slab.describe(), self.outputs_slab.describe()]}
        staged, stage_ms = self._timed_request(request, deadline)
        spent.lap("stage")
        pinned = staged.get("pinned_slabs")
        self.pinned_slabs = pinned if type(pinned) is int and 0 <= pinned <= 2 else 0  # advisory
        if staged.get("inputs") != inputs.fingerprint:
            raise AttemptFailed(
                Verdict(
                    "runtime_error",
                    "the inputs the runner staged differ from the ones sent "
                    "(the input slab was tampered with or the transfer failed)",
                )
            )
        return stage_ms

    def _timed_request(self, message: dict, deadline: float) -> tuple[dict, float]:
        sent = time.perf_counter()
        reply = expect(self.child.request(message, deadline), self.child)
        return reply, (time.perf_counter() - sent) * 1e3

    def _slabs(self, inputs: list) -> OracleSlab:
        """The input slab (and the output slab): made by `start`, before the candidate's code
        runs, where the problem's input sizes are known; else here, at the first call."""
        if self.inputs_slab is None:
            self._make_slabs(slab_bytes(inputs), candidate_ran=True)
        return self.inputs_slab

    def _make_slabs(self, input_bytes: int, candidate_ran: bool) -> None:
        """Every call's inputs have the sizes of the first, and the outputs those of the
        reference's. The attempt folder is the candidate's to write: a name the oracle creates
        there once candidate code has run may already be taken (a file, a directory), which is
        then the candidate's doing; before that, a failure (a full /dev/shm) is the verifier's."""
        room = int(OUTPUT_ROOM * self.loaded.output_bytes) + 2**20
        try:
            folder_cap.make_room(self.workdir, input_bytes + room + 4 * 2**20)  # + pages' rounding
            self.inputs_slab = OracleSlab(self.workdir / "inputs.slab", input_bytes)
            self.outputs_slab = OracleSlab(self.workdir / "outputs.slab", room, writable_by_others=True)
        except OSError as exc:
            if not candidate_ran:
                raise
            raise AttemptFailed(
                Verdict(
                    "runtime_error", f"the attempt folder was tampered with: {exc.strerror}: {exc.filename}"
                )
            ) from None

    def check_guards(self, deadline: float) -> None:
        expect(self.child.request({"op": "guards"}, deadline))

    def _compare_device(self):
        import torch

        return torch.device("cuda", torch.cuda.current_device()) if self.oracle.device == "cuda" else "cpu"

    def log_tail(self) -> str:
        return self.child.log_tail() if self.child else self._tail

    def kill(self) -> None:
        """The whole process tree goes: nothing of the candidate's outlives the attempt."""
        if self.child is not None:
            self._tail = self.child.log_tail()
            self.child.kill()
            self.child = None
        self.holds_candidate = False
        if self.host_hold is not None:  # the process tree is gone: trusted measurements may go
            self.host_hold.release()
            self.host_hold = None
        for slab in (self.inputs_slab, self.outputs_slab):
            if slab is not None:
                slab.close()
        self.inputs_slab = self.outputs_slab = None


@dataclass
class StagedInputs:
    """An input set masked under `key` and staged in `slab` (see CandidateProcess.prepare)."""

    key: int
    fingerprint: list  # of the masked set (inputs.fingerprint), which the runner's staging must match
    descriptors: list[dict]
    slab: OracleSlab
    written: int  # the slab's count of writes when these were staged (a later set replaces them)

    def flush(self, background: bool = False) -> None:
        """Into the file (or, `background`, start that). The slab's pages were reserved before
        any candidate code ran, so a write can only fail if the candidate's process shrank the
        file (possible where it runs as the oracle's uid) and then filled /dev/shm: its doing."""
        try:
            self.slab.flush(background)
        except OSError as exc:
            raise _unwritable(exc) from None


def _unwritable(exc: OSError) -> AttemptFailed:
    """A failed write of the input slab (see StagedInputs.flush): the candidate's doing."""
    return AttemptFailed(
        Verdict("runtime_error", f"the input slab could not be written: {exc.strerror} (tampered with?)")
    )


def _readable_by_runner(folder: Path) -> None:
    """Files the oracle wrote into the attempt folder (the code, the init arguments) readable,
    not writable, by the sandbox's uid, whatever the oracle's umask."""
    for entry in folder.iterdir():
        if entry.is_file() and not entry.is_symlink():
            os.chmod(entry, 0o644)


def _as_finite(value) -> float | None:
    """A reply's number as a finite float, or None: JSON carries NaN, Infinity and integers of
    hundreds of digits, which no float holds (math.isfinite(10**400) raises OverflowError)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _advisory_ms(value) -> float:
    """A figure the runner reports only for the record: a finite number, else NaN."""
    number = _as_finite(value)
    return math.nan if number is None else number


def _runner_ms(value) -> float:
    """The runner's own figure for a call: a finite number of milliseconds, or the attempt ends.
    JSON carries NaN, and NaN passes every rule written as "reject when below (or above) the
    bound": it would leave the timer rule silent and be reported as the time. A finite figure,
    however low, is the timer rule's to judge (after the guards, whose finding says more)."""
    number = _as_finite(value)
    if number is None:
        raise AttemptFailed(
            Verdict(
                "rejected",
                f"the runner reported its time as {str(value)[:40]!r}, not a finite number of milliseconds",
                rule="timer_mismatch",
            )
        )
    return number


def fresh_key() -> int:
    return secrets.randbits(62)


def _check_commitment(outputs: list, key: int, committed) -> None:
    """The outputs shipped must be the ones the runner held at `commit`, right after `done`."""
    if committed != torch_digests(outputs, key):
        raise AttemptFailed(
            Verdict(
                "rejected",
                "the outputs shipped differ from the ones the process held right after it said "
                "`done`: work finished after the timed call",
                rule="late_outputs",
            )
        )
