"""One chat completion from an OpenAI-compatible endpoint, with retries, limits and accounting.

The openai library's own retries are off (`max_retries=0`): we retry here so that every retry
honours Retry-After with our caps, shows up in the attempt's usage, and ends in a one-line
`ProposerError` instead of a traceback. A fresh `AsyncOpenAI` is made per request: the key is
read from the environment at that moment, and no connection pool outlives an event loop (the
loop may be `asyncio.run` more than once in one process). Connection reuse does not matter
against answers that take minutes.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import re
import time
from dataclasses import dataclass, field

from kernelscale.propose.base import ProposerError
from kernelscale.propose.llm.options import LLMOptions
from kernelscale.propose.llm.parse import split_reasoning

CHARS_PER_TOKEN = 4  # the usual rule of thumb, only when a server reports no usage


@dataclass
class Completion:
    answer: str
    reasoning: str
    raw: dict  # the server's reply (assembled from the chunks when streamed)
    model: str
    finish_reason: str | None
    usage: dict = field(default_factory=dict)


class _Transient(Exception):
    """A failure worth retrying; `retry_after` is the server's requested wait, if it gave one."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class LLMClient:
    """Chat completions against one endpoint, at most `max_concurrency` in flight at once."""

    def __init__(self, options: LLMOptions):
        self.options = options
        self._limit: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None

    def _semaphore(self) -> asyncio.Semaphore:
        # A semaphore belongs to the loop it first waited in; make one per loop.
        loop = asyncio.get_running_loop()
        if self._limit is None or self._limit[0] is not loop:
            self._limit = (loop, asyncio.Semaphore(self.options.max_concurrency))
        return self._limit[1]

    async def complete(self, messages: list[dict], temperature: float | None = None) -> Completion:
        """The model's reply to `messages`; raises ProposerError when the endpoint cannot serve it.
        `temperature` overrides the options' for this request (spend control raises it after a
        duplicate answer)."""
        # Back-off sleeps hold the slot: a rate-limited endpoint gets fewer requests, not more.
        async with self._semaphore():
            started = time.monotonic()
            retries = 0
            while True:
                try:
                    result = await self._request(messages, temperature)
                except _Transient as exc:
                    if retries >= self.options.max_retries:
                        raise ProposerError(f"{exc} (gave up after {retries + 1} tries)") from None
                    await asyncio.sleep(self._delay(retries, exc.retry_after))
                    retries += 1
                    continue
                result.usage.update(retries=retries, latency_s=round(time.monotonic() - started, 3))
                return result

    def _delay(self, retries: int, retry_after: float | None) -> float:
        opts = self.options
        if retry_after is not None:
            return min(max(retry_after, 0.0), opts.backoff_max_s)
        # Jitter keeps parallel chains that failed together from retrying in lockstep.
        return min(opts.backoff_s * 2**retries, opts.backoff_max_s) * (1 + 0.25 * random.random())

    async def _request(self, messages: list[dict], temperature: float | None = None) -> Completion:
        import openai

        opts = self.options
        kwargs: dict = {"model": opts.model, "messages": messages, opts.token_param: opts.max_tokens}
        temperature = temperature if temperature is not None else opts.temperature
        if temperature is not None:
            kwargs["temperature"] = temperature
        # OPENAI_ORG_ID / OPENAI_PROJECT_ID are read from the environment by the library and are
        # OpenAI's business only: other endpoints do not get them.
        private = (
            {}
            if opts.preset == "openai"
            else {"OpenAI-Organization": openai.Omit(), "OpenAI-Project": openai.Omit()}
        )
        client = openai.AsyncOpenAI(
            api_key=opts.api_key(),
            base_url=opts.base_url,
            timeout=opts.request_timeout_s,
            max_retries=0,
            default_headers=private,
        )
        try:
            async with client:
                if opts.stream:
                    return await self._streamed(client, kwargs)
                return await self._whole(client, kwargs)
        except _Transient:
            raise
        except Exception as exc:
            mapped = self._classify(exc)
            if mapped is exc:
                raise
            raise mapped from exc

    async def _whole(self, client, kwargs: dict) -> Completion:
        response = await client.chat.completions.create(**kwargs)
        if not hasattr(response, "choices"):  # the library hands back a non-JSON body as it came
            raise ProposerError(
                f"{self.options.base_url} gave an answer that is not a chat completion: "
                f"{_one_line(str(response), 120)}"
            )
        choice = response.choices[0] if response.choices else None
        message = choice.message if choice else None
        content = message.content if message else ""
        field_reasoning = _reasoning_field(message) if message else None
        reasoning, answer = split_reasoning(content, field_reasoning)
        raw = response.model_dump(mode="json", exclude_none=True)
        return Completion(
            answer=answer,
            reasoning=reasoning,
            raw=raw,
            model=response.model or self.options.model,
            finish_reason=choice.finish_reason if choice else None,
            usage=self._usage(
                response.usage, kwargs["messages"], len(content or "") + len(field_reasoning or ""), reasoning
            ),
        )

    async def _streamed(self, client, kwargs: dict) -> Completion:
        kwargs = dict(kwargs, stream=True, stream_options={"include_usage": True})
        content: list[str] = []
        field_reasoning: list[str] = []
        finish, usage, model, rid, chunks = None, None, self.options.model, None, 0
        stream = await client.chat.completions.create(**kwargs)
        async with stream:
            async for chunk in stream:
                chunks += 1
                model, rid = chunk.model or model, chunk.id or rid
                usage = chunk.usage or usage
                for choice in chunk.choices or []:
                    content.append(choice.delta.content or "")
                    field_reasoning.append(_reasoning_field(choice.delta) or "")
                    finish = choice.finish_reason or finish
        if finish is None:
            if not chunks:
                raise _Transient(
                    f"{self.options.base_url} sent no stream events (is it an OpenAI-compatible "
                    f"endpoint, ending in /v1?)"
                )
            raise _Transient(f"{self.options.base_url} closed the stream before the answer was finished")
        text, thought = "".join(content), "".join(field_reasoning)
        reasoning, answer = split_reasoning(text, thought)
        raw = {"id": rid, "model": model, "finish_reason": finish, "content": text, "streamed": True}
        if thought:
            raw["reasoning_content"] = thought
        return Completion(
            answer=answer,
            reasoning=reasoning,
            raw=raw,
            model=model,
            finish_reason=finish,
            usage=self._usage(usage, kwargs["messages"], len(text) + len(thought), reasoning),
        )

    def _usage(self, usage, messages: list[dict], reply_chars: int, reasoning_text: str) -> dict:
        """Tokens and cost of one reply; estimated from characters where the server is silent."""
        prompt = getattr(usage, "prompt_tokens", None)
        completion = getattr(usage, "completion_tokens", None)
        details = getattr(usage, "completion_tokens_details", None)
        reasoning = getattr(details, "reasoning_tokens", None)
        estimated = prompt is None or completion is None
        if prompt is None:
            prompt = sum(len(str(m.get("content", ""))) for m in messages) // CHARS_PER_TOKEN
        if completion is None:
            completion = reply_chars // CHARS_PER_TOKEN
        if reasoning is None:  # servers that leave thinking inline do not count it apart
            reasoning = len(reasoning_text) // CHARS_PER_TOKEN
        return {
            "prompt_tokens": int(prompt),
            "completion_tokens": int(completion),
            "reasoning_tokens": int(reasoning),
            "total_tokens": int(prompt) + int(completion),
            "cost_usd": round(self.options.cost_usd(prompt, completion), 6),
            "estimated": estimated,
            "model": self.options.model,
        }

    def _classify(self, exc: Exception) -> Exception:
        """A retryable `_Transient`, a one-line `ProposerError`, or the exception itself (a bug)."""
        import openai

        opts, url = self.options, self.options.base_url
        if isinstance(exc, openai.APITimeoutError):
            return _Transient(f"no answer from {url} within {opts.request_timeout_s:g}s")
        if isinstance(exc, openai.APIConnectionError):
            if _refused(exc):  # nothing listens there: retrying for a minute only delays the news
                return ProposerError(f"cannot reach {url}: connection refused (is the server running?)")
            return _Transient(f"cannot reach {url}: {_cause(exc)}")
        if isinstance(exc, openai.APIStatusError):
            status, detail = exc.status_code, _server_message(exc)
            if status in (408, 409, 429) or status >= 500:
                return _Transient(f"{url} answered {status}: {detail}", _retry_after(exc.response.headers))
            if status in (401, 403):
                key = (
                    f"the API key from ${opts.api_key_env}"
                    if opts.api_key_env
                    else "the request (no API key set)"
                )
                return ProposerError(f"{url} rejected {key} ({status}): {detail}")
            if status == 404:
                return ProposerError(f"model {opts.model!r} not found at {url} (404): {detail}")
            return ProposerError(f"{url} refused the request ({status}): {detail}")
        if _is_transport_error(exc):
            return _Transient(f"connection to {url} dropped: {_one_line(str(exc)) or type(exc).__name__}")
        if isinstance(exc, openai.OpenAIError):  # e.g. a 200 that is not a chat completion (a wrong base URL)
            return ProposerError(f"{url} gave an answer that is not a chat completion: {_one_line(str(exc))}")
        return exc


def _reasoning_field(message) -> str | None:
    """`reasoning_content` (DeepSeek, vLLM) or `reasoning` (OpenRouter, newer vLLM); extras of the model."""
    return getattr(message, "reasoning_content", None) or getattr(message, "reasoning", None)


def _is_transport_error(exc: Exception) -> bool:
    # Errors while reading a stream reach us unwrapped from the HTTP library (httpx, or the
    # httpx2 fork newer openai releases use); match by module so either one works.
    names = {cls.__module__.split(".")[0] for cls in type(exc).__mro__}
    return bool(names & {"httpx", "httpx2", "httpcore", "h11"}) or isinstance(
        exc, (ConnectionError, EOFError)
    )


def _retry_after(headers) -> float | None:
    """Seconds from `retry-after-ms`, or `retry-after` as seconds or an HTTP date."""
    if headers is None:
        return None
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _server_message(exc) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        message = error.get("message") if isinstance(error, dict) else error
        if message:
            return _one_line(str(message))
    return _one_line(exc.message)


def _refused(exc: BaseException) -> bool:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, ConnectionRefusedError) or "connection refused" in str(exc).lower():
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _cause(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    return _one_line(str(cause)) if cause is not None and str(cause) else _one_line(str(exc))


def _one_line(text: str, limit: int = 200) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
