/*
 * api_int.h — what server.c (HTTP plumbing, auth, limits), handlers.c (the endpoints) and
 * metrics.c (exposition) share. Not a public header.
 */
#ifndef NOPS_API_INT_H
#define NOPS_API_INT_H

#include "api/api.h"
#include "api/auth.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>

/* Routes, for dispatch and for the per-route metrics. */
#define NOPS_ROUTES(X)                                                                         \
    X(ANALYZE, "/analyze")                                                                     \
    X(INGEST, "/ingest")                                                                       \
    X(REMOTE_WRITE, "/api/v1/write")                                                           \
    X(INFLUX_WRITE, "/api/v2/write")                                                           \
    X(RECOMMEND, "/recommend")                                                                 \
    X(ORCHESTRATE, "/orchestrate")                                                             \
    X(ORCHESTRATIONS, "/orchestrations")                                                       \
    X(ORCHESTRATION, "/orchestrations/{id}")                                                   \
    X(ORCH_DRY_RUN, "/orchestrations/{id}/dry-run")                                            \
    X(ORCH_APPROVE, "/orchestrations/{id}/approve")                                            \
    X(ORCH_EXECUTE, "/orchestrations/{id}/execute")                                            \
    X(PLAYBOOKS, "/playbooks")                                                                 \
    X(AUTOMATION, "/automation")                                                               \
    X(AUTOMATION_PAUSE, "/automation/pause")                                                   \
    X(AUTOMATION_RESUME, "/automation/resume")                                                 \
    X(AUDIT, "/audit")                                                                         \
    X(SIGNALS, "/signals")                                                                     \
    X(INCIDENTS, "/incidents")                                                                 \
    X(INCIDENT, "/incidents/{id}")                                                             \
    X(SERIES, "/series")                                                                       \
    X(METRICS, "/metrics")                                                                     \
    X(HEALTHZ, "/healthz")                                                                     \
    X(READYZ, "/readyz")                                                                       \
    X(OPENAPI, "/openapi.json")                                                                \
    X(DASHBOARD, "/")                                                                          \
    X(OTHER, "other")

typedef enum route_id {
#define NOPS__ROUTE_ENUM(name, path) ROUTE_##name,
    NOPS_ROUTES(NOPS__ROUTE_ENUM)
#undef NOPS__ROUTE_ENUM
    ROUTE_COUNT
} route_id;

extern const char *const nops__route_paths[ROUTE_COUNT];

/* Status codes counted in neuralops_http_requests_total (others count as the last). */
#define NOPS_HTTP_CODES 19
extern const int nops__http_codes[NOPS_HTTP_CODES];

/* Request latency histogram bounds, seconds. */
#define NOPS_HTTP_BUCKETS 12
extern const double nops__http_buckets[NOPS_HTTP_BUCKETS];

typedef struct http_metrics {
    atomic_uint_fast64_t requests[ROUTE_COUNT][NOPS_HTTP_CODES];
    atomic_uint_fast64_t latency[ROUTE_COUNT][NOPS_HTTP_BUCKETS + 1]; /* last = +Inf */
    atomic_uint_fast64_t latency_sum_us[ROUTE_COUNT];
    atomic_uint_fast64_t rate_limited;
    atomic_uint_fast64_t auth_failures;
    atomic_uint_fast64_t auth_blocked;    /* 429s to addresses out of failed attempts */
    atomic_uint_fast64_t slow_cut;        /* connections cut by api.request_timeout_s */
    atomic_uint_fast64_t ingest_points;   /* sent by POST /ingest and acknowledged by Kafka */
    atomic_uint_fast64_t ingest_rejected; /* refused lines of POST /ingest */
    atomic_uint_fast64_t ingest_stale;    /* NaN samples skipped (staleness markers) */
    atomic_int_fast64_t ingest_waiting;   /* POST /ingest requests waiting for Kafka now */
} http_metrics;

typedef struct ingest_job ingest_job; /* one POST /ingest waiting for its reports (ingest.c) */
typedef struct conn_rec conn_rec;     /* one connection as the slow-client guard sees it */

struct nops_api {
    nops_api_params p;
    nops_api_deps d;
    char orch_off[512];      /* d.orchestration_off, copied */
    nops_auth *_Atomic auth; /* the keys in force; swapped whole by nops_api_set_auth */
    const nops_registry *_Atomic registry; /* d.registry, replaced by nops_api_set_registry */
    nops_auth **auth_old;    /* the ones replaced, freed with the server (a request may still
                              * hold one) */
    size_t n_auth_old;       /* how many */
    rd_kafka_t *producer;    /* for POST /ingest, or NULL */
    char topic[256];         /* its topic */
    struct MHD_Daemon *mhd;
    struct sockaddr_storage addr;
    int port;
    int64_t started_ns;
    http_metrics m;
    /* POST /ingest waiting for Kafka (ingest.c) */
    pthread_t kpoll;         /* serves delivery reports, expires waiting jobs */
    bool kpoll_started;
    atomic_bool kpoll_stop;
    pthread_mutex_t jobs_mu; /* the jobs' counts and states, the list, suspend and resume */
    ingest_job *waiting;     /* jobs whose connection is suspended */
    bool stopping;           /* nops_api_stop began: nothing suspends any more */
    /* slow clients (guard.c) */
    pthread_mutex_t conns_mu; /* the records, and shutdown(2) against their sockets */
    conn_rec *conns;          /* every open connection */
    size_t n_conns;
    pthread_t reaper;         /* cuts requests that take too long to arrive */
    bool reaper_started, reaper_stop;
    pthread_mutex_t reaper_mu;
    pthread_cond_t reaper_cv; /* wakes the reaper to stop (CLOCK_MONOTONIC) */
    /* POST /analyze's per-thread contexts (analyze.c) */
    pthread_key_t an_key;     /* this thread's analyze_ctx */
    bool an_key_ok;           /* an_key was created */
    pthread_mutex_t an_mu;    /* an_ctxs (taken once per thread, at its first /analyze) */
    struct analyze_ctx *an_ctxs; /* every context made, freed with the server */
};

/* One request in flight (MHD's per-connection-request context). */
typedef struct request {
    nops_api *api;
    route_id route;
    int64_t start_ns;
    nops_buf body;          /* uploaded body */
    bool too_large;         /* body went over the limit: the rest was discarded */
    bool answered;          /* a response was queued */
    int status;             /* status sent */
    nops_principal who;     /* authenticated caller (role NONE for public routes) */
    ingest_job *job;        /* POST /ingest: its reference to the job, or NULL */
    char method[8];
    char path[160];         /* for the access log, truncated */
} request;

/* A response being built: status, JSON (or other) body, extra header. */
typedef struct response {
    int status;
    nops_buf body;
    const char *content_type;  /* default application/json */
    char retry_after[24];      /* "" = none */
    const char *allow;         /* Allow header for 405, or NULL */
} response;

/* Set an error response {"error":{"code","message"}} (code derived from the status). */
void nops__api_error(response *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Append bytes to a response body; false when out of memory. */
bool nops__api_put(response *r, const char *s, size_t n);
/* Set the body to a JSON value (stolen); false when out of memory. */
bool nops__api_json(response *r, int status, json_t *v);

/* Content-Type is absent or `want` (parameters such as charset allowed) (handlers.c). */
bool nops__api_content_type_is(struct MHD_Connection *c, const char *want);
/* The body as a JSON object (new reference), or NULL with a 400 in `res` (handlers.c). */
json_t *nops__api_body_object(request *rq, response *res);
/* Query parameter `key` = `v` as a whole number in [lo, hi] into *out; else false with a 400
 * naming it (handlers.c). */
bool nops__api_count_arg(const char *key, const char *v, unsigned long long lo,
                         unsigned long long hi, unsigned long long *out, response *res);
/* Every key of `o` is one of `known`; else false with a 400 naming the field (handlers.c). */
bool nops__api_known_fields(json_t *o, const char *const *known, size_t n, response *res);

/* Handlers (handlers.c): fill `res` for the request. */
void nops__api_analyze(nops_api *api, struct MHD_Connection *c, request *rq, response *res);

/* ---- POST /analyze's per-thread detector and body tokenizer (analyze.c) ---------------- */

#define MAX_ANALYZE_VALUES 100000 /* points one /analyze request may send */

/* A thread's reusable detector and arrays. Used only by the thread that owns it (no locks);
 * freed by nops__analyze_fini, after the server's threads stopped. */
typedef struct analyze_ctx analyze_ctx;
/* Called by nops_api_new / nops_api_destroy (fini after the daemon stopped). */
nops_err nops__analyze_init(nops_api *api);
void nops__analyze_fini(nops_api *api);
/* The calling thread's context, made at its first call; NULL when out of memory. */
analyze_ctx *nops__analyze_ctx(nops_api *api);
/* Make the context's detector one of `dp` with its series put back to a fresh state, and its
 * arrays n long. NOPS_CONFIG with nops_detect_new's sentence when dp is refused; NOPS_NOMEM. */
nops_err nops__analyze_prepare(analyze_ctx *cx, const nops_detect_params *dp, size_t n,
                               char *errstr, size_t errstr_size);
/* Run the prepared detector over values[0..n) into the context's arrays (*out points at them,
 * valid until the thread's next request); returns the detector, its series' slot in *slot. */
nops_detector *nops__analyze_run(analyze_ctx *cx, const float *values, size_t n,
                                 nops_detect_out *out, uint32_t *slot);
/* The common body {"values":[...]} with the optional window, alpha, z_threshold,
 * ewma_threshold, method: true when the body is exactly that and valid, the values then in
 * nops__analyze_values(cx)[0..*n) and the overrides applied to *dp; false (nothing changed but
 * the context's value buffer) for anything else, which the jansson path must then judge. */
bool nops__analyze_fast_body(const char *body, size_t len, analyze_ctx *cx,
                             nops_detect_params *dp, size_t *n);
const float *nops__analyze_values(const analyze_ctx *cx);
/* The fields of /analyze's answer, in the answer's order. */
typedef struct analyze_answer {
    double score, zscore, ewma;
    const char *method, *hint; /* hint: UTF-8 */
    size_t points;
    bool anomaly;
    size_t anomalous_points;
    const char *source;
    int64_t window;
} analyze_answer;
/* Write the answer as status 200, byte for byte what json_pack and a compact json_dumpb give;
 * false (res unchanged) when a number is not finite, a string too long or out of memory. */
bool nops__analyze_answer(response *res, const analyze_answer *a);
/* POST /ingest: true when the request was suspended to wait for Kafka (answered later through
 * nops__api_ingest_answer when MHD calls again), false when `res` holds the answer (ingest.c). */
bool nops__api_ingest(nops_api *api, struct MHD_Connection *c, request *rq, response *res);
/* How a route's answer reads once its points are in Kafka: /ingest's 202 with counts, or the
 * 204/400 of Influx's /api/v2/write and Prometheus' /api/v1/write. */
typedef enum nops__ingest_kind {
    NOPS__INGEST_202 = 0,
    NOPS__INGEST_INFLUX,
    NOPS__INGEST_REMOTE_WRITE,
} nops__ingest_kind;
/* A route's body parser: every point of body[0..len) to fn (nops_ingest_parse's contract);
 * NOPS_RANGE (over the limit) or NOPS_NOMEM only before any point was given. */
typedef nops_err (*nops__body_parser)(void *src, const char *body, size_t len, int64_t now_ns,
                                      nops_point_fn fn, void *ud, nops_parse_stats *st);
/* Parse rq->body with `parse` and produce every point to the metrics topic keyed by series, as
 * /ingest does; true when suspended to wait for Kafka, false when `res` holds the answer
 * (ingest.c). */
bool nops__api_ingest_points(nops_api *api, struct MHD_Connection *c, request *rq,
                             response *res, nops__ingest_kind kind, nops__body_parser parse,
                             void *src);
/* Replace rq->body by its decoding per Content-Encoding (identity, gzip); false with `res` set
 * (413 past api.body_limit once decompressed, 400 corrupt, 415 another encoding) (write.c). */
bool nops__api_body_decode(nops_api *api, struct MHD_Connection *c, request *rq, response *res);
/* POST /api/v2/write, POST /api/v1/write: as nops__api_ingest (write.c). */
bool nops__api_influx_write(nops_api *api, struct MHD_Connection *c, request *rq, response *res);
bool nops__api_remote_write(nops_api *api, struct MHD_Connection *c, request *rq, response *res);
/* The answer of a request whose job is done (ingest.c). */
void nops__api_ingest_answer(nops_api *api, request *rq, response *res);
/* Drop the request's reference to its job (ingest.c). */
void nops__api_ingest_release(ingest_job *j);
/* Answer every waiting /ingest (503) and let none wait from now on; before MHD stops. */
void nops__api_ingest_stop(nops_api *api);
/* Stop the poll thread, drain the reports (purging what is left), destroy the producer. */
void nops__api_producer_destroy(nops_api *api);
void nops__api_recommend(nops_api *api, struct MHD_Connection *c, request *rq, response *res);
/* The stored incident `id` as what recommendations and suggestions take (recommend.c): its
 * signal ids replaced by the signal objects the store still has, "metrics" set to the distinct
 * metric names of those signals; with max_bytes > 0, signal objects dropped from the end until
 * its compact JSON fits (the metrics stay). New reference; NULL when unknown. */
json_t *nops__api_stored_incident(nops_api *api, const char *id, size_t max_bytes);
/* The incident of a request body holding exactly one of "signal_id", "incident_id",
 * "incident" (recommend.c): a stored incident with its signals, one stored signal as an
 * incident, or the inline object (413 past max_bytes when max_bytes > 0). *subject gets the id
 * or "inline" (valid while `o` lives). New reference; NULL with `res` set (400/404/413). */
json_t *nops__api_incident_from(nops_api *api, json_t *o, size_t max_bytes,
                                const char **subject, response *res);
/* Rank playbooks for `inc` (top_n) and audit the answer (action "recommend" by `actor`,
 * `subject`, details: top playbook ids with scores and the index generation) before it is
 * given. NOPS_NOTFOUND without a recommender or index, NOPS_PARSE with nothing to embed,
 * NOPS_IO when the audit trail refused the entry (then *out is NULL); errstr says which. */
nops_err nops__api_rank(nops_api *api, const json_t *inc, int top_n, const char *actor,
                        const char *subject, json_t **out, char *errstr, size_t errstr_size);
/* /orchestrate, /orchestrations/{id}[/step], /playbooks (orchestrate.c). */
void nops__api_orchestrate(nops_api *api, route_id route, const char *id, request *rq,
                           response *res);
void nops__api_playbooks(nops_api *api, response *res);
/* GET /automation, POST /automation/pause|resume (automation.c). */
void nops__api_automation(nops_api *api, route_id route, request *rq, response *res);
/* GET /orchestrations?state&limit (orchestrate.c). */
void nops__api_orchestrations(nops_api *api, struct MHD_Connection *c, response *res);
/* GET /audit?after&limit&actor&action&subject (orchestrate.c). */
void nops__api_audit(nops_api *api, struct MHD_Connection *c, response *res);
void nops__api_list(nops_api *api, struct MHD_Connection *c, int kind, response *res);
void nops__api_incident(nops_api *api, const char *id, response *res);
/* GET /series?key&from&to&limit: a series' points, its band and its signals (series.c). */
void nops__api_series(nops_api *api, struct MHD_Connection *c, response *res);
void nops__api_readyz(nops_api *api, response *res);
void nops__api_healthz(nops_api *api, response *res);
void nops__api_openapi(response *res);
/* GET /: the embedded dashboard page (handlers.c). */
void nops__api_dashboard(response *res);
/* The /ingest producer from deps->brokers, when given (ingest.c). */
nops_err nops__api_producer(nops_api *api, char *errstr, size_t errstr_size);
/* The slow-client guard (guard.c): MHD_OPTION_NOTIFY_CONNECTION callback (cls = api); the
 * request on `c` is in (no deadline while it is answered); it was answered (the next request's
 * deadline starts); the reaper thread. */
void nops__guard_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                        enum MHD_ConnectionNotificationCode toe);
void nops__guard_received(struct MHD_Connection *c);
void nops__guard_next(nops_api *api, struct MHD_Connection *c);
nops_err nops__guard_start(nops_api *api, char *errstr, size_t errstr_size);
void nops__guard_stop(nops_api *api);
/* GET /metrics (metrics.c). */
void nops__api_metrics(nops_api *api, response *res);

/* Prometheus query_range for prom_query (prom.c): values of the first series, oldest first. */
nops_err nops__prom_query(const char *base_url, const char *query, int64_t lookback_s,
                          int64_t step_s, double **values, size_t *n, char *errstr,
                          size_t errstr_size);

#endif
