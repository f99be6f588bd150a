"""The LLM proposer: prompt from the problem and the history, ask the model, take its last code block.

A reply without code still becomes a Candidate: `code == ""` and `provenance["no_code"]` says
why ("your answer contained no ```python block", plus a hint when the reply hit the length
limit). The strategy hands it to `evaluate` like any other, so it is stored and counted; the loop
records it without running the verifier through `no_code_verdict` (a `compile_error` carrying
that reason), and the next feedback prompt tells the model what was missing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import fields

from kernelscale.problems.problem import Problem
from kernelscale.propose.base import Attempt, Candidate, no_code_verdict  # noqa: F401 (re-exported)
from kernelscale.propose.llm.client import Completion, LLMClient
from kernelscale.propose.llm.options import LLMOptions, preset_for
from kernelscale.propose.llm.parse import extract_code, no_code_reason
from kernelscale.propose.llm.prompts import (
    GPUFacts,
    PromptSettings,
    crossover_prompt,
    feedback_prompt,
    first_prompt,
)
from kernelscale.propose.llm.spend import DIFFERENT_APPROACH, SpendGuard, SpendLimits


class LLMProposer:
    """Implements `Proposer`; `propose_crossover` is the extra that `evolve` uses when present."""

    name = "llm"

    def __init__(
        self,
        options: LLMOptions | None = None,
        *,
        language: str = "triton",
        gpu: GPUFacts | None = None,
        device: str = "cuda",
        example: str | None = "auto",
        start_kernel: str | None = None,
        spend: SpendLimits | None = None,
    ):
        self.options = options or LLMOptions()
        self.settings = PromptSettings(
            language=language,
            gpu=gpu or GPUFacts(),
            interpreter=device == "cpu",
            example=example,
            start_kernel=start_kernel,
        )
        self.client = LLMClient(self.options)
        self.spend = SpendGuard(spend)

    async def propose(self, problem: Problem, history: Sequence[Attempt], n: int = 1) -> list[Candidate]:
        """Empty history: the first prompt. Otherwise feedback on the history's last attempt."""
        self.spend.remember(a.candidate.code for a in history)
        if not history:
            return await self._ask(first_prompt(problem, self.settings), "first", [], n)
        base = next((a for a in reversed(history) if a.candidate.code.strip()), None)
        parents = [base.candidate.code_hash] if base else []
        return await self._ask(feedback_prompt(problem, history, self.settings), "feedback", parents, n)

    async def propose_crossover(
        self, problem: Problem, parents: Sequence[Attempt], n: int = 1
    ) -> list[Candidate]:
        """One kernel combining the given (correct) parents."""
        prompt = crossover_prompt(problem, parents, self.settings)
        return await self._ask(prompt, "crossover", [p.candidate.code_hash for p in parents], n)

    async def _ask(self, prompt: str, kind: str, parents: list[str], n: int) -> list[Candidate]:
        messages = [{"role": "user", "content": prompt}]
        tasks = [asyncio.ensure_future(self._new_answer(messages, kind, parents)) for _ in range(max(1, n))]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:  # one failed (or we were cancelled): the others' answers are not wanted
                task.cancel()
            raise

    async def _new_answer(self, messages: list[dict], kind: str, parents: list[str]) -> Candidate:
        """One answer whose code was never seen in this run; a duplicate is re-asked only after a
        back-off, hotter and with a request for another approach (SpendGuard stops it when stuck).
        The candidate's usage adds up every request it took, with their count as `calls`."""
        asked, temperature, spent, calls = messages, None, {}, 0
        while True:
            self.spend.reserve_call()
            reply = await self.client.complete(asked, temperature)
            self.spend.record(reply.usage)
            calls += 1
            spent = _add_usage(spent, reply.usage)
            candidate = self._candidate(asked, reply, kind, parents)
            if self.spend.is_new(candidate.code):
                candidate.usage = dict(reply.usage) | spent | {"calls": calls}
                return candidate
            temperature = await self.spend.after_duplicate(temperature or self.options.temperature)
            asked = messages + [
                {"role": "assistant", "content": f"```python\n{candidate.code}```"},
                {"role": "user", "content": DIFFERENT_APPROACH},
            ]

    def _candidate(self, messages: list[dict], reply: Completion, kind: str, parents: list[str]) -> Candidate:
        provenance = {
            "prompt_kind": kind,
            "messages": messages,
            "response": reply.raw,
            "reasoning": reply.reasoning,
            "answer": reply.answer,
            "model": reply.model,
            "endpoint": self.options.base_url,
            "preset": self.options.preset,
            "finish_reason": reply.finish_reason,
        }
        code = extract_code(reply.answer)
        if code is None:
            provenance["no_code"] = no_code_reason(reply.answer, reply.finish_reason, self.options.max_tokens)
        return Candidate(
            code=code or "",
            proposer=self.name,
            parents=parents,
            provenance=provenance,
            usage=dict(reply.usage),
        )


def _add_usage(total: dict, usage: dict) -> dict:
    """Sum the token and cost counters of two usage records (other fields are the last reply's)."""
    keys = ("prompt_tokens", "completion_tokens", "reasoning_tokens", "total_tokens", "cost_usd")
    return {k: round((total.get(k) or 0) + (usage.get(k) or 0), 6) for k in keys}


def make_llm_proposer(options: LLMOptions | None = None, **settings) -> LLMProposer:
    """An LLMProposer from LLMOptions fields and proposer settings mixed as keywords.

    Keywords set to None are ignored, so a command line can pass its unset flags through:
    `make_llm_proposer(model=args.model, base_url=args.base_url, api_key_env=args.api_key_env,
    device="cpu")`. Without a preset, a base_url picks its own (`preset_for`); neither: `nim`.
    """
    settings = {k: v for k, v in settings.items() if v is not None}
    option_names = {f.name for f in fields(LLMOptions)}
    chosen = {k: settings.pop(k) for k in list(settings) if k in option_names}
    if options is not None and chosen:
        raise TypeError(f"pass LLMOptions or its fields ({sorted(chosen)}), not both")
    if "preset" not in chosen and "base_url" in chosen:
        chosen["preset"] = preset_for(chosen["base_url"])  # `--base-url` alone picks the right defaults
    return LLMProposer(options or LLMOptions(**chosen), **settings)
