"""The run report as one static HTML page that opens from disk with no server and no network.

Figures are embedded as base64 PNG data URIs and the best kernels are highlighted in Python
(report.highlight), so the page needs no external file, font, stylesheet or script. Every value
shown is escaped by jinja2's autoescaping; only the highlighter's own output is marked safe.
"""

from __future__ import annotations

import base64
import re
import struct
import time
from dataclasses import dataclass
from pathlib import Path

from kernelscale.report.highlight import highlight_python
from kernelscale.report.summary import RunSummary
from kernelscale.report.tables import Table

TEMPLATE = "report.html.j2"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass
class FigureRef:
    key: str
    caption: str
    path: Path


@dataclass
class KernelRef:
    problem: str
    attempt_id: int | None
    headline: str
    code: str


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk, or None when `data` is not a PNG."""
    if len(data) < 24 or not data.startswith(_PNG_MAGIC) or data[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", data[16:24])


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def slug(text: str) -> str:
    """An id-safe name: "attention/full" -> "attention-full"."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", str(text)).strip("-").lower() or "x"


def _environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("kernelscale.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a misspelt field is an error, not a blank cell
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["slug"] = slug
    return env


def render_html(
    summary: RunSummary,
    tables: list[Table],
    attempts: Table,
    figures: list[FigureRef],
    kernels: list[KernelRef],
    db: str = "",
) -> str:
    """The page's text. `tables` go on top, `attempts` at the bottom; figures are read and embedded."""
    from markupsafe import Markup

    from kernelscale import __version__

    embedded = []
    for fig in figures:
        data = Path(fig.path).read_bytes()
        width, height = png_size(data) or (None, None)
        embedded.append(
            {"key": fig.key, "caption": fig.caption, "uri": data_uri(data), "width": width, "height": height}
        )
    code_blocks = [
        {
            "problem": k.problem,
            "attempt_id": k.attempt_id,
            "headline": k.headline,
            "code_html": Markup(highlight_python(k.code)),
        }
        for k in kernels
    ]
    return (
        _environment()
        .get_template(TEMPLATE)
        .render(
            run=summary.run,
            interpreted=summary.interpreted,
            summary_tables=tables,
            attempts=attempts,
            figures=embedded,
            kernels=code_blocks,
            version=__version__,
            generated=time.strftime("%Y-%m-%d %H:%M:%S"),
            db=db,
        )
    )
