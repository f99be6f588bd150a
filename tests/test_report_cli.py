"""runs / show / report as registered on a typer app: tables on stdout, usage errors exit 2."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from kernelscale.cli.report_cmds import report, runs, show
from test_report_data import make_store


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli")
    store, ids = make_store(path)
    store.close()
    return path / "kernelscale.db", ids


@pytest.fixture(scope="module")
def cli():
    app = typer.Typer()
    for command in (runs, show, report):
        app.command()(command)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def test_runs_lists_every_run_with_solved_counts(db, cli):
    path, ids = db
    result = cli("runs", "--db", path)
    assert result.exit_code == 0, result.output
    rows = {}
    for line in result.stdout.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if cells and cells[0].isdigit():
            rows[int(cells[0])] = cells
    assert set(rows) == set(ids.values())
    # (problems, correct): the suspect-only problem of the gpu run does not count as solved
    assert rows[ids["gpu"]][5:] == ["5", "3"]
    assert rows[ids["cpu"]][5:] == ["3", "2"]
    assert rows[ids["attention"]][1:4] == ["bench", "attention", "done"]


def test_show_prints_summary_problems_and_attempt_headlines(db, cli):
    path, ids = db
    result = cli("show", ids["gpu"], "--db", path)
    assert result.exit_code == 0, result.output
    out = result.stdout
    for text in (
        "3 of 5 (60.0%)",
        "fast_1.5",
        "20.0%",
        "1.42x",
        "ops/e",
        "no (1 suspect)",
        "[torch_fallback] forward calls torch.matmul (line 12)",
        "[suspect]",
    ):
        assert text in out, text


def test_show_interpreted_run_claims_no_speedup(db, cli):
    path, ids = db
    out = cli("show", ids["cpu"], "--db", path).stdout
    assert "interpreted, not a performance number" in out
    assert "fast_1" not in out and "vs eager" not in out and "0.50x" not in out


def test_report_writes_files_and_names_them(db, cli, tmp_path):
    path, ids = db
    result = cli("report", ids["attention"], "--db", path, "--out", tmp_path / "r", "--html")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r" / "report.html").is_file() and (tmp_path / "r" / "report.md").is_file()
    assert "report.html" in result.stdout and "attention/softcap" in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (("show", 999), "no run 999"),
        (("report", 999), "no run 999"),
        (("runs",), "no database"),
    ],
)
def test_usage_errors_exit_2_with_one_line(db, cli, tmp_path, args, message):
    path, _ = db
    target = path if args[0] != "runs" else tmp_path / "absent.db"
    result = cli(*args, "--db", target)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert not (tmp_path / "absent.db").exists()  # reading never creates a database


def test_not_a_database_is_a_usage_error(tmp_path, cli):
    junk = tmp_path / "junk.db"
    junk.write_text("not sqlite " * 100)
    result = cli("runs", "--db", junk)
    assert result.exit_code == 2 and "cannot open" in result.stderr


def test_functions_are_plain_python_too(db, capsys):
    path, ids = db
    show(ids["attention"], db=path)
    assert "attention/document" in capsys.readouterr().out
    with pytest.raises(typer.Exit) as info:
        show(12345, db=path)
    assert info.value.exit_code == 2


def test_an_unwritable_report_folder_says_where(db, cli, tmp_path):
    path, ids = db
    (tmp_path / "a-file").write_text("")
    result = cli("report", ids["gpu"], "--db", path, "--out", tmp_path / "a-file" / "report")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert f"cannot write the report to {tmp_path / 'a-file' / 'report'}" in result.stderr
