"""kernelscale: propose GPU kernels, verify them against a hostile-proof verifier, keep the fastest.

The public Python API mirrors the command line: `load_problem`, `verify`, `solve`, `bench`.
Imports are lazy so that `import kernelscale` stays cheap and side-effect free.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["load_problem", "verify", "solve", "bench", "__version__"]


def load_problem(ref, **options):
    from kernelscale.problems import load_problem as _load

    return _load(ref, **options)


def verify(problem, candidate_code, **options):
    from kernelscale.verify.api import verify as _verify

    return _verify(problem, candidate_code, **options)


def solve(problem, **options):
    from kernelscale.search.solve import solve as _solve

    return _solve(problem, **options)


def bench(suite_or_dir, **options):
    """Solve every problem of a suite with one verifier pool; options are RunSettings fields
    (budget_s per problem, proposer, device, ...) plus `resume`, `progress` and `on_event`."""
    from kernelscale.search.bench_run import bench_suite

    return bench_suite(suite_or_dir, **options)
