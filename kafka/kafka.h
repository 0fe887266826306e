/*
 * kafka.h — every Kafka client the engine makes is configured here: the [kafka] settings, the
 * [kafka.librdkafka] section (any librdkafka property, one per line), and one function that
 * builds an rd_kafka_conf_t from them (bootstrap servers, the passthrough properties, the
 * caller's role properties, the log callback). The consumer and dead-letter producer of
 * ingest/, the service stage's producer and consumer, the Kafka sink, the /ingest producer of
 * api/, the `kafka` playbook steps of orchestrate/, loadgen and the mock cluster all go through
 * it, each given the same nops_kafka_params, so a security setting given once reaches every
 * client. The librdkafka mock cluster that the demo, the benchmarks and the integration tests
 * host is made here too (nops_kafka_mock_new), once.
 *
 * Secrets: a property whose name nops_kafka_is_secret() calls secret (`*password*`,
 * `*secret*`, `sasl.oauthbearer.config`, `ssl.key.*`) is masked by `config show`, never quoted
 * in an error, and masked in every librdkafka log line (librdkafka redacts its own dumps too).
 *
 * Logging: every client's librdkafka lines go through the engine's logger (nops_log, module
 * "kafka", the client's name in front), so they follow log.level and log.format — in JSON mode
 * no raw librdkafka line reaches stderr.
 *
 * Ownership: nops_kafka_conf_new returns a configuration the caller owns; rd_kafka_new takes
 * it on success (librdkafka's rule), else the caller destroys it. Thread contract: the
 * functions here keep no state and may be called from any thread.
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
    char extra[1024];           /**< deprecated kafka.extra: librdkafka properties "k=v,k=v" */
    nops_cfg_map librdkafka;    /**< [kafka.librdkafka]: any librdkafka property (wins over
                                     extra); values may hold commas */
    int timestamp_precision;    /**< unit of line-protocol timestamps on the metrics topic:
                                     0 ns, 1 us, 2 ms, 3 s (parse.h's nops_ts_precision) */
} nops_kafka_params;

extern const nops_cfg_section nops_kafka_cfg_section;           /**< [kafka] */
extern const nops_cfg_map_section nops_kafka_librdkafka_section; /**< [kafka.librdkafka] */

/**
 * Register [kafka] and [kafka.librdkafka] in `cfg` with their values in `*kp` (caller-owned,
 * must outlive cfg): defaults written, no librdkafka property set. Errors as nops_cfg_add.
 */
nops_err nops_kafka_cfg_add(nops_cfg *cfg, nops_kafka_params *kp, char *errstr,
                            size_t errstr_size);

/** True when the value of librdkafka property `name` is a secret: its name holds "password"
 *  or "secret" (any case), or it is sasl.oauthbearer.config or an ssl.key.* property. */
bool nops_kafka_is_secret(const char *name);

/**
 * `line` into `out` (cap bytes, always NUL-terminated) with the value after every
 * `SECRET-PROPERTY =` or `SECRET-PROPERTY:` masked ("***", to the end of the line), so a log
 * line or message quoting a configuration cannot leak a secret. Returns `out`.
 */
char *nops_kafka_mask(const char *line, char *out, size_t cap);

/** One librdkafka property of a client's role: {name, value}. */
typedef const char *nops_kafka_prop[2];

/**
 * A new client configuration for the client `role` ("pipeline", "dlq", "sink", ...), in this
 * order, later wins: `client.id` = "neuralops-ROLE"; `bootstrap.servers` = `brokers`, or
 * kp->brokers when `brokers` is NULL (none when that is "", as for a mock cluster host); kp's
 * deprecated kafka.extra ("k=v,k=v"); kp's [kafka.librdkafka] properties (security settings,
 * tuning, client.id); then the role's `n` properties `props` (last, so what the engine relies
 * on — manual commits, idempotence — cannot be overridden); and librdkafka's log lines through
 * the engine's logger (see the file comment). `kp` may be NULL: no properties of the user's.
 * NULL with the reason in errstr (naming the bad entry or property, never a secret's value).
 * @remark The caller owns the result (see the file comment); `kp` is only read during the call.
 */
struct rd_kafka_conf_s *nops_kafka_conf_new(const nops_kafka_params *kp, const char *brokers,
                                            const char *role, const nops_kafka_prop *props,
                                            size_t n, char *errstr, size_t errstr_size);

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
 * Whether closing and destroying consumer `rk` now would hit librdkafka's abort in the
 * cooperative-sticky assignor (before 2.3.0, #4312/#4381: a consumer that has joined its group
 * but never received an assignment aborts in rd_kafka_destroy). `assigned_once`: the caller's
 * rebalance callback has seen an assignment (of any size) since the subscribe. A consumer in
 * that state should keep polling, a bounded time, until its first assignment arrives.
 */
bool nops_kafka_close_unsafe(struct rd_kafka_s *rk, bool assigned_once);

/**
 * Poll consumer `rk` (its rebalance callback runs) until *assigned_once turns true or
 * `timeout_ms` pass, when nops_kafka_close_unsafe says so; messages polled meanwhile are
 * released unprocessed — their offsets are never committed, so the group's next owner reads
 * them. `who` names the consumer in the warning logged when the time runs out. True when
 * closing is safe afterwards.
 */
bool nops_kafka_await_first_assignment(struct rd_kafka_s *rk, const bool *assigned_once,
                                       int timeout_ms, const char *who);

/**
 * A librdkafka mock cluster — real Kafka protocol on loopback — of `brokers` brokers with the
 * `n` topics created, hosted by the returned producer handle, which can produce to it too
 * (configured by nops_kafka_conf_new, role "mock", with the host's `n_props` properties `props`:
 * batching, compression, log_level). Its bootstrap servers go into `boot` (cap bytes). `log`
 * replaces the engine's logger for the host's own log lines (NULL: the logger). NULL with the
 * reason in errstr.
 * @remark The caller owns the handle; rd_kafka_destroy stops the cluster, so every client of it
 * must be destroyed first.
 */
struct rd_kafka_s *nops_kafka_mock_new(int brokers, const nops_kafka_topic *topics, size_t n,
                                       const nops_kafka_prop *props, size_t n_props,
                                       nops_kafka_log_fn log, char *boot, size_t cap,
                                       char *errstr, size_t errstr_size);

#endif /* NOPS_KAFKA_H */
