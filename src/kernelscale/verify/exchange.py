"""The model's init arguments, by value, to the candidate's process: a file in the attempt folder.

Written once per attempt (every call's inputs and outputs go through slab.py instead). Files are
read with `weights_only=True`, so a crafted file cannot run code in the reader. Nothing travels
as a seed: the candidate never learns how an input was drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


class Exchange:
    """Numbered files in one folder; each name is used once."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._count = 0

    def next_path(self, kind: str) -> Path:
        self._count += 1
        return self.folder / f"{kind}-{self._count}.pt"

    def write(self, kind: str, values: list[Any]) -> Path:
        path = self.next_path(kind)
        save_values(values, path)
        return path


def _skip_checksums() -> None:
    """A CRC over every byte costs ~40% of writing a large output and guards against nothing
    here (the files live in memory, one writer, one reader); where torch can skip it, skip it."""
    try:
        from torch.utils.serialization import config
    except ImportError:
        return
    if hasattr(config.save, "compute_crc32"):
        config.save.compute_crc32 = False


_skip_checksums()


def save_values(values: list[Any], path: Path) -> None:
    """Tensors go to the host first: the other process may sit on another device (CPU tests)."""
    torch.save([v.detach().cpu() if isinstance(v, torch.Tensor) else v for v in values], path)


def load_values(path: str | Path, device: torch.device | str | None = None) -> list[Any]:
    values = torch.load(path, weights_only=True, map_location=device)
    if not isinstance(values, list):
        raise ValueError(f"{Path(path).name}: expected a list of values")
    return values
