"""The exported module places its block schedule where the user's tensors are: on
`shape["device"]` when given, and on the inputs' device when called with tensors elsewhere."""

from __future__ import annotations

import torch

from kernelscale.problems.attention.reference import attention_reference
from kernelscale.problems.module import import_source
from kernelscale.propose.compiler.generate import generate
from test_compiler_common import SMALL, inputs, max_err  # sets TRITON_INTERPRET first


def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


SHAPE = {"B": 1, "Hq": 2, "Hkv": 2, "Sq": 64, "Skv": 64, "D": 32}


def _module(tag: str):
    return import_source(generate(None, causal, SMALL), f"test_device_{tag}")


def test_the_schedule_is_built_on_the_shape_s_device():
    model = _module("shape").ModelNew(None, causal, {**SHAPE, "device": "meta"})
    assert model.sched_1_2_64_64_full_num.device.type == "meta"  # not the default device


def test_a_module_whose_schedule_sits_elsewhere_moves_it_to_the_inputs():
    model = _module("move").ModelNew(None, causal, SHAPE)
    moved = []
    original = model.to

    def recording_to(device):  # stands in for the CUDA case: records the move, then performs it
        moved.append(str(device))
        return original(device)

    model.to = recording_to
    q, k, v = inputs()
    out = model(q, k, v)  # same device: nothing moves
    assert moved == []
    # One buffer "on another device" (meta stands in for a GPU/CPU mismatch without a GPU).
    name = "sched_1_2_64_64_full_runs"  # the schedule of SHAPE
    model._buffers[name] = torch.empty_like(model._buffers[name], device="meta")
    try:
        model(q, k, v)
    except NotImplementedError:
        pass  # a meta tensor cannot be copied back; the point is that the move was made
    assert moved == ["cpu"]
    assert max_err(out, attention_reference(q, k, v, None, causal)) < 1e-4
