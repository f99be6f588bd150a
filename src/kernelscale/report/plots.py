"""The report's figures as PNG files, drawn with matplotlib's Agg canvas.

Figures are built on `matplotlib.figure.Figure` with an explicit Agg canvas rather than through
pyplot: no global backend is switched, no window can open, and nothing leaks between calls.

* `speedup_bars`: speedup over FlexAttention per attention variant (NVIDIA's Figure 3 shape).
* `solved_over_time`: share of problems solved against time spent per problem (Figure 4).
* `best_over_time`: the best speedup found so far during one problem's search.

Each returns the path written, or None when there is nothing honest to draw (for example
speedups of an interpreted run).
"""

from __future__ import annotations

from pathlib import Path

from kernelscale.propose.base import Attempt
from kernelscale.report import summary as S

_BAR = "#4c72b0"
_BAR_SLOW = "#c44e52"
_COLORS = ("#4c72b0", "#dd8452", "#55a868", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")


def _figure(width: float = 7.0, height: float = 4.0):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def _short(name: str) -> str:
    return name.split("/", 1)[1] if name.startswith(("attention/", "ops/")) else Path(name).stem


def speedup_bars(summary: S.RunSummary, path: str | Path, baseline: str | None = None) -> Path | None:
    """Bars of the best speedup per problem over `baseline` (default: FlexAttention), a line at 1.0.

    Problems without a correct kernel get an empty slot marked "not solved" so a failure is seen
    rather than silently dropped.
    """
    if summary.interpreted:
        return None
    baseline = baseline or S.flex_baseline(summary.baselines)
    if baseline is None or baseline not in summary.baselines:
        return None
    names = [_short(p.name) for p in summary.problems]
    values = [p.speedup_over(baseline) for p in summary.problems]
    fig = _figure(max(5.0, 0.9 * len(names) + 2.0), 4.0)
    ax = fig.add_subplot()
    heights = [v or 0.0 for v in values]
    colors = [_BAR if (v or 0) >= 1.0 else _BAR_SLOW for v in values]
    bars = ax.bar(range(len(names)), heights, color=colors)
    for bar, value in zip(bars, values):
        label = f"{value:.2f}x" if value is not None else "not solved"
        ax.annotate(
            label,
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.axhline(1.0, color="black", linestyle="--", linewidth=1)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    shown = "FlexAttention" if baseline.startswith("flex") else baseline
    ax.set_ylabel(f"speedup over {shown}")
    ax.set_ylim(0, max([1.2, *heights]) * 1.15)
    device = ", ".join(summary.devices)
    ax.set_title(f"Speedup over {shown} per problem" + (f" ({device})" if device else ""), fontsize=10)
    return _save(fig, path)


def solved_over_time(summary: S.RunSummary, path: str | Path) -> Path | None:
    """Share of all problems with a correct kernel (and, when timed, one faster than eager)
    against the seconds spent on each problem, as step curves."""
    if not summary.problems:
        return None
    fig = _figure()
    ax = fig.add_subplot()
    budget = (
        summary.run.options.get("per_problem_budget_s") if isinstance(summary.run.options, dict) else None
    )
    horizon = (
        max(
            [float(budget or 0.0)]
            + [p.seconds_spent for p in summary.problems]
            + [p.first_correct_s or 0.0 for p in summary.problems]
        )
        or 1.0
    )
    curves = [("correct", "first_correct_s", _COLORS[0])]
    if not summary.interpreted and any(p.first_fast_s is not None for p in summary.problems):
        curves.append(("correct and faster than eager", "first_fast_s", _COLORS[1]))
    for label, attr, color in curves:
        points = S.solved_curve(summary.problems, attr)
        xs = [x for x, _ in points] + [horizon]
        ys = [y for _, y in points] + [points[-1][1]]
        ax.step(xs, ys, where="post", label=label, color=color, linewidth=2)
    if budget:
        ax.axvline(float(budget), color="gray", linestyle=":", linewidth=1, label="budget per problem")
    ax.set_xlim(0, horizon * 1.02)
    ax.set_ylim(0, 1.05)
    ax.yaxis.set_major_formatter(_percent())
    ax.set_xlabel("time spent per problem (s)")
    ax.set_ylabel(f"share of {summary.n_problems} problems")
    ax.set_title("Problems solved against time per problem", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def best_over_time(attempts: list[Attempt], path: str | Path, title: str = "") -> Path | None:
    """Best speedup so far over each baseline, a step per improvement along the attempts'
    elapsed_s; failed attempts are ticks along the bottom so the effort between steps shows."""
    curves = S.best_over_time(attempts)
    if not curves:
        return None
    end = max(a.elapsed_s for a in attempts)
    fig = _figure()
    ax = fig.add_subplot()
    for i, (name, points) in enumerate(curves.items()):
        xs = [x for x, _ in points] + [end]
        ys = [y for _, y in points] + [points[-1][1]]
        ax.step(xs, ys, where="post", label=f"vs {name}", color=_COLORS[i % len(_COLORS)], linewidth=2)
        ax.plot(xs[:-1], ys[:-1], "o", color=_COLORS[i % len(_COLORS)], markersize=4)
    failed = [a.elapsed_s for a in attempts if not a.verdict.ok]
    if failed:
        ax.plot(
            failed,
            [0.0] * len(failed),
            "|",
            color="gray",
            markersize=12,
            markeredgewidth=2,
            label="failed attempt",
            transform=ax.get_xaxis_transform(),
        )
    ax.axhline(1.0, color="black", linestyle="--", linewidth=1)
    ax.set_xlim(0, end * 1.02 or 1.0)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("time into the search (s)")
    ax.set_ylabel("best speedup so far")
    ax.set_title(title or "Best speedup over time", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _percent():
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(xmax=1.0)
