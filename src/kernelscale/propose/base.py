"""Candidates and the proposer protocol: where new kernels come from."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from kernelscale.problems.problem import Problem
from kernelscale.verify.verdict import Verdict


@dataclass
class Candidate:
    """The full source of a module defining `ModelNew`, plus where it came from.

    `parents` are candidate ids (code hashes) it was derived from: its lineage.
    `provenance` holds what produced it: the prompt and raw response for the LLM, the
    configuration for the compiler, the file for replay.
    """

    code: str
    proposer: str
    parents: list[str] = field(default_factory=list)
    provenance: dict = field(default_factory=dict)
    usage: dict = field(default_factory=dict)  # tokens, cost (LLM only)

    @property
    def code_hash(self) -> str:
        return hashlib.sha256(self.code.encode()).hexdigest()[:16]


@dataclass
class Attempt:
    """A candidate with its verdict: one entry of the history a proposer learns from."""

    candidate: Candidate
    verdict: Verdict
    attempt_id: int | None = None
    elapsed_s: float = 0.0  # since the start of the run

    @property
    def best_speedup(self) -> float | None:
        return primary_speedup(self.verdict)


def primary_speedup(verdict: Verdict) -> float | None:
    """Speedup over the strongest baseline measured (the one a user already has)."""
    if not verdict.ok or not verdict.speedup or verdict.interpreted:
        return None
    return min(verdict.speedup.values())


@runtime_checkable
class Proposer(Protocol):
    """Given the problem and what has been tried, return new candidates.

    `history` holds the attempts of the chain asking (for `refine`, its own chain; for
    `evolve`, the chosen parents). An empty history asks for a first proposal.
    """

    name: str

    async def propose(self, problem: Problem, history: Sequence[Attempt], n: int = 1) -> list[Candidate]: ...


def no_code_verdict(candidate: Candidate) -> Verdict | None:
    """The verdict for a proposal with no code (nothing to verify), else None. The proposer may
    say why in `provenance["no_code"]` (an LLM answer without a fenced block, a cut-off reply)."""
    if candidate.code.strip():
        return None
    return Verdict("compile_error", candidate.provenance.get("no_code") or "the proposal contained no code")


class ProposerError(RuntimeError):
    """The proposer cannot go on (endpoint unreachable, key rejected); one line for the user."""


class ProposerStopped(ProposerError):
    """The proposer stops the run on purpose, not by failure: `reason` is the stop reason the run
    reports ("stuck": the same answer again and again; "budget": a call or token cap reached)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
