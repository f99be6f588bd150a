"""Live progress of a search (a header, then one line per attempt with a budget bar) and the
closing result table of `solve`."""

from __future__ import annotations

import json

BAR_WIDTH = 10


class ProgressPrinter:
    """Receives the loop's events; one line per attempt with the best so far and the spend."""

    def __init__(self, console, quiet: bool = False):
        self.console = console
        self.quiet = quiet
        self.run_id = None
        self.tokens = 0
        self.calls = 0
        self.first_config: dict | None = None  # attempt lines show what differs from it
        self.said_interpreted = False

    def __call__(self, kind: str, info: dict) -> None:
        if kind == "start":
            self.run_id = info["run_id"]
            self.tokens = self.calls = 0
            self.first_config, self.said_interpreted = None, False
            budget = info.get("budget_s")
            limit = "no time limit" if budget is None else f"budget {budget:g} s"
            resumed = f", resumed after attempt #{info['resumed_at']}" if info.get("resumed_at") else ""
            self._say(
                f"run {info['run_id']}: {info['problem']} on {info['device']} "
                f"({info['workers']} worker(s), proposer {info['proposer']}, {limit}{resumed})"
            )
            if info.get("shape"):
                self._say(f"shape: {_compact(info['shape'])}")
            if info.get("proposer_note"):
                self._say(info["proposer_note"])
        elif kind == "attempt":
            self._attempt(info)

    def _attempt(self, info: dict) -> None:
        attempt, best = info["attempt"], info["best"]
        usage = attempt.candidate.usage
        self.tokens += int(usage.get("total_tokens") or 0)
        self.calls += int(usage.get("calls", 1)) if usage else 0
        verdict = attempt.verdict
        if verdict.interpreted and not self.said_interpreted:
            self.said_interpreted = True
            self._say(
                "interpreted on the CPU: times are not performance numbers, so candidates are ranked "
                "by correctness only (the first correct one is the best)"
            )
        headline = "correct" if verdict.interpreted and verdict.status == "correct" else verdict.headline()
        best_text = "-"
        if best is not None:
            best_text = f"{best.best_speedup:.2f}x" if best.best_speedup else f"correct #{best.attempt_id}"
        spend = f"  llm {self.calls} call(s), {self.tokens} tokens" if self.calls else ""
        cached = " (cached)" if verdict.cached else ""
        self._say(
            f"#{info['n']:<3} {_bar(attempt.elapsed_s, info.get('budget_s'))} {attempt.elapsed_s:7.1f}s  "
            f"{headline}{cached}  best {best_text}{spend}{self._config_change(attempt)}"
        )

    def _config_change(self, attempt) -> str:
        """The first configuration in full, then only what each attempt changed from it."""
        config = attempt.candidate.provenance.get("config")
        if not config:
            return ""
        if self.first_config is None:
            self.first_config = dict(config)
            return f"  {_compact(config)}"
        changed = {k: v for k, v in config.items() if self.first_config.get(k) != v}
        return f"  {_compact(changed)}" if changed else "  (first configuration)"

    def _say(self, text: str) -> None:
        if not self.quiet:
            self.console.print(text, highlight=False, markup=False, soft_wrap=True)


def _bar(elapsed: float, budget: float | None) -> str:
    """[####------] the share of the time budget used (no bar without a time limit)."""
    if not budget:
        return ""
    done = min(BAR_WIDTH, int(BAR_WIDTH * elapsed / budget))
    return "[" + "#" * done + "-" * (BAR_WIDTH - done) + "]"


def _compact(config: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in config.items())


def print_summary(console, result, as_json: bool) -> None:
    summary = json.loads((result.out_dir / "summary.json").read_text())
    if as_json:
        print(json.dumps(summary))
        return
    detail = f" ({result.detail})" if result.detail and result.stopped != "error" else ""
    console.print(
        f"\nrun {result.run_id}: {len(result.attempts)} attempts, stopped: {result.stopped}{detail}",
        highlight=False,
    )
    if summary.get("llm"):
        llm = summary["llm"]
        console.print(
            f"llm: {llm['calls']} call(s), {llm['tokens']} tokens, ${llm['cost_usd']:.4f}", highlight=False
        )
    best = result.best
    if best is None:
        console.print("no correct kernel found", style="red")
        return
    _result_table(console, best, result.shape)
    console.print(
        f"wrote {result.out_dir / 'best_kernel.py'} and {result.out_dir / 'summary.json'}", highlight=False
    )


def _result_table(console, best, shape: dict) -> None:
    """The best attempt against every baseline measured, as one table."""
    from rich.table import Table

    verdict = best.verdict
    title = f"best: attempt #{best.attempt_id}" + (f" at {_compact(shape)}" if shape else "")
    table = Table(title=title, title_justify="left")
    for column in ("kernel", "time (ms)", "speedup"):
        table.add_column(column, justify="left" if column == "kernel" else "right")
    if verdict.interpreted:
        table.add_row("best (interpreted on the CPU)", f"{verdict.time_ms:.2f}", "not a performance number")
    else:
        label = "best" + (" [suspect]" if verdict.suspect else "")
        table.add_row(f"{label} on {verdict.device.get('name')}", f"{verdict.time_ms:.4f}", "")
        for name, ms in verdict.baselines.items():
            table.add_row(name, f"{ms:.4f}", f"{verdict.speedup.get(name, 0):.2f}x")
    config = best.candidate.provenance.get("config")
    if config:
        table.caption = f"config: {_compact(config)}"
    console.print(table)
