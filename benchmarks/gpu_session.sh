#!/usr/bin/env bash
# Phases of a GPU measurement session, each short enough for one device call (run from the repo root).
#   examples     verify a few shipped examples twice (first, later attempt): the verifier's own cost
#   suite        `kernelscale bench attention` (one compiler attempt per variant) + its report, tarred
#   solve-start  `kernelscale solve $PROBLEM --budget $BUDGET` (default attention/softcap, 15m) in its
#                own session, which survives the call; then sleeps ${2:-540} s. solve-wait must reach
#                the same warm machine, which is handed back after 30 s idle: twice on 2026-12-04 the
#                next call found a fresh one and the run was lost. A solve that fits one call
#                (solve-fa4, budget up to ~8m) is the safe choice.
#   solve-wait   wait for it, then copy its db, summary and log to $OUT
#   solve-part   one part of a solve longer than a call: the first call starts
#                `kernelscale solve $PROBLEM --budget $BUDGET` (default attention/causal, 10m) and
#                interrupts it (SIGINT: finished attempts stored) after ${2:-480} s; each later call
#                continues it with --resume on its own clock. Its db and log go to $OUT after every
#                part; a fresh machine picks them up from .stage-solve/ (carry it) if /tmp lost them.
#   flash-diff   benchmarks/fa4_flash_diff.py: our FA4 module against FlexAttention's FLASH backend,
#                hooks and masking plan swapped one at a time (VARIANTS / DIMS, default document 128)
#   decode       benchmarks/attention_decode.py (decode shapes vs Flex, FLASH, cuDNN; wrapper overhead)
#   decode-sweep benchmarks/decode_sweep.py: decode-kernel configs (splits, tiles, warps, stages) for
#                sliding_window and document (full as a control) at Sq=1 and 16, vs Flex, in graphs
#   verifier     benchmarks/verifier_gpu.py: shipped examples, planted candidates, compiler kernels
#   tables       the T5-style bucketed bias with and without relative-position tables, and
#                relative_positional, against Flex and cuDNN (benchmarks/attention_bench.py)
#   first-verdict  benchmarks/first_verdict.py: seconds to the first verdict, first and second run
#   exchange     benchmarks/exchange_profile.py: each step of one call's exchange through the slabs, timed
#   smoke        two minutes over the code paths no CPU run can check: slabs with CUDA tensors, the
#                flush/probe/staging rules on honest kernels and on the planted cheats meant for
#                them, the relative-position tables on the GPU. Run it first in a session.
#   backends     benchmarks/attention_bench.py --backends triton fa4: the compiler's first Triton config
#                and its FlashAttention-4 module per variant, against Flex (Triton and FLASH), cuDNN
#                and FA2 SDPA (needs fa4-install first); VARIANTS / DIMS pick a subset
#   gluon        the Gluon (warp-specialised Hopper) backend: its GPU tests against the fp32 reference
#                (tests/test_compiler_gluon.py -k gpu), then its first ${GLUON_CONFIGS:-3} configs per
#                variant beside the first Triton config (and FA4's, if installed), against Flex (Triton
#                and FLASH), cuDNN and FA2 SDPA; VARIANTS / DIMS pick a subset
#   prune        bias pruning (config bias_prune) on the variants whose logits are c*qk + an index bias:
#                the first Triton config with and without it, against Flex (Triton and FLASH if
#                installed), D=128 (benchmarks/attention_bench.py --configs 2)
#   solve-fa4    `kernelscale solve $PROBLEM --budget ${2:-3m}` (default attention/causal) with flash-attn-4 installed: the
#                verifier judges the compiler's Triton and FA4 candidates; summary and log to $OUT
#   fa4-host     benchmarks/fa4_host_profile.py: the FA4 backend's host time per call against Triton and
#                cuDNN under the verifier's protocol, and what a direct call of FA4's compiled kernel costs
#   fa4-install  benchmarks/fa4_install.sh: flash-attn-4 (FlexAttention's FLASH backend) from the wheels
#                in .whl-fa4a/ and .whl-fa4b/, carried in two consecutive calls (see that script),
#                into /tmp/fa4; later phases on the same warm machine then find it on PYTHONPATH.
# A machine without bubblewrap: carry its .deb (apt-get download bubblewrap) in .whl-deb/.
set -u
export PYTHONPATH=$PWD/src TRITON_CACHE_DIR=/tmp/ks-triton PYTHONUNBUFFERED=1
if [ -f /tmp/fa4/.fa4-stamp ]; then  # installed by the fa4-install phase; its .pth is not processed
  export PYTHONPATH=/tmp/fa4:/tmp/fa4/nvidia_cutlass_dsl/dsl_packages:$PYTHONPATH
fi
if ! command -v bwrap > /dev/null; then  # /tmp/bw outlives the call that carried .whl-deb (warm machine)
  [ -x /tmp/bw/usr/bin/bwrap ] || ! ls .whl-deb/bubblewrap_*.deb > /dev/null 2>&1 || dpkg -x .whl-deb/bubblewrap_*.deb /tmp/bw
  if [ -x /tmp/bw/usr/bin/bwrap ]; then export PATH=/tmp/bw/usr/bin:$PATH; fi
fi
OUT=${OUT:-/tmp/ks-out}
SOLVE=/tmp/ks-solve
mkdir -p "$OUT" "$SOLVE"
ks() { python3 -m kernelscale "$@"; }

case "${1:-}" in
examples)
  timeout "$(( ${2:-120} + 60 ))" python3 benchmarks/verify_examples.py --out "$OUT/examples-cost.jsonl" \
    --deadline "${2:-120}" --only softmax rms_norm add_mul_tanh layer_norm cumsum matmul_bf16 2>&1 | grep -v Warning | tee "$OUT/examples-cost.log"
  ;;
suite)
  timeout "${2:-400}" python3 -m kernelscale bench attention --attempts 1 --budget 120s --db "$OUT/suite.db" \
    --out /tmp/ks-suite 2>&1 | grep -v Warning | tee "$OUT/suite.log"
  tar czf "$OUT/suite-report.tgz" -C /tmp ks-suite
  ;;
solve-start)
  setsid nohup python3 -m kernelscale solve "${PROBLEM:-attention/softcap}" --budget "${BUDGET:-15m}" --db "$SOLVE/solve.db" \
    --out "$SOLVE/out" > "$SOLVE/solve.log" 2>&1 < /dev/null &
  sleep "${2:-540}"
  tail -5 "$SOLVE/solve.log"
  ;;
solve-wait)
  for _ in $(seq 1 120); do pgrep -f "kernelscale solve" > /dev/null || break; sleep 5; done
  cp "$SOLVE/solve.db" "$SOLVE/solve.log" "$OUT/" 2>/dev/null
  cp "$SOLVE/out/summary.json" "$OUT/solve-summary.json" 2>/dev/null
  cp "$SOLVE/out/best_kernel.py" "$OUT/solve-best_kernel.py" 2>/dev/null
  tail -25 "$SOLVE/solve.log"
  ;;
solve-part)
  if [ ! -f "$SOLVE/solve.db" ] && [ -f .stage-solve/solve.db ]; then cp .stage-solve/* "$SOLVE/"; fi
  if [ -f "$SOLVE/run-id" ]; then
    set -- "$1" "${2:-480}" --resume "$(cat "$SOLVE/run-id")"
  else
    set -- "$1" "${2:-480}" "${PROBLEM:-attention/causal}" --budget "${BUDGET:-10m}"
  fi
  timeout -s INT -k 60 "$2" python3 -m kernelscale solve "${@:3}" --db "$SOLVE/solve.db" --out "$SOLVE/out" 2>&1 \
    | grep --line-buffered -v Warning | tee -a "$SOLVE/solve.log" | tail -30
  grep -o -- '--resume [0-9]*' "$SOLVE/solve.log" | tail -1 | cut -d' ' -f2 > "$SOLVE/run-id.new"
  [ -s "$SOLVE/run-id.new" ] && mv "$SOLVE/run-id.new" "$SOLVE/run-id"
  cp "$SOLVE/solve.db" "$SOLVE/solve.log" "$SOLVE/run-id" "$OUT/" 2>/dev/null
  cp "$SOLVE/out/summary.json" "$OUT/solve-summary.json" 2>/dev/null
  cp "$SOLVE/out/best_kernel.py" "$OUT/solve-best_kernel.py" 2>/dev/null
  ;;
flash-diff)
  # shellcheck disable=SC2086  # word lists on purpose
  timeout "${2:-300}" python3 benchmarks/fa4_flash_diff.py --out "$OUT" --variants ${VARIANTS:-document} \
    --dims ${DIMS:-128} 2>&1 | grep --line-buffered -v Warning | tee "$OUT/flash-diff.log"
  ;;
decode)
  timeout 170 python3 benchmarks/attention_decode.py --deadline "${2:-100}" --out "$OUT" 2>&1 \
    | grep -v Warning | tee "$OUT/attention-decode.log"
  ;;
decode-sweep)
  timeout "$(( ${2:-120} + 90 ))" python3 benchmarks/decode_sweep.py --deadline "${2:-120}" --out "$OUT" 2>&1 \
    | grep --line-buffered -v Warning | tee "$OUT/decode-sweep.log"
  ;;
verifier)
  timeout "$(( ${2:-480} + 60 ))" python3 benchmarks/verifier_gpu.py --out "$OUT/verifier.jsonl" --deadline "${2:-480}" \
    --phases hostile attention examples --quick-phases hostile attention --full-baselines softmax 2>&1 \
    | grep --line-buffered -v Warning | tee "$OUT/verifier.log"
  ;;
tables)
  timeout 300 python3 benchmarks/attention_bench.py --variants tests/problems/t5_bucketed_bias.py \
    relative_positional --dims 128 --configs 3 --deadline-s 240 --out "$OUT/tables.json" 2>&1 \
    | grep --line-buffered -v Warning | tee "$OUT/tables.log"
  ;;
first-verdict)
  timeout "$(( ${2:-480} + 60 ))" python3 benchmarks/first_verdict.py --out "$OUT/first_verdict" --deadline "${2:-480}" --control \
    2>&1 | grep --line-buffered -v Warning | tee "$OUT/first-verdict.log"
  ;;
exchange)
  timeout 120 python3 benchmarks/exchange_profile.py --out "$OUT/exchange-profile.json" 2>&1 | grep -v Warning
  ;;
backends)
  # shellcheck disable=SC2086  # word lists on purpose
  timeout "$(( ${2:-480} + 90 ))" python3 benchmarks/attention_bench.py --backends triton fa4 --configs 1 \
    --fa4-configs "${FA4_CONFIGS:-1}" ${PEERS:+--peers $PEERS} --dims ${DIMS:-128 64} ${VARIANTS:+--variants $VARIANTS} --deadline-s "${2:-480}" \
    --out "$OUT/attention-backends.json" --errors "$OUT/backend-errors" 2>&1 \
    | grep --line-buffered -v Warning | tee "$OUT/backends.log"
  ;;
solve-fa4)
  timeout 560 python3 -m kernelscale solve "${PROBLEM:-attention/causal}" --budget "${2:-3m}" --db "$OUT/solve-fa4.db" \
    --out /tmp/ks-fa4 2>&1 | grep --line-buffered -v Warning | tee "$OUT/solve-fa4.log" | tail -30
  cp /tmp/ks-fa4/summary.json "$OUT/solve-fa4-summary.json" 2>/dev/null
  cp /tmp/ks-fa4/best_kernel.py "$OUT/solve-fa4-best_kernel.py" 2>/dev/null
  ;;
fa4-install)
  bash benchmarks/fa4_install.sh
  ;;
gluon)
  timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_compiler_gluon.py -k gpu 2>&1 | tail -15 \
    | tee "$OUT/gluon-gpu-tests.log"
  backends=(triton gluon)
  if [ -f /tmp/fa4/.fa4-stamp ]; then backends+=(fa4); fi
  # shellcheck disable=SC2086  # word lists on purpose
  timeout "$(( ${2:-400} + 90 ))" python3 benchmarks/attention_bench.py --backends "${backends[@]}" --configs 1 \
    --gluon-configs "${GLUON_CONFIGS:-3}" ${PEERS:+--peers $PEERS} --dims ${DIMS:-128 64} ${VARIANTS:+--variants $VARIANTS} \
    --deadline-s "${2:-400}" --out "$OUT/attention-gluon.json" --errors "$OUT/gluon-errors" 2>&1 \
    | grep --line-buffered -v Warning | tee "$OUT/gluon.log" | tail -40
  ;;
prune)
  timeout "$(( ${2:-240} + 60 ))" python3 benchmarks/attention_bench.py --variants relative_positional alibi alibi_causal \
    --configs 2 --dims 128 --peers flex flex_flash sdpa_cudnn --deadline-s "${2:-240}" \
    --out "$OUT/attention-prune.json" 2>&1 | grep --line-buffered -v Warning | tail -40
  ;;
fa4-host)
  timeout "${2:-300}" python3 benchmarks/fa4_host_profile.py --out "$OUT" ${VARIANTS:+--variants $VARIANTS} 2>&1 \
    | grep --line-buffered -v Warning | tail -40
  ;;
smoke)
  timeout 200 python3 benchmarks/verifier_gpu.py --out "$OUT/smoke.jsonl" --deadline 150 \
    --phases examples hostile --quick-phases hostile \
    --names softmax add_mul_tanh precomputes_while_staging precomputes_after_key queues_work_before_go \
    leaves_work_running_at_done defers_work_past_done defers_work_into_commit truncates_output_slab \
    rotates_hidden_work sorts_after_its_commit 2>&1 \
    | grep --line-buffered -v Warning | tee "$OUT/smoke.log"
  timeout 120 python3 benchmarks/attention_bench.py --variants tests/problems/t5_bucketed_bias.py \
    --dims 128 --configs 1 --deadline-s 90 --out "$OUT/smoke-tables.json" 2>&1 \
    | grep --line-buffered -v Warning | tail -5
  ;;
*)
  echo "usage: $0 examples|suite|solve-start [seconds]|solve-wait|solve-part [seconds]|flash-diff|decode [deadline]|decode-sweep [deadline]|verifier [deadline]|tables|first-verdict [deadline]|exchange|smoke|backends [deadline]|solve-fa4 [budget]|fa4-install|prune [deadline]" >&2
  exit 2
  ;;
esac
