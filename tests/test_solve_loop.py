"""The loop end to end: cache, best choice, outputs, Ctrl-C keeping every finished verdict, resume."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from kernelscale.propose.replay import ReplayProposer
from kernelscale.search.solve import solve
from kernelscale.store.db import SCHEMA_VERSION, Store

TESTS = Path(__file__).parent
GOOD = (TESTS / "problems" / "good_scaled_exp.py").read_text()
BAD = GOOD.replace("* 2.0 + y", "* 2.0")


def _replay(tmp_path: Path, codes: list[str], out: str = "out"):
    """A refine run of scaled_exp on the CPU replaying `codes`, its store at tmp_path/k.db."""
    return solve(
        TESTS / "problems" / "scaled_exp.py",
        proposer=ReplayProposer(codes),
        strategy="refine",
        budget_s=300,
        device="cpu",
        db_path=tmp_path / "k.db",
        out_dir=tmp_path / out,
    )


def test_replay_through_the_loop(tmp_path):
    result = _replay(tmp_path, [BAD, GOOD, GOOD])
    statuses = [a.verdict.status for a in result.attempts]
    assert statuses == ["incorrect", "correct", "correct"]
    assert result.attempts[2].verdict.cached and not result.attempts[1].verdict.cached
    assert result.best is not None and result.best.candidate.code == GOOD
    assert (tmp_path / "out" / "best_kernel.py").read_text() == GOOD
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["attempts"] == 3 and summary["correct"] == 2 and summary["best"]["interpreted"]


def test_a_stored_verdict_is_reused_only_by_the_same_verifier(tmp_path, monkeypatch):
    """A database kept across an upgrade of the verifier: its verdicts are the old verifier's,
    and a candidate the new one rejects must not keep the old `correct`. Same verifier: the
    second run reuses the first's verdict; another verifier digest: verified afresh."""
    from kernelscale.search import evaluator

    def run(tag: str):
        return _replay(tmp_path, [GOOD], tag).attempts[0].verdict

    assert not run("first").cached
    assert run("same").cached
    monkeypatch.setattr(evaluator, "verifier_digest", lambda: "another verifier")
    fresh = run("upgraded")
    assert not fresh.cached and fresh.status == "correct"


def test_store_is_wal_and_versioned(tmp_path):
    store = Store(tmp_path / "k.db")
    mode = store.db.execute("PRAGMA journal_mode").fetchone()[0]
    version = store.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
    store.close()
    assert mode == "wal" and int(version) == SCHEMA_VERSION


def _attempt_count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
    except sqlite3.OperationalError as exc:
        _READ_ERRORS.append(str(exc))  # the run may hold a lock: read again in a moment
        return 0


_READ_ERRORS: list[str] = []


def _terminal_sigint() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_keeps_verdicts_and_resume_continues(tmp_path):
    db = tmp_path / "k.db"
    args = [
        sys.executable,
        "-m",
        "kernelscale",
        "solve",
        "attention/full",
        "--device",
        "cpu",
        "--budget",
        "10m",
        "--db",
        str(db),
        "--out",
        str(tmp_path / "out"),
    ]
    # What a terminal gives: SIGINT handled and not blocked. The test process may have inherited
    # otherwise (an earlier test's library); the disposition and mask pass through fork and exec.
    inherited = (signal.getsignal(signal.SIGINT), signal.pthread_sigmask(signal.SIG_BLOCK, []))
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        preexec_fn=_terminal_sigint,
    )
    deadline = time.monotonic() + 240
    while _attempt_count(db) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(1)
    assert proc.poll() is None, (
        f"the run ended before it was interrupted ({_attempt_count(db)} attempts seen, read errors "
        f"{_READ_ERRORS[-3:]})"
    )
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, f"SIGINT in the test process: {inherited}\n" + out + err
    assert "--resume 1" in err and "Traceback" not in err
    kept = _attempt_count(db)
    assert kept >= 2
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT status FROM runs WHERE id=1").fetchone()[0] == "interrupted"
        spent = conn.execute("SELECT seconds_spent FROM run_problems WHERE run_id=1").fetchone()[0]
        last_elapsed = conn.execute("SELECT MAX(elapsed_s) FROM attempts WHERE run_id=1").fetchone()[0]
    # Ctrl-C still writes the outputs for what was verified.
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["stopped"] == "interrupted" and summary["attempts"] == kept
    assert (tmp_path / "out" / "best_kernel.py").exists() == (summary["best"] is not None)
    assert spent >= last_elapsed > 0

    # Resumed: --attempts counts the whole run, numbering and the clock continue.
    resumed = subprocess.run(
        [
            sys.executable,
            "-m",
            "kernelscale",
            "solve",
            "--resume",
            "1",
            "--device",
            "cpu",
            "--budget",
            "10m",
            "--attempts",
            str(kept + 1),
            "--db",
            str(db),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"#{kept + 1} " in resumed.stdout
    with sqlite3.connect(db) as conn:
        total = conn.execute("SELECT COUNT(*) FROM attempts WHERE run_id=1").fetchone()[0]
        newest = conn.execute(
            "SELECT elapsed_s FROM attempts WHERE run_id=1 ORDER BY id DESC LIMIT 1"
        ).fetchone()[0]
        spent_after = conn.execute("SELECT seconds_spent FROM run_problems WHERE run_id=1").fetchone()[0]
        repeats = conn.execute("SELECT COUNT(*) - COUNT(DISTINCT code_hash) FROM verdicts").fetchone()[0]
        status = conn.execute("SELECT status FROM runs WHERE id=1").fetchone()[0]
    assert total == kept + 1 and repeats == 0 and status == "finished"
    assert newest > spent and spent_after > spent  # the clock went on from where it stopped
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["stopped"] == "attempts"


def test_python_api_verify_survives_submodule_imports(tmp_path):
    import kernelscale
    import kernelscale.verify.screen  # binds the package over the function name

    verdict = kernelscale.verify(str(TESTS / "problems" / "scaled_exp.py"), GOOD, device="cpu")
    assert verdict.status == "correct"


def test_llm_on_attention_starts_from_the_compiler_kernel():
    from kernelscale.problems import load_problem
    from kernelscale.propose.llm.options import LLMOptions
    from kernelscale.propose.llm.prompts import first_prompt
    from kernelscale.search.session import make_proposer
    from kernelscale.search.settings import RunSettings

    problem = load_problem("attention/alibi")
    proposer = make_proposer("llm", problem, "cpu", RunSettings(llm=LLMOptions(preset="vllm")))
    start = proposer.settings.start_kernel
    assert start and "class ModelNew" in start and "@triton.jit" in start
    assert start in first_prompt(problem, proposer.settings)
