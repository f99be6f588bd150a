"""The compiler's front end and search: errors, rewrites, guards, proposals, the strategy."""

from __future__ import annotations

import asyncio

import pytest
import torch

from kernelscale.problems import load_problem
from kernelscale.propose.base import Attempt
from kernelscale.propose.compiler import CompilerError, CompilerProposer
from kernelscale.propose.compiler.generate import compile_mods, generate
from kernelscale.propose.compiler.graph import render
from kernelscale.search.base import Budget
from kernelscale.search.compiler_search import CompilerSearch
from kernelscale.verify.verdict import Verdict
from test_compiler_common import inputs, max_err, run_compiled


def test_unsupported_op_names_itself():
    with pytest.raises(CompilerError, match=r"cannot compile `torch.cumsum` in score_mod"):
        generate(lambda s, b, h, q, kv: torch.cumsum(s, 0), None)


def test_python_control_flow_on_indices_is_refused():
    def mask(b, h, q, kv):
        return q > kv if q > 3 else q < kv

    with pytest.raises(CompilerError, match="torch.where"):
        generate(None, mask)


def test_uncaptured_tensor_is_refused():
    with pytest.raises(CompilerError, match="cannot reach .*made inside the mod"):
        generate(None, lambda b, h, q, kv: torch.arange(8)[q] > 0)


def test_shift_invariance_drops_query_only_terms():
    compiled = compile_mods(lambda s, b, h, q, kv: s + (q - kv) + 0.5 * h, None)
    rw = compiled.rewritten
    assert "q" not in rw.logits.deps and "h" not in rw.logits.deps
    assert {render(d) for d in rw.dropped} == {"mul(q, 1.4426950408889634)", "mul(h, 0.7213475204444817)"}
    source = generate(lambda s, b, h, q, kv: s + (q - kv), None)
    assert "q_idx" not in source.split("def _attn_fwd(")[1].split("def attention(")[0].replace(
        "q_idx = offs_m", ""
    )


def test_alibi_slope_is_hoisted_and_its_query_term_dropped():
    problem = load_problem("attention/alibi")
    from kernelscale.propose.compiler.proposer import compile_problem

    rw = compile_problem(problem).rewritten
    assert render(rw.logits) == (
        "add(mul(qk, mul(__sm_scale, 1.4426950408889634)), mul(kv, mul(slopes[h], 1.4426950408889634)))"
    )


def test_softcap_bounds_give_a_fixed_row_max():
    compiled = compile_mods(lambda s, b, h, q, kv: 30.0 * torch.tanh(s / 30.0), None)
    assert compiled.rewritten.bounds is not None and compiled.features.bounded


def test_guard_on_a_captured_number_used_in_python_control_flow():
    def make(flag):
        def score(s, b, h, q, kv):
            return s * 2.0 if flag > 0 else s

        return score

    q, k, v = inputs(Sq=32, Skv=32, D=16)
    source = generate(make(1), None)
    out, ref, _ = run_compiled(make(1), None, q, k, v, tag="guard")
    assert max_err(out, ref) < 1e-4
    from kernelscale.problems.module import import_source

    module = import_source(source, "guard_module")
    with pytest.raises(ValueError, match="recompile"):
        module.ModelNew(make(-1), None, {"B": 1, "Hq": 2, "Hkv": 2, "Sq": 32, "Skv": 32, "D": 16})


def _fake_attempt(candidate, time_ms):
    return Attempt(candidate, Verdict("correct", time_ms=time_ms, speedup={"flex": 1.0 / time_ms}))


def test_proposer_starts_with_the_default_and_never_repeats():
    problem = load_problem("attention/softcap")
    proposer = CompilerProposer(device="cuda")
    first = asyncio.run(proposer.propose(problem, [], 1))[0]
    config = first.provenance["config"]
    assert config["fast_tanh"] and config["fixed_max"] and (config["block_m"], config["num_warps"]) == (64, 4)
    history = [_fake_attempt(first, 1.0)]
    seen = {tuple(sorted(config.items()))}
    fresh = CompilerProposer(device="cuda")  # a resumed run: only the history knows what was tried
    for _ in range(6):
        (candidate,) = asyncio.run(fresh.propose(problem, history, 1))
        key = tuple(sorted(candidate.provenance["config"].items()))
        assert key not in seen
        seen.add(key)
        history.append(_fake_attempt(candidate, 2.0))
    cpu = asyncio.run(CompilerProposer(device="cpu").propose(problem, [], 4))
    assert not any(c.provenance["config"]["fast_tanh"] for c in cpu)  # no inline PTX on the interpreter


def test_search_runs_workers_concurrently_within_the_attempt_budget():
    problem = load_problem("attention/causal")
    running, peak, configs = 0, 0, []

    async def evaluate(candidate):
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        configs.append(tuple(sorted(candidate.provenance["config"].items())))
        return _fake_attempt(candidate, 1.0 + len(configs) * 0.01)

    budget = Budget(attempts=7)
    asyncio.run(CompilerSearch(workers=3).run(problem, CompilerProposer(), evaluate, budget, []))
    assert len(configs) == 7 == len(set(configs)) and budget.used_attempts == 7
    assert peak == 3
