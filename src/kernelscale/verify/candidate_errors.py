"""How a candidate's exception is reported: its own frames and the error, and which status it is.

Runs inside the candidate's process (runner.py); imports nothing heavy.
"""

from __future__ import annotations

import os
import traceback


def candidate_frames(exc: BaseException, code_file: str | None, limit: int = 12) -> str:
    """The traceback lines that point into the candidate's own file, then the error line: a
    proposer needs its file and line, not the verifier's frames."""
    frames = traceback.extract_tb(exc.__traceback__)
    own = [
        f
        for f in frames
        if code_file and os.path.basename(f.filename).startswith(("_ks_candidate", "candidate"))
    ]
    chosen = own[-limit:] if own else frames[-3:]
    lines = [
        f'  File "{os.path.basename(f.filename)}", line {f.lineno}, in {f.name}\n    {f.line or ""}'.rstrip()
        for f in chosen
    ]
    last = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return "\n".join(lines + [last])


def status_of(exc: BaseException) -> str:
    name = type(exc).__name__
    module = type(exc).__module__ or ""
    if name in ("CompilationError", "CompileTimeAssertionFailure") or "triton.compiler" in module:
        return "compile_error"
    return "runtime_error"
