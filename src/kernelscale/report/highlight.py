"""Python syntax highlighting to HTML with the standard library's tokenizer.

The page must open from disk with no network and no script, and pygments is not a dependency, so
the highlighter emits `<span style=...>` runs itself. Every character of the output comes from a
slice of the input (tokens only choose the colour), so the code a reader copies is exactly the
code that was verified, even when the tokenizer gives up half-way (a candidate need not parse).
"""

from __future__ import annotations

import builtins
import html
import io
import keyword
import token
import tokenize

STYLES = {
    "keyword": "color:#8959a8;font-weight:bold",
    "builtin": "color:#3e999f",
    "string": "color:#718c00",
    "comment": "color:#8e908c;font-style:italic",
    "number": "color:#f5871f",
    "definition": "color:#4271ae;font-weight:bold",
    "decorator": "color:#c82829",
}
LINE_NUMBER_STYLE = (
    "color:#999;user-select:none;display:inline-block;min-width:3em;padding-right:1em;text-align:right"
)

_KEYWORDS = frozenset(keyword.kwlist) | frozenset(getattr(keyword, "softkwlist", ()))
_BUILTINS = frozenset(n for n in dir(builtins) if not n.startswith("_"))
_STRING_TYPES = {token.STRING} | {
    getattr(token, n) for n in ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END") if hasattr(token, n)
}


def segments(code: str) -> list[tuple[str, str | None]]:
    """The code cut into (text, style name or None) runs whose texts join back to `code`."""
    lines = io.StringIO(code).readlines()
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    out: list[tuple[str, str | None]] = []
    pos = 0
    previous: tokenize.TokenInfo | None = None
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            style = _style(tok, previous)
            if tok.type not in (token.NL, token.NEWLINE, token.INDENT, token.DEDENT, token.COMMENT):
                previous = tok
            if style is None or tok.start[0] > len(lines):
                continue
            begin = starts[tok.start[0] - 1] + tok.start[1]
            end = starts[tok.end[0] - 1] + tok.end[1]
            if begin < pos:  # never re-emit text; the offsets should be monotonic anyway
                continue
            out.append((code[pos:begin], None))
            out.append((code[begin:end], style))
            pos = end
    except (tokenize.TokenError, SyntaxError):
        pass  # an unterminated string or bad indentation: the rest is shown uncoloured
    out.append((code[pos:], None))
    return [(text, style) for text, style in out if text]


def _style(tok: tokenize.TokenInfo, previous: tokenize.TokenInfo | None) -> str | None:
    if tok.type == token.COMMENT:
        return "comment"
    if tok.type in _STRING_TYPES:
        return "string"
    if tok.type == token.NUMBER:
        return "number"
    if tok.type != token.NAME:
        return None
    if previous is not None and previous.type == token.NAME and previous.string in ("def", "class"):
        return "definition"
    if previous is not None and previous.type == token.OP and previous.string == "@":
        return "decorator"
    if tok.string in _KEYWORDS:
        return "keyword"
    if tok.string in _BUILTINS:
        return "builtin"
    return None


def highlight_python(code: str, line_numbers: bool = True) -> str:
    """HTML for the inside of a `<pre>`: escaped code with coloured spans, one line per line.

    Runs that span several lines (docstrings) are closed and reopened at each newline so every
    line is well-formed on its own and can carry its number.
    """
    rendered_lines: list[list[str]] = [[]]
    for text, style in segments(code):
        pieces = text.split("\n")
        for i, piece in enumerate(pieces):
            if i:
                rendered_lines.append([])
            if piece:
                escaped = html.escape(piece, quote=False)
                rendered_lines[-1].append(
                    f'<span style="{STYLES[style]}">{escaped}</span>' if style else escaped
                )
    if code.endswith("\n") and rendered_lines and not rendered_lines[-1]:
        rendered_lines.pop()  # the final newline ends the last line; it does not start a new one
    width = len(str(len(rendered_lines)))
    out = []
    for number, parts in enumerate(rendered_lines, start=1):
        gutter = f'<span style="{LINE_NUMBER_STYLE}">{number:>{width}}</span>' if line_numbers else ""
        out.append(gutter + "".join(parts))
    return "\n".join(out) + ("\n" if code.endswith("\n") else "")
