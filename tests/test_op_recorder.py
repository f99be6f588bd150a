"""The op recorder's own cost: every candidate call runs under it, inside the timed region."""

from __future__ import annotations

import subprocess
import sys


def test_recording_imports_no_dynamo_and_still_sees_every_op():
    """torch wraps a dispatch mode's handler in Dynamo's `disable` by default, which imports all
    of Dynamo at the first recorded op (a second or more of every fresh runner's first call)
    and adds to every op's cost. The recorder opts out; it must still record each op."""
    code = (
        "import sys, torch\n"
        "from kernelscale.verify.op_policy import recording\n"
        "x = torch.ones(4, 4)\n"
        "with torch.no_grad(), recording() as r:\n"
        "    y = x.t().detach(); z = torch.empty(3); w = x @ x; v = (x + 1).sum()\n"
        "print(sorted(r.ops))\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    ops, dynamo = done.stdout.strip().splitlines()
    assert {"t", "detach", "empty", "mm", "add", "sum"} <= set(eval(ops))  # noqa: S307 (our own print)
    assert dynamo == "False"


def test_a_launch_is_paused_only_for_arguments_that_run_no_candidate_code():
    """Honest launch arguments keep the launch paused (its copies are no candidate's work); an
    object of the candidate's, even one claiming a Triton module, gets the launch recorded."""
    import numpy as np
    import torch
    import triton.language as tl
    from triton.tools.tensor_descriptor import TensorDescriptor

    from kernelscale.verify.op_policy import _runs_no_user_code

    x = torch.zeros(16, 16)
    honest = [x[1:], torch.nn.Parameter(x), 3, 2.0, None, "s", tl.float16, tl.constexpr(4), np.int64(3)]
    assert _runs_no_user_code([honest, {"BLOCK": 16, "desc": TensorDescriptor.from_tensor(x, [8, 8])}])

    class Pointer:
        __module__ = "triton.language.core"

        def data_ptr(self):
            return x.data_ptr()

    assert not _runs_no_user_code([x, Pointer()])
    assert not _runs_no_user_code([(x, {"p": Pointer()})])


def test_a_callable_grid_runs_recorded_inside_a_paused_launch():
    """On a GPU, Triton's launch runs with the recorder paused (its own copies and bookkeeping
    are no candidate's work), and it calls a callable grid, the candidate's code, inside: torch
    work in the grid went unrecorded (`computes_in_the_grid`). A launcher standing in for
    JITFunction.run, wrapped as the runner wraps it: its own torch work stays unrecorded, the
    grid's is recorded, and a grid given as a tuple passes unchanged."""
    import torch

    from kernelscale.verify.op_policy import _wrap_method, recording

    x = torch.ones(8)

    class Launcher:
        def run(self, *args, grid, warmup=False, **kwargs):
            torch.zeros(1).add_(1)  # the launcher's own work: paused
            return grid({"BLOCK": 4}) if callable(grid) else grid

    _wrap_method(Launcher, "run")

    def grid(meta):
        x.exp()  # the candidate's work, hidden in its grid
        return (2,)

    with recording() as recorder:
        assert Launcher().run(x, grid=grid, BLOCK=4) == (2,)
        assert Launcher().run(x, grid=(3,), BLOCK=4) == (3,)
    assert "exp" in recorder.ops
    assert "add" not in recorder.ops
