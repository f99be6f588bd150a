"""The verifier: static screen, sandboxed runner, oracle, timing, pool.

`kernelscale.verify(problem, code)` is the public API, and this package shares its
name: once `kernelscale.verify.<module>` is imported, Python binds the package over the
function. The package is therefore callable, and calling it is that function.
"""

import sys
import types


class _CallableModule(types.ModuleType):
    def __call__(self, problem, candidate_code, **options):
        from kernelscale.verify.api import verify

        return verify(problem, candidate_code, **options)


sys.modules[__name__].__class__ = _CallableModule
