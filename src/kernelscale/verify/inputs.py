"""Seeded inputs and models, made the same way in the oracle and in the candidate's process.

Both processes call `make_inputs` with the same seed on the same device; the oracle checks
the runner's fingerprint of them so a nondeterministic `get_inputs` is caught, not blamed on
the candidate.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import torch


def torch_device(device: str) -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if device == "cuda" else torch.device(device)


def make_model(
    module: ModuleType, class_name: str, init_seed: int, device: str, init_module: ModuleType | None = None
):
    """`cls(*get_init_inputs())` with the seed set first, as KernelBench does, so parameters match."""
    init_module = init_module or module
    with torch.device(torch_device(device)):
        torch.manual_seed(init_seed)
        init_inputs = list(init_module.get_init_inputs())
        torch.manual_seed(init_seed)
        model = getattr(module, class_name)(*init_inputs)
    if isinstance(model, torch.nn.Module):
        model = model.to(torch_device(device)).eval()
    return model, init_inputs


def make_inputs(module: ModuleType, seed: int, scale: float, device: str) -> list[Any]:
    with torch.device(torch_device(device)):
        torch.manual_seed(seed)
        inputs = list(module.get_inputs())
    moved = [x.to(torch_device(device)) if isinstance(x, torch.Tensor) else x for x in inputs]
    if scale != 1.0:
        moved = [x * scale if _is_float(x) else x for x in moved]
    return moved


def clone_inputs(inputs: list[Any]) -> list[Any]:
    return [x.clone() if isinstance(x, torch.Tensor) else x for x in inputs]


def fingerprint(inputs: list[Any]) -> list:
    """Shape, dtype and a float64 checksum per tensor input: enough to see two processes agree."""
    prints = []
    for x in inputs:
        if isinstance(x, torch.Tensor):
            total = float(x.detach().double().sum()) if x.numel() else 0.0
            prints.append([list(x.shape), str(x.dtype), round(total, 6)])
        else:
            prints.append(repr(x)[:64])
    return prints


def outputs_as_list(out: Any) -> list[Any]:
    return list(out) if isinstance(out, (tuple, list)) else [out]


def poison(tensors: list[Any]) -> None:
    """Fill tensors about to be freed with NaN, so memory a later `torch.empty` reuses is garbage."""
    for x in tensors:
        if isinstance(x, torch.Tensor) and x.numel():
            with torch.no_grad():
                if x.is_floating_point():
                    x.fill_(float("nan"))
                elif x.dtype != torch.bool:
                    x.fill_(-7)


def poison_allocator(nbytes: int, device: str) -> None:
    """Allocate, fill with NaN and free a block, so the caching allocator hands garbage out next."""
    if device != "cuda" or nbytes <= 0:
        return
    block = torch.full((nbytes // 4 + 1,), float("nan"), dtype=torch.float32, device=torch_device(device))
    del block


def tensor_bytes(values: list[Any]) -> int:
    return sum(x.numel() * x.element_size() for x in values if isinstance(x, torch.Tensor))


def _is_float(x: Any) -> bool:
    return isinstance(x, torch.Tensor) and x.is_floating_point()
