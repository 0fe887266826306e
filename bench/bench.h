/*
 * bench.h — shared helpers of neuralops-bench (bench/ only).
 */
#ifndef NOPS_BENCH_H
#define NOPS_BENCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct bench_opts {
    bool quick;          /* small sizes: a smoke run for tests */
    const char *variant; /* only this kernel variant, or NULL for all */
    const char *method;  /* detect: only this method (its figure's name), or NULL for all */
    bool no_scalar;      /* detect: without the scalar peer run (long at S = 16M) */
    uint64_t series;     /* override the series (or runs) counts (0 = the suite's defaults) */
    const char *dsn;     /* PostgreSQL for the vectorize suite, or NULL */
    uint64_t seed;       /* generator seed of the quality suite (0 = its default) */
    const char *sets[16]; /* quality: "section.key=value" settings of [detect]/[correlate] */
    int n_sets;          /* entries of sets[] */
    bool events;         /* quality: list every fleet event and what became of it */
} bench_opts;

/* One figure as one JSON line: suite, figure, value, unit, peer, peer_value, ratio (as
 * bench/RESULTS.md reads them), plus free-form extra fields. */
void bench_emit(const char *suite, const char *figure, double value, const char *unit,
                const char *peer, double peer_value, const char *extra_json);
double bench_seconds(void);

int bench_detect(const bench_opts *o);
int bench_ingest(const bench_opts *o);
int bench_vectorize(const bench_opts *o);
int bench_recommend(const bench_opts *o);
int bench_http(const bench_opts *o);
int bench_audit(const bench_opts *o);
int bench_quality(const bench_opts *o);
int bench_loop(const bench_opts *o);

/* `neuralops-bench ingest-produce ...` (argv after the suite name): the latency runs' producer
 * process (bench_ingest_prod.c). */
int bench_ingest_produce(int argc, char **argv);
/* Run that producer as a child for `seconds` at `rate` points/s over `series` series and wait
 * for it; *achieved: the points/s it sent, *behind_ms: how far it fell behind its schedule at
 * most. 0, or -1 when it could not be run or failed (its reason on stderr). */
int bench_ingest_spawn(const char *boot, const char *topic, double rate, double seconds,
                       uint32_t series, double *achieved, double *behind_ms);

#endif
