/*
 * sinks.h — where signals and incidents go: JSONL files (the default, jsonl.c), PostgreSQL
 * (postgres.c, through pg/) and Kafka (kafka.c, through kafka/), each a table of operations
 * (nops_sink_ops) added to one set; a new sink plugs in the same way.
 *
 * Ownership: a nops_sinks set owns the sinks added to it; records passed in are copied (encoded)
 * before the call returns. The set is thread-safe: workers write and flush concurrently (one
 * flush at a time; a write never waits for the I/O of a sink whose ops say flush_concurrent).
 *
 * Delivery contract: a write only buffers; nops_sinks_flush()
 * returns NOPS_OK only when every sink has made everything written before it durable. A sink
 * that fails keeps what it had (up to its bound) and is retried by the next flush; a record a
 * sink refuses is kept by the set and given to it again at the next flush, which fails until
 * it is in; a record that can be kept nowhere makes every later flush fail. The caller commits
 * Kafka offsets only after a successful flush, so nothing is lost, at worst replayed.
 */
#ifndef NOPS_SINKS_H
#define NOPS_SINKS_H

#include "core/core.h"

/** The operations one sink implements (Redis-style plug-in table). */
typedef struct nops_sink_ops {
    const char *name;
    /** Buffer one encoded JSON line (no newline). NOPS_FULL when over its bound. */
    nops_err (*write)(void *self, int kind, const char *json, size_t len);
    /** Make everything buffered durable; keep it on failure. */
    nops_err (*flush)(void *self, char *errstr, size_t errstr_size);
    void (*destroy)(void *self);
    /** flush may run while write is called from other threads (the sink locks what they
     *  share): the set then flushes it without holding its own lock, so the workers' signals
     *  do not wait for the sink's I/O (an fsync, tens of ms on a busy disk). Writes that come
     *  in during such a flush go to the next one. false (the default): flush and write are
     *  never called at the same time. */
    bool flush_concurrent;
} nops_sink_ops;

/** Record kinds: the `kind` argument of write. */
enum { NOPS_SINK_SIGNAL = 0, NOPS_SINK_INCIDENT = 1 };

typedef struct nops_sinks nops_sinks;

/** Counters of a set, for logs and /metrics. */
typedef struct nops_sinks_stats {
    uint64_t signals;        /**< signals taken: written to every sink, or kept for a sink
                                  that refused them until a flush gives them again (see held) */
    uint64_t incidents;      /**< incident records taken the same way (open, update, resolve) */
    uint64_t flushes;        /**< successful flushes */
    uint64_t flush_failures; /**< failed flushes (each retried later) */
    uint64_t refused;        /**< records a sink refused; kept and given again at the next flush */
    uint64_t held;           /**< records kept that way now (a gauge) */
    uint64_t dropped;        /**< records lost: neither written nor kept (logged, rate-limited);
                                  from the first, every flush fails so no offset passes them */
} nops_sinks_stats;

nops_sinks *nops_sinks_new(void);
void nops_sinks_destroy(nops_sinks *set);
/** Add a sink; on success the set owns `self` and destroys it with ops->destroy. */
nops_err nops_sinks_add(nops_sinks *set, const nops_sink_ops *ops, void *self);

/** Takes a record as it arrives: the structure (a nops_signal or nops_incident per kind,
 *  borrowed for the call) beside its encoded JSON line. Returns like nops_sink_ops.write. */
typedef nops_err (*nops_sink_record_fn)(void *self, int kind, const void *rec, const char *json,
                                        size_t len);
/**
 * Add a sink that indexes fields (the API store) and should not parse the line back: live
 * records go to `write_record`; a record the set kept after a refusal is given again later
 * through ops->write, as the line alone. Ownership as nops_sinks_add.
 */
nops_err nops_sinks_add_indexed(nops_sinks *set, const nops_sink_ops *ops,
                                nops_sink_record_fn write_record, void *self);

/**
 * The JSONL sink: appends to DIR/signals.jsonl and DIR/incidents.jsonl (DIR is created), buffers
 * up to `max_buffer` bytes, and makes them durable with write(2) + fsync(2) on flush.
 */
nops_err nops_sinks_add_jsonl(nops_sinks *set, const char *dir, size_t max_buffer, char *errstr,
                              size_t errstr_size);

struct nops_kafka_params; /* kafka/kafka.h */
/**
 * The Kafka sink: records as JSON on `topic` (header `kind`: signal|incident), keyed by id;
 * failed deliveries are produced again by the next flush, which succeeds only when all arrived.
 * Its producer is configured from `kp` (kafka/kafka.h: brokers, [kafka.librdkafka] and
 * kafka.extra — the security settings every other client gets; read during the call only).
 */
nops_err nops_sinks_add_kafka(nops_sinks *set, const struct nops_kafka_params *kp,
                              const char *topic, char *errstr, size_t errstr_size);

/**
 * The PostgreSQL sink: connects with `dsn` (libpq connection string), creates or migrates the
 * schema (insight_signals, incidents) idempotently, and writes each flush as one
 * transaction of batched inserts. NOPS_IO with the server's message when it cannot connect.
 */
nops_err nops_sinks_add_postgres(nops_sinks *set, const char *dsn, size_t max_buffer,
                                 char *errstr, size_t errstr_size);

/** [sinks] settings: which sinks a pipeline writes to. */
typedef struct nops_sinks_params {
    bool jsonl;              /**< JSONL files in storage.data_dir */
    char kafka_topic[256];   /**< topic for the Kafka sink, "" = off */
    char postgres_dsn[512];  /**< libpq connection string for the PostgreSQL sink, "" = off */
} nops_sinks_params;

extern const nops_cfg_section nops_sinks_cfg_section;

/**
 * Encode a record (sized to it) and hand it to every sink. NOPS_OK when every sink took it or
 * the set kept it for a sink that refused it; otherwise the record is lost (no memory, or more
 * than 64 MiB kept for one sink): it is counted in `dropped`, logged (at most one line per
 * 10 s; the caller need not log it again), and every later flush fails, so the caller never
 * commits past it.
 */
nops_err nops_sinks_signal(nops_sinks *set, const nops_signal *sig);
nops_err nops_sinks_incident(nops_sinks *set, const nops_incident *inc);
nops_err nops_sinks_flush(nops_sinks *set, char *errstr, size_t errstr_size);
void nops_sinks_get_stats(nops_sinks *set, nops_sinks_stats *st);

/** A signal as JSON (the Signal schema of api/openapi.json; one line, no newline) into buf;
 *  returns its length or 0 if too long. */
size_t nops_signal_json(const nops_signal *sig, char *buf, size_t cap);
/** An incident as JSON (the Incident schema of api/openapi.json; one line) into buf; returns
 *  its length or 0. */
size_t nops_incident_json(const nops_incident *inc, char *buf, size_t cap);

#endif /* NOPS_SINKS_H */
