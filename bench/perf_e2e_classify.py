#!/usr/bin/env python3
"""perf_e2e_classify.py out.data — CPU shares of a `bench/perf_e2e.sh` profile: per thread, and
per component by markers on each sample's call stack (the first rule that matches wins)."""
import collections
import subprocess
import sys

RULES = [
    ("pipeline stop/checkpoint (after the rate was taken)", ["nops_pipeline_stop", "checkpoint"]),
    ("workers: first sight of a series (key, register, detector growth)",
     ["reparse_point", "nops_ingest_series_add"]),
    ("workers: detect update", ["nops_detect_update_range", "nops_detect_update_pairs"]),
    ("workers: signals, sinks, correlate", ["emit_signals", "nops_sinks", "nops_correlate"]),
    ("workers: series identity (hash, find)",
     ["nops_ingest_series_hash", "nops_ingest_series_find", "on_point_hashed", "resolve_pending"]),
    ("workers: line-protocol parse",
     ["nops_ingest_parse_lineproto", "lp_token", "lp_number", "nops_ingest_check_names"]),
    ("workers: batch handling, other", ["worker_batch", "nops__worker_main"]),
    ("bench main thread (stats polling)", ["pipe_consume", "bench_ingest"]),
]


def samples(path):
    text = subprocess.run(["perf", "script", "-i", path, "-F", "comm,tid,ip,sym"],
                          capture_output=True, text=True, check=True).stdout
    cur = None
    for line in text.split("\n"):
        if not line.strip():
            if cur:
                yield cur
            cur = None
        elif not line.startswith("\t"):
            parts = line.split()
            cur = (" ".join(parts[:-1]), parts[-1], [])
        elif cur:
            cur[2].append(line.strip().split(" ", 1)[-1])
    if cur:
        yield cur


def main():
    threads, parts = collections.Counter(), collections.Counter()
    n = 0
    for comm, tid, stack in samples(sys.argv[1]):
        n += 1
        threads[comm + ":" + tid] += 1
        if comm.startswith("rdk:mock"):
            parts["mock cluster (rdk:mock)"] += 1
            continue
        if comm.startswith("rdk:"):
            parts["librdkafka client threads (rdk:broker*, rdk:main: fetch, lz4)"] += 1
            continue
        joined = " ".join(stack)
        name = next((r for r, marks in RULES if any(m in joined for m in marks)),
                    "other in-process")
        parts[name] += 1
    print("samples", n)
    for k, v in threads.most_common(12):
        print("  thread %-28s %5.1f%%" % (k, 100.0 * v / n))
    for k, v in parts.most_common():
        print("%5.1f%%  %s" % (100.0 * v / n, k))


if __name__ == "__main__":
    main()
