"""Fail when a module under the given roots is over the line limit or holds an over-long function.

The limits keep each module one concept and each function readable in one screen: a module over
400 lines or a function whose body is over 60 lines is split, not waived. Usage:

    python tools/check_sizes.py [ROOT ...] [--max-module-lines N] [--max-function-lines N]

Prints one line per violation (path:line, what, how long) and exits 1 if there is any, 0 otherwise.
"""

from __future__ import annotations

import argparse
import ast
import sys
from dataclasses import dataclass
from pathlib import Path

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


@dataclass(frozen=True)
class Violation:
    path: Path
    line: int
    what: str
    length: int
    limit: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what} is {self.length} lines (limit {self.limit})"


def function_lengths(source: str) -> list[tuple[str, int, int]]:
    """(qualified name, def line, body length in lines) of every function.

    The body is counted from its first statement (docstring included) to its last line: the
    signature is left out because the formatter lays long parameter lists out one per line, which
    says nothing about how much the function does."""
    found: list[tuple[str, int, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                body_start = child.body[0].lineno
                found.append((prefix + child.name, child.lineno, child.end_lineno - body_start + 1))
                visit(child, prefix + child.name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return found


def check_file(path: Path, max_module: int, max_function: int) -> list[Violation]:
    source = path.read_text(encoding="utf-8")
    found = []
    lines = len(source.splitlines())
    if lines > max_module:
        found.append(Violation(path, 1, "module", lines, max_module))
    for name, first, length in function_lengths(source):
        if length > max_function:
            found.append(Violation(path, first, f"function {name}", length, max_function))
    return found


def check_roots(roots: list[Path], max_module: int, max_function: int) -> list[Violation]:
    found = []
    for root in roots:
        files = [root] if root.is_file() else sorted(root.rglob("*.py"))
        for path in files:
            found.extend(check_file(path, max_module, max_function))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", nargs="*", type=Path, default=[Path("src")])
    parser.add_argument("--max-module-lines", type=int, default=MAX_MODULE_LINES)
    parser.add_argument("--max-function-lines", type=int, default=MAX_FUNCTION_LINES)
    args = parser.parse_args(argv)
    missing = [str(r) for r in args.roots if not r.exists()]
    if missing:
        print(f"check_sizes: no such path: {', '.join(missing)}", file=sys.stderr)
        return 2
    violations = check_roots(args.roots, args.max_module_lines, args.max_function_lines)
    for violation in violations:
        print(violation)
    if violations:
        print(f"check_sizes: {len(violations)} over the limits; split them", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
