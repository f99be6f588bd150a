"""Reasoning/answer split and code extraction on the shapes real servers and models produce."""

import pytest

from kernelscale.propose.llm.parse import extract_code, fenced_blocks, no_code_reason, split_reasoning

MODULE = "import torch\n\nclass ModelNew(torch.nn.Module):\n    pass\n"


@pytest.mark.parametrize(
    "content, field, reasoning, answer",
    [
        ("<think>\nplan A\n</think>\n\nanswer", None, "plan A", "answer"),
        ("plan A\n</think>\nanswer", None, "plan A", "answer"),  # R1's template ate the opening tag
        ("answer", "plan A", "plan A", "answer"),  # reasoning_content / reasoning field
        ("<think>plan B</think>answer", "plan A", "plan A\n\nplan B", "answer"),  # both at once
        ("<think>\nstill thinking when cut off", None, "still thinking when cut off", ""),
        ("just an answer", None, "", "just an answer"),
        (None, None, "", ""),
    ],
)
def test_split_reasoning(content, field, reasoning, answer):
    assert split_reasoning(content, field) == (reasoning, answer)


def test_last_python_block_is_the_candidate():
    text = f"first try:\n```python\nold = 1\n```\nbetter:\n```python\n{MODULE}```\n"
    assert extract_code(text) == MODULE


def test_prefers_the_block_defining_modelnew_over_a_trailing_snippet():
    text = f"```python\n{MODULE}```\nUse it like this:\n```python\nm = ModelNew()\n```\n"
    assert extract_code(text) == MODULE


def test_py_tag_and_untagged_modelnew_block_count():
    assert extract_code(f"```py\n{MODULE}```") == MODULE
    assert extract_code(f"```\n{MODULE}```") == MODULE
    assert extract_code("```\nsome shell output\n```") is None  # untagged without ModelNew: not code
    assert extract_code(f"```cpp\n{MODULE}```") is None


def test_fences_of_other_lengths_and_nested_backticks():
    inner = 'src = """\n```cuda\n__global__ void k() {}\n```\n"""\n'
    text = f"````python\n{MODULE}{inner}````\n"
    assert extract_code(text) == MODULE + inner


def test_unclosed_block_is_not_code():
    text = f"```python\n{MODULE}"
    assert extract_code(text) is None
    assert not fenced_blocks(text)[0].closed
    assert "never closed" in no_code_reason(text, "stop")


def test_no_code_reason_explains_the_length_limit():
    assert no_code_reason("Here is the idea.", "stop") == "your answer contained no ```python block"
    cut = no_code_reason("", "length", max_tokens=16384)
    assert (
        cut.startswith("your answer contained no ```python block") and "16384" in cut and "reasoning" in cut
    )
