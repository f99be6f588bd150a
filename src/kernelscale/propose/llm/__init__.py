"""The LLM proposer: any OpenAI-compatible endpoint (NIM, DeepSeek, OpenAI, vLLM, Ollama).

Names resolve on first use so that importing the package does not import the openai client.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "LLMOptions": "options",
    "PRESETS": "options",
    "preset_for": "options",
    "LLMProposer": "proposer",
    "make_llm_proposer": "proposer",
    "no_code_verdict": "proposer",
    "GPUFacts": "prompts",
    "PromptSettings": "prompts",
    "LLMClient": "client",
    "Completion": "client",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
