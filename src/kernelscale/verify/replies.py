"""What the oracle does with the runner's replies: a failed step ends the attempt with a verdict."""

from __future__ import annotations

from kernelscale.verify.sandbox import Child
from kernelscale.verify.verdict import Verdict


class AttemptFailed(Exception):
    """Raised anywhere in an attempt to end it with `verdict`."""

    def __init__(self, verdict: Verdict):
        self.verdict = verdict


def expect(reply: dict, child: Child | None = None) -> dict:
    """The reply when the step succeeded; otherwise end the attempt with the status it reports."""
    if reply.get("ok"):
        return reply
    status = reply.get("status", "runtime_error")
    verdict = Verdict(
        status if status in ("compile_error", "runtime_error", "rejected") else "runtime_error",
        reply.get("reason", ""),
        rule=reply.get("rule"),
    )
    if child is not None and status != "rejected":
        verdict.log_tail = child.log_tail()
    raise AttemptFailed(verdict)
