"""Runs you can trust: one rule for the best attempt, honest stops, bounded LLM spend, and
failures that leave nothing half-recorded."""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from fake_openai import FakeOpenAI, r1, status
from kernelscale.propose.best import best_attempt
from kernelscale.propose.llm import LLMOptions
from kernelscale.propose.replay import ReplayProposer
from kernelscale.report.build import report_run
from kernelscale.report.summary import summarize_run
from kernelscale.search.settings import RunSettings, SettingsError
from kernelscale.search.solve import SolveResult, solve, write_outputs
from kernelscale.store.db import Store
from test_report_data import CPU, correct, problem, record

TESTS = Path(__file__).parent
GOOD = (TESTS / "problems" / "good_scaled_exp.py").read_text()
# Caught by the static screen: a verdict in milliseconds, so only the proposer's pace matters.
BROKEN = "import torch\nclass ModelNew(torch.nn.Module)\n    pass\n"


def kernelscale(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "kernelscale", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
        check=False,
    )


def runs_in(db: Path) -> list[tuple]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT id, status FROM runs").fetchall()


# -- one rule for "best" -------------------------------------------------------------------------


def _stored_run(tmp_path, plan) -> tuple[Store, int]:
    store = Store(tmp_path / "k.db")
    run_id = store.create_run("solve", "ops/p", {})
    key = store.add_problem(run_id, problem("ops/p", 16))
    for i, (verdict, elapsed) in enumerate(plan):
        record(store, run_id, key, verdict, elapsed, f"MARK_{i}")
    store.set_problem_status(run_id, key, "done", 60.0)
    store.finish_run(run_id, "finished")
    return store, run_id


def _named_everywhere(tmp_path, store, run_id) -> tuple:
    """(best_kernel.py's attempt, show's, report's): the attempt ids each names, None for none."""
    attempts = store.attempts(run_id)
    result = SolveResult(run_id, None, best_attempt(attempts), attempts)
    result.problem = type("P", (), {"name": "ops/p"})()
    out = write_outputs(result, tmp_path / "out")
    written = (out / "best_kernel.py").read_text() if (out / "best_kernel.py").exists() else None
    by_code = {a.candidate.code: a.attempt_id for a in attempts}
    solve_says = by_code.get(written)
    report_says = summarize_run(store, run_id).problems[0].best_attempt_id
    report_run(store, run_id, tmp_path / "report", html=False)
    kernels = list((tmp_path / "report").rglob("*.py"))
    report_file = kernels[0].read_text() if kernels else ""
    store.close()
    show = kernelscale("show", str(run_id), "--db", str(tmp_path / "k.db"), cwd=tmp_path)
    assert show.returncode == 0, show.stderr
    show_line = next(line for line in show.stdout.splitlines() if line.startswith("best for ops/p"))
    show_says = int(show_line.split("#")[1]) if "#" in show_line else None
    if report_says is not None:
        assert f"attempt #{report_says}" in report_file
    return solve_says, show_says, report_says


def test_interpreted_run_names_the_same_best_everywhere(tmp_path):
    # Interpreted times are not performance numbers: the first correct attempt is the best,
    # even when a later one "ran" faster under the interpreter.
    store, run_id = _stored_run(
        tmp_path,
        [
            (correct(216.3, {"eager": 0.1}, device=CPU, interpreted=True), 5.0),
            (correct(82.65, {"eager": 0.3}, device=CPU, interpreted=True), 40.0),
        ],
    )
    first = store.attempts(run_id)[0].attempt_id
    assert _named_everywhere(tmp_path, store, run_id) == (first, first, first)


def test_suspect_only_run_has_no_best_anywhere(tmp_path):
    store, run_id = _stored_run(
        tmp_path, [(correct(0.01, {"eager": 40.0}, suspect=True, suspect_reason="40x"), 5.0)]
    )
    assert _named_everywhere(tmp_path, store, run_id) == (None, None, None)
    assert not (tmp_path / "out" / "best_kernel.py").exists()


def test_a_faster_suspect_never_beats_a_trusted_attempt(tmp_path):
    store, run_id = _stored_run(
        tmp_path, [(correct(1.0, {"eager": 2.0}), 5.0), (correct(0.01, {"eager": 200.0}, suspect=True), 9.0)]
    )
    trusted = store.attempts(run_id)[0].attempt_id
    assert _named_everywhere(tmp_path, store, run_id) == (trusted, trusted, trusted)


# -- budgets and stops ---------------------------------------------------------------------------


def test_budget_zero_is_refused_and_none_is_unlimited(tmp_path):
    db = tmp_path / "k.db"
    result = kernelscale(
        "solve",
        str(TESTS / "problems" / "scaled_exp.py"),
        "--budget",
        "0",
        "--device",
        "cpu",
        "--db",
        str(db),
        cwd=tmp_path,
    )
    assert result.returncode == 2 and "budget none" in result.stderr and "Traceback" not in result.stderr
    assert runs_in(db) == []
    with pytest.raises(SettingsError):
        RunSettings(budget_s=0).check()
    assert RunSettings(budget_s=None).check().budget_s is None


def test_replay_running_out_stops_as_exhausted(tmp_path):
    result = solve(
        TESTS / "problems" / "scaled_exp.py",
        proposer=ReplayProposer([BROKEN]),
        strategy="refine",
        budget_s=300,
        device="cpu",
        db_path=tmp_path / "k.db",
        out_dir=tmp_path / "out",
    )
    assert result.stopped == "exhausted" and len(result.attempts) == 1
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["stopped"] == "exhausted" and summary["shape"] == {"M": 16, "N": 64}
    assert summary["first_verdict_s"] > 0


def test_the_python_api_benches_a_suite_through_the_same_session(tmp_path):
    import kernelscale

    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "scaled_exp.py").write_text((TESTS / "problems" / "scaled_exp.py").read_text())
    result = kernelscale.bench(
        suite,
        proposer=ReplayProposer([BROKEN]),
        strategy="refine",
        budget_s=120,
        device="cpu",
        db_path=tmp_path / "k.db",
    )
    assert result.status == "done" and len(result.solved_now) == 1
    store = Store(tmp_path / "k.db")
    assert len(store.attempts(result.run_id)) == 1 and store.get_run(result.run_id).options["budget_s"] == 120
    store.close()
    with pytest.raises(TypeError):
        kernelscale.bench(suite, budget_seconds=5)  # unknown settings are errors, not dropped


def test_compiler_on_an_ops_problem_leaves_no_run(tmp_path):
    db = tmp_path / "k.db"
    result = kernelscale(
        "solve", "ops/softmax", "--device", "cpu", "--budget", "30s", "--db", str(db), cwd=tmp_path
    )
    assert result.returncode == 2 and "--proposer llm" in result.stderr
    assert runs_in(db) == []


def test_backends_that_do_not_exist_or_cannot_run_here_are_refused(tmp_path):
    db = tmp_path / "k.db"
    args = ("solve", "attention/causal", "--device", "cpu", "--budget", "30s", "--db", str(db))
    unknown = kernelscale(*args, "--backends", "triton,cuda", cwd=tmp_path)
    assert unknown.returncode == 2 and "--backends takes" in unknown.stderr
    assert unknown.stderr.count("\n") == 1 and "Traceback" not in unknown.stderr
    for backend, why in (("fa4", "flash-attn-4"), ("gluon", "Hopper GPU")):
        missing = kernelscale(*args, "--backends", backend, cwd=tmp_path)
        assert missing.returncode == 2 and why in missing.stderr and "Traceback" not in missing.stderr
    assert runs_in(db) == []


def test_bad_gpu_list_is_refused(tmp_path):
    for spec in ("0,x", "99"):
        result = kernelscale(
            "solve",
            "attention/full",
            "--gpus",
            spec,
            "--budget",
            "30s",
            "--db",
            str(tmp_path / "k.db"),
            cwd=tmp_path,
        )
        assert result.returncode == 2 and "--gpus" in result.stderr and "Traceback" not in result.stderr
    assert runs_in(tmp_path / "k.db") == []


# -- LLM spend -----------------------------------------------------------------------------------


def _llm(server, **extra) -> LLMOptions:
    return LLMOptions(
        preset="vllm",
        base_url=server.base_url,
        model="fake",
        request_timeout_s=5.0,
        max_retries=1,
        backoff_s=0.01,
        **extra,
    )


def test_the_same_answer_forever_stops_as_stuck_after_a_few_calls(tmp_path):
    with FakeOpenAI(default=r1(BROKEN)) as server:
        result = solve(
            "ops/softmax",
            proposer="llm",
            strategy="refine",
            budget_s=60,
            device="cpu",
            db_path=tmp_path / "k.db",
            out_dir=tmp_path / "out",
            llm=_llm(server),
        )
        requests = len(server.requests)
        assert requests >= 3
    assert result.stopped == "stuck" and "in a row" in result.detail
    assert requests <= 10 and len(result.attempts) == 1
    # First prompt, feedback on attempt 1 (same answer again), then re-asks after a back-off,
    # each hotter and asking for a different approach.
    prompts = server.prompts()
    assert all("exactly the same kernel" in prompt for prompt in prompts[2:]) and len(prompts) >= 4
    temperatures = [r["body"].get("temperature") for r in server.requests]
    assert temperatures[1] < temperatures[2] < temperatures[3]
    usage = result.attempts[0].candidate.usage
    assert usage["calls"] == 1 and usage["total_tokens"] > 0


def test_max_calls_is_honoured_exactly(tmp_path):
    counter = itertools.count()

    def fresh(body):  # a different (broken) kernel every time: never a duplicate
        return r1(BROKEN + f"# answer {next(counter)}\n")

    with FakeOpenAI(default=fresh) as server:
        result = solve(
            "ops/softmax",
            proposer="llm",
            strategy="parallel",
            budget_s=60,
            device="cpu",
            db_path=tmp_path / "k.db",
            out_dir=tmp_path / "out",
            llm=_llm(server),
            max_calls=3,
        )
        requests = len(server.requests)
    assert requests == 3 and result.stopped == "budget" and "--max-calls 3" in result.detail
    assert len(result.attempts) == 3
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["llm"]["calls"] == 3 and summary["llm"]["tokens"] > 0
    with sqlite3.connect(tmp_path / "k.db") as conn:
        stored = [json.loads(u) for (u,) in conn.execute("SELECT usage FROM attempts")]
    assert all(u["calls"] == 1 and u["total_tokens"] > 0 for u in stored)
    from kernelscale.report.tables import attempts_table

    store = Store(tmp_path / "k.db")
    table = attempts_table(store.attempt_rows(result.run_id))  # what `show` and `report` print
    store.close()
    assert table.columns[-1] == "llm calls / tokens" and all(row[-1].startswith("1 / ") for row in table.rows)


def test_a_refused_endpoint_leaves_no_run_and_offers_no_resume(tmp_path):
    with FakeOpenAI(default=status(401, "bad key")) as server:
        result = kernelscale(
            "solve",
            "ops/softmax",
            "--proposer",
            "llm",
            "--base-url",
            server.base_url,
            "--model",
            "fake",
            "--device",
            "cpu",
            "--budget",
            "60s",
            "--db",
            str(tmp_path / "k.db"),
            cwd=tmp_path,
        )
    assert result.returncode == 1 and "--resume" not in result.stderr and "Traceback" not in result.stderr
    assert runs_in(tmp_path / "k.db") == []


# -- verifier-side failures ----------------------------------------------------------------------


def test_a_verifier_failure_ends_the_run_after_one_attempt(tmp_path):
    good = GOOD.replace("scaled_exp", "broken_reference")
    candidates = [tmp_path / f"c{i}.py" for i in range(3)]
    for i, path in enumerate(candidates):
        path.write_text(good + f"# variant {i}\n")
    result = solve(
        TESTS / "problems" / "broken_reference.py",
        proposer=ReplayProposer([p.read_text() for p in candidates]),
        strategy="refine",
        budget_s=300,
        device="cpu",
        db_path=tmp_path / "k.db",
        out_dir=tmp_path / "out",
    )
    assert result.stopped == "error" and result.verifier_failed and len(result.attempts) == 1
    assert "the reference cannot run here" in result.detail
    assert runs_in(tmp_path / "k.db") == [(result.run_id, "error")]


def test_the_cli_says_one_line_and_exits_non_zero_on_a_verifier_failure(tmp_path):
    good = GOOD.replace("scaled_exp", "broken_reference")
    with FakeOpenAI(default=r1(good)) as server:
        result = kernelscale(
            "solve",
            str(TESTS / "problems" / "broken_reference.py"),
            "--proposer",
            "llm",
            "--base-url",
            server.base_url,
            "--model",
            "fake",
            "--device",
            "cpu",
            "--budget",
            "60s",
            "--db",
            str(tmp_path / "k.db"),
            cwd=tmp_path,
        )
        requests = len(server.requests)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert (
        len(errors) == 1
        and "verifier error (not the candidate's)" in errors[0]
        and "--resume" not in errors[0]
    )
    assert requests == 1 and "stopped: error" in result.stdout


def test_a_strategy_option_the_strategy_does_not_take_is_refused(tmp_path):
    result = kernelscale(
        "solve",
        "attention/full",
        "--device",
        "cpu",
        "--strategy-option",
        "chains=3",
        "--db",
        str(tmp_path / "k.db"),
        cwd=tmp_path,
    )
    assert result.returncode == 2 and "takes no option chains" in result.stderr
    assert runs_in(tmp_path / "k.db") == []
