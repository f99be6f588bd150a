"""Ctrl-C during a search: the search is cancelled, records what it spent, then the interrupt goes on.

A KeyboardInterrupt raised by Python's default handler lands wherever the main thread happens to
be, which during a search is usually inside some task's synchronous code (the screen, a store
write). That task then ends with the interrupt as its exception and hands it, through `gather`,
to every task that waits on it, so one Ctrl-C surfaces several times and leaves "Task exception
was never retrieved" tracebacks behind. Cancelling instead, from the event loop, reaches each
task only at an `await`, where its `finally` blocks run in order.

`run_to_end` therefore turns SIGINT into one cancellation of the search (one more per further
Ctrl-C, for a cancel that a task swallowed: Python 3.11's `asyncio.wait_for` drops one that
races its result) while it runs, and raises KeyboardInterrupt once the search has finished unwinding.
Where no signal handler can be installed (a thread other than the main one, or a process whose
SIGINT is not Python's default), the interrupt still arrives as a KeyboardInterrupt raised in
the loop, and is handled the same way.
"""

from __future__ import annotations

import asyncio
import signal


class _CancelOnInterrupt:
    """Counts Ctrl-Cs against one task; each one cancels it once."""

    def __init__(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task):
        self.loop, self.task, self.pressed, self.installed = loop, task, 0, False
        if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            return  # ignored, or someone else's handler: not ours to take over
        try:
            loop.add_signal_handler(signal.SIGINT, self.press)
            self.installed = True
        except (ValueError, RuntimeError, NotImplementedError):
            pass  # not the main thread, or no signal support: the fallback below applies

    def press(self) -> None:
        self.pressed += 1
        self.task.cancel()

    def remove(self) -> None:
        if self.installed:
            self.loop.remove_signal_handler(signal.SIGINT)  # puts Python's default back


def run_to_end(loop: asyncio.AbstractEventLoop, coroutine):
    """Run `coroutine` as a task on `loop` until it finishes; its result, or its exception. After
    a Ctrl-C it is cancelled, runs to the end of its cleanup, and KeyboardInterrupt is raised."""
    task = loop.create_task(coroutine)
    interrupts = _CancelOnInterrupt(loop, task)
    finished = loop.create_future()  # a plain future: waiting on it creates no task of its own
    task.add_done_callback(lambda _: finished.done() or finished.set_result(None))
    try:
        while not finished.done():
            try:
                loop.run_until_complete(finished)
            except KeyboardInterrupt:  # no handler of ours: raised in the loop, maybe in a task
                interrupts.press()
    finally:
        interrupts.remove()
    if interrupts.pressed:
        _ = task.cancelled() or task.exception()  # retrieved: the interrupt is what goes on
        raise KeyboardInterrupt
    return task.result()
