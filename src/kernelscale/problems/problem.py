"""What a problem is: a reference module (KernelBench format) plus the metadata the verifier needs.

A problem travels between processes as its *source text* (never a pickled module): the oracle and
the candidate runner each rebuild the module from that text, so both see the same reference code
and nothing else of the other's state.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

# atol = rtol, KernelBench today; "loose" is KernelBench v0.1 (the era of NVIDIA's numbers).
TOLERANCE_PRESETS: dict[str, dict[str, float]] = {
    "strict": {"float32": 1e-4, "float16": 1e-2, "bfloat16": 1e-2, "float64": 1e-7},
    "loose": {"float32": 1e-2, "float16": 1e-2, "bfloat16": 1e-2, "float64": 1e-4},
}

DEFAULT_BASELINES = ("eager", "compile")


class ProblemError(ValueError):
    """A problem id or file that cannot be turned into a problem; the message is one line for users."""


# Every shifted distribution a problem may ask for (verify/trials.py says what each one does).
EDGE_SHIFTS = ("negative", "positive", "small", "large", "overflow", "offset", "zero")


@dataclass(frozen=True)
class Problem:
    """One reference computation to beat.

    `source` is a KernelBench-format module: `Model`, `get_inputs()`, `get_init_inputs()`.
    `cpu_sizes` overrides module-level size constants when the problem runs on the CPU
    interpreter, so a GPU-sized problem also has a small shape.
    """

    name: str
    source: str
    kind: str = "kernelbench"  # or "attention"
    dtype: str | None = None  # the dominant floating dtype, e.g. "bfloat16"; None: read from inputs
    tolerance: str = "strict"  # a preset name, or "atol=..,rtol=.." via `tolerance_override`
    tolerance_override: float | None = None
    baselines: tuple[str, ...] = DEFAULT_BASELINES
    allow_torch: bool = False  # policy: may the candidate's forward call high-level torch compute?
    cpu_sizes: dict = field(default_factory=dict)
    gpu_sizes: dict = field(default_factory=dict)
    flops: float | None = None  # per forward call at the GPU size, for the roofline floor
    # The rescaled correctness trial multiplies floating inputs by this (None: the verifier's
    # default, 3). Attention sets 0.5: scaling q, k and v by 3 scales scores by 9, where a
    # correct bf16 flash kernel (P rounded to bf16, as FlexAttention and FlashAttention do)
    # differs from the fp32 reference by several ulps on a handful of elements.
    input_scale: float | None = None
    # Shifted input distributions the correctness trials add (verify/trials.py), from
    # EDGE_SHIFTS. Attention leaves out "large": scores grow with the square of the inputs, past
    # bf16's precision. "overflow" is opt-in, for ops meant to be stable at any magnitude;
    # "offset" too, for ops that subtract a row's mean (its spread, not its mean, sets them);
    # "zero" for ops whose floor (an eps) is far below every other trial's magnitudes.
    edge_shifts: tuple[str, ...] = ("negative", "positive", "small", "large")
    path: str | None = None
    description: str = ""

    def with_options(self, **changes) -> Problem:
        data = asdict(self)
        data.update(changes)
        data["baselines"] = tuple(data["baselines"])
        data["edge_shifts"] = tuple(data["edge_shifts"])
        return Problem(**data)

    def sizes_for(self, device: str) -> dict:
        return dict(self.cpu_sizes) if device == "cpu" else dict(self.gpu_sizes)

    def tolerance_for(self, dtype: torch.dtype) -> float:
        if self.tolerance_override is not None:
            return self.tolerance_override
        preset = TOLERANCE_PRESETS.get(self.tolerance)
        if preset is None:
            raise ProblemError(f"unknown tolerance preset {self.tolerance!r} (use strict or loose)")
        return preset.get(str(dtype).removeprefix("torch."), preset["float32"])

    def to_json(self) -> dict:
        data = asdict(self)
        data["baselines"] = list(self.baselines)
        data["edge_shifts"] = list(self.edge_shifts)
        return data

    @staticmethod
    def from_json(data: dict) -> Problem:
        data = dict(data)
        data["baselines"] = tuple(data.get("baselines", DEFAULT_BASELINES))
        if "edge_shifts" in data:
            data["edge_shifts"] = tuple(data["edge_shifts"])
        return Problem(**data)

    def content_hash(self) -> str:
        """Identity of what is verified: the source and every setting that changes a verdict."""
        keyed = {k: v for k, v in self.to_json().items() if k not in ("path", "description")}
        blob = json.dumps(keyed, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @property
    def file_stem(self) -> str:
        return Path(self.name).name.replace("-", "_")
