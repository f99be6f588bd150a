"""Live progress lines and the closing summary of `solve`."""

from __future__ import annotations

import json


class ProgressPrinter:
    """Receives the loop's events; one line per attempt with the best so far."""

    def __init__(self, console, quiet: bool = False):
        self.console = console
        self.quiet = quiet
        self.run_id = None
        self.tokens = 0

    def __call__(self, kind: str, info: dict) -> None:
        if kind == "start":
            self.run_id = info["run_id"]
            self._say(
                f"run {info['run_id']}: {info['problem']} on {info['device']} "
                f"({info['workers']} worker(s), proposer {info['proposer']})"
            )
        elif kind == "attempt":
            self._attempt(info)

    def _attempt(self, info: dict) -> None:
        attempt, best = info["attempt"], info["best"]
        self.tokens += int(attempt.candidate.usage.get("total_tokens") or 0)
        config = attempt.candidate.provenance.get("config")
        best_text = "-"
        if best is not None:
            best_text = f"{best.best_speedup:.2f}x" if best.best_speedup else "correct"
        tokens = f"  tokens {self.tokens}" if self.tokens else ""
        cached = " (cached)" if attempt.verdict.cached else ""
        self._say(
            f"#{info['n']:<3} {attempt.elapsed_s:7.1f}s  {attempt.verdict.headline()}{cached}  "
            f"best {best_text}{tokens}" + (f"  {_compact(config)}" if config else "")
        )

    def _say(self, text: str) -> None:
        if not self.quiet:
            self.console.print(text, highlight=False, markup=False, soft_wrap=True)


def _compact(config: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in config.items())


def print_summary(console, result, as_json: bool) -> None:
    summary = json.loads((result.out_dir / "summary.json").read_text())
    if as_json:
        print(json.dumps(summary))
        return
    best = result.best
    console.print(
        f"\nrun {result.run_id}: {len(result.attempts)} attempts, stopped: {result.stopped}", highlight=False
    )
    if best is None:
        console.print("no correct kernel found", style="red")
        return
    verdict = best.verdict
    if verdict.interpreted:
        console.print(
            f"best: correct (interpreted on the CPU, {verdict.time_ms:.2f} ms: not a performance number)"
        )
    else:
        console.print(
            f"best: {verdict.time_ms:.4f} ms on {verdict.device.get('name')}"
            + (" [suspect]" if verdict.suspect else ""),
            highlight=False,
        )
        for name, ms in verdict.baselines.items():
            console.print(
                f"  vs {name:<12} {ms:.4f} ms  speedup {verdict.speedup.get(name, 0):.2f}x", highlight=False
            )
    config = best.candidate.provenance.get("config")
    if config:
        console.print(f"config: {_compact(config)}", highlight=False)
    console.print(
        f"wrote {result.out_dir / 'best_kernel.py'} and {result.out_dir / 'summary.json'}", highlight=False
    )
