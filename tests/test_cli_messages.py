"""What a new user reads: problem-file messages, crash verdicts, stray files, exit codes, help."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernelscale.cli.verdict_view import parse_reason, verdict_lines
from kernelscale.problems import ProblemError, load_problem, scan_suite
from kernelscale.store.db import Store
from test_cli import GOOD, PROBLEM, assert_one_line_error, kernelscale

CRASHING = GOOD.read_text().replace(
    "    out = torch.empty_like(x)\n", "    out = torch.empty_like(x)\n    out = out.view(-1, 7, 13)\n"
)
ROOT = Path(__file__).resolve().parent.parent
NOT_A_VARIANT = 'SHAPE = {"D": 64}\n\n\ndef helper(x):\n    return x\n'


def test_a_file_with_no_mods_and_no_model_says_what_a_variant_defines(tmp_path):
    variant = tmp_path / "my_variant.py"
    variant.write_text(NOT_A_VARIANT)
    with pytest.raises(ProblemError) as raised:
        load_problem(variant)
    message = str(raised.value)
    assert "score_mod(score, b, h, q_idx, kv_idx)" in message and "mask_mod(b, h, q_idx, kv_idx)" in message
    assert "Model class and get_inputs()" in message
    assert_one_line_error(kernelscale("verify", str(variant), str(GOOD), "--device", "cpu"), 2, "score_mod")


def test_a_crashing_candidate_shows_its_own_frames_and_one_verdict_line(tmp_path):
    candidate = tmp_path / "mine.py"
    candidate.write_text(CRASHING)
    crash_line = CRASHING.splitlines().index("    out = out.view(-1, 7, 13)") + 1
    result = kernelscale("verify", str(PROBLEM), str(candidate), "--device", "cpu", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("runtime_error: RuntimeError: shape '[-1, 7, 13]' is invalid")
    assert lines[0].endswith(f"(mine.py:{crash_line})")
    assert f"  mine.py:{crash_line} in scaled_exp: out = out.view(-1, 7, 13)" in lines
    assert "Traceback" not in result.stdout + result.stderr
    assert "_ks_candidate" not in result.stdout and "runner.py" not in result.stdout


def test_verdict_reason_parsing_keeps_plain_reasons_and_renames_the_copy():
    assert verdict_lines("incorrect", "max abs error 3 > 1e-5", "x.py") == [
        "incorrect: max abs error 3 > 1e-5"
    ]
    reason = (
        '  File "_ks_candidate_ab12.py", line 9, in forward\n    return f(x)\n'
        '  File "/usr/lib/triton/jit.py", line 700, in run\n'
        "ValueError: bad\n  continued"
    )
    crash = parse_reason(reason, "k.py")
    assert crash is not None and crash.headline == "ValueError: bad continued"
    assert [(f.file, f.line, f.code) for f in crash.frames] == [
        ("k.py", 9, "return f(x)"),
        ("/usr/lib/triton/jit.py", 700, ""),
    ]
    assert verdict_lines("runtime_error", reason, "k.py")[0] == (
        "runtime_error: ValueError: bad continued (/usr/lib/triton/jit.py:700)"
    )


def test_a_syntax_error_names_the_candidates_line(tmp_path):
    candidate = tmp_path / "typo.py"
    candidate.write_text("import torch\n\n\ndef f(:\n    pass\n")
    result = kernelscale("verify", str(PROBLEM), str(candidate), "--device", "cpu", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout.splitlines()[0] == "compile_error: SyntaxError: invalid syntax (typo.py:4)"


def make_stray_suite(folder):
    folder.mkdir()
    (folder / "scaled_exp.py").write_text(PROBLEM.read_text())
    (folder / "notes.txt").write_text("my notes\n")
    (folder / "_shared.py").write_text("X = 1\n")
    (folder / "not_a_problem.py").write_text(NOT_A_VARIANT)
    (folder / "broken.py").write_text("def (\n")
    (folder / "nested").mkdir()
    return folder


def test_scan_suite_loads_the_problems_and_names_every_skipped_file(tmp_path):
    folder = make_stray_suite(tmp_path / "suite")
    scan = scan_suite(str(folder))
    assert [p.name for p in scan.problems] == [str(folder / "scaled_exp.py")]
    why = {entry.path.rsplit("/", 1)[1]: entry.why for entry in scan.skipped}
    assert set(why) == {"notes.txt", "_shared.py", "not_a_problem.py", "broken.py", "nested"}
    assert why["notes.txt"] == "not a .py file"
    assert "syntax error" in why["broken.py"] and "score_mod" in why["not_a_problem.py"]


def test_problems_dir_lists_problems_and_skipped_files(tmp_path):
    folder = make_stray_suite(tmp_path / "suite")
    result = kernelscale("problems", str(folder))
    assert result.returncode == 0, result.stderr
    assert "scaled_exp.py" in result.stdout
    for name in ("notes.txt", "_shared.py", "not_a_problem.py", "broken.py", "nested"):
        assert f"skipped {folder / name}: " in result.stdout


def test_problems_dir_with_nothing_loadable_is_exit_2(tmp_path):
    folder = tmp_path / "only_notes"
    folder.mkdir()
    (folder / "notes.txt").write_text("x")
    result = kernelscale("problems", str(folder))
    assert result.returncode == 2 and "skipped" in result.stdout
    assert result.stderr.strip() == f"error: {folder} holds no problem files"


@pytest.mark.parametrize(
    "command",
    [
        ("show", "99999"),
        ("report", "99999"),
        ("solve", "--resume", "99999", "--device", "cpu"),
        ("bench", "--resume", "99999", "--device", "cpu"),
    ],
)
def test_unknown_run_ids_are_bad_input(tmp_path, command):
    db = tmp_path / "k.db"
    Store(db).close()
    assert_one_line_error(kernelscale(*command, "--db", str(db), cwd=tmp_path), 2, "no run 99999")


@pytest.mark.parametrize(
    "command, flags",
    [
        ("solve", ("--json",)),
        ("verify", ("--json",)),
        ("bench", ("--html / --no-html",)),
        ("report", ("--html / --no-html",)),
    ],
)
def test_flags_read_as_flags_in_help(command, flags):
    result = kernelscale(command, "--help")
    assert result.returncode == 0
    assert "<bool>" not in result.stdout
    for flag in flags:
        assert any(line.strip().startswith(flag) for line in result.stdout.splitlines()), result.stdout
    assert "--budget <str>" in result.stdout or command in ("verify", "report")


def test_runs_and_reports_are_ignored_by_git():
    ignored = (ROOT / ".gitignore").read_text().split()
    assert "/runs/" in ignored and "/reports/" in ignored


def test_version():
    from kernelscale import __version__

    result = kernelscale("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"kernelscale {__version__}"


def test_solve_help_lists_budget_forms_and_what_out_holds():
    text = " ".join(kernelscale("solve", "--help").stdout.split())
    assert "90s, 15m, 1h, 1h30m" in text and "`none` for no time limit" in text
    assert "best_kernel.py and summary.json" in text and "kernelscale report RUN_ID" in text


def test_bench_dir_names_skipped_files_and_fails_when_none_is_a_problem(tmp_path):
    folder = tmp_path / "strays"
    folder.mkdir()
    (folder / "notes.txt").write_text("x")
    (folder / "not_a_problem.py").write_text(NOT_A_VARIANT)
    result = kernelscale(
        "bench", str(folder), "--device", "cpu", "--db", str(tmp_path / "k.db"), cwd=tmp_path
    )
    assert f"skipped {folder / 'notes.txt'}: not a .py file" in result.stdout
    assert_one_line_error(result, 2, "holds no problem files")


@pytest.mark.parametrize("command", ["solve", "bench"])
def test_an_unwritable_out_folder_is_refused_before_anything_runs(tmp_path, command):
    (tmp_path / "a-file").write_text("")
    target = "ops/softmax" if command == "solve" else "ops"
    args = [command, target, "--device", "cpu", "--attempts", "1", "--out", str(tmp_path / "a-file" / "out")]
    result = kernelscale(*args, "--db", str(tmp_path / "k.db"), cwd=tmp_path)
    assert_one_line_error(result, 2, "cannot write the outputs to")
    assert Store(tmp_path / "k.db").list_runs() == []  # nothing was recorded


@pytest.mark.parametrize("command", ["solve", "bench"])
def test_an_unknown_tolerance_is_refused_before_anything_runs(tmp_path, command):
    """It used to reach the verifier, which blamed itself after a whole attempt."""
    target = "attention/causal" if command == "solve" else "attention"
    args = [command, target, "--device", "cpu", "--tolerance", "weird", "--db", str(tmp_path / "k.db")]
    result = kernelscale(*args, cwd=tmp_path)
    assert_one_line_error(result, 2, "--tolerance must be strict or loose, not 'weird'")
    assert Store(tmp_path / "k.db").list_runs() == []


def test_a_misspelt_edge_shift_is_refused_in_one_line(tmp_path):
    """An unknown shift name used to drop its trial silently: the problem looked verified on
    distributions it never saw."""
    problem = tmp_path / "soft.py"
    problem.write_text(
        "import torch\nKERNELSCALE = {'edge_shifts': ['negative', 'overflw']}\n\n"
        "class Model(torch.nn.Module):\n    def forward(self, x):\n        return torch.softmax(x, -1)\n\n"
        "def get_inputs():\n    return [torch.randn(4, 8)]\n"
    )
    candidate = tmp_path / "mine.py"
    candidate.write_text("")
    result = kernelscale("verify", str(problem), str(candidate), "--device", "cpu", cwd=tmp_path)
    assert_one_line_error(result, 2, "unknown edge_shifts ['overflw']")
