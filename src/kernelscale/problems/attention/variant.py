"""Attention variant files: loading them, their shapes, their mods and inputs.

A variant file defines `score_mod(score, b, h, q_idx, kv_idx)` and/or `mask_mod(b, h, q_idx,
kv_idx)` at module level, or a factory `make(B, Hq, Hkv, Sq, Skv, D, device)` returning
`(score_mod, mask_mod)`; an optional `SHAPE` dict overrides parts of the default shape, and an
optional `CPU_SHAPE` dict the small shape used under the CPU interpreter.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import torch

from kernelscale.problems.problem import ProblemError

SHAPE_KEYS = ("B", "Hq", "Hkv", "Sq", "Skv", "D", "dtype")
DEFAULT_SHAPE = {"B": 4, "Hq": 16, "Hkv": 16, "Sq": 4096, "Skv": 4096, "D": 128, "dtype": "bfloat16"}
# Shortcuts accepted in problem ids (`attention/causal:S=2048,H=8`): one value for both sides.
SHAPE_ALIASES = {"S": ("Sq", "Skv"), "H": ("Hq", "Hkv")}
DTYPES = ("float32", "bfloat16", "float16")
CPU_MAX = {"B": 1, "Sq": 256, "Skv": 256, "D": 64}


def load_variant_module(path: str | Path) -> ModuleType:
    """Import a variant file by path, registered in sys.modules before it runs.

    Registered because FlexAttention's tracing imports a score_mod's module by name.
    """
    path = Path(path).resolve()
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:8]
    name = f"_ks_variant_{path.stem.replace('-', '_')}_{digest}"
    module = sys.modules.get(name)
    if module is not None:
        return module
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ProblemError(f"{path}: not an importable Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise ProblemError(f"{path}: importing the variant failed: {type(exc).__name__}: {exc}") from None
    return module


def parse_shape_suffix(text: str) -> dict:
    """`S=2048,D=64` -> {"Sq": 2048, "Skv": 2048, "D": 64}; S and H set both sides."""
    shape: dict = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not value:
            raise ProblemError(f"bad shape item {item!r}: use KEY=VALUE, e.g. S=2048,D=64")
        for target in SHAPE_ALIASES.get(key, (key,)):
            shape[target] = value if target == "dtype" else _int(key, value)
    return validate_shape(shape, where="shape suffix", partial=True)


def _int(key: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ProblemError(f"shape {key}={value!r} is not an integer") from None


def validate_shape(shape: dict, where: str, partial: bool = False) -> dict:
    unknown = set(shape) - set(SHAPE_KEYS)
    if unknown:
        raise ProblemError(f"{where}: unknown shape keys {sorted(unknown)} (known: {', '.join(SHAPE_KEYS)})")
    for key, value in shape.items():
        if key == "dtype":
            if str(value).removeprefix("torch.") not in DTYPES:
                raise ProblemError(f"{where}: dtype {value!r} is not one of {', '.join(DTYPES)}")
        elif not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ProblemError(f"{where}: {key}={value!r} must be a positive integer")
    shape = {k: (str(v).removeprefix("torch.") if k == "dtype" else v) for k, v in shape.items()}
    if not partial and shape["Hq"] % shape["Hkv"]:
        raise ProblemError(f"{where}: Hq={shape['Hq']} is not a multiple of Hkv={shape['Hkv']} (GQA)")
    return shape


def variant_shapes(module: ModuleType, path: Path, override: dict | None) -> tuple[dict, dict]:
    """(gpu shape, cpu shape) of a variant: defaults, then its SHAPE, then the id's suffix."""
    own = getattr(module, "SHAPE", {}) or {}
    if not isinstance(own, dict):
        raise ProblemError(f"{path}: SHAPE must be a dict of {', '.join(SHAPE_KEYS)}")
    gpu = {**DEFAULT_SHAPE, **validate_shape(dict(own), f"{path}: SHAPE", partial=True)}
    gpu = validate_shape({**gpu, **(override or {})}, f"{path}: shape")
    cpu_own = getattr(module, "CPU_SHAPE", None)
    cpu = _small_shape(gpu)
    if cpu_own:
        cpu = validate_shape({**cpu, **dict(cpu_own)}, f"{path}: CPU_SHAPE")
    return gpu, cpu


def _small_shape(gpu: dict) -> dict:
    """A shape the interpreter runs in seconds with the same head grouping and Sq:Skv ratio."""
    group = gpu["Hq"] // gpu["Hkv"]
    skv = min(gpu["Skv"], CPU_MAX["Skv"])
    sq = min(gpu["Sq"], max(16, round(gpu["Sq"] * skv / gpu["Skv"])))
    hkv = min(gpu["Hkv"], 1 if group > 2 else 2 // group)
    return {
        "B": min(gpu["B"], CPU_MAX["B"]),
        "Hq": hkv * group,
        "Hkv": hkv,
        "Sq": sq,
        "Skv": skv,
        "D": min(gpu["D"], CPU_MAX["D"]),
        "dtype": gpu["dtype"],
    }


def resolve_mods(module: ModuleType, shape: dict, device, path: str | Path = "variant"):
    """(score_mod, mask_mod) of a variant at a shape; raises ProblemError with one line."""
    make = getattr(module, "make", None)
    if make is not None:
        args = [shape[k] for k in ("B", "Hq", "Hkv", "Sq", "Skv", "D")]
        try:
            # make() runs as its contract says: given its device and nothing ambient. Callers may
            # sit inside `with torch.device(...)`; under it a CPU torch.Generator, or a tensor the
            # variant means to build on the CPU and move, would land on that device instead.
            with torch.device("cpu"):
                mods = make(*args, torch.device(device))
        except Exception as exc:
            raise ProblemError(
                f"{path}: make(B, Hq, Hkv, Sq, Skv, D, device) failed: {type(exc).__name__}: {exc}"
            ) from None
        if not (isinstance(mods, (tuple, list)) and len(mods) == 2):
            raise ProblemError(f"{path}: make() must return (score_mod, mask_mod), got {type(mods).__name__}")
        score_mod, mask_mod = mods
    else:
        score_mod, mask_mod = getattr(module, "score_mod", None), getattr(module, "mask_mod", None)
    for label, fn in (("score_mod", score_mod), ("mask_mod", mask_mod)):
        if fn is not None and not callable(fn):
            raise ProblemError(f"{path}: {label} is not callable")
    if score_mod is None and mask_mod is None:
        raise ProblemError(
            f"{path}: defines neither score_mod nor mask_mod (nor a make() returning one); a variant "
            "file defines score_mod(score, b, h, q_idx, kv_idx) and/or mask_mod(b, h, q_idx, kv_idx)"
        )
    return score_mod, mask_mod


def full_shape(shape: dict) -> dict:
    return validate_shape({**DEFAULT_SHAPE, **shape}, "SHAPE")


def load_variant_source(source: str, label: str) -> ModuleType:
    """A variant shipped by value (its text), for a process that cannot read the user's file:
    the candidate's sandbox has its own /tmp and sees no home folders."""
    name = f"_ks_variant_src_{hashlib.sha256(source.encode()).hexdigest()[:12]}"
    module = sys.modules.get(name)
    if module is not None:
        return module
    module = ModuleType(name)
    module.__file__ = f"<variant {label}>"
    sys.modules[name] = module  # FlexAttention's tracing imports a score_mod's module by name
    try:
        exec(compile(source, module.__file__, "exec"), module.__dict__)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise ProblemError(f"{label}: importing the variant failed: {type(exc).__name__}: {exc}") from None
    return module


def init_inputs_from_source(source: str, label: str, shape: dict) -> list:
    """`init_inputs` for a variant shipped as text (see load_variant_source)."""
    shape = full_shape(shape)
    device = torch.get_default_device()
    score_mod, mask_mod = resolve_mods(load_variant_source(source, label), shape, device, label)
    return [score_mod, mask_mod, {**shape, "device": str(device)}]


def init_inputs(path: str, shape: dict) -> list:
    """[score_mod, mask_mod, shape] for Model/ModelNew, made on the current default device.

    The verifier calls this inside `with torch.device(dev):` after seeding, so captured tensors
    drawn in make() (document ids...) differ per seed; make() itself gets `dev` as its argument
    and runs without that ambient device (see resolve_mods).
    """
    shape = full_shape(shape)
    device = torch.get_default_device()
    score_mod, mask_mod = resolve_mods(load_variant_module(path), shape, device, path)
    return [score_mod, mask_mod, {**shape, "device": str(device)}]


def make_inputs(shape: dict) -> list[torch.Tensor]:
    """q (B,Hq,Sq,D), k and v (B,Hkv,Skv,D), standard normal, on the default device."""
    s = full_shape(shape)
    dtype = getattr(torch, s["dtype"])
    q = torch.randn(s["B"], s["Hq"], s["Sq"], s["D"], dtype=dtype)
    k = torch.randn(s["B"], s["Hkv"], s["Skv"], s["D"], dtype=dtype)
    v = torch.randn(s["B"], s["Hkv"], s["Skv"], s["D"], dtype=dtype)
    return [q, k, v]


def large_scores(inputs: list, seed: int) -> list:
    """The attention problems' own edge trial: one coordinate (chosen by `seed`) of a random
    half of the keys set to a power of two near 128 sqrt(D), the same coordinate of the others
    to 0, so that in each row those keys' logits stand q's coordinate times 128 to 256 above
    (or below) the others': hundreds of units, past exp's range of 88.7 on about half the rows.
    Randn inputs, even the verifier's shifted ones, keep every logit within a few units, so a
    kernel that takes exp of the raw logits, without its running max, passed every generic
    trial (`attention_without_max`). Two levels, not one offset common to every key, which a
    kernel taking logits relative to a fixed key's would cancel (`attention_from_the_first_key`).
    Within each level the softmax is that of the other coordinates, not sharpened (unlike
    scaling q and k), so an honest bf16 kernel's rounding is that of a plain draw."""
    q, k, v = inputs
    D = k.shape[-1]
    generator = torch.Generator().manual_seed(seed)
    raised = torch.randint(0, 2, (k.shape[-2],), generator=generator).to(k.device, k.dtype)
    k = k.clone()
    k[..., seed % D] = raised * 2.0 ** math.ceil(math.log2(128 * math.sqrt(D)))  # exact in any dtype
    return [q, k, v]


def default_scale(D: int) -> float:
    return 1.0 / math.sqrt(D)
