"""Decode kernel: the splits merged by the last split to finish (one launch) against a second
combine kernel (two launches), same config, same run; with FlexAttention (Triton) as the peer.

Each kernel is checked against the fp32 reference, then timed as CUDA-graph replays with the L2
flushed (attention_decode.graph_timer). B=8, Hq=32, Hkv=8, Skv=32768, D=128, bf16.

    python benchmarks/decode_fused_ab.py --out $OUT --deadline 90
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import attention_decode as ad  # noqa: E402 - also puts src/ on the path
import torch  # noqa: E402

from kernelscale.propose.compiler.space import Features, decode_default_config  # noqa: E402

CASES = (("sliding_window", 1), ("document", 1), ("full", 1), ("sliding_window", 16), ("document", 16))
PEERS = (("sliding_window", 1), ("document", 1))


def timed_model(case, config, fused: bool) -> dict:
    model = case.model(config)
    sys.modules[type(model).__module__].FUSED_COMBINE = fused  # read when the launch plan is made
    fn = lambda: model(case.q, case.k, case.v)  # noqa: E731
    fn()
    torch.cuda.synchronize()
    err, ok = ad.check(fn(), case.reference)
    (plan,) = model.launches.values()
    entry = {"fused": fused, "ok": ok, "max_abs_err": err, "splits": plan.splits}
    if ok:
        entry["graph_ms"] = ad.graph_timer(fn, "cuda")
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--deadline", type=float, default=90.0)
    args = parser.parse_args()
    started = time.monotonic()
    rows = []
    for name, sq in CASES:
        if time.monotonic() - started > args.deadline:
            break
        shape = {**ad.GPU_SHAPE, "Sq": sq}
        case = ad.Case(name, shape, ad.make_inputs(shape, "cuda"), "cuda")
        features = Features(**{**case.compiled.features.__dict__, "D": shape["D"], "decode": True})
        config = decode_default_config(features, "cuda")
        row = {"variant": name, "Sq": sq, "config": config.as_dict()}
        row["runs"] = [timed_model(case, config, fused) for fused in (True, False, True)]
        if (name, sq) in PEERS:
            case.peer("flex", lambda c=case: ad.flex(c))  # checked first, then timed both ways
            row["flex_ms"], row["flex_graph_ms"] = case.row.get("flex_ms"), case.row.get("flex_graph_ms")
        rows.append(row)
        print(json.dumps(row), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "decode-fused-ab.json").write_text(
        json.dumps({"environment": ad.environment("cuda"), "rows": rows}, indent=1, default=str)
    )


if __name__ == "__main__":
    main()
