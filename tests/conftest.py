"""Shared fixtures: a CPU verifier pool driven from synchronous tests, and problem paths."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

import pytest

from kernelscale.problems import load_problem
from kernelscale.verify.options import VerifyOptions
from kernelscale.verify.slots import SlotPool

TESTS = Path(__file__).parent

# Each test process its own "host" for the verifier's host-wide lock (verify/host_quiet.py):
# pytest-xdist's workers are separate runs, and their calibrations need not wait for each
# other's candidates. tests/test_host_quiet.py shares one folder between processes on purpose.
os.environ.setdefault(
    "KERNELSCALE_HOST_LOCK_DIR",
    os.path.join(
        tempfile.gettempdir(), f"ks-host-lock-{os.getpid()}-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    ),
)


class SyncPool:
    """A local SlotPool on its own event loop, so plain tests can call `verify` directly."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.pool = self.loop.run_until_complete(SlotPool.local(device="cpu").start())

    def verify(self, problem, code: str, **options):
        opts = VerifyOptions(**({"timeout_s": 60.0} | options))
        return self.loop.run_until_complete(self.pool.verify(problem, code, opts))

    def close(self) -> None:
        self.loop.run_until_complete(self.pool.close())
        self.loop.close()


@pytest.fixture(scope="session")
def cpu_pool():
    pool = SyncPool()
    yield pool
    pool.close()


@pytest.fixture(scope="session")
def scaled_exp():
    return load_problem(TESTS / "problems" / "scaled_exp.py")
