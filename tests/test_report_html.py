"""The HTML report opened in a real headless chromium: its tables' cells render, its figures decode,
it fetches nothing, and it shows the right best kernel, highlighted."""

from __future__ import annotations

import re

import pytest

from browser import render, table_cells, visible_text
from kernelscale.report.build import report_run
from test_report_data import make_store


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    root = tmp_path_factory.mktemp("html")
    store, ids = make_store(root)
    written = {name: report_run(store, run_id, root / name, html=True) for name, run_id in ids.items()}
    store.close()
    return written


@pytest.fixture(scope="module")
def gpu_page(pages):
    return render(pages["gpu"]["html"])


def test_gpu_report_renders_its_tables(gpu_page):
    dom, probe = gpu_page
    text = visible_text(dom)
    assert probe["title"].startswith("kernelscale report: run 1")
    assert probe["tables"] == 4  # overview, speed, problems, attempts
    for cell in ("3 of 5 (60.0%)", "no (1 suspect)", "0.6667 ms", "NVIDIA H100 80GB HBM3", "loose"):
        assert cell in text, cell
    speed = {row[0]: row[1:] for row in table_cells(dom, "table-speed")}
    assert speed["fast_1"] == ["40.0%", "20.0%"]
    assert speed["fast_2"] == ["20.0%", "0.0%"]
    assert speed["geomean speedup"] == ["1.42x", "0.93x"]
    problems = table_cells(dom, "table-problems")
    assert [row[0] for row in problems] == [f"ops/{c}" for c in "abcde"]
    assert problems[0][5:7] == ["3.00x", "1.80x"]  # vs eager, vs compile of the fastest trusted kernel
    attempts = table_cells(dom, "table-attempts")
    assert len(attempts) == 10
    assert attempts[7][-1] == "rejected: [torch_fallback] forward calls torch.matmul (line 12)"
    assert attempts[3][-1].endswith("[suspect]")


def test_gpu_report_figures_decode_and_nothing_is_fetched(gpu_page, pages):
    _, probe = gpu_page
    figures = [k for k in pages["gpu"] if k.startswith("figure:")]
    assert len(probe["images"]) == len(figures) == 5
    for image in probe["images"]:
        assert image["complete"] and image["width"] >= 300 and image["height"] >= 200, image
    assert probe["external"] == [] and probe["fetched"] == []


def test_best_kernel_is_the_fastest_trusted_one_and_highlighted(gpu_page):
    dom, _ = gpu_page
    text = visible_text(dom)
    assert "MARK_a_2" in text  # the 3.0x kernel of ops/a
    assert "MARK_a_3" not in text  # the faster but suspect one is never shown as best
    assert "MARK_e_0" not in text  # a suspect-only problem has no best kernel
    assert "# a < b && c > d" in text  # escaped in the file, restored by the browser
    assert re.search(r'<span style="color:#[0-9a-f]{6};font-weight:bold">def</span>', dom)
    assert re.search(r'<span style="color:#[0-9a-f]{6};font-weight:bold">ModelNew</span>', dom)


def test_interpreted_report_claims_no_speed(pages):
    dom, probe = render(pages["cpu"]["html"])
    text = visible_text(dom)
    assert "interpreted, not a performance number" in text
    assert "40.0 ms (interpreted, not a performance number)" in text
    assert not re.search(r"\d\.\d\dx", text)  # no speedup anywhere, though the verdicts carry some
    assert len(probe["images"]) == 1 and probe["images"][0]["width"] > 0  # solved-over-time only
    assert probe["external"] == [] and probe["fetched"] == []


def test_attention_report_has_the_flex_figure(pages):
    dom, probe = render(pages["attention"]["html"])
    alts = [image["alt"] for image in probe["images"]]
    assert alts[0] == "Speedup over FlexAttention per attention variant"
    assert all(image["width"] > 0 for image in probe["images"]) and len(alts) == 6
    problems = table_cells(dom, "table-problems")
    assert [row[6] for row in problems] == ["1.60x", "1.10x", "2.10x", "0.90x"]  # vs flex


def test_page_is_self_contained_without_a_browser(pages):
    """Checked on the file itself too, so a machine without chromium still catches regressions."""
    page = pages["gpu"]["html"].read_text()
    references = re.findall(r"""\b(?:src|href)\s*=\s*["']([^"']*)""", page)
    assert len(references) == 5 and all(ref.startswith("data:image/png;base64,") for ref in references)
    assert "<script" not in page and "<link" not in page
    assert page.count('src="data:image/png;base64,') == 5
