"""The command line contract: exit codes, --json, one-line errors, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
PROBLEM = TESTS / "problems" / "scaled_exp.py"
GOOD = TESTS / "problems" / "good_scaled_exp.py"


def kernelscale(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "kernelscale", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, code: int = 2, words: str = "") -> None:
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert words.lower() in lines[0].lower()


def test_verify_json_correct_exits_zero():
    result = kernelscale("verify", str(PROBLEM), str(GOOD), "--json", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    verdict = json.loads(result.stdout)
    for key in (
        "status",
        "reason",
        "max_abs_error",
        "max_rel_error",
        "time_ms",
        "baselines",
        "speedup",
        "device",
    ):
        assert key in verdict
    assert verdict["status"] == "correct" and verdict["speedup"] == {}


def test_verify_incorrect_exits_one(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(GOOD.read_text().replace("* 2.0 + y", "* 2.0"))
    result = kernelscale("verify", str(PROBLEM), str(bad), "--device", "cpu")
    assert result.returncode == 1
    assert "incorrect" in result.stdout


@pytest.mark.parametrize(
    "args, words",
    [
        (("verify", str(PROBLEM), "no_such_candidate.py"), "cannot read candidate"),
        (("verify", "ops/no_such_problem", str(GOOD)), "unknown problem"),
        (("verify", "no/such/file.py", str(GOOD)), "no such problem"),
        (("verify", str(PROBLEM), str(GOOD), "--device", "tpu"), "--device"),
        (("verify", str(PROBLEM), str(GOOD), "--tolerance", "sloppy"), "--tolerance"),
        (("solve", "ops/softmax", "--proposer", "compiler", "--device", "cpu"), "attention problems"),
        (("solve", "attention/softcap", "--budget", "soon", "--device", "cpu"), "budget"),
        (("show", "12345", "--db", "missing.db"), "no database"),
    ],
)
def test_bad_input_is_one_line_exit_two(args, words, tmp_path):
    assert_one_line_error(kernelscale(*args, cwd=tmp_path), 2, words)


def test_problem_without_get_inputs(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text(PROBLEM.read_text().replace("def get_inputs", "def make_inputs"))
    assert_one_line_error(kernelscale("verify", str(broken), str(GOOD)), 2, "get_inputs")


def test_unknown_option_exits_two():
    result = kernelscale("verify", str(PROBLEM), str(GOOD), "--frobnicate")
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_problems_lists_the_builtin_suites():
    result = kernelscale("problems", "ops")
    assert result.returncode == 0
    assert result.stdout.count("ops/") >= 24
    assert "attention/softcap" in kernelscale("problems", "attention").stdout


def test_unreachable_endpoint_is_one_line_and_records_nothing(tmp_path):
    # Nothing was verified, so there is no run to resume: none is recorded or offered.
    result = kernelscale(
        "solve",
        "ops/softmax",
        "--proposer",
        "llm",
        "--preset",
        "vllm",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--device",
        "cpu",
        "--budget",
        "60s",
        "--db",
        str(tmp_path / "k.db"),
        cwd=tmp_path,
    )
    assert_one_line_error(result, 1, "cannot reach")
    assert "--resume" not in result.stderr
    runs = kernelscale("runs", "--db", str(tmp_path / "k.db"))
    assert runs.returncode == 0 and "ops/softmax" not in runs.stdout
