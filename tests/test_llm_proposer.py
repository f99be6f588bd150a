"""LLMProposer end to end against the fake server: prompts sent, candidates made, nothing leaked."""

import asyncio
import json
import logging

import pytest

from fake_openai import FakeOpenAI, r1, reply, status
from kernelscale.problems.loader import load_problem
from kernelscale.propose.base import Attempt, Candidate, Proposer, ProposerError
from kernelscale.propose.llm import LLMOptions, LLMProposer, make_llm_proposer, no_code_verdict, preset_for
from kernelscale.propose.replay import ReplayProposer
from kernelscale.store.db import Store
from kernelscale.verify.verdict import Verdict

CODE = "import torch\n\nclass ModelNew(torch.nn.Module):\n    pass\n"
SECRET = "sk-kernelscale-test-secret-8f3a"


@pytest.fixture(scope="module")
def softmax():
    return load_problem("ops/softmax")


@pytest.fixture
def server():
    with FakeOpenAI() as fake:
        yield fake


def proposer_for(server, **kw) -> LLMProposer:
    options = LLMOptions(preset="vllm", base_url=server.base_url, backoff_s=0.01, max_retries=1)
    return LLMProposer(options, **kw)


def test_it_is_a_proposer():
    assert isinstance(LLMProposer(LLMOptions(preset="vllm")), Proposer)
    assert isinstance(ReplayProposer([]), Proposer)


def test_first_proposal(server, softmax):
    server.push(
        r1(
            CODE,
            thinking="rows fit in registers",
            where="field",
            usage={"prompt_tokens": 2000, "completion_tokens": 5000},
        )
    )
    proposer = proposer_for(server, device="cpu")
    (candidate,) = asyncio.run(proposer.propose(softmax, [], 1))
    assert candidate.code == CODE and candidate.proposer == "llm" and candidate.parents == []
    prompt = server.prompts()[0]
    assert softmax.source.strip() in prompt and "CPU interpreter" in prompt
    prov = candidate.provenance
    assert prov["prompt_kind"] == "first" and prov["messages"] == [{"role": "user", "content": prompt}]
    assert prov["reasoning"] == "rows fit in registers" and prov["endpoint"] == server.base_url
    assert prov["model"] == "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B" and prov["preset"] == "vllm"
    assert prov["response"]["reasoning_content"] == "rows fit in registers"  # streamed: assembled reply
    assert candidate.usage["prompt_tokens"] == 2000 and candidate.usage["completion_tokens"] == 5000
    assert candidate.usage["cost_usd"] == 0.0  # a local server


def test_feedback_proposal_carries_the_verdict(server, softmax):
    server.push(r1(CODE))
    previous = Attempt(
        Candidate("bad(\n", "llm"), Verdict("compile_error", reason="SyntaxError: never closed")
    )
    (candidate,) = asyncio.run(proposer_for(server).propose(softmax, [previous], 1))
    prompt = server.prompts()[0]
    assert "bad(" in prompt and "SyntaxError: never closed" in prompt
    assert candidate.parents == [previous.candidate.code_hash]
    assert candidate.provenance["prompt_kind"] == "feedback"


def test_an_answer_without_code_is_a_candidate_without_code(server, softmax):
    server.push(r1(None, prose="I would tile the rows, but I am not sure how."))
    (candidate,) = asyncio.run(proposer_for(server).propose(softmax, [], 1))
    assert candidate.code == ""
    assert candidate.provenance["no_code"] == "your answer contained no ```python block"
    verdict = no_code_verdict(candidate)
    assert verdict.status == "compile_error" and verdict.reason == candidate.provenance["no_code"]
    assert no_code_verdict(Candidate(CODE, "llm")) is None


def test_a_reply_cut_off_while_thinking(server, softmax):
    server.push(reply("<think>\nlong long reasoning", finish_reason="length"))
    (candidate,) = asyncio.run(proposer_for(server).propose(softmax, [], 1))
    assert (
        candidate.code == ""
        and "length limit of 16384 tokens while still reasoning" in candidate.provenance["no_code"]
    )


def test_several_candidates_at_once(server, softmax):
    server.push(r1(CODE), r1(CODE.replace("pass", "x = 1")))
    candidates = asyncio.run(proposer_for(server).propose(softmax, [], 2))
    assert len(candidates) == 2 and len(server.requests) == 2
    assert {c.code_hash for c in candidates} == {
        Candidate(CODE, "llm").code_hash,
        Candidate(CODE.replace("pass", "x = 1"), "llm").code_hash,
    }


def test_crossover_proposal(server, softmax):
    server.push(r1(CODE))
    parents = [
        Attempt(Candidate(f"# parent {i}\n", "llm"), Verdict("correct", time_ms=1.0 + i)) for i in range(2)
    ]
    (candidate,) = asyncio.run(proposer_for(server).propose_crossover(softmax, parents, 1))
    assert candidate.provenance["prompt_kind"] == "crossover"
    assert candidate.parents == [p.candidate.code_hash for p in parents]
    assert "# parent 0" in server.prompts()[0] and "# parent 1" in server.prompts()[0]


def test_endpoint_failure_is_a_proposer_error(server, softmax):
    server.push(status(403, "forbidden"))
    with pytest.raises(ProposerError, match="403"):
        asyncio.run(proposer_for(server).propose(softmax, [], 1))


def test_the_key_never_reaches_store_provenance_or_logs(server, softmax, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("KS_SECRET_KEY", SECRET)
    server.api_key = SECRET  # the server only answers when the key was really sent
    # (a different second kernel: a duplicate answer would be re-asked, not returned)
    server.push(r1(CODE), status(500), r1(CODE + "# second\n"))
    options = LLMOptions(preset="nim", base_url=server.base_url, api_key_env="KS_SECRET_KEY", backoff_s=0.01)
    proposer = LLMProposer(options)
    caplog.set_level(logging.DEBUG)
    first = asyncio.run(proposer.propose(softmax, [], 1))[0]
    second = asyncio.run(proposer.propose(softmax, [Attempt(first, Verdict("incorrect", reason="x"))], 1))[0]
    sent = [{k.lower(): v for k, v in r["headers"].items()} for r in server.requests]
    assert len(sent) == 3 and all(h["authorization"] == f"Bearer {SECRET}" for h in sent)

    store = Store(tmp_path / "runs.sqlite")
    run = store.create_run("solve", softmax.name, {"llm": options.describe()})
    key = store.add_problem(run, softmax)
    for candidate in (first, second):
        attempt = Attempt(candidate, Verdict("incorrect", reason="x"))
        store.add_attempt(
            run, key, attempt, store.add_verdict(candidate.code_hash, key, "cpu", attempt.verdict)
        )
    store.close()
    for path in tmp_path.iterdir():  # the database and its WAL
        assert SECRET.encode() not in path.read_bytes(), path
    for candidate in (first, second):
        assert SECRET not in json.dumps(candidate.provenance, default=str) + json.dumps(candidate.usage)
    assert SECRET not in json.dumps(options.describe()) and SECRET not in repr(options)
    assert SECRET not in caplog.text


def test_make_llm_proposer_splits_options_from_settings(server):
    proposer = make_llm_proposer(
        preset="vllm", base_url=server.base_url, model=None, device="cpu", language="cuda", example=None
    )
    assert proposer.options.base_url == server.base_url and proposer.options.model.startswith("deepseek-ai/")
    assert proposer.settings.interpreter and proposer.settings.language == "cuda"
    assert proposer.settings.example == "auto"  # None means "not given"
    with pytest.raises(TypeError, match="not both"):
        make_llm_proposer(LLMOptions(preset="vllm"), model="x")
    assert make_llm_proposer().options.preset == "nim"


@pytest.mark.parametrize(
    "url, preset",
    [
        ("https://api.deepseek.com", "deepseek"),
        ("https://integrate.api.nvidia.com/v1", "nim"),
        ("https://api.openai.com/v1", "openai"),
        ("http://localhost:11434/v1", "ollama"),
        ("http://gpu-box:11434/v1", "ollama"),
        ("http://10.0.0.3:30000/v1", "vllm"),
        (None, "nim"),
    ],
)
def test_a_base_url_alone_picks_its_preset(url, preset):
    assert preset_for(url) == preset
    if url:
        proposer = make_llm_proposer(base_url=url, model="m")
        assert proposer.options.preset == preset and proposer.options.base_url == url.rstrip("/")


def test_presets_and_overrides():
    nim = LLMOptions()
    assert (nim.base_url, nim.model, nim.api_key_env) == (
        "https://integrate.api.nvidia.com/v1",
        "deepseek-ai/deepseek-r1",
        "NVIDIA_API_KEY",
    )
    assert LLMOptions(preset="deepseek").model == "deepseek-reasoner"
    assert (
        LLMOptions(preset="ollama").api_key_env is None and LLMOptions(preset="ollama").api_key() == "unused"
    )
    custom = LLMOptions(preset="nim", base_url="http://gpu-box:9000/v1/", model="my-r1", api_key_env="MY_KEY")
    assert (custom.base_url, custom.model, custom.api_key_env) == (
        "http://gpu-box:9000/v1",
        "my-r1",
        "MY_KEY",
    )
    with pytest.raises(ValueError, match="unknown LLM preset"):
        LLMOptions(preset="bard")


def test_replay_proposes_files_and_sources_in_order(softmax, tmp_path):
    path = tmp_path / "k.py"
    path.write_text("# from a file\n")
    replay = ReplayProposer([path, "# inline source\n", str(path)])
    got = asyncio.run(replay.propose(softmax, [], 2)) + asyncio.run(replay.propose(softmax, [], 5))
    assert [c.code for c in got] == ["# from a file\n", "# inline source\n", "# from a file\n"]
    assert got[0].provenance == {"index": 0, "file": str(path)} and got[1].provenance == {"index": 1}
    assert asyncio.run(replay.propose(softmax, [], 1)) == []
