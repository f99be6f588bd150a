"""The highlighter colours Python and never changes a character of it, whatever it is given."""

from __future__ import annotations

import html
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from kernelscale.report.highlight import STYLES, highlight_python, segments
from test_report_data import KERNEL


def plain(rendered: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", rendered))


def test_round_trip_and_styles():
    code = KERNEL.format(marker="<b>&amp;</b>", scale=2) + 's = """two\nlines"""\nf"{x!r}"  # end\n'
    rendered = highlight_python(code, line_numbers=False)
    assert plain(rendered) == code
    assert "<b>" not in rendered  # the marker is escaped, not markup
    assert f'<span style="{STYLES["keyword"]}">def</span>' in rendered
    assert f'<span style="{STYLES["definition"]}">ModelNew</span>' in rendered
    assert f'<span style="{STYLES["decorator"]}">triton</span>' in rendered
    assert f'<span style="{STYLES["number"]}">1024</span>' in rendered
    assert f'<span style="{STYLES["comment"]}"># end</span>' in rendered
    # a multi-line string is closed and reopened per line so each numbered line stands alone
    assert f'<span style="{STYLES["string"]}">s = """two</span>' not in rendered
    assert f'<span style="{STYLES["string"]}">lines"""</span>' in rendered


def test_line_numbers_one_per_line():
    code = "a = 1\nb = 2\n\nc = 3\n"
    rendered = highlight_python(code)
    lines = rendered.splitlines()
    assert len(lines) == 4
    assert [re.search(r">\s*(\d+)</span>", line).group(1) for line in lines] == ["1", "2", "3", "4"]


def test_broken_code_is_shown_whole():
    code = "def f(:\n    '''never closed\n  x = <1>"
    assert "".join(text for text, _ in segments(code)) == code
    assert plain(highlight_python(code, line_numbers=False)) == code


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200))
def test_any_text_round_trips(text):
    assert "".join(t for t, _ in segments(text)) == text
    assert plain(highlight_python(text, line_numbers=False)) == text


FRAGMENTS = [
    "def ",
    "class ",
    "'''",
    '"',
    "'",
    "#",
    "\n",
    "    ",
    "\t",
    "x",
    "1.5",
    "0x1F",
    "@",
    "(",
    ")",
    ":",
    "f'",
    "{",
    "}",
    "\\",
    "\r\n",
    "<",
    "&",
    "if ",
    "else",
    "print",
    "\x0c",
    "é",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=60).map("".join))
def test_python_like_text_round_trips(text):
    assert "".join(t for t, _ in segments(text)) == text
    assert plain(highlight_python(text, line_numbers=False)) == text
