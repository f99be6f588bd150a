"""Where verification runs: this machine's GPUs (`local`) or a Ray cluster (`ray`).

Both executors have the verifier pool's interface (`verify`, `size`, `device`, `device_key`,
async context manager), so the search loop, the store and the reports do not know which one
verified what: proposers and the store stay in this process either way.
"""

from __future__ import annotations

from dataclasses import dataclass

from kernelscale.verify.slots import SlotPool

EXECUTORS = ("local", "ray")


class ExecutorError(ValueError):
    """An executor that cannot be set up (unknown kind, Ray missing); one line for users."""


@dataclass
class ExecutorSpec:
    """What the user asked for: `kind`, and where (`gpus` locally, `address` for Ray)."""

    kind: str = "local"
    device: str | None = None  # cpu | cuda; default: cuda where a GPU is visible (to the cluster, for Ray)
    gpus: str | None = None  # local: all | 0,1,...
    workers: int | None = None  # CPU stand-ins locally; Ray: how many actors (default: every GPU)
    address: str | None = None  # Ray: auto | ray://host:port | None (start a local instance)


def make_executor(
    kind: str = "local",
    gpus: str | None = None,
    address: str | None = None,
    *,
    device: str | None = None,
    workers: int | None = None,
) -> SlotPool:
    """The pool-like executor for `kind`; start it with `async with`."""
    if kind == "local":
        if address:
            raise ExecutorError("--address is for --executor ray")
        return SlotPool.local(device=device, gpus=gpus, workers=workers)
    if kind == "ray":
        if gpus:
            raise ExecutorError(
                "--gpus chooses local GPUs; with --executor ray every GPU of the cluster is used "
                "(limit them with --workers)"
            )
        from kernelscale.search.ray_executor import ray_pool

        return ray_pool(address=address, device=device, workers=workers)
    raise ExecutorError(f"unknown executor {kind!r} (known: {', '.join(EXECUTORS)})")


def executor_from(spec: ExecutorSpec) -> SlotPool:
    return make_executor(spec.kind, spec.gpus, spec.address, device=spec.device, workers=spec.workers)
