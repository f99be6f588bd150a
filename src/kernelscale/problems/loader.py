"""Resolve a problem id (`ops/<name>`, `attention/<name>`, a file, a directory) into problems.

Files are read and parsed, never executed, in the caller's process: the reference runs only in
the verifier's processes.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from kernelscale.problems.module import literal_metadata, top_level_names
from kernelscale.problems.problem import DEFAULT_BASELINES, EDGE_SHIFTS, Problem, ProblemError

BUILTIN_SUITES = ("ops", "attention", "attention-decode")
# Suites made of shape variants of another suite's files (ids like attention/alibi:Sq=1,...).
SHAPE_SUITES = {"attention-decode": "attention"}
ATTENTION_NAMES = {"score_mod", "mask_mod", "make"}
WHAT_A_PROBLEM_FILE_DEFINES = (
    "an attention variant defines score_mod(score, b, h, q_idx, kv_idx) and/or "
    "mask_mod(b, h, q_idx, kv_idx) (or make(B, Hq, Hkv, Sq, Skv, D, device) returning both); "
    "a KernelBench problem defines a Model class and get_inputs()"
)


def builtin_dir(suite: str) -> Path:
    if suite == "attention":
        return Path(str(resources.files("kernelscale.problems.attention") / "suite"))
    return Path(str(resources.files("kernelscale.problems") / suite))


def list_problem_ids(suite: str) -> list[str]:
    """Ids of the problems in a built-in suite or a directory, sorted (a shape suite in its own order)."""
    if suite == "attention-decode":
        from kernelscale.problems.attention.decode_suite import decode_problem_ids

        return decode_problem_ids()
    if suite in BUILTIN_SUITES:
        return sorted(f"{suite}/{p.stem}" for p in builtin_dir(suite).glob("*.py") if _is_problem_file(p))
    folder = Path(suite)
    if not folder.is_dir():
        raise ProblemError(
            f"no such suite or directory: {suite} (built-in suites: {', '.join(BUILTIN_SUITES)})"
        )
    return sorted(str(p) for p in folder.glob("*.py") if _is_problem_file(p))


def load_problem(ref: str | Path, *, tolerance: str | None = None) -> Problem:
    """One problem from an id or a path; raises ProblemError with a one-line message."""
    ref = str(ref)
    suite, _, name = ref.partition("/")
    if _has_shape_suffix(ref):
        from kernelscale.problems.attention import load_attention_problem

        problem = load_attention_problem(ref)
    elif suite in SHAPE_SUITES and name:
        raise ProblemError(
            f"{suite} holds shapes, not files: use the ids `kernelscale problems {suite}` lists"
        )
    elif suite in BUILTIN_SUITES and name and not Path(ref).exists():
        path = builtin_dir(suite) / f"{name}.py"
        if not path.is_file():
            known = ", ".join(i.split("/", 1)[1] for i in list_problem_ids(suite))
            raise ProblemError(f"unknown problem {ref!r}; {suite} has: {known}")
        problem = _load_file(path, display_name=ref)
    else:
        path = Path(ref)
        if path.is_dir():
            raise ProblemError(f"{ref} is a directory (a suite): use `kernelscale bench {ref}`")
        if not path.is_file():
            raise ProblemError(f"no such problem: {ref} (not a file, and not ops/<name> or attention/<name>)")
        problem = _load_file(path, display_name=str(path))
    if tolerance:
        problem = problem.with_options(tolerance=tolerance)
    return problem


@dataclass(frozen=True)
class SkippedFile:
    path: str
    why: str


@dataclass(frozen=True)
class SuiteScan:
    """What a suite or directory holds: the problems that load, and every other file with why."""

    problems: list[Problem] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)


def scan_suite(ref: str, *, tolerance: str | None = None) -> SuiteScan:
    """Load every problem of a built-in suite or directory; a file that is not one is skipped with
    the reason, so one stray file does not hide the rest. Raises ProblemError only for a suite
    that does not exist."""
    scan = SuiteScan()
    for pid in list_problem_ids(ref):
        try:
            scan.problems.append(load_problem(pid, tolerance=tolerance))
        except ProblemError as exc:
            scan.skipped.append(SkippedFile(pid, _without_path(str(exc), pid)))
    if ref not in BUILTIN_SUITES:
        for path in sorted(Path(ref).iterdir()):
            if path.name.startswith(".") or path.name == "__pycache__":
                continue
            if path.is_dir():
                scan.skipped.append(
                    SkippedFile(str(path), "a directory (suites are not searched recursively)")
                )
            elif path.suffix != ".py":
                scan.skipped.append(SkippedFile(str(path), "not a .py file"))
            elif not _is_problem_file(path):
                scan.skipped.append(
                    SkippedFile(str(path), "name starts with _ (a helper module, not a problem)")
                )
    scan.skipped.sort(key=lambda skipped: skipped.path)
    return scan


def _without_path(message: str, path: str) -> str:
    """A loader message without its leading path, which the skipped line already names."""
    for prefix in (f"{path} is ", f"{path}: ", f"{path} "):
        if message.startswith(prefix):
            return message.removeprefix(prefix)
    return message


def load_suite(ref: str, *, tolerance: str | None = None) -> list[Problem]:
    """Every problem of a suite; the first file that is not one raises (scan_suite skips it)."""
    return [load_problem(pid, tolerance=tolerance) for pid in list_problem_ids(ref)]


def _has_shape_suffix(ref: str) -> bool:
    """`attention/<name>:S=2048,D=64` or `variant.py:D=64`: an attention problem at another shape."""
    base, sep, _ = ref.partition(":")
    return bool(sep) and not Path(ref).exists() and (base.startswith("attention/") or Path(base).is_file())


def _is_problem_file(path: Path) -> bool:
    return path.suffix == ".py" and not path.name.startswith("_")


def _parse(path: Path) -> tuple[str, ast.Module]:
    try:
        source = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ProblemError(f"cannot read {path}: {exc}") from None
    try:
        return source, ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        raise ProblemError(f"{path}:{exc.lineno}: syntax error: {exc.msg}") from None


def _load_file(path: Path, display_name: str) -> Problem:
    source, tree = _parse(path)
    names = top_level_names(tree)
    if "Model" not in names and names & ATTENTION_NAMES:
        from kernelscale.problems.attention import load_attention_problem

        return load_attention_problem(path, display_name=display_name)
    if "Model" not in names:
        raise ProblemError(f"{path} is not a problem file: {WHAT_A_PROBLEM_FILE_DEFINES}")
    if "get_inputs" not in names:
        raise ProblemError(f"{path} defines no `get_inputs()`: the verifier cannot make inputs for it")
    return _kernelbench_problem(path, source, tree, display_name)


def _kernelbench_problem(path: Path, source: str, tree: ast.Module, display_name: str) -> Problem:
    if "get_init_inputs" not in top_level_names(tree):
        source += "\n\ndef get_init_inputs():\n    return []\n"
    try:
        meta = literal_metadata(tree)
    except SyntaxError as exc:
        raise ProblemError(f"{path}: {exc}") from None
    options = dict(meta.get("KERNELSCALE", {}))
    known = set(Problem.__dataclass_fields__) - {"name", "source", "kind", "path", "cpu_sizes"}
    unknown = set(options) - known
    if unknown:
        raise ProblemError(f"{path}: unknown KERNELSCALE keys {sorted(unknown)} (known: {sorted(known)})")
    options["baselines"] = tuple(options.get("baselines", DEFAULT_BASELINES))
    if "edge_shifts" in options:
        options["edge_shifts"] = _edge_shifts(path, options["edge_shifts"])
    return Problem(
        name=display_name,
        source=source,
        kind="kernelbench",
        cpu_sizes=dict(meta.get("CPU_SIZES", {})),
        path=str(path.resolve()),
        description=_first_line(ast.get_docstring(tree)),
        **options,
    )


def _edge_shifts(path: Path, shifts) -> tuple[str, ...]:
    """The problem's shifted trials, each one known: a misspelt name would drop a trial silently."""
    if isinstance(shifts, str) or not all(isinstance(s, str) for s in shifts):
        raise ProblemError(f"{path}: KERNELSCALE's edge_shifts is a list of names from {list(EDGE_SHIFTS)}")
    unknown = [s for s in shifts if s not in EDGE_SHIFTS]
    if unknown:
        raise ProblemError(f"{path}: unknown edge_shifts {unknown} (known: {list(EDGE_SHIFTS)})")
    return tuple(shifts)


def _first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0] if lines else ""
