"""Figures are real PNGs that decode, show something, and are skipped when nothing honest can be drawn."""

from __future__ import annotations

import struct

import pytest
from matplotlib.image import imread

from kernelscale.report import plots
from kernelscale.report.summary import summarize_run
from test_report_data import make_store


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    store, ids = make_store(tmp_path_factory.mktemp("plots"))
    summaries = {name: summarize_run(store, run_id) for name, run_id in ids.items()}
    yield store, ids, summaries
    store.close()


def assert_png(path, min_size=(300, 200)):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= min_size[0] and height >= min_size[1]
    pixels = imread(path)  # decodes the whole file: a truncated PNG fails here
    assert pixels.shape[:2] == (height, width)
    assert pixels[..., :3].std() > 0.05  # not a blank canvas


def test_flex_bars(built, tmp_path):
    _, _, summaries = built
    path = plots.speedup_bars(summaries["attention"], tmp_path / "flex.png")
    assert path == tmp_path / "flex.png"
    assert_png(path)


def test_bars_need_the_baseline_and_real_timings(built, tmp_path):
    _, _, summaries = built
    assert plots.speedup_bars(summaries["gpu"], tmp_path / "none.png") is None  # no flex measured
    assert plots.speedup_bars(summaries["gpu"], tmp_path / "eager.png", baseline="eager") is not None
    assert plots.speedup_bars(summaries["cpu"], tmp_path / "cpu.png", baseline="eager") is None
    assert not (tmp_path / "none.png").exists() and not (tmp_path / "cpu.png").exists()


@pytest.mark.parametrize("run", ["gpu", "cpu", "attention"])
def test_solved_over_time(built, tmp_path, run):
    _, _, summaries = built
    assert_png(plots.solved_over_time(summaries[run], tmp_path / "sub" / "solved.png"))


def test_best_over_time(built, tmp_path):
    store, ids, summaries = built
    first = summaries["gpu"].problems[0]
    path = plots.best_over_time(
        store.attempts(ids["gpu"], first.problem_hash), tmp_path / "best.png", "ops/a"
    )
    assert_png(path)
    unsolved = summaries["gpu"].problems[3]
    assert plots.best_over_time(store.attempts(ids["gpu"], unsolved.problem_hash), tmp_path / "d.png") is None
    interpreted = summaries["cpu"].problems[0]
    assert (
        plots.best_over_time(store.attempts(ids["cpu"], interpreted.problem_hash), tmp_path / "x.png") is None
    )
