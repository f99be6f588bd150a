"""What every command shares: option types, budget parsing, one-line errors, the console."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from kernelscale.cli.report_cmds import DEFAULT_DB, DbOption  # one default store for every command

__all__ = [
    "DEFAULT_DB",
    "DbOption",
    "DeviceOption",
    "ToleranceOption",
    "fail",
    "console",
    "parse_budget",
    "check_gpus",
]

DeviceOption = Annotated[
    str | None, typer.Option("--device", help="cpu or cuda (default: cuda when a GPU is visible).")
]
ToleranceOption = Annotated[
    str | None, typer.Option("--tolerance", help="strict (KernelBench today) or loose (v0.1).")
]


def fail(message: str, code: int = 2) -> NoReturn:
    """One line on stderr and a non-zero exit: bad input never ends in a traceback."""
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(code)


def console():
    from rich.console import Console

    out = Console()
    return out if out.is_terminal else Console(width=160)


_UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_budget(text: str | None) -> float | None:
    """`900`, `90s`, `15m`, `1h`, `1h30m` -> seconds; `none` -> no time limit (None). Zero is
    returned as 0.0 and refused by the run's settings: it never silently means "unlimited"."""
    if text is None:
        return None
    text = text.strip().lower()
    if text in ("none", "unlimited"):
        return None
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)([smh])", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        fail(f"cannot read budget {text!r}: use seconds or 90s, 15m, 1h")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def check_device(device: str | None) -> str | None:
    if device not in (None, "cpu", "cuda"):
        fail(f"--device must be cpu or cuda, not {device!r}")
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        fail("--device cuda, but no GPU is visible (use --device cpu for the interpreter)")
    if device == "cpu" or (device is None and not torch.cuda.is_available()):
        from kernelscale.verify.interpreter_check import interpreter_blocker

        reason = interpreter_blocker()
        if reason:
            fail(reason)
    return device


def check_gpus(spec: str | None, device: str | None) -> str | None:
    """`--gpus`: a list of visible GPU indices or `all`; anything else is one line and exit 2."""
    if spec is None:
        return None
    from kernelscale.search.settings import SettingsError, parse_gpus

    try:
        chosen = parse_gpus(spec)
    except SettingsError as exc:
        fail(str(exc))
    if device == "cpu":
        fail("--gpus picks GPUs for --device cuda; it means nothing with --device cpu")
    import torch

    count = torch.cuda.device_count()
    if count == 0:
        fail(f"--gpus {spec}, but no GPU is visible on this machine")
    missing = [g for g in chosen or [] if g >= count]
    if missing:
        fail(
            f"--gpus {spec}: GPU(s) {', '.join(map(str, missing))} not available "
            f"(this machine has {count}: 0-{count - 1})"
        )
    return spec


def read_text(path: Path, what: str) -> str:
    try:
        return Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {what} {path}: {exc.strerror if isinstance(exc, OSError) else exc}")
