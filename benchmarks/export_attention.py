"""Collect measured attention results into `docs/benchmarks/attention-<card>.json` and figures.

Two measurements, kept apart because their methods differ:
* `verifier`: a `kernelscale bench attention` run from the store: the full verification
  protocol (L2 flush, device-wide sync inside the timed region, interleaved rounds), so host
  launch overhead is part of every time, ours and the baselines' alike.
* `do_bench`: `benchmarks/attention_bench.py` JSON: `triton.testing.do_bench` medians, kernel
  time without the per-call synchronize.

    python benchmarks/export_attention.py --suite-db suite.db --do-bench benchmarks/results/attention-H200-run2.json \
        [--solve-db solve.db] --out docs/benchmarks
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kernelscale.report import plots
from kernelscale.report.summary import summarize_run
from kernelscale.store.db import Store


def verifier_rows(db: Path) -> tuple[list[dict], dict]:
    store = Store(db)
    try:
        run_id = store.list_runs(1)[0].id
        summary = summarize_run(store, run_id)
    finally:
        store.close()
    rows = []
    for problem in summary.problems:
        if problem.best_time_ms is None:
            continue
        rows.append(
            {
                "variant": problem.name.split("/", 1)[1],
                "D": 128,
                "ours_ms": problem.best_time_ms,
                "baselines_ms": problem.baselines_ms,
                "speedup": problem.speedup,
            }
        )
    device = _device(store_path=db)
    return rows, device


def _device(store_path: Path) -> dict:
    store = Store(store_path)
    try:
        rows = store.attempt_rows(store.list_runs(1)[0].id)
    finally:
        store.close()
    return json.loads(rows[0]["body"])["device"] if rows else {}


def do_bench_rows(path: Path) -> tuple[list[dict], dict]:
    data = json.loads(path.read_text())
    keep = ("variant", "D", "ours_ms", "flex_ms", "speedup_flex", "ours_tflops", "best_config")
    rows = [
        {k: r.get(k) for k in keep} | {k: v for k, v in r.items() if k.startswith("sdpa")}
        for r in data["rows"]
    ]
    return rows, data["environment"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--suite-db", type=Path, required=True)
    parser.add_argument("--do-bench", type=Path, required=True)
    parser.add_argument("--solve-db", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    verifier, device = verifier_rows(args.suite_db)
    bench, environment = do_bench_rows(args.do_bench)
    card = (device.get("name") or environment.get("card", "gpu")).replace("NVIDIA ", "").replace(" ", "-")
    shape = {"B": 4, "Hq": 16, "Hkv": 16, "Sq": 4096, "Skv": 4096, "dtype": "bfloat16"}
    document = {
        "card": device.get("name"),
        "torch": device.get("torch"),
        "triton": device.get("triton"),
        "cuda": device.get("cuda"),
        "shape": shape,
        "verifier": {"method": "kernelscale bench attention: full verification protocol", "rows": verifier},
        "do_bench": {
            "method": "triton.testing.do_bench median, same process as Flex/SDPA",
            "environment": environment,
            "rows": bench,
        },
    }
    (args.out / f"attention-{card}.json").write_text(json.dumps(document, indent=1, default=str))
    _figures(args, card)
    print(f"wrote {args.out / f'attention-{card}.json'}")


def _figures(args, card: str) -> None:
    store = Store(args.suite_db)
    try:
        summary = summarize_run(store, store.list_runs(1)[0].id)
        plots.speedup_bars(summary, args.out / f"attention-suite-{card}.png")
    finally:
        store.close()
    if args.solve_db:
        store = Store(args.solve_db)
        try:
            run = store.list_runs(1)[0]
            plots.best_over_time(
                store.attempts(run.id),
                args.out / f"softcap-15m-{card}.png",
                title=f"attention/softcap, compiler, --budget 15m ({card})",
            )
        finally:
            store.close()


if __name__ == "__main__":
    main()
