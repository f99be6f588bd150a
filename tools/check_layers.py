"""Import directions between kernelscale's layers: each layer imports only the layers below it.

    cli -> report -> search -> store -> propose -> verify -> problems

A module of one layer that imports a layer above it (at any depth, deferred imports included)
is reported as `path:line: <layer> imports <module> (above it)`; exit status 1 if any. Entry
points may import anything: the package's top-level modules (`__init__`, `__main__`) and a
module's `if __name__ == "__main__":` block (a variant file run as a script checks itself with
the CLI's tool).

    python tools/check_layers.py [src/kernelscale]
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

LAYERS = ("cli", "report", "search", "store", "propose", "verify", "problems")  # top to bottom
RANK = {name: i for i, name in enumerate(LAYERS)}


def _script_blocks(tree: ast.AST) -> set[int]:
    """ids of the nodes inside `if __name__ == "__main__":` blocks."""
    inside = set()
    for node in ast.walk(tree):
        test = node.test if isinstance(node, ast.If) else None
        if isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__":
            for statement in node.body:
                inside.update(id(child) for child in ast.walk(statement))
    return inside


def imported_modules(tree: ast.AST):
    """(line, dotted module) for every import of a kernelscale module outside script blocks."""
    script = _script_blocks(tree)
    for node in ast.walk(tree):
        if id(node) in script:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("kernelscale."):
                yield node.lineno, node.module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("kernelscale."):
                    yield node.lineno, alias.name


def violations(package: Path) -> list[str]:
    found = []
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package).parts
        layer = parts[0] if len(parts) > 1 else None
        if layer not in RANK:
            continue
        for line, module in imported_modules(ast.parse(path.read_text(), str(path))):
            target = module.split(".")[1]
            if target in RANK and RANK[target] < RANK[layer]:
                found.append(f"{path}:{line}: {layer} imports {module} (above it)")
    return found


def main(argv: list[str]) -> int:
    package = Path(argv[0]) if argv else Path(__file__).resolve().parent.parent / "src" / "kernelscale"
    found = violations(package)
    for line in found:
        print(line)
    if found:
        print(f"check_layers: {len(found)} import(s) against the layer order {' -> '.join(LAYERS)}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
