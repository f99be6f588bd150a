"""What every command shares: option types, budget parsing, one-line errors, the console."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from kernelscale.cli.report_cmds import DEFAULT_DB, DbOption  # one default store for every command

__all__ = ["DEFAULT_DB", "DbOption", "DeviceOption", "ToleranceOption", "fail", "console", "parse_budget"]

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
    """`900`, `90s`, `15m`, `1h`, `1h30m` -> seconds; None or `none` -> no time limit."""
    if text is None or text.lower() in ("none", "0"):
        return None
    text = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)([smh])", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        fail(f"cannot read budget {text!r}: use seconds or 90s, 15m, 1h")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def check_device(device: str | None) -> str | None:
    if device not in (None, "cpu", "cuda"):
        fail(f"--device must be cpu or cuda, not {device!r}")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            fail("--device cuda, but no GPU is visible (use --device cpu for the interpreter)")
    return device


def read_text(path: Path, what: str) -> str:
    try:
        return Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {what} {path}: {exc.strerror if isinstance(exc, OSError) else exc}")
