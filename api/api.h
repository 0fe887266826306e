/*
 * api.h — the HTTP API (README.md "The HTTP API", api/openapi.json) on libmicrohttpd, and the
 * in-memory store of recent signals and incidents that GET /signals and GET /incidents read.
 *
 * Endpoints: POST /analyze, POST /ingest, POST /recommend, GET /signals, GET /incidents,
 * GET /incidents/{id}, GET /series,
 * GET /metrics, GET /healthz, GET /readyz, GET /openapi.json. JSON in and out; every error is
 * {"error":{"code","message"}}. Auth by X-API-Key (keys configured as SHA-256 hashes, each with
 * a role) or an HS256 JWT bearer token; roles viewer < operator < org-admin. Per-principal token
 * bucket (429 + Retry-After), failed authentications limited per client address (429), body
 * limit (413), against slow clients an idle timeout and a bound on the time to receive a whole
 * request, connections capped in all and per client address.
 *
 * Ownership: nops_api borrows everything in nops_api_deps (they must outlive it); nops_store is
 * owned by its creator and may be fed by a sink set (nops_store_attach) that it must outlive.
 * Thread-safety: the store is locked inside; the API runs its own threads.
 */
#ifndef NOPS_API_H
#define NOPS_API_H

#include "core/core.h"
#include "detect/detect.h"
#include "ingest/ingest.h"
#include "sinks/sinks.h"
#include "recommend/recommend.h"
#include "orchestrate/orchestrate.h"
#include "loop/loop.h"

#include <jansson.h>
#include <librdkafka/rdkafka.h>

/* ---- the store of recent signals and incidents ------------------------------------------ */

typedef struct nops_store nops_store;

/** Keeps the newest `max_signals` signals and `max_incidents` incidents (latest state each). */
nops_store *nops_store_new(size_t max_signals, size_t max_incidents);
void nops_store_destroy(nops_store *st);
/** Feed the store from every signal and incident written to `set`, taken as structures beside
 *  their lines so nothing is parsed (the set must not outlive the store). */
nops_err nops_store_attach(nops_store *st, nops_sinks *set, char *errstr, size_t errstr_size);
/** Seed the store with the tails of DIR/signals.jsonl and DIR/incidents.jsonl (missing files are
 *  fine); returns NOPS_OK and counts what it read, or NOPS_IO/NOPS_PARSE naming the file. */
nops_err nops_store_load_jsonl(nops_store *st, const char *dir, size_t *n_signals,
                               size_t *n_incidents, char *errstr, size_t errstr_size);
/** Add one encoded record (kind NOPS_SINK_SIGNAL or NOPS_SINK_INCIDENT), parsing it for the
 *  fields the filters need: for lines read back (the JSONL tails); NOPS_PARSE if it lacks them. */
nops_err nops_store_add(nops_store *st, int kind, const char *json, size_t len);

/** A query of GET /signals or GET /incidents. Records come newest first. */
typedef struct nops_store_query {
    int64_t since_ns, until_ns; /**< time bounds (signal ts / incident updated_at); 0 = open */
    const char *labels;         /**< "k=v,k=v": every pair must match; NULL = any */
    const char *status;         /**< incidents: "open" | "resolved" | NULL */
    size_t limit;               /**< at most this many (1..1000) */
    uint64_t cursor;            /**< 0 = from the newest; else the next_cursor of a page */
} nops_store_query;

/**
 * Append one page to `out` as a JSON object {"signals"|"incidents":[...],"next_cursor":"..."}
 * (next_cursor null on the last page). Signals match on their ts, incidents when
 * [opened_at, updated_at] meets [since, until]. NOPS_INVAL on a bad label filter (errstr names
 * it).
 */
nops_err nops_store_page(nops_store *st, int kind, const nops_store_query *q, nops_buf *out,
                         char *errstr, size_t errstr_size);
/** Signal `id` into `out`; NOPS_NOTFOUND if unknown (or older than the store keeps). */
nops_err nops_store_signal(nops_store *st, const char *id, nops_buf *out);
/** The latest record of incident `id` into `out`; NOPS_NOTFOUND if unknown. */
nops_err nops_store_incident(nops_store *st, const char *id, nops_buf *out);
/** Records held now. */
void nops_store_counts(nops_store *st, size_t *signals, size_t *incidents);

/* ---- the server ------------------------------------------------------------------------ */

/** [api] settings. */
typedef struct nops_api_params {
    char listen[128];          /**< "host:port"; "" = no HTTP server; port 0 = any free port */
    char keys[4096];           /**< "id:role:sha256hex,...": API keys, stored hashed */
    char jwt_secret[256];      /**< HS256 secret; "" = bearer tokens refused */
    char jwt_issuer[256];      /**< required `iss` of tokens; "" = any */
    double rate;               /**< requests per second per principal (token bucket refill) */
    double burst;              /**< bucket size */
    int64_t body_limit;        /**< bytes; larger bodies get 413 */
    int64_t timeout_s;         /**< idle connection timeout (slow clients) */
    int64_t request_timeout_s; /**< a whole request (headers and body) must arrive within this;
                                    0 = the table's default */
    int64_t max_connections;   /**< connections open at once, in all; 0 = the table's default */
    int64_t max_per_ip;        /**< connections open at once from one client address; 0 = any */
    double auth_failures_per_min; /**< failed authentications per client address and minute
                                       before 429; 0 = unlimited */
    int64_t ingest_timeout_s;  /**< POST /ingest waits this long for Kafka's acknowledgements;
                                    0 = the table's default */
    int64_t threads;           /**< server threads (0 = one per core) */
    char prometheus_url[512];  /**< base URL of a Prometheus server for prom_query; "" = 501 */
    bool access_log;           /**< one log line per request */
    int64_t history;           /**< signals kept in memory for GET /signals */
} nops_api_params;

extern const nops_cfg_section nops_api_cfg_section;

/** The defaults of the [api] table (the one place they are written): callers that build params
 *  by hand start from these, so the per-address and authentication-failure limits are on unless
 *  they set them to 0 ("no limit", as in the configuration). */
void nops_api_params_default(nops_api_params *p);

/** What the API reads from; all borrowed, each may be NULL where noted. */
typedef struct nops_api_deps {
    nops_pipeline *pipeline;            /**< stats, series history, readiness; NULL = none */
    nops_sinks *sinks;                  /**< sink counters; NULL = none */
    nops_store *store;                  /**< required */
    const nops_detect_params *detect;   /**< analyze defaults; required */
    const char *brokers;                /**< POST /ingest produces to these; NULL = 503 */
    const char *metrics_topic;          /**< ... on this topic, one message per series */
    const struct nops_kafka_params *kafka; /**< Kafka client settings (kafka/kafka.h: extra,
                                              [kafka.librdkafka]) for the producer; NULL: none */
    int64_t ingest_max_past_s;          /**< /ingest refuses points this far behind the wall
                                             clock (pipeline.max_past_s; 0 = off) */
    int64_t ingest_max_future_s;        /**< ... and this far ahead (pipeline.max_future_s) */
    nops_recommender *recommender;      /**< POST /recommend; NULL = 503 */
    nops_learner *learner;              /**< the learning loop's counters in /metrics; NULL */
    nops_orchestrator *orchestrator;    /**< /orchestrate, /orchestrations; NULL = 503 */
    const nops_registry *registry;      /**< GET /playbooks; NULL = 503 */
    nops_audit *audit;                  /**< GET /audit; NULL = 503 */
    nops_loop *loop;                    /**< the closed loop's counters in /metrics; NULL = none */
    const char *orchestration_off;      /**< why orchestrator/audit are NULL, for the 503s
                                             (NULL = "not configured"); copied */
} nops_api_deps;

typedef struct nops_api nops_api;

/** Validate the settings (keys, listen address) and build the server; not yet listening. */
nops_api *nops_api_new(const nops_api_params *params, const nops_api_deps *deps, char *errstr,
                       size_t errstr_size);
/** Start listening; NOPS_IO naming the address when it cannot bind. */
nops_err nops_api_start(nops_api *api, char *errstr, size_t errstr_size);
/** The port listened on (after start), e.g. when `listen` asked for port 0. */
int nops_api_port(const nops_api *api);
/** Stop accepting, finish what is in flight, stop the threads. Idempotent. */
void nops_api_stop(nops_api *api);
void nops_api_destroy(nops_api *api);

/**
 * Replace the API keys and JWT settings (api.keys, api.jwt_secret, api.jwt_issuer) of a server,
 * running or not: requests that start after the call are checked against the new ones. On an
 * error (a malformed key entry: NOPS_CONFIG, errstr says which) the keys in force stay. The
 * per-caller rate buckets and per-address failure counts start afresh. The replaced set is kept
 * until nops_api_destroy (a request in flight may still read it), so each call costs its size.
 * Not concurrently with itself or nops_api_destroy.
 */
nops_err nops_api_set_auth(nops_api *api, const char *keys, const char *jwt_secret,
                           const char *jwt_issuer, char *errstr, size_t errstr_size);

/**
 * Serve GET /playbooks and pick playbooks for POST /orchestrate from `reg` from now on (the
 * registry read again on SIGHUP; NULL: orchestration off). The caller keeps `reg` and the one
 * it replaces alive until nops_api_destroy. Thread-safe.
 */
void nops_api_set_registry(nops_api *api, const nops_registry *reg);

/** Hex SHA-256 of an API key as `api.keys` stores it (hex must hold 65 bytes). */
nops_err nops_api_hash_key(const char *key, char hex[65]);

#endif /* NOPS_API_H */
