"""Trusted measurements wait for the host to be free of candidates (verify/host_quiet.py).

Oracles on one host share its CPUs; a calibration or a baseline measured while another oracle's
candidate loads every core would be stored and reused. Each test here plays "another oracle" in
a process of its own that holds a candidate's share of the host-wide lock, and checks from the
outside when the measuring side got the host.
"""

from __future__ import annotations

import multiprocessing
import time

import pytest

from kernelscale.verify import host_quiet

HOLD_S = 1.5


def _hold_like_a_candidate(folder: str, seconds: float, ready, took) -> None:
    """Another oracle's live candidate: the shared hold for `seconds`; `took` gets when it had it."""
    import os

    os.environ["KERNELSCALE_HOST_LOCK_DIR"] = folder
    hold = host_quiet.CandidateHold()
    took.value = time.time()
    ready.set()
    time.sleep(seconds)
    hold.release()


def _hold_like_a_measurement(folder: str, seconds: float, ready, took) -> None:
    """Another oracle measuring: the turnstile, exclusively, for `seconds`."""
    import fcntl
    import os

    os.environ["KERNELSCALE_HOST_LOCK_DIR"] = folder
    fd = host_quiet._open(host_quiet.TURNSTILE)
    fcntl.flock(fd, fcntl.LOCK_EX)
    took.value = time.time()
    ready.set()
    time.sleep(seconds)
    os.close(fd)


def _start_holder(folder, seconds, target=_hold_like_a_candidate):
    ctx = multiprocessing.get_context("spawn")
    ready, took = ctx.Event(), ctx.Value("d", 0.0)
    proc = ctx.Process(target=target, args=(folder, seconds, ready, took))
    proc.start()
    return proc, ready, took


@pytest.fixture
def host(tmp_path, monkeypatch):
    folder = str(tmp_path / "host")
    monkeypatch.setenv("KERNELSCALE_HOST_LOCK_DIR", folder)
    return folder


def test_a_measurement_waits_for_a_live_candidate_on_the_host(host):
    proc, ready, _ = _start_holder(host, HOLD_S)
    assert ready.wait(60)
    record: dict = {}
    started = time.monotonic()
    with host_quiet.quiet(record):
        got_it = time.monotonic() - started
    proc.join(30)
    assert got_it >= HOLD_S - 0.3, got_it
    assert record["host_quiet_wait"] >= HOLD_S - 0.3 and "host_quiet_gave_up" not in record


def test_no_new_candidate_starts_while_a_measurement_waits_or_runs(host):
    # A holds the host; the measurement queues behind it; B asks to start after the measurement
    # queued and must get in only after the measurement's body ended (no starvation by a stream
    # of back-to-back candidates on other GPUs).
    first, ready, _ = _start_holder(host, HOLD_S)
    assert ready.wait(60)
    second = None
    with host_quiet.quiet({}):
        ended = time.time() + 0.5
        second, _, took = _start_holder(host, 0.1)  # it would have started at once without us
        time.sleep(0.5)
    first.join(30)
    second.join(30)
    assert took.value >= ended - 0.05, (took.value, ended)


def test_an_oracle_never_waits_for_its_own_candidate(host):
    hold = host_quiet.CandidateHold()
    record: dict = {}
    started = time.monotonic()
    try:
        with host_quiet.quiet(record, wait_limit_s=30):
            waited = time.monotonic() - started
    finally:
        hold.release()
    assert waited < 1.0 and record["host_quiet_gave_up"] == 1.0  # measured, but not for reuse


def test_a_measurement_gives_up_after_its_limit_and_says_so(host):
    proc, ready, _ = _start_holder(host, 3.0)
    assert ready.wait(60)
    record: dict = {}
    with host_quiet.quiet(record, wait_limit_s=0.3):
        pass
    proc.join(30)
    assert 0.25 <= record["host_quiet_wait"] < 2.0 and record["host_quiet_gave_up"] == 1.0


def test_the_verifier_times_baselines_and_calibrates_only_when_the_host_is_free(host):
    """End to end: another oracle's candidate is alive when this pool's first attempt of a
    problem would time its baselines; the verdict shows the wait, and the reused figures are
    measured after the hold ended."""
    from conftest import TESTS, SyncPool
    from kernelscale.problems import load_problem

    pool = SyncPool()  # its oracles read KERNELSCALE_HOST_LOCK_DIR from this process's env
    proc, ready, _ = _start_holder(host, 6.0)  # the attempt's own start takes ~2-3 s of it
    assert ready.wait(60)
    try:
        code = (TESTS / "problems" / "good_scaled_exp.py").read_text()
        verdict = pool.verify(load_problem(TESTS / "problems" / "scaled_exp.py"), code)
    finally:
        pool.close()
        proc.join(30)
    assert verdict.status == "correct", verdict.headline() + verdict.log_tail
    waited = verdict.time_stats.get("baselines_host_quiet_wait", 0.0)
    waited += verdict.cost_s.get("calibration_parts", {}).get("host_quiet_wait", 0.0)
    assert waited >= 1.5, (verdict.time_stats, verdict.cost_s)
    assert "baselines_host_quiet_gave_up" not in verdict.time_stats


# At import, it keeps a core busy for SPIN_S (as a candidate that loads every core would), then
# is the honest kernel: a planted neighbour for another oracle's calibration.
LOADS_THE_HOST = """
import time
_until = time.monotonic() + {spin}
while time.monotonic() < _until:
    pass
"""


async def _candidate_alive(attempt, timeout_s=60.0):
    """True once some oracle holds a candidate's share of the host lock, as seen from outside
    (an exclusive try on the lock file fails); the candidate spins for seconds after that."""
    import asyncio
    import fcntl
    import os

    fd = host_quiet._open(host_quiet.ALIVE)  # in the folder the oracles use (the fixture's)
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not attempt.done():
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(fd, fcntl.LOCK_UN)
            await asyncio.sleep(0.05)
        return False
    finally:
        os.close(fd)


def test_a_candidate_loading_the_host_delays_another_oracles_calibration(host):
    """Two oracles on one host: while the first one's candidate spins at import, the second
    one's first attempt of a problem waits to time its baselines and calibrate; measured from
    outside, in the second verdict."""
    import asyncio

    from conftest import TESTS
    from kernelscale.problems import load_problem
    from kernelscale.verify.options import VerifyOptions
    from kernelscale.verify.slots import SlotPool

    problem = load_problem(TESTS / "problems" / "scaled_exp.py")
    honest = (TESTS / "problems" / "good_scaled_exp.py").read_text()
    hostile = LOADS_THE_HOST.format(spin=8.0) + honest
    options = VerifyOptions(timeout_s=90.0, screen=False)

    async def both():
        pool = await SlotPool.local(device="cpu", workers=2).start()
        try:
            first = asyncio.ensure_future(pool.verify(problem, hostile, options))
            # Not a fixed sleep: on a loaded host the first oracle's own calibration and its
            # runner's imports can outlast any guess, and the second then measured first.
            alive = await _candidate_alive(first)
            second = await pool.verify(load_problem(TESTS / "problems" / "scaled_exp.py"), honest, options)
            return await first, second, alive
        finally:
            await pool.close()

    loop = asyncio.new_event_loop()
    try:
        spun, measured, alive = loop.run_until_complete(both())
    finally:
        loop.close()
    assert alive, "the first oracle's candidate never held the host"
    assert spun.status == "correct", spun.headline() + spun.log_tail
    assert measured.status == "correct", measured.headline() + measured.log_tail
    waited = measured.time_stats.get("baselines_host_quiet_wait", 0.0)
    waited += measured.cost_s.get("calibration_parts", {}).get("host_quiet_wait", 0.0)
    assert waited >= 1.0, (measured.time_stats, measured.cost_s)


def test_a_waiting_measurement_keeps_new_candidates_out_only_for_a_while(host, monkeypatch):
    # A long-lived candidate elsewhere; a measurement here waits for it; a new candidate asks to
    # start meanwhile. It is let in once the measurement has held the turnstile GATE_HOLD_S
    # (found by a red-team pass: one candidate living to its 300 s limit stalled every new one
    # on the host), and the measurement still gets the host in the end.
    import threading

    monkeypatch.setattr(host_quiet, "GATE_HOLD_S", 0.5)
    first, ready, _ = _start_holder(host, 4.0)
    assert ready.wait(60)
    record: dict = {}
    measuring = threading.Thread(target=lambda: host_quiet.quiet(record).__enter__(), daemon=True)
    measuring.start()
    time.sleep(0.3)
    asked = time.time()
    second, second_ready, took = _start_holder(host, 0.1)
    assert second_ready.wait(60)
    first_ends = asked + 3.7
    assert took.value < first_ends - 1.0, took.value - asked  # in long before the first ended
    first.join(30)
    second.join(30)
    measuring.join(30)
    assert record["host_quiet_wait"] >= 3.0 and "host_quiet_gave_up" not in record


def test_without_a_pid_namespace_no_measurement_is_kept(host, monkeypatch):
    # Under `plain` a candidate's grandchild can outlive its kill and load the host while the
    # next calibration runs: such figures are measured but never stored.
    monkeypatch.setattr(host_quiet, "_kills_are_final", lambda: False)
    record: dict = {}
    with host_quiet.quiet(record):
        pass
    assert record["host_quiet_gave_up"] == 1.0


def test_a_measurement_elsewhere_does_not_eat_the_candidates_deadline(host):
    """Waiting for another oracle's measurement to end comes before the attempt's deadline."""
    from conftest import TESTS, SyncPool
    from kernelscale.problems import load_problem

    pool = SyncPool()
    code = (TESTS / "problems" / "good_scaled_exp.py").read_text()
    problem = load_problem(TESTS / "problems" / "scaled_exp.py")
    first = pool.verify(problem, code)  # its calibration and baselines done: none to wait for
    proc, ready, _ = _start_holder(host, 14.0, _hold_like_a_measurement)
    assert ready.wait(60)
    try:
        # the eager baseline given as known: the only wait left is the candidate's own hold
        verdict = pool.verify(problem, code, timeout_s=10.0, known_baselines={"eager": 1.0})
    finally:
        pool.close()
        proc.join(30)
    assert first.status == "correct" and verdict.status == "correct", verdict.headline()
    assert verdict.cost_s.get("host_hold_wait", 0) >= 10.0, verdict.cost_s


def test_a_lock_folder_someone_else_made_is_not_used(tmp_path, monkeypatch):
    # In the shared /dev/shm another user (a candidate under the `plain` fallback, say) could make
    # the folder first and then hold its locks: such a folder, or one open to others, is refused.
    folder = tmp_path / "locks"
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)
    monkeypatch.setenv("KERNELSCALE_HOST_LOCK_DIR", str(folder))
    assert host_quiet._open(host_quiet.ALIVE) is None
    folder.chmod(0o700)
    fd = host_quiet._open(host_quiet.ALIVE)
    assert fd is not None
    import os

    os.close(fd)
