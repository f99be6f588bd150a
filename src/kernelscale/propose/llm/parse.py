"""Split a reasoning model's reply into its reasoning and its answer, and find the code in it.

Servers disagree on where R1's thinking goes: DeepSeek's API and vLLM's reasoning parser put it
in `reasoning_content`, OpenRouter-style servers in `reasoning`, plain servers leave it inline as
`<think>...</think>` in the content; R1's chat template often eats the opening tag, so a bare
`...</think>` must be understood too. Only the answer is searched for code: the reasoning is full
of drafts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
PYTHON_TAGS = ("python", "py", "python3")

# A fence opener or closer: up to 3 spaces, then 3+ backticks or tildes, then an info string.
_FENCE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*?)[ \t]*$")


def split_reasoning(content: str | None, reasoning: str | None = None) -> tuple[str, str]:
    """(reasoning, answer) from a message's content and its separate reasoning field, if any."""
    text = content or ""
    parts = [reasoning.strip()] if reasoning and reasoning.strip() else []
    close = text.find(THINK_CLOSE)
    stripped = text.lstrip()
    if close != -1:
        inline = text[:close].lstrip()
        if inline.startswith(THINK_OPEN):
            inline = inline[len(THINK_OPEN) :]
        parts.append(inline.strip())
        answer = text[close + len(THINK_CLOSE) :]
    elif stripped.startswith(THINK_OPEN):
        # Opened and never closed: the reply was cut off while still thinking; no answer yet.
        parts.append(stripped[len(THINK_OPEN) :].strip())
        answer = ""
    else:
        answer = text
    return "\n\n".join(p for p in parts if p), answer.strip()


@dataclass
class Block:
    info: str  # the fence's language tag, lower-cased ("" when untagged)
    body: str
    closed: bool


def fenced_blocks(text: str) -> list[Block]:
    """Every fenced code block in order; a block still open at the end is returned unclosed."""
    blocks: list[Block] = []
    opener: tuple[str, str] | None = None  # (fence, info) of the block being read
    lines: list[str] = []
    for line in text.splitlines():
        match = _FENCE.match(line)
        if opener is None:
            if match:
                info = match["info"].split()[0].lower() if match["info"].strip() else ""
                opener, lines = (match["fence"], info), []
            continue
        fence = match["fence"] if match else ""
        if match and not match["info"] and fence[0] == opener[0][0] and len(fence) >= len(opener[0]):
            blocks.append(Block(opener[1], "\n".join(lines) + "\n", closed=True))
            opener = None
        else:
            lines.append(line)
    if opener is not None:
        blocks.append(Block(opener[1], "\n".join(lines) + "\n", closed=False))
    return blocks


def extract_code(answer: str) -> str | None:
    """The answer's last complete Python block, preferring the last one that defines ModelNew.

    Models often end with a short usage snippet after the module, so "last block" alone would
    pick the snippet. Untagged fences count when they define ModelNew (some models omit the tag).
    """
    blocks = [b for b in fenced_blocks(answer) if b.closed and b.body.strip()]
    python = [b for b in blocks if b.info in PYTHON_TAGS or (not b.info and "ModelNew" in b.body)]
    if not python:
        return None
    defining = [b for b in python if re.search(r"^class\s+ModelNew\b", b.body, re.M)]
    return (defining or python)[-1].body


def no_code_reason(answer: str, finish_reason: str | None, max_tokens: int | None = None) -> str:
    """The feedback for a reply without code: what went wrong, in the model's terms."""
    reason = "your answer contained no ```python block"
    if finish_reason == "length":
        limit = f" of {max_tokens} tokens" if max_tokens else ""
        where = "while still reasoning" if not answer else "before the code block was closed"
        reason += f" (the reply hit the length limit{limit} {where}: reason more briefly and write the code)"
    elif any(not b.closed for b in fenced_blocks(answer)):
        reason += " (a code block was opened but never closed)"
    return reason
