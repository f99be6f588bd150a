"""Ctrl-C during a search, driven by a real SIGINT sent to this process at a chosen moment."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import threading
import time

import pytest

from kernelscale.search.interrupt import run_to_end


@pytest.fixture
def python_sigint():
    """What a terminal gives Python: its default SIGINT handler (a test runner may have changed it)."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def _search(log: list[str], *, interrupt_in_sync_code: bool):
    """Two chains, as a strategy runs them; one sends SIGINT to the process in the middle of
    synchronous work (where Python's own handler would raise inside that task)."""

    async def chain(name: str, sends: bool) -> None:
        try:
            for step in range(200):
                if sends and step == 3:
                    os.kill(os.getpid(), signal.SIGINT)
                    deadline = time.monotonic() + 0.2
                    while time.monotonic() < deadline:  # synchronous work, like the screen
                        pass
                await asyncio.sleep(0.005)
            log.append(f"{name} ran out")
        except asyncio.CancelledError:
            log.append(f"{name} cancelled")
            raise

    async def search() -> str:
        try:
            await asyncio.gather(chain("a", interrupt_in_sync_code), chain("b", False))
            return "finished"
        finally:
            await asyncio.sleep(0.01)  # cleanup that awaits, like closing the verifier pool
            log.append("cleaned up")

    return search()


def test_sigint_in_a_tasks_sync_code_cancels_once_and_cleans_up(python_sigint, caplog):
    log: list[str] = []
    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_to_end(loop, _search(log, interrupt_in_sync_code=True))
    finally:
        loop.close()
    assert sorted(log[:2]) == ["a cancelled", "b cancelled"] and log[2:] == ["cleaned up"]
    gc.collect()  # an unretrieved task exception is reported when the task is collected
    assert "never retrieved" not in caplog.text
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # given back


async def _fails():
    return 1 / 0


def test_without_an_interrupt_the_result_or_the_error_comes_back(python_sigint):
    async def quick():
        return 7

    loop = asyncio.new_event_loop()
    try:
        assert run_to_end(loop, quick()) == 7
        with pytest.raises(ZeroDivisionError):
            run_to_end(loop, _fails())
    finally:
        loop.close()


def test_off_the_main_thread_a_raised_interrupt_is_handled_the_same(python_sigint):
    """No handler can be installed off the main thread; a KeyboardInterrupt raised in the loop
    (as Python raises it in the main thread) still cancels, cleans up and goes on."""
    log: list[str] = []
    outcome: list[BaseException] = []

    async def search():
        try:
            await asyncio.sleep(0.01)
            raise KeyboardInterrupt  # where Python's handler would have raised it
        finally:
            log.append("cleaned up")

    def in_thread():
        loop = asyncio.new_event_loop()
        try:
            run_to_end(loop, search())
        except BaseException as exc:  # noqa: BLE001 - what the thread saw is the result
            outcome.append(exc)
        finally:
            loop.close()

    worker = threading.Thread(target=in_thread)
    worker.start()
    worker.join(30)
    assert [type(e) for e in outcome] == [KeyboardInterrupt] and log == ["cleaned up"]
