/*
 * kafka.h — every Kafka client the engine makes is configured here: the [kafka] settings, and
 * one function that builds an rd_kafka_conf_t from them (bootstrap servers, the caller's role
 * properties, the kafka.extra passthrough, the log callback). The consumer and dead-letter
 * producer of ingest/, the Kafka sink, the /ingest producer of api/, the `kafka` playbook steps
 * of orchestrate/, loadgen and the mock cluster all go through it, so a security setting
 * given once in kafka.extra reaches every client. The librdkafka mock cluster that the demo,
 * the benchmarks and the integration tests host is made here too (nops_kafka_mock_new), once.
 *
 * Ownership: nops_kafka_conf_new returns a configuration the caller owns; rd_kafka_new takes
 * it on success (librdkafka's rule), else the caller destroys it.
 */
#ifndef NOPS_KAFKA_H
#define NOPS_KAFKA_H

#include "core/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rd_kafka_conf_s; /* librdkafka's rd_kafka_conf_t */

/** [kafka] settings. */
typedef struct nops_kafka_params {
    char brokers[512];          /**< bootstrap servers */
    char topic[256];            /**< metrics topic */
    char group[128];            /**< consumer group */
    char dlq_topic[256];        /**< dead-letter topic for rejected messages */
    int64_t session_timeout_ms; /**< group session timeout */
    char extra[1024];           /**< more librdkafka properties: "k=v,k=v" */
    int timestamp_precision;    /**< unit of line-protocol timestamps on the metrics topic:
                                     0 ns, 1 us, 2 ms, 3 s (parse.h's nops_ts_precision) */
} nops_kafka_params;

extern const nops_cfg_section nops_kafka_cfg_section;

/** One librdkafka property of a client's role: {name, value}. */
typedef const char *nops_kafka_prop[2];

/**
 * A new client configuration: `bootstrap.servers` = `brokers` (NULL or "" sets none, as for a
 * mock cluster), then kafka.extra's `extra` ("k=v,k=v", NULL or "" for none: security settings
 * and tuning), then the role's `n` properties `props` (last, so what the engine relies on —
 * manual commits, idempotence — cannot be overridden), and librdkafka's log lines through
 * nops_log_kafka. NULL with the reason in errstr (naming the bad entry or property).
 * @remark The caller owns the result (see the file comment).
 */
struct rd_kafka_conf_s *nops_kafka_conf_new(const char *brokers, const char *extra,
                                            const nops_kafka_prop *props, size_t n,
                                            char *errstr, size_t errstr_size);

/* ---- the mock cluster (the demo, the benchmarks and the integration tests) ---------------- */

struct rd_kafka_s; /* librdkafka's rd_kafka_t */

/** A topic of a mock cluster. */
typedef struct nops_kafka_topic {
    const char *name; /**< topic name */
    int partitions;   /**< its partition count (replication factor 1) */
} nops_kafka_topic;

/** A librdkafka log callback (rd_kafka_conf_set_log_cb's type). */
typedef void (*nops_kafka_log_fn)(const struct rd_kafka_s *rk, int level, const char *fac,
                                  const char *buf);

/**
 * A librdkafka mock cluster — real Kafka protocol on loopback — of `brokers` brokers with the
 * `n` topics created, hosted by the returned producer handle, which can produce to it too
 * (configured by nops_kafka_conf_new with the host's `n_props` properties `props`: batching,
 * compression, log_level). Its bootstrap servers go into `boot` (cap bytes). `log` replaces
 * nops_log_kafka for the host's own log lines (NULL: nops_log_kafka). NULL with the reason in
 * errstr.
 * @remark The caller owns the handle; rd_kafka_destroy stops the cluster, so every client of it
 * must be destroyed first.
 */
struct rd_kafka_s *nops_kafka_mock_new(int brokers, const nops_kafka_topic *topics, size_t n,
                                       const nops_kafka_prop *props, size_t n_props,
                                       nops_kafka_log_fn log, char *boot, size_t cap,
                                       char *errstr, size_t errstr_size);

#endif /* NOPS_KAFKA_H */
