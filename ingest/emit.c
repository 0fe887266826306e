/*
 * emit.c — a worker's signals: the anomalous points of a batch's slots become signals (labels
 * split from the series key, the window judged), go to the sinks and to the correlator (or the
 * service stage), and their incidents to the sinks (pipeline.c's essay: at-least-once).
 */
#include "ingest/pipeline_int.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

/* A series key that could not be split into its labels (the parsers refuse the names that
 * would make one, so this means a damaged key): the signal keeps the whole key as its metric
 * name and no labels. Counted and logged (rate-limited). */
static void key_unsplit(worker *w, const char *key, nops_err e)
{
    nops_pipeline *p = w->p;
    const uint64_t n = __atomic_add_fetch(&p->st.key_unsplit, 1, __ATOMIC_RELAXED);
    uint64_t missed;
    const bool due = nops__log_due(p, &p->unsplit_log, w->recv_ns, &missed);
    if (due)
        NOPS_WARN("ingest", "series key \"%.200s\" could not be split into labels (%s): its "
                  "signal carries the whole key as the metric name and no labels (%llu such "
                  "signal(s) so far, %llu more not logged in the last 10 s)", key,
                  nops_err_name(e), (unsigned long long)n, (unsigned long long)missed);
}

static void build_signal(worker *w, size_t i, nops_signal *s)
{
    const char *key = nops_detect_slot_key(w->det, w->slots[i]);
    memset(s, 0, sizeof *s);
    const size_t klen = strlen(key);
    /* the key, and its labels as pairs decoded once for the correlator and every sink (a signal
       is rare next to points; the registry keeps only the key, so a series costs one copy) */
    const nops_err ke = nops_signal_set_series(s, key);
    if (ke != NOPS_OK)
        key_unsplit(w, key, ke);
    s->series_id = nops_detect_slot_id(w->det, w->slots[i]); /* kept since the series was
                                                                 registered: not hashed again */
    uint64_t h = XXH3_64bits_withSeed(&w->ts[i], sizeof w->ts[i], s->series_id);
    snprintf(s->id, sizeof s->id, "%016llx", (unsigned long long)h);
    s->ts_ns = w->ts[i];
    s->value = w->values[i];
    s->zscore = w->z[i];
    s->ewma = w->ze[i];
    /* the kernel's combined ratio and the detector that gave it (detect.h) */
    const unsigned which = NOPS_DETECT_WHICH(w->flags[i]);
    s->method = which == NOPS_DETECTOR_CUSUM    ? NOPS_FIRED_CUSUM
                : which == NOPS_DETECTOR_SEASON ? NOPS_FIRED_SEASON
                : which == NOPS_DETECTOR_EWMA   ? NOPS_FIRED_EWMA
                                                : NOPS_FIRED_ZSCORE;
    s->score = nops_detect_score(w->ratio[i]);
    s->received_ns = w->recv_ns;
    double mean = 0, sd = 0;
    uint32_t cnt = 0;
    nops_detect_slot_stats(w->det, w->slots[i], &mean, &sd, &cnt);
    double prev_mean = cnt > 1 ? (mean * cnt - s->value) / (cnt - 1) : mean;
    float zz = s->method == NOPS_FIRED_ZSCORE ? s->zscore : s->ewma;
    /* the key shortened on a character boundary: a cut inside one is not UTF-8 any more */
    const int kl = (int)nops_utf8_cut(key, klen, 300);
    if (s->method == NOPS_FIRED_CUSUM)
        snprintf(s->hint, sizeof s->hint, "%.*s has moved %s its long-run baseline for a "
                 "while (sustained shift; now %.4g, rolling mean %.4g)", kl, key,
                 (w->flags[i] & NOPS_DETECT_CUSUM_DOWN) ? "below" : "above", s->value,
                 prev_mean);
    else
        snprintf(s->hint, sizeof s->hint, "%.*s is %.1fσ %s its %s (%.4g)", kl, key, fabs(zz),
                 zz >= 0 ? "above" : "below",
                 s->method == NOPS_FIRED_ZSCORE ? "rolling mean" : "moving average", prev_mean);
}

/* A signal the correlator refused (NOPS_FULL: it holds as many open incidents as it can): the
 * signal is written, but in no incident. Counted and logged (rate-limited). */
static void uncorrelated(worker *w, const char *id)
{
    nops_pipeline *p = w->p;
    const uint64_t n = __atomic_add_fetch(&p->st.uncorrelated, 1, __ATOMIC_RELAXED);
    uint64_t missed;
    const bool due = nops__log_due(p, &p->uncorrelated_log, w->recv_ns, &missed);
    if (due)
        NOPS_WARN("ingest", "signal %s is in no incident: the correlator holds as many open "
                  "incidents as it can (%llu such signal(s) so far, %llu more not logged in the "
                  "last 10 s)", id, (unsigned long long)n, (unsigned long long)missed);
}

/* Signals of points [from, to), a run in which no series repeats (see detect_runs). */
void nops__emit_signals(worker *w, size_t from, size_t to)
{
    nops_pipeline *p = w->p;
    uint64_t anomalies = 0;
    for (size_t i = from; i < to; i++) {
        if (w->flags[i] & NOPS_DETECT_VALID) /* in the ring now: its time beside it */
            nops__slot_time_add(&w->slot_time[w->slots[i]], w->ts[i]);
        if (w->flags[i] & NOPS_DETECT_CLEARED) {
            const uint64_t sid = nops_detect_slot_id(w->det, w->slots[i]);
            nops_correlate_cleared(p->corr, sid, w->ts[i]);
            if (p->svc) /* its service's stage, wherever that runs */
                nops__svc_cleared(p->svc, nops_detect_slot_key(w->det, w->slots[i]), sid,
                                  w->ts[i]);
        }
        anomalies += (w->flags[i] & NOPS_DETECT_ANOM) != 0;
        if (!(w->flags[i] & NOPS_DETECT_FIRED))
            continue;
        nops_signal sig;
        build_signal(w, i, &sig);
        /* the window as of the signal's point: the run holds no later point of its series */
        float win[NOPS_DETECT_MAX_WINDOW];
        uint32_t nw = nops_detect_slot_window(w->det, w->slots[i], win, NOPS_DETECT_MAX_WINDOW);
        nops__keep_context(w, i, &sig, win, nw); /* for GET /series, after the window moved */
        nops_incident inc;
        unsigned events = 0;
        /* The sink set keeps every record it takes until a flush makes it durable; one it
         * cannot even keep it counts and logs, and from then on every flush fails, so no
         * offset past it is ever committed and a restart replays it: nothing to do here. */
        (void)nops_sinks_signal(p->sinks, &sig);
        STAT_ADD(p, signals, 1);
        const int64_t lat = nops_wall_ns() - sig.ts_ns;
        if (lat >= 0 && lat < 3600ll * 1000000000ll) {
            uint64_t us = (uint64_t)(lat / 1000);
            int b = 0;
            while (b < 31 && us >= (1ull << b))
                b++;
            /* its quarter of [2^(b-1), 2^b); the log2 buckets are their sums (get_stats) */
            const int k = b >= 3 && b < 31 ? (int)((us - (1ull << (b - 1))) >> (b - 3)) : 3;
            STAT_ADD(p, latency_us_q[b][k], 1);
        }
        if (p->svc && nops__svc_signal(p->svc, &sig, win, nw))
            continue; /* a series of a service: the service stage places it (svcstage.c) */
        const int32_t part = w->slot_part[w->slots[i]]; /* where its series arrives */
        pthread_mutex_lock(&p->incident_mu); /* this state of the incident is written before
                                                a later one (pipeline_int.h) */
        const nops_err ce = nops_correlate_place(p->corr, &sig, part, win, nw, &inc, &events);
        if (ce == NOPS_OK) {
            nops__pipeline_incident_hook(p, p->corr, &inc, events); /* may attach recos */
            (void)nops_sinks_incident(p->sinks, &inc);     /* as the signal above */
        }
        pthread_mutex_unlock(&p->incident_mu);
        if (ce == NOPS_OK && (events & NOPS_INC_OPENED))
            STAT_ADD(p, incidents_opened, 1);
        else if (ce != NOPS_OK)
            uncorrelated(w, sig.id);
    }
    w->anomalies += anomalies;
}
