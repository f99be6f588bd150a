#!/usr/bin/env bash
# Phases of a GPU measurement session, each short enough for one device call (run from the repo root).
#   examples     verify a few shipped examples: the verifier's own cost per attempt
#   suite        `kernelscale bench attention` (one compiler attempt per variant) + its report, tarred
#   solve-start  `kernelscale solve attention/softcap --budget 15m` in its own session (survives the call)
#   solve-wait   wait for it, then copy its db, summary and log to $OUT
#   decode       benchmarks/attention_decode.py (decode shapes vs Flex, FLASH, cuDNN; wrapper overhead)
set -u
export PYTHONPATH=$PWD/src TRITON_CACHE_DIR=/tmp/ks-triton PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/ks-out}
SOLVE=/tmp/ks-solve
mkdir -p "$OUT" "$SOLVE"
ks() { python3 -m kernelscale "$@"; }

case "${1:-}" in
examples)
  timeout 150 python3 benchmarks/verify_examples.py --out "$OUT/examples-cost.jsonl" --deadline 90 \
    --only softmax rms_norm matmul_bf16 cumsum layer_norm 2>&1 | grep -v Warning | tee "$OUT/examples-cost.log"
  ;;
suite)
  timeout "${2:-400}" python3 -m kernelscale bench attention --attempts 1 --budget 120s --db "$OUT/suite.db" \
    --out /tmp/ks-suite 2>&1 | grep -v Warning | tee "$OUT/suite.log"
  tar czf "$OUT/suite-report.tgz" -C /tmp ks-suite
  ;;
solve-start)
  setsid nohup python3 -m kernelscale solve attention/softcap --budget 15m --db "$SOLVE/solve.db" \
    --out "$SOLVE/out" > "$SOLVE/solve.log" 2>&1 < /dev/null &
  sleep "${2:-540}"
  tail -5 "$SOLVE/solve.log"
  ;;
solve-wait)
  for _ in $(seq 1 120); do pgrep -f "kernelscale solve attention/softcap" > /dev/null || break; sleep 5; done
  cp "$SOLVE/solve.db" "$SOLVE/solve.log" "$OUT/" 2>/dev/null
  cp "$SOLVE/out/summary.json" "$OUT/solve-summary.json" 2>/dev/null
  cp "$SOLVE/out/best_kernel.py" "$OUT/softcap_best_kernel.py" 2>/dev/null
  tail -25 "$SOLVE/solve.log"
  ;;
decode)
  timeout 170 python3 benchmarks/attention_decode.py --deadline "${2:-100}" --out "$OUT" 2>&1 \
    | grep -v Warning | tee "$OUT/attention-decode.log"
  ;;
*)
  echo "usage: $0 examples|suite|solve-start [seconds]|solve-wait|decode [deadline]" >&2
  exit 2
  ;;
esac
