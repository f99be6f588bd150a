"""Whether Triton's CPU interpreter can run here.

Triton 3.6 and older turn a loop bound read at run time (`range(0, tl.load(ptr))`, any kernel
argument) into a Python int by converting a one-element numpy array, which numpy 2.4 refuses:
every such kernel fails with "only 0-dimensional arrays can be converted to Python scalars"
(triton-lang/triton#9171, fixed in Triton after 3.6; 3.9 runs them). The attention compiler's
kernels all loop that way, so on such a machine every candidate would be a runtime error.
kernelscale's own dependencies keep numpy below 2.4; this names the problem where an environment
brought a newer one.
"""

from __future__ import annotations

import re


def _version(text: str) -> tuple[int, int]:
    parts = [int(m) for m in re.findall(r"\d+", text)[:2]]
    return (parts + [0, 0])[0], (parts + [0, 0])[1]


def interpreter_blocker(numpy_version: str | None = None, triton_version: str | None = None) -> str | None:
    """A one-line reason the interpreter cannot run kernels here, or None."""
    if numpy_version is None or triton_version is None:
        import numpy
        import triton

        numpy_version = numpy_version or numpy.__version__
        triton_version = triton_version or triton.__version__
    if _version(numpy_version) >= (2, 4) and _version(triton_version) <= (3, 6):
        return (
            f"Triton {triton_version}'s CPU interpreter cannot run kernels with numpy {numpy_version} "
            "(numpy 2.4 refuses its scalar conversions): pip install 'numpy<2.4', or a newer Triton"
        )
    return None
