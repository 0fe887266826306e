/*
 * poller.c — the consumer side of the pipeline: the poller thread, checkpoints (flush, snapshot,
 * commit), rebalance callbacks, per-partition state snapshots, and the life cycle.
 * See pipeline.c for the threading model and the at-least-once essay.
 */
#include "ingest/pipeline_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- poller: checkpoints, rebalance, pause/resume ---------------------------------------- */

#define CHUNK 256 /* messages the poller gathers per worker before handing them over */
/* ... or fewer, once they hold this many payload bytes: 256 messages of 1 MB each would be
 * 256 MB waiting outside the worker queue's byte bound */
#define CHUNK_BYTES (256u << 10)

/* Hand the gathered messages to their workers (poller thread: the loop, and the rebalance
 * callback before it drains, so a revoked partition's state holds everything polled of it). */
static void hand_over(nops_pipeline *p)
{
    for (int i = 0; p->pend && i < p->pp.workers; i++)
        if (p->npend[i]) {
            nops__msgq_push(&p->workers[i].q, &p->pend[i * CHUNK], p->npend[i]);
            p->npend[i] = 0;
            p->pend_bytes[i] = 0;
        }
}

static void drain_workers(nops_pipeline *p)
{
    for (int i = 0; i < p->pp.workers; i++)
        nops__msgq_wait_drained(&p->workers[i].q);
}

void nops__pipeline_incident_hook(nops_pipeline *p, nops_correlator *corr, nops_incident *inc,
                                  unsigned events)
{
    if (!p->hook)
        return;
    /* the hook works on a copy: only what it may attach comes back (nops_incident_hook) */
    nops_incident h = *inc;
    p->hook(p->hook_ctx, &h, events);
    h.n_recos = h.n_recos <= NOPS_INCIDENT_MAX_RECOS ? h.n_recos : NOPS_INCIDENT_MAX_RECOS;
    if (h.n_recos == inc->n_recos && h.recommended_ns == inc->recommended_ns &&
        memcmp(h.recos, inc->recos, sizeof h.recos) == 0)
        return;
    inc->n_recos = h.n_recos;
    memcpy(inc->recos, h.recos, sizeof inc->recos);
    inc->recommended_ns = h.recommended_ns;
    /* NOPS_NOTFOUND: a resolved incident already forgotten; nothing later to carry them to */
    (void)nops_correlate_attach(corr, inc);
}

/* Resolve quiet incidents and write them (part of every checkpoint). */
static void resolve_incidents(nops_pipeline *p)
{
    nops_incident done[16];
    size_t n;
    int64_t now = atomic_load(&p->latest_ts);
    const int64_t wall = nops_wall_ns();
    for (int i = 0; i < MAX_PARTITIONS; i++) {
        p->part_now[i] = atomic_load_explicit(&p->part_ts[i], memory_order_relaxed);
        const int64_t seen = atomic_load_explicit(&p->part_wall[i], memory_order_relaxed);
        if (seen && wall - seen > p->part_idle_ns) /* quiet: judged by the stream's "now" */
            p->part_now[i] = INT64_MAX;
    }
    for (;;) {
        pthread_mutex_lock(&p->incident_mu); /* see pipeline_int.h */
        n = nops_correlate_tick_parts(p->corr, now, p->part_now, MAX_PARTITIONS, done, 16);
        for (size_t i = 0; i < n; i++) {
            nops__pipeline_incident_hook(p, p->corr, &done[i], NOPS_INC_RESOLVED);
            nops_sinks_incident(p->sinks, &done[i]);
        }
        pthread_mutex_unlock(&p->incident_mu);
        if (n == 0)
            break;
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

bool nops__log_due(nops_pipeline *p, nops_ratelimit *rl, int64_t now_ns, uint64_t *missed)
{
    pthread_mutex_lock(&p->st_mu);
    const bool due = nops_ratelimit_due(rl, now_ns, missed);
    pthread_mutex_unlock(&p->st_mu);
    return due;
}

void nops__dlq_lost(nops_pipeline *p, const char *why)
{
    const uint64_t n = __atomic_add_fetch(&p->st.dlq_lost, 1, __ATOMIC_RELAXED);
    uint64_t missed;
    const bool due = nops__log_due(p, &p->dlq_lost_log, nops_wall_ns(), &missed);
    if (due)
        NOPS_ERROR("ingest", "a copy of a refused message did not reach the dead-letter topic "
                   "%s (%s): %llu lost so far; offsets are no longer committed, restart to "
                   "replay them (%llu more such loss(es) not logged in the last 10 s)",
                   p->kp.dlq_topic, why, (unsigned long long)n, (unsigned long long)missed);
}

/* The dead-letter producer's failed deliveries (served by rd_kafka_flush in checkpoint, and by
 * send_dlq's poll while the producer's queue is full). */
static void on_dlq_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    if (m->err)
        nops__dlq_lost(opaque, rd_kafka_err2str(m->err));
}

/*
 * Flush sinks and the DLQ; with `snap` (the workers drained) also snapshot the detector state
 * of those partitions and commit the offsets that state corresponds to. `only` limits the
 * commit to one set of partitions (revocation); `sync` waits for the broker's answer.
 *
 * Offsets are committed only together with a snapshot of the same point: a restart then
 * resumes at the committed offset with the state taken there, warm, instead of with a state
 * that lacks the history (a spike right after a cold resume goes unsignalled while the window
 * refills). The snapshot comes after the flush: it must never hold a series' "already
 * signalled" state for a signal that is not durable yet. Between snapshots, flushes keep the
 * sinks current; a crash replays from the last commit (duplicates, never losses), warm when
 * the snapshot taken at that offset survives (snapshot.c keeps the previous one for this).
 */
static nops_err checkpoint(nops_pipeline *p, const rd_kafka_topic_partition_list_t *only,
                           bool sync, const bool *snap, bool *flushed)
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
    if (e == NOPS_OK && p->svc) /* the service stage's signals, before any offset moves */
        e = nops__svc_flush(p->svc, atomic_load(&p->latest_ts), err, sizeof err);
    /* the flush served the delivery reports (on_dlq_delivery): a copy that did not arrive
     * keeps every offset where it is, as a lost sink record does */
    const uint64_t lost = __atomic_load_n(&p->st.dlq_lost, __ATOMIC_RELAXED);
    if (e == NOPS_OK && lost) {
        snprintf(err, sizeof err, "%llu dead-letter copy(ies) to %s were lost: offsets are no "
                 "longer committed; restart to replay them", (unsigned long long)lost,
                 p->kp.dlq_topic);
        e = NOPS_IO;
    }
    if (flushed)
        *flushed = e == NOPS_OK;
    uint64_t missed;
    if (e != NOPS_OK) {
        STAT_ADD(p, flush_failures, 1);
        if (nops_ratelimit_due(&p->flush_log, nops_wall_ns(), &missed))
            NOPS_WARN("ingest", "flush failed, offsets not committed: %s (%llu more failed "
                      "flush(es) not logged in the last 10 s)", err, (unsigned long long)missed);
        return e;
    }
    if (!snap)
        return NOPS_OK;
    nops__snap_write(p, snap, offs);
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
        if (nops_ratelimit_due(&p->commit_log, nops_wall_ns(), &missed))
            NOPS_WARN("ingest", "offset commit failed (will retry): %s (%llu more failed "
                      "commit(s) not logged in the last 10 s)", rd_kafka_err2str(ce),
                      (unsigned long long)missed);
    } else {
        for (int i = 0; i < l->cnt; i++) {
            p->committed[l->elems[i].partition] = l->elems[i].offset;
            if (sync) /* the broker answered: confirmed (async ones in on_commit) */
                nops__snap_committed(p, l->elems[i].partition, l->elems[i].offset);
        }
        STAT_ADD(p, commits, 1);
    }
    rd_kafka_topic_partition_list_destroy(l);
    return ce ? NOPS_IO : NOPS_OK;
}

/*
 * Where a newly assigned partition starts. At its committed offset, always, with its state from
 * the snapshot taken at exactly that offset (snapshot.c says why a snapshot never moves the
 * position) — with one exception that involves no file: a partition this instance itself gave
 * up (revoked after a successful flush, `held`) and gets back while the broker's committed
 * offset is still behind where it left it (the commit at revocation was refused, as brokers do
 * in the middle of a rebalance). Its detectors still hold exactly the state at `held` and every
 * signal before it is durable, so it resumes there, warm: nothing is skipped that was not
 * processed, and nothing is signalled twice. Its position (processed) starts where it starts,
 * so lag and the next snapshot are right before the first message arrives.
 */
static void start_partitions(nops_pipeline *p, rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_topic_partition_list_t *c = rd_kafka_topic_partition_list_copy(parts);
    rd_kafka_resp_err_t e = rd_kafka_committed(p->rk, c, 5000);
    if (e)
        NOPS_WARN("ingest", "cannot read the committed offsets (%s): the assigned partitions "
                  "start cold at whatever offset the group has", rd_kafka_err2str(e));
    for (int i = 0; i < parts->cnt; i++) {
        int32_t part = parts->elems[i].partition;
        int64_t committed = e || c->elems[i].err ? -1 : c->elems[i].offset;
        if (committed < 0)
            committed = -1; /* none: auto.offset.reset (earliest) decides */
        if (part < 0 || part >= MAX_PARTITIONS) {
            if (committed >= 0)
                parts->elems[i].offset = committed;
            continue;
        }
        int64_t start = committed, held = p->held[part];
        p->held[part] = -1;
        if (!e && held > committed) {
            start = held;
            NOPS_INFO("ingest", "partition %d: back to this instance, resuming where it left it "
                      "at %lld with its state (the commit did not land: committed %lld)",
                      (int)part, (long long)held, (long long)committed);
            nops__snap_restore_incidents(p, part, held); /* released at the revoke */
        } else if (!e) {
            nops__snap_restore(p, part, committed);
        }
        if (start >= 0)
            parts->elems[i].offset = start;
        p->committed[part] = committed;
        atomic_store(&p->processed[part], start);
    }
    rd_kafka_topic_partition_list_destroy(c);
}

/*
 * A commit's result (served on the poller thread, or by consumer_close after it). A refused
 * asynchronous commit is forgotten, so the next checkpoint with a snapshot commits again:
 * otherwise an idle partition would keep a committed offset behind its snapshots, and the next
 * start would be cold and replay.
 */
static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    nops_pipeline *p = opaque;
    for (int i = 0; offsets && i < offsets->cnt; i++) {
        const rd_kafka_topic_partition_t *t = &offsets->elems[i];
        rd_kafka_resp_err_t pe = t->err ? t->err : err;
        if (t->partition < 0 || t->partition >= MAX_PARTITIONS ||
            strcmp(t->topic, p->kp.topic) != 0)
            continue;
        if (!pe) { /* confirmed: the snapshot taken at this offset is the one to keep */
            nops__snap_committed(p, t->partition, t->offset);
            continue;
        }
        if (pe == RD_KAFKA_RESP_ERR__NO_OFFSET)
            continue;
        if (p->committed[t->partition] == t->offset) {
            p->committed[t->partition] = -1;
            STAT_ADD(p, commit_failures, 1);
            NOPS_WARN("ingest", "partition %d: the commit of offset %lld was refused (%s): "
                      "committing again at the next snapshot", (int)t->partition,
                      (long long)t->offset, rd_kafka_err2str(pe));
        }
    }
    (void)rk;
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
        p->assigned_once = true;
        NOPS_INFO("ingest", "assigned %d partition(s) of %s", parts->cnt, p->kp.topic);
        hand_over(p);
        drain_workers(p);
        start_partitions(p, parts);
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
        nops__lag_assigned(p);
        return;
    }
    /* revoke (or lost): finish and commit what we have of them, then let go */
    hand_over(p);
    drain_workers(p);
    bool flushed = false;
    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        bool *which = nops_calloc(MAX_PARTITIONS, sizeof *which);
        for (int i = 0; which && i < parts->cnt; i++)
            if (parts->elems[i].partition >= 0 && parts->elems[i].partition < MAX_PARTITIONS)
                which[parts->elems[i].partition] = true;
        checkpoint(p, parts, true, which, &flushed);
        nops_free(which);
    }
    for (int i = 0; i < parts->cnt; i++) { /* see start_partitions */
        int32_t part = parts->elems[i].partition;
        if (part >= 0 && part < MAX_PARTITIONS)
            p->held[part] = flushed ? atomic_load(&p->processed[part]) : -1;
    }
    for (int i = 0; i < parts->cnt; i++) {
        int32_t part = parts->elems[i].partition;
        if (part >= 0 && part < MAX_PARTITIONS && !atomic_load(&p->stopping))
            nops_correlate_release(p->corr, part); /* saved above: the next owner goes on
                                                      (when stopping, they stay to be counted) */
        if (part >= 0 && part < MAX_PARTITIONS && p->assigned[part]) {
            p->assigned[part] = false;
            atomic_fetch_sub(&p->n_assigned, 1);
        }
    }
    NOPS_INFO("ingest", "revoked %d partition(s)", parts->cnt);
    nops__lag_assigned(p);
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
    rd_kafka_message_t **pend = nops_calloc((size_t)p->pp.workers * CHUNK, sizeof *pend);
    uint32_t *npend = nops_calloc((size_t)p->pp.workers, sizeof *npend);
    size_t *pend_bytes = nops_calloc((size_t)p->pp.workers, sizeof *pend_bytes);
    if (pend && npend && pend_bytes) {
        p->pend = pend;
        p->npend = npend;
        p->pend_bytes = pend_bytes;
    }
    uint64_t last_ckpt = nops_now_ns(), last_snap = last_ckpt, backoff_ms = 100, next_retry = 0;
    uint64_t last_handover = last_ckpt;
    while (p->pend && !atomic_load(&p->stopping)) {
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
            pend_bytes[wi] += m->len;
            if (npend[wi] == CHUNK || pend_bytes[wi] >= CHUNK_BYTES) {
                nops__msgq_push(&p->workers[wi].q, &pend[wi * CHUNK], npend[wi]);
                npend[wi] = 0;
                pend_bytes[wi] = 0;
            }
        }
        uint64_t now = nops_now_ns();
        /* hand over partial chunks when idle, or at least every 2 ms (latency bound) */
        if (!m || now - last_handover > 2000000) {
            hand_over(p);
            last_handover = now;
        }
        if (now - last_ckpt < (uint64_t)p->pp.flush_ms * 1000000 || now < next_retry)
            continue;
        hand_over(p); /* before the checkpoint */
        last_ckpt = now;
        const bool snap_due = now - last_snap >= (uint64_t)p->pp.snapshot_ms * 1000000;
        if (snap_due) {
            drain_workers(p); /* workers idle: their detectors can be read */
            last_snap = now;
        }
        if (checkpoint(p, NULL, false, snap_due ? p->assigned : NULL, NULL) == NOPS_OK) {
            set_paused(p, false);
            backoff_ms = 100;
        } else {
            set_paused(p, true);
            next_retry = now + backoff_ms * 1000000;
            backoff_ms = backoff_ms * 2 > 5000 ? 5000 : backoff_ms * 2;
        }
    }
    hand_over(p);
    p->pend = NULL;
    p->npend = NULL;
    p->pend_bytes = NULL;
    nops_free(pend);
    nops_free(npend);
    nops_free(pend_bytes);
    return NULL;
}

/* ---- life cycle ------------------------------------------------------------------------- */

/* The pipeline's consumer (p->rk) and dead-letter producer (p->dlq); false with the reason in
 * kerr when either cannot be made. */
static bool make_clients(nops_pipeline *p, const nops_kafka_params *kp, char *kerr,
                         size_t kerr_size)
{
    char sess[32];
    snprintf(sess, sizeof sess, "%lld", (long long)kp->session_timeout_ms);
    const nops_kafka_prop cprops[] = {
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
    rd_kafka_conf_t *cc = nops_kafka_conf_new(kp, NULL, "pipeline", cprops,
                                              sizeof cprops / sizeof cprops[0], kerr, kerr_size);
    if (cc) {
        rd_kafka_conf_set_rebalance_cb(cc, on_rebalance);
        rd_kafka_conf_set_offset_commit_cb(cc, on_commit);
        rd_kafka_conf_set_opaque(cc, p);
        p->rk = rd_kafka_new(RD_KAFKA_CONSUMER, cc, kerr, kerr_size);
        if (!p->rk)
            rd_kafka_conf_destroy(cc);
    }
    /* delivery.report.only.error: a delivered copy leaves the producer's queue at once instead
     * of holding a queue.buffering.max.messages slot until a poll serves its report (only the
     * checkpoint's flush polls this producer): a burst of refused messages cannot fill it */
    const nops_kafka_prop pprops[] = {{"linger.ms", "20"},
                                      {"enable.idempotence", "false"},
                                      {"delivery.report.only.error", "true"}};
    rd_kafka_conf_t *pc = p->rk ? nops_kafka_conf_new(kp, NULL, "dlq", pprops,
                                                      sizeof pprops / sizeof pprops[0], kerr,
                                                      kerr_size)
                                : NULL;
    if (pc) {
        rd_kafka_conf_set_dr_msg_cb(pc, on_dlq_delivery);
        rd_kafka_conf_set_opaque(pc, p);
    }
    if (pc && !(p->dlq = rd_kafka_new(RD_KAFKA_PRODUCER, pc, kerr, kerr_size)))
        rd_kafka_conf_destroy(pc);
    return p->rk && p->dlq;
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
    if (nops_dir_make(sp->data_dir) != 0 || nops_dir_make(p->state_dir) != 0) {
        nops_errf(errstr, errstr_size, "cannot create %s: %s", p->state_dir, strerror(errno));
        nops_free(p);
        return NULL;
    }
    for (int i = 0; i < MAX_PARTITIONS; i++)
        p->held[i] = -1;
    pthread_mutex_init(&p->st_mu, NULL);
    pthread_mutex_init(&p->incident_mu, NULL);
    nops__lag_init(p);
    pthread_mutex_init(&p->query_mu, NULL);
    pthread_cond_init(&p->query_cv, NULL);
    pthread_mutex_init(&p->thr_mu, NULL);
    nops__ctx_init(p);
    char kerr[512] = "";
    if (!make_clients(p, kp, kerr, sizeof kerr)) {
        nops_errf(errstr, errstr_size, "kafka: %s", kerr);
        nops_pipeline_destroy(p);
        return NULL;
    }
    rd_kafka_poll_set_consumer(p->rk);
    p->corr = nops_correlate_new(cp, (uint32_t)dp->window, errstr, errstr_size);
    p->part_idle_ns = cp->window_s * 1000000000ll;
    if (p->corr && cp->service_topic[0] && strcmp(cp->service_topic, "off") != 0 &&
        !(p->svc = nops__svc_new(p, cp, errstr, errstr_size))) {
        nops_pipeline_destroy(p);
        return NULL;
    }
    if (!p->corr) {
        nops_pipeline_destroy(p);
        return NULL;
    }
    p->workers = nops_calloc((size_t)pp->workers, sizeof *p->workers);
    if (!p->workers) {
        nops_errf(errstr, errstr_size, "out of memory");
        nops_pipeline_destroy(p);
        return NULL;
    }
    for (int i = 0; i < pp->workers; i++) {
        worker *w = &p->workers[i];
        w->p = p;
        w->id = i;
        w->det = nops_detect_new(dp, 1024, errstr, errstr_size);
        bool ok = w->det != NULL;
        if (ok && !(ok = nops__msgq_init(&w->q, (uint32_t)pp->queue_depth,
                                              (size_t)pp->queue_mb << 20)))
            nops_errf(errstr, errstr_size, "out of memory");
        if (!ok) {
            nops_pipeline_destroy(p);
            return NULL;
        }
    }
    return p;
}

void nops_pipeline_set_secret(nops_pipeline *p, const nops_secret *s)
{
    p->secret = s;
}

void nops_pipeline_set_incident_hook(nops_pipeline *p, nops_incident_hook fn, void *ctx)
{
    p->hook = fn;
    p->hook_ctx = ctx;
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
    nops_err se = p->svc ? nops__svc_start(p->svc, errstr, errstr_size) : NOPS_OK;
    if (se == NOPS_NOTFOUND && nops__svc_derived(p->svc)) { /* before any worker reads svc */
        NOPS_WARN("ingest", "%s; signals are correlated in-process: with several instances a "
                  "service's hosts on other instances' partitions are not in its incidents",
                  errstr);
        nops__svc_destroy(p->svc);
        p->svc = NULL;
        errstr[0] = '\0';
    } else if (se != NOPS_OK) {
        return se;
    }
    for (int i = 0; i < p->pp.workers; i++) {
        if (pthread_create(&p->workers[i].thr, NULL, nops__worker_main, &p->workers[i]) != 0) {
            nops_errf(errstr, errstr_size, "cannot start worker threads");
            return NOPS_INTERNAL;
        }
        char name[16]; /* as top -H and perf show it */
        snprintf(name, sizeof name, "nops-worker%u", (unsigned)i % 1000u);
        (void)pthread_setname_np(p->workers[i].thr, name);
    }
    if (pthread_create(&p->poller, NULL, poller_main, p) != 0) {
        nops_errf(errstr, errstr_size, "cannot start the poller thread");
        return NOPS_INTERNAL;
    }
    (void)pthread_setname_np(p->poller, "nops-poller");
    if (!nops__lag_start(p)) /* lag then comes from the fetched watermarks alone */
        NOPS_WARN("ingest", "cannot start the lag thread: consumer lag may read stale");
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
    nops__lag_stop(p);
    drain_workers(p);
    nops_err e = NOPS_IO;
    uint64_t deadline = nops_now_ns() + (uint64_t)timeout_ms * 1000000;
    while (e != NOPS_OK && nops_now_ns() < deadline) {
        e = checkpoint(p, NULL, true, p->assigned, NULL);
        if (e != NOPS_OK)
            nanosleep(&(struct timespec){0, 200000000}, NULL);
    }
    /* a consumer still in its first rebalance finishes it before the close (librdkafka < 2.3.0
     * aborts otherwise); what it is given then is handed on by the close, unread */
    const int64_t left_ms = ((int64_t)deadline - (int64_t)nops_now_ns()) / 1000000;
    nops_kafka_await_first_assignment(p->rk, &p->assigned_once,
                                      (int)(left_ms > 1000 ? left_ms : 1000), "pipeline consumer");
    nops__svc_stop(p->svc); /* after the last flush: it places what the brokers hold */
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
        nops__msgq_fini(&w->q);
        nops_detect_destroy(w->det);
        nops_free(w->slots);
        nops_free(w->values);
        nops_free(w->ts);
        nops_free(w->z);
        nops_free(w->ze);
        nops_free(w->ratio);
        nops_free(w->flags);
        nops_free(w->slot_part);
        nops_free(w->slot_time);
        nops_free(w->slot_mark);
    }
    nops_free(p->workers);
    nops__svc_destroy(p->svc);
    nops_correlate_destroy(p->corr);
    if (p->rk)
        rd_kafka_destroy(p->rk);
    if (p->dlq) {
        rd_kafka_flush(p->dlq, 2000);
        rd_kafka_destroy(p->dlq);
    }
    pthread_mutex_destroy(&p->st_mu);
    pthread_mutex_destroy(&p->incident_mu);
    nops__lag_fini(p);
    pthread_mutex_destroy(&p->query_mu);
    pthread_cond_destroy(&p->query_cv);
    pthread_mutex_destroy(&p->thr_mu);
    nops__ctx_fini(p);
    nops_free(p);
}

void nops_pipeline_get_stats(nops_pipeline *p, nops_pipeline_stats *st)
{
#define LD(f) st->f = __atomic_load_n(&p->st.f, __ATOMIC_RELAXED)
    LD(messages);
    LD(signal_contexts_dropped);
    LD(points);
    LD(dlq);
    LD(stale);
    LD(dlq_lost);
    LD(uncorrelated);
    LD(key_unsplit);
    LD(signals);
    LD(anomalies);
    LD(incidents_opened);
    LD(incidents_resolved);
    LD(commits);
    LD(commit_failures);
    LD(flush_failures);
    LD(snapshots);
    LD(restored_series);
    LD(snapshots_rejected);
    LD(snapshot_series_skipped);
    for (int i = 0; i < NOPS_REJECT_COUNT; i++)
        LD(rejected[i]);
    for (int i = 0; i < 32; i++) {
        st->latency_us_log2[i] = 0; /* derived: the sum of the bucket's quarters */
        for (int k = 0; k < 4; k++) {
            LD(latency_us_q[i][k]);
            st->latency_us_log2[i] += st->latency_us_q[i][k];
        }
    }
#undef LD
    nops_correlate_counts(p->corr, &st->incidents_open, NULL, NULL);
    st->incidents_open += nops__svc_open(p->svc);
    st->series = 0; /* read racily from the workers' registries: a gauge, good enough */
    st->worker_cpu_ns = 0;
    st->queued_bytes = st->queued_bytes_peak = 0;
    for (int i = 0; i < p->pp.workers; i++) {
        msgq *q = &p->workers[i].q;
        pthread_mutex_lock(&q->mu);
        st->queued_bytes += q->bytes;
        st->queued_bytes_peak =
            q->bytes_peak > st->queued_bytes_peak ? q->bytes_peak : st->queued_bytes_peak;
        pthread_mutex_unlock(&q->mu);
        st->series += nops_detect_series_count(p->workers[i].det);
        st->worker_cpu_ns += __atomic_load_n(&p->workers[i].cpu_ns, __ATOMIC_RELAXED);
    }
    st->partitions = atomic_load(&p->n_assigned);
    st->paused = atomic_load(&p->paused);
    st->lag = nops__lag_sum(p, &st->lag_partitions);
    st->lag_as_of_ns = atomic_load(&p->lag_as_of);
}

double nops_pipeline_latency_quantile(const nops_pipeline_stats *st, double q)
{
    uint64_t total = 0;
    for (int i = 0; i < 32; i++)
        for (int k = 0; k < 4; k++)
            total += st->latency_us_q[i][k];
    if (!total)
        return 0.0;
    uint64_t want = (uint64_t)(q * (double)total + 0.5), acc = 0;
    for (int i = 0; i < 32; i++)
        for (int k = 0; k < 4; k++) {
            acc += st->latency_us_q[i][k];
            if (acc >= want && acc)
                return i >= 3 && i < 31 ? (double)((1ull << (i - 1)) + (uint64_t)(k + 1) *
                                                                       (1ull << (i - 3)))
                                        : (double)(1ull << i);
        }
    return (double)(1ull << 31);
}
