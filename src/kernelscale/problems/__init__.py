"""Problems: reference computations in KernelBench format, built-in suites, attention variants."""

from kernelscale.problems.loader import SuiteScan, list_problem_ids, load_problem, load_suite, scan_suite
from kernelscale.problems.problem import Problem, ProblemError

__all__ = [
    "Problem",
    "ProblemError",
    "list_problem_ids",
    "load_problem",
    "load_suite",
    "scan_suite",
    "SuiteScan",
]
