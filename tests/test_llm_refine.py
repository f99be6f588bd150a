"""The LLM proposer driven by the strategies against the fake server, with a fake verifier:
each next prompt must carry the verdict of the attempt before it."""

import asyncio

import pytest

from fake_openai import FakeOpenAI, drop, hang, r1, reply, status
from kernelscale.problems.loader import load_problem
from kernelscale.propose.base import Attempt, Candidate, ProposerError
from kernelscale.propose.llm import LLMOptions, LLMProposer, no_code_verdict
from kernelscale.search.base import Budget
from kernelscale.search.strategies import make_strategy
from kernelscale.verify.verdict import Verdict

BROKEN = "import triton\n\nclass ModelNew(:\n    pass\n"
CHEAT = "import torch\n\nclass ModelNew(torch.nn.Module):\n    def forward(self, x):\n        return torch.softmax(x, -1)\n"
SLOW = "# SLOW kernel\nclass ModelNew:\n    pass\n"
FAST = "# FAST kernel\nclass ModelNew:\n    pass\n"


def judge(candidate: Candidate) -> Verdict:
    """Verdicts a real verifier would give these sources."""
    if (verdict := no_code_verdict(candidate)) is not None:
        return verdict
    if "ModelNew(:" in candidate.code:
        return Verdict("compile_error", reason="SyntaxError: invalid syntax (candidate.py, line 3)", line=3)
    if "torch.softmax" in candidate.code:
        return Verdict("rejected", rule="torch_fallback", line=5, reason="forward calls torch.softmax")
    speed = 2.0 if "FAST" in candidate.code else 1.1
    return Verdict("correct", time_ms=1.0 / speed, baselines={"eager": 1.0}, speedup={"eager": speed})


def make_evaluate():
    attempts: list[Attempt] = []

    async def evaluate(candidate: Candidate) -> Attempt:
        attempts.append(Attempt(candidate, judge(candidate), attempt_id=len(attempts) + 1))
        return attempts[-1]

    return evaluate, attempts


@pytest.fixture(scope="module")
def softmax():
    return load_problem("ops/softmax")


def llm(server, **overrides) -> LLMProposer:
    settings = dict(
        preset="vllm", base_url=server.base_url, backoff_s=0.01, request_timeout_s=0.5, max_retries=2
    )
    settings.update(overrides)
    return LLMProposer(LLMOptions(**settings), device="cpu")


def test_refine_chain_carries_each_verdict_into_the_next_prompt(softmax):
    script = [
        r1(BROKEN),
        status(429, retry_after=0.05),
        r1(CHEAT, where="field"),
        r1(None, prose="Hmm."),
        drop(),
        r1(SLOW, open_tag=False),
        hang(30),
        r1(FAST),
    ]
    with FakeOpenAI(script) as server:
        evaluate, attempts = make_evaluate()
        asyncio.run(make_strategy("refine").run(softmax, llm(server), evaluate, Budget(attempts=5), []))
        prompts = server.prompts()
    assert [a.verdict.status for a in attempts] == [
        "compile_error",
        "rejected",
        "compile_error",
        "correct",
        "correct",
    ]
    assert [a.best_speedup for a in attempts[3:]] == [1.1, 2.0]
    # one prompt per request: 5 answers, one 429 retried, one drop, one hang
    first, after_compile, after_cheat, after_no_code, after_slow = (
        prompts[0],
        prompts[1],
        prompts[3],
        prompts[4],
        prompts[6],
    )
    assert "## The verifier's verdict" not in first
    assert "SyntaxError: invalid syntax" in after_compile and "class ModelNew(:" in after_compile
    assert "rule `torch_fallback`" in after_cheat and "line 5: `return torch.softmax(x, -1)`" in after_cheat
    assert "your answer contained no ```python block" in after_no_code and "torch.softmax" in after_no_code
    assert "Make it faster" in after_slow and "your speedup 1.10x" in after_slow
    assert attempts[4].candidate.parents == [attempts[3].candidate.code_hash]


def test_parallel_chains_ask_the_endpoint_concurrently(softmax):
    counter = iter(range(100))  # a new kernel each time: duplicates would be re-asked, not verified

    def fresh(body):
        return r1(SLOW + f"# answer {next(counter)}\n", delay=0.2)

    with FakeOpenAI(default=fresh) as server:
        evaluate, attempts = make_evaluate()
        strategy = make_strategy("parallel", chains=3)
        asyncio.run(strategy.run(softmax, llm(server, max_concurrency=3), evaluate, Budget(attempts=6), []))
        assert len(attempts) == 6 and server.max_in_flight == 3


def test_evolve_sends_crossover_prompts_to_the_model(softmax):
    answers = iter([SLOW, FAST] + [FAST.replace("FAST", f"FAST v{i}") for i in range(10)])
    with FakeOpenAI(default=lambda body: r1(next(answers))) as server:
        evaluate, attempts = make_evaluate()
        strategy = make_strategy("evolve", workers=1, crossover=1.0, seed=0)
        asyncio.run(strategy.run(softmax, llm(server), evaluate, Budget(attempts=4), []))
        prompts = server.prompts()
    assert [a.candidate.provenance["op"] for a in attempts] == ["refine", "mutate", "crossover", "crossover"]
    assert "## Implementation A" in prompts[2] and "## Implementation B" in prompts[2]


def test_a_rejected_key_stops_the_run_and_keeps_what_was_verified(softmax, monkeypatch):
    monkeypatch.setenv("KS_TEST_KEY", "sk-test")
    with FakeOpenAI([r1(SLOW), status(401, "invalid key")]) as server:
        evaluate, attempts = make_evaluate()
        proposer = llm(server, api_key_env="KS_TEST_KEY")
        with pytest.raises(ProposerError, match="rejected the API key from \\$KS_TEST_KEY"):
            asyncio.run(make_strategy("refine").run(softmax, proposer, evaluate, Budget(attempts=5), []))
    assert len(attempts) == 1 and attempts[0].verdict.ok


def test_reply_without_usage_or_reasoning_still_counts(softmax):
    with FakeOpenAI([reply(f"```python\n{SLOW}```", usage=False)]) as server:
        evaluate, attempts = make_evaluate()
        asyncio.run(make_strategy("refine").run(softmax, llm(server), evaluate, Budget(attempts=1), []))
    assert (
        attempts[0].candidate.usage["estimated"] is True
        and attempts[0].candidate.provenance["reasoning"] == ""
    )
