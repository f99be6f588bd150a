"""The repository's own tooling: the size check CI runs, the CPU-torch installer, and CI's steps."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import install_cpu_torch  # noqa: E402


def write_module(path: Path, module_lines: int, function_body_lines: int) -> Path:
    body = [f"    x{i} = {i}" for i in range(function_body_lines)]
    lines = ["def long_function(", "    a,", "    b,", "):"] + body + ["    return a"]
    lines += [f"# filler {i}" for i in range(max(0, module_lines - len(lines)))]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_check(*args: str) -> subprocess.CompletedProcess:
    script = ROOT / "tools" / "check_sizes.py"
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=120)


def test_size_check_fails_on_an_oversized_module(tmp_path):
    write_module(tmp_path / "big.py", module_lines=401, function_body_lines=5)
    done = run_check(str(tmp_path))
    assert done.returncode == 1
    assert "big.py:1: module is 401 lines (limit 400)" in done.stdout


def test_size_check_fails_on_a_long_function_and_counts_its_body(tmp_path):
    write_module(tmp_path / "long.py", module_lines=0, function_body_lines=60)  # 61 with the return
    done = run_check(str(tmp_path))
    assert done.returncode == 1
    assert "long.py:1: function long_function is 61 lines (limit 60)" in done.stdout


def test_size_check_passes_within_limits_and_signature_lines_do_not_count(tmp_path):
    # 59 body lines + return = 60, plus a 4-line signature: within the limit.
    write_module(tmp_path / "ok.py", module_lines=400, function_body_lines=59)
    done = run_check(str(tmp_path))
    assert done.returncode == 0, done.stdout
    assert done.stdout == ""


def test_size_check_names_nested_functions(tmp_path):
    inner = "\n".join(f"        y{i} = {i}" for i in range(70))
    (tmp_path / "nested.py").write_text(f"class Box:\n    def method(self):\n{inner}\n")
    assert "function Box.method is 70 lines" in run_check(str(tmp_path)).stdout


def test_size_check_unknown_path_is_exit_2(tmp_path):
    done = run_check(str(tmp_path / "missing"))
    assert done.returncode == 2 and "no such path" in done.stderr


def test_the_source_tree_meets_the_size_limits():
    done = run_check(str(ROOT / "src"))
    assert done.returncode == 0, done.stdout


@pytest.mark.parametrize("reachable", [True, False])
def test_cpu_torch_uses_the_cpu_index_when_it_answers(reachable):
    command = install_cpu_torch.pip_command("py", "2.13.0", cpu_index_ok=reachable)
    assert command[:5] == ["py", "-m", "pip", "install", "-q"] and "torch==2.13.0" in command
    assert ("--index-url" in command) == reachable
    if reachable:
        assert command[command.index("--index-url") + 1] == "https://download.pytorch.org/whl/cpu"


def test_cpu_torch_installer_falls_back_and_says_so(monkeypatch, capsys):
    monkeypatch.setattr(install_cpu_torch, "has_nvidia_gpu", lambda: False)
    monkeypatch.setattr(install_cpu_torch, "index_reachable", lambda url: False)
    assert install_cpu_torch.main(["--dry-run", "--python", "py"]) == 0
    out = capsys.readouterr().out
    assert "unreachable" in out and "--index-url" not in out


def test_cpu_torch_installer_retries_the_default_index_when_the_cpu_index_fails(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(install_cpu_torch, "has_nvidia_gpu", lambda: False)
    monkeypatch.setattr(install_cpu_torch, "index_reachable", lambda url: True)
    monkeypatch.setattr(
        install_cpu_torch.subprocess,
        "run",
        lambda command: (
            calls.append(command) or subprocess.CompletedProcess(command, 1 if len(calls) == 1 else 0)
        ),
    )
    assert install_cpu_torch.main(["--python", "py"]) == 0
    assert "--index-url" in calls[0] and "--index-url" not in calls[1]
    assert "failed" in capsys.readouterr().out


def test_cpu_torch_installer_does_nothing_with_a_gpu(monkeypatch, capsys):
    monkeypatch.setattr(install_cpu_torch, "has_nvidia_gpu", lambda: True)
    monkeypatch.setattr(install_cpu_torch, "index_reachable", lambda url: pytest.fail("probed"))
    assert install_cpu_torch.main(["--dry-run"]) == 0
    assert "default index with CUDA" in capsys.readouterr().out


def test_an_unreachable_index_is_reported_unreachable():
    assert install_cpu_torch.index_reachable("http://127.0.0.1:9", timeout_s=2) is False


def test_ci_installs_system_deps_then_lints_then_tests():
    ci = (ROOT / ".ci" / "run").read_text()
    steps = [line.split("#")[0].strip() for line in ci.splitlines() if line.strip().startswith("make ")]
    assert steps == ["make test-deps", "make lint", "make test"]
    assert "KERNELSCALE_REQUIRE_BROWSER=1" in ci and "KERNELSCALE_REQUIRE_SANDBOX=1" in ci


def test_lint_runs_ruff_and_the_size_check_and_test_installs_nothing():
    makefile = (ROOT / "Makefile").read_text()
    lint = makefile.split("\nlint:")[1].split("\n\n")[0]
    assert "ruff check" in lint and "ruff format --check" in lint and "tools/check_sizes.py src" in lint
    test = makefile.split("\ntest:")[1].split("\n\n")[0]
    assert "apt-get" not in test and "make test-deps" in test
    deps = makefile.split("\ntest-deps:")[1]
    assert "apt-get install" in deps and "$(SYSTEM_TEST_DEPS)" in deps
    assert "SYSTEM_TEST_DEPS := chromium bubblewrap" in makefile


def test_layer_check_passes_on_the_package_and_names_an_upward_import(tmp_path):
    script = ROOT / "tools" / "check_layers.py"
    clean = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert clean.returncode == 0, clean.stdout
    package = tmp_path / "kernelscale"
    (package / "verify").mkdir(parents=True)
    (package / "verify" / "oops.py").write_text("def f():\n    from kernelscale.search.solve import solve\n")
    (package / "search").mkdir()
    (package / "search" / "fine.py").write_text("import kernelscale.verify.pool\n")
    script_block = 'if __name__ == "__main__":\n    from kernelscale.cli.variant_check import main\n'
    (package / "verify" / "script.py").write_text(script_block)  # an entry point may reach up
    done = subprocess.run(
        [sys.executable, str(script), str(package)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    assert "verify/oops.py:2: verify imports kernelscale.search.solve (above it)" in done.stdout
    assert "fine.py" not in done.stdout and "script.py" not in done.stdout
