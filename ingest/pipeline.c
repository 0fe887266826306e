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
 *
 * Guards. Whoever can write to the metrics topic must not be able to break what others rely on.
 * Parsers refuse text that is not UTF-8; a worker refuses points stamped far from the wall clock
 * (pipeline.max_future_s / max_past_s) and new series past its series limit (max_series, and its
 * share of series_memory_mb, charged with the real key sizes). Every refusal is counted by
 * reason, logged at most once per 10 s, and its message copied to the dead-letter topic. "Now"
 * for incident resolution comes from point times but not from the newest few (advance_now).
 */
#include "ingest/pipeline_int.h"

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


/* ---- config tables ---------------------------------------------------------------------- */

#define P(f) offsetof(nops_pipeline_params, f)
static const nops_cfg_entry pipeline_entries[] = {
    {"workers", NOPS_CFG_INT, P(workers), 1, MAX_WORKERS, "2", NULL, "workers", 0,
     "Detector threads; partition p is handled by worker p % workers."},
    {"queue_depth", NOPS_CFG_INT, P(queue_depth), 16, 1 << 20, "65536", NULL, NULL, 0,
     "Messages queued per worker before the poller waits (backpressure)."},
    {"queue_mb", NOPS_CFG_INT, P(queue_mb), 0, 1 << 16, "512", NULL, NULL, 0,
     "Message bytes (MiB) queued per worker before the poller waits, whichever of this and "
     "queue_depth comes first: what a backlog may hold in memory beside librdkafka's own "
     "prefetch (kafka.librdkafka queued.max.messages.kbytes). A larger message still passes "
     "when the queue is empty. 0: queue_depth alone. Lower it with care: librdkafka 2.0 stops "
     "fetching a partition for a second once its own prefetch is full, so a bound the workers "
     "drain in well under a second slows the catch-up of a backlog."},
    {"batch", NOPS_CFG_INT, P(batch), 1, 1 << 16, "2048", NULL, NULL, 0,
     "Messages a worker takes per turn."},
    {"flush_ms", NOPS_CFG_INT, P(flush_ms), 10, 60000, "500", NULL, NULL, 0,
     "Sinks are flushed (made durable) at least this often."},
    {"max_series", NOPS_CFG_INT, P(max_series), 0, 1 << 30, "0", NULL, NULL, 0,
     "Series per worker (0: as many as series_memory_mb allows); points of a new series past "
     "the limit go to the dead-letter topic (reason series_limit)."},
    {"snapshot_ms", NOPS_CFG_INT, P(snapshot_ms), 100, 3600000, "5000", NULL, NULL, 0,
     "Detector state is snapshot to storage.data_dir/state/ and the matching offsets "
     "committed this often (and on revoke and stop); a crash replays at most this much."},
    {"max_future_s", NOPS_CFG_INT, P(max_future_s), 0, 3155760000ll, "86400", NULL, NULL, 0,
     "Points stamped more than this many seconds ahead of the wall clock go to the "
     "dead-letter topic (reason timestamp); 0 accepts any time."},
    {"max_past_s", NOPS_CFG_INT, P(max_past_s), 0, 3155760000ll, "0", NULL, NULL, 0,
     "Points stamped more than this many seconds behind the wall clock go to the dead-letter "
     "topic (reason timestamp); 0 (the default) accepts any past time, so history can be "
     "replayed."},
    {"series_memory_mb", NOPS_CFG_INT, P(series_memory_mb), 0, 1 << 24, "512", NULL, NULL, 0,
     "Memory budget (MiB) for the detector state of all workers together; each worker holds "
     "at most its share, and a new series that would pass it goes to the dead-letter topic "
     "(reason series_limit). 0: no budget (max_series alone limits)."},
};
#undef P
const nops_cfg_section nops_pipeline_cfg_section = {
    "pipeline", "Threads, batching and delivery of the streaming engine.", pipeline_entries,
    sizeof pipeline_entries / sizeof pipeline_entries[0], NULL,
};

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
    GROW(ratio);
    GROW(flags);
#undef GROW
    w->cap = cap;
    return true;
}

/* Remember which partition a slot's series arrives on (for per-partition snapshots). */
bool nops__set_slot_part(worker *w, uint32_t slot, int32_t part)
{
    if (slot >= w->slot_part_cap) {
        uint32_t ncap = w->slot_part_cap ? w->slot_part_cap * 2 : 4096;
        while (ncap <= slot)
            ncap *= 2;
        uint16_t *np = nops_realloc(w->slot_part, ncap * sizeof *np);
        if (!np)
            return false;
        w->slot_part = np;
        nops__slot_time *nt = nops_realloc(w->slot_time, ncap * sizeof *nt);
        if (!nt)
            return false; /* slot_part grown, slot_part_cap not: grown again next time */
        memset(nt + w->slot_part_cap, 0, (ncap - w->slot_part_cap) * sizeof *nt);
        w->slot_time = nt;
        w->slot_part_cap = ncap;
    }
    w->slot_part[slot] = (uint16_t)part;
    return true;
}

/* A parsed point the pipeline refuses: counted by reason; its message goes to the DLQ. */
static void point_reject(worker *w, nops_reject r, const char *detail)
{
    if (w->pt_total++ == 0) {
        w->pt_reason = r;
        w->pt_detail = detail;
    }
    w->pt_rejected[r]++;
}

/* The series limit of one worker, in series: see ingest.h. */
#define NOPS__INITIAL_SLOTS 1024 /* slots nops_pipeline_new gives each worker's detector */
#define NOPS__KEY_GUESS 112      /* bytes of a typical series key, for the derived limit */
/* bytes a worker keeps per detector slot beside the detector: slot_part and slot_time */
#define NOPS__WORKER_PER_SLOT (sizeof(uint16_t) + sizeof(nops__slot_time))

/* One worker's share of pipeline.series_memory_mb in bytes (0: no budget). */
static size_t series_budget_share(const nops_pipeline_params *pp)
{
    if (pp->series_memory_mb <= 0)
        return 0;
    return ((size_t)pp->series_memory_mb << 20) / (size_t)(pp->workers > 0 ? pp->workers : 1);
}

uint32_t nops_pipeline_series_limit(const nops_pipeline_params *pp, const nops_detect_params *dp)
{
    uint64_t lim = pp->max_series > 0 ? (uint64_t)pp->max_series : (1u << 30);
    const size_t budget = series_budget_share(pp);
    if (budget > 0) {
        uint32_t fit = nops_detect_series_fit(dp, budget, NOPS__INITIAL_SLOTS, NOPS__KEY_GUESS,
                                              NOPS__WORKER_PER_SLOT);
        lim = fit < lim ? fit : lim;
    }
    return (uint32_t)lim;
}

/* Why a new series may not be registered (static text), or NULL when it may. */
static const char *admit_series(void *ud, size_t key_len)
{
    worker *w = ud;
    if (nops_detect_series_count(w->det) >= w->series_cap)
        return "new series refused: the worker holds as many series as pipeline.max_series or "
               "pipeline.series_memory_mb allow";
    if (w->series_budget) { /* the keys as they really are: long keys cost more than guessed */
        nops_detect_mem m;
        nops_detect_memory_after_add(w->det, key_len, &m);
        size_t total = m.state_bytes + m.registry_bytes + m.key_bytes +
                       (size_t)m.capacity * NOPS__WORKER_PER_SLOT;
        if (total > w->series_budget)
            return "new series refused: it would take the worker's detector state past its "
                   "share of pipeline.series_memory_mb";
    }
    return NULL;
}

static void log_series_limit(worker *w, const char *why)
{
    uint64_t missed;
    if (nops_ratelimit_due(&w->limit_log, w->recv_ns, &missed))
        NOPS_WARN("ingest", "worker %d: %s (%u series held, limit %u; %llu point(s) of new "
                  "series refused so far, to the dead-letter topic as series_limit)",
                  w->id, why, nops_detect_series_count(w->det), w->series_cap,
                  (unsigned long long)w->rejected_series);
}

/* A point refused after parsing (its series is too large or refused, see on_point). */
static void series_refused(worker *w, nops_reject r, const char *detail)
{
    point_reject(w, r, detail);
    if (r == NOPS_REJECT_SERIES_LIMIT) {
        w->rejected_series++;
        log_series_limit(w, detail);
    }
}

/* Queue a resolved point at batch index n (≤ the index it was parsed to); false when out of
 * memory (the parse stops there, as on_point's false does). */
static bool take_point(worker *w, uint32_t slot, float value, int64_t ts)
{
    if (!nops__set_slot_part(w, slot, w->cur_part))
        return false;
    w->slots[w->n] = slot;
    w->values[w->n] = value;
    w->ts[w->n] = ts;
    w->n++;
    w->msg_newest = ts > w->msg_newest ? ts : w->msg_newest;
    return true;
}

static float point_value(const nops_point *pt)
{
    return pt->value > 3.4e38 ? INFINITY : pt->value < -3.4e38 ? -INFINITY : (float)pt->value;
}

/* One parsed point without a raw series span (JSON) or cache: its series slot at once. */
static bool on_point(worker *w, const nops_point *pt)
{
    const nops_pipeline *p = w->p;
    if (w->n == w->cap && !grow_scratch(w))
        return false;
    const char *detail = NULL;
    if (nops_ingest_check_time(pt->ts_ns, w->recv_ns, p->pp.max_past_s, p->pp.max_future_s,
                               &detail) != NOPS_REJECT_NONE) {
        point_reject(w, NOPS_REJECT_TIMESTAMP, detail);
        return true;
    }
    uint32_t slot;
    const uint32_t now_s = (uint32_t)(w->recv_ns / 1000000000);
    nops_reject r = nops_ingest_series_resolve(w->sc, w->det, pt, now_s, admit_series, w, &slot,
                                               &detail);
    if (r != NOPS_REJECT_NONE) {
        series_refused(w, r, detail);
        return true;
    }
    return take_point(w, slot, point_value(pt), pt->ts_ns);
}

/*
 * Points of line protocol are resolved in two passes per message. A series' cache cell is a
 * random line of a table that outgrows L2 at ~50k series, so resolving each point as it is
 * parsed waits for one cache miss per point, one after the other. Instead the parse callback
 * (on_point_hashed) only hashes the point's raw series — which starts loading its cell — and
 * keeps its value and time; after the parse, resolve_pending finds each in order, the cells
 * by then in cache. Everything that judges a point (the time bounds, the series refusals,
 * admission, the counts and the first reason of the dead-letter headers) happens in the second
 * pass in the points' order, as on_point does it. A miss (a series new in this raw form) needs
 * the point itself, which lived only during its callback: its line is parsed again and the
 * same point (by rank among that line's points) resolved the slow way.
 */

typedef struct reparse_ctx {
    worker *w;
    const nops_ingest_series_ref *ref;
    uint32_t rank, seen; /* the point wanted, points delivered so far */
    uint32_t slot;
    nops_reject r;
    const char *detail;
} reparse_ctx;

static bool reparse_point(void *ud, const nops_point *pt)
{
    reparse_ctx *x = ud;
    if (x->seen++ != x->rank)
        return true;
    worker *w = x->w;
    x->r = nops_ingest_series_add(w->sc, w->det, pt, x->ref, (uint32_t)(w->recv_ns / 1000000000),
                                  admit_series, w, &x->slot, &x->detail);
    return false;
}

/* The slow path of waiting point j: parse its line again and resolve that point. */
static nops_reject resolve_again(worker *w, size_t j, uint32_t *slot, const char **detail)
{
    const char *line = w->pend_line[j];
    const char *nl = memchr(line, '\n', (size_t)(w->msg_end - line));
    reparse_ctx x = {w, &w->pend_ref[j], w->pend_rank[j], 0, 0, NOPS_REJECT_SYNTAX,
                     "line parsed differently the second time (internal error)"};
    nops_parse_stats st;
    nops_ingest_parse_lineproto_prec(line, (size_t)((nl ? nl : w->msg_end) - line), w->recv_ns,
                                     (nops_ts_precision)w->p->kp.timestamp_precision,
                                     reparse_point, &x, &st);
    *slot = x.slot;
    *detail = x.detail;
    return x.r;
}

/* The second pass over the waiting points (see above); false when out of memory. */
static bool resolve_pending(worker *w)
{
    const nops_pipeline *p = w->p;
    const uint32_t now_s = (uint32_t)(w->recv_ns / 1000000000);
    const size_t base = w->n, m = w->pend_n;
    bool ok = true;
    w->pend_n = 0;
    size_t j = 0;
    for (; j < m && ok; j++) {
        const float v = w->values[base + j];
        const int64_t ts = w->ts[base + j];
        const char *detail = NULL;
        if (nops_ingest_check_time(ts, w->recv_ns, p->pp.max_past_s, p->pp.max_future_s,
                                   &detail) != NOPS_REJECT_NONE) {
            point_reject(w, NOPS_REJECT_TIMESTAMP, detail);
            continue;
        }
        uint32_t slot;
        if (!nops_ingest_series_find(w->sc, w->det, &w->pend_ref[j], now_s, &slot)) {
            nops_reject r = resolve_again(w, j, &slot, &detail);
            if (r != NOPS_REJECT_NONE) {
                series_refused(w, r, detail);
                continue;
            }
        }
        ok = take_point(w, slot, v, ts); /* at w->n ≤ base + j: read before written */
    }
    if (!ok) /* out of memory: point j - 1 and those after it are refused, counted, DLQ'd */
        for (j--; j < m; j++)
            point_reject(w, NOPS_REJECT_MEMORY, "out of memory taking the point");
    return ok;
}

static bool grow_pending(worker *w)
{
    size_t cap = w->pend_cap ? w->pend_cap * 2 : 256;
#define GROW(f) do { void *n_ = nops_realloc(w->f, cap * sizeof *w->f); if (!n_) return false; w->f = n_; } while (0)
    GROW(pend_ref);
    GROW(pend_line);
    GROW(pend_rank);
#undef GROW
    w->pend_cap = cap;
    return true;
}

/* The parse callback: a point with a raw span waits, hashed; any other goes through on_point
 * after the points waiting before it (so the order of work stays the points' order). */
static bool on_point_hashed(void *ud, const nops_point *pt)
{
    worker *w = ud;
    if (!w->sc || !pt->series_len) {
        if (resolve_pending(w) && on_point(w, pt))
            return true;
        w->parse_oom = true; /* out of memory: the parse stops (take_message counts it) */
        return false;
    }
    if ((w->pend_n == w->pend_cap && !grow_pending(w)) ||
        (w->n + w->pend_n == w->cap && !grow_scratch(w))) {
        w->parse_oom = true;
        return false;
    }
    const size_t j = w->pend_n++, i = w->n + j;
    w->values[i] = point_value(pt);
    w->ts[i] = pt->ts_ns;
    nops_ingest_series_hash(w->sc, pt, &w->pend_ref[j]);
    w->pend_rank[j] = j && w->pend_line[j - 1] == pt->series ? w->pend_rank[j - 1] + 1 : 0;
    w->pend_line[j] = pt->series;
    return true;
}

/* A full dead-letter queue is waited for this many times 100 ms (the copies in it are being
 * delivered; the worker waits meanwhile) before the copy is declared lost. */
#define DLQ_FULL_RETRIES 300

/* Copy a message to the dead-letter topic with why (reason, detail, count) in its headers. */
static void send_dlq(worker *w, const rd_kafka_message_t *m)
{
    nops_pipeline *p = w->p;
    char part[16], off[24], count[16];
    snprintf(part, sizeof part, "%d", (int)m->partition);
    snprintf(off, sizeof off, "%lld", (long long)m->offset);
    snprintf(count, sizeof count, "%u", w->ps.rejected + w->pt_total);
    /* the parser's verdict first: it saw the message before the pipeline judged its points */
    const nops_reject r = w->ps.rejected ? w->ps.reason : w->pt_reason;
    const char *reason = nops_ingest_reject_name(r);
    const char *detail = (w->ps.rejected ? w->ps.detail : w->pt_detail);
    detail = detail ? detail : "";
    rd_kafka_resp_err_t err;
    for (int tries = 0;; tries++) {
        err = rd_kafka_producev(
            p->dlq, RD_KAFKA_V_TOPIC(p->kp.dlq_topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_VALUE(m->payload, m->len), RD_KAFKA_V_KEY(m->key, m->key_len),
            RD_KAFKA_V_HEADER("reason", reason, -1), RD_KAFKA_V_HEADER("detail", detail, -1),
            RD_KAFKA_V_HEADER("rejected", count, -1),
            RD_KAFKA_V_HEADER("source_partition", part, -1),
            RD_KAFKA_V_HEADER("source_offset", off, -1), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || tries == DLQ_FULL_RETRIES)
            break;
        rd_kafka_poll(p->dlq, 100); /* serves failed deliveries; delivered copies leave alone */
    }
    if (err) {
        nops__dlq_lost(p, rd_kafka_err2str(err));
        return;
    }
    STAT_ADD(p, dlq, 1);
    uint64_t missed;
    if (nops_ratelimit_due(&w->dlq_log, w->recv_ns, &missed))
        NOPS_WARN("ingest", "partition %d offset %lld: %s rejected point(s) or line(s), reason "
                  "%s (%s): message copied to %s (%llu more such message(s) not logged in the "
                  "last 10 s)", (int)m->partition, (long long)m->offset, count, reason, detail,
                  p->kp.dlq_topic, (unsigned long long)missed);
}

/* Offer the NOPS__TS_KTH-newest of the recent messages' times as "now" (see pipeline_int.h). */
static void advance_now(worker *w)
{
    if (w->msg_ts_n < NOPS__TS_KTH)
        return;
    int64_t top[NOPS__TS_KTH]; /* the K newest, descending */
    uint32_t k = 0;
    for (uint32_t i = 0; i < w->msg_ts_n; i++) {
        int64_t t = w->msg_ts[i];
        if (k == NOPS__TS_KTH && t <= top[k - 1])
            continue;
        uint32_t j = k < NOPS__TS_KTH ? k++ : k - 1;
        while (j > 0 && top[j - 1] < t) {
            top[j] = top[j - 1];
            j--;
        }
        top[j] = t;
    }
    const int64_t cand = top[NOPS__TS_KTH - 1];
    nops_pipeline *p = w->p;
    int64_t cur = atomic_load(&p->latest_ts);
    while (cand > cur && !atomic_compare_exchange_weak(&p->latest_ts, &cur, cand)) {
    }
}

/* Parse one message into the batch; count what was refused and copy the message to the DLQ
 * if anything was. */
static void take_message(worker *w, rd_kafka_message_t *m)
{
    nops_pipeline *p = w->p;
    const size_t before = w->n;
    w->cur_part = m->partition >= 0 && m->partition < MAX_PARTITIONS ? m->partition : 0;
    memset(w->pt_rejected, 0, sizeof w->pt_rejected);
    w->pt_total = 0;
    w->pt_reason = NOPS_REJECT_NONE;
    w->pt_detail = NULL;
    w->msg_newest = INT64_MIN;
    const char *msg = m->payload ? m->payload : "";
    w->msg_end = msg + m->len;
    /* out of memory in the parse callback stops the parse, in resolve_pending leaves the
     * points waiting: either way what was not taken is counted and the message copied to the
     * dead-letter topic (reason memory), never dropped unseen */
    w->parse_oom = false;
    nops_ingest_parse_prec(msg, m->len, w->recv_ns, (nops_ts_precision)p->kp.timestamp_precision,
                           on_point_hashed, w, &w->ps);
    if (w->ps.stale)
        STAT_ADD(p, stale, w->ps.stale);
    resolve_pending(w); /* counts the points it could not take */
    if (w->parse_oom) /* the points of the lines not parsed: one refusal for them all */
        point_reject(w, NOPS_REJECT_MEMORY, "out of memory: the rest of the message not taken");
    if (w->ps.rejected)
        STAT_ADD(p, rejected[w->ps.reason < NOPS_REJECT_COUNT ? w->ps.reason : 0],
                 w->ps.rejected);
    for (int r = 0; r < NOPS_REJECT_COUNT; r++)
        if (w->pt_rejected[r])
            STAT_ADD(p, rejected[r], w->pt_rejected[r]);
    if (w->ps.rejected || w->pt_total)
        send_dlq(w, m);
    if (w->n > before) { /* remember the message's newest point time */
        atomic_int_fast64_t *pt = &p->part_ts[w->cur_part]; /* one writer per partition */
        if (w->msg_newest > atomic_load_explicit(pt, memory_order_relaxed))
            atomic_store_explicit(pt, w->msg_newest, memory_order_relaxed);
        atomic_store_explicit(&p->part_wall[w->cur_part], w->recv_ns, memory_order_relaxed);
        w->msg_ts[w->msg_ts_pos] = w->msg_newest;
        w->msg_ts_pos = (w->msg_ts_pos + 1) % NOPS__TS_RING;
        w->msg_ts_n += w->msg_ts_n < NOPS__TS_RING;
    }
}

/* slot_mark as long as slot_part (every slot in the batch has an entry there); false when out
 * of memory. */
static bool grow_marks(worker *w)
{
    if (w->mark_cap >= w->slot_part_cap)
        return true;
    uint32_t *m = nops_realloc(w->slot_mark, w->slot_part_cap * sizeof *m);
    if (!m)
        return false;
    memset(m + w->mark_cap, 0, (w->slot_part_cap - w->mark_cap) * sizeof *m);
    w->slot_mark = m;
    w->mark_cap = w->slot_part_cap;
    return true;
}

/* Points [from, to) of a run (no slot twice) through the detector: stretches of ≥ RANGE_MIN
 * consecutive slots by the range kernel (in place, contiguous memory), the rest by the gather
 * kernel; the same bits either way (test_kernels: test_range_and_pairs_same_bits), in any order
 * within a run. Messages list their series in one order, and first sight gives slots in it:
 * in the 100-line end-to-end bench the gather kernel took ~2× the range kernel's CPU. */
#define RANGE_MIN 16
static void detect_update(worker *w, size_t from, size_t to)
{
    size_t pend = from; /* start of the points not yet handed to a kernel */
    for (size_t i = from, j; i < to; i = j) {
        for (j = i + 1; j < to && w->slots[j] == w->slots[j - 1] + 1; j++)
            ;
        if (j - i < RANGE_MIN)
            continue;
        if (pend < i) {
            nops_detect_out o = {w->z + pend, w->ze + pend, w->flags + pend, w->ratio + pend};
            nops_detect_update_pairs(w->det, w->slots + pend, w->values + pend, i - pend, &o);
        }
        nops_detect_out o = {w->z + i, w->ze + i, w->flags + i, w->ratio + i};
        nops_detect_update_range(w->det, w->slots[i], (uint32_t)(j - i), w->values + i, &o);
        pend = j;
    }
    if (pend < to) {
        nops_detect_out o = {w->z + pend, w->ze + pend, w->flags + pend, w->ratio + pend};
        nops_detect_update_pairs(w->det, w->slots + pend, w->values + pend, to - pend, &o);
    }
}

/*
 * Detect and emit the batch in runs in which no series appears twice, each run whole before
 * the next. A signal's window (what the correlator groups by) is then the window as of its
 * point, whatever the batching: with the whole batch applied first, the window of a series with
 * later points in the batch had to be cut to leave them out, which also lost its oldest points,
 * and a cut-short window ending in a spike correlates with any other spike — which signals
 * joined one incident depended on how many messages a batch happened to hold. Runs are as long
 * as the batch when every series has one point in it (the common case with many series).
 */
static void detect_runs(worker *w)
{
    const bool marks = grow_marks(w); /* without: a point per run, slower but the same */
    for (size_t from = 0, to; from < w->n; from = to) {
        if (marks && ++w->mark_gen == 0) { /* wrapped: forget every old mark */
            memset(w->slot_mark, 0, w->mark_cap * sizeof *w->slot_mark);
            w->mark_gen = 1;
        }
        to = from + 1;
        if (marks) {
            w->slot_mark[w->slots[from]] = w->mark_gen;
            while (to < w->n && w->slot_mark[w->slots[to]] != w->mark_gen)
                w->slot_mark[w->slots[to++]] = w->mark_gen;
        }
        detect_update(w, from, to);
        nops__emit_signals(w, from, to);
    }
}

/* Parse, detect and emit messages [0, n), part of a turn (worker_batch). */
static void worker_part(worker *w, rd_kafka_message_t **msgs, uint32_t n)
{
    nops_pipeline *p = w->p;
    w->n = 0;
    w->recv_ns = nops_wall_ns();
    for (uint32_t i = 0; i < n; i++)
        take_message(w, msgs[i]);
    detect_runs(w);
    /* signals are in the sinks: publish how far each partition is done (release) */
    for (uint32_t i = 0; i < n; i++) {
        rd_kafka_message_t *m = msgs[i];
        if (m->partition >= 0 && m->partition < MAX_PARTITIONS)
            atomic_store_explicit(&p->processed[m->partition], m->offset + 1,
                                  memory_order_release);
        rd_kafka_message_destroy(m);
    }
    advance_now(w);
    STAT_ADD(p, messages, n);
    STAT_ADD(p, points, w->n);
    STAT_ADD(p, anomalies, w->anomalies);
    w->anomalies = 0;
}

static void worker_batch(worker *w, rd_kafka_message_t **msgs, uint32_t n)
{
    nops_pipeline *p = w->p;
    for (uint32_t i = 0, j; i < n; i = j) { /* parts of about NOPS__TURN_BYTES */
        size_t bytes = 0;
        for (j = i; j < n && (j == i || bytes < NOPS__TURN_BYTES); j++)
            bytes += msgs[j]->len;
        worker_part(w, msgs + i, j - i);
    }
    uint32_t now_s = (uint32_t)(w->recv_ns / 1000000000);
    if (now_s - w->last_evict_s >= 10) {
        /* a series evicted while anomalous will never clear by itself: tell its incident, or
         * the incident would stay open (and hold a slot) for ever */
        uint64_t gone[64];
        uint32_t n_gone;
        const int64_t now_ts = atomic_load(&p->latest_ts);
        do {
            nops_detect_evict_idle_report(w->det, now_s, gone, 64, &n_gone);
            for (uint32_t k = 0; k < n_gone; k++) {
                nops_correlate_cleared(p->corr, gone[k], now_ts);
                if (p->svc)
                    nops__svc_evicted(p->svc, gone[k], now_ts);
            }
        } while (n_gone == 64);
        nops__slot_times_evicted(w); /* a freed slot's times are not its next series' */
        w->last_evict_s = now_s;
    }
}

/* The worker's series limit and memory share, logged once by worker 0. */
static void series_limits(worker *w)
{
    const nops_pipeline_params *pp = &w->p->pp;
    w->series_cap = nops_pipeline_series_limit(pp, &w->p->dp);
    w->series_budget = series_budget_share(pp);
    if (w->id != 0)
        return;
    if (w->series_cap == 0)
        NOPS_ERROR("ingest", "pipeline.series_memory_mb=%lld cannot hold the state of one "
                   "series per worker with detect.window=%lld and %lld worker(s): every point "
                   "goes to the dead-letter topic; raise it", (long long)pp->series_memory_mb,
                   (long long)w->p->dp.window, (long long)pp->workers);
    else
        NOPS_INFO("ingest", "series limit: %u per worker (pipeline.max_series=%lld, "
                  "series_memory_mb=%lld shared by %lld worker(s))", w->series_cap,
                  (long long)pp->max_series, (long long)pp->series_memory_mb,
                  (long long)pp->workers);
}

/* New thresholds (nops_pipeline_set_thresholds) into this worker's detector, between batches:
 * one atomic load per turn when nothing changed. */
static void take_thresholds(worker *w)
{
    nops_pipeline *p = w->p;
    unsigned gen = atomic_load_explicit(&p->thr_gen, memory_order_acquire);
    if (gen == w->thr_gen)
        return;
    pthread_mutex_lock(&p->thr_mu);
    nops_detect_params dp = p->thr_dp;
    gen = atomic_load(&p->thr_gen);
    pthread_mutex_unlock(&p->thr_mu);
    char err[256];
    if (nops_detect_set_thresholds(w->det, &dp, err, sizeof err) != NOPS_OK) /* checked before */
        NOPS_ERROR("ingest", "worker %d keeps its thresholds: %s", w->id, err);
    w->thr_gen = gen;
}

nops_err nops_pipeline_set_thresholds(nops_pipeline *p, const nops_detect_params *dp,
                                      char *errstr, size_t errstr_size)
{
    nops_detect_params q = p->dp; /* what the workers' detectors were made with */
    q.false_alarm_points = dp->false_alarm_points;
    q.z_threshold = dp->z_threshold;
    q.ewma_threshold = dp->ewma_threshold;
    q.cusum_threshold = dp->cusum_threshold;
    q.hysteresis = dp->hysteresis;
    q.clear_points = dp->clear_points;
    if (nops_detect_params_check(&q, errstr, errstr_size) != NOPS_OK)
        return NOPS_CONFIG;
    pthread_mutex_lock(&p->thr_mu);
    p->thr_dp = q;
    atomic_fetch_add_explicit(&p->thr_gen, 1, memory_order_release);
    pthread_mutex_unlock(&p->thr_mu);
    return NOPS_OK;
}

void *nops__worker_main(void *arg)
{
    worker *w = arg;
    rd_kafka_message_t **msgs = nops_calloc((size_t)w->p->pp.batch, sizeof *msgs);
    if (!msgs) {
        NOPS_ERROR("ingest", "worker %d: out of memory", w->id);
        return NULL;
    }
    series_limits(w);
    w->sc = nops_ingest_series_cache_new(); /* NULL (out of memory): keys built every time */
    for (;;) {
        nops__answer_query(w);
        uint32_t n = nops__msgq_pop(&w->q, msgs, (uint32_t)w->p->pp.batch);
        if (n) {
            take_thresholds(w); /* set while it waited: this batch is judged by them */
            worker_batch(w, msgs, n);
            nops__msgq_done(&w->q, n);
            struct timespec cpu; /* one system call per turn */
            if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu) == 0)
                __atomic_store_n(&w->cpu_ns, (uint64_t)cpu.tv_sec * 1000000000u +
                                                 (uint64_t)cpu.tv_nsec, __ATOMIC_RELAXED);
            continue;
        }
        pthread_mutex_lock(&w->q.mu);
        bool done = w->q.closed && w->q.len == 0;
        pthread_mutex_unlock(&w->q.mu);
        if (done)
            break;
    }
    nops_ingest_series_cache_destroy(w->sc);
    w->sc = NULL;
    nops_free(w->pend_ref);
    nops_free(w->pend_line);
    nops_free(w->pend_rank);
    w->pend_ref = NULL;
    w->pend_line = NULL;
    w->pend_rank = NULL;
    w->pend_cap = 0;
    nops_free(msgs);
    return NULL;
}

