"""A real HTTP server on 127.0.0.1 that speaks the OpenAI chat API from a script: test infrastructure.

Each POST /v1/chat/completions takes the next step of the script (a dict made by the helpers
below, or a callable taking the request body and returning one) and answers it, streamed (SSE
`data:` chunks ending in `[DONE]`) when the request asks for `stream`, as one JSON body
otherwise. Every request is recorded, so a test can read exactly what the next prompt said.

    with FakeOpenAI([r1(code), status(429, retry_after=0.05), drop()]) as server:
        options = LLMOptions(preset="vllm", base_url=server.base_url)
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# -- steps ------------------------------------------------------------------------------------


def reply(
    content: str = "",
    *,
    reasoning_content: str | None = None,
    reasoning: str | None = None,
    finish_reason: str = "stop",
    usage: dict | bool = True,
    pieces: int = 3,
    delay: float = 0.0,
) -> dict:
    """A normal answer, sent after `delay` seconds; `usage=True` reports estimated tokens, False
    omits usage, a dict sets it."""
    return {
        "kind": "reply",
        "content": content,
        "reasoning_content": reasoning_content,
        "reasoning": reasoning,
        "finish_reason": finish_reason,
        "usage": usage,
        "pieces": pieces,
        "delay": delay,
    }


def r1(
    code: str | None,
    *,
    thinking: str = "Let me think about the memory access pattern.",
    where: str = "inline",
    open_tag: bool = True,
    prose: str = "Here is the kernel:",
    **kw,
) -> dict:
    """An R1-style answer: reasoning (inline `<think>` or in `reasoning_content`), prose, one code block."""
    answer = f"{prose}\n\n```python\n{code}```\n" if code is not None else prose
    if where == "field":
        return reply(answer, reasoning_content=thinking, **kw)
    opener = "<think>\n" if open_tag else ""
    return reply(f"{opener}{thinking}\n</think>\n\n{answer}", **kw)


def status(code: int, message: str = "", *, retry_after: float | str | None = None) -> dict:
    headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
    return {"kind": "status", "code": code, "message": message or f"scripted {code}", "headers": headers}


def raw(body: str, content_type: str = "text/html") -> dict:
    """Answer 200 with any body: what a wrong base URL (a web page, a proxy) gives."""
    return {"kind": "raw", "body": body, "content_type": content_type}


def drop() -> dict:
    """Close the connection without answering."""
    return {"kind": "drop"}


def drop_mid_stream(content: str = "<think>partial") -> dict:
    """Start answering (streamed or not), then close the connection mid-body."""
    return {"kind": "drop_mid", "content": content}


def hang(seconds: float = 30.0) -> dict:
    """Read the request, then say nothing (until the server stops or `seconds` pass)."""
    return {"kind": "hang", "seconds": seconds}


# -- server -----------------------------------------------------------------------------------


class FakeOpenAI:
    def __init__(self, script=(), *, api_key: str | None = None, default=None):
        self.script = deque(script)
        self.default = default  # step (or callable) used once the script is spent
        self.api_key = api_key  # when set, requests without this bearer key get a 401
        self.requests: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0  # the most requests answered at once (for concurrency limits)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    # lifecycle
    def start(self) -> FakeOpenAI:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    # script and record
    def push(self, *steps) -> None:
        with self._lock:
            self.script.extend(steps)

    def record(self, request: dict) -> None:
        with self._lock:
            self.requests.append(request)

    def enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def next_step(self, body: dict) -> dict | None:
        with self._lock:
            step = self.script.popleft() if self.script else self.default
        return step(body) if callable(step) else step

    def prompts(self) -> list[str]:
        """The last message of every request received, in order."""
        return [r["body"]["messages"][-1]["content"] for r in self.requests]


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOpenAI
    protocol_version = "HTTP/1.0"  # one request per connection; bodies end when it closes

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        record = {"path": self.path, "headers": dict(self.headers), "body": body}
        if not self.path.endswith("/chat/completions"):
            return self._error(404, f"no route {self.path}")
        self.fake.record(record)
        if self.fake.api_key and self.headers.get("Authorization") != f"Bearer {self.fake.api_key}":
            return self._error(401, "Incorrect API key provided")
        step = self.fake.next_step(body)
        if step is None:
            return self._error(400, "fake server: the script is spent")
        self.fake.enter()
        try:
            getattr(self, f"_do_{step['kind']}")(step, body)
        finally:
            self.fake.leave()

    # step handlers
    def _do_status(self, step: dict, body: dict) -> None:
        self._error(step["code"], step["message"], step["headers"])

    def _do_raw(self, step: dict, body: dict) -> None:
        blob = step["body"].encode()
        self._start(200, step["content_type"], length=len(blob))
        self.wfile.write(blob)

    def _do_drop(self, step: dict, body: dict) -> None:
        self._close()

    def _do_hang(self, step: dict, body: dict) -> None:
        self.fake._stopping.wait(step["seconds"])
        self._close()

    def _do_drop_mid(self, step: dict, body: dict) -> None:
        if body.get("stream"):
            self._start(200, "text/event-stream")
            self._sse(_chunk(body, {"role": "assistant", "content": step["content"]}))
        else:
            self._start(200, "application/json", length=1000)
            self.wfile.write(b'{"id": "x", "choices": [')
        self.wfile.flush()
        self._close()

    def _do_reply(self, step: dict, body: dict) -> None:
        if step["delay"] and self.fake._stopping.wait(step["delay"]):
            return self._close()
        usage = _usage(step, body)
        if not body.get("stream"):
            message = {"role": "assistant", "content": step["content"]}
            for name in ("reasoning_content", "reasoning"):
                if step[name] is not None:
                    message[name] = step[name]
            data = _envelope(body, "chat.completion")
            data["choices"] = [{"index": 0, "message": message, "finish_reason": step["finish_reason"]}]
            if usage:
                data["usage"] = usage
            return self._json(200, data)
        self._start(200, "text/event-stream")
        self._sse(_chunk(body, {"role": "assistant", "content": ""}))
        for name in ("reasoning_content", "reasoning"):
            for piece in _split(step[name] or "", step["pieces"]):
                self._sse(_chunk(body, {name: piece}))
        for piece in _split(step["content"], step["pieces"]):
            self._sse(_chunk(body, {"content": piece}))
        self._sse(_chunk(body, {}, finish=step["finish_reason"]))
        if usage and (body.get("stream_options") or {}).get("include_usage"):
            self._sse(dict(_envelope(body, "chat.completion.chunk"), choices=[], usage=usage))
        self.wfile.write(b"data: [DONE]\n\n")

    # plumbing
    def _start(
        self, code: int, content_type: str, headers: dict | None = None, length: int | None = None
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        if length is not None:
            self.send_header("Content-Length", str(length))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()

    def _json(self, code: int, data: dict, headers: dict | None = None) -> None:
        blob = json.dumps(data).encode()
        self._start(code, "application/json", headers, len(blob))
        self.wfile.write(blob)

    def _error(self, code: int, message: str, headers: dict | None = None) -> None:
        self._json(code, {"error": {"message": message, "type": "scripted", "code": str(code)}}, headers)

    def _sse(self, data: dict) -> None:
        self.wfile.write(f"data: {json.dumps(data)}\n\n".encode())
        self.wfile.flush()

    def _close(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _envelope(body: dict, obj: str) -> dict:
    return {
        "id": "chatcmpl-fake",
        "object": obj,
        "created": int(time.time()),
        "model": body.get("model", "fake"),
    }


def _chunk(body: dict, delta: dict, finish: str | None = None) -> dict:
    return dict(
        _envelope(body, "chat.completion.chunk"),
        choices=[{"index": 0, "delta": delta, "finish_reason": finish}],
    )


def _split(text: str, pieces: int) -> list[str]:
    if not text:
        return []
    size = max(1, -(-len(text) // max(1, pieces)))
    return [text[i : i + size] for i in range(0, len(text), size)]


def _usage(step: dict, body: dict) -> dict | None:
    if isinstance(step["usage"], dict) or not step["usage"]:
        return step["usage"] or None
    prompt = sum(len(m.get("content", "")) for m in body.get("messages", [])) // 4
    thought = len(step["reasoning_content"] or step["reasoning"] or "") // 4
    completion = len(step["content"]) // 4 + thought
    usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    if thought:  # servers that separate reasoning also count it; inline thinking is not counted apart
        usage["completion_tokens_details"] = {"reasoning_tokens": thought}
    return usage
