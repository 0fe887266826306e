#!/bin/bash
# perf_e2e.sh [out.data] — `perf record -g` of the 100-line end-to-end run of
# `neuralops-bench ingest --variant e2e` only: every thread of the process, from the assignment
# of bench100's partitions to their revocation (the window includes the pipeline's stop, whose
# checkpoint runs on the main thread after the rate was taken). Then:
#   python3 bench/perf_e2e_classify.py out.data   (CPU share per thread and per component)
# BENCH=path overrides ./build/neuralops-bench.
set -e
out=${1:-perf.e2e.data}
bench=${BENCH:-./build/neuralops-bench}
log=$(mktemp)
"$bench" ingest --variant e2e 2>"$log" &
pid=$!
until grep -qF "assigned 32 partition(s) of bench100" "$log"; do sleep 0.01; done
perf record -g -o "$out" -p "$pid" 2>/dev/null &
rec=$!
until sed -n '/of bench100/,$p' "$log" | grep -qF "revoked 32 partition(s)"; do sleep 0.01; done
kill -INT "$rec"
wait "$rec" || true
wait "$pid"
rm -f "$log"
