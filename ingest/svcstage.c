/*
 * svcstage.c — the service stage: incidents of a service whatever the number of `serve`
 * instances, with Kafka as the distributed engine.
 *
 * The problem. A pipeline correlates the signals of the partitions it owns. Producers key the
 * metrics topic by host, so a host's signals all meet in one instance and host incidents do not
 * depend on how many instances share the group; a service's hosts are spread over every
 * partition, so with several instances each one saw only its share of a service moving and opened
 * its own "service-wide" incident.
 *
 * The stage. With correlate.service_topic set, a worker does not correlate a signal whose series
 * names a service (correlate.service_labels): it produces it — with the window the detector held
 * at that point, as captured at detection — to the service topic, keyed by the service, so all of
 * a service's signals land in one partition of it. Every instance also runs a consumer of that
 * topic in its own group (`<kafka.group>.service`): each partition, so each service, is consumed
 * by exactly one instance, whose correlator (the same rules as in one process: host first, then
 * service-wide, stragglers held at info) places them and writes the incidents to the sinks.
 * Series without a service stay with the workers' correlator.
 *
 *   worker ── signal + window, cleared ──► <service topic> (key: service) ──► stage (one per
 *   instance, group <group>.service) ── incidents ──► sinks
 *   poller checkpoint ── tick (newest point time) to every partition ──┘
 *
 * Order. Signals of several instances interleave in a partition in whatever order they were
 * produced. The stage places a partition's messages in batches, each in data order (time, then
 * signal id, then offset), and a batch is what lies between two ticks of the partition (every
 * instance sends one to every partition at each of its checkpoints; see Time), or SVC_BATCH
 * messages. So what is placed, and in what order, depends on the partition's log alone, never on
 * when the stage polled it: a replay from a committed offset — the next owner after a rebalance
 * that refused the last commits, or a restart — opens the same incidents (their ids: the opening
 * host and signal) as the first reading did. (Batches gathered over wall time put a service's
 * signals that had been placed apart into one batch on replay, and a different signal opened a
 * second incident for the same event.) A partition whose ticks stop — every instance gone quiet
 * or dead — has what it holds placed after SVC_STALE_NS.
 *
 * Time. The stage resolves an incident by the data time of its partition of the service topic:
 * signals and clears carry theirs, and every checkpoint of every instance sends a tick (its
 * newest robust point time) to every partition, so a service that has gone quiet still sees time
 * pass (and batches close: a checkpoint also sends its ticks when its time did not move but the
 * instance produced a signal or a clear since its last ones; an idle instance sends none). A
 * cleared series is sent to its service's partition; a series evicted while anomalous (its key
 * gone) to every partition.
 *
 * Delivery. The producer is flushed in every checkpoint of the pipeline before it commits the
 * metrics offsets, and a message it lost fails every later checkpoint (as a lost dead-letter copy
 * does), so a metrics offset is never committed past a signal the stage did not get. The stage
 * commits its own offsets — up to the last placed batch; messages held for the next one are read
 * again by whoever owns the partition next — only after the sinks flushed its incidents, and
 * snapshots its correlator per partition at the committed offset (svcsnap.c:
 * state/<group>.service-<topic>-<p>.snap, keyed like the detector snapshots; the previous one and
 * the one at the last commit that landed kept); an instance that takes a partition over — after a
 * rebalance or a kill -9 — restores it and replays from the committed offset: replayed signals
 * are recognised (their ids), later ones update the same incidents.
 *
 * Threads: the stage thread owns the consumer and the stage's correlator calls; workers and the
 * poller call nops__svc_signal/_cleared/_evicted/_flush (the producer is thread-safe).
 */
#include "ingest/svcstage_int.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

/* ---- producing (workers, poller) ---------------------------------------------------------- */

static void svc_lost(svc_stage *s, const char *why)
{
    const uint64_t n = atomic_fetch_add(&s->lost, 1) + 1;
    uint64_t missed;
    const bool due = nops__log_due(s->p, &s->lost_log, nops_wall_ns(), &missed);
    if (due)
        NOPS_ERROR("ingest", "a message to the service topic %s was lost (%s): %llu so far; "
                   "offsets are no longer committed, restart to replay them (%llu more not "
                   "logged in the last 10 s)", s->topic, why, (unsigned long long)n,
                   (unsigned long long)missed);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    if (m->err)
        svc_lost(opaque, rd_kafka_err2str(m->err));
}

/* Produce `json` keyed by `key` (NULL: to partition `part`); waits while the queue is full
 * (backpressure), up to 10 s, then counts it lost. Consumes json. */
static void produce(svc_stage *s, json_t *json, const char *key, int32_t part)
{
    char *text = json ? json_dumps(json, JSON_COMPACT) : NULL;
    json_decref(json);
    if (!text) {
        svc_lost(s, "out of memory");
        return;
    }
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR__QUEUE_FULL;
    for (int tries = 0; tries < 1000 && e == RD_KAFKA_RESP_ERR__QUEUE_FULL; tries++) {
        e = rd_kafka_producev(s->prod, RD_KAFKA_V_TOPIC(s->topic),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_VALUE(text, strlen(text)),
                              RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
                              RD_KAFKA_V_PARTITION(key ? RD_KAFKA_PARTITION_UA : part),
                              RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(s->prod, 10);
    }
    free(text);
    if (e)
        svc_lost(s, rd_kafka_err2str(e));
}

static json_t *hex_id(uint64_t v)
{
    char b[17];
    snprintf(b, sizeof b, "%016llx", (unsigned long long)v);
    return json_string(b);
}

bool nops__svc_signal(svc_stage *s, const nops_signal *sig, const float *win, uint32_t n)
{
    char service[128];
    if (!nops_correlate_service_of(s->p->corr, &sig->labels, service, sizeof service))
        return false;
    bool finite = true; /* JSON has no inf/NaN: a window holding one goes without (the
                           correlator then places the signal by host only, as a cut window) */
    for (uint32_t i = 0; i < n; i++)
        finite = finite && isfinite(win[i]);
    json_t *w = json_array();
    for (uint32_t i = 0; w && finite && i < n; i++)
        json_array_append_new(w, json_real(win[i]));
    json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:I, s:f, s:o}", "t", "s", "id", sig->id,
                          "series", sig->series, "sid", hex_id(sig->series_id), "ts",
                          (json_int_t)sig->ts_ns, "score",
                          isfinite(sig->score) ? sig->score : 0.0, "w", w ? w : json_null());
    produce(s, o, service, 0);
    atomic_store(&s->untold, true); /* after it is queued: a tick then follows it */
    return true;
}

void nops__svc_cleared(svc_stage *s, const char *key, uint64_t series_id, int64_t ts)
{
    static _Thread_local nops_signal tmp; /* large: not on the worker's stack */
    char service[128];
    if (!key || nops_signal_set_series(&tmp, key) != NOPS_OK ||
        !nops_correlate_service_of(s->p->corr, &tmp.labels, service, sizeof service))
        return;
    produce(s, json_pack("{s:s, s:o, s:I}", "t", "c", "sid", hex_id(series_id), "ts",
                         (json_int_t)ts), service, 0);
    atomic_store(&s->untold, true);
}

void nops__svc_evicted(svc_stage *s, uint64_t series_id, int64_t ts)
{
    const int32_t n = (int32_t)atomic_load(&s->n_parts);
    for (int32_t i = 0; i < n; i++) /* its service is not known any more: every partition */
        produce(s, json_pack("{s:s, s:o, s:I}", "t", "c", "sid", hex_id(series_id), "ts",
                             (json_int_t)ts), NULL, i);
    atomic_store(&s->untold, true);
}

/* The topic's partition count, asked at most every 10 s (poller). */
static void refresh_parts(svc_stage *s)
{
    const int64_t now = nops_wall_ns();
    if (atomic_load(&s->n_parts) > 0 && now - s->meta_ns < 10000000000ll)
        return;
    s->meta_ns = now;
    rd_kafka_topic_t *t = rd_kafka_topic_new(s->prod, s->topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    if (t && rd_kafka_metadata(s->prod, 0, t, &md, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        md->topic_cnt == 1 && !md->topics[0].err && md->topics[0].partition_cnt > 0)
        atomic_store(&s->n_parts, md->topics[0].partition_cnt);
    if (md)
        rd_kafka_metadata_destroy(md);
    if (t)
        rd_kafka_topic_destroy(t);
}

nops_err nops__svc_flush(svc_stage *s, int64_t now_ts, char *err, size_t cap)
{
    refresh_parts(s);
    const int32_t n = (int32_t)atomic_load(&s->n_parts);
    /* time passes in every partition, and batches close: a tick when the data time moved, or
     * when this instance produced a signal or a clear since its last ticks (so each of them is
     * followed by one within a checkpoint); none while it is idle */
    if (now_ts > 0 && n > 0 && (now_ts > s->tick_sent || atomic_load(&s->untold))) {
        atomic_store(&s->untold, false); /* before the ticks: what comes after asks again */
        for (int32_t i = 0; i < n; i++)
            produce(s, json_pack("{s:s, s:I}", "t", "t", "ts", (json_int_t)now_ts), NULL, i);
        s->tick_sent = now_ts;
    }
    if (rd_kafka_flush(s->prod, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, cap, "the service topic's producer did not flush in 5 s");
        return NOPS_IO;
    }
    const uint64_t lost = atomic_load(&s->lost);
    if (lost) {
        snprintf(err, cap, "%llu message(s) to the service topic %s were lost: offsets are no "
                 "longer committed; restart to replay them", (unsigned long long)lost, s->topic);
        return NOPS_IO;
    }
    return NOPS_OK;
}

/* ---- the stage thread --------------------------------------------------------------------- */

static int cmp_placed(const void *a, const void *b)
{
    const placed *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    int c = strcmp(x->id, y->id);
    if (c)
        return c;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static uint64_t parse_hex(const char *h)
{
    return h ? strtoull(h, NULL, 16) : 0;
}

/* Place one message of partition `part` (stage thread). */
static void place_one(svc_stage *s, int32_t part, const placed *m)
{
    nops_pipeline *p = s->p;
    const char *t = json_string_value(json_object_get(m->o, "t"));
    if (m->ts > s->part_now[part])
        s->part_now[part] = m->ts;
    if (!t || strcmp(t, "t") == 0)
        return;
    const uint64_t sid = parse_hex(json_string_value(json_object_get(m->o, "sid")));
    if (strcmp(t, "c") == 0) {
        nops_correlate_cleared(s->corr, sid, m->ts);
        return;
    }
    static _Thread_local nops_signal sig;
    memset(&sig, 0, sizeof sig);
    const char *series = json_string_value(json_object_get(m->o, "series"));
    if (!series || strlen(m->id) >= NOPS_ID_LEN)
        return;
    (void)nops_signal_set_series(&sig, series); /* as the worker did: the key is its own */
    snprintf(sig.id, sizeof sig.id, "%s", m->id);
    sig.series_id = sid;
    sig.ts_ns = m->ts;
    sig.score = json_real_value(json_object_get(m->o, "score"));
    float win[NOPS_DETECT_MAX_WINDOW];
    json_t *w = json_object_get(m->o, "w");
    uint32_t n = 0;
    for (size_t i = 0; i < json_array_size(w) && n < NOPS_DETECT_MAX_WINDOW; i++)
        win[n++] = (float)json_number_value(json_array_get(w, i));
    nops_incident inc;
    unsigned events = 0;
    if (nops_correlate_place(s->corr, &sig, part, n ? win : NULL, n, &inc, &events) ==
        NOPS_OK) {
        /* the stage is the one writer of its incidents: no incident_mu needed for their order */
        nops__pipeline_incident_hook(p, s->corr, &inc, events); /* may attach recos */
        (void)nops_sinks_incident(p->sinks, &inc); /* a loss fails every later flush */
        if (events & NOPS_INC_OPENED)
            STAT_ADD(p, incidents_opened, 1);
    } else {
        STAT_ADD(p, uncorrelated, 1);
    }
}

/* Incidents whose partitions' data time passed their resolution, to the sinks. */
static void resolve(svc_stage *s)
{
    nops_pipeline *p = s->p;
    int64_t now = 0;
    for (int i = 0; i < MAX_PARTITIONS; i++)
        now = s->part_now[i] > now ? s->part_now[i] : now;
    nops_incident done[16];
    size_t n;
    while ((n = nops_correlate_tick_parts(s->corr, now, s->part_now, MAX_PARTITIONS, done,
                                          16)) > 0) {
        for (size_t i = 0; i < n; i++) {
            nops__pipeline_incident_hook(p, s->corr, &done[i], NOPS_INC_RESOLVED);
            (void)nops_sinks_incident(p->sinks, &done[i]);
        }
        STAT_ADD(p, incidents_resolved, n);
    }
}

/* Let the messages held for `part` go unplaced (the partition is no longer ours). */
static void drop_held(svc_stage *s, int32_t part)
{
    held *h = &s->held[part];
    for (uint32_t i = 0; i < h->n; i++)
        json_decref(h->v[i].o);
    h->n = 0;
}

/* Place what `part` holds as one batch, in data order; resolve what its time passed. */
static void place_part(svc_stage *s, int32_t part)
{
    held *h = &s->held[part];
    if (!h->n)
        return;
    const int64_t next = h->v[h->n - 1].offset + 1;
    qsort(h->v, h->n, sizeof *h->v, cmp_placed);
    for (uint32_t i = 0; i < h->n; i++)
        if (h->v[i].o)
            place_one(s, part, &h->v[i]);
    s->n_placed += h->n;
    drop_held(s, part);
    s->next_off[part] = next;
    resolve(s);
}

/* A message read: held for its partition's batch, which a tick (or SVC_BATCH) closes. */
static void take(svc_stage *s, rd_kafka_message_t *m, int64_t now)
{
    const int32_t part = m->partition;
    if (part < 0 || part >= MAX_PARTITIONS || !s->assigned[part]) {
        rd_kafka_message_destroy(m); /* not ours (any more): its owner reads it */
        return;
    }
    held *h = &s->held[part];
    if (h->n == h->cap) {
        const uint32_t cap = h->cap ? 2 * h->cap : 64;
        placed *v = nops_realloc(h->v, cap * sizeof *v);
        if (v) {
            h->v = v;
            h->cap = cap;
        } else { /* no memory to hold more: what is held is a batch (logged: not a replay's) */
            NOPS_WARN("ingest", "service stage: no memory to hold more of partition %d: "
                      "placing the %u message(s) it holds early", (int)part, h->n);
            place_part(s, part);
        }
    }
    json_t *o = m->payload ? json_loadb(m->payload, m->len, 0, NULL) : NULL;
    uint64_t missed;
    if (!o) { /* damaged: counted and logged, placed as nothing (its offset goes with the batch) */
        STAT_ADD(s->p, uncorrelated, 1);
        if (nops_ratelimit_due(&s->damaged_log, now, &missed))
            NOPS_WARN("ingest", "service stage: partition %d offset %lld is not a stage message "
                      "(not JSON): skipped (%llu more not logged in the last 10 s)", (int)part,
                      (long long)m->offset, (unsigned long long)missed);
    }
    const char *id = json_string_value(json_object_get(o, "id"));
    const char *t = json_string_value(json_object_get(o, "t"));
    const placed one = {o, json_integer_value(json_object_get(o, "ts")), id ? id : "",
                        m->offset};
    s->read_off[part] = m->offset + 1;
    rd_kafka_message_destroy(m);
    if (h->n == h->cap) { /* nothing held and no memory to hold it: placed on its own */
        if (o)
            place_one(s, part, &one);
        json_decref(o);
        s->n_placed++;
        s->next_off[part] = one.offset + 1;
        resolve(s);
        return;
    }
    if (!h->n)
        h->since = now;
    h->v[h->n++] = one;
    if ((t && strcmp(t, "t") == 0) || h->n == SVC_BATCH)
        place_part(s, part);
}

/* Partitions whose ticks stopped (Order, above): place what they hold. */
static void place_stale(svc_stage *s, int64_t now)
{
    const int64_t stale = SVC_STALE_NS + 2 * s->p->pp.flush_ms * 1000000ll;
    for (int32_t i = 0; i < MAX_PARTITIONS; i++) {
        if (!s->assigned[i] || !s->held[i].n || now - s->held[i].since < stale)
            continue;
        uint64_t missed;
        if (nops_ratelimit_due(&s->stale_log, nops_wall_ns(), &missed))
            NOPS_WARN("ingest", "service stage: no tick in partition %d for %lld s: placing the "
                      "%u message(s) it holds (a replay may batch them otherwise; %llu more "
                      "partition(s) not logged in the last 10 s)", (int)i,
                      (long long)(stale / 1000000000ll), s->held[i].n,
                      (unsigned long long)missed);
        place_part(s, i);
    }
}

/* Flush the sinks and, with `snap`, snapshot and commit the partitions marked there (NULL: all
 * assigned) at their last placed batch. Stage thread. */
static bool checkpoint(svc_stage *s, bool snap, const rd_kafka_topic_partition_list_t *only)
{
    char err[512];
    if (nops_sinks_flush(s->p->sinks, err, sizeof err) != NOPS_OK)
        return false; /* the poller logs failed flushes; offsets stay */
    if (!snap)
        return true;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
    for (int i = 0; i < MAX_PARTITIONS; i++) {
        if (!s->assigned[i] || s->next_off[i] < 0 || s->next_off[i] == s->committed[i])
            continue;
        if (only && !rd_kafka_topic_partition_list_find(only, s->topic, i))
            continue;
        nops__svc_snap_write(s, i);
        rd_kafka_topic_partition_list_add(l, s->topic, i)->offset = s->next_off[i];
    }
    bool ok = true;
    if (l->cnt) {
        rd_kafka_resp_err_t e = rd_kafka_commit(s->cons, l, 0);
        ok = e == RD_KAFKA_RESP_ERR_NO_ERROR;
        for (int i = 0; ok && i < l->cnt; i++) {
            s->committed[l->elems[i].partition] = l->elems[i].offset;
            /* a synchronous commit: landed */
            nops__svc_snap_keep_committed(s, l->elems[i].partition);
        }
        uint64_t missed;
        if (!ok && nops_ratelimit_due(&s->commit_log, nops_wall_ns(), &missed))
            NOPS_WARN("ingest", "service stage: commit failed (will retry): %s (%llu more not "
                      "logged in the last 10 s)", rd_kafka_err2str(e), (unsigned long long)missed);
    }
    rd_kafka_topic_partition_list_destroy(l);
    return ok;
}

static void on_assign(svc_stage *s, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_topic_partition_list_t *c = rd_kafka_topic_partition_list_copy(parts);
    rd_kafka_resp_err_t e = rd_kafka_committed(rk, c, 5000);
    for (int i = 0; i < parts->cnt; i++) {
        const int32_t part = parts->elems[i].partition;
        if (part < 0 || part >= MAX_PARTITIONS)
            continue;
        const int64_t committed = e || c->elems[i].err || c->elems[i].offset < 0
                                      ? -1 : c->elems[i].offset;
        nops_correlate_release(s->corr, part);
        drop_held(s, part);
        s->part_now[part] = 0;
        if (committed >= 0) {
            nops__svc_snap_restore(s, part, committed);
            parts->elems[i].offset = committed;
        }
        s->assigned[part] = true;
        s->committed[part] = committed;
        s->next_off[part] = s->read_off[part] = committed;
    }
    rd_kafka_topic_partition_list_destroy(c);
    s->assigned_once = true;
    NOPS_INFO("ingest", "service stage: assigned %d partition(s) of %s", parts->cnt, s->topic);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    svc_stage *s = opaque;
    const bool coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        on_assign(s, rk, parts);
        if (coop) {
            rd_kafka_error_t *ae = rd_kafka_incremental_assign(rk, parts);
            if (ae)
                rd_kafka_error_destroy(ae);
        } else {
            rd_kafka_assign(rk, parts);
        }
        return;
    }
    uint32_t left = 0;
    for (int i = 0; i < parts->cnt; i++) {
        const int32_t part = parts->elems[i].partition;
        left += part >= 0 && part < MAX_PARTITIONS ? s->held[part].n : 0;
    }
    NOPS_INFO("ingest", "service stage: %d partition(s) of %s revoked (%u message(s) after "
              "their last batch left to the next owner)", parts->cnt, s->topic, left);
    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
        checkpoint(s, true, parts); /* lost ones (not revoked) are no longer ours to commit */
    for (int i = 0; i < parts->cnt; i++) {
        const int32_t part = parts->elems[i].partition;
        if (part < 0 || part >= MAX_PARTITIONS)
            continue;
        s->assigned[part] = false;
        drop_held(s, part); /* the next owner reads them from the committed offset */
        nops_correlate_release(s->corr, part); /* saved above: the next owner goes on */
    }
    if (coop) {
        rd_kafka_error_t *ue = rd_kafka_incremental_unassign(rk, parts);
        if (ue)
            rd_kafka_error_destroy(ue);
    } else {
        rd_kafka_assign(rk, NULL);
    }
}

/* Has the stage read everything of its partitions the brokers hold (the drain at stop)? */
static bool caught_up(svc_stage *s)
{
    for (int i = 0; i < MAX_PARTITIONS; i++) {
        if (!s->assigned[i])
            continue;
        int64_t lo = 0, hi = 0;
        if (rd_kafka_query_watermark_offsets(s->cons, s->topic, i, &lo, &hi, 2000) ||
            (hi > lo && s->read_off[i] < hi))
            return false;
    }
    return true;
}

static void *stage_main(void *arg)
{
    svc_stage *s = arg;
    const nops_pipeline *p = s->p;
    int64_t last_ckpt = nops_now_ns(), last_snap = last_ckpt, drain_until = 0;
    for (;;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(s->cons, 20);
        const int64_t now = nops_now_ns();
        if (m && m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                NOPS_WARN("ingest", "service stage consumer: %s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            m = NULL;
        }
        const bool got = m != NULL;
        if (m)
            take(s, m, now);
        if (atomic_load(&s->stop)) { /* drain: up to 10 s to read what the brokers hold */
            if (!drain_until)
                drain_until = now + 10000000000ll;
            if (!got && (now > drain_until || caught_up(s)))
                break;
        }
        if (now - last_ckpt < p->pp.flush_ms * 1000000ll)
            continue;
        last_ckpt = now;
        place_stale(s, now);
        const bool snap = now - last_snap >= p->pp.snapshot_ms * 1000000ll;
        if (checkpoint(s, snap, NULL) && snap)
            last_snap = now;
    }
    /* a member still in its first rebalance must finish it before it is closed (librdkafka
     * < 2.3.0 aborts otherwise; an assignment that comes now is placed by the close) */
    nops_kafka_await_first_assignment(s->cons, &s->assigned_once,
                                      (int)(2 * p->kp.session_timeout_ms), "service stage");
    checkpoint(s, true, NULL);
    NOPS_INFO("ingest", "service stage: stopped, %llu message(s) placed",
              (unsigned long long)s->n_placed);
    return NULL;
}

/* ---- life cycle --------------------------------------------------------------------------- */

svc_stage *nops__svc_new(nops_pipeline *p, const nops_correlate_params *cp, char *errstr,
                         size_t errstr_size)
{
    svc_stage *s = nops_calloc(1, sizeof *s);
    if (!s || !(s->held = nops_calloc(MAX_PARTITIONS, sizeof *s->held))) {
        nops_free(s);
        nops_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    s->p = p;
    snprintf(s->topic, sizeof s->topic, "%s", cp->service_topic);
    s->derived = cp->service_topic_derived;
    snprintf(s->group, sizeof s->group, "%s.service", p->kp.group);
    for (int i = 0; i < MAX_PARTITIONS; i++)
        s->next_off[i] = s->committed[i] = s->read_off[i] = -1;
    char kerr[512] = "", sess[32];
    snprintf(sess, sizeof sess, "%lld", (long long)p->kp.session_timeout_ms);
    const nops_kafka_prop pprops[] = {{"linger.ms", "5"},
                                      {"delivery.report.only.error", "true"}};
    const nops_kafka_prop cprops[] = {
        {"group.id", s->group},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", "earliest"},
        {"partition.assignment.strategy", "cooperative-sticky"},
        {"session.timeout.ms", sess},
        {"fetch.wait.max.ms", "10"},
    };
    rd_kafka_conf_t *pc = nops_kafka_conf_new(&p->kp, NULL, "service-stage", pprops, 2, kerr,
                                              sizeof kerr);
    if (pc) {
        rd_kafka_conf_set_dr_msg_cb(pc, on_delivery);
        rd_kafka_conf_set_opaque(pc, s);
        if (!(s->prod = rd_kafka_new(RD_KAFKA_PRODUCER, pc, kerr, sizeof kerr)))
            rd_kafka_conf_destroy(pc);
    }
    rd_kafka_conf_t *cc = s->prod ? nops_kafka_conf_new(&p->kp, NULL, "service-stage", cprops,
                                                        sizeof cprops / sizeof cprops[0], kerr,
                                                        sizeof kerr)
                                  : NULL;
    if (cc) {
        rd_kafka_conf_set_rebalance_cb(cc, on_rebalance);
        rd_kafka_conf_set_opaque(cc, s);
        if (!(s->cons = rd_kafka_new(RD_KAFKA_CONSUMER, cc, kerr, sizeof kerr)))
            rd_kafka_conf_destroy(cc);
    }
    if (!s->prod || !s->cons) {
        nops_errf(errstr, errstr_size, "service stage: kafka: %s", kerr);
        nops__svc_destroy(s);
        return NULL;
    }
    rd_kafka_poll_set_consumer(s->cons);
    if (!(s->corr = nops_correlate_new(cp, (uint32_t)p->dp.window, errstr, errstr_size))) {
        nops__svc_destroy(s);
        return NULL;
    }
    return s;
}

bool nops__svc_derived(const svc_stage *s)
{
    return s->derived;
}

nops_err nops__svc_start(svc_stage *s, char *errstr, size_t errstr_size)
{
    /* the topic must exist (asking for it creates it where the cluster allows): without it
     * every signal of a service would be lost to the producer and the pipeline would stall */
    for (int i = 0; i < 5 && atomic_load(&s->n_parts) == 0; i++) {
        s->meta_ns = 0;
        refresh_parts(s);
        if (atomic_load(&s->n_parts) == 0)
            nanosleep(&(struct timespec){0, 200000000}, NULL);
    }
    if (atomic_load(&s->n_parts) == 0) {
        nops_errf(errstr, errstr_size, "the service topic %s does not exist and the cluster "
                  "did not create it: create it (README, \"Running against a real Kafka "
                  "cluster\") or set correlate.service_topic=off", s->topic);
        return NOPS_NOTFOUND;
    }
    rd_kafka_topic_partition_list_t *t = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(t, s->topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(s->cons, t);
    rd_kafka_topic_partition_list_destroy(t);
    if (e) {
        nops_errf(errstr, errstr_size, "cannot subscribe to %s: %s", s->topic,
                  rd_kafka_err2str(e));
        return NOPS_IO;
    }
    if (pthread_create(&s->thr, NULL, stage_main, s) != 0) {
        nops_errf(errstr, errstr_size, "cannot start the service stage thread");
        return NOPS_INTERNAL;
    }
    (void)pthread_setname_np(s->thr, "nops-svcstage");
    s->started = true;
    NOPS_INFO("ingest", "service stage: signals of series with a service go through %s "
              "(group %s)", s->topic, s->group);
    return NOPS_OK;
}

void nops__svc_stop(svc_stage *s)
{
    if (!s || !s->started)
        return;
    atomic_store(&s->stop, true);
    pthread_join(s->thr, NULL);
    rd_kafka_consumer_close(s->cons); /* its revoke callback commits what is left */
    s->started = false;
}

void nops__svc_destroy(svc_stage *s)
{
    if (!s)
        return;
    nops__svc_stop(s);
    if (s->cons)
        rd_kafka_destroy(s->cons);
    if (s->prod) {
        rd_kafka_flush(s->prod, 2000);
        rd_kafka_destroy(s->prod);
    }
    nops_correlate_destroy(s->corr);
    for (int i = 0; s->held && i < MAX_PARTITIONS; i++) {
        drop_held(s, i);
        nops_free(s->held[i].v);
    }
    nops_free(s->held);
    nops_free(s);
}

uint64_t nops__svc_open(svc_stage *s)
{
    uint64_t open = 0;
    if (s)
        nops_correlate_counts(s->corr, &open, NULL, NULL);
    return open;
}
