"""AST helpers for the static screen (screen.py): dotted names, constants, kernel functions."""

from __future__ import annotations

import ast


def dotted(node: ast.AST) -> str | None:
    """`torch.nn.functional.relu` for an attribute chain rooted at a name, else None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def constant(node: ast.AST):
    return node.value if isinstance(node, ast.Constant) else None


def is_jit(fn: ast.FunctionDef) -> bool:
    for deco in fn.decorator_list:
        target = deco.func if isinstance(deco, ast.Call) else deco
        name = dotted(target) or ""
        if name.split(".")[-1] in ("jit", "autotune", "heuristics"):
            return True
    return False


def host_walk(fn: ast.FunctionDef):
    """The nodes of a host function, without the bodies of kernels defined inside it (a
    `@cute.jit` hook built by a factory is device code, like a module-level `@triton.jit`)."""
    todo = [fn]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef) and is_jit(child):
                continue
            todo.append(child)
