"""Attempts per minute on one GPU: the local pool (`--gpus 0`) against the Ray executor on that GPU.

Each executor verifies a stream of distinct candidates (copies of a hand-written kernel, each
with its own comment, so the cache never answers) for the same fixed window, after one warm-up
attempt that builds the problem's baselines and is not counted. One chain (`refine`) with an
instant proposer keeps the one worker busy; the time between attempts is the executor's own. The local pool runs first and is
closed before Ray starts, so the two never share the GPU. Writes `executor_throughput.json`.

    python benchmarks/executor_throughput.py --deadline 120 --out $OUT
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from kernelscale.problems import load_problem
from kernelscale.propose.replay import ReplayProposer
from kernelscale.search.session import Session
from kernelscale.search.settings import RunSettings
from kernelscale.verify.options import VerifyOptions

EXAMPLES = Path(__file__).resolve().parent.parent / "src" / "kernelscale" / "examples"
START_MARGIN_S = 60.0  # both executors' start-up and warm-up, left out of the two windows


def main() -> int:
    args = parse_args()
    signal.alarm(int(args.deadline) + 30)  # a Ray start that hangs must not outlive the deadline by much
    started = time.monotonic()
    args.out.mkdir(parents=True, exist_ok=True)
    window = args.window or max(5.0, min(45.0, (args.deadline - START_MARGIN_S) / 2))
    problem = load_problem(args.problem).with_options(baselines=("eager",))  # no compile in the warm-up
    kernel = (EXAMPLES / f"{problem.name.split('/')[-1]}.py").read_text()
    results = {"problem": problem.name, "device": args.device, "window_s": window, "executors": {}}
    for kind in ("local", "ray"):
        left = args.deadline - (time.monotonic() - started)
        if left < window + 10:
            results["executors"][kind] = {"skipped": f"only {left:.0f} s of the deadline left"}
            continue
        try:
            results["executors"][kind] = asyncio.run(measure(kind, problem, kernel, window, args.device))
        except Exception as exc:  # noqa: BLE001 - one executor failing still reports the other
            results["executors"][kind] = {"error": f"{type(exc).__name__}: {exc}"}
        print(kind, json.dumps(results["executors"][kind]), flush=True)
        write(args.out, results)  # what is measured so far survives a later hang
    rates = [results["executors"][k].get("attempts_per_minute") for k in ("local", "ray")]
    results["ray_over_local"] = rates[1] / rates[0] if all(rates) else None
    results["total_s"] = round(time.monotonic() - started, 1)
    write(args.out, results)
    print(json.dumps(results, indent=2))
    return 0


def write(out: Path, results: dict) -> None:
    (out / "executor_throughput.json").write_text(json.dumps(results, indent=2))


async def measure(kind: str, problem, kernel: str, window: float, device: str) -> dict:
    """Start the executor, warm it up with one attempt, then count attempts in `window` seconds.
    The search goes through a Session, as `kernelscale solve --executor KIND` does."""
    if kind == "ray":
        import ray

        ray.init(include_dashboard=False, log_to_driver=False)
    folder = tempfile.TemporaryDirectory()
    settings = RunSettings(
        proposer="replay",
        strategy="refine",
        budget_s=window,
        device=device,
        gpus="0" if kind == "local" and device == "cuda" else None,
        workers=1,
        executor=kind,
        db_path=Path(folder.name) / "k.db",
        verify_options=VerifyOptions(timeout_s=60),
    )
    session = Session(settings)
    try:
        t0 = time.monotonic()
        await session.start()
        start_s = time.monotonic() - t0
        warm = await session.pool.verify(problem, kernel + "\n# warm-up\n", settings.verify_options)
        run_id = session.store.create_run("solve", problem.name, {"executor": kind})
        session.store.add_problem(run_id, problem)
        copies = ReplayProposer([kernel + f"\n# copy {i} ({kind})\n" for i in range(100000)])
        t1 = time.monotonic()
        outcome = await session.search(problem, run_id, copies, [])
        seconds = time.monotonic() - t1  # the verification in flight at the deadline finishes and counts
        attempts = outcome.attempts
        return {
            "workers": session.pool.size,
            "device_key": session.pool.device_key,
            "start_s": round(start_s, 1),
            "warm_up": warm.headline()[:200],
            "stopped": outcome.stopped,
            "attempts": len(attempts),
            "seconds": round(seconds, 2),
            "attempts_per_minute": round(60 * len(attempts) / seconds, 2),
            "statuses": dict(Counter(a.verdict.status for a in attempts)),
        }
    finally:
        await session.close()
        session.close_store()
        folder.cleanup()
        if kind == "ray":
            import ray

            ray.shutdown()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deadline", type=float, default=120.0, help="seconds for the whole script")
    parser.add_argument("--out", type=Path, required=True, help="folder for executor_throughput.json")
    parser.add_argument(
        "--problem",
        default="ops/matmul_bf16",
        help="an ops problem with a kernel in examples/ (default: the cheapest attempt measured)",
    )
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument(
        "--window", type=float, default=None, help="seconds per executor (default: from --deadline)"
    )
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(main())
