"""import_source's temporary folders: kept while the process that made them lives, then removed
(a long search imports one module per candidate; thousands of folders used to stay in /tmp)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import os, sys
    from kernelscale.problems.module import import_source
    parent = import_source("X = 1\\n", "folders_parent")
    print(os.path.dirname(parent.__file__), flush=True)
    pid = os.fork()
    if pid == 0:  # a forked child that exits through atexit
        child = import_source("Y = 2\\n", "folders_child")
        print(os.path.dirname(child.__file__), flush=True)
        sys.exit(0)
    os.waitpid(pid, 0)
    print("parent kept" if os.path.isdir(os.path.dirname(parent.__file__)) else "parent lost", flush=True)
    """
)


def test_folders_outlive_a_forked_child_and_go_with_their_process():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True).stdout
    parent, child, verdict = out.splitlines()
    assert verdict == "parent kept"  # the child's exit did not take the parent's folder
    assert not Path(child).exists()  # the child removed its own
    assert not Path(parent).exists()  # and the parent its own when it exited
