"""Spend control for LLM proposers: caps on calls and tokens, and no instant re-asking.

A model that keeps returning the same kernel must not be asked again at once: every duplicate
answer would get a cached verdict in milliseconds and trigger the next request, thousands per
minute against a paid or rate-limited endpoint. So a duplicate answer is never handed to the
search; the proposer backs off (doubling waits), raises the temperature and asks for a
different approach, and after `stuck_after` duplicates in a row the run stops as "stuck".

`max_calls` counts requests when they are made (a request in flight counts), so concurrent
chains never exceed it; `max_tokens_total` is checked before each request against the tokens
the endpoint reported (or the client estimated) so far.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from kernelscale.propose.base import ProposerStopped

DIFFERENT_APPROACH = (
    "You returned exactly the same kernel as before; it has already been verified, so repeating it "
    "gains nothing. Write a substantially different implementation (another tiling, memory layout or "
    "algorithm) and return the complete module in one ```python block."
)


@dataclass
class SpendLimits:
    max_calls: int | None = None  # requests per run, None: no cap
    max_tokens_total: int | None = None  # prompt + completion tokens per run, None: no cap
    stuck_after: int = 3  # duplicate answers in a row before the run stops as stuck
    backoff_s: float = 2.0  # first wait after a duplicate; doubles with each further one
    temperature_step: float = 0.3  # added per duplicate in a row
    max_temperature: float = 1.3

    def __post_init__(self) -> None:
        for name in ("max_calls", "max_tokens_total"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
        if self.stuck_after < 1:
            raise ValueError("stuck_after must be at least 1")


class SpendGuard:
    """Counts one run's calls and tokens and remembers every answer's code."""

    def __init__(
        self, limits: SpendLimits | None = None, sleep: Callable[[float], Awaitable] = asyncio.sleep
    ):
        self.limits = limits or SpendLimits()
        self.sleep = sleep
        self.calls = 0
        self.tokens = 0
        self.duplicates_in_a_row = 0
        self._seen: set[str] = set()

    def reserve_call(self) -> None:
        """Count a request about to be made, or stop the run if a cap is reached."""
        limits = self.limits
        if limits.max_calls is not None and self.calls >= limits.max_calls:
            raise ProposerStopped("budget", f"--max-calls {limits.max_calls} reached")
        if limits.max_tokens_total is not None and self.tokens >= limits.max_tokens_total:
            raise ProposerStopped(
                "budget", f"--max-tokens-total {limits.max_tokens_total} reached ({self.tokens} tokens used)"
            )
        self.calls += 1

    def record(self, usage: dict) -> None:
        total = usage.get("total_tokens")
        if total is None:
            total = int(usage.get("prompt_tokens") or 0) + int(usage.get("completion_tokens") or 0)
        self.tokens += int(total)

    def remember(self, codes: Iterable[str]) -> None:
        """Answers already verified (a resumed run's history) count as seen."""
        self._seen.update(_digest(code) for code in codes if code.strip())

    def is_new(self, code: str) -> bool:
        """True for a new answer (remembered from now on); False for a duplicate. An answer without
        code is never a duplicate: it is recorded as a failed attempt and the model is told why."""
        if not code.strip():
            return True
        digest = _digest(code)
        if digest in self._seen:
            return False
        self._seen.add(digest)
        self.duplicates_in_a_row = 0
        return True

    async def after_duplicate(self, temperature: float | None) -> float:
        """Wait, then return the temperature for the next request; stop the run when stuck."""
        self.duplicates_in_a_row += 1
        limits = self.limits
        if self.duplicates_in_a_row >= limits.stuck_after:
            raise ProposerStopped(
                "stuck",
                f"the model returned an already verified kernel {self.duplicates_in_a_row} times in a row",
            )
        await self.sleep(limits.backoff_s * 2 ** (self.duplicates_in_a_row - 1))
        base = temperature if temperature is not None else 0.6
        return min(limits.max_temperature, base + limits.temperature_step * self.duplicates_in_a_row)


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()
