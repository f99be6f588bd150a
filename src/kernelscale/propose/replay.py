"""Propose given sources in order: re-verify saved kernels, or script a proposer in tests."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from kernelscale.problems.problem import Problem
from kernelscale.propose.base import Attempt, Candidate


class ReplayProposer:
    """Each call hands out the next source; an empty list once all are spent ends the chain.

    Items are paths (a `Path`, or a string naming an existing file) or source text. Files are
    read when proposed, so a replay of a directory sees the files as they are then.
    """

    name = "replay"

    def __init__(self, sources: Iterable[str | Path]):
        self.sources = list(sources)
        self.position = 0

    @classmethod
    def from_directory(cls, folder: str | Path) -> ReplayProposer:
        return cls(sorted(Path(folder).glob("*.py")))

    async def propose(self, problem: Problem, history: Sequence[Attempt], n: int = 1) -> list[Candidate]:
        out = []
        while len(out) < n and self.position < len(self.sources):
            out.append(self._candidate(self.sources[self.position], self.position))
            self.position += 1
        return out

    def _candidate(self, source: str | Path, index: int) -> Candidate:
        path = _as_path(source)
        provenance = {"index": index, "file": str(path)} if path else {"index": index}
        code = path.read_text() if path else str(source)
        # No parents: a replayed source was written before this run, not derived from its history.
        return Candidate(code=code, proposer=self.name, provenance=provenance)


def _as_path(source: str | Path) -> Path | None:
    if isinstance(source, Path):
        return source
    # Source text has newlines; a short single line naming an existing file is a path.
    if "\n" not in source and len(source) < 4096 and Path(source).is_file():
        return Path(source)
    return None
