#!/usr/bin/env bash
# `make demo`: run the detectors over the bundled sample day and compare with what was injected.
# (The streaming demo — Kafka, incidents, HTTP — replaces this once the pipeline lands.)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=./build/neuralops
SAMPLE=samples/checkout_latency.csv
TRUTH=samples/checkout_latency.truth.csv
OUT=build/demo-scores.csv

echo "NeuralOps demo — one day of checkout p50 latency, one point per minute ($SAMPLE)"
echo
echo "Injected anomalies ($TRUTH):"
tail -n +2 "$TRUTH" | awk -F, '{printf "  %s  %-15s %s\n", $1, $2, $3}'
echo
echo "neuralops analyze --summary (the default detector set: rolling z-score, robust EWMA, CUSUM;"
echo "thresholds calibrated to about one false signal per 10^6 points, docs/detection.md):"
"$BIN" analyze -i "$SAMPLE" --summary 2> build/demo-summary.txt > "$OUT"
sed 's/^/  /' build/demo-summary.txt
echo
echo "Injected vs detected (a detection counts within 10 minutes of the injection):"
awk -F, '
  FNR == NR { if (FNR > 1) { n++; ts[n] = $1; kind[n] = $2 } next }
  /^anomaly: / { split($0, a, " at "); split(a[2], b, " "); det[++m] = b[1] }
  END {
    hit = 0
    for (i = 1; i <= n; i++) {
      t = substr(ts[i], 12, 5); split(t, hm, ":"); ti = hm[1] * 60 + hm[2]; found = -1
      for (j = 1; j <= m; j++) {
        split(substr(det[j], 12, 5), dm, ":"); tj = dm[1] * 60 + dm[2]
        if (tj >= ti && tj - ti <= 10) { found = tj - ti; break }
      }
      if (found >= 0) { hit++; printf "  %-15s found %d min after injection\n", kind[i], found }
      else printf "  %-15s MISSED\n", kind[i]
    }
    printf "  %d of %d injected anomalies found; %d signals in all (the rest are noise)\n", hit, n, m
  }' "$TRUTH" build/demo-summary.txt
echo
echo "Every row with its scores: $OUT   (neuralops analyze --help for the options)"
