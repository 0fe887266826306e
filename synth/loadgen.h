/*
 * loadgen.h — a synthetic fleet producing metrics to Kafka, with injected incidents and their
 * ground truth (synth/: used by `neuralops loadgen` and `neuralops demo`).
 *
 * The fleet: hosts spread over services (checkout, search, auth, payments, catalog, ledger) and
 * two regions; each host sends, per tick, one Telegraf-like message keyed by host with two lines
 * (`cpu` usage_user/usage_system and `http` latency_p50_ms/error_rate): four series per host.
 * Incidents of four kinds are injected at even intervals after a warm-up: a latency spike on one
 * host, a deploy regression (latency level shift on every host of a service), CPU saturation on
 * one host, and an error burst across a service.
 */
#ifndef NOPS_SYNTH_LOADGEN_H
#define NOPS_SYNTH_LOADGEN_H

#include "core/core.h"

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>

typedef struct loadgen_opts {
    const char *brokers;     /* bootstrap servers (ignored when a producer is given) */
    const struct nops_kafka_params *kafka; /* client settings ([kafka.librdkafka], extra), or NULL */
    const char *topic;       /* metrics topic */
    uint32_t series;         /* about this many series (4 per host) */
    double rate;             /* points per second; 0 = as fast as the producer takes them */
    bool json;               /* Telegraf JSON instead of line protocol */
    double seconds;          /* run time; 0 = until stopped */
    uint32_t incidents;      /* incidents to inject over the run (needs seconds > 0) */
    double tick_s;           /* data time per tick, seconds */
    uint32_t warmup_ticks;   /* quiet ticks before the first incident */
    const char *truth;       /* ground-truth JSONL path, or NULL */
} loadgen_opts;

typedef struct loadgen_injected {
    char kind[32];      /* latency_spike | deploy_regression | cpu_saturation | error_burst */
    char service[32];   /* service hit */
    char host[48];      /* host hit, or "*" for the whole service */
    char metric[48];    /* series name hit */
    int64_t start_ns;   /* data time of the first anomalous point */
    int64_t end_ns;     /* data time of the last */
} loadgen_injected;

typedef struct loadgen loadgen;

/* `producer` (borrowed) may be NULL: one is created for opts->brokers. */
loadgen *loadgen_new(const loadgen_opts *o, rd_kafka_t *producer, char *errstr, size_t sz);
void loadgen_destroy(loadgen *lg);
/* Produce until the run time is over or *stop is set; flushes at the end. */
nops_err loadgen_run(loadgen *lg, atomic_bool *stop);
uint64_t loadgen_points(const loadgen *lg);
uint64_t loadgen_messages(const loadgen *lg);
/* Incidents injected so far (valid until destroy). */
const loadgen_injected *loadgen_truth(const loadgen *lg, size_t *n);

#endif
