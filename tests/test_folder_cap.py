"""A candidate cannot fill the host's memory through its attempt folder (verify/folder_cap.py).

The planted candidate writes file after file into its working directory (the attempt folder, in
/dev/shm) at import, far past the cap, catches the error and then runs honestly. What is
asserted comes from outside it: a watcher in this test reads the folder's size on the host
while the attempt runs, and the verdict of the honest rest.
"""

from __future__ import annotations

import glob
import os
import threading
import time

import pytest

from conftest import TESTS, SyncPool
from hostile_protocol import SCALED_EXP_KERNEL, SCALED_EXP_MODEL
from kernelscale.problems import load_problem

SCRATCH_MB = 16
FILLS_ITS_FOLDER = (
    SCALED_EXP_KERNEL
    + """
import time as _time

_chunk, _written = b"x" * 2**20, 0
try:
    while _written < 96 * 2**20:  # six times the scratch space, one file per MB
        with open(f"junk-{_written >> 20}", "wb") as _f:
            _f.write(_chunk)
        _written += len(_chunk)
except OSError:
    pass
_time.sleep(1.0)  # the files stay while the watcher looks
"""
    + SCALED_EXP_MODEL
)


def _folder_bytes(folder: str) -> int:
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def _attempt_folders() -> list[str]:
    """This process's pools' attempt folders (others' may be left over on the same host)."""
    return glob.glob(f"/dev/shm/ks-oracle-{os.getpid()}-*/ks-attempt-*")


def _watch(stop: threading.Event, seen: list) -> None:
    """The largest size of any attempt folder holding the candidate's junk, sampled."""
    while not stop.is_set():
        for folder in _attempt_folders():  # each oracle's, from its pool
            if os.path.exists(os.path.join(folder, "junk-0")):
                seen.append(_folder_bytes(folder))
        time.sleep(0.02)


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.isdir("/dev/shm"), reason="mounting a tmpfs needs root")
def test_a_candidate_writing_past_the_cap_is_stopped_at_the_cap(monkeypatch):
    monkeypatch.setenv("KERNELSCALE_ATTEMPT_SCRATCH_MB", str(SCRATCH_MB))  # the oracle's process reads it
    pool = SyncPool()
    stop, seen = threading.Event(), []
    watcher = threading.Thread(target=_watch, args=(stop, seen), daemon=True)
    watcher.start()
    try:
        verdict = pool.verify(
            load_problem(TESTS / "problems" / "scaled_exp.py"), FILLS_ITS_FOLDER, screen=False
        )
    finally:
        stop.set()
        watcher.join()
        pool.close()
    assert verdict.status == "correct", verdict.headline() + verdict.log_tail
    assert verdict.isolation["capped_folder"] is True  # and the verdict says so
    assert seen, "the watcher never saw the candidate's files"
    # its junk stopped at the scratch space (the slabs, the log and the seed are the oracle's)
    assert max(seen) <= (SCRATCH_MB + 8) * 2**20, max(seen) / 2**20
    assert not [f for f in _attempt_folders() if os.path.exists(f"{f}/junk-0")]  # and went with it
