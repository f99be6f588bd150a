"""Turn source text into an importable module, and read a file's metadata without running it."""

from __future__ import annotations

import ast
import atexit
import hashlib
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType

METADATA_NAMES = ("KERNELSCALE", "CPU_SIZES")
# Temporary folders import_source made, with the process that made each: removed when it exits.
_OWN_FOLDERS: list[tuple[int, Path]] = []


def _remove_own_folders() -> None:
    # A forked child that exits through atexit must not remove the folders its parent still uses.
    for pid, folder in _OWN_FOLDERS:
        if pid == os.getpid():
            shutil.rmtree(folder, ignore_errors=True)


atexit.register(_remove_own_folders)


def import_source(source: str, stem: str, directory: str | Path | None = None) -> ModuleType:
    """Import `source` as a real file-backed module registered in `sys.modules`.

    File-backed so tracebacks show lines and `inspect.getsource` works; registered because
    FlexAttention's tracing imports the module of a score_mod by name.
    """
    digest = hashlib.sha256(source.encode()).hexdigest()[:10]
    name = f"_ks_{stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    if directory is None:
        folder = Path(tempfile.mkdtemp(prefix="kernelscale-mod-"))
        _OWN_FOLDERS.append((os.getpid(), folder))  # kept while the process lives: Triton reads it
    else:
        folder = Path(directory)
    path = folder / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def apply_sizes(module: ModuleType, sizes: dict) -> None:
    """Override module-level size constants (read by get_inputs / Model at call time)."""
    for key, value in sizes.items():
        setattr(module, key, value)


def top_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def literal_metadata(tree: ast.Module) -> dict[str, object]:
    """Module-level `KERNELSCALE = {...}` / `CPU_SIZES = {...}` read as literals, never executed."""
    found: dict[str, object] = {}
    for node in tree.body:
        if not isinstance(node, ast.Assign) or len(node.targets) != 1:
            continue
        target = node.targets[0]
        if isinstance(target, ast.Name) and target.id in METADATA_NAMES:
            try:
                found[target.id] = ast.literal_eval(node.value)
            except ValueError as exc:
                raise SyntaxError(f"{target.id} must be a literal dict ({exc})") from None
    return found
