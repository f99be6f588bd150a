"""The next attempt's runner, started ahead (verify/spare.py): it runs only our code until an
attempt takes it, an attempt that takes it is verified as before, and a spare that does not fit
or has died is removed (process and folder) and replaced by a runner started the old way."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import TESTS
from kernelscale.verify.attempt import run_attempt
from kernelscale.verify.options import VerifyOptions
from kernelscale.verify.oracle import Oracle
from kernelscale.verify.spare import Spares

GOOD = (TESTS / "problems" / "good_scaled_exp.py").read_text()


@pytest.fixture
def oracle(tmp_path):
    oracle = Oracle("cpu", tmp_path)
    oracle.spares = Spares(oracle)
    yield oracle
    oracle.spares.discard()


def _alive(runner) -> bool:
    return runner.child is not None and runner.child.proc.poll() is None


def test_an_attempt_takes_the_spare_and_verifies_as_before(oracle, scaled_exp):
    oracle.spares.prepare(None)
    spare = oracle.spares.runner
    assert spare is not None and _alive(spare) and not (spare.workdir / "candidate.py").exists()
    verdict = run_attempt(oracle, scaled_exp, GOOD, VerifyOptions(timeout_s=60.0))
    assert verdict.status == "correct", verdict.headline()
    assert oracle.spares.runner is None  # taken, not left waiting
    assert not _alive(spare) and not spare.workdir.exists()  # killed and removed with the attempt
    assert verdict.isolation == spare.isolation  # the verdict reports the sandbox it ran in


def test_a_spare_that_does_not_fit_or_died_is_removed_and_the_attempt_still_runs(oracle, scaled_exp):
    oracle.spares.prepare(None)
    misfit = oracle.spares.runner
    assert oracle.spares.take(object(), memory_gb=3.0) is None  # another memory limit
    assert not _alive(misfit) and not misfit.workdir.exists()

    oracle.spares.prepare(None)
    dead = oracle.spares.runner
    dead.child.proc.kill()
    dead.child.proc.wait()
    verdict = run_attempt(oracle, scaled_exp, GOOD, VerifyOptions(timeout_s=60.0))
    assert verdict.status == "correct", verdict.headline()
    assert not Path(dead.workdir).exists()


def test_the_spare_s_folder_holds_nothing_of_a_previous_attempt(oracle, scaled_exp):
    """Each spare gets a fresh attempt folder: the files one candidate wrote are gone with it."""
    planted = GOOD + "\nimport os\nopen('left_behind.txt', 'w').write('x')\n"
    first = run_attempt(oracle, scaled_exp, planted, VerifyOptions(timeout_s=60.0))
    assert first.status == "correct", first.headline()
    oracle.spares.prepare(None)
    assert list(oracle.spares.runner.workdir.glob("left_behind*")) == []


def test_the_first_attempt_calibrates_with_the_second_spare(oracle, scaled_exp):
    """When the oracle starts it starts two runners: the first attempt's calibration (a trusted
    runner) takes one and the candidate the other; both end with the attempt."""
    oracle.spares.prepare(None, count=2)
    both = list(oracle.spares.runners)
    verdict = run_attempt(oracle, scaled_exp, GOOD, VerifyOptions(timeout_s=60.0))
    assert verdict.status == "correct", verdict.headline()
    assert oracle.spares.runners == []
    assert not any(_alive(r) or r.workdir.exists() for r in both)


def test_a_spare_not_needed_for_a_calibration_is_removed_before_anything_is_timed(oracle, scaled_exp):
    from kernelscale.verify.calibration import PROTOCOL, STEP_NAMES, this_host

    steps = {name: [0.1, 0.01] for name in STEP_NAMES}
    stored = {"host": this_host(), "protocol": PROTOCOL, "steps": steps}
    oracle.spares.prepare(None, count=2)
    both = list(oracle.spares.runners)
    verdict = run_attempt(
        oracle, scaled_exp, GOOD, VerifyOptions(timeout_s=60.0, known_calibrations=[stored])
    )
    assert verdict.status == "correct", verdict.headline()
    assert verdict.time_stats["stored_calibration"] is True
    assert oracle.spares.runners == []
    assert not any(_alive(r) or r.workdir.exists() for r in both)


def test_the_warm_up_kernel_compiles_and_runs():
    # What a runner started ahead on a GPU compiles before any candidate code, here under the
    # interpreter in a process of its own (the interpreter is chosen before triton's import).
    import os
    import subprocess
    import sys

    code = "from kernelscale.verify import warm_kernel; print(warm_kernel.compile_and_run('cpu'))"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=os.environ | {"TRITON_INTERPRET": "1"},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-500:]
    assert done.stdout.strip().splitlines()[-1] == "1.0"


def test_a_failing_trusted_calibration_runner_is_the_verifiers_fault(oracle, scaled_exp, monkeypatch):
    """No candidate code runs in the calibration runner: its failure (a bool output once made it
    `rejected: late_outputs`) must not become the candidate's verdict, for honest ones too."""
    from kernelscale.verify import calibration

    broken = calibration.NULL_MODEL.replace(
        "device = next(", "raise RuntimeError('harness broke')\n        device = next("
    )
    monkeypatch.setattr(calibration, "NULL_MODEL", broken)
    verdict = run_attempt(oracle, scaled_exp, GOOD, VerifyOptions(timeout_s=60.0))
    assert verdict.verifier_fault, verdict.headline()
    assert "the trusted calibration runner failed" in verdict.reason and "harness broke" in verdict.reason
