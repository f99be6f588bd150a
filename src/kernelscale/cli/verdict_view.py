"""How `kernelscale verify` prints a verdict: one verdict line, then the candidate's own frames.

The verifier reports a crash as the candidate's frames (in the temporary copy it imported) plus
the exception line. A user wants one line saying what went wrong and where in *their* file, so the
temporary name is replaced by the file they passed and the exception line is lifted to the top.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# `  File "_ks_candidate_1a2b.py", line 36, in add_mul_tanh` followed by the source line.
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<name>.+)$')
_CANDIDATE_COPY = re.compile(r"^(_ks_candidate\w*|candidate\w*)\.py$")


@dataclass(frozen=True)
class Frame:
    file: str
    line: int
    function: str
    code: str

    def __str__(self) -> str:
        return f"  {self.file}:{self.line} in {self.function}" + (f": {self.code}" if self.code else "")


@dataclass(frozen=True)
class CrashReport:
    headline: str  # the exception line, e.g. "RuntimeError: shape ... is invalid"
    frames: tuple[Frame, ...]  # outermost first, as the verifier listed them


def parse_reason(reason: str, candidate_name: str) -> CrashReport | None:
    """The frames and exception line in a verdict's reason, or None when it holds no traceback."""
    lines = reason.splitlines()
    frames: list[Frame] = []
    index = 0
    while index < len(lines):
        match = _FRAME.match(lines[index])
        if match is None:
            break
        code = ""
        if index + 1 < len(lines) and not _FRAME.match(lines[index + 1]) and lines[index + 1].startswith(" "):
            code = lines[index + 1].strip()
            index += 1
        file = match["file"]
        if _CANDIDATE_COPY.match(file):
            file = candidate_name
        frames.append(Frame(file, int(match["line"]), match["name"], code))
        index += 1
    if not frames:
        return None
    headline = " ".join(line.strip() for line in lines[index:] if line.strip())
    return CrashReport(headline or "the candidate raised", tuple(frames))


def verdict_lines(status: str, reason: str, candidate_name: str, line: int | None = None) -> list[str]:
    """The verdict as printed: `status: what happened (file:line)`, then one line per own frame.
    `line` is where the static screen or the parser placed the problem, when it did."""
    crash = parse_reason(reason, candidate_name)
    if crash is None:
        where = f" ({candidate_name}:{line})" if line else ""
        return [f"{status}: {reason}{where}"]
    innermost = crash.frames[-1]
    head = f"{status}: {crash.headline} ({innermost.file}:{innermost.line})"
    return [head] + [str(frame) for frame in crash.frames]
