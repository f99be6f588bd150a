"""The dynamic fallback check: which torch ops a candidate's forward actually ran.

The static screen reads names; this records the aten ops dispatched while the forward runs, so
arithmetic on tensors, `x.sum()` through an alias, or an extension calling `at::mm` are seen
too. Kernel launches are not torch ops, and the recorder is paused inside Triton's launcher
(the CPU interpreter copies arguments with torch ops of its own).
"""

from __future__ import annotations

import functools
from contextlib import contextmanager

from torch.utils._python_dispatch import TorchDispatchMode, _disable_current_modes

ALLOCATION_OPS = frozenset(
    {
        "empty",
        "empty_like",
        "empty_strided",
        "new_empty",
        "new_empty_strided",
        "zeros",
        "zeros_like",
        "new_zeros",
        "ones",
        "ones_like",
        "new_ones",
        "full",
        "full_like",
        "new_full",
        "arange",
        "fill_",
        "zero_",
        "scalar_tensor",
        "lift_fresh",
        "lift_fresh_copy",
        "_local_scalar_dense",
        "is_nonzero",
        "sym_size",
        "sym_stride",
        "sym_numel",
        "sym_storage_offset",
        "resize_",
    }
)
VIEW_OPS = frozenset(
    {
        "view",
        "_unsafe_view",
        "reshape",
        "_reshape_alias",
        "as_strided",
        "expand",
        "permute",
        "transpose",
        "t",
        "unsqueeze",
        "squeeze",
        "select",
        "slice",
        "split",
        "split_with_sizes",
        "chunk",
        "unbind",
        "narrow",
        "alias",
        "detach",
        "unflatten",
        "flatten",
        "movedim",
        "diagonal",
        "view_as",
        "expand_as",
        "_to_copy_view",
        "contiguous_view",
    }
)
COPY_OPS = frozenset({"clone", "copy_", "_to_copy", "_copy_from", "_copy_from_and_resize", "to"})


def _skip_mark():
    """Dynamo's per-code exec strategy (torch >= 2.6): SKIP this frame and all it calls."""
    try:
        from torch._C._dynamo.eval_frame import _FrameAction, _FrameExecStrategy, set_code_exec_strategy
    except (ImportError, AttributeError):
        return None
    skip = _FrameExecStrategy(_FrameAction.SKIP, _FrameAction.SKIP)
    return lambda code: set_code_exec_strategy(code, skip)


_SKIP_MARK = _skip_mark()


def _never_compiled(*functions) -> None:
    """Code that runs with the recorder popped (its handler, a paused launch) is never compiled
    by Dynamo, nor is anything it calls: a compiled frame runs its backend, the candidate's
    code, there. Marked again at every recording (cheap), since Dynamo can reset marks."""
    if _SKIP_MARK is not None:
        for fn in functions:
            _SKIP_MARK(fn.__code__)


class OpRecorder(TorchDispatchMode):
    """Collects the names of aten ops run under it (overload packet names, e.g. "mm")."""

    def __init__(self):
        super().__init__()
        self.ops: set[str] = set()

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # torch wraps a mode's __torch_dispatch__ in `torch._dynamo.disable` unless told not to:
        # that wrapper imports all of Dynamo at the first recorded op (1.1 s of a fresh runner's
        # first call on an H200 host, and of the oracle's first reference run) and costs every
        # op a frame-callback swap. Without it, Dynamo would compile the handler itself whenever
        # a candidate's compiled region is running (its callback stays set while it skips the
        # candidate's frames under the mode), with the candidate's backend, which then runs
        # with the recorder popped (`compiles_into_the_recorder`, a `self.compile(backend=f)`
        # that passed the screen). `_never_compiled` marks the handler's code instead: the
        # same recursive skip, at the C level, with no import and no per-op cost. Where this
        # torch has no such mark, the wrapper stays.
        return not _SKIP_MARK

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        # A custom op registered as `mylib::empty` must not pass for aten's `empty`.
        name = func.overloadpacket.__name__
        namespace = getattr(func, "namespace", "aten")
        self.ops.add(name if namespace == "aten" else f"{namespace}::{name}")
        return func(*args, **(kwargs or {}))


def compute_ops(ops: set[str], forbid_copies: bool) -> set[str]:
    """Ops that do the work rather than allocate or reshape. Copies count as work when the
    reference itself is only data movement (a transpose-copy problem, say)."""
    allowed = ALLOCATION_OPS | VIEW_OPS | (frozenset() if forbid_copies else COPY_OPS)
    return {op for op in ops if op not in allowed}


def is_data_movement(reference_ops: set[str]) -> bool:
    return not compute_ops(reference_ops, forbid_copies=False)


_PAUSED: list = []  # the wrappers below: they pop the recorder, then run Triton's code


def pause_recording_in_triton_launches() -> None:
    """Wrap Triton's launch entry points so the recorder sees none of their internal torch ops."""
    from triton.runtime import autotuner, jit

    # Only the launch itself: Autotuner and Heuristics run user code (pre-hooks, heuristic
    # functions) before they reach JITFunction.run, and torch work there must stay visible.
    # Their own benchmarking only allocates, zeroes and copies, which the policy allows.
    _wrap_method(jit.JITFunction, "run")
    del autotuner
    try:
        from triton.runtime import interpreter
    except ImportError:
        return
    # Under the interpreter a kernel's body is Python run on the host, and so is whatever it
    # calls: a plain function called from a kernel that does the work with torch (on a GPU it
    # would not compile) passed as the kernel's own work while the whole launch was exempt
    # (`torch_in_an_interpreted_kernel`). Only the interpreter's argument copies are exempt.
    copies = ("_init_args_hst", "_restore_args_dev")  # Triton 3.6 to 3.9 (read there)
    executor = getattr(interpreter, "GridExecutor", None)
    if executor is None or not all(hasattr(executor, name) for name in copies):
        # another interpreter: its copies would count as an honest kernel's own torch work, so
        # the whole launch stays exempt, as before (the screen still reads what kernels call)
        _wrap_method(interpreter.InterpretedFunction, "run")
        return
    _wrap_method(interpreter.InterpretedFunction, "run", pause=False)
    for name in copies:
        _pause_method(executor, name)


def _pause_method(cls, name: str) -> None:
    """`cls.name` run with the recorder paused (the interpreter's copies of a launch's arguments)."""
    original = getattr(cls, name, None)
    if original is None or getattr(original, "_ks_paused", False):
        return

    @functools.wraps(original)
    def paused(self, *args, **kwargs):
        if not _runs_no_user_code([args, kwargs]):  # a candidate's object: its methods recorded
            return original(self, *args, **kwargs)
        with _disable_current_modes():
            return original(self, *args, **kwargs)

    paused._ks_paused = True
    _PAUSED.append(paused)
    setattr(cls, name, paused)


def _wrap_method(cls, name: str, pause: bool = True) -> None:
    """`cls.name` (a launch) with its pre-run hooks recorded and, when `pause`, the launch itself
    not recorded (unless a runtime hook of Triton's would run user code inside it)."""
    original = getattr(cls, name, None)
    if original is None or getattr(original, "_ks_paused", False):
        return

    @functools.wraps(original)
    def launch_without_recording(self, *args, **kwargs):
        hooks = list(getattr(self, "pre_run_hooks", None) or [])
        for hook in hooks:  # user code: recorded like the forward around it
            hook(*args, **kwargs)
        if hooks:
            self.pre_run_hooks = []
        try:
            # user code runs inside (a hook, or methods of an argument): record it all; the
            # arguments are read only for a launch that would otherwise be paused
            if (
                not pause
                or _user_hooks_in_launch()
                or not _runs_no_user_code([args, {k: v for k, v in kwargs.items() if k != "grid"}])
            ):
                return original(self, *args, **kwargs)
            kwargs = _grid_recorded(kwargs)
            with _disable_current_modes():
                return original(self, *args, **kwargs)
        finally:
            if hooks:
                self.pre_run_hooks = hooks

    launch_without_recording._ks_paused = True
    _PAUSED.append(launch_without_recording)
    setattr(cls, name, launch_without_recording)


def _grid_recorded(kwargs: dict) -> dict:
    """A callable grid is the candidate's code, which Triton calls inside the paused launch (on a
    GPU; the interpreter's launch is not paused): it runs with the recorder pushed back, so
    torch work there is seen like the forward's (`computes_in_the_grid`)."""
    from torch.utils._python_dispatch import _get_current_dispatch_mode

    grid, recorder = kwargs.get("grid"), _get_current_dispatch_mode()
    if not callable(grid) or not isinstance(recorder, OpRecorder):
        return kwargs

    @functools.wraps(grid)
    def recorded_grid(*args, **kw):
        with recorder:
            return grid(*args, **kw)

    return {**kwargs, "grid": recorded_grid}


def _runs_no_user_code(value, depth: int = 0) -> bool:
    """Can Triton read this launch argument without calling code of the candidate's? Anything
    with a `data_ptr` passes for a tensor, and Triton calls its methods (`data_ptr`, `dtype`,
    and under the interpreter `untyped_storage`, `new_empty`, ...) inside the paused launch:
    torch work there went unrecorded (`computes_in_a_pointer`, which passed the screen too,
    its class named only in `__init__`). Only exact builtin, torch, numpy and Triton types pass."""
    import torch

    kind = type(value)
    if kind in (
        int,
        float,
        bool,
        str,
        type(None),
        torch.dtype,
        torch.device,
        torch.Tensor,
        torch.nn.Parameter,
    ):
        return True
    if depth >= 4:
        return False
    if kind in (tuple, list, torch.Size):
        return all(_runs_no_user_code(v, depth + 1) for v in value)
    if kind is dict:
        return all(type(k) is str and _runs_no_user_code(v, depth + 1) for k, v in value.items())
    if not _library_type(kind):
        return False
    return all(_runs_no_user_code(v, depth + 1) for v in getattr(value, "__dict__", {}).values())


def _library_type(kind: type) -> bool:
    """A class of numpy's or Triton's own (a constexpr, a dtype, a tensor descriptor), found
    under its name in the module it claims: a candidate's class may claim any `__module__`."""
    import sys

    module = sys.modules.get(kind.__module__ or "") if isinstance(kind.__module__, str) else None
    root = kind.__module__.split(".")[0] if module is not None else ""
    return root in ("numpy", "triton") and getattr(module, kind.__qualname__, None) is kind


def _user_hooks_in_launch() -> bool:
    """Does Triton run code of the candidate's inside a launch? Its runtime knobs take hooks
    (`launch_enter_hook`, `jit_post_compile_hook`, ...) that JITFunction.run calls, and a launch
    hook evaluates the kernel's `launch_metadata` function, which gets the kernel's arguments:
    torch work there would pass unrecorded while the launch itself is exempt."""
    try:
        from triton import knobs
    except ImportError:  # older Triton: no knobs
        return False
    runtime = knobs.runtime
    return any(_hook_set(getattr(runtime, name, None)) for name in dir(runtime) if name.endswith("_hook"))


def _hook_set(hook) -> bool:
    """A hook that runs anything: newer Triton keeps an empty chain (`.calls`) where none is set."""
    if hook is None:
        return False
    calls = getattr(hook, "calls", None)
    return bool(calls) if isinstance(calls, list) else True


@contextmanager
def recording():
    recorder = OpRecorder()
    _never_compiled(OpRecorder.__torch_dispatch__, *_PAUSED)
    with recorder:
        yield recorder
