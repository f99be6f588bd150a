"""Open a static HTML page in a real headless browser (Debian's chromium) and read what it rendered.

The page under test stays script-free: a copy gets a small probe appended that, on `load`, writes
into the DOM what only a browser knows (each image's decoded size, every resource fetched, every
external reference). `chromium --dump-dom` then prints the DOM after the load event, and the
probe's JSON is parsed back out of it.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--virtual-time-budget=3000",
)
PROBE_ID = "ks-browser-probe"
PROBE = """
<script>
window.addEventListener("load", function () {
  var images = Array.prototype.map.call(document.images, function (img) {
    return {alt: img.alt, complete: img.complete, width: img.naturalWidth, height: img.naturalHeight};
  });
  var external = [];
  document.querySelectorAll("[src], [href]").forEach(function (el) {
    var ref = el.getAttribute("src") || el.getAttribute("href");
    if (!/^(data:|#)/.test(ref)) external.push(ref);
  });
  var fetched = performance.getEntriesByType("resource").map(function (e) { return e.name; });
  var out = document.createElement("pre");
  out.id = "PROBE_ID";
  out.textContent = JSON.stringify({images: images, external: external, fetched: fetched,
                                    title: document.title, tables: document.querySelectorAll("table").length});
  document.body.appendChild(out);
});
</script>
""".replace("PROBE_ID", PROBE_ID)


def find_chromium() -> str | None:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def require_chromium() -> str:
    """The browser's path; skips the test when none is installed, unless the environment says a
    browser is required (CI sets KERNELSCALE_REQUIRE_BROWSER=1 so a missing one fails loudly)."""
    path = find_chromium()
    if path is None:
        message = "no chromium: browser tests skipped; `make test-deps` as root (apt-get install chromium) enables them"
        if os.environ.get("KERNELSCALE_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


def render(page: Path, timeout: float = 60.0) -> tuple[str, dict]:
    """(the DOM after load, the probe's findings) for the HTML file `page`."""
    browser = require_chromium()
    with tempfile.TemporaryDirectory(prefix="ks-browser-") as tmp:
        probed = Path(tmp) / page.name
        text = page.read_text(encoding="utf-8")
        if "</body>" not in text:
            raise AssertionError(f"{page} has no </body>")
        probed.write_text(text.replace("</body>", PROBE + "</body>", 1), encoding="utf-8")
        command = [browser, *FLAGS, f"--user-data-dir={Path(tmp) / 'profile'}", "--dump-dom", probed.as_uri()]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=os.environ | {"HOME": tmp}
        )
    if done.returncode != 0 or PROBE_ID not in done.stdout:
        tail = done.stderr.strip().splitlines()[-5:]
        raise AssertionError(f"chromium failed (rc {done.returncode}): " + " | ".join(tail))
    return done.stdout, probe_result(done.stdout)


def probe_result(dom: str) -> dict:
    match = re.search(rf'<pre id="{PROBE_ID}">(.*?)</pre>', dom, re.S)
    if match is None:
        raise AssertionError("the probe did not run: no load event?")
    return json.loads(html.unescape(match.group(1)))


class _Text(HTMLParser):
    """Visible text: everything outside <script>, <style> and <head>, whitespace collapsed."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "head"):
            self.hidden += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style", "head"):
            self.hidden -= 1

    def handle_data(self, data):
        if not self.hidden:
            self.parts.append(data)


def visible_text(dom: str) -> str:
    """The page's text as a reader sees it, with the probe's own output removed."""
    dom = re.sub(rf'<pre id="{PROBE_ID}">.*?</pre>', "", dom, flags=re.S)
    parser = _Text()
    parser.feed(dom)
    return re.sub(r"[ \t]+", " ", "".join(parser.parts))


def table_cells(dom: str, table_id: str) -> list[list[str]]:
    """The text of each body row's cells of the table with id `table_id`."""
    match = re.search(rf'<table[^>]*id="{re.escape(table_id)}".*?<tbody>(.*?)</tbody>', dom, re.S)
    if match is None:
        raise AssertionError(f"no table #{table_id}")
    rows = re.findall(r"<tr>(.*?)</tr>", match.group(1), re.S)
    return [
        [
            html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
            for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)
        ]
        for r in rows
    ]
