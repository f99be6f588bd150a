"""Worker slots: one verifier worker per GPU (or per CPU stand-in), replaced when it dies.

`SlotPool` has the pool's interface (`verify`, `size`, `device_key`, async context manager) over
any list of workers that can `start`, `ask` and `replace`: local oracle processes here, Ray
actors in `kernelscale.search.ray_executor`. The dispatch rules are the same for both:

* each attempt goes to an idle worker; a worker serves one attempt at a time;
* a worker that dies or stops answering (an oracle crash, OOM, a wedged GPU, a lost node) is
  replaced in the background; only its in-flight attempt is affected;
* that attempt, and one whose verdict says the fault was the verifier's and not the candidate's,
  is retried once, on another worker where there is one. A candidate that crashes its own
  runner gets its verdict; it is never retried (runners die alone, the oracle survives them).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from kernelscale.problems.problem import Problem
from kernelscale.verify.options import VerifyOptions
from kernelscale.verify.pool import (
    ORACLE_MARGIN_S,
    _Oracle,
    default_device,
    screen_verdict,
    visible_gpus,
)
from kernelscale.verify.verdict import VERIFIER_ERROR, Verdict, verifier_error

log = logging.getLogger(__name__)


class WorkerLost(Exception):
    """The worker died or stopped answering: the fault is the verifier's, not the candidate's."""


class Worker(Protocol):
    name: str
    environment: dict

    async def start(self) -> None: ...

    async def ask(self, request: dict, timeout: float) -> Verdict: ...  # raises WorkerLost

    async def replace(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class LocalWorker:
    """One oracle process, pinned to one GPU with CUDA_VISIBLE_DEVICES (or a CPU stand-in)."""

    device: str
    gpu: int | None
    name: str = ""

    def __post_init__(self) -> None:
        self.oracle = _Oracle(self.device, self.gpu)
        self.name = self.name or (f"gpu{self.gpu}" if self.gpu is not None else "cpu")

    @property
    def environment(self) -> dict:
        return self.oracle.environment

    @property
    def pid(self) -> int | None:
        return self.oracle.proc.pid if self.oracle.proc else None

    async def start(self) -> None:
        await self.oracle.start()

    async def ask(self, request: dict, timeout: float) -> Verdict:
        try:
            return await self.oracle.ask(request, timeout)
        except TimeoutError:
            raise WorkerLost(f"verifier worker {self.name} stopped answering") from None
        except (ConnectionError, BrokenPipeError, json.JSONDecodeError, KeyError) as exc:
            raise WorkerLost(f"verifier worker {self.name} died ({type(exc).__name__}: {exc})") from None

    async def replace(self) -> None:
        await self.oracle.stop()
        self.oracle = _Oracle(self.device, self.gpu)
        await self.oracle.start()

    async def stop(self) -> None:
        await self.oracle.stop(graceful=True)


def local_workers(device: str, gpus: str | None, workers: int | None) -> list[LocalWorker]:
    """One worker per chosen GPU (`all` or `0,1,...`); on the CPU, `workers` stand-ins (default 1)."""
    if device == "cuda":
        chosen = visible_gpus(gpus)
        if not chosen:
            raise ValueError("--device cuda, but no GPU is visible")
        return [LocalWorker(device, gpu) for gpu in chosen]
    count = max(1, workers or 1)
    return [LocalWorker(device, None, name=f"cpu{i}") for i in range(count)]


class SlotPool:
    """Dispatches attempts over workers; replaces dead ones; retries the verifier's faults once."""

    def __init__(self, workers: Sequence[Worker], device: str):
        if not workers:
            raise ValueError("the verifier needs at least one worker")
        self.device = device
        self.workers: list[Worker] = list(workers)
        self.replacements = 0  # workers replaced so far (progress, tests)
        self.retries = 0  # attempts retried after a verifier fault
        self._idle: list[Worker] = []
        self._live = set(range(len(self.workers)))
        self._changed: asyncio.Condition | None = None
        self._background: set[asyncio.Task] = set()
        self._counter = 0

    @classmethod
    def local(
        cls, device: str | None = None, gpus: str | None = None, workers: int | None = None
    ) -> SlotPool:
        device = device or default_device()
        return cls(local_workers(device, gpus, workers), device)

    @property
    def size(self) -> int:
        return len(self.workers)

    @property
    def device_key(self) -> str:
        env = self.workers[0].environment
        return f"{env.get('name', self.device)}|{self.device}|torch {env.get('torch')}|triton {env.get('triton')}"

    async def start(self) -> SlotPool:
        self._changed = asyncio.Condition()
        started = await asyncio.gather(*(w.start() for w in self.workers), return_exceptions=True)
        failed = [r for r in started if isinstance(r, BaseException)]
        if failed:
            await self.close()
            raise failed[0]
        self._idle = list(self.workers)
        return self

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await asyncio.gather(*(w.stop() for w in self.workers), return_exceptions=True)

    async def __aenter__(self) -> SlotPool:
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def verify(self, problem: Problem, code: str, options: VerifyOptions | None = None) -> Verdict:
        options = options or VerifyOptions()
        if options.screen:
            early = screen_verdict(problem, code)
            if early is not None:
                early.device = self.workers[0].environment
                early.interpreted = self.device != "cuda"
                return early
        self._counter += 1
        request = {
            "id": self._counter,
            "problem": problem.to_json(),
            "code": code,
            "options": options.to_json(),
        }
        timeout = options.timeout_s + ORACLE_MARGIN_S
        failed_on: Worker | None = None
        reason = ""
        for retry in (False, True):
            worker = await self._take(avoid=failed_on)
            try:
                verdict = await worker.ask(request, timeout)
            except WorkerLost as lost:
                self._replace_soon(worker)
                failed_on, reason = worker, str(lost)
            else:
                await self._give_back(worker)
                if not _verifier_fault(verdict):
                    return verdict
                if retry:
                    verdict.reason += "; the attempt was retried once on another worker, with the same result"
                    return verdict
                failed_on, reason = worker, verdict.reason
            if not retry:
                self.retries += 1
                log.info("%s; retrying the attempt once on another worker", reason)
        detail = reason.removeprefix(VERIFIER_ERROR).lstrip(": ")
        return verifier_error(
            f"{detail}; the attempt was retried once on another worker and failed again there"
        )

    async def _take(self, avoid: Worker | None) -> Worker:
        """An idle worker, other than `avoid` while another live worker exists."""
        async with self._changed:
            while True:
                if not self._live:
                    raise RuntimeError("every verifier worker died and none could be restarted")
                others_live = any(self.workers[i] is not avoid for i in self._live)
                for worker in self._idle:
                    if worker is not avoid or not others_live:
                        self._idle.remove(worker)
                        return worker
                await self._changed.wait()

    async def _give_back(self, worker: Worker) -> None:
        async with self._changed:
            self._idle.append(worker)
            self._changed.notify_all()

    def _replace_soon(self, worker: Worker) -> None:
        task = asyncio.get_running_loop().create_task(self._replace(worker))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _replace(self, worker: Worker) -> None:
        """A fresh worker in the dead one's place (same GPU); it rejoins the idle list when ready."""
        try:
            await worker.replace()
        except Exception as exc:  # noqa: BLE001 - a slot that cannot restart leaves the rotation
            log.error("verifier worker %s could not be restarted: %s", worker.name, exc)
            async with self._changed:
                self._live.discard(self.workers.index(worker))
                self._changed.notify_all()
            return
        self.replacements += 1
        await self._give_back(worker)


def _verifier_fault(verdict: Verdict) -> bool:
    """The oracle's typed mark, never words in the reason: a candidate can write those."""
    return verdict.status == "runtime_error" and verdict.verifier_fault
