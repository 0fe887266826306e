/*
 * msgq.c — the bounded queue of Kafka messages from the poller to one worker (see
 * pipeline_int.h): the poller waits while it is full (backpressure), the worker while it is
 * empty (at most 100 ms, to answer series questions), and a rebalance waits until it is
 * drained.
 */
#include "ingest/pipeline_int.h"

#include <time.h>

bool nops__msgq_init(msgq *q, uint32_t cap, size_t cap_bytes)
{
    q->ring = nops_calloc(cap, sizeof *q->ring);
    q->cap = cap;
    q->cap_bytes = cap_bytes;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->not_empty, NULL);
    pthread_cond_init(&q->not_full, NULL);
    pthread_cond_init(&q->drained, NULL);
    return q->ring != NULL;
}

void nops__msgq_fini(msgq *q)
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

/* Full for one more message: by count, or by bytes unless empty (see pipeline_int.h). */
static bool full(const msgq *q)
{
    return q->len == q->cap || (q->cap_bytes && q->len && q->bytes >= q->cap_bytes);
}

/* Push n messages, waiting while full by count or bytes (the poller's backpressure). */
void nops__msgq_push(msgq *q, rd_kafka_message_t **m, uint32_t n)
{
    pthread_mutex_lock(&q->mu);
    for (uint32_t i = 0; i < n; i++) {
        if (full(q)) {
            pthread_cond_signal(&q->not_empty); /* what is queued so far: the worker's to take */
            while (full(q))
                pthread_cond_wait(&q->not_full, &q->mu);
        }
        q->ring[(q->head + q->len++) % q->cap] = m[i];
        q->bytes += m[i]->len;
        if (q->bytes > q->bytes_peak)
            q->bytes_peak = q->bytes;
    }
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
}

/* Take up to max messages, waiting up to 100 ms; 0 when none (or closed and empty). */
uint32_t nops__msgq_pop(msgq *q, rd_kafka_message_t **out, uint32_t max)
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
        out[n] = q->ring[q->head];
        q->bytes -= out[n++]->len;
        q->head = (q->head + 1) % q->cap;
        q->len--;
    }
    q->busy += n;
    if (n)
        pthread_cond_broadcast(&q->not_full);
    pthread_mutex_unlock(&q->mu);
    return n;
}

void nops__msgq_done(msgq *q, uint32_t n)
{
    pthread_mutex_lock(&q->mu);
    q->busy -= n;
    if (q->len == 0 && q->busy == 0)
        pthread_cond_broadcast(&q->drained);
    pthread_mutex_unlock(&q->mu);
}

/* Wait until the worker has finished everything queued so far. */
void nops__msgq_wait_drained(msgq *q)
{
    pthread_mutex_lock(&q->mu);
    while (q->len || q->busy)
        pthread_cond_wait(&q->drained, &q->mu);
    pthread_mutex_unlock(&q->mu);
}

