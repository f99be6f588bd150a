"""End to end: `kernelscale.solve` with the LLM proposer against the fake server and the real
verifier (CPU interpreter), through every fault an endpoint and a model can produce, and a
resume after the solving process was killed."""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

from fake_openai import FakeOpenAI, drop, hang, r1, status
from kernelscale.propose.llm import LLMOptions
from kernelscale.search.solve import solve

FAST = """import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _row_softmax(x_ptr, y_ptr, n_cols, stride, BLOCK: tl.constexpr):
    # The whole row in one block: read once, write once.
    row = tl.program_id(0)
    offs = tl.arange(0, BLOCK)
    mask = offs < n_cols
    x = tl.load(x_ptr + row * stride + offs, mask=mask, other=-float("inf"))
    e = tl.exp(x - tl.max(x, axis=0))
    tl.store(y_ptr + row * stride + offs, e / tl.sum(e, axis=0), mask=mask)


class ModelNew(nn.Module):
    def forward(self, x):
        x = x.contiguous()
        y = torch.empty_like(x)
        _row_softmax[(x.shape[0],)](x, y, x.shape[1], x.stride(0), BLOCK=triton.next_power_of_2(x.shape[1]))
        return y
"""

# Correct, but three passes over each row in chunks: several times slower, even interpreted.
SLOW = """import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _row_softmax_chunked(x_ptr, y_ptr, n_cols, stride, CHUNK: tl.constexpr):
    row = tl.program_id(0)
    offs = tl.arange(0, CHUNK)
    peak = tl.full((CHUNK,), -float("inf"), tl.float32)
    for start in range(0, n_cols, CHUNK):
        x = tl.load(x_ptr + row * stride + start + offs, mask=start + offs < n_cols, other=-float("inf"))
        peak = tl.maximum(peak, x)
    m = tl.max(peak, axis=0)
    total = tl.zeros((CHUNK,), tl.float32)
    for start in range(0, n_cols, CHUNK):
        x = tl.load(x_ptr + row * stride + start + offs, mask=start + offs < n_cols, other=-float("inf"))
        total += tl.exp(x - m)
    s = tl.sum(total, axis=0)
    for start in range(0, n_cols, CHUNK):
        mask = start + offs < n_cols
        x = tl.load(x_ptr + row * stride + start + offs, mask=mask, other=-float("inf"))
        tl.store(y_ptr + row * stride + start + offs, tl.exp(x - m) / s, mask=mask)


class ModelNew(nn.Module):
    def forward(self, x):
        x = x.contiguous()
        y = torch.empty_like(x)
        _row_softmax_chunked[(x.shape[0],)](x, y, x.shape[1], x.stride(0), CHUNK=64)
        return y
"""

BROKEN = FAST.replace("def forward(self, x):", "def forward(self, x)")  # a missing colon

# Launches a kernel of its own, then lets torch do the real work.
CHEAT = """import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _copy(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=offs < n), mask=offs < n)


class ModelNew(nn.Module):
    def forward(self, x):
        y = torch.empty_like(x)
        _copy[(triton.cdiv(x.numel(), 1024),)](x, y, x.numel(), BLOCK=1024)
        return torch.softmax(y, dim=-1)
"""

SECRET = "sk-e2e-secret-0b7c"


def llm_options(server, **overrides) -> LLMOptions:
    settings = dict(
        preset="vllm",
        base_url=server.base_url,
        api_key_env="KS_E2E_KEY",
        backoff_s=0.05,
        request_timeout_s=1.0,
        max_retries=2,
    )
    settings.update(overrides)
    return LLMOptions(**settings)


def test_solve_through_every_fault_keeps_every_correct_kernel(tmp_path, monkeypatch):
    monkeypatch.setenv("KS_E2E_KEY", SECRET)
    script = [
        r1(BROKEN, thinking="Softmax needs the row max first."),  # R1-style, inline <think>
        status(429, "rate limited", retry_after=0.1),
        r1(CHEAT, where="field", thinking="torch already has softmax."),
        r1(None, prose="I think a two-pass approach would work."),  # no code at all
        drop(),
        r1(SLOW, open_tag=False),
        hang(60),  # the request times out and is retried
        r1(FAST),
    ]
    with FakeOpenAI(script, api_key=SECRET) as server:
        result = solve(
            "ops/softmax",
            proposer="llm",
            strategy="refine",
            budget_s=None,
            max_attempts=5,
            device="cpu",
            out_dir=tmp_path / "out",
            db_path=tmp_path / "ks.db",
            llm=llm_options(server),
        )
        prompts = server.prompts()

    statuses = [a.verdict.status for a in result.attempts]
    assert statuses == ["compile_error", "rejected", "compile_error", "correct", "correct"]
    assert result.attempts[4].candidate.code == FAST
    assert result.attempts[4].verdict.time_ms < result.attempts[3].verdict.time_ms  # faster than SLOW
    # Interpreted times are not performance numbers: the best (written, reported) is the first
    # correct kernel, by the one rule solve and the report share.
    assert result.best is not None and result.best.candidate.code == SLOW
    assert (tmp_path / "out" / "best_kernel.py").read_text() == SLOW

    # requests: first, feedback(BROKEN) x2 (429), feedback(CHEAT), feedback(no code) x2 (drop),
    # feedback(SLOW) x2 (hang)
    assert len(prompts) == 8
    assert "## The verifier's verdict" not in prompts[0]
    assert "SyntaxError: expected ':'" in prompts[1] and prompts[1] == prompts[2]
    assert (
        "rule `torch_fallback`" in prompts[3] and "line 17: `return torch.softmax(y, dim=-1)`" in prompts[3]
    )
    assert "#1 compile_error: SyntaxError: expected ':'" in prompts[3]
    assert "your answer contained no ```python block" in prompts[4]
    assert "It is correct" in prompts[6] and "Make it faster" in prompts[6]

    no_code = result.attempts[2]
    assert no_code.candidate.code == "" and "no ```python block" in no_code.verdict.reason
    assert result.attempts[0].candidate.provenance["reasoning"] == "Softmax needs the row max first."
    assert result.attempts[3].candidate.usage["retries"] == 1
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def _stored_attempts(db) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db, timeout=10) as con:
        try:
            return con.execute("SELECT count(*) FROM attempts").fetchone()[0]
        except sqlite3.OperationalError:
            return 0


KILLED_RUN = textwrap.dedent("""
    import sys
    from kernelscale.propose.llm import LLMOptions
    from kernelscale.search.solve import solve
    solve("ops/softmax", proposer="llm", strategy="refine", budget_s=300, max_attempts=10, device="cpu",
          out_dir=sys.argv[2], db_path=sys.argv[1],
          llm=LLMOptions(preset="vllm", base_url=sys.argv[3], request_timeout_s=120, max_retries=0))
""")


def test_resume_after_a_kill_continues_the_chain_without_repeating_it(tmp_path):
    db = tmp_path / "ks.db"
    with FakeOpenAI([r1(BROKEN), r1(CHEAT)], default=hang(120)) as server:
        process = subprocess.Popen(
            [sys.executable, "-c", KILLED_RUN, str(db), str(tmp_path / "first"), server.base_url],
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 120
            while not (_stored_attempts(db) == 2 and len(server.requests) == 3):
                assert process.poll() is None, process.stderr.read().decode()[-2000:]
                assert time.monotonic() < deadline, "the first run never reached its third request"
                time.sleep(0.2)
        finally:
            os.killpg(process.pid, signal.SIGKILL)  # the run and its verifier processes, mid-request
            process.wait()
            process.stderr.close()

        server.push(r1(FAST))
        with sqlite3.connect(db) as con:
            run_id = con.execute("SELECT id FROM runs").fetchone()[0]
        # --attempts counts the whole run: two were made before the kill, one more now.
        result = solve(
            "ops/softmax",
            proposer="llm",
            strategy="refine",
            budget_s=None,
            max_attempts=3,
            device="cpu",
            out_dir=tmp_path / "resumed",
            db_path=db,
            resume=run_id,
            llm=LLMOptions(preset="vllm", base_url=server.base_url, request_timeout_s=5),
        )
        resumed_prompt = server.prompts()[-1]

    assert [a.verdict.status for a in result.attempts] == ["compile_error", "rejected", "correct"]
    assert result.best.candidate.code == FAST and _stored_attempts(db) == 3
    # the resumed chain continues from the stored attempts: feedback on the cheat, not a first prompt
    assert "rule `torch_fallback`" in resumed_prompt
    assert "#1 compile_error" in resumed_prompt and "#2 rejected" in resumed_prompt
    assert result.attempts[2].candidate.parents == [result.attempts[1].candidate.code_hash]
