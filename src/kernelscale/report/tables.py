"""The report's tables, built once as plain data and rendered for the terminal, Markdown or HTML.

Building a table and drawing it are kept apart so the terminal, the docs and the HTML page can
never disagree about a number: they all read the same cells.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from kernelscale.report.summary import FAST_P, INTERPRETED_LABEL, PRIMARY, STRONGEST, RunSummary
from kernelscale.store.db import AttemptRow, RunRecord

NONE = "–"


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    numeric: set[int] = field(default_factory=set)  # column indexes aligned right
    caption: str = ""


# -- formatting --------------------------------------------------------------------------------
def fmt_speedup(value: float | None) -> str:
    return NONE if value is None else f"{value:.2f}x"


def fmt_ms(value: float | None) -> str:
    if value is None:
        return NONE
    return f"{value:.4f} ms" if value < 10 else f"{value:.1f} ms"


def fmt_s(value: float | None) -> str:
    return NONE if value is None else f"{value:.1f} s"


def fmt_share(value: float | None) -> str:
    return NONE if value is None else f"{100 * value:.1f}%"


def fmt_when(stamp: float | None) -> str:
    return NONE if stamp is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp))


# -- tables -----------------------------------------------------------------------------------
def runs_table(runs: list[RunRecord], counts: dict[int, tuple[int, int]] | None = None) -> Table:
    """Recent runs; `counts` maps run id to (problems, correct) when the caller has them."""
    table = Table(
        "runs", ["run", "command", "target", "status", "started", "problems", "correct"], numeric={0, 5, 6}
    )
    for run in runs:
        n, ok = (counts or {}).get(run.id, (None, None))
        table.rows.append(
            [
                str(run.id),
                run.command,
                run.target,
                run.status,
                fmt_when(run.created_at),
                NONE if n is None else str(n),
                NONE if ok is None else str(ok),
            ]
        )
    return table


def overview_table(summary: RunSummary) -> Table:
    """Key facts of one run, including its correctness rate."""
    run = summary.run
    table = Table(f"run {run.id}", ["", "value"])
    rate = summary.correctness_rate
    facts = [
        ("command", f"{run.command} {run.target}"),
        ("status", run.status),
        ("started", fmt_when(run.created_at)),
        ("device", ", ".join(summary.devices) or NONE),
        ("problems", str(summary.n_problems)),
        ("correct", f"{summary.n_correct} of {summary.n_problems} ({fmt_share(rate)})"),
        ("attempts", str(sum(p.attempts for p in summary.problems))),
    ]
    if summary.interpreted:
        facts.append(("timings", f"{INTERPRETED_LABEL}; no speedup is claimed"))
    table.rows = [list(fact) for fact in facts]
    return table


def speed_table(summary: RunSummary) -> Table:
    """fast_p and the speedup averages, over eager and over the strongest baseline measured."""
    table = Table("speed", ["metric", "over eager", "over strongest baseline"], numeric={1, 2})
    table.caption = (
        "fast_p: share of all problems that are correct and more than p times faster "
        "(KernelBench); geomean and median over the correct problems measured."
    )
    if summary.interpreted:
        table.rows.append(["speedup", f"not claimed ({INTERPRETED_LABEL})", NONE])
        return table
    eager, strongest = summary.stats[PRIMARY], summary.stats[STRONGEST]
    for p in FAST_P:
        table.rows.append([f"fast_{p:g}", fmt_share(eager.fast_p[p]), fmt_share(strongest.fast_p[p])])
    table.rows.append(["geomean speedup", fmt_speedup(eager.geomean), fmt_speedup(strongest.geomean)])
    table.rows.append(["median speedup", fmt_speedup(eager.median), fmt_speedup(strongest.median)])
    table.rows.append(["problems measured", str(eager.n_measured), str(strongest.n_measured)])
    return table


def problems_table(summary: RunSummary) -> Table:
    """One row per problem: solved or not, how fast it was found, its best time and speedups."""
    speed_cols = [] if summary.interpreted else [f"vs {name}" for name in summary.baselines]
    columns = [
        "problem",
        "correct",
        "first correct",
        "attempts",
        "best time",
        *speed_cols,
        "tolerance",
        "device",
    ]
    if any(p.status != "done" for p in summary.problems):
        columns.insert(1, "status")
    table = Table("problems", columns)
    table.numeric = {
        i
        for i, c in enumerate(columns)
        if c in ("first correct", "attempts", "best time") or c.startswith("vs ")
    }
    for prob in summary.problems:
        correct = "yes" if prob.correct else "no"
        if prob.n_suspect:
            correct += f" ({prob.n_suspect} suspect)"
        best = fmt_ms(prob.best_time_ms)
        if prob.correct and (prob.interpreted and not prob.speedup):
            best += f" ({INTERPRETED_LABEL})"
        speeds = [] if summary.interpreted else [fmt_speedup(prob.speedup.get(b)) for b in summary.baselines]
        row = [
            prob.name,
            correct,
            fmt_s(prob.first_correct_s),
            str(prob.attempts),
            best,
            *speeds,
            prob.tolerance,
            prob.device or NONE,
        ]
        if "status" in columns:
            row.insert(1, prob.status)
        table.rows.append(row)
    return table


def attempts_table(rows: list[AttemptRow], limit: int | None = None) -> Table:
    """Every attempt (or the last `limit`) with its verdict headline; rows from Store.attempt_rows."""
    shown = rows if limit is None or len(rows) <= limit else rows[-limit:]
    spend = [llm_spend(row) for row in shown]
    columns = ["#", "problem", "proposer", "at", "verdict"] + (["llm calls / tokens"] if any(spend) else [])
    table = Table("attempts", columns, numeric={0, 3})
    if len(shown) < len(rows):
        table.caption = f"last {len(shown)} of {len(rows)} attempts"
    for row, used in zip(shown, spend):
        cells = [str(row.id), row.problem, row.proposer, fmt_s(row.elapsed_s), row.verdict.headline()]
        table.rows.append(cells + ([used or NONE] if len(columns) > 5 else []))
    return table


def llm_spend(row: AttemptRow) -> str:
    """ "calls / tokens" an attempt's proposal cost (re-asks included), "" when no LLM was asked."""
    usage = row.usage
    if "total_tokens" not in usage and "calls" not in usage:
        return ""
    return f"{usage.get('calls', 1)} / {usage.get('total_tokens', 0)}"


# -- renderers --------------------------------------------------------------------------------
def to_rich(table: Table):
    """A rich Table for the terminal."""
    from rich.table import Table as RichTable
    from rich.text import Text

    # Cells are Text, not markup: a headline such as "[suspect]" or "[torch_fallback]" must show as is.
    out = RichTable(
        title=Text(table.title), caption=Text(table.caption) if table.caption else None, title_justify="left"
    )
    for i, name in enumerate(table.columns):
        out.add_column(Text(name), justify="right" if i in table.numeric else "left", overflow="fold")
    for row in table.rows:
        out.add_row(*(Text(cell) for cell in row))
    return out


def to_markdown(table: Table) -> str:
    """A GitHub-flavoured Markdown table with its title as a heading."""

    def cells(values: list[str]) -> str:
        return "| " + " | ".join(v.replace("|", "\\|").replace("\n", " ") for v in values) + " |"

    rule = ["---:" if i in table.numeric else "---" for i in range(len(table.columns))]
    lines = [f"### {table.title}", "", cells(table.columns), "| " + " | ".join(rule) + " |"]
    lines += [cells(row) for row in table.rows]
    if table.caption:
        lines += ["", table.caption]
    return "\n".join(lines) + "\n"


def to_text(table: Table) -> str:
    """Plain fixed-width text (logs, e-mail): no colours, no box-drawing characters."""
    widths = [len(c) for c in table.columns]
    for row in table.rows:
        widths = [max(w, len(v)) for w, v in zip(widths, row)]

    def line(values: list[str]) -> str:
        padded = [
            v.rjust(w) if i in table.numeric else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths))
        ]
        return "  ".join(padded).rstrip()

    lines = [table.title, line(table.columns), "  ".join("-" * w for w in widths)]
    lines += [line(row) for row in table.rows]
    if table.caption:
        lines.append(table.caption)
    return "\n".join(lines) + "\n"
