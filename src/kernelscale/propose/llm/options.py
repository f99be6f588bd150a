"""Where the LLM lives and how to talk to it: `LLMOptions` and the endpoint presets.

A preset fills every field the user left unset; anything passed explicitly wins. The API key is
never a field: only the *name* of the environment variable that holds it, read at request time,
so no key can reach the store, a log line, a candidate's provenance or a report.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from urllib.parse import urlparse

from kernelscale.propose.base import ProposerError


@dataclass(frozen=True)
class Preset:
    base_url: str
    model: str
    api_key_env: str | None  # None: the server needs no key (local vLLM, Ollama)
    temperature: float | None  # None: leave it out (reasoning APIs reject or ignore it)
    max_tokens: int
    max_concurrency: int
    price_in_per_m: float  # USD per 1M prompt tokens
    price_out_per_m: float  # USD per 1M completion tokens (reasoning included)
    token_param: str = "max_tokens"  # OpenAI's reasoning models take max_completion_tokens


# Prices are list prices at the time of writing, used only for the cost estimate in each
# attempt's usage; check your provider's page. NIM's hosted trial is billed in credits, so the
# nim preset borrows DeepSeek's own R1 price as the reference. Local servers cost nothing per token.
PRESETS: dict[str, Preset] = {
    # DeepSeek recommends temperature 0.5-0.7 for R1 (0.6 in its model card).
    "nim": Preset(
        "https://integrate.api.nvidia.com/v1",
        "deepseek-ai/deepseek-r1",
        "NVIDIA_API_KEY",
        0.6,
        16384,
        4,
        0.55,
        2.19,
    ),
    "deepseek": Preset(
        "https://api.deepseek.com", "deepseek-reasoner", "DEEPSEEK_API_KEY", None, 32768, 8, 0.55, 2.19
    ),
    "openai": Preset(
        "https://api.openai.com/v1",
        "o4-mini",
        "OPENAI_API_KEY",
        None,
        32768,
        8,
        1.10,
        4.40,
        token_param="max_completion_tokens",
    ),
    "vllm": Preset(
        "http://localhost:8000/v1", "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B", None, 0.6, 16384, 16, 0.0, 0.0
    ),
    # Ollama answers one request at a time unless OLLAMA_NUM_PARALLEL says otherwise.
    "ollama": Preset("http://localhost:11434/v1", "deepseek-r1:32b", None, 0.6, 16384, 1, 0.0, 0.0),
}

DEFAULT_PRESET = "nim"


@dataclass
class LLMOptions:
    """How to reach an OpenAI-compatible chat endpoint. Unset (None) fields come from the preset.

    `request_timeout_s` bounds each wait for bytes from the server: with `stream` the gap between
    two chunks, without it the whole answer (so raise it for long non-streamed reasoning).
    Retries (429, 5xx, dropped connections, timeouts) back off exponentially from `backoff_s`,
    capped at `backoff_max_s`, or wait what the server's Retry-After asks (capped likewise).
    """

    preset: str = DEFAULT_PRESET
    base_url: str | None = None
    model: str | None = None
    api_key_env: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    request_timeout_s: float = 300.0
    max_concurrency: int | None = None
    stream: bool = True
    price_in_per_m: float | None = None
    price_out_per_m: float | None = None
    max_retries: int = 5
    backoff_s: float = 2.0
    backoff_max_s: float = 60.0

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"unknown LLM preset {self.preset!r} (known: {', '.join(PRESETS)})")
        preset = PRESETS[self.preset]
        for name in (
            "base_url",
            "model",
            "api_key_env",
            "temperature",
            "max_tokens",
            "max_concurrency",
            "price_in_per_m",
            "price_out_per_m",
        ):
            if getattr(self, name) is None:
                setattr(self, name, getattr(preset, name))
        self.base_url = self.base_url.rstrip("/")
        if self.max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")

    @property
    def token_param(self) -> str:
        return PRESETS[self.preset].token_param

    def api_key(self) -> str:
        """The key, read from the environment now; servers that need none get a placeholder."""
        if not self.api_key_env:
            return "unused"  # the client library insists on some value; local servers ignore it
        key = os.environ.get(self.api_key_env, "").strip()
        if not key:
            raise ProposerError(
                f"${self.api_key_env} is not set: the {self.model} endpoint at {self.base_url} needs an API key "
                f"(export it, or name another variable with --api-key-env)"
            )
        return key

    def describe(self) -> dict:
        """Every field, for run options and provenance; holds the key's variable name, never the key."""
        return asdict(self)

    def cost_usd(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.price_in_per_m + completion_tokens * self.price_out_per_m) / 1e6


def preset_for(base_url: str | None) -> str:
    """The preset whose endpoint `base_url` is (by host and port); `vllm` for any other server.

    Lets a command line take only `--base-url` and still get the right token parameter,
    temperature, key variable and prices; an unknown server is treated as a local OpenAI-
    compatible one (vLLM, SGLang, llama.cpp) that needs no key unless `--api-key-env` names one.
    """
    if not base_url:
        return DEFAULT_PRESET
    wanted = urlparse(base_url if "://" in base_url else f"http://{base_url}")
    for name, preset in PRESETS.items():
        known = urlparse(preset.base_url)
        if (wanted.hostname, wanted.port) == (known.hostname, known.port):
            return name
    return "ollama" if wanted.port == 11434 else "vllm"
