"""What the prompts tell the model: the problem, the rules, the GPU, and every part of a verdict."""

import pytest

from kernelscale.problems.loader import load_problem
from kernelscale.propose.base import Attempt, Candidate
from kernelscale.propose.llm.examples import choose_example
from kernelscale.propose.llm.prompts import (
    GPUFacts,
    PromptSettings,
    _environment,
    crossover_prompt,
    feedback_prompt,
    first_prompt,
)
from kernelscale.verify.screen import RULES
from kernelscale.verify.verdict import Verdict

KERNEL = "import torch\n\nclass ModelNew(torch.nn.Module):\n    def forward(self, x):\n        return torch.softmax(x, -1)\n"


@pytest.fixture(scope="module")
def softmax():
    return load_problem("ops/softmax")


def attempt(verdict: Verdict, code: str = KERNEL, **provenance) -> Attempt:
    return Attempt(Candidate(code, "llm", provenance=provenance), verdict)


def test_every_template_compiles():
    env = _environment()
    names = env.list_templates()
    assert {"first.md.j2", "feedback.md.j2", "crossover.md.j2"} <= set(names)
    for name in names:
        env.get_template(name)


def test_first_prompt_has_problem_rules_gpu_example_and_format(softmax):
    text = first_prompt(softmax, PromptSettings())
    assert softmax.source.strip() in text
    for name, description in RULES.items():
        assert f"`{name}`: {description}" in text
    assert "NVIDIA H100" in text and "132 SMs" in text and "3350 GB/s" in text and "989 TFLOP/s" in text
    assert "@triton.jit" in text and "ONE ```python block" in text
    assert "`eager` (the reference as written)" in text and "atol = rtol = 0.0001" in text
    assert "CPU interpreter" not in text
    example = choose_example(softmax)
    assert example.stem != "softmax"  # never the problem's own solution
    assert f"a different problem: `{example.stem}`" in text and example.code.strip() in text


def test_first_prompt_options(softmax, tmp_path):
    gpu = GPUFacts(name="NVIDIA H200", sm_count=132, mem_bandwidth_gbs=4800, bf16_tflops=989)
    own_example = tmp_path / "mine.py"
    own_example.write_text("# my example\n")
    text = first_prompt(
        softmax,
        PromptSettings(
            language="cuda",
            gpu=gpu,
            interpreter=True,
            example=str(own_example),
            start_kernel="# start here\n",
        ),
    )
    assert "load_inline" in text and "4800 GB/s" in text and "NVIDIA H200" in text
    assert "CPU interpreter" in text and "BATCH=37, DIM=300" in text
    assert "# my example" in text and "# start here" in text
    assert "example of the expected form" not in first_prompt(softmax, PromptSettings(example="none"))
    assert "matmul_bf16" in first_prompt(softmax, PromptSettings(example="matmul_bf16"))
    with pytest.raises(ValueError, match="no example"):
        first_prompt(softmax, PromptSettings(example="no_such_example"))
    with pytest.raises(ValueError, match="unknown kernel language"):
        PromptSettings(language="fortran")


def test_torch_fallback_rule_is_dropped_when_the_problem_allows_torch(softmax):
    text = first_prompt(softmax.with_options(allow_torch=True), PromptSettings(example="none"))
    assert "`torch_fallback`" not in text and "`no_kernel`" in text


def test_attention_prompt_shows_the_variant_by_file_name():
    problem = load_problem("attention/alibi")
    text = first_prompt(problem, PromptSettings(example="none", start_kernel="# compiler's best\n"))
    assert (
        "### The attention variant (alibi.py)" in text and "slopes[h] * (kv_idx - (q_idx + offset))" in text
    )
    assert "# compiler's best" in text and "already passes the verifier" in text
    assert "`flex` (FlexAttention" in text


def test_feedback_on_a_compile_error_carries_the_log_tail(softmax):
    log = "\n".join(f"line {i}" for i in range(100)) + "\nSyntaxError: '(' was never closed"
    verdict = Verdict("compile_error", reason="SyntaxError: '(' was never closed", log_tail=log)
    text = feedback_prompt(softmax, [attempt(verdict, "bad(\n")], PromptSettings())
    assert "bad(" in text and "## The verifier's verdict: compile_error" in text
    assert "SyntaxError: '(' was never closed" in text and "line 99" in text
    assert "line 10\n" not in text  # only the tail
    assert "fix it" in text


def test_feedback_on_a_rejection_names_the_rule_and_the_line(softmax):
    verdict = Verdict("rejected", reason="torch.softmax called in forward", rule="torch_fallback", line=5)
    text = feedback_prompt(softmax, [attempt(verdict)], PromptSettings())
    assert "rule `torch_fallback`" in text and RULES["torch_fallback"] in text
    assert "line 5: `return torch.softmax(x, -1)`" in text


def test_feedback_on_a_mismatch_gives_the_error_statistics(softmax):
    verdict = Verdict(
        "incorrect",
        reason="outputs differ",
        max_abs_error=0.25,
        max_rel_error=1.5,
        worst_index=[3, 7],
        failing_trial="scaled inputs (x3)",
    )
    text = feedback_prompt(softmax, [attempt(verdict)], PromptSettings())
    assert "max abs error 0.25, max rel error 1.5" in text
    assert "index [3, 7]" in text and "scaled inputs (x3)" in text


def test_feedback_on_a_correct_kernel_gives_every_baseline_and_asks_for_speed(softmax):
    verdict = Verdict(
        "correct",
        time_ms=0.5,
        baselines={"eager": 0.75, "compile": 0.4},
        speedup={"eager": 1.5, "compile": 0.8},
    )
    history = [attempt(Verdict("compile_error", reason="boom")), attempt(verdict)]
    text = feedback_prompt(softmax, history, PromptSettings())
    assert "your kernel: 0.5000 ms" in text
    assert (
        "eager: 0.7500 ms (your speedup 1.50x)" in text and "compile: 0.4000 ms (your speedup 0.80x)" in text
    )
    assert "#1 compile_error: boom" in text and "#2 correct" in text
    assert "Best correct so far: 0.5000 ms, 0.80x over the strongest baseline" in text
    assert "Make it faster" in text


def test_interpreted_timings_are_not_presented_as_performance(softmax):
    verdict = Verdict("correct", time_ms=40.0, interpreted=True)
    text = feedback_prompt(softmax, [attempt(verdict)], PromptSettings(interpreter=True))
    assert "not a performance number" in text and "40.0000 ms" not in text and "Best correct" not in text


def test_feedback_after_an_answer_without_code(softmax):
    failed = attempt(Verdict("incorrect", reason="outputs differ"))
    empty = Attempt(
        Candidate("", "llm", provenance={"no_code": "your answer contained no ```python block"}),
        Verdict("compile_error", reason="your answer contained no ```python block"),
    )
    text = feedback_prompt(softmax, [failed, empty], PromptSettings())
    assert "It could not be verified: your answer contained no ```python block" in text
    assert KERNEL.strip() in text and "outputs differ" in text  # the last attempt that had code
    alone = feedback_prompt(softmax, [empty], PromptSettings())
    assert "no ```python block" in alone and "## Your previous attempt" not in alone


def test_crossover_shows_both_parents(softmax):
    fast = attempt(Verdict("correct", time_ms=0.4, baselines={"eager": 0.8}, speedup={"eager": 2.0}), "# A\n")
    slow = attempt(
        Verdict("correct", time_ms=0.6, baselines={"eager": 0.8}, speedup={"eager": 1.33}), "# B\n"
    )
    text = crossover_prompt(softmax, [fast, slow], PromptSettings())
    assert "## Implementation A" in text and "## Implementation B" in text
    assert "# A" in text and "# B" in text and "0.4000 ms" in text and "0.6000 ms" in text
