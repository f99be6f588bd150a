"""Attention problems: ids, shapes, the generated problem module, the reference, baselines."""

from __future__ import annotations

import math

import pytest
import torch

from kernelscale.problems import list_problem_ids, load_problem
from kernelscale.problems.attention.baselines import make_baseline, sdpa_mode
from kernelscale.problems.attention.reference import attention_reference
from kernelscale.problems.module import apply_sizes, import_source
from kernelscale.problems.problem import ProblemError

SUITE = [
    "alibi",
    "alibi_causal",
    "causal",
    "document",
    "full",
    "gqa_causal",
    "natten2d",
    "natten2d_dilated",
    "prefix_lm",
    "relative_positional",
    "sliding_window",
    "softcap",
    "softcap_causal",
]


def test_suite_lists_every_variant():
    assert list_problem_ids("attention") == [f"attention/{n}" for n in SUITE]


def test_problem_metadata_and_baselines():
    causal = load_problem("attention/causal")
    assert causal.kind == "attention" and causal.dtype == "bfloat16"
    assert causal.baselines == ("eager", "compile", "flex", "sdpa_cudnn", "sdpa_flash")
    assert causal.gpu_sizes["SHAPE"] == {
        "B": 4,
        "Hq": 16,
        "Hkv": 16,
        "Sq": 4096,
        "Skv": 4096,
        "D": 128,
        "dtype": "bfloat16",
    }
    dense = 4.0 * 4 * 16 * 4096 * 4096 * 128
    assert causal.flops == pytest.approx(dense * (32 * 33 / 2) / 32**2)  # 128-blocks on/below the diagonal
    assert load_problem("attention/full").baselines[-2:] == ("sdpa_cudnn", "sdpa_flash")  # identity score_mod
    assert load_problem("attention/alibi").baselines == ("eager", "compile", "flex")
    assert load_problem("attention/gqa_causal").gpu_sizes["SHAPE"]["Hkv"] == 4


def test_shape_suffix_in_ids():
    p = load_problem("attention/softcap:S=2048,D=64")
    assert p.name == "attention/softcap:S=2048,D=64"
    assert p.gpu_sizes["SHAPE"]["Sq"] == p.gpu_sizes["SHAPE"]["Skv"] == 2048
    assert p.cpu_sizes["SHAPE"]["D"] == 64
    with pytest.raises(ProblemError, match="unknown shape keys"):
        load_problem("attention/causal:X=3")
    with pytest.raises(ProblemError, match="unknown problem"):
        load_problem("attention/nope")


@pytest.mark.parametrize(
    "body, message",
    [
        ("SHAPE = {'S': 5}\ndef mask_mod(b, h, q, kv):\n    return q >= kv\n", "unknown shape keys"),
        ("def make(B, Hq, Hkv, Sq, Skv, D, device):\n    raise RuntimeError('boom')\n", "make.*failed.*boom"),
        (
            "def make(B, Hq, Hkv, Sq, Skv, D, device):\n    return None, None\n",
            "neither score_mod nor mask_mod",
        ),
        ("SHAPE = {'Hq': 6, 'Hkv': 4}\ndef mask_mod(b, h, q, kv):\n    return q >= kv\n", "multiple of Hkv"),
    ],
)
def test_bad_variant_files_give_one_line_errors(tmp_path, body, message):
    path = tmp_path / "variant.py"
    path.write_text(body)
    with pytest.raises(ProblemError, match=message) as info:
        load_problem(str(path))
    assert "\n" not in str(info.value)


def test_generated_problem_module_contract(tmp_path):
    path = tmp_path / "my_variant.py"
    path.write_text(
        "import torch\n\ndef make(B, Hq, Hkv, Sq, Skv, D, device):\n"
        "    ids = torch.randint(0, 3, (Skv,), device=device)\n"
        "    return None, lambda b, h, q, kv: ids[q] == ids[kv]\n"
    )
    problem = load_problem(str(path))
    module = import_source(problem.source, "contract")
    apply_sizes(module, problem.cpu_sizes)
    with torch.device("meta"):  # get_inputs takes the device from the context
        assert all(t.device.type == "meta" for t in module.get_inputs())
    torch.manual_seed(0)
    score_mod, mask_mod, shape = module.get_init_inputs()
    first = mask_mod.__closure__[0].cell_contents.clone()
    torch.manual_seed(1)
    assert not torch.equal(first, module.get_init_inputs()[1].__closure__[0].cell_contents)  # seeds differ
    assert shape["device"] == "cpu" and score_mod is None
    q, k, v = module.get_inputs()
    out = module.Model(score_mod, mask_mod, shape)(q, k, v)
    assert out.shape == q.shape and out.dtype == q.dtype
    assert make_baseline("flex", None, [score_mod, mask_mod, shape]) is None  # a GPU baseline


def _naive(q, k, v, bias, keep):
    """Dense fp32 attention for checking the chunked reference; bias/keep broadcast to scores."""
    g = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(g, 1).float(), v.repeat_interleave(g, 1).float()
    s = q.float() @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) + bias
    s = s.masked_fill(~keep, float("-inf"))
    p = torch.softmax(s, -1).nan_to_num(0.0)
    return p @ v


def test_reference_gqa_rectangular_and_fully_masked_rows():
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 4, 24, 16), torch.randn(2, 2, 40, 16), torch.randn(2, 2, 40, 16)
    mask = lambda b, h, qi, kv: (qi % 5 != 0) & (kv <= qi + h)  # noqa: E731
    score = lambda s, b, h, qi, kv: s + 0.1 * (kv - qi) * (h + 1)  # noqa: E731
    out = attention_reference(q, k, v, score, mask)
    qi, kv = torch.arange(24).view(1, 1, -1, 1), torch.arange(40).view(1, 1, 1, -1)
    h = torch.arange(4).view(1, -1, 1, 1)
    expect = _naive(q, k, v, 0.1 * (kv - qi) * (h + 1), (qi % 5 != 0) & (kv <= qi + h))
    torch.testing.assert_close(out, expect, atol=1e-5, rtol=1e-5)
    assert torch.all(out[:, :, ::5] == 0)  # rows 0, 5, 10, ... see no key: zeros, not NaN


def test_sdpa_expressibility_is_decided_on_the_grid():
    shape = {"B": 1, "Hq": 2, "Sq": 64, "Skv": 64}
    assert sdpa_mode(None, lambda b, h, q, kv: kv <= q, shape, "cpu") == "causal"
    assert sdpa_mode(None, lambda b, h, q, kv: q >= 0, shape, "cpu") == "full"
    assert sdpa_mode(None, lambda b, h, q, kv: kv < q, shape, "cpu") is None
    assert sdpa_mode(lambda s, b, h, q, kv: s * 2, None, shape, "cpu") is None
