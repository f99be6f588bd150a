"""The verifier reaches every status, and names where and why."""

from __future__ import annotations

from pathlib import Path

GOOD = (Path(__file__).parent / "problems" / "good_scaled_exp.py").read_text()


def test_syntax_error_is_compile_error_with_line(cpu_pool, scaled_exp):
    verdict = cpu_pool.verify(scaled_exp, GOOD.replace("def scaled_exp(x, y):", "def scaled_exp(x, y)"))
    assert verdict.status == "compile_error" and verdict.line is not None


def test_triton_compile_error(cpu_pool, scaled_exp):
    # tl.arange needs a power-of-two extent: Triton refuses to build the kernel.
    code = GOOD.replace("BLOCK=1024)", "BLOCK=1000)")
    verdict = cpu_pool.verify(scaled_exp, code)
    assert verdict.status in ("compile_error", "runtime_error")
    assert "power of 2" in verdict.reason or "arange" in verdict.reason


def test_import_error_is_compile_error(cpu_pool, scaled_exp):
    verdict = cpu_pool.verify(
        scaled_exp, GOOD.replace("import triton\n", "import triton\nfrom triton import no_such_thing\n", 1)
    )
    assert verdict.status == "compile_error" and "no_such_thing" in verdict.reason


def test_exception_in_forward_is_runtime_error(cpu_pool, scaled_exp):
    code = GOOD.replace(
        "        return scaled_exp(x.contiguous(), y.contiguous())",
        "        out = scaled_exp(x, y)\n        raise ValueError('kernel exploded')",
    )
    verdict = cpu_pool.verify(scaled_exp, code)
    assert verdict.status == "runtime_error" and "kernel exploded" in verdict.reason


def test_wrong_math_is_incorrect_with_statistics(cpu_pool, scaled_exp):
    verdict = cpu_pool.verify(scaled_exp, GOOD.replace("tl.exp(x) * 2.0 + y", "tl.exp(x) * 2.0 - y"))
    assert verdict.status == "incorrect"
    assert verdict.max_abs_error > 0.1 and verdict.worst_index is not None and verdict.failing_trial


def test_a_reference_that_returns_no_tensor_is_the_problems_fault(cpu_pool, scaled_exp, tmp_path):
    """A problem whose Model returns None or a dict can judge no candidate: the verifier says so
    (a verifier-side failure, which stops the run) instead of calling every candidate incorrect."""
    from kernelscale.problems import load_problem

    source = (Path(__file__).parent / "problems" / "scaled_exp.py").read_text()
    for returned, name in (("None", "NoneType"), ('{"out": torch.exp(x) * 2.0 + y}', "dict")):
        body = f"        return {returned}\n"
        path = tmp_path / f"returns_{name}.py"
        path.write_text(_replace_forward_return(source, body))
        verdict = cpu_pool.verify(load_problem(path), GOOD)
        assert verdict.verifier_fault and verdict.status == "runtime_error", verdict.reason
        assert f"Model.forward returned {name}" in verdict.reason
    path = tmp_path / "inputs_raise.py"
    path.write_text(
        source.replace("    return [torch.randn(M, N), torch.randn(M, N)]", "    raise RuntimeError('boom')")
    )
    verdict = cpu_pool.verify(load_problem(path), GOOD)
    assert verdict.verifier_fault and "the problem's get_inputs() raised RuntimeError: boom" in verdict.reason


def _replace_forward_return(source: str, body: str) -> str:
    lines = source.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("def forward"))
    end = next(i for i in range(start + 1, len(lines)) if lines[i].strip().startswith("return"))
    return "".join(lines[:end] + [body] + lines[end + 1 :])


def test_an_exact_comparison_says_so(cpu_pool):
    """Integer outputs are compared exactly: the verdict says that, not a float tolerance."""
    import sys

    from kernelscale.problems import load_problem

    sys.path.insert(0, str(Path(__file__).parent))
    from hostile_digest import ARGMAX_OFF_BY_ONE

    honest = ARGMAX_OFF_BY_ONE.replace(" + (index >= 128).to(index.dtype)", "")
    verdict = cpu_pool.verify(load_problem(Path(__file__).parent / "problems" / "argmax_rows.py"), honest)
    assert verdict.status == "correct", verdict.reason
    assert "exactly equal" in verdict.reason and "atol" not in verdict.reason
