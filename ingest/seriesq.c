/*
 * seriesq.c — what other threads may ask the pipeline about one series: its live window (the
 * values, with their times and the detector's band: nops_pipeline_series_window, _view), and
 * the windows the workers judged when they raised signals (nops_pipeline_signal_contexts).
 *
 * Questions. The detector state belongs to the worker that holds the series and takes no lock,
 * so a question waits in p->query until each worker looks at it between two batches (the state
 * at rest); the one holding the series answers, and the asker stops waiting at the first
 * answer that found it or when every worker has looked.
 *
 * Times. The essay is in ingest.h ("the points of a series"): per slot, the newest time, the
 * last step and how many steps in a row had it (nops__slot_time, updated in emit_signals).
 * A slot freed by an eviction or overwritten by a restore forgets them (its next series' first
 * step would otherwise be measured from another series' newest point — harmless for the exact
 * part, which caps at the window, but the estimate would use the wrong step).
 *
 * Signal contexts. When a worker raises a signal it copies the window it judged (values up to
 * the signal's point, their times, the band before the point) into a ring of
 * NOPS_PIPELINE_SIGNAL_CONTEXTS under ctx_mu. Signals are rare next to points: one allocation
 * and a short lock per signal, nothing per point. The oldest is replaced and counted.
 */
#include "ingest/pipeline_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- times of a window's values ----------------------------------------------------------- */

uint32_t nops__slot_time_fill(const nops__slot_time *t, const float *vals, uint32_t n,
                              nops_series_point *pts)
{
    if (!t || !t->seen)
        return n; /* nothing known: every value untimed */
    uint32_t out = 0, untimed = 0;
    for (uint32_t j = 0; j < n; j++) {
        const uint32_t k = n - 1 - j; /* steps back from the newest */
        int64_t back = 0;
        if (k > 0 && (t->step <= 0 || __builtin_mul_overflow((int64_t)k, t->step, &back) ||
                      t->last - back > t->last)) {
            untimed++; /* older than anything the times tell (the oldest come first) */
            continue;
        }
        pts[out].ts_ns = t->last - back;
        pts[out].value = vals[j];
        pts[out].estimated = k > t->run;
        out++;
    }
    return untimed;
}

void nops__slot_times_evicted(worker *w)
{
    const uint64_t ev = nops_detect_evictions(w->det);
    if (ev == w->seen_evictions)
        return;
    w->seen_evictions = ev;
    const uint32_t lim = nops_detect_slot_limit(w->det);
    for (uint32_t s = 0; s < lim && s < w->slot_part_cap; s++)
        if (nops_detect_slot_id(w->det, s) == 0) /* free now */
            w->slot_time[s] = (nops__slot_time){0};
}

/* ---- questions ---------------------------------------------------------------------------- */

void nops__answer_query(worker *w)
{
    nops_pipeline *p = w->p;
    if (!atomic_exchange(&w->has_query, false))
        return;
    pthread_mutex_lock(&p->query_mu);
    series_query *q = p->query;
    uint32_t slot;
    if (q && nops_detect_lookup(w->det, q->id, &slot) == NOPS_OK) {
        uint32_t count = 0;
        q->found = true;
        q->n = nops_detect_slot_window(w->det, slot, q->out, q->cap);
        if (q->pts) {
            const nops__slot_time *t = slot < w->slot_part_cap ? &w->slot_time[slot] : NULL;
            q->untimed = nops__slot_time_fill(t, q->out, q->n, q->pts);
            q->n -= q->untimed;
        }
        if (nops_detect_slot_stats(w->det, slot, &q->mean, &q->std, &count) != NOPS_OK)
            q->mean = q->std = 0;
    }
    if (q) {
        q->answered++;
        pthread_cond_broadcast(&p->query_cv);
    }
    pthread_mutex_unlock(&p->query_mu);
}

/* Ask the workers q (its id set); NOPS_OK when one held the series. */
static nops_err ask(nops_pipeline *p, series_query *q, int timeout_ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (dl.tv_nsec >= 1000000000) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&p->query_mu);
    int rc = 0;
    while (p->query && rc == 0) /* one question at a time */
        rc = pthread_cond_timedwait(&p->query_cv, &p->query_mu, &dl);
    if (rc != 0 || !p->started) {
        pthread_mutex_unlock(&p->query_mu);
        return NOPS_IO;
    }
    p->query = q;
    for (int64_t i = 0; i < p->pp.workers; i++) {
        worker *w = &p->workers[i];
        atomic_store(&w->has_query, true);
        pthread_mutex_lock(&w->q.mu); /* wake it if it waits for messages */
        pthread_cond_broadcast(&w->q.not_empty);
        pthread_mutex_unlock(&w->q.mu);
    }
    while (!q->found && q->answered < (uint32_t)p->pp.workers && rc == 0)
        rc = pthread_cond_timedwait(&p->query_cv, &p->query_mu, &dl);
    p->query = NULL; /* late workers see none and leave q alone */
    pthread_cond_broadcast(&p->query_cv);
    pthread_mutex_unlock(&p->query_mu);
    if (!q->found)
        return rc != 0 ? NOPS_IO : NOPS_NOTFOUND;
    return NOPS_OK;
}

nops_err nops_pipeline_series_window(nops_pipeline *p, const char *key, float *out,
                                     uint32_t cap, uint32_t *n, double *mean, double *std,
                                     int timeout_ms)
{
    series_query q = {.id = nops_detect_key_id(key, strlen(key)), .out = out, .cap = cap};
    nops_err e = ask(p, &q, timeout_ms);
    if (e != NOPS_OK)
        return e;
    *n = q.n;
    *mean = q.mean;
    *std = q.std;
    return NOPS_OK;
}

nops_err nops_pipeline_series_view(nops_pipeline *p, const char *key, nops_series_view *v,
                                   int timeout_ms)
{
    float vals[NOPS_DETECT_MAX_WINDOW];
    const uint32_t cap = v->cap < NOPS_DETECT_MAX_WINDOW ? v->cap : NOPS_DETECT_MAX_WINDOW;
    series_query q = {.id = nops_detect_key_id(key, strlen(key)), .out = vals, .cap = cap,
                      .pts = v->points};
    v->n = v->untimed = 0;
    nops_err e = ask(p, &q, timeout_ms);
    if (e != NOPS_OK)
        return e;
    v->n = q.n;
    v->untimed = q.untimed;
    v->mean = q.mean;
    v->std = q.std;
    v->z_threshold = nops_detect_get_params(p->workers[0].det)->z_threshold; /* resolved,
                                                                     the same in each */
    return NOPS_OK;
}

/* ---- signal contexts ---------------------------------------------------------------------- */

/* the size ingest.h states (and the docs repeat) */
_Static_assert(sizeof(nops_signal_context) == 88 && sizeof(nops_series_point) == 16,
               "update the memory figures of nops_signal_context in ingest.h");

void nops__ctx_init(nops_pipeline *p)
{
    pthread_mutex_init(&p->ctx_mu, NULL);
}

void nops__ctx_fini(nops_pipeline *p)
{
    for (uint32_t i = 0; i < NOPS_PIPELINE_SIGNAL_CONTEXTS; i++) {
        nops_free(p->ctx[i]);
        p->ctx[i] = NULL;
    }
    pthread_mutex_destroy(&p->ctx_mu);
}

/* A context dropped (ctx_mu held): counted; the first replacement logged at info (it means the
 * ring is full from now on), later ones at debug, a failed copy as a warning; rate-limited. */
static void ctx_dropped(nops_pipeline *p, bool oom, int64_t now_ns)
{
    const uint64_t n = __atomic_add_fetch(&p->st.signal_contexts_dropped, 1, __ATOMIC_RELAXED);
    uint64_t missed;
    if (!nops_ratelimit_due(&p->ctx_log, now_ns, &missed))
        return;
    if (oom)
        NOPS_WARN("ingest", "out of memory keeping a signal's window: GET /series will not "
                  "show the points around it (%llu signal context(s) dropped so far)",
                  (unsigned long long)n);
    else if (n == 1)
        NOPS_INFO("ingest", "%d signal contexts held: from now on the oldest is replaced by "
                  "each new signal (counted in neuralops_signal_contexts_dropped_total)",
                  NOPS_PIPELINE_SIGNAL_CONTEXTS);
    else
        NOPS_DEBUG("ingest", "signal context replaced (%llu so far)", (unsigned long long)n);
}

void nops__keep_context(worker *w, size_t i, const nops_signal *sig, const float *win,
                        uint32_t nw)
{
    nops_pipeline *p = w->p;
    nops_signal_context *c = nops_malloc(sizeof *c + (size_t)nw * sizeof c->points[0]);
    if (c) {
        memset(c, 0, sizeof *c);
        memcpy(c->id, sig->id, sizeof c->id);
        c->series_id = sig->series_id;
        c->ts_ns = sig->ts_ns;
        c->value = sig->value;
        c->method = sig->method;
        c->z_threshold = nops_detect_get_params(w->det)->z_threshold; /* resolved */
        /* the band the point was judged against: the window before it */
        double sum = 0, sq = 0;
        const uint32_t m = nw > 1 ? nw - 1 : nw;
        for (uint32_t j = 0; j < m; j++)
            sum += win[j];
        c->mean = m ? sum / m : sig->value;
        for (uint32_t j = 0; j < m; j++)
            sq += ((double)win[j] - c->mean) * ((double)win[j] - c->mean);
        c->std = m ? sqrt(sq / m) : 0;
        const uint32_t slot = w->slots[i];
        c->n = nw - nops__slot_time_fill(&w->slot_time[slot], win, nw, c->points);
    }
    pthread_mutex_lock(&p->ctx_mu);
    if (!c) {
        ctx_dropped(p, true, w->recv_ns);
    } else if (p->ctx_n == NOPS_PIPELINE_SIGNAL_CONTEXTS) {
        nops_free(p->ctx[p->ctx_head]);
        p->ctx[p->ctx_head] = c;
        p->ctx_head = (p->ctx_head + 1) % NOPS_PIPELINE_SIGNAL_CONTEXTS;
        ctx_dropped(p, false, w->recv_ns);
    } else {
        p->ctx[(p->ctx_head + p->ctx_n++) % NOPS_PIPELINE_SIGNAL_CONTEXTS] = c;
    }
    pthread_mutex_unlock(&p->ctx_mu);
}

void nops_signal_contexts_free(nops_signal_context **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        nops_free(v[i]);
    nops_free(v);
}

nops_err nops_pipeline_signal_contexts(nops_pipeline *p, const char *key, int64_t from_ns,
                                       int64_t to_ns, nops_signal_context ***out, size_t *n,
                                       size_t *held)
{
    const uint64_t id = nops_detect_key_id(key, strlen(key));
    *out = NULL;
    *n = 0;
    size_t all = 0, k = 0;
    nops_err e = NOPS_OK;
    pthread_mutex_lock(&p->ctx_mu);
    nops_signal_context **v = NULL;
    for (int pass = 0; pass < 2 && e == NOPS_OK; pass++) { /* count, then copy */
        for (uint32_t j = 0; j < p->ctx_n; j++) {
            const nops_signal_context *c =
                p->ctx[(p->ctx_head + j) % NOPS_PIPELINE_SIGNAL_CONTEXTS];
            if (c->series_id != id)
                continue;
            all += pass == 0;
            const int64_t first = c->n ? c->points[0].ts_ns : c->ts_ns;
            if (first > to_ns || c->ts_ns < from_ns)
                continue;
            if (pass == 0) {
                k++;
                continue;
            }
            const size_t sz = sizeof *c + (size_t)c->n * sizeof c->points[0];
            if (!(v[*n] = nops_malloc(sz))) {
                e = NOPS_NOMEM;
                break;
            }
            memcpy(v[(*n)++], c, sz);
        }
        if (pass == 0 && k && !(v = nops_calloc(k, sizeof *v)))
            e = NOPS_NOMEM;
    }
    pthread_mutex_unlock(&p->ctx_mu);
    if (held)
        *held = all;
    if (e != NOPS_OK) {
        nops_signal_contexts_free(v, *n);
        *n = 0;
        return e;
    }
    *out = v;
    return NOPS_OK;
}
