"""Baselines that compile are built and timed in processes of their own (verify/baseline_process.py):
their build overlaps the attempt, they are timed only once no candidate is alive, a baseline that
cannot be built or whose process dies is a note (never the candidate's failure), and the
processes end once their baselines are timed. Asserted from outside: the files the baseline's
own code writes, process ids, and the verdict."""

from __future__ import annotations

import json
import os

import pytest

from conftest import TESTS
from kernelscale.verify.attempt import run_attempt
from kernelscale.verify.options import VerifyOptions
from kernelscale.verify.oracle import Oracle

GOOD = (TESTS / "problems" / "good_scaled_exp.py").read_text()
BUILD_S = 3.0

BASELINES = f"""
import os as _os
import time as _time


def make_baseline(name, model, init_inputs):
    where = _os.environ["KS_TEST_BASELINE_DIR"]
    if name == "slow":  # stands for a compile: seconds before it can run
        _time.sleep({BUILD_S})
        cores = sorted(_os.sched_getaffinity(0))
        open(_os.path.join(where, f"built-{{_os.getpid()}}"), "w").write(f"{{cores}} {{_os.nice(0)}}")

        def timed(*inputs):
            open(_os.path.join(where, f"timed-{{_os.getpid()}}"), "a").write("x")
            return model(*inputs)

        return timed
    if name == "broken":
        raise RuntimeError("no such backend here")
    if name == "dies":
        _os._exit(3)
    return None
"""


@pytest.fixture
def apart(tmp_path, monkeypatch, scaled_exp):
    marks = tmp_path / "marks"
    marks.mkdir()
    monkeypatch.setenv("KS_TEST_BASELINE_DIR", str(marks))
    problem = scaled_exp.with_options(
        source=scaled_exp.source + BASELINES, baselines=("eager", "slow", "broken", "dies", "compile")
    )
    oracle = Oracle("cpu", tmp_path / "oracle")
    oracle.separate_baselines = True
    yield oracle, problem, marks
    oracle.close()


def test_a_compiled_baseline_builds_apart_and_is_timed_after_the_candidate(apart):
    oracle, problem, marks = apart
    verdict = run_attempt(oracle, problem, GOOD, VerifyOptions(timeout_s=120.0))
    assert verdict.status == "correct", verdict.headline()
    assert {"eager", "slow"} <= set(verdict.baselines)
    built = [p.name for p in marks.glob("built-*")]
    timed = [p.name for p in marks.glob("timed-*")]
    assert len(built) == 1 and built[0] != f"built-{os.getpid()}"  # not the oracle's process
    assert timed == [built[0].replace("built", "timed")]  # timed in the process that built it
    pid = int(built[0].split("-")[1])
    cores, niceness = (marks / built[0]).read_text().rsplit(" ", 1)
    ours = sorted(os.sched_getaffinity(0))
    assert json.loads(cores) == ours[len(ours) // 2 :]  # off the cores the oracle and runners use first
    assert int(niceness) >= 10
    with pytest.raises(ProcessLookupError):  # its process ended once its baseline was timed
        os.kill(pid, 0)
    # Nothing was timed before the candidate while the build ran: the first half was skipped.
    assert verdict.cost_s["baselines"] < BUILD_S
    assert "baselines_wait" in verdict.cost_s
    assert verdict.time_stats["baselines_apart_s"]["slow"]["ready"] >= BUILD_S
    notes = verdict.time_stats["baseline_notes"]
    assert notes["broken"] == "not built: RuntimeError: no such backend here"
    assert "exited (code 3) while building" in notes["dies"]
    assert notes["compile"] == "not available for this problem or device"


def test_a_later_attempt_reuses_the_samples_without_building_again(apart):
    oracle, problem, marks = apart
    first = run_attempt(oracle, problem, GOOD, VerifyOptions(timeout_s=120.0))
    second = run_attempt(oracle, problem, GOOD, VerifyOptions(timeout_s=120.0))
    assert first.status == second.status == "correct", second.headline()
    assert second.baselines["slow"] == first.baselines["slow"]  # kept from the first attempt
    assert len(list(marks.glob("built-*"))) == 1  # never built again
    assert second.cost_s["baselines_wait"] < 1.0


def test_a_stored_baseline_starts_no_process(apart):
    oracle, problem, marks = apart
    options = VerifyOptions(timeout_s=120.0, known_baselines={"slow": 2.0, "broken": 1.0, "dies": 1.0})
    oracle.known_baselines = dict(options.known_baselines)
    verdict = run_attempt(oracle, problem, GOOD, options)
    assert verdict.status == "correct", verdict.headline()
    assert verdict.baselines["slow"] == 2.0 and not list(marks.glob("built-*"))
