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
            t0 = time.monotonic()
            verdict = await pool.verify(load_problem(f"ops/{path.stem}"), path.read_text(), VerifyOptions())
            row = {"example": path.stem, "wall_s": round(time.monotonic() - t0, 2)} | verdict.to_json()
            rows.append(row)
            with out.open("a") as handle:
                handle.write(json.dumps(row, default=str) + "\n")
            print(f"{path.stem}: {verdict.headline()}  [{row['wall_s']} s]", flush=True)
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "| example | status | ours ms | eager ms | compile ms | vs eager | vs compile | attempt s | start / correctness / timing s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        b, s, c = r["baselines"], r["speedup"], r["cost_s"]
        ms = lambda v: f"{v:.4f}" if isinstance(v, (int, float)) else "–"  # noqa: E731
        ratio = lambda v: f"{v:.2f}x" if isinstance(v, (int, float)) else "–"  # noqa: E731
        split = f"{c.get('process_start', 0):.1f} / {c.get('correctness', 0):.1f} / {c.get('timing', 0):.1f}"
        lines.append(
            f"| {r['example']} | {r['status']}{' (suspect)' if r['suspect'] else ''} | {ms(r['time_ms'])} | "
            f"{ms(b.get('eager'))} | {ms(b.get('compile'))} | {ratio(s.get('eager'))} | "
            f"{ratio(s.get('compile'))} | {r['wall_s']} | {split} |"
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
