"""Everything one run is asked to do, as one typed object: `RunSettings`.

`solve`, `bench` and the Python API all build one of these and hand it to a `Session`; `check()`
turns every bad value into one `SettingsError` line before anything is recorded or started.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kernelscale.problems.problem import TOLERANCE_PRESETS
from kernelscale.propose.base import Proposer
from kernelscale.verify.options import VerifyOptions

DEFAULT_DB = Path("kernelscale.db")
COMPILER_BACKENDS = ("triton", "fa4", "gluon")  # kernels the attention compiler can emit
STOP_REASONS = ("budget", "attempts", "target", "exhausted", "stuck", "interrupted", "error")


class SettingsError(ValueError):
    """A setting that cannot work (a zero budget, an unknown language); one line for users."""


@dataclass
class RunSettings:
    """`budget_s` is the wall budget per problem in seconds; None means no time limit and must be
    asked for explicitly (`--budget none`): 0 is refused rather than read as "unlimited"."""

    proposer: str | Proposer = "compiler"
    strategy: str | None = None
    strategy_options: dict[str, Any] = field(default_factory=dict)  # e.g. {"chains": 4} for parallel
    budget_s: float | None = 900.0
    max_attempts: int | None = None
    target_speedup: float | None = None
    device: str | None = None
    gpus: str | None = None
    out_dir: Path | None = None
    db_path: Path = DEFAULT_DB
    llm: Any = None  # LLMOptions for the llm proposer (None: the preset's defaults)
    language: str = "triton"
    tolerance: str | None = None
    verify_options: VerifyOptions | None = None
    max_calls: int | None = None  # LLM requests per problem
    max_tokens_total: int | None = None  # LLM tokens per problem
    fresh_baselines: bool = False  # time the baselines again instead of reusing stored times
    keep_run_budget: bool = False  # on resume: the budget stored with the run, not `budget_s`
    executor: str = "local"  # where verification runs: local (this machine) or ray (a cluster)
    address: str | None = None  # ray: auto | ray://host:port | None (start a local Ray instance)
    workers: int | None = None  # verifier workers: CPU stand-ins locally; with ray, how many actors
    backends: tuple[str, ...] | None = None  # the compiler's kernel backends (None: every available)

    def check(self) -> RunSettings:
        if self.budget_s is not None and not self.budget_s > 0:
            raise SettingsError(
                f"the budget must be positive, got {self.budget_s:g} s (use --budget none for no time limit)"
            )
        for name in ("max_attempts", "max_calls", "max_tokens_total"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise SettingsError(
                    f"--{name.replace('max_', '').replace('_', '-')} must be at least 1, got {value}"
                    if name == "max_attempts"
                    else f"--{name.replace('_', '-')} must be at least 1, got {value}"
                )
        if self.target_speedup is not None and not self.target_speedup > 0:
            raise SettingsError(f"--target must be a positive speedup, got {self.target_speedup:g}")
        if self.language not in ("triton", "cuda"):
            raise SettingsError(f"--language must be triton or cuda, not {self.language!r}")
        if self.tolerance is not None and self.tolerance not in TOLERANCE_PRESETS:
            raise SettingsError(f"--tolerance must be strict or loose, not {self.tolerance!r}")
        if self.device not in (None, "cpu", "cuda"):
            raise SettingsError(f"--device must be cpu or cuda, not {self.device!r}")
        parse_gpus(self.gpus)
        self._check_executor()
        if self.backends is not None:
            unknown = [b for b in self.backends if b not in COMPILER_BACKENDS]
            if unknown or not self.backends:
                raise SettingsError(
                    f"--backends takes a comma-separated list of {', '.join(COMPILER_BACKENDS)}, "
                    f"got {','.join(self.backends)!r}"
                )
        self.db_path = Path(self.db_path)
        self.out_dir = Path(self.out_dir) if self.out_dir is not None else None
        return self

    def _check_executor(self) -> None:
        if self.executor not in ("local", "ray"):
            raise SettingsError(f"--executor must be local or ray, not {self.executor!r}")
        if self.address and self.executor != "ray":
            raise SettingsError("--address is for --executor ray")
        if self.workers is not None and self.workers < 1:
            raise SettingsError(f"--workers must be at least 1, got {self.workers}")
        if self.executor == "ray":
            import importlib.util

            if importlib.util.find_spec("ray") is None:
                raise SettingsError("--executor ray needs Ray: pip install 'kernelscale[ray]'")
            if self.gpus:
                raise SettingsError(
                    "--gpus chooses local GPUs; with --executor ray every GPU of the cluster is "
                    "used (limit them with --workers)"
                )

    @property
    def proposer_name(self) -> str:
        return self.proposer if isinstance(self.proposer, str) else self.proposer.name

    def recorded(self) -> dict:
        """What the store keeps with the run (no objects, no secrets)."""
        kept = {
            k: v
            for k, v in asdict(self).items()
            if k not in ("llm", "verify_options", "proposer", "db_path", "keep_run_budget")
        }
        kept["proposer"] = self.proposer_name
        describe = getattr(self.llm, "describe", None)
        if describe:
            kept["llm"] = describe()
        return kept


def parse_gpus(spec: str | None) -> list[int] | None:
    """`0,1` -> [0, 1]; None or `all` -> None (every visible GPU). Raises SettingsError."""
    if spec is None or spec.strip().lower() == "all":
        return None
    parts = [p.strip() for p in spec.split(",")]
    if not parts or not all(p.isdigit() for p in parts):
        raise SettingsError(f"--gpus must be `all` or a list of GPU indices such as 0,1; got {spec!r}")
    chosen = [int(p) for p in parts]
    if len(set(chosen)) != len(chosen):
        raise SettingsError(f"--gpus names a GPU twice: {spec!r}")
    return chosen
