"""Seeded inputs and models, made in the oracle from seeds that never leave it.

The candidate's process gets every input set by value (slab.py, masked: masking.py); the
oracle checks the runner's fingerprint of what it staged, so a broken or tampered transfer is
a runtime error, never a wrong verdict on the kernel.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import torch

from kernelscale.verify.masking import bits_of


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
    """Shape, dtype and a checksum of the bits per tensor input: enough to see two processes
    agree. Bits, not values: masked inputs (masking.py) hold NaN and infinity patterns."""
    prints = []
    for x in inputs:
        if isinstance(x, torch.Tensor):
            bits = bits_of(x.detach())
            total = int(bits.to(torch.int64).sum()) if x.numel() else 0
            prints.append([list(x.shape), str(x.dtype), total])
        else:
            prints.append(repr(x)[:64])
    return prints


def same_view(a: torch.Tensor, b: torch.Tensor) -> bool:
    """One view of one memory: the same start, shape, strides and dtype."""
    return (a.data_ptr(), a.shape, a.stride(), a.dtype) == (b.data_ptr(), b.shape, b.stride(), b.dtype)


def outputs_as_list(out: Any) -> list[Any]:
    return list(out) if isinstance(out, (tuple, list)) else [out]


PLAIN_OUTPUTS = (int, float, bool, str, type(None))


def candidate_outputs(out: Any) -> list[Any]:
    """A candidate's forward result as a list, running none of its code: only an exact tuple or
    list is unpacked (a subclass's own __iter__ could compute after the runner's clock stopped,
    with the op recorder closed: `computes_in_its_iter`); anything else is one output, which
    `foreign_output` then refuses."""
    return list(out) if type(out) in (tuple, list) else [out]


def foreign_output(outs: list[Any]) -> str | None:
    """The type name of the first output that is neither exactly a torch.Tensor nor a plain
    value (whatever else the runner did with it could run the candidate's code), else None."""
    for o in outs:
        if type(o) is not torch.Tensor and type(o) not in PLAIN_OUTPUTS:
            return type(o).__name__
    return None


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
