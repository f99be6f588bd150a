"""The `kernelscale` command line (DESIGN §5)."""

from __future__ import annotations

import typer

from kernelscale.cli import report_cmds, solve_cmds, verify_cmds

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Turn a PyTorch reference into a fast, verified GPU kernel.",
)
app.command("problems")(verify_cmds.problems)
app.command("verify")(verify_cmds.verify)
app.command("solve")(solve_cmds.solve)
app.command("bench")(solve_cmds.bench)
app.command("runs")(report_cmds.runs)
app.command("show")(report_cmds.show)
app.command("report")(report_cmds.report)


def main() -> None:
    app()
