"""The Ray executor: verifier workers as Ray actors, one GPU each, anywhere in a cluster.

Only Ray's core is used: `ray.init`, actors with `num_gpus=1` (or `num_cpus=1` on a CPU-only
cluster), and awaiting their results. Each actor runs one oracle process on its node, exactly as
a local worker does (the oracle inherits the GPU Ray assigned through CUDA_VISIBLE_DEVICES).
Proposers, the search and the SQLite store stay in the driver: a verdict is stored the moment
it comes back, so a node lost mid-run costs only its in-flight attempts, which `SlotPool`
retries on another actor while a replacement actor is started wherever Ray can place one.
"""

from __future__ import annotations

import asyncio
import logging
import os

from kernelscale.search.executor import ExecutorError
from kernelscale.verify.pool import ORACLE_START_S, _Oracle
from kernelscale.verify.slots import SlotPool, WorkerLost
from kernelscale.verify.verdict import Verdict

try:
    import ray
    from ray.exceptions import RayError
except ImportError:  # the optional extra is not installed
    ray = None

log = logging.getLogger(__name__)

STOP_S = 10.0  # a polite stop before the actor is killed
REPLY_MARGIN_S = 120.0  # beyond the oracle's own timeout: Ray's transfer and scheduling


class _VerifierActorImpl:
    """Lives in a Ray worker process; holds one oracle process for the GPU Ray gave it."""

    def __init__(self, device: str):
        self.oracle = _Oracle(device, None)  # CUDA_VISIBLE_DEVICES is already Ray's choice

    async def start(self) -> dict:
        await self.oracle.start()
        return {
            "environment": self.oracle.environment,
            "pid": os.getpid(),
            "node": ray.get_runtime_context().get_node_id(),
        }

    async def ask(self, request: dict, timeout: float) -> dict:
        return (await self.oracle.ask(request, timeout)).to_json()

    async def stop(self) -> None:
        await self.oracle.stop()


_VerifierActor = ray.remote(max_restarts=0)(_VerifierActorImpl) if ray is not None else None


class RayWorker:
    """The driver's handle on one actor; `replace` starts a new actor wherever Ray places it."""

    def __init__(self, device: str, index: int):
        self.device, self.index = device, index
        self.name = f"ray{index}"
        self.environment: dict = {}
        self.pid: int | None = None  # the actor's worker process (tests kill it)
        self.node: str | None = None
        self.actor = None

    async def start(self) -> None:
        resources = {"num_gpus": 1} if self.device == "cuda" else {"num_cpus": 1}
        self.actor = _VerifierActor.options(**resources).remote(self.device)
        try:
            info = await asyncio.wait_for(_awaitable(self.actor.start.remote()), ORACLE_START_S)
        except (TimeoutError, RayError) as exc:
            raise RuntimeError(
                f"the Ray verifier actor {self.name} failed to start: {_one_line(exc)}"
            ) from None
        self.environment, self.pid, self.node = info["environment"], info["pid"], info["node"]

    async def ask(self, request: dict, timeout: float) -> Verdict:
        try:
            reply = await asyncio.wait_for(
                _awaitable(self.actor.ask.remote(request, timeout)), timeout + REPLY_MARGIN_S
            )
        except TimeoutError:
            raise WorkerLost(f"Ray verifier actor {self.name} stopped answering") from None
        except RayError as exc:  # the actor's process or node died, or its oracle did
            raise WorkerLost(f"Ray verifier actor {self.name} was lost ({_one_line(exc)})") from None
        return Verdict.from_json(reply)

    async def replace(self) -> None:
        await self.stop()
        await self.start()

    async def stop(self) -> None:
        if self.actor is None:
            return
        try:
            await asyncio.wait_for(_awaitable(self.actor.stop.remote()), STOP_S)
        except (TimeoutError, RayError):
            pass  # already dead, or wedged: the kill below ends it
        ray.kill(self.actor, no_restart=True)
        self.actor = None


class RayPool(SlotPool):
    """A SlotPool of Ray actors; refuses a cluster whose GPUs differ (timings would not compare)."""

    async def start(self) -> RayPool:
        await super().start()
        names = {w.environment.get("name") for w in self.workers}
        if self.device == "cuda" and len(names) > 1:
            await self.close()
            raise ExecutorError(
                f"the Ray cluster mixes GPU models ({', '.join(sorted(map(str, names)))}); "
                f"times would not compare: run one model per cluster"
            )
        log.info("Ray verifier actors on %d node(s)", len({w.node for w in self.workers}))
        return self


def ray_pool(address: str | None = None, device: str | None = None, workers: int | None = None) -> RayPool:
    """Connect to (or start) Ray and size the pool: one actor per GPU of the cluster, or `workers`."""
    if ray is None:
        raise ExecutorError("--executor ray needs Ray: pip install 'kernelscale[ray]'")
    _connect(address)
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    device = device or ("cuda" if gpus else "cpu")
    if device == "cuda":
        if not gpus:
            raise ExecutorError("--device cuda, but the Ray cluster has no GPU")
        count = min(workers or gpus, gpus)
    elif device == "cpu":
        count = max(1, min(workers or 1, int(resources.get("CPU", 1))))
    else:
        raise ExecutorError(f"--device must be cpu or cuda, not {device!r}")
    return RayPool([RayWorker(device, i) for i in range(count)], device)


def _connect(address: str | None) -> None:
    if ray.is_initialized():
        return
    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = address or "a new local instance"
        raise ExecutorError(f"cannot reach the Ray cluster ({where}): {_one_line(exc)}") from None


def _awaitable(ref):
    """A Ray ObjectRef as something asyncio.wait_for accepts."""

    async def wait():
        return await ref

    return wait()


def _one_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0][:300]}" if lines else type(exc).__name__
