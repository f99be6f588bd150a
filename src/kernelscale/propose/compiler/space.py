"""The compiler's search space: one `Config` is one kernel the compiler can emit.

Tiles, warps and pipeline depth are the usual Triton knobs; the rest are the compiler's own:
fast_tanh (tanh.approx.f32, GPU only), fixed_max (a bounded score's upper bound as the row max),
split_loops (full KV blocks in a loop that skips the mask), reverse_m (heaviest query blocks
first), use_schedule (the block schedule at all) and rel_tables (costly terms of the distance
kv − q computed once per call into a table, see tables.py). decode selects the split-KV kernel for few
query rows against a long cache (block_m is then the most packed query rows per tile, and
num_splits the KV splits per head, 0 meaning enough to fill the GPU). backend "fa4" selects
FlashAttention-4's kernel with generated hooks (generate_fa4.py), whose own knobs are
native_mask, fa4_tile_m, fa4_pack_gqa and fa4_direct; backend "gluon" a warp-specialised Hopper
kernel of our own in Triton's Gluon dialect (generate_gluon.py). bias_prune (Triton prefill only) skips KV
blocks whose softmax weight a bias of the indices provably makes negligible (prune.py). In a probe on an H200 with
triton 3.6, TMA descriptors in the Triton kernel were 2-18% slower than pointer loads and Triton's
automatic warp specialisation crashed or hung: neither is in the Triton backend's space
(docs/perf-notes.md); the Gluon backend writes both out by hand.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, fields, replace

from kernelscale.propose.compiler.errors import CompilerError

PREFILL_BLOCK_M = (64, 128)
CHOICES = {
    "block_m": (16, 32, 64, 128),
    "block_n": (64, 128),
    "num_warps": (4, 8),
    "num_stages": (2, 3, 4),
    "fast_tanh": (False, True),
    "fixed_max": (False, True),
    "split_loops": (True, False),
    "reverse_m": (False, True),
    "use_schedule": (True, False),
    "decode": (False, True),
    "num_splits": (0, 4, 8, 16, 32, 64),
    "rel_tables": (True, False),
    "backend": ("triton", "fa4", "gluon"),
    "native_mask": (True, False),
    "fa4_tile_m": (0, 64, 128),
    "fa4_tile_n": (0, 176, 192),
    "fa4_pack_gqa": (0, 1, 2),
    "fa4_direct": (True, False),
    "bias_prune": (False, True),
}
# A shape is decode-shaped when its few query rows (times the heads sharing a KV head) fit one
# tile and the cache is long: streaming K and V once then bounds the time, not the dot products.
DECODE_MAX_SQ = 64
DECODE_MIN_RATIO = 16


@dataclass(frozen=True)
class Config:
    block_m: int = 128
    block_n: int = 64
    num_warps: int = 8
    num_stages: int = 3
    fast_tanh: bool = False
    fixed_max: bool = False
    split_loops: bool = True
    reverse_m: bool = False
    use_schedule: bool = True
    decode: bool = False
    num_splits: int = 0
    rel_tables: bool = True  # costly terms of the distance kv − q tabulated once per call (tables.py)
    # "fa4": FlashAttention-4's CuTe DSL kernel with generated hooks (generate_fa4.py); of the
    # knobs above it reads only fast_tanh. native_mask: FA4's own causal / window masking when
    # the mask is exactly that on the shape.
    backend: str = "triton"
    native_mask: bool = True
    # FA4's query tile (0: FA4's own choice; its KV tile stays 128, the block sparsity's) and
    # pack-GQA (0: FA4's choice, 1: the heads sharing a KV head packed into one tile, 2: not)
    fa4_tile_m: int = 0
    fa4_pack_gqa: int = 0
    # FA4's KV tile where the call has no block sparsity (0: 128). FlashAttention-3's own Hopper
    # table takes 176 keys at head dim 128 without a causal mask; FA4's takes 128 everywhere. On
    # an H200 (full and softcap, D=128) 176 and 192 keys were 2-7% slower than 128: a neighbour
    # to try, never the default.
    fa4_tile_n: int = 0
    # after the first call, FA4's compiled kernel called directly rather than through its entry
    # point, where the arguments are known (Hopper, no block sparsity; see fa4.py.j2)
    fa4_direct: bool = True
    # skip KV blocks whose weight the bias bounds below 2^-40 of the row's (prune.py; prefill only)
    bias_prune: bool = False

    def as_dict(self) -> dict:
        return asdict(self)

    def template_dict(self) -> dict:
        """as_dict for a generated module's text: bias_prune left out while off, so that every
        module without it reads as it did before the knob existed."""
        data = self.as_dict()
        if not data["bias_prune"]:
            del data["bias_prune"]
        return data

    @staticmethod
    def from_dict(data: dict) -> Config:
        known = {f.name for f in fields(Config)}
        unknown = set(data) - known
        if unknown:
            raise CompilerError(f"unknown compiler config keys {sorted(unknown)} (known: {sorted(known)})")
        config = Config(**data)
        for key, value in config.as_dict().items():
            if value not in CHOICES[key]:
                raise CompilerError(f"compiler config {key}={value!r} is not one of {CHOICES[key]}")
        return config


@dataclass(frozen=True)
class Features:
    """What of the variant decides which knobs matter."""

    has_mask: bool
    has_tanh: bool
    bounded: bool
    score_cost: int  # element-level operations in the score (0 for plain attention)
    D: int
    decode: bool = False  # the problem's shape is decode-shaped (see is_decode_shape)
    tables: int = 0  # subexpressions worth tabulating by distance (tables.py)
    dtype: str = "bfloat16"  # the problem's input dtype
    wide_ints: bool = False  # 64-bit integer arithmetic (FA4's hooks compute in int32)
    bias_prune: bool = False  # logits are c·qk + a bias of the indices (prune.py)


def is_decode_shape(shape: dict) -> bool:
    return shape["Sq"] <= DECODE_MAX_SQ and shape["Skv"] >= DECODE_MIN_RATIO * shape["Sq"]


def _mod_knobs(features: Features, mask_knobs: tuple[str, ...]) -> dict:
    """The knobs that matter because of what the mods compute, in the order they are tried: the
    tanh's instruction, the fixed row max, the mask's (per kernel), the tables of distances."""
    space = {}
    if features.has_tanh:
        space["fast_tanh"] = CHOICES["fast_tanh"]
    if features.bounded:
        space["fixed_max"] = CHOICES["fixed_max"]
    if features.has_mask:
        space.update({k: CHOICES[k] for k in mask_knobs})
    if features.tables:
        space["rel_tables"] = CHOICES["rel_tables"]
    return space


def relevant(features: Features) -> dict:
    """The choices worth searching for this variant (others fixed at their default)."""
    # Insertion order is the order neighbours are tried: on an H200 (run 1, docs/perf-notes.md)
    # block_n and the pipeline depth moved times by a few percent, while 64-row tiles with
    # 8 warps or 128-row tiles with 4 warps were ~2x slower for cheap scores: those go last.
    space = {k: CHOICES[k] for k in ("block_n", "num_stages")}
    space.update(_mod_knobs(features, ("split_loops", "reverse_m")))
    if features.bias_prune:  # an alternative, never the default: the verifier's timing judges it
        space["bias_prune"] = CHOICES["bias_prune"]
    space["block_m"] = PREFILL_BLOCK_M
    space["num_warps"] = CHOICES["num_warps"]
    return space


def decode_relevant(features: Features) -> dict:
    """The decode kernel's knobs: memory-bound, so the KV tile, the pipeline depth and the
    split count matter first; the packed query tile and warps last."""
    # more splits first: more programs in flight and a shorter last wave than the automatic count
    space = {
        "num_splits": (0, 32, 64, 16, 8, 4),
        "block_n": CHOICES["block_n"],
        "num_stages": CHOICES["num_stages"],
    }
    space.update(_mod_knobs(features, ("split_loops",)))
    space["num_warps"] = CHOICES["num_warps"]
    space["block_m"] = CHOICES["block_m"]
    return space


def decode_default_config(features: Features, device: str = "cuda") -> Config:
    """Split-KV with enough splits to fill the GPU, 64-key tiles, 4 warps and a 3-deep pipeline:
    a flash-decoding kernel streams K and V and does little arithmetic per byte."""
    return Config(
        block_m=64,
        block_n=64,
        num_warps=4,
        num_stages=3,
        decode=True,
        num_splits=0,
        fast_tanh=features.has_tanh and device == "cuda",
        fixed_max=features.bounded,
    )


def default_config(features: Features, device: str = "cuda") -> Config:
    """The first guess, from what a hand-written kernel measured on an H200 (docs/perf-notes.md): 128x128 tiles and 8 warps for
    plain attention at D=128, 64x64 and 4 warps when the score mod costs work per element,
    3 stages, fast tanh and the fixed max where they apply, longest query blocks first."""
    cheap = features.score_cost <= 2
    big = cheap and features.D >= 128
    config = Config(
        block_m=128 if cheap else 64,
        block_n=128 if big else 64,
        num_warps=8 if big else 4,
        num_stages=3,
        fast_tanh=features.has_tanh and device == "cuda",
        fixed_max=features.bounded,
        reverse_m=features.has_mask,
    )
    return config


def fa4_configs(features: Features) -> list[Config]:
    """FlashAttention-4 backend configs worth trying, first one first; none where FA4 does not
    apply (decode shapes have the split-KV kernel; FA4 takes bf16 / fp16 and head dims <= 256)."""
    if (
        features.decode
        or features.dtype not in ("bfloat16", "float16")
        or features.D > 256
        or features.wide_ints
    ):
        return []
    first = Config(backend="fa4", fast_tanh=features.has_tanh)
    return [first] + neighbours(first, fa4_relevant(features))


def fa4_relevant(features: Features) -> dict:
    """The FA4 backend's knobs worth searching for this variant."""
    # The entry-point call first among the neighbours: the direct call's argument list is FA4's
    # of today (a beta), and on a version that changed it the first config fails at run time.
    space = {
        "fa4_direct": CHOICES["fa4_direct"],
        "fa4_tile_m": CHOICES["fa4_tile_m"],
        "fa4_pack_gqa": CHOICES["fa4_pack_gqa"],
    }
    if not features.has_mask and features.D <= 128:
        # a longer KV tile: not where block sparsity fixes it at 128, nor at head dims past 128,
        # where FA4 itself shortens its tile to fit the registers; after the entry-point call
        space = {"fa4_direct": space.pop("fa4_direct"), "fa4_tile_n": CHOICES["fa4_tile_n"], **space}
    if features.has_mask:
        space["native_mask"] = CHOICES["native_mask"]
    if features.has_tanh:
        space["fast_tanh"] = CHOICES["fast_tanh"]
    if features.tables:  # the tables' fill kernels cost launches: the hooks' own math may be faster
        space["rel_tables"] = CHOICES["rel_tables"]
    return space


def gluon_configs(features: Features) -> list[Config]:
    """Configs of the warp-specialised Gluon kernel (generate_gluon.py), first one first; none
    where it does not apply: decode shapes, dtypes other than bf16 / fp16, head dims other than
    64 and 128 (its wgmma tiles)."""
    if features.decode or features.dtype not in ("bfloat16", "float16") or features.D not in (0, 64, 128):
        return []
    # ping-pong (4 warps per compute partition) first: on an H200 it was 12-22% faster than the
    # 8-warp arrangement on every variant measured, at D=128 and D=64 (docs/benchmarks.md)
    first = Config(
        backend="gluon",
        block_m=128,
        block_n=128,
        num_warps=4,
        num_stages=2,
        fast_tanh=features.has_tanh,
        fixed_max=features.bounded,
        rel_tables=features.tables > 0,
        reverse_m=features.has_mask,
    )
    return [first] + neighbours(first, gluon_relevant(features))


def gluon_relevant(features: Features) -> dict:
    """The Gluon kernel's knobs: ping-pong (num_warps 4) or not, the depth of its K/V ring (3 slots
    fit Hopper's shared memory at D=128 with 128-key tiles), the KV tile, and the score's own."""
    # the 8-warp arrangement last: it was no faster than the Triton kernel on an H200
    space = {"num_stages": (2, 3), "block_n": (128, 64), "num_warps": (4, 8)}
    space.update(_mod_knobs(features, ("reverse_m",)))
    return space


# Hopper's shared memory per block (227 KB); Triton needs num_stages K and V tiles plus Q.
SMEM_LIMIT = 232448


def fits(config: Config, D: int, elem_bytes: int = 2) -> bool:
    """Whether the pipelined tiles fit in shared memory (128x128, 4 stages at D=128 does not)."""
    d = max(16, 1 << (max(D, 1) - 1).bit_length())
    kv = config.num_stages * 2 * config.block_n * d * elem_bytes
    return kv + config.block_m * d * elem_bytes <= SMEM_LIMIT


def neighbours(config: Config, space: dict) -> list[Config]:
    """Configs one choice away from `config` within `space`."""
    out = []
    for key, options in space.items():
        for value in options:
            if value != getattr(config, key):
                out.append(replace(config, **{key: value}))
    return out


def enumerate_space(space: dict, base: Config) -> list[Config]:
    keys = list(space)
    return [
        replace(base, **dict(zip(keys, values))) for values in itertools.product(*(space[k] for k in keys))
    ]
