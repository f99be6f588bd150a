"""What the oracle does with the runner's replies: a failed step ends the attempt with a verdict."""

from __future__ import annotations

from kernelscale.verify.sandbox import Child
from kernelscale.verify.verdict import Verdict


class AttemptFailed(Exception):
    """Raised anywhere in an attempt to end it with `verdict`."""

    def __init__(self, verdict: Verdict):
        self.verdict = verdict


# A failure's reason goes into the verdict, the store and the proposer's prompt: a traceback fits.
MAX_REASON_CHARS = 8000


def _text(value, limit: int) -> str:
    """The runner writes its replies, so a reason or a rule may be any JSON value: the verdict
    holds text (the search and the prompts treat it as text), and not without end."""
    return (value if isinstance(value, str) else repr(value))[:limit]


def mutated_inputs(reply: dict) -> list[int]:
    """The inputs the runner says the candidate changed in place: a list of indices, or the
    reply is malformed (the runner's error, never an exception in the oracle)."""
    found = reply.get("mutated_inputs") or []
    if not isinstance(found, list) or not all(type(i) is int for i in found):
        raise AttemptFailed(Verdict("runtime_error", f"malformed reply: mutated_inputs {str(found)[:80]!r}"))
    return found


def expect(reply: dict, child: Child | None = None) -> dict:
    """The reply when the step succeeded; otherwise end the attempt with the status it reports."""
    if reply.get("ok"):
        return reply
    status = reply.get("status", "runtime_error")
    rule = reply.get("rule")
    verdict = Verdict(
        status if status in ("compile_error", "runtime_error", "rejected") else "runtime_error",
        _text(reply.get("reason", ""), MAX_REASON_CHARS),
        rule=_text(rule, 64) if rule is not None else None,
    )
    if child is not None and status != "rejected":
        verdict.log_tail = child.log_tail()
    raise AttemptFailed(verdict)
