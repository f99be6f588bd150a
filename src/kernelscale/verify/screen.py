"""Static screen: reject a candidate's source before it costs any GPU time.

Every rule has a name (what the proposer is told) and a line. The compute rules apply to host
code reachable from `ModelNew.forward`; `__init__` and code only it reaches may build
parameters and tables with torch. Device code (`@triton.jit`) is never host code. The dynamic
op check in the runner backs these rules up: what the AST cannot see (arithmetic on tensors
through a helper object, say) is still caught there.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from kernelscale.verify.screen_ast import constant, dotted, host_walk, is_jit
from kernelscale.verify.screen_tables import (
    ALLOWED_IMPORTS,
    ALLOWED_TORCH_CALLS,
    COMPUTE_METHODS,
    FORBIDDEN_ATTRS,
    FORBIDDEN_CALLS,
    LIBRARY_FORBIDDEN,
    LIBRARY_IMPORTS,
    LIBRARY_KERNELS,
    PATCHED_ROOTS,
    PRIVATE_ENTRY_POINTS,
    REACHED_MODULES,
    RULES,
    STREAM_CALLS,
    STRING_ACCESSORS,
    UNPICKLING_KEYWORDS,
)

GENERIC_RULES = frozenset({"forbidden_import", "forbidden_call", "private_access"})


@dataclass
class Violation:
    rule: str
    line: int
    detail: str

    def message(self) -> str:
        return f"{self.detail} — {RULES[self.rule]}"


def screen(source: str, *, allow_torch: bool = False) -> list[Violation]:
    """All violations in source order; empty when the candidate may run. Raises SyntaxError."""
    tree = ast.parse(source)
    scan = _Scan(tree)
    found = scan.module_rules()
    found += scan.host_rules(allow_torch)
    # The specific rule tells a proposer more than the generic one that often fires first
    # (`import time` is forbidden, but patching time.perf_counter is the point).
    return sorted(found, key=lambda v: (v.rule in GENERIC_RULES, v.line))


class _Scan:
    def __init__(self, tree: ast.Module):
        self.tree = tree
        self.aliases = self._import_aliases()
        self.functions: dict[str, ast.FunctionDef] = {}
        self.classes: dict[str, ast.ClassDef] = {}
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.functions[node.name] = node
            elif isinstance(node, ast.ClassDef):
                self.classes[node.name] = node
        self.jit_names = {name for name, fn in self.functions.items() if is_jit(fn)}

    def canonical(self, node: ast.AST) -> str | None:
        """A dotted name with import aliases resolved (`F.relu` -> `torch.nn.functional.relu`)."""
        name = dotted(node)
        if name is None:
            return None
        head, _, rest = name.partition(".")
        full = self.aliases.get(head, head)
        return f"{full}.{rest}" if rest else full

    def _import_aliases(self) -> dict[str, str]:
        aliases: dict[str, str] = {}
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.module:
                for a in node.names:
                    aliases[a.asname or a.name] = f"{node.module}.{a.name}"
        # `t = torch` or `ev = torch.cuda.Event` names a module (or its member) as an import does:
        # `t.cuda.Event.elapsed_time = ...` is an assignment into torch all the same.
        for node in ast.walk(self.tree):
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
            ):
                value = dotted(node.value)
                head = (value or "").partition(".")[0]
                if head in aliases and node.targets[0].id not in aliases:
                    rest = value.partition(".")[2]
                    aliases[node.targets[0].id] = aliases[head] + (f".{rest}" if rest else "")
        return aliases

    # -- rules over the whole module ------------------------------------------------------------
    def module_rules(self) -> list[Violation]:
        found: list[Violation] = []
        model_new = self.classes.get("ModelNew")
        if model_new is None:
            found.append(Violation("no_model_new", 1, "no class ModelNew"))
        for node in ast.walk(self.tree):
            found += self._node_rules(node)
        found += self._class_rules()
        if model_new is not None and not self._launches_kernel():
            found.append(
                Violation("no_kernel", model_new.lineno, "no Triton or CUDA kernel is launched from forward")
            )
        return found

    def _node_rules(self, node: ast.AST) -> list[Violation]:
        line = getattr(node, "lineno", 1)
        if isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
            return [Violation("try_except", line, "try statement")]
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            return self._import_rules(node)
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            return self._patch_rules(node)
        if isinstance(node, ast.Attribute):
            return self._attribute_rules(node)
        if isinstance(node, ast.Name) and node.id in FORBIDDEN_CALLS | STRING_ACCESSORS:
            return [Violation("forbidden_call", line, f"`{node.id}`")]
        if isinstance(node, ast.Call):
            return self._call_rules(node)
        return []

    def _import_rules(self, node: ast.Import | ast.ImportFrom) -> list[Violation]:
        modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        found = []
        for module in modules:
            root = module.split(".")[0]
            if root in ("threading", "_thread", "concurrent", "multiprocessing", "asyncio"):
                found.append(Violation("threads", node.lineno, f"import {module}"))
            elif root in ("gc", "inspect"):
                found.append(Violation("introspection", node.lineno, f"import {module}"))
            elif module in LIBRARY_IMPORTS:
                continue
            elif root not in ALLOWED_IMPORTS or module.startswith("torch._") or "._" in module:
                found.append(Violation("forbidden_import", node.lineno, f"import {module}"))
        if isinstance(node, ast.ImportFrom):
            for a in node.names:
                if f"{node.module}.{a.name}".startswith(LIBRARY_FORBIDDEN):
                    found.append(
                        Violation("forbidden_import", node.lineno, f"from {node.module} import {a.name}")
                    )
                if a.name in STRING_ACCESSORS:
                    found.append(
                        Violation("forbidden_call", node.lineno, f"from {node.module} import {a.name}")
                    )
                if a.name in REACHED_MODULES:
                    found.append(
                        Violation("forbidden_import", node.lineno, f"from {node.module} import {a.name}")
                    )
                if (node.module, a.name) in PRIVATE_ENTRY_POINTS:
                    continue
                if a.name.startswith("_") and a.name != "__future__":
                    found.append(
                        Violation("private_access", node.lineno, f"from {node.module} import {a.name}")
                    )
        return found

    def _patch_rules(self, node: ast.AST) -> list[Violation]:
        targets = list(getattr(node, "targets", None) or [getattr(node, "target", None)])
        found = []
        while targets:
            target = targets.pop()
            if isinstance(target, (ast.Tuple, ast.List)):
                targets += target.elts
            elif isinstance(target, (ast.Subscript, ast.Starred)):
                targets.append(target.value)
            elif isinstance(target, ast.Attribute):
                chain = (self.canonical(target) or "").split(".")[:-1]  # the objects assigned into
                if PATCHED_ROOTS.intersection(chain):
                    found.append(Violation("monkey_patch", node.lineno, f"assignment to `{dotted(target)}`"))
        return found

    def _attribute_rules(self, node: ast.Attribute) -> list[Violation]:
        attr, line = node.attr, node.lineno
        full = self.canonical(node) or ""
        if full.startswith(LIBRARY_FORBIDDEN):
            return [Violation("forbidden_call", line, f"`{full}`")]
        if attr in STRING_ACCESSORS:
            return [
                Violation("forbidden_call", line, f"`{full or '.' + attr}` reaches attributes by a string")
            ]
        if attr in ("environ", "getenv", "putenv", "environb"):
            return [Violation("env_access", line, f"`.{attr}`")]
        if attr in ("_getframe", "f_back", "f_locals", "f_globals", "tb_frame", "gi_frame", "cr_frame"):
            return [Violation("introspection", line, f"`.{attr}`")]
        if full.split(".")[:2] == ["sys", "modules"]:
            return [Violation("introspection", line, "sys.modules")]
        if attr in FORBIDDEN_ATTRS:
            return [Violation("private_access", line, f"`.{attr}`")]
        if attr in REACHED_MODULES and dotted(node.value) != "self":
            return [Violation("forbidden_import", line, f"`{dotted(node) or '.' + attr}` reaches a module")]
        if attr.startswith("_") and not attr.startswith("__") and dotted(node.value) != "self":
            return [Violation("private_access", line, f"`.{attr}`")]
        if full in STREAM_CALLS or attr in ("CUDAGraph", "graph", "graphs", "ExternalStream"):
            return [Violation("streams", line, f"`{dotted(node)}`")]
        if full.startswith(("torch.utils._python_dispatch", "torch.overrides")) or attr in (
            "TorchDispatchMode",
            "TorchFunctionMode",
            "_make_subclass",
            "_make_wrapper_subclass",
        ):
            return [Violation("tensor_subclass", line, f"`{dotted(node)}`")]
        if full.startswith(("torch.compile", "torch.jit", "torch._dynamo", "torch._inductor")):
            return [Violation("torch_compile", line, f"`{dotted(node)}`")]
        # `nn.Module.compile` is `torch.compile` under another name (`self.compile(backend=f)`
        # passed: `compiles_into_the_recorder`); only the kernel languages' own `compile` is theirs.
        if attr == "compile" and not full.startswith(("cutlass.", "triton.")):
            return [Violation("torch_compile", line, f"`{dotted(node) or '.compile'}`")]
        return []

    def _call_rules(self, node: ast.Call) -> list[Violation]:
        name = self.canonical(node.func) or ""
        unpickles = [k.arg for k in node.keywords if (k.arg, constant(k.value)) in UNPICKLING_KEYWORDS]
        if unpickles:  # unpickling runs whatever callables the pickle names (os.system, ...)
            return [Violation("forbidden_call", node.lineno, f"`{unpickles[0]}=...` unpickles code")]
        if name == "type" and len(node.args) == 3:
            # A class made at run time: its bases and its methods (a `__torch_function__` is only
            # a dict key there) escape the class-statement rules below.
            return [Violation("tensor_subclass", node.lineno, "`type(name, bases, namespace)` makes a class")]
        if name in ("os.abort", "os._exit", "os.kill", "os.system", "sys.exit", "signal.raise_signal"):
            return [Violation("forbidden_call", node.lineno, f"`{name}`")]
        if name == "torch.compile" or name.startswith("torch.jit."):
            return [Violation("torch_compile", node.lineno, f"`{name}`")]
        return []

    def _class_rules(self) -> list[Violation]:
        found = []
        for cls in self.classes.values():
            for base in cls.bases:
                base_name = self.canonical(base) or ""
                if base_name == "Model" or base_name.endswith(".Model"):
                    found.append(Violation("subclasses_model", cls.lineno, f"class {cls.name}(Model)"))
                elif base_name.split(".")[-1] in ("Tensor", "Parameter") and base_name.startswith("torch"):
                    found.append(Violation("tensor_subclass", cls.lineno, f"class {cls.name}({base_name})"))
            for item in cls.body:
                if isinstance(item, ast.FunctionDef) and item.name in (
                    "__torch_function__",
                    "__torch_dispatch__",
                ):
                    found.append(Violation("tensor_subclass", item.lineno, f"{cls.name}.{item.name}"))
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Name) and node.id == "Model" and isinstance(node.ctx, ast.Load):
                found.append(Violation("subclasses_model", node.lineno, "uses the reference `Model`"))
        return found

    # -- rules over host code reachable from forward ---------------------------------------------
    def reachable(self) -> list[ast.FunctionDef]:
        """Host functions forward can reach: module functions and methods, by name, transitively,
        through kernels too: a kernel's body is device code, but a plain function it calls runs
        on the host (under the interpreter as Python, on a GPU at compile time), so torch work
        there is host work all the same (`torch_in_an_interpreted_kernel`)."""
        model_new = self.classes.get("ModelNew")
        if model_new is None:
            return []
        methods = {f.name: f for f in model_new.body if isinstance(f, ast.FunctionDef)}
        todo = [methods["forward"]] if "forward" in methods else []
        seen: dict[int, ast.FunctionDef] = {}
        kernels: set[int] = set()
        while todo:
            fn = todo.pop()
            if id(fn) in seen or id(fn) in kernels:
                continue
            if fn.name in self.jit_names:
                kernels.add(id(fn))
                todo += self._callees(fn, {})
                continue
            seen[id(fn)] = fn
            todo += self._callees(fn, methods)
        return list(seen.values())

    def _callees(self, fn: ast.FunctionDef, methods: dict[str, ast.FunctionDef]) -> list[ast.FunctionDef]:
        found = []
        for node in host_walk(fn):
            if isinstance(node, ast.Name) and node.id in self.functions:
                found.append(self.functions[node.id])
            elif isinstance(node, ast.Name) and node.id in self.classes:
                found += [
                    m
                    for m in self.classes[node.id].body
                    if isinstance(m, ast.FunctionDef) and m.name != "__init__"
                ]
            elif isinstance(node, ast.Attribute) and dotted(node.value) == "self" and node.attr in methods:
                found.append(methods[node.attr])
        return found

    def _layer_attributes(self) -> set[str]:
        """`self.x = nn.Linear(...)` in ModelNew.__init__: calling `self.x(...)` in forward runs torch."""
        layers: set[str] = set()
        model_new = self.classes.get("ModelNew")
        for node in ast.walk(model_new) if model_new else ():
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                ctor = self.canonical(node.value.func) or ""
                if ctor.startswith("torch.nn.") and ctor.split(".")[-1] not in (
                    "Parameter",
                    "ParameterList",
                    "ParameterDict",
                    "Buffer",
                ):
                    layers.update(
                        t.attr
                        for t in node.targets
                        if isinstance(t, ast.Attribute) and dotted(t.value) == "self"
                    )
        return layers

    def _launches_kernel(self) -> bool:
        host = self.reachable()
        names = {n.id for fn in host for n in host_walk(fn) if isinstance(n, ast.Name)}
        attrs = {n.attr for fn in host for n in host_walk(fn) if isinstance(n, ast.Attribute)}
        if names & self.jit_names:
            return True
        called = {self.canonical(n.func) for fn in host for n in host_walk(fn) if isinstance(n, ast.Call)}
        if called & LIBRARY_KERNELS:
            return True
        inline = self._inline_extensions()
        return bool(inline & (names | attrs))

    def _inline_extensions(self) -> set[str]:
        """Names bound to `load_inline(...)` / `load(...)` results (module level or self.attr)."""
        bound: set[str] = set()
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                callee = self.canonical(node.value.func) or ""
                # Only the extension builders: `x = tl.load(...)` in a kernel is not one.
                if callee.startswith("torch.utils.cpp_extension.") and callee.split(".")[-1] in (
                    "load_inline",
                    "load",
                ):
                    for t in node.targets:
                        bound.add(t.id if isinstance(t, ast.Name) else getattr(t, "attr", ""))
        return bound

    def host_rules(self, allow_torch: bool) -> list[Violation]:
        if allow_torch:
            return []
        layers = self._layer_attributes()
        found: list[Violation] = []
        for fn in self.reachable():
            for node in host_walk(fn):
                found += self._compute_rules(node, layers)
        return found

    def _compute_rules(self, node: ast.AST, layers: set[str]) -> list[Violation]:
        line = getattr(node, "lineno", 1)
        if isinstance(node, (ast.BinOp, ast.AugAssign)) and isinstance(node.op, ast.MatMult):
            return [Violation("torch_fallback", line, "`@` matrix product in host code")]
        if not isinstance(node, ast.Call):
            return []
        name = self.canonical(node.func) or ""
        if name.startswith(
            ("torch.nn.functional.", "torch.ops.", "torch.special.", "torch.linalg.", "torch.fft.")
        ):
            return [Violation("torch_fallback", line, f"`{name}`")]
        if name.startswith("torch.nn.") and name != "torch.nn.Parameter":
            return [Violation("torch_fallback", line, f"`{name}` (an nn layer)")]
        if (
            name.startswith("torch.")
            and name.count(".") == 1
            and name.split(".")[1] not in ALLOWED_TORCH_CALLS
        ):
            return [Violation("torch_fallback", line, f"`{name}`")]
        called = dotted(node.func) or ""
        if called.startswith("self.") and called.split(".")[1] in layers:
            return [Violation("torch_fallback", line, f"`{called}` (an nn layer)")]
        if isinstance(node.func, ast.Attribute) and node.func.attr in COMPUTE_METHODS:
            receiver = self.canonical(node.func.value) or ""
            if not receiver.startswith(("triton", "math", "tl")):
                return [Violation("torch_fallback", line, f"`.{node.func.attr}()`")]
        return []
