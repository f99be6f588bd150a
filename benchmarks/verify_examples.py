"""Verify every shipped example through the real verifier pool on this machine's GPU.

Writes one JSON line per example (the whole verdict: candidate, eager and torch.compile times,
speedups, the verifier's own cost split) and prints a table last. Stops starting new examples
once `--deadline` seconds have passed, so a device call ends inside its limit with what it has.

    python benchmarks/verify_examples.py --out $OUT/examples.jsonl [--device cuda] [--deadline 420]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from importlib import resources
from pathlib import Path

from kernelscale.problems import load_problem
from kernelscale.verify.options import VerifyOptions
from kernelscale.verify.slots import SlotPool


def examples() -> list[Path]:
    folder = Path(str(resources.files("kernelscale.examples")))
    return sorted(p for p in folder.glob("*.py") if not p.name.startswith("_"))


async def run(out: Path, device: str | None, deadline_s: float, only: list[str]) -> list[dict]:
    started = time.monotonic()
    rows = []
    async with SlotPool.local(device=device) as pool:
        for path in examples():
            if only and path.stem not in only:
                continue
            if time.monotonic() - started > deadline_s:
                print(f"deadline reached, skipping {path.stem}", flush=True)
                continue
            known = None
            for attempt in ("first", "later"):
                # The later attempt is what every attempt of a solve after its first costs: the
                # oracle has built the problem and calibrated, the store has the baselines.
                t0 = time.monotonic()
                options = VerifyOptions(known_baselines=known)
                verdict = await pool.verify(load_problem(f"ops/{path.stem}"), path.read_text(), options)
                row = {"example": path.stem, "attempt": attempt, "wall_s": round(time.monotonic() - t0, 2)}
                row |= verdict.to_json()
                rows.append(row)
                with out.open("a") as handle:
                    handle.write(json.dumps(row, default=str) + "\n")
                print(f"{path.stem} ({attempt}): {verdict.headline()}  [{row['wall_s']} s]", flush=True)
                known = {k: v for k, v in verdict.baselines.items() if isinstance(v, (int, float))}
                if verdict.status != "correct" or not known:
                    break
    return rows


def own_cost_s(cost: dict) -> float:
    """The verifier's own seconds in an attempt, without the candidate's first call (its compile)
    and without what a problem pays once (setup, calibration, baselines)."""
    steps = ("process_start", "correctness", "timing", "baselines_after")
    return sum(cost.get(k, 0.0) for k in steps) - cost.get("first_call", 0.0)


def table(rows: list[dict]) -> str:
    lines = [
        "| example | attempt | status | ours ms | eager ms | compile ms | vs eager | vs compile | attempt s"
        " | once per problem s (setup / baselines / calibration) | start / correctness / first call / timing s"
        " | verifier's own s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        b, s, c = r["baselines"], r["speedup"], r["cost_s"]
        ms = lambda v: f"{v:.4f}" if isinstance(v, (int, float)) else "–"  # noqa: E731
        ratio = lambda v: f"{v:.2f}x" if isinstance(v, (int, float)) else "–"  # noqa: E731
        once = " / ".join(f"{c.get(k, 0):.1f}" for k in ("setup", "baselines", "calibration"))
        split = " / ".join(
            f"{c.get(k, 0):.1f}" for k in ("process_start", "correctness", "first_call", "timing")
        )
        lines.append(
            f"| {r['example']} | {r.get('attempt', '')} | {r['status']}{' (suspect)' if r['suspect'] else ''} | "
            f"{ms(r['time_ms'])} | {ms(b.get('eager'))} | {ms(b.get('compile'))} | {ratio(s.get('eager'))} | "
            f"{ratio(s.get('compile'))} | {r['wall_s']} | {once} | {split} | {own_cost_s(c):.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("examples.jsonl"))
    parser.add_argument("--device", default=None)
    parser.add_argument("--deadline", type=float, default=420.0)
    parser.add_argument("--only", nargs="*", default=[])
    args = parser.parse_args()
    rows = asyncio.run(run(args.out, args.device, args.deadline, args.only))
    print(table(rows))
    if rows:
        print("device:", json.dumps(rows[0]["device"]))


if __name__ == "__main__":
    main()
