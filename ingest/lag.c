/*
 * lag.c — consumer lag: the high watermark of every assigned partition, queried from the
 * brokers by a thread of its own, minus the pipeline's position in it.
 *
 * librdkafka's cached watermarks (rd_kafka_get_watermark_offsets) are only as fresh as the last
 * fetch response, and the position of a partition was only known once a message of it had been
 * processed: after a restart with everything consumed, the lag read as the whole topic until
 * each partition got a new message, and while consumption is paused no fetch refreshes the
 * cache. So the high watermarks are asked for (one ListOffsets round per leader for all assigned
 * partitions, rd_kafka_offsets_for_times with OFFSET_END) right after each rebalance and every
 * LAG_REFRESH_MS, off the poller thread so a slow or absent broker never stalls consumption;
 * and a partition's position starts at its committed offset on assignment (poller.c).
 */
#include "ingest/pipeline_int.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#define LAG_REFRESH_MS 5000 /* watermarks are asked for this often (and after every rebalance) */
#define LAG_QUERY_MS 5000   /* how long one round may take */

void nops__lag_init(nops_pipeline *p)
{
    pthread_mutex_init(&p->lag_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->lag_cv, &ca);
    pthread_condattr_destroy(&ca);
    for (int i = 0; i < MAX_PARTITIONS; i++)
        atomic_store(&p->high[i], -1);
    atomic_store(&p->lag_as_of, 0);
}

void nops__lag_fini(nops_pipeline *p)
{
    pthread_mutex_destroy(&p->lag_mu);
    pthread_cond_destroy(&p->lag_cv);
    nops_free(p->lag_parts);
}

/* One round: the high watermarks of `parts` (n of them) into p->high; true if all were read. */
static bool query_highs(nops_pipeline *p, const int32_t *parts, int n)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
    for (int i = 0; i < n; i++) /* the "timestamp" OFFSET_END asks for the latest offset */
        rd_kafka_topic_partition_list_add(l, p->kp.topic, parts[i])->offset = RD_KAFKA_OFFSET_END;
    rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(p->rk, l, LAG_QUERY_MS);
    if (e)
        NOPS_DEBUG("ingest", "high watermarks not read (lag keeps older values): %s",
                   rd_kafka_err2str(e));
    bool all = !e;
    for (int i = 0; i < l->cnt; i++) {
        const rd_kafka_topic_partition_t *t = &l->elems[i];
        if (!e && !t->err && t->offset >= 0 && t->partition >= 0 && t->partition < MAX_PARTITIONS)
            atomic_store(&p->high[t->partition], t->offset);
        else
            all = false;
    }
    rd_kafka_topic_partition_list_destroy(l);
    return all;
}

static void *lag_main(void *arg)
{
    nops_pipeline *p = arg;
    int32_t *parts = nops_calloc(MAX_PARTITIONS, sizeof *parts);
    pthread_mutex_lock(&p->lag_mu);
    while (parts && !p->lag_stop) {
        if (!p->lag_refresh) {
            struct timespec dl;
            clock_gettime(CLOCK_MONOTONIC, &dl);
            dl.tv_sec += LAG_REFRESH_MS / 1000;
            dl.tv_nsec += (long)(LAG_REFRESH_MS % 1000) * 1000000;
            if (dl.tv_nsec >= 1000000000) {
                dl.tv_sec++;
                dl.tv_nsec -= 1000000000;
            }
            int rc = 0;
            while (!p->lag_refresh && !p->lag_stop && rc != ETIMEDOUT)
                rc = pthread_cond_timedwait(&p->lag_cv, &p->lag_mu, &dl);
        }
        if (p->lag_stop)
            break;
        p->lag_refresh = false;
        int n = p->lag_parts ? p->lag_n : 0; /* none before the first rebalance */
        if (n)
            memcpy(parts, p->lag_parts, (size_t)n * sizeof *parts);
        const uint64_t gen = p->lag_gen;
        pthread_mutex_unlock(&p->lag_mu);
        const int64_t sent = nops_wall_ns();
        const bool all = n && query_highs(p, parts, n);
        pthread_mutex_lock(&p->lag_mu);
        /* every watermark is at least what it was when the round was sent, if the assignment
         * it asked about is still the one */
        if (all && gen == p->lag_gen)
            atomic_store(&p->lag_as_of, sent);
    }
    pthread_mutex_unlock(&p->lag_mu);
    nops_free(parts);
    return NULL;
}

bool nops__lag_start(nops_pipeline *p)
{
    p->lag_stop = false;
    p->lag_started = pthread_create(&p->lag_thr, NULL, lag_main, p) == 0;
    if (p->lag_started)
        (void)pthread_setname_np(p->lag_thr, "nops-lag");
    return p->lag_started;
}

void nops__lag_stop(nops_pipeline *p)
{
    if (!p->lag_started)
        return;
    pthread_mutex_lock(&p->lag_mu);
    p->lag_stop = true;
    pthread_cond_broadcast(&p->lag_cv);
    pthread_mutex_unlock(&p->lag_mu);
    pthread_join(p->lag_thr, NULL);
    p->lag_started = false;
}

void nops__lag_assigned(nops_pipeline *p)
{
    pthread_mutex_lock(&p->lag_mu);
    if (!p->lag_parts)
        p->lag_parts = nops_calloc(MAX_PARTITIONS, sizeof *p->lag_parts);
    p->lag_n = 0;
    for (int i = 0; p->lag_parts && i < MAX_PARTITIONS; i++)
        if (p->assigned[i])
            p->lag_parts[p->lag_n++] = i;
    p->lag_refresh = true;
    p->lag_gen++;
    atomic_store(&p->lag_as_of, 0); /* the next round covers the new assignment */
    pthread_cond_broadcast(&p->lag_cv);
    pthread_mutex_unlock(&p->lag_mu);
}

int64_t nops__lag_sum(nops_pipeline *p, uint32_t *known)
{
    int64_t lag = 0;
    *known = 0;
    for (int i = 0; i < MAX_PARTITIONS; i++) {
        if (!p->assigned[i])
            continue;
        int64_t lo = -1, hi = -1, q = atomic_load(&p->high[i]);
        if (rd_kafka_get_watermark_offsets(p->rk, p->kp.topic, i, &lo, &hi) != 0)
            lo = hi = -1;
        if (q > hi) /* the newer of the queried and the fetched one */
            hi = q;
        if (hi < 0)
            continue; /* not known yet: left out, and not counted as known */
        (*known)++;
        int64_t pos = atomic_load(&p->processed[i]);
        if (pos < 0) /* no committed offset: consumption starts at the low watermark */
            pos = lo >= 0 ? lo : 0;
        lag += hi > pos ? hi - pos : 0;
    }
    return lag;
}
