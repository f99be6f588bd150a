"""The chat client against a real local HTTP server: reasoning formats, retries, timeouts, limits."""

import asyncio
import email.utils
import socket
import time

import pytest

from fake_openai import FakeOpenAI, drop, drop_mid_stream, hang, r1, raw, reply, status
from kernelscale.propose.base import ProposerError
from kernelscale.propose.llm.client import LLMClient, _retry_after
from kernelscale.propose.llm.options import LLMOptions

CODE = "class ModelNew:\n    pass\n"


@pytest.fixture
def server():
    with FakeOpenAI() as fake:
        yield fake


def options(server, **overrides) -> LLMOptions:
    settings = dict(
        preset="vllm",
        base_url=server.base_url,
        backoff_s=0.01,
        backoff_max_s=1.0,
        request_timeout_s=2.0,
        max_retries=3,
    )
    settings.update(overrides)
    return LLMOptions(**settings)


def complete(opts: LLMOptions, text: str = "write a kernel"):
    return asyncio.run(LLMClient(opts).complete([{"role": "user", "content": text}]))


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize(
    "step",
    [
        r1(CODE, thinking="tile the rows", where="inline"),
        r1(CODE, thinking="tile the rows", open_tag=False),
        r1(CODE, thinking="tile the rows", where="field"),
        reply(f"```python\n{CODE}```", reasoning="tile the rows"),
    ],
    ids=["think-tags", "no-opening-tag", "reasoning_content", "reasoning"],
)
def test_reasoning_is_separated_from_the_answer(server, stream, step):
    server.push(step)
    result = complete(options(server, stream=stream))
    assert result.reasoning == "tile the rows"
    assert "<think>" not in result.answer and "</think>" not in result.answer
    assert CODE in result.answer
    assert result.finish_reason == "stop"


def test_request_carries_the_preset_settings(server):
    server.push(r1(CODE), r1(CODE))
    complete(options(server, stream=True), "hello")
    complete(options(server, stream=False, max_tokens=123), "hello")
    streamed, whole = (r["body"] for r in server.requests)
    assert streamed["messages"] == [{"role": "user", "content": "hello"}]
    assert streamed["stream"] is True and streamed["stream_options"] == {"include_usage": True}
    assert streamed["temperature"] == 0.6 and streamed["max_tokens"] == 16384
    assert streamed["model"] == "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B"
    assert "stream" not in whole or whole["stream"] is False
    assert whole["max_tokens"] == 123


def test_openai_reasoning_models_get_max_completion_tokens_and_no_temperature(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    server.push(r1(CODE))
    complete(options(server, preset="openai"))
    body = server.requests[0]["body"]
    assert body["max_completion_tokens"] == 32768
    assert "max_tokens" not in body and "temperature" not in body


def test_usage_and_cost_from_the_server(server):
    usage = {
        "prompt_tokens": 1000,
        "completion_tokens": 3000,
        "total_tokens": 4000,
        "completion_tokens_details": {"reasoning_tokens": 2500},
    }
    server.push(r1(CODE, usage=usage), r1(CODE, usage=usage))
    for stream in (True, False):
        result = complete(options(server, stream=stream, price_in_per_m=0.5, price_out_per_m=2.0))
        assert result.usage["prompt_tokens"] == 1000 and result.usage["completion_tokens"] == 3000
        assert result.usage["reasoning_tokens"] == 2500
        assert result.usage["cost_usd"] == pytest.approx((1000 * 0.5 + 3000 * 2.0) / 1e6)
        assert result.usage["estimated"] is False and result.usage["retries"] == 0


def test_usage_is_estimated_when_the_server_reports_none(server):
    server.push(r1(CODE, thinking="x" * 400, usage=False))
    result = complete(options(server))
    assert result.usage["estimated"] is True
    assert result.usage["reasoning_tokens"] == 100 and result.usage["completion_tokens"] > 100


def test_429_waits_what_retry_after_asks(server):
    server.push(status(429, "slow down", retry_after=0.4), r1(CODE))
    started = time.monotonic()
    result = complete(options(server, backoff_s=0.01))
    assert time.monotonic() - started >= 0.4
    assert result.usage["retries"] == 1 and len(server.requests) == 2


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize(
    "failure",
    [status(500), status(503), drop(), drop_mid_stream()],
    ids=["500", "503", "dropped", "dropped-mid-body"],
)
def test_transient_failures_are_retried(server, stream, failure):
    server.push(failure, r1(CODE))
    result = complete(options(server, stream=stream))
    assert CODE in result.answer and result.usage["retries"] == 1


@pytest.mark.parametrize("stream", [True, False])
def test_a_hung_server_times_out_and_is_retried(server, stream):
    server.push(hang(30), r1(CODE))
    started = time.monotonic()
    result = complete(options(server, stream=stream, request_timeout_s=0.3))
    assert CODE in result.answer and result.usage["retries"] == 1
    assert time.monotonic() - started < 3


def test_a_server_that_keeps_hanging_ends_in_one_clear_line(server):
    server.default = hang(30)
    with pytest.raises(ProposerError) as error:
        complete(options(server, request_timeout_s=0.2, max_retries=1))
    message = str(error.value)
    assert "\n" not in message and "no answer from" in message and "0.2s" in message
    assert "gave up after 2 tries" in message and len(server.requests) == 2


def test_persistent_5xx_gives_up_after_the_retries(server):
    server.default = status(500, "overloaded")
    with pytest.raises(ProposerError, match=r"answered 500: overloaded \(gave up after 4 tries\)"):
        complete(options(server, max_retries=3))
    assert len(server.requests) == 4


def test_rejected_key_stops_at_once_naming_the_variable_not_the_key(server, monkeypatch):
    monkeypatch.setenv("KS_TEST_KEY", "sk-secret-value-123")
    server.api_key = "a-different-key"
    with pytest.raises(ProposerError) as error:
        complete(options(server, api_key_env="KS_TEST_KEY"))
    message = str(error.value)
    assert "401" in message and "$KS_TEST_KEY" in message and "sk-secret-value-123" not in message
    assert len(server.requests) == 1  # no retry of a rejected key


def test_unknown_model_is_one_line(server):
    server.push(status(404, "The model `nope` does not exist"))
    with pytest.raises(ProposerError, match=r"model 'nope' not found at http://127\.0\.0\.1:\d+/v1 \(404\)"):
        complete(options(server, model="nope"))


@pytest.mark.parametrize("stream", [True, False])
def test_a_web_page_instead_of_an_api_is_one_line(server, stream):
    server.push(raw("<html><body>Welcome to nginx!</body></html>"))
    with pytest.raises(ProposerError) as error:
        complete(options(server, stream=stream, max_retries=0))
    message = str(error.value)
    assert "\n" not in message and server.base_url in message
    assert ("not a chat completion" in message) if not stream else ("no stream events" in message)


def test_unreachable_endpoint(server):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    opts = options(server, base_url=f"http://127.0.0.1:{port}/v1", max_retries=5, backoff_s=5.0)
    started = time.monotonic()
    with pytest.raises(ProposerError, match=r"cannot reach http://127\.0\.0\.1:\d+/v1: connection refused"):
        complete(opts)
    assert time.monotonic() - started < 5.0  # refused is final: no minute of back-off first


def test_missing_key_variable_fails_before_any_request(server, monkeypatch):
    monkeypatch.delenv("NVIDIA_API_KEY", raising=False)
    with pytest.raises(ProposerError, match=r"\$NVIDIA_API_KEY is not set"):
        complete(options(server, preset="nim"))
    assert not server.requests


def test_key_is_read_from_the_environment_at_call_time(server, monkeypatch):
    monkeypatch.setenv("KS_TEST_KEY", "first-key")
    client = LLMClient(options(server, api_key_env="KS_TEST_KEY"))
    monkeypatch.setenv("KS_TEST_KEY", "rotated-key")
    server.push(r1(CODE))
    asyncio.run(client.complete([{"role": "user", "content": "x"}]))
    headers = {k.lower(): v for k, v in server.requests[0]["headers"].items()}
    assert headers["authorization"] == "Bearer rotated-key"


def test_openai_account_ids_go_to_openai_only(server, monkeypatch):
    monkeypatch.setenv("OPENAI_ORG_ID", "org-private")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-private")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    server.push(r1(CODE), r1(CODE))
    complete(options(server))
    complete(options(server, preset="openai"))
    local, openai_ = ({k.lower(): v for k, v in r["headers"].items()} for r in server.requests)
    assert "openai-organization" not in local and "openai-project" not in local
    assert "sk-openai" not in str(local)
    assert openai_["openai-organization"] == "org-private"


def test_concurrency_is_limited_per_endpoint(server):
    server.default = r1(CODE, delay=0.2)
    client = LLMClient(options(server, max_concurrency=2))

    async def many():
        return await asyncio.gather(
            *(client.complete([{"role": "user", "content": str(i)}]) for i in range(5))
        )

    assert len(asyncio.run(many())) == 5
    assert server.max_in_flight == 2
    # the same client works again under a new event loop (a second asyncio.run)
    server.push(r1(CODE))
    assert CODE in asyncio.run(client.complete([{"role": "user", "content": "again"}])).answer


def test_retry_after_forms():
    assert _retry_after({"retry-after": "2.5"}) == 2.5
    assert _retry_after({"retry-after-ms": "300"}) == 0.3
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < _retry_after({"retry-after": later}) <= 30
    assert _retry_after({"retry-after": "soon"}) is None
    assert _retry_after({}) is None
