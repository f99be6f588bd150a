"""Baselines that compile are built and timed in processes of their own (verify/baseline_process.py):
their build runs while nothing is timed and is stopped while anything is, a verdict never waits
for it (a later attempt times it), a baseline that cannot be built or whose process dies is a
note (never the candidate's failure), and a process ends once its baseline is timed. Asserted
from outside: files the baseline's own code writes, process ids and states, and the verdicts."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from conftest import TESTS
from kernelscale.verify.attempt import run_attempt
from kernelscale.verify.options import VerifyOptions
from kernelscale.verify.oracle import Oracle

GOOD = (TESTS / "problems" / "good_scaled_exp.py").read_text()

BASELINES = """
import json as _json
import os as _os
import time as _time


def make_baseline(name, model, init_inputs):
    where = _os.environ["KS_TEST_BASELINE_DIR"]
    if name == "slow":  # stands for a compile: it finishes when the test opens the gate
        while not _os.path.exists(_os.path.join(where, "gate")):
            _time.sleep(0.05)
        facts = {"cores": sorted(_os.sched_getaffinity(0)), "nice": _os.nice(0)}
        open(_os.path.join(where, f"built-{_os.getpid()}"), "w").write(_json.dumps(facts))

        def timed(*inputs):
            open(_os.path.join(where, f"timed-{_os.getpid()}"), "a").write("x")
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


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _slow_process(oracle, problem):
    return oracle.load(problem).baseline_processes["slow"]


def _open_gate_and_wait(marks: Path, process) -> None:
    (marks / "gate").touch()
    deadline = time.monotonic() + 120
    while process.building and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not process.building


def test_a_verdict_does_not_wait_for_a_compile_and_a_later_attempt_times_it(apart):
    oracle, problem, marks = apart
    first = run_attempt(oracle, problem, GOOD, VerifyOptions(timeout_s=120.0))
    assert first.status == "correct", first.headline()
    assert "eager" in first.baselines and "slow" not in first.baselines
    assert first.time_stats["baselines_pending"] == ["slow"]
    notes = first.time_stats["baseline_notes"]
    assert notes["broken"] == "not built: RuntimeError: no such backend here"
    assert "exited (code 3) while building" in notes["dies"]
    assert notes["compile"] == "not available for this problem or device"
    process = _slow_process(oracle, problem)
    assert _state(process.process.pid) != "T"  # stopped while timing, going on again after

    _open_gate_and_wait(marks, process)
    second = run_attempt(oracle, problem, GOOD, VerifyOptions(timeout_s=120.0))
    assert second.status == "correct", second.headline()
    assert "slow" in second.baselines and "baselines_pending" not in second.time_stats
    (built,) = marks.glob("built-*")
    pid = int(built.name.split("-")[1])
    assert pid != os.getpid() and (marks / f"timed-{pid}").exists()  # built and timed there
    with pytest.raises(ProcessLookupError):  # its process ended once its baseline was timed
        os.kill(pid, 0)
    facts = json.loads(built.read_text())
    ours = sorted(os.sched_getaffinity(0))
    assert facts["cores"] == ours[len(ours) // 2 :]  # off the cores the oracle and runners use first
    assert facts["nice"] >= 10
    assert second.time_stats["baseline_s"]["slow"]["ready"] > 0

    third = run_attempt(oracle, problem, GOOD, VerifyOptions(timeout_s=120.0))
    assert third.baselines["slow"] == second.baselines["slow"]  # kept, never built again
    assert len(list(marks.glob("built-*"))) == 1


def test_builds_are_stopped_while_something_is_timed(apart):
    oracle, problem, marks = apart
    oracle.timing_setup(oracle.load(problem))
    process = _slow_process(oracle, problem)
    time.sleep(1.0)  # inside its build (waiting at the gate)
    with oracle.builds_paused(oracle.load(problem)):
        assert _state(process.process.pid) == "T"
    assert _state(process.process.pid) != "T"
    _open_gate_and_wait(marks, process)
    with oracle.builds_paused(oracle.load(problem)):  # built: it only waits, nothing to stop
        assert _state(process.process.pid) != "T"


def test_a_stored_baseline_starts_no_process(apart):
    oracle, problem, marks = apart
    options = VerifyOptions(timeout_s=120.0, known_baselines={"slow": 2.0, "broken": 1.0, "dies": 1.0})
    oracle.known_baselines = dict(options.known_baselines)
    verdict = run_attempt(oracle, problem, GOOD, options)
    assert verdict.status == "correct", verdict.headline()
    assert verdict.baselines["slow"] == 2.0 and not list(marks.glob("built-*"))


def test_a_verdict_asked_to_wait_for_builds_measures_them_all(apart):
    import threading

    oracle, problem, marks = apart
    threading.Timer(2.0, lambda: (marks / "gate").touch()).start()  # the compile ends meanwhile
    verdict = run_attempt(oracle, problem, GOOD, VerifyOptions(timeout_s=120.0, wait_for_builds=True))
    assert verdict.status == "correct", verdict.headline()
    assert "slow" in verdict.baselines and "baselines_pending" not in verdict.time_stats
    assert "baselines_wait" in verdict.cost_s  # the verdict did wait for the build


def test_the_first_verdict_splits_the_verifiers_own_cost(apart):
    """The first attempt in an oracle says where its time went: the problem's load per step, the
    calibration per step and the timed calls' exchange per part (what a slow first verdict is
    diagnosed from); a second attempt on the same problem loads and calibrates nothing."""
    oracle, problem, _ = apart
    options = VerifyOptions(timeout_s=120.0, known_baselines={"slow": 2.0, "broken": 1.0, "dies": 1.0})
    oracle.known_baselines = dict(options.known_baselines)
    import threading

    # as on a GPU: a masking warm-up and the roofline, both paid once by the oracle
    oracle._warming, oracle.warm_s = threading.Thread(target=lambda: None), 0.25
    oracle._warming.start()
    oracle.start_s["roofline"] = 0.5
    first = run_attempt(oracle, problem, GOOD, options)
    assert first.status == "correct", first.headline()
    assert set(first.cost_s["masking_warm"]) == {"took", "waited"}  # the roofline apart, not in it
    assert first.cost_s["oracle_start"] == {"roofline": 0.5}
    assert set(first.cost_s["load_parts"]) == {"import", "model", "inputs", "forward"}
    calibration = first.cost_s["calibration_parts"]
    assert {"reference", "runner", "start", "first_call", "calls"} <= set(calibration)
    assert {"mask", "write", "stage", "key", "go", "read", "digest"} <= set(calibration["exchange"])
    parts = first.cost_s["timing_parts"]
    assert sum(parts["exchange"].values()) <= parts["call"] + parts["inputs"] + parts["reference"] + 0.05
    second = run_attempt(oracle, problem, GOOD, options)
    assert "load_parts" not in second.cost_s and "calibration_parts" not in second.cost_s
    assert "masking_warm" not in second.cost_s and "oracle_start" not in second.cost_s
