"""Sweep of the compiler's decode-kernel configs for the short masks, one GPU.

At B=8, Hq=32, Hkv=8, Skv=32768, D=128 (bf16) sliding_window and document stream only ~17 KV
blocks per (batch, KV head), so fixed costs (two launches, the pipeline's start, the split
partials) are most of their 23-37 µs, and only the automatic split count (4 there), 32 and 64
were ever measured. This walks the decode knobs one at a time around each case's best config so
far (coordinate descent, the most promising stages first): num_splits, the packed query tile
(block_m, Sq=16 only), block_n, num_warps, num_stages. `full` runs the automatic config only, as
a control. Each kernel is checked once against the fp32 reference, then timed as CUDA-graph
replays with the L2 flushed, and FlexAttention (Triton backend) the same way, all with
benchmarks/attention_decode.py's helpers. No new work starts when --deadline is near; the JSON
is rewritten after every step, so a cut-short run keeps what it measured.

    python benchmarks/decode_sweep.py --deadline 120 --out "$OUT"    # H200, ~2.5 min in all
    python benchmarks/decode_sweep.py --tiny --out /tmp/sweep        # Triton interpreter, CPU
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

TINY = "--tiny" in sys.argv
if TINY:
    os.environ["TRITON_INTERPRET"] = "1"  # must precede the first import of triton
sys.path.insert(0, str(Path(__file__).resolve().parent))

import attention_decode as ad  # noqa: E402 - also puts src/ on the path, as its script does
import torch  # noqa: E402

from kernelscale.propose.compiler.errors import CompilerError  # noqa: E402
from kernelscale.propose.compiler.space import Config, Features, decode_default_config, fits  # noqa: E402

VARIANTS = ("sliding_window", "document", "full")
SQS = (1, 16)
TINY_SHAPE = {"B": 1, "Hq": 4, "Hkv": 1, "Skv": 512, "D": 32, "dtype": "bfloat16"}
# (knob, values), each stage varied around a case's best config at the stage's start. Splits
# first: auto (4 here) is the measured 23 µs, 1 split has no partials and no combine launch, 2
# halve the partials. Then, at Sq=16, 2 or 4 query tiles of 32/16 packed rows instead of one of
# 64: more programs without more partials. The KV tile next, the split count again at the best
# tile, then warps and pipeline depth (a few percent in the prefill probes), then a last pass.
STAGES = (
    ("num_splits", (0, 1, 2)),
    ("block_m", (16, 32)),
    ("block_n", (128, 32)),
    ("num_splits", (1, 2, 3, 4, 6, 8, 0)),
    ("num_warps", (8, 2)),
    ("num_stages", (2, 4)),
    ("block_n", (32, 64, 128)),
    ("block_m", (16, 32, 64)),
    ("num_splits", (1, 2, 3, 4, 6, 8, 0)),
)
TINY_STAGES = (("num_splits", (0, 1, 2)), ("block_m", (16,)), ("block_n", (32,)), ("num_splits", (3, 8)))
# full reads the whole cache (0.26 ms): the automatic config shows the harness reproduces it.
CONTROL_STAGES = (("num_splits", (0,)),)
# FlexAttention compiles per variant and shape (seconds each): the Sq=1 bars of the short masks
# right after the first stage, the rest after the second split sweep.
FLEX_AFTER = {
    0: (("sliding_window", 1), ("document", 1)),
    3: (("sliding_window", 16), ("document", 16), ("full", 1), ("full", 16)),
}
KNOBS = ("num_splits", "block_n", "block_m", "num_warps", "num_stages")


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--deadline", type=float, default=120.0, help="seconds; no new work starts after this")
    ap.add_argument(
        "--out", default=os.environ.get("OUT", "/tmp/ks-out"), help="folder for decode-sweep.json"
    )
    ap.add_argument("--tiny", action="store_true", help="Triton interpreter on the CPU at a tiny shape")
    return ap.parse_args()


def in_space(config: Config) -> bool:
    """Whether the proposer's search space (space.CHOICES) holds this config; the sweep also
    measures values outside it (1-3 and 6 splits, 32-key tiles, 2 warps) to learn whether to add them."""
    try:
        Config.from_dict(config.as_dict())
        return True
    except CompilerError:
        return False


class Sweep:
    """The cases (variant, Sq), their measured configs, and the work in priority order."""

    def __init__(self, device):
        self.device = device
        self.stages = TINY_STAGES if TINY else STAGES
        base = TINY_SHAPE if TINY else ad.GPU_SHAPE
        inputs = {sq: ad.make_inputs({**base, "Sq": sq}, device) for sq in SQS}
        self.cases = {
            (n, sq): ad.Case(n, {**base, "Sq": sq}, inputs[sq], device) for sq in SQS for n in VARIANTS
        }
        for case in self.cases.values():
            case.row.pop("ours")  # attention_decode's proposer configs: not run here
            case.row["configs"], case.seen, case.tried = [], {}, set()
            features = Features(**{**case.compiled.features.__dict__, "D": case.shape["D"], "decode": True})
            case.base = decode_default_config(features, device)
        self.skipped, self.errors = [], []

    def work(self):
        """(label, kind, function), lazily: a stage's candidates come from the results so far."""
        for i in range(max(len(self.stages), max(FLEX_AFTER) + 1)):
            for (name, sq), case in self.cases.items():
                stages = CONTROL_STAGES if name == "full" else self.stages
                if i < len(stages):
                    for config in self.candidates(case, *stages[i]):
                        label = f"{name} Sq={sq} " + " ".join(f"{k}={getattr(config, k)}" for k in KNOBS)
                        yield label, "config", lambda c=case, cf=config, i=i: self.measure(c, cf, i)
            for name, sq in FLEX_AFTER.get(i, ()):
                if (name, sq) not in self.cases:  # VARIANTS cut down
                    continue
                case = self.cases[(name, sq)]
                yield f"flex {name} Sq={sq}", "flex", lambda c=case: c.peer("flex", lambda: ad.flex(c))

    def candidates(self, case, knob, values):
        """The best config so far with `knob` set to each of `values` (block_m only where the
        packed rows G*Sq overflow the smallest tile, 16: below that every block_m is one tile)."""
        shape = case.shape
        if knob == "block_m" and shape["Hq"] // shape["Hkv"] * shape["Sq"] <= 16:
            return []
        base = self.best(case)
        base = Config(**base["config"]) if base else case.base
        configs = [replace(base, **{knob: v}) for v in values]
        return [c for c in configs if c not in case.tried]

    @staticmethod
    def best(case, n=1):
        timed = sorted((e for e in case.row["configs"] if e.get("ok") and e.get("ms")), key=lambda e: e["ms"])
        return timed[:n] if n > 1 else (timed[0] if timed else None)

    def measure(self, case, config, stage):
        """Build, check once against the reference, time: one entry in case.row["configs"]."""
        case.tried.add(config)
        entry = {"stage": stage, "config": config.as_dict(), "in_space": in_space(config)}
        s = case.shape
        rows = s["Hq"] // s["Hkv"] * s["Sq"]
        tile = min(config.block_m, max(16, 1 << (rows - 1).bit_length()))  # as the decode module packs
        if not fits(replace(config, block_m=tile), s["D"]):
            entry["error"] = "rejected: pipelined tiles overflow shared memory (space.fits)"
            case.row["configs"].append(entry)
            return entry["error"]
        start = time.monotonic()
        try:  # render, import, block schedule and launch plan: no compile yet
            model = case.model(config)
            plan = model._prepare(case.q, case.k, case.v) if hasattr(model, "_prepare") else None
        except Exception as exc:  # noqa: BLE001 - recorded with the config, as a failed build
            entry.update(ok=False, error=f"{type(exc).__name__}: {str(exc)[:300]}")
            case.row["configs"].append(entry)
            return entry["error"]
        if plan is not None:  # the resolved launch: split count and query tiles, before any compile
            entry["splits"], entry["m_tiles"] = plan.grid[0], plan.grid[2]
            key = (
                plan.grid,
                tuple((k, v) for k, v in config.as_dict().items() if k not in ("num_splits", "block_m")),
            )
            if key in case.seen:  # recorded, not compiled again
                entry["same_as"] = case.seen[key]
                case.row["configs"].append(entry)
                return f"same kernel and launch as config #{entry['same_as']}: not run again"
            case.seen[key] = len(case.row["configs"])
        case.row["configs"].append(entry)
        try:
            self.run(case, model, entry)
        except Exception as exc:  # noqa: BLE001 - a config that fails to build or launch is a result
            entry.update(ok=False, error=f"{type(exc).__name__}: {str(exc)[:300]}")
        entry["wall_s"] = time.monotonic() - start
        return f"{entry['ms']:.4f} ms" if entry.get("ms") else entry.get("error", "?")

    def run(self, case, model, entry):
        fn = lambda: model(case.q, case.k, case.v)  # noqa: E731
        start = time.monotonic()
        fn()  # the first call compiles
        if self.device == "cuda":
            torch.cuda.synchronize()
        entry["first_call_s"] = time.monotonic() - start
        entry["max_abs_err"], entry["ok"] = ad.check(fn(), case.reference)
        if not entry["ok"]:
            entry["error"] = "does not match the fp32 reference"
            return
        entry["ms"] = ad.graph_timer(fn, self.device) if self.device == "cuda" else ad.timer(fn, self.device)
        if entry["ms"] is None:
            entry.update(ok=False, error="not capturable in a CUDA graph")

    def summary(self):
        """Per variant: best ms at each Sq, Sq=16 / Sq=1, and Flex / ours at each Sq."""
        out = {}
        for name in VARIANTS:
            best = {sq: self.best(self.cases[(name, sq)]) for sq in SQS}
            ms = {sq: b["ms"] if b else None for sq, b in best.items()}
            flex = {sq: self.cases[(name, sq)].row.get("flex_graph_ms") for sq in SQS}
            row = {f"best_ms_sq{sq}": ms[sq] for sq in SQS}
            row.update({f"flex_graph_ms_sq{sq}": flex[sq] for sq in SQS})
            row["sq16_over_sq1"] = ms[16] / ms[1] if ms[1] and ms[16] else None
            for sq in SQS:
                row[f"flex_over_ours_sq{sq}"] = flex[sq] / ms[sq] if flex[sq] and ms[sq] else None
            out[name] = row
        return out

    def write(self, path, env, args, elapsed):
        data = {
            "environment": env,
            "interpreted": TINY,
            "deadline_s": args.deadline,
            "elapsed_s": elapsed,
            "timer": "CUDA-graph replay, L2 flushed, median of 50"
            if self.device == "cuda"
            else "one call, wall",
            "stages": self.stages,
            "cases": [c.row for c in self.cases.values()],
            "summary": self.summary(),
            "errors": self.errors,
            "skipped": self.skipped,
        }
        path.write_text(json.dumps(data, indent=1))


def describe(entry):
    c = entry["config"]
    auto = "auto=" if c["num_splits"] == 0 else ""
    return (
        f"splits {auto}{entry.get('splits', c['num_splits']):<3} block_n {c['block_n']:<3} tiles "
        f"{entry.get('m_tiles', '?')} (block_m {c['block_m']:<3}) warps {c['num_warps']} stages {c['num_stages']}"
    )


def table(sweep):
    lines = []
    for (name, sq), case in sweep.cases.items():
        entries = case.row["configs"]
        ran = sum(1 for e in entries if "ok" in e)
        failed = sum(1 for e in entries if "error" in e)
        lines.append(f"{name} Sq={sq}: {ran} configs built, {failed} failed or rejected; best 5 (ms):")
        lines += [f"  {e['ms']:8.4f}  {describe(e)}" for e in Sweep.best(case, 5)]
        if case.row.get("flex_graph_ms"):
            lines.append(f"  {case.row['flex_graph_ms']:8.4f}  FlexAttention (Triton), graph")

    def fmt(x, spec):
        return format(x, spec) if x is not None else "-"

    lines.append(
        f"{'variant':16s} {'Sq=1 ms':>8s} {'Sq=16 ms':>8s} {'16/1':>6s} {'flex/ours Sq=1':>15s} {'Sq=16':>6s}"
    )
    for name, r in sweep.summary().items():
        lines.append(
            f"{name:16s} {fmt(r['best_ms_sq1'], '8.4f')} {fmt(r['best_ms_sq16'], '8.4f')} "
            f"{fmt(r['sq16_over_sq1'], '6.2f')} {fmt(r['flex_over_ours_sq1'], '15.2f')} "
            f"{fmt(r['flex_over_ours_sq16'], '6.2f')}"
        )
    lines.append("targets: 16/1 <= 1.3 (short masks); flex/ours Sq=1 >= 3 (sliding_window)")
    return "\n".join(lines)


def main():
    args = parse_args()
    device = "cpu" if TINY else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        sys.exit("no GPU visible: use --tiny to check the script on the CPU")
    start = time.monotonic()
    ad.raise_dynamo_limits()
    env = ad.environment(device)
    out = Path(args.out) / "decode-sweep.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    sweep = Sweep(device)
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    log(f"{time.monotonic() - start:6.1f}s cases ready: {len(sweep.cases)}")
    # Running estimates of one step's cost (s), so no step starts that would end past the deadline.
    cost = {"config": 3.0, "flex": 20.0} if device == "cuda" else {"config": 1.0, "flex": 0.1}
    for label, kind, fn in sweep.work():
        now = time.monotonic() - start
        if now + cost[kind] > args.deadline:
            sweep.skipped.append(label)
            continue
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - a step that cannot run here is a result, not a crash
            sweep.errors.append({"task": label, "error": f"{type(exc).__name__}: {str(exc)[:300]}"})
            result = sweep.errors[-1]["error"]
        took = time.monotonic() - start - now
        if not str(result).startswith(("same kernel", "rejected")):  # those cost no compile
            cost[kind] = 0.5 * (cost[kind] + took)
        log(f"{now:6.1f}s {label}: {result} ({took:.1f} s)")
        sweep.write(out, env, args, time.monotonic() - start)
    sweep.write(out, env, args, time.monotonic() - start)
    log(table(sweep))
    log(f"skipped after the deadline: {len(sweep.skipped)} steps" if sweep.skipped else "nothing skipped")
    log(f"wrote {out} in {time.monotonic() - start:.0f} s")


if __name__ == "__main__":
    main()
