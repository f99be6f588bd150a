"""The built-in `ops` suite: every problem loads, runs at its CPU size, and is GPU-sized on the GPU."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from kernelscale.problems import list_problem_ids, load_problem
from kernelscale.problems.module import apply_sizes, import_source

OPS_IDS = list_problem_ids("ops")
# On an H100, below ~1M elements a kernel launch costs about as much as the work itself.
MIN_GPU_INPUT_ELEMENTS = 1 << 20
MAX_GPU_BYTES = 4 << 30


def _module(problem, sizes: dict):
    module = import_source(problem.source, problem.file_stem)
    # import_source caches by source hash: reset to the file's own constants before overriding.
    apply_sizes(module, _file_constants(problem))
    apply_sizes(module, sizes)
    return module


def _file_constants(problem) -> dict:
    tree = ast.parse(problem.source)
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name.isupper() and name not in ("CPU_SIZES", "KERNELSCALE"):
                found[name] = ast.literal_eval(node.value)
    return found


def _build(module, device: str, seed: int = 0):
    with torch.device(device):
        torch.manual_seed(seed)
        model = module.Model(*module.get_init_inputs())
        torch.manual_seed(seed + 1)
        inputs = list(module.get_inputs())
    return model, inputs


def test_suite_is_large_enough():
    assert len(OPS_IDS) >= 24, OPS_IDS
    assert all(pid.startswith("ops/") for pid in OPS_IDS)


@pytest.mark.parametrize("pid", OPS_IDS)
def test_problem_metadata(pid):
    problem = load_problem(pid)
    assert problem.kind == "kernelbench"
    assert problem.description, f"{pid}: module docstring (one line) missing"
    assert problem.cpu_sizes, f"{pid}: CPU_SIZES missing"
    constants = _file_constants(problem)
    unknown = set(problem.cpu_sizes) - set(constants)
    assert not unknown, f"{pid}: CPU_SIZES names no module constant: {unknown}"
    assert Path(problem.path).stem == pid.split("/", 1)[1]
    assert "device=" not in problem.source, f"{pid}: get_inputs must not pick a device"


@pytest.mark.parametrize("pid", OPS_IDS)
def test_reference_runs_at_cpu_size(pid):
    problem = load_problem(pid)
    module = _module(problem, problem.sizes_for("cpu"))
    model, inputs = _build(module, "cpu")
    floats = [x for x in inputs if x.is_floating_point()]
    assert floats, f"{pid}: no floating input"
    if problem.dtype:
        assert all(str(x.dtype) == f"torch.{problem.dtype}" for x in floats)
    assert sum(x.numel() for x in inputs) < 200_000, f"{pid}: CPU size too big for the interpreter"
    with torch.no_grad():
        out = model(*inputs)
        scaled = model(*[x * 3 if x.is_floating_point() else x for x in inputs])
    for y in (out, scaled):
        assert isinstance(y, torch.Tensor) and y.is_floating_point()
        assert torch.isfinite(y.float()).all(), f"{pid}: non-finite reference output"
    if out.numel() > 1:
        assert out.float().std() > 0, f"{pid}: constant reference output"


@pytest.mark.parametrize("pid", OPS_IDS)
def test_gpu_size_is_large_without_allocating(pid):
    problem = load_problem(pid)
    module = _module(problem, problem.sizes_for("cuda"))
    model, inputs = _build(module, "meta")
    n_inputs = sum(x.numel() for x in inputs)
    assert n_inputs >= MIN_GPU_INPUT_ELEMENTS, f"{pid}: GPU inputs have only {n_inputs} elements"
    with torch.no_grad():
        out = model(*inputs)  # meta: shapes only
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    total = params + out.numel() * out.element_size() + sum(x.numel() * x.element_size() for x in inputs)
    assert total <= MAX_GPU_BYTES, f"{pid}: {total / 2**30:.1f} GiB of inputs, parameters and output"
    # The CPU override must actually shrink the problem, or the interpreter would crawl.
    assert all(problem.cpu_sizes[k] <= getattr(module, k) for k in problem.cpu_sizes)


def test_sizes_are_read_at_call_time():
    problem = load_problem("ops/softmax")
    module = _module(problem, {"BATCH": 3, "DIM": 5})
    (x,) = module.get_inputs()
    assert tuple(x.shape) == (3, 5)
