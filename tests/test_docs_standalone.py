"""The repository's docs stand alone: they never send a reader to files or trackers they do not have."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Design notes, measurement notes and issue threads live outside the repository; a doc that cites
# them must bring the fact in instead.
CITATION = re.compile(r"DESIGN(\.md)?\s*§|DESIGN\.md|ANCHORS|(?i:\bissues?\s+#?\d+)|\.\./shared|§\s*\d")


def citations(text: str) -> list[str]:
    return [
        f"line {number}: {line.strip()}"
        for number, line in enumerate(text.splitlines(), 1)
        if CITATION.search(line)
    ]


def repo_docs() -> list[Path]:
    return sorted({ROOT / "README.md", *(ROOT / "docs").rglob("*.md")})


@pytest.mark.parametrize("doc", repo_docs(), ids=lambda p: str(p.relative_to(ROOT)))
def test_doc_cites_nothing_outside_the_repo(doc):
    assert citations(doc.read_text()) == []


@pytest.mark.parametrize(
    "line",
    [
        "The map is DESIGN.md §2.",
        "see DESIGN §3.4",
        "comparable to ANCHORS.md",
        "ANCHORS' kernel",
        "bar (issue 3)",
        "Issue #12 says",
        "../shared/notes.md",
    ],
)
def test_the_scan_catches_each_kind_of_citation(line):
    assert citations(line) != []


def test_the_scan_leaves_ordinary_prose_alone():
    assert citations("The design of the verifier; issues with timing; 3 anchors on the card.") == []
