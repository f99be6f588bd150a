"""The `kernelscale` command line: one typer app, one module per group of commands."""

from __future__ import annotations

from typing import Annotated

import typer

from kernelscale.cli import report_cmds, solve_cmds, verify_cmds

# Plain click help (rich_markup_mode=None): typer's rich panels print `<bool>` after every flag,
# which reads as if `--json` took a value.
app = typer.Typer(
    rich_markup_mode=None,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Turn a PyTorch reference into a fast, verified GPU kernel.",
)


def _print_version(value: bool) -> None:
    if value:
        from kernelscale import __version__

        print(f"kernelscale {__version__}")
        raise typer.Exit(0)


@app.callback()
def _options(
    show_version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_print_version, help="Print the version and exit."),
    ] = False,
) -> None:
    """Turn a PyTorch reference into a fast, verified GPU kernel."""


app.command("problems")(verify_cmds.problems)
app.command("verify")(verify_cmds.verify)
app.command("solve")(solve_cmds.solve)
app.command("bench")(solve_cmds.bench)
app.command("runs")(report_cmds.runs)
app.command("show")(report_cmds.show)
app.command("report")(report_cmds.report)


def main() -> None:
    app()
