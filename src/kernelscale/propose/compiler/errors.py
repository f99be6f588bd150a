"""The compiler's one error type: a one-line reason naming what could not be compiled."""


class CompilerError(ValueError):
    """A score_mod / mask_mod (or an option) the compiler cannot turn into a kernel."""
