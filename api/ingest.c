/*
 * ingest.c — POST /ingest: metrics in either input format for producers without Kafka.
 *
 * The body is parsed here (the same parsers as the pipeline), so a bad line is answered at once
 * with its line number and reason while the good points of the same body go on. Each good point
 * is written back as one line-protocol line (escaped) and produced to the metrics topic keyed
 * by its measurement and sorted tags — the keying every producer should use, so a series
 * stays on one partition.
 *
 * Waiting for the broker without blocking the server. 202 means every point of the body was
 * acknowledged by Kafka, so the answer has to wait for the delivery reports — but the server
 * thread must keep serving /healthz and everyone else meanwhile, and a report may come after
 * the answer (or never, for as long as the broker is away). So each request gets a job on the
 * heap, counted by references: one for the request, one per message produced. The delivery
 * callback only touches its job's counters and drops the message's reference; the request
 * drops its own when MHD is done with the connection; whoever drops the last frees the job. A
 * report arriving after the answer therefore lands in its own job, never in another request's
 * count or a dead stack frame. After producing, the request suspends its connection
 * (MHD_suspend_connection) and the handler returns; the producer's poll thread (kpoll_main)
 * serves the delivery reports and resumes the connection when the last report is in, or when
 * api.ingest_timeout_s has passed (then 504 with the counts so far; message.timeout.ms is the
 * same bound, so librdkafka gives up on those messages about then too). Suspend, resume and the
 * list of waiting jobs are all under jobs_mu, so a connection is resumed exactly once and only
 * while suspended; nops__api_ingest_stop answers every waiting job before the daemon stops.
 *
 * The same path serves /api/v2/write (Influx line protocol) and /api/v1/write (Prometheus
 * remote write), write.c: each gives its own body parser to nops__api_ingest_points, so every
 * route produces and keys its points here, and only the answer differs (202 with counts here,
 * 204 there).
 */
#include "api/api_int.h"
#include "kafka/kafka.h"

#include <stdlib.h>
#include <string.h>

typedef enum job_state {
    JOB_PRODUCING = 0, /* the handler is still producing */
    JOB_WAITING,       /* connection suspended, in api->waiting */
    JOB_DONE,          /* answered (or about to be): counts frozen in ans_* */
} job_state;

struct ingest_job {
    atomic_int refs;               /* the request's, plus one per message not yet reported */
    nops_api *api;                 /* outlives every job (reports are drained before destroy) */
    struct MHD_Connection *conn;   /* the suspended connection while JOB_WAITING */
    job_state state;               /* under api->jobs_mu, like every field below */
    uint32_t produced;             /* messages handed to librdkafka */
    uint32_t acked, failed;        /* delivery reports so far */
    rd_kafka_resp_err_t produce_err;  /* produce() refused a point (the rest were not tried) */
    rd_kafka_resp_err_t report_err;   /* the first failed delivery report */
    int64_t deadline_ns;           /* monotonic; the answer is due by then */
    bool timed_out, shutting_down; /* why a JOB_DONE came early */
    uint32_t ans_acked, ans_failed; /* the counts the answer gives */
    uint32_t rejected;             /* lines the parser refused */
    uint32_t first_bad;            /* the first of them (1-based) */
    nops_reject reason;            /* and why */
    char detail[160];
    nops__ingest_kind kind;        /* which route: how the answer reads */
    uint32_t stale;                /* NaN samples skipped (staleness markers) */
    ingest_job *prev, *next;       /* api->waiting */
};

static void job_unref(ingest_job *j)
{
    if (j && atomic_fetch_sub(&j->refs, 1) == 1)
        nops_free(j);
}

/* Freeze the counts and resume the connection. Under jobs_mu; the job is JOB_WAITING. */
static void job_finish(nops_api *api, ingest_job *j)
{
    if (j->prev)
        j->prev->next = j->next;
    else
        api->waiting = j->next;
    if (j->next)
        j->next->prev = j->prev;
    j->prev = j->next = NULL;
    j->state = JOB_DONE;
    j->ans_acked = j->acked;
    j->ans_failed = j->failed;
    atomic_fetch_sub(&api->m.ingest_waiting, 1);
    MHD_resume_connection(j->conn);
    j->conn = NULL;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    ingest_job *j = m->_private;
    if (!j)
        return;
    nops_api *api = j->api;
    pthread_mutex_lock(&api->jobs_mu);
    if (m->err) {
        j->failed++;
        if (!j->report_err)
            j->report_err = m->err;
    } else {
        j->acked++;
        atomic_fetch_add(&api->m.ingest_points, 1);
    }
    if (j->state == JOB_WAITING && j->acked + j->failed == j->produced)
        job_finish(api, j);
    pthread_mutex_unlock(&api->jobs_mu);
    job_unref(j);
}

/* Answer the jobs whose time is up (504 with what was acknowledged so far). */
static void expire_jobs(nops_api *api, int64_t now_ns)
{
    pthread_mutex_lock(&api->jobs_mu);
    for (ingest_job *j = api->waiting, *next; j; j = next) {
        next = j->next;
        if (now_ns >= j->deadline_ns) {
            j->timed_out = true;
            job_finish(api, j);
        }
    }
    pthread_mutex_unlock(&api->jobs_mu);
}

/* Serves the producer's delivery reports (and its log and error events) and the deadlines. */
static void *kpoll_main(void *arg)
{
    nops_api *api = arg;
    while (!atomic_load(&api->kpoll_stop)) {
        rd_kafka_poll(api->producer, 50);
        expire_jobs(api, (int64_t)nops_now_ns());
    }
    return NULL;
}

nops_err nops__api_producer(nops_api *api, char *errstr, size_t errstr_size)
{
    if (!api->d.brokers)
        return NOPS_OK;
    char err[512], timeout[32];
    snprintf(timeout, sizeof timeout, "%lld", (long long)api->p.ingest_timeout_s * 1000);
    const nops_kafka_prop props[] = {{"linger.ms", "1"},
                                     {"compression.codec", "lz4"},
                                     {"message.timeout.ms", timeout},
                                     {"enable.idempotence", "true"}};
    rd_kafka_conf_t *c = nops_kafka_conf_new(api->d.kafka, api->d.brokers, "ingest-api", props,
                                             sizeof props / sizeof props[0], err, sizeof err);
    if (c)
        rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
    if (!c || !(api->producer = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err))) {
        if (c)
            rd_kafka_conf_destroy(c);
        nops_errf(errstr, errstr_size, "the /ingest producer: %s", err);
        return NOPS_CONFIG;
    }
    snprintf(api->topic, sizeof api->topic, "%s",
             api->d.metrics_topic ? api->d.metrics_topic : "neuralops.metrics");
    if (pthread_create(&api->kpoll, NULL, kpoll_main, api) != 0) {
        nops_errf(errstr, errstr_size, "the /ingest producer: cannot start its poll thread");
        return NOPS_INTERNAL;
    }
    api->kpoll_started = true;
    return NOPS_OK;
}

void nops__api_ingest_stop(nops_api *api)
{
    pthread_mutex_lock(&api->jobs_mu);
    api->stopping = true; /* no request suspends from now on */
    while (api->waiting) {
        api->waiting->shutting_down = true;
        job_finish(api, api->waiting);
    }
    pthread_mutex_unlock(&api->jobs_mu);
}

void nops__api_producer_destroy(nops_api *api)
{
    if (api->kpoll_started) {
        atomic_store(&api->kpoll_stop, true);
        pthread_join(api->kpoll, NULL);
        api->kpoll_started = false;
    }
    if (api->producer) {
        /* every message gets its report (purged ones with ERR__PURGE_*), so every job is freed */
        rd_kafka_flush(api->producer, 2000);
        rd_kafka_purge(api->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_flush(api->producer, 5000);
        rd_kafka_destroy(api->producer);
        api->producer = NULL;
    }
}

void nops__api_ingest_release(ingest_job *j)
{
    job_unref(j);
}

/* ---- points → escaped line protocol -------------------------------------------------------- */

static bool put_escaped(nops_buf *b, const char *s, size_t n, const char *special)
{
    if (nops_buf_reserve(b, 2 * n + 1) != NOPS_OK)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (strchr(special, s[i]) && s[i])
            b->b[b->len++] = '\\';
        b->b[b->len++] = s[i];
    }
    return true;
}

static bool put_raw(nops_buf *b, const char *s, size_t n)
{
    if (nops_buf_reserve(b, n + 1) != NOPS_OK)
        return false;
    memcpy(b->b + b->len, s, n);
    b->len += n;
    return true;
}

static void ingest_accepted(response *res, const ingest_job *j)
{
    json_t *o = json_pack("{s:I, s:I}", "accepted", (json_int_t)j->produced, "rejected",
                          (json_int_t)j->rejected);
    if (o && j->stale)
        json_object_set_new(o, "stale", json_integer((json_int_t)j->stale));
    if (o && j->rejected)
        json_object_set_new(o, "first_error",
                            json_pack("{s:I, s:s, s:s}", "line", (json_int_t)j->first_bad,
                                      "reason", nops_ingest_reject_name(j->reason), "detail",
                                      j->detail));
    if (o)
        nops__api_json(res, 202, o);
    else
        nops__api_error(res, 500, "out of memory");
}

typedef struct ingest_ctx {
    nops_api *api;
    ingest_job *job;
    nops_buf line;
    int64_t now_ns;          /* the wall clock of the request */
    uint32_t seen;           /* points the parser gave */
    uint32_t out_of_time;    /* ... refused for their time (the pipeline would DLQ them) */
    uint32_t first_late;     /* 1-based number of the first such point */
    const char *late_detail; /* why (static storage) */
} ingest_ctx;

/* measurement,sorted tags → the key; then " field=value ts" → the whole line. */
static bool encode(const nops_point *pt, nops_buf *b, size_t *key_len)
{
    size_t order[64], n = pt->n_tags < 64 ? pt->n_tags : 64;
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    for (size_t i = 1; i < n; i++) /* insertion sort by key: few tags */
        for (size_t j = i; j > 0; j--) {
            const nops_label *x = &pt->tags[order[j - 1]], *y = &pt->tags[order[j]];
            size_t m = x->key_len < y->key_len ? x->key_len : y->key_len;
            int c = memcmp(x->key, y->key, m);
            if (c < 0 || (c == 0 && x->key_len <= y->key_len))
                break;
            size_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    b->len = 0;
    bool ok = put_escaped(b, pt->measurement, pt->measurement_len, ", ");
    for (size_t i = 0; ok && i < n; i++) {
        const nops_label *t = &pt->tags[order[i]];
        ok = put_raw(b, ",", 1) && put_escaped(b, t->key, t->key_len, ",= ") &&
             put_raw(b, "=", 1) && put_escaped(b, t->value, t->value_len, ",= ");
    }
    *key_len = b->len;
    char num[64];
    int nl = snprintf(num, sizeof num, "=%.17g %lld", pt->value, (long long)pt->ts_ns);
    ok = ok && put_raw(b, " ", 1) &&
         (pt->field_len ? put_escaped(b, pt->field, pt->field_len, ",= ")
                        : put_raw(b, "value", 5)) &&
         put_raw(b, num, (size_t)nl);
    return ok;
}

static bool on_point(void *ud, const nops_point *pt)
{
    ingest_ctx *x = ud;
    ingest_job *j = x->job;
    size_t key_len;
    const char *why = NULL;
    x->seen++;
    /* the pipeline sends these to the DLQ (reason timestamp): say so now instead of a 202 */
    if (nops_ingest_check_time(pt->ts_ns, x->now_ns, x->api->d.ingest_max_past_s,
                               x->api->d.ingest_max_future_s, &why) != NOPS_REJECT_NONE) {
        if (!x->out_of_time++) {
            x->first_late = x->seen;
            x->late_detail = why;
        }
        return true;
    }
    if (!encode(pt, &x->line, &key_len)) {
        j->produce_err = RD_KAFKA_RESP_ERR__FAIL;
        return false;
    }
    atomic_fetch_add(&j->refs, 1); /* the message's, dropped by its delivery report */
    rd_kafka_resp_err_t e = rd_kafka_producev(
        x->api->producer, RD_KAFKA_V_TOPIC(x->api->topic),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE(x->line.b, x->line.len),
        RD_KAFKA_V_KEY(x->line.b, key_len), RD_KAFKA_V_OPAQUE(j), RD_KAFKA_V_END);
    if (e) {
        atomic_fetch_sub(&j->refs, 1); /* no report will come for it */
        j->produce_err = e;
        return false;
    }
    pthread_mutex_lock(&x->api->jobs_mu); /* reports may already be coming in */
    j->produced++;
    pthread_mutex_unlock(&x->api->jobs_mu);
    return true;
}

static bool content_type_ok(struct MHD_Connection *c)
{
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_TYPE);
    static const char *types[] = {"text/plain", "application/json", "application/x-ndjson"};
    for (size_t i = 0; ct && i < 3; i++)
        if (strncasecmp(ct, types[i], strlen(types[i])) == 0)
            return true;
    return !ct;
}

/* After producing: answer now (every report is in, or nothing was produced), or suspend. */
static bool wait_or_answer(nops_api *api, struct MHD_Connection *c, ingest_job *j)
{
    bool wait = false;
    pthread_mutex_lock(&api->jobs_mu);
    if (j->acked + j->failed < j->produced && !api->stopping) {
        j->state = JOB_WAITING;
        j->conn = c;
        j->deadline_ns = (int64_t)nops_now_ns() + api->p.ingest_timeout_s * 1000000000ll;
        j->next = api->waiting;
        if (api->waiting)
            api->waiting->prev = j;
        api->waiting = j;
        atomic_fetch_add(&api->m.ingest_waiting, 1);
        MHD_suspend_connection(c);
        wait = true;
    } else {
        j->shutting_down = j->acked + j->failed < j->produced;
        j->state = JOB_DONE;
        j->ans_acked = j->acked;
        j->ans_failed = j->failed;
    }
    pthread_mutex_unlock(&api->jobs_mu);
    return wait;
}

/* /ingest's parser: either format, detected from the body. */
static nops_err parse_any(void *src, const char *body, size_t len, int64_t now_ns,
                          nops_point_fn fn, void *ud, nops_parse_stats *st)
{
    (void)src;
    return nops_ingest_parse(body, len, now_ns, fn, ud, st);
}

bool nops__api_ingest(nops_api *api, struct MHD_Connection *c, request *rq, response *res)
{
    if (!content_type_ok(c)) {
        nops__api_error(res, 415, "send line protocol as text/plain or JSON as "
                                  "application/json");
        return false;
    }
    if (!nops__api_body_decode(api, c, rq, res))
        return false;
    return nops__api_ingest_points(api, c, rq, res, NOPS__INGEST_202, parse_any, NULL);
}

bool nops__api_ingest_points(nops_api *api, struct MHD_Connection *c, request *rq,
                             response *res, nops__ingest_kind kind, nops__body_parser parse,
                             void *src)
{
    if (!api->producer) {
        nops__api_error(res, 503, "no Kafka producer is configured for %s",
                        nops__route_paths[rq->route]);
        return false;
    }
    ingest_job *j = nops_calloc(1, sizeof *j);
    if (!j) {
        nops__api_error(res, 500, "out of memory");
        return false;
    }
    atomic_init(&j->refs, 1);
    j->api = api;
    j->kind = kind;
    rq->job = j; /* the request's reference, dropped when MHD is done with it */
    ingest_ctx x = {.api = api, .job = j, .now_ns = nops_wall_ns()};
    nops_parse_stats ps = {0};
    nops_err pe = parse(src, rq->body.b ? rq->body.b : "", rq->body.len, x.now_ns, on_point, &x,
                        &ps);
    nops_free(x.line.b);
    if (pe == NOPS_RANGE || pe == NOPS_NOMEM) { /* refused before any point was given */
        if (pe == NOPS_RANGE)
            nops__api_error(res, 413, "request body decompresses past api.body_limit (%lld "
                            "bytes)", (long long)api->p.body_limit);
        else
            nops__api_error(res, 500, "out of memory");
        return false;
    }
    j->rejected = ps.rejected + x.out_of_time;
    j->stale = ps.stale;
    j->first_bad = ps.first_bad;
    j->reason = ps.reason;
    snprintf(j->detail, sizeof j->detail, "%s", ps.detail ? ps.detail : "");
    if (x.out_of_time && !ps.rejected) { /* the first error named is a time one */
        j->first_bad = x.first_late;
        j->reason = NOPS_REJECT_TIMESTAMP;
        snprintf(j->detail, sizeof j->detail, "point %u: %s", x.first_late,
                 x.late_detail ? x.late_detail : "outside pipeline.max_past_s/max_future_s");
    }
    atomic_fetch_add(&api->m.ingest_rejected, j->rejected);
    atomic_fetch_add(&api->m.ingest_stale, j->stale);
    if (wait_or_answer(api, c, j))
        return true;
    nops__api_ingest_answer(api, rq, res);
    return false;
}

/* The answer of /api/v2/write and /api/v1/write once Kafka has every point: 204, or 400 naming
 * the first refusal (the other points were written: Influx's "partial write", and what Prometheus
 * must not retry). */
static void write_answer(response *res, const ingest_job *j)
{
    const bool rw = j->kind == NOPS__INGEST_REMOTE_WRITE;
    if (!j->rejected && (j->produced || j->stale || rw)) {
        res->status = 204;
        return;
    }
    if (!j->rejected) {
        nops__api_error(res, 400, "the body holds no point");
        return;
    }
    nops__api_error(res, 400, "partial write: %u point(s) written, %u %s rejected; %s %u: %s "
                    "(%s)", j->produced, j->rejected, rw ? "sample(s)" : "line(s)",
                    rw ? "series" : "line", j->first_bad, j->detail[0] ? j->detail : "rejected",
                    nops_ingest_reject_name(j->reason));
}

void nops__api_ingest_answer(nops_api *api, request *rq, response *res)
{
    ingest_job *j = rq->job;
    pthread_mutex_lock(&api->jobs_mu); /* the answer's counts are frozen; read them in peace */
    const uint32_t produced = j->produced, acked = j->ans_acked, failed = j->ans_failed;
    const rd_kafka_resp_err_t perr = j->produce_err, rerr = j->report_err;
    const bool timed_out = j->timed_out, stopping = j->shutting_down;
    pthread_mutex_unlock(&api->jobs_mu);
    const uint32_t tried = produced + (perr ? 1 : 0);
    const char *again = "send the body again (points are idempotent by series and time)";
    if (timed_out)
        nops__api_error(res, 504, "Kafka acknowledged %u of %u points within api.ingest_timeout_s "
                        "(%lld s; is the broker reachable?), %u failed, %u unanswered; %s",
                        acked, tried, (long long)api->p.ingest_timeout_s, failed + (perr ? 1 : 0),
                        produced - acked - failed, again);
    else if (stopping)
        nops__api_error(res, 503, "the server is stopping: %u of %u points acknowledged by "
                        "Kafka; %s", acked, tried, again);
    else if (perr || failed)
        nops__api_error(res, 503, "Kafka refused points (%s): %u of %u delivered; %s",
                        rd_kafka_err2str(perr ? perr : rerr), acked, tried, again);
    else if (j->kind != NOPS__INGEST_202)
        write_answer(res, j);
    else if (produced == 0 && j->stale && !j->rejected)
        ingest_accepted(res, j);
    else if (produced == 0 && j->rejected)
        nops__api_error(res, 400, "no point accepted: line %u: %s (%s)", j->first_bad,
                        j->detail[0] ? j->detail : "rejected", nops_ingest_reject_name(j->reason));
    else if (produced == 0)
        nops__api_error(res, 400, "the body holds no point");
    else
        ingest_accepted(res, j);
}
