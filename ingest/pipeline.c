/*
 * pipeline.c — the streaming engine: Kafka consumer → parse → detect → correlate → sinks.
 *
 * Threads. One poller thread owns the consumer handle: it polls messages, serves the group's
 * rebalance callbacks, and hands each message to worker `partition % workers` through a bounded
 * queue (so a series, which producers key to one partition, always meets the same detector
 * state and the hot path takes no lock). Workers parse, detect, and write signals and incidents
 * to the sinks; the sinks are the only shared, locked structure, and only signals reach them.
 *
 * At-least-once (the essay). A worker publishes, per partition, the offset after the last
 * message whose signals it has written to the sinks (a release store after the writes). Every
 * flush_ms the poller reads those offsets (acquire), flushes the sinks and the dead-letter
 * producer, and only if both succeeded commits the offsets. A crash at any point therefore
 * replays from the last commit, whose signals are all durable: duplicates are possible, losses
 * are not. Signal ids are a hash of (series, timestamp), so a replayed signal has the same id
 * and sinks or readers can drop duplicates. When a flush fails the poller pauses every assigned
 * partition, retries with backoff, and resumes once a flush succeeds; queues and sink buffers
 * are bounded, so a long outage stops consumption instead of growing memory.
 *
 * Rebalance (cooperative-sticky). On revoke the poller waits for the workers to drain what was
 * queued, flushes, commits synchronously, then gives the partitions up; on assign it takes them.
 */
#include "ingest/ingest.h"

#include <errno.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <sys/stat.h>
#include <unistd.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#define MAX_PARTITIONS 4096
#define MAX_WORKERS 64

/* ---- config tables ---------------------------------------------------------------------- */

#define K(f) offsetof(nops_kafka_params, f)
static const nops_cfg_entry kafka_entries[] = {
    {"brokers", NOPS_CFG_STRING, K(brokers), 0, 512, "localhost:9092", NULL, "brokers", 0,
     "Kafka bootstrap servers, host:port[,host:port...]."},
    {"topic", NOPS_CFG_STRING, K(topic), 0, 256, "neuralops.metrics", NULL, "topic", 0,
     "Topic the metrics are read from."},
    {"group", NOPS_CFG_STRING, K(group), 0, 128, "neuralops", NULL, "group", 0,
     "Consumer group; instances in one group share the partitions."},
    {"dlq_topic", NOPS_CFG_STRING, K(dlq_topic), 0, 256, "neuralops.metrics.dlq", NULL, NULL, 0,
     "Messages with rejected points are copied here, the reason in a header."},
    {"session_timeout_ms", NOPS_CFG_INT, K(session_timeout_ms), 1000, 3600000, "10000", NULL,
     NULL, 0, "Group session timeout; a dead instance's partitions move after this long."},
    {"extra", NOPS_CFG_STRING, K(extra), 0, 1024, "", NULL, NULL, NOPS_CFG_SECRET,
     "More librdkafka properties as k=v,k=v (e.g. security settings)."},
};
#undef K
const nops_cfg_section nops_kafka_cfg_section = {
    "kafka", "The Kafka cluster metrics are consumed from.", kafka_entries,
    sizeof kafka_entries / sizeof kafka_entries[0], NULL,
};

#define P(f) offsetof(nops_pipeline_params, f)
static const nops_cfg_entry pipeline_entries[] = {
    {"workers", NOPS_CFG_INT, P(workers), 1, MAX_WORKERS, "2", NULL, "workers", 0,
     "Detector threads; partition p is handled by worker p % workers."},
    {"queue_depth", NOPS_CFG_INT, P(queue_depth), 16, 1 << 20, "65536", NULL, NULL, 0,
     "Messages queued per worker before the poller waits (backpressure)."},
    {"batch", NOPS_CFG_INT, P(batch), 1, 1 << 16, "2048", NULL, NULL, 0,
     "Messages a worker takes per turn."},
    {"flush_ms", NOPS_CFG_INT, P(flush_ms), 10, 60000, "500", NULL, NULL, 0,
     "Sinks are flushed (made durable) at least this often."},
    {"max_series", NOPS_CFG_INT, P(max_series), 1, 1 << 30, "10000000", NULL, NULL, 0,
     "Series per worker; points of new series past this are rejected (reason too_large)."},
    {"snapshot_ms", NOPS_CFG_INT, P(snapshot_ms), 100, 3600000, "5000", NULL, NULL, 0,
     "Detector state is snapshot to storage.data_dir/state/ and the matching offsets "
     "committed this often (and on revoke and stop); a crash replays at most this much."},
};
#undef P
const nops_cfg_section nops_pipeline_cfg_section = {
    "pipeline", "Threads, batching and delivery of the streaming engine.", pipeline_entries,
    sizeof pipeline_entries / sizeof pipeline_entries[0], NULL,
};

static const nops_cfg_entry storage_entries[] = {
    {"data_dir", NOPS_CFG_STRING, offsetof(nops_storage_params, data_dir), 0, 512,
     "./neuralops-data", NULL, "data-dir", 0,
     "Directory of signals.jsonl and incidents.jsonl (created if missing)."},
};
const nops_cfg_section nops_storage_cfg_section = {
    "storage", "Where the embedded default keeps its records.", storage_entries,
    sizeof storage_entries / sizeof storage_entries[0], NULL,
};

/* ---- worker queues ---------------------------------------------------------------------- */

typedef struct msgq {
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full, drained;
    rd_kafka_message_t **ring; /* bounded ring */
    uint32_t cap, head, len;   /* capacity, first, count */
    uint32_t busy;             /* messages taken by the worker and not finished */
    bool closed;               /* no more messages will come */
} msgq;

static bool msgq_init(msgq *q, uint32_t cap)
{
    q->ring = nops_calloc(cap, sizeof *q->ring);
    q->cap = cap;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->not_empty, NULL);
    pthread_cond_init(&q->not_full, NULL);
    pthread_cond_init(&q->drained, NULL);
    return q->ring != NULL;
}

static void msgq_fini(msgq *q)
{
    if (!q->ring)
        return;
    for (uint32_t i = 0; i < q->len; i++)
        rd_kafka_message_destroy(q->ring[(q->head + i) % q->cap]);
    nops_free(q->ring);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->not_empty);
    pthread_cond_destroy(&q->not_full);
    pthread_cond_destroy(&q->drained);
}

/* Push n messages, waiting while full (the poller's backpressure). */
static void msgq_push(msgq *q, rd_kafka_message_t **m, uint32_t n)
{
    pthread_mutex_lock(&q->mu);
    for (uint32_t i = 0; i < n; i++) {
        while (q->len == q->cap)
            pthread_cond_wait(&q->not_full, &q->mu);
        q->ring[(q->head + q->len++) % q->cap] = m[i];
    }
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
}

/* Take up to max messages, waiting up to 100 ms; 0 when none (or closed and empty). */
static uint32_t msgq_pop(msgq *q, rd_kafka_message_t **out, uint32_t max)
{
    pthread_mutex_lock(&q->mu);
    if (q->len == 0 && !q->closed) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&q->not_empty, &q->mu, &ts);
    }
    uint32_t n = 0;
    while (n < max && q->len) {
        out[n++] = q->ring[q->head];
        q->head = (q->head + 1) % q->cap;
        q->len--;
    }
    q->busy += n;
    if (n)
        pthread_cond_broadcast(&q->not_full);
    pthread_mutex_unlock(&q->mu);
    return n;
}

static void msgq_done(msgq *q, uint32_t n)
{
    pthread_mutex_lock(&q->mu);
    q->busy -= n;
    if (q->len == 0 && q->busy == 0)
        pthread_cond_broadcast(&q->drained);
    pthread_mutex_unlock(&q->mu);
}

/* Wait until the worker has finished everything queued so far. */
static void msgq_wait_drained(msgq *q)
{
    pthread_mutex_lock(&q->mu);
    while (q->len || q->busy)
        pthread_cond_wait(&q->drained, &q->mu);
    pthread_mutex_unlock(&q->mu);
}

/* ---- the pipeline object ---------------------------------------------------------------- */

typedef struct worker worker;

struct nops_pipeline {
    nops_kafka_params kp;        /* copies of the settings */
    nops_pipeline_params pp;
    nops_detect_params dp;
    char state_dir[600];         /* data_dir/state */
    rd_kafka_t *rk;              /* consumer */
    rd_kafka_t *dlq;             /* dead-letter producer */
    nops_sinks *sinks;           /* borrowed */
    nops_correlator *corr;       /* shared, locked inside */
    worker *workers;             /* pp.workers of them */
    pthread_t poller;            /* the poller thread */
    bool started;                /* threads running */
    atomic_bool stopping;        /* stop requested */
    atomic_int_fast64_t processed[MAX_PARTITIONS]; /* next offset whose signals are written */
    int64_t committed[MAX_PARTITIONS];  /* last committed offset (poller only) */
    bool assigned[MAX_PARTITIONS];      /* partitions we own (poller only) */
    atomic_uint n_assigned;             /* how many */
    atomic_bool paused;                 /* consumption paused on a sink failure */
    atomic_int_fast64_t latest_ts;      /* newest point time seen (for incident resolution) */
    nops_pipeline_stats st;             /* counters, updated with atomics */
    pthread_mutex_t st_mu;              /* guards st's non-atomic fields */
};

struct worker {
    nops_pipeline *p;           /* owner */
    int id;                     /* index */
    pthread_t thr;              /* thread */
    msgq q;                     /* its queue */
    nops_detector *det;         /* its series state */
    /* per-batch scratch, grown as needed and reused */
    uint32_t *slots;            /* point → slot */
    float *values;              /* point values */
    int64_t *ts;                /* point timestamps */
    float *z, *ze;              /* detector outputs */
    uint8_t *flags;
    size_t n, cap;              /* points in the batch, capacity */
    int64_t recv_ns;            /* wall clock when the batch was taken */
    nops_parse_stats ps;        /* last message's parse result */
    uint64_t rejected_series;   /* points refused by max_series */
    int32_t cur_part;           /* partition of the message being parsed */
    uint16_t *slot_part;        /* slot → partition (for per-partition snapshots) */
    uint32_t slot_part_cap;     /* entries allocated */
    uint32_t last_evict_s;      /* last TTL sweep */
};

#define STAT_ADD(p, field, v) __atomic_fetch_add(&(p)->st.field, (v), __ATOMIC_RELAXED)

/* ---- worker: parse, detect, signal ------------------------------------------------------ */

static bool grow_scratch(worker *w)
{
    size_t cap = w->cap ? w->cap * 2 : 8192;
#define GROW(f) do { void *n_ = nops_realloc(w->f, cap * sizeof *w->f); if (!n_) return false; w->f = n_; } while (0)
    GROW(slots);
    GROW(values);
    GROW(ts);
    GROW(z);
    GROW(ze);
    GROW(flags);
#undef GROW
    w->cap = cap;
    return true;
}

/* One parsed point: find its series slot and queue it for the batch kernel call. */
static bool on_point(void *ud, const nops_point *pt)
{
    worker *w = ud;
    if (w->n == w->cap && !grow_scratch(w))
        return false;
    char name[512];
    size_t nl;
    if (pt->field_len)
        nl = (size_t)snprintf(name, sizeof name, "%.*s_%.*s", (int)pt->measurement_len,
                              pt->measurement, (int)pt->field_len, pt->field);
    else
        nl = (size_t)snprintf(name, sizeof name, "%.*s", (int)pt->measurement_len,
                              pt->measurement);
    if (nl >= sizeof name) {
        w->ps.rejected++;
        w->ps.reason = NOPS_REJECT_TOO_LARGE;
        return true;
    }
    nops_label labels[NOPS_INGEST_MAX_TAGS];
    for (size_t i = 0; i < pt->n_tags; i++)
        labels[i] = (nops_label){pt->tags[i].key, pt->tags[i].key_len, pt->tags[i].value,
                                 pt->tags[i].value_len};
    char key[NOPS_KEY_MAX];
    size_t klen;
    uint64_t id;
    if (nops_detect_series_key(name, nl, labels, pt->n_tags, key, sizeof key, &klen, &id) !=
        NOPS_OK) {
        w->ps.rejected++;
        w->ps.reason = NOPS_REJECT_TOO_LARGE;
        return true;
    }
    uint32_t slot;
    if (nops_detect_lookup(w->det, id, &slot) != NOPS_OK) {
        if (nops_detect_series_count(w->det) >= (uint64_t)w->p->pp.max_series ||
            nops_detect_slot(w->det, id, key, klen, (uint32_t)(w->recv_ns / 1000000000), &slot) !=
                NOPS_OK) {
            w->rejected_series++;
            STAT_ADD(w->p, rejected[NOPS_REJECT_TOO_LARGE], 1);
            return true;
        }
    } else {
        nops_detect_slot(w->det, id, NULL, 0, (uint32_t)(w->recv_ns / 1000000000), &slot);
    }
    if (slot >= w->slot_part_cap) {
        uint32_t ncap = w->slot_part_cap ? w->slot_part_cap * 2 : 4096;
        while (ncap <= slot)
            ncap *= 2;
        uint16_t *np = nops_realloc(w->slot_part, ncap * sizeof *np);
        if (!np)
            return false;
        w->slot_part = np;
        w->slot_part_cap = ncap;
    }
    w->slot_part[slot] = (uint16_t)w->cur_part;
    w->slots[w->n] = slot;
    w->values[w->n] = pt->value > 3.4e38 ? INFINITY : pt->value < -3.4e38 ? -INFINITY
                                                                          : (float)pt->value;
    w->ts[w->n] = pt->ts_ns;
    w->n++;
    return true;
}

static void send_dlq(worker *w, const rd_kafka_message_t *m)
{
    nops_pipeline *p = w->p;
    char part[16], off[24], count[16];
    snprintf(part, sizeof part, "%d", (int)m->partition);
    snprintf(off, sizeof off, "%lld", (long long)m->offset);
    snprintf(count, sizeof count, "%u", w->ps.rejected);
    const char *reason = nops_ingest_reject_name(w->ps.reason);
    const char *detail = w->ps.detail ? w->ps.detail : "";
    rd_kafka_resp_err_t err = rd_kafka_producev(
        p->dlq, RD_KAFKA_V_TOPIC(p->kp.dlq_topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_VALUE(m->payload, m->len), RD_KAFKA_V_KEY(m->key, m->key_len),
        RD_KAFKA_V_HEADER("reason", reason, -1), RD_KAFKA_V_HEADER("detail", detail, -1),
        RD_KAFKA_V_HEADER("rejected", count, -1), RD_KAFKA_V_HEADER("source_partition", part, -1),
        RD_KAFKA_V_HEADER("source_offset", off, -1), RD_KAFKA_V_END);
    if (err)
        NOPS_WARN("ingest", "dead-letter produce failed: %s", rd_kafka_err2str(err));
    else
        STAT_ADD(p, dlq, 1);
}

static void build_signal(worker *w, size_t i, nops_signal *s)
{
    const nops_detect_params *dp = &w->p->dp;
    const char *key = nops_detect_slot_key(w->det, w->slots[i]);
    memset(s, 0, sizeof *s);
    snprintf(s->series, sizeof s->series, "%s", key);
    s->series_id = nops_detect_key_id(key, strlen(key));
    uint64_t h = XXH3_64bits_withSeed(&w->ts[i], sizeof w->ts[i], s->series_id);
    snprintf(s->id, sizeof s->id, "%016llx", (unsigned long long)h);
    s->ts_ns = w->ts[i];
    s->value = w->values[i];
    s->zscore = w->z[i];
    s->ewma = w->ze[i];
    double rz = fabs(w->z[i]) / dp->z_threshold, re = fabs(w->ze[i]) / dp->ewma_threshold;
    if (dp->method == NOPS_METHOD_ZSCORE)
        re = 0;
    if (dp->method == NOPS_METHOD_EWMA)
        rz = 0;
    s->method = rz >= re ? NOPS_FIRED_ZSCORE : NOPS_FIRED_EWMA;
    s->score = nops_detect_score(rz > re ? rz : re);
    s->received_ns = w->recv_ns;
    double mean = 0, sd = 0;
    uint32_t cnt = 0;
    nops_detect_slot_stats(w->det, w->slots[i], &mean, &sd, &cnt);
    double prev_mean = cnt > 1 ? (mean * cnt - s->value) / (cnt - 1) : mean;
    float zz = s->method == NOPS_FIRED_ZSCORE ? s->zscore : s->ewma;
    snprintf(s->hint, sizeof s->hint, "%.300s is %.1fσ %s its %s (%.4g)", key, fabs(zz),
             zz >= 0 ? "above" : "below",
             s->method == NOPS_FIRED_ZSCORE ? "rolling mean" : "moving average", prev_mean);
}

static void emit_signals(worker *w)
{
    nops_pipeline *p = w->p;
    for (size_t i = 0; i < w->n; i++) {
        if (w->flags[i] & NOPS_DETECT_CLEARED) {
            const char *key = nops_detect_slot_key(w->det, w->slots[i]);
            nops_correlate_cleared(p->corr, nops_detect_key_id(key, strlen(key)), w->ts[i]);
        }
        if (!(w->flags[i] & NOPS_DETECT_FIRED))
            continue;
        nops_signal sig;
        build_signal(w, i, &sig);
        float win[NOPS_DETECT_MAX_WINDOW];
        uint32_t nw = nops_detect_slot_window(w->det, w->slots[i], win, NOPS_DETECT_MAX_WINDOW);
        nops_incident inc;
        bool opened = false;
        nops_sinks_signal(p->sinks, &sig);
        STAT_ADD(p, signals, 1);
        const int64_t lat = nops_wall_ns() - sig.ts_ns;
        if (lat >= 0 && lat < 3600ll * 1000000000ll) {
            uint64_t us = (uint64_t)(lat / 1000);
            int b = 0;
            while (b < 31 && us >= (1ull << b))
                b++;
            STAT_ADD(p, latency_us_log2[b], 1);
        }
        if (nops_correlate_signal(p->corr, &sig, win, nw, &inc, &opened) == NOPS_OK) {
            nops_sinks_incident(p->sinks, &inc);
            if (opened)
                STAT_ADD(p, incidents_opened, 1);
        }
    }
}

static void worker_batch(worker *w, rd_kafka_message_t **msgs, uint32_t n)
{
    nops_pipeline *p = w->p;
    w->n = 0;
    w->recv_ns = nops_wall_ns();
    int64_t newest = 0;
    for (uint32_t i = 0; i < n; i++) {
        rd_kafka_message_t *m = msgs[i];
        size_t before = w->n;
        w->cur_part = m->partition >= 0 && m->partition < MAX_PARTITIONS ? m->partition : 0;
        nops_ingest_parse(m->payload ? m->payload : "", m->len, w->recv_ns, on_point, w, &w->ps);
        if (w->ps.rejected) {
            STAT_ADD(p, rejected[w->ps.reason < 6 ? w->ps.reason : 0], w->ps.rejected);
            send_dlq(w, m);
        }
        for (size_t k = before; k < w->n; k++)
            newest = w->ts[k] > newest ? w->ts[k] : newest;
    }
    if (w->n) {
        nops_detect_out out = {w->z, w->ze, w->flags};
        nops_detect_update_pairs(w->det, w->slots, w->values, w->n, &out);
        emit_signals(w);
    }
    /* signals are in the sinks: publish how far each partition is done (release) */
    for (uint32_t i = 0; i < n; i++) {
        rd_kafka_message_t *m = msgs[i];
        if (m->partition >= 0 && m->partition < MAX_PARTITIONS)
            atomic_store_explicit(&p->processed[m->partition], m->offset + 1,
                                  memory_order_release);
        rd_kafka_message_destroy(m);
    }
    int64_t cur = atomic_load(&p->latest_ts);
    while (newest > cur && !atomic_compare_exchange_weak(&p->latest_ts, &cur, newest)) {
    }
    STAT_ADD(p, messages, n);
    STAT_ADD(p, points, w->n);
    uint32_t now_s = (uint32_t)(w->recv_ns / 1000000000);
    if (now_s - w->last_evict_s >= 10) {
        nops_detect_evict_idle(w->det, now_s);
        w->last_evict_s = now_s;
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    rd_kafka_message_t **msgs = nops_calloc((size_t)w->p->pp.batch, sizeof *msgs);
    if (!msgs) {
        NOPS_ERROR("ingest", "worker %d: out of memory", w->id);
        return NULL;
    }
    for (;;) {
        uint32_t n = msgq_pop(&w->q, msgs, (uint32_t)w->p->pp.batch);
        if (n) {
            worker_batch(w, msgs, n);
            msgq_done(&w->q, n);
            continue;
        }
        pthread_mutex_lock(&w->q.mu);
        bool done = w->q.closed && w->q.len == 0;
        pthread_mutex_unlock(&w->q.mu);
        if (done)
            break;
    }
    nops_free(msgs);
    return NULL;
}

/* ---- detector state snapshots (per partition) ------------------------------------------- */

/*
 * Called by the poller with every worker drained and idle (it is the only producer of their
 * queues), so reading and writing the detectors here races with nothing; the queue mutex the
 * drain waited on orders the workers' last writes before our reads.
 */
static void snap_path(const nops_pipeline *p, int32_t part, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s-%d.snap", p->state_dir, p->kp.topic, (int)part);
}

static bool write_file_atomic(const char *path, const uint8_t *buf, size_t len)
{
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return false;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, buf + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    bool ok = off == len && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    return ok && rename(tmp, path) == 0;
}

/* Snapshot the series of every partition marked in `which`. */
static void snapshot_partitions(nops_pipeline *p, const bool *which)
{
    typedef struct { uint8_t *b; size_t len, cap; } sbuf;
    sbuf *bufs = nops_calloc(MAX_PARTITIONS, sizeof *bufs);
    if (!bufs)
        return;
    uint8_t rec[NOPS_KEY_MAX + 32 + NOPS_DETECT_MAX_WINDOW * 4];
    for (int wi = 0; wi < p->pp.workers; wi++) {
        worker *w = &p->workers[wi];
        uint32_t lim = nops_detect_slot_limit(w->det);
        for (uint32_t s = 0; s < lim && s < w->slot_part_cap; s++) {
            uint16_t part = w->slot_part[s];
            if (!which[part])
                continue;
            size_t n = nops_detect_save_series(w->det, s, rec, sizeof rec);
            if (!n)
                continue;
            sbuf *b = &bufs[part];
            if (b->len + n > b->cap) {
                size_t ncap = b->cap ? b->cap * 2 : 65536;
                while (ncap < b->len + n)
                    ncap *= 2;
                uint8_t *nb = nops_realloc(b->b, ncap);
                if (!nb)
                    continue;
                b->b = nb;
                b->cap = ncap;
            }
            memcpy(b->b + b->len, rec, n);
            b->len += n;
        }
    }
    for (int part = 0; part < MAX_PARTITIONS; part++) {
        if (!which[part])
            continue;
        char path[1000];
        snap_path(p, part, path, sizeof path);
        if (write_file_atomic(path, bufs[part].b ? bufs[part].b : (const uint8_t *)"",
                              bufs[part].len))
            STAT_ADD(p, snapshots, 1);
        else
            NOPS_WARN("ingest", "cannot write state snapshot %s: %s", path, strerror(errno));
        nops_free(bufs[part].b);
    }
    nops_free(bufs);
}

/* Load the snapshots of newly assigned partitions into their workers' detectors. */
static void restore_partitions(nops_pipeline *p, const rd_kafka_topic_partition_list_t *parts)
{
    for (int i = 0; i < parts->cnt; i++) {
        int32_t part = parts->elems[i].partition;
        if (part < 0 || part >= MAX_PARTITIONS)
            continue;
        char path[1000];
        snap_path(p, part, path, sizeof path);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        fseek(f, 0, SEEK_END);
        long len = ftell(f);
        fseek(f, 0, SEEK_SET);
        uint8_t *buf = len > 0 ? nops_malloc((size_t)len) : NULL;
        size_t got = buf ? fread(buf, 1, (size_t)len, f) : 0;
        fclose(f);
        worker *w = &p->workers[part % p->pp.workers];
        size_t off = 0, restored = 0;
        uint32_t now_s = (uint32_t)(nops_wall_ns() / 1000000000);
        while (off < got) {
            size_t used;
            uint32_t slot;
            if (nops_detect_restore_series(w->det, buf + off, got - off, now_s, &used, &slot) !=
                NOPS_OK) {
                NOPS_WARN("ingest", "state snapshot %s is damaged after %zu series: rest ignored",
                          path, restored);
                break;
            }
            w->cur_part = part;
            if (slot >= w->slot_part_cap) { /* the same growth as on_point */
                uint32_t ncap = w->slot_part_cap ? w->slot_part_cap * 2 : 4096;
                while (ncap <= slot)
                    ncap *= 2;
                uint16_t *np = nops_realloc(w->slot_part, ncap * sizeof *np);
                if (!np)
                    break;
                w->slot_part = np;
                w->slot_part_cap = ncap;
            }
            w->slot_part[slot] = (uint16_t)part;
            off += used;
            restored++;
        }
        nops_free(buf);
        STAT_ADD(p, restored_series, restored);
        if (restored)
            NOPS_INFO("ingest", "partition %d: %zu series restored warm from %s", (int)part,
                      restored, path);
    }
}

/* ---- poller: checkpoints, rebalance, pause/resume ---------------------------------------- */

static void drain_workers(nops_pipeline *p)
{
    for (int i = 0; i < p->pp.workers; i++)
        msgq_wait_drained(&p->workers[i].q);
}

/* Resolve quiet incidents and write them (part of every checkpoint). */
static void resolve_incidents(nops_pipeline *p)
{
    nops_incident done[16];
    size_t n;
    int64_t now = atomic_load(&p->latest_ts);
    while ((n = nops_correlate_tick(p->corr, now, done, 16)) > 0) {
        for (size_t i = 0; i < n; i++)
            nops_sinks_incident(p->sinks, &done[i]);
        STAT_ADD(p, incidents_resolved, n);
    }
}

static void set_paused(nops_pipeline *p, bool pause)
{
    if (atomic_load(&p->paused) == pause)
        return;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(64);
    for (int i = 0; i < MAX_PARTITIONS; i++)
        if (p->assigned[i])
            rd_kafka_topic_partition_list_add(l, p->kp.topic, i);
    rd_kafka_resp_err_t err =
        pause ? rd_kafka_pause_partitions(p->rk, l) : rd_kafka_resume_partitions(p->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (err) {
        NOPS_WARN("ingest", "%s partitions failed: %s", pause ? "pausing" : "resuming",
                  rd_kafka_err2str(err));
        return;
    }
    atomic_store(&p->paused, pause);
    NOPS_WARN("ingest", pause ? "a sink is down: consumption paused, retrying"
                              : "sinks are back: consumption resumed");
}

/*
 * Flush sinks and the DLQ; with `snap` (the workers drained) also snapshot the detector state
 * of those partitions and commit the offsets that state corresponds to. `only` limits the
 * commit to one set of partitions (revocation); `sync` waits for the broker's answer.
 *
 * Offsets are committed only together with a snapshot of the same point: a restart then
 * resumes exactly where its restored state ends, warm, instead of at an offset whose history
 * the state lacks (a spike right after such a cold resume would go unsignalled while the window
 * refills). The snapshot comes after the flush: it must never hold a series' "already
 * signalled" state for a signal that is not durable yet. Between snapshots, flushes keep the
 * sinks current; a crash replays from the last snapshot (duplicates, never losses).
 */
static nops_err checkpoint(nops_pipeline *p, const rd_kafka_topic_partition_list_t *only,
                           bool sync, const bool *snap)
{
    int64_t offs[MAX_PARTITIONS];
    for (int i = 0; i < MAX_PARTITIONS; i++) /* read before flushing: acquire */
        offs[i] = p->assigned[i] ? atomic_load_explicit(&p->processed[i], memory_order_acquire)
                                 : -1;
    resolve_incidents(p);
    char err[512] = "";
    nops_err e = nops_sinks_flush(p->sinks, err, sizeof err);
    if (e == NOPS_OK && rd_kafka_flush(p->dlq, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, sizeof err, "dead-letter producer did not flush in 5 s");
        e = NOPS_IO;
    }
    if (e != NOPS_OK) {
        STAT_ADD(p, flush_failures, 1);
        NOPS_WARN("ingest", "flush failed, offsets not committed: %s", err);
        return e;
    }
    if (!snap)
        return NOPS_OK;
    snapshot_partitions(p, snap);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(64);
    for (int i = 0; i < MAX_PARTITIONS; i++) {
        if (offs[i] <= 0 || offs[i] <= p->committed[i] || !snap[i])
            continue;
        if (only && !rd_kafka_topic_partition_list_find(only, p->kp.topic, i))
            continue;
        rd_kafka_topic_partition_list_add(l, p->kp.topic, i)->offset = offs[i];
    }
    if (l->cnt == 0) {
        rd_kafka_topic_partition_list_destroy(l);
        return NOPS_OK;
    }
    rd_kafka_resp_err_t ce = rd_kafka_commit(p->rk, l, sync ? 0 : 1);
    NOPS_DEBUG("ingest", "commit of %d partition(s) (first %d@%lld): %s", l->cnt,
               (int)l->elems[0].partition, (long long)l->elems[0].offset,
               ce ? rd_kafka_err2str(ce) : "requested");
    if (ce) {
        STAT_ADD(p, commit_failures, 1);
        NOPS_WARN("ingest", "offset commit failed (will retry): %s", rd_kafka_err2str(ce));
    } else {
        for (int i = 0; i < l->cnt; i++)
            p->committed[l->elems[i].partition] = l->elems[i].offset;
        STAT_ADD(p, commits, 1);
    }
    rd_kafka_topic_partition_list_destroy(l);
    return ce ? NOPS_IO : NOPS_OK;
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    nops_pipeline *p = opaque;
    const bool coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        for (int i = 0; i < parts->cnt; i++) {
            int32_t part = parts->elems[i].partition;
            if (part < 0 || part >= MAX_PARTITIONS)
                continue;
            p->assigned[part] = true;
            p->committed[part] = -1;
            atomic_store(&p->processed[part], -1);
        }
        atomic_fetch_add(&p->n_assigned, (unsigned)parts->cnt);
        NOPS_INFO("ingest", "assigned %d partition(s) of %s", parts->cnt, p->kp.topic);
        drain_workers(p);
        restore_partitions(p, parts);
        rd_kafka_error_t *e = coop ? rd_kafka_incremental_assign(rk, parts) : NULL;
        if (!coop)
            rd_kafka_assign(rk, parts);
        if (e) {
            NOPS_ERROR("ingest", "assign failed: %s", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
        }
        if (atomic_load(&p->paused)) { /* newly assigned partitions stay paused too */
            atomic_store(&p->paused, false);
            set_paused(p, true);
        }
        return;
    }
    /* revoke (or lost): finish and commit what we have of them, then let go */
    drain_workers(p);
    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        bool *which = nops_calloc(MAX_PARTITIONS, sizeof *which);
        for (int i = 0; which && i < parts->cnt; i++)
            if (parts->elems[i].partition >= 0 && parts->elems[i].partition < MAX_PARTITIONS)
                which[parts->elems[i].partition] = true;
        checkpoint(p, parts, true, which);
        nops_free(which);
    }
    for (int i = 0; i < parts->cnt; i++) {
        int32_t part = parts->elems[i].partition;
        if (part >= 0 && part < MAX_PARTITIONS && p->assigned[part]) {
            p->assigned[part] = false;
            atomic_fetch_sub(&p->n_assigned, 1);
        }
    }
    NOPS_INFO("ingest", "revoked %d partition(s)", parts->cnt);
    if (coop) {
        rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, parts);
        if (e)
            rd_kafka_error_destroy(e);
    } else {
        rd_kafka_assign(rk, NULL);
    }
}

static void *poller_main(void *arg)
{
    nops_pipeline *p = arg;
    enum { CHUNK = 256 };
    rd_kafka_message_t **pend = nops_calloc((size_t)p->pp.workers * CHUNK, sizeof *pend);
    uint32_t *npend = nops_calloc((size_t)p->pp.workers, sizeof *npend);
    uint64_t last_ckpt = nops_now_ns(), last_snap = last_ckpt, backoff_ms = 100, next_retry = 0;
    while (pend && npend && !atomic_load(&p->stopping)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(p->rk, 20);
        if (m && m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                NOPS_WARN("ingest", "consumer: %s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            m = NULL;
        }
        if (m) {
            int wi = (m->partition < 0 ? 0 : m->partition) % (int)p->pp.workers;
            pend[wi * CHUNK + npend[wi]++] = m;
            if (npend[wi] == CHUNK) {
                msgq_push(&p->workers[wi].q, &pend[wi * CHUNK], CHUNK);
                npend[wi] = 0;
            }
        }
        if (!m) /* idle: hand over partial chunks */
            for (int i = 0; i < p->pp.workers; i++)
                if (npend[i]) {
                    msgq_push(&p->workers[i].q, &pend[i * CHUNK], npend[i]);
                    npend[i] = 0;
                }
        uint64_t now = nops_now_ns();
        if (now - last_ckpt < (uint64_t)p->pp.flush_ms * 1000000 || now < next_retry)
            continue;
        for (int i = 0; i < p->pp.workers; i++) /* hand over before the checkpoint */
            if (npend[i]) {
                msgq_push(&p->workers[i].q, &pend[i * CHUNK], npend[i]);
                npend[i] = 0;
            }
        last_ckpt = now;
        const bool snap_due = now - last_snap >= (uint64_t)p->pp.snapshot_ms * 1000000;
        if (snap_due) {
            drain_workers(p); /* workers idle: their detectors can be read */
            last_snap = now;
        }
        if (checkpoint(p, NULL, false, snap_due ? p->assigned : NULL) == NOPS_OK) {
            set_paused(p, false);
            backoff_ms = 100;
        } else {
            set_paused(p, true);
            next_retry = now + backoff_ms * 1000000;
            backoff_ms = backoff_ms * 2 > 5000 ? 5000 : backoff_ms * 2;
        }
    }
    for (int i = 0; pend && npend && i < p->pp.workers; i++)
        if (npend[i])
            msgq_push(&p->workers[i].q, &pend[i * CHUNK], npend[i]);
    nops_free(pend);
    nops_free(npend);
    return NULL;
}

/* ---- life cycle ------------------------------------------------------------------------- */

static rd_kafka_conf_t *base_conf(const nops_kafka_params *kp, char *errstr, size_t sz)
{
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (rd_kafka_conf_set(c, "bootstrap.servers", kp->brokers, errstr, sz) != RD_KAFKA_CONF_OK)
        goto bad;
    char extra[1024];
    snprintf(extra, sizeof extra, "%s", kp->extra);
    for (char *save = NULL, *kv = strtok_r(extra, ",", &save); kv;
         kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq) {
            snprintf(errstr, sz, "kafka.extra: \"%s\" is not k=v", kv);
            goto bad;
        }
        *eq = '\0';
        if (rd_kafka_conf_set(c, kv, eq + 1, errstr, sz) != RD_KAFKA_CONF_OK)
            goto bad;
    }
    return c;
bad:
    rd_kafka_conf_destroy(c);
    return NULL;
}

nops_pipeline *nops_pipeline_new(const nops_kafka_params *kp, const nops_pipeline_params *pp,
                                 const nops_detect_params *dp, const nops_correlate_params *cp,
                                 const nops_storage_params *sp, nops_sinks *sinks, char *errstr,
                                 size_t errstr_size)
{
    nops_pipeline *p = nops_calloc(1, sizeof *p);
    if (!p) {
        nops_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    p->kp = *kp;
    p->pp = *pp;
    p->dp = *dp;
    p->sinks = sinks;
    snprintf(p->state_dir, sizeof p->state_dir, "%s/state", sp->data_dir);
    if ((mkdir(sp->data_dir, 0755) != 0 && errno != EEXIST) ||
        (mkdir(p->state_dir, 0755) != 0 && errno != EEXIST)) {
        nops_errf(errstr, errstr_size, "cannot create %s: %s", p->state_dir, strerror(errno));
        nops_free(p);
        return NULL;
    }
    pthread_mutex_init(&p->st_mu, NULL);
    char kerr[512] = "";
    rd_kafka_conf_t *cc = base_conf(kp, kerr, sizeof kerr);
    char sess[32];
    snprintf(sess, sizeof sess, "%lld", (long long)kp->session_timeout_ms);
    const char *props[][2] = {
        {"group.id", kp->group},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", "earliest"},
        {"partition.assignment.strategy", "cooperative-sticky"},
        {"session.timeout.ms", sess},
        {"queued.min.messages", "1000000"},
        {"fetch.wait.max.ms", "10"},
        {"max.partition.fetch.bytes", "8388608"},
    };
    for (size_t i = 0; cc && i < sizeof props / sizeof props[0]; i++)
        if (rd_kafka_conf_set(cc, props[i][0], props[i][1], kerr, sizeof kerr) != RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(cc);
            cc = NULL;
        }
    if (cc) {
        rd_kafka_conf_set_rebalance_cb(cc, on_rebalance);
        rd_kafka_conf_set_opaque(cc, p);
        p->rk = rd_kafka_new(RD_KAFKA_CONSUMER, cc, kerr, sizeof kerr);
        if (!p->rk)
            rd_kafka_conf_destroy(cc);
    }
    rd_kafka_conf_t *pc = p->rk ? base_conf(kp, kerr, sizeof kerr) : NULL;
    if (pc && (rd_kafka_conf_set(pc, "linger.ms", "20", kerr, sizeof kerr) ||
               rd_kafka_conf_set(pc, "enable.idempotence", "false", kerr, sizeof kerr))) {
        rd_kafka_conf_destroy(pc);
        pc = NULL;
    }
    if (pc && !(p->dlq = rd_kafka_new(RD_KAFKA_PRODUCER, pc, kerr, sizeof kerr)))
        rd_kafka_conf_destroy(pc);
    if (!p->rk || !p->dlq) {
        nops_errf(errstr, errstr_size, "kafka: %s", kerr);
        nops_pipeline_destroy(p);
        return NULL;
    }
    rd_kafka_poll_set_consumer(p->rk);
    p->corr = nops_correlate_new(cp, (uint32_t)dp->window, errstr, errstr_size);
    p->workers = nops_calloc((size_t)pp->workers, sizeof *p->workers);
    if (!p->corr || !p->workers) {
        nops_errf(errstr, errstr_size, "out of memory");
        nops_pipeline_destroy(p);
        return NULL;
    }
    for (int i = 0; i < pp->workers; i++) {
        worker *w = &p->workers[i];
        w->p = p;
        w->id = i;
        w->det = nops_detect_new(dp, 1024, errstr, errstr_size);
        if (!w->det || !msgq_init(&w->q, (uint32_t)pp->queue_depth)) {
            nops_pipeline_destroy(p);
            return NULL;
        }
    }
    return p;
}

nops_err nops_pipeline_start(nops_pipeline *p, char *errstr, size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, p->kp.topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(p->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err) {
        nops_errf(errstr, errstr_size, "cannot subscribe to %s: %s", p->kp.topic,
                  rd_kafka_err2str(err));
        return NOPS_IO;
    }
    for (int i = 0; i < p->pp.workers; i++)
        if (pthread_create(&p->workers[i].thr, NULL, worker_main, &p->workers[i]) != 0) {
            nops_errf(errstr, errstr_size, "cannot start worker threads");
            return NOPS_INTERNAL;
        }
    if (pthread_create(&p->poller, NULL, poller_main, p) != 0) {
        nops_errf(errstr, errstr_size, "cannot start the poller thread");
        return NOPS_INTERNAL;
    }
    p->started = true;
    NOPS_INFO("ingest", "consuming %s as group %s with %lld worker(s)", p->kp.topic, p->kp.group,
              (long long)p->pp.workers);
    return NOPS_OK;
}

nops_err nops_pipeline_stop(nops_pipeline *p, int timeout_ms)
{
    if (!p->started)
        return NOPS_OK;
    atomic_store(&p->stopping, true);
    pthread_join(p->poller, NULL);
    drain_workers(p);
    nops_err e = NOPS_IO;
    uint64_t deadline = nops_now_ns() + (uint64_t)timeout_ms * 1000000;
    while (e != NOPS_OK && nops_now_ns() < deadline) {
        e = checkpoint(p, NULL, true, p->assigned);
        if (e != NOPS_OK)
            nanosleep(&(struct timespec){0, 200000000}, NULL);
    }
    rd_kafka_consumer_close(p->rk); /* leaves the group; revoke callback commits again */
    for (int i = 0; i < p->pp.workers; i++) {
        pthread_mutex_lock(&p->workers[i].q.mu);
        p->workers[i].q.closed = true;
        pthread_cond_broadcast(&p->workers[i].q.not_empty);
        pthread_mutex_unlock(&p->workers[i].q.mu);
        pthread_join(p->workers[i].thr, NULL);
    }
    p->started = false;
    NOPS_INFO("ingest", "stopped%s", e == NOPS_OK ? "; everything flushed and committed"
                                                  : "; the last flush failed (replay on restart)");
    return e;
}

void nops_pipeline_destroy(nops_pipeline *p)
{
    if (!p)
        return;
    if (p->started)
        nops_pipeline_stop(p, 10000);
    for (int i = 0; p->workers && i < p->pp.workers; i++) {
        worker *w = &p->workers[i];
        msgq_fini(&w->q);
        nops_detect_destroy(w->det);
        nops_free(w->slots);
        nops_free(w->values);
        nops_free(w->ts);
        nops_free(w->z);
        nops_free(w->ze);
        nops_free(w->flags);
        nops_free(w->slot_part);
    }
    nops_free(p->workers);
    nops_correlate_destroy(p->corr);
    if (p->rk)
        rd_kafka_destroy(p->rk);
    if (p->dlq) {
        rd_kafka_flush(p->dlq, 2000);
        rd_kafka_destroy(p->dlq);
    }
    pthread_mutex_destroy(&p->st_mu);
    nops_free(p);
}

void nops_pipeline_get_stats(nops_pipeline *p, nops_pipeline_stats *st)
{
#define LD(f) st->f = __atomic_load_n(&p->st.f, __ATOMIC_RELAXED)
    LD(messages);
    LD(points);
    LD(dlq);
    LD(signals);
    LD(incidents_opened);
    LD(incidents_resolved);
    LD(commits);
    LD(commit_failures);
    LD(flush_failures);
    LD(snapshots);
    LD(restored_series);
    for (int i = 0; i < 6; i++)
        LD(rejected[i]);
    for (int i = 0; i < 32; i++)
        LD(latency_us_log2[i]);
#undef LD
    nops_correlate_counts(p->corr, &st->incidents_open, NULL, NULL);
    st->series = 0; /* read racily from the workers' registries: a gauge, good enough */
    for (int i = 0; i < p->pp.workers; i++)
        st->series += nops_detect_series_count(p->workers[i].det);
    st->partitions = atomic_load(&p->n_assigned);
    st->paused = atomic_load(&p->paused);
    st->lag = 0;
    for (int i = 0; i < MAX_PARTITIONS; i++) {
        if (!p->assigned[i])
            continue;
        int64_t lo = 0, hi = 0;
        if (rd_kafka_get_watermark_offsets(p->rk, p->kp.topic, i, &lo, &hi) != 0 || hi < 0)
            continue;
        int64_t pos = atomic_load(&p->processed[i]);
        st->lag += hi - (pos >= 0 ? pos : lo);
    }
}

double nops_pipeline_latency_quantile(const nops_pipeline_stats *st, double q)
{
    uint64_t total = 0;
    for (int i = 0; i < 32; i++)
        total += st->latency_us_log2[i];
    if (!total)
        return 0.0;
    uint64_t want = (uint64_t)(q * (double)total + 0.5), acc = 0;
    for (int i = 0; i < 32; i++) {
        acc += st->latency_us_log2[i];
        if (acc >= want && acc)
            return (double)(1ull << i);
    }
    return (double)(1ull << 31);
}
