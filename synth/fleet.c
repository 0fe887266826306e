/*
 * fleet.c — the labelled fleet of corpus.h.
 *
 * Host h belongs to service h % 6 and region (h / 6) % 2 and is named "<service>-<h>". Its five
 * series (σ: the noise):
 *   cpu_usage_user       20–40 % plus a daily wave of ±8 (peak mid-afternoon), σ 2, clipped
 *                        to 0..100;
 *   mem_used_percent     40–70 %, AR(1) noise σ 0.4;
 *   disk_used_percent    a random walk from 30–70 % (steps of 0.03 with a slight upward
 *                        creep): no level is normal for long;
 *   http_latency_p50_ms  80–160 ms plus a daily wave of ±15 %, σ 4 % of the base;
 *   http_errors          errors per step, Poisson with a mean of 3–8: a quantised counter.
 * The default run starts at 08:00 UTC, on the morning ramp of the daily wave.
 *
 * Events start after `quiet_ticks` at random steps and each takes hosts no other event uses,
 * so the truth of one never overlaps another's; events of different hosts of one service may
 * overlap in time (as they do in production), which is what makes the grouping figures hard:
 *   host_shift     2–3 of cpu/mem/latency/errors of one host shift together (each metric 0–1
 *                  step after the first) by 10σ or more; 2 in 3 return after 30–90 steps (window
 *                  to 6 steps after the return), 1 in 3 persist (a new normal; window 30 steps);
 *   spike          one point of cpu, mem or latency of one host, 8–12σ; window 7 steps;
 *   variance_burst latency noise of one host ×6 for 30 steps; window 31 steps;
 *   service_shift  latency and errors of 4 hosts of one service for 40 steps; window to 6
 *                  steps after the return.
 */
#include "synth/corpus.h"
#include "synth/rng_int.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_SERVICES 6
#define N_REGIONS 2
#define EPOCH_S 1767571200ll /* Monday 2026-01-05 00:00 UTC */

enum { M_CPU, M_MEM, M_DISK, M_LAT, M_ERR };

static const char *metric_names[NOPS_SYNTH_METRICS] = {"cpu_usage_user", "mem_used_percent",
                                                       "disk_used_percent", "http_latency_p50_ms",
                                                       "http_errors"};
static const char *service_names[N_SERVICES] = {"checkout", "search",  "auth",
                                                "payments", "catalog", "ledger"};
static const char *region_names[N_REGIONS] = {"eu-west-1", "us-east-1"};

const char *nops_synth_metric_name(uint32_t m)
{
    return m < NOPS_SYNTH_METRICS ? metric_names[m] : "?";
}
const char *nops_synth_service_name(uint32_t s)
{
    return s < N_SERVICES ? service_names[s] : "?";
}
const char *nops_synth_region_name(uint32_t r)
{
    return r < N_REGIONS ? region_names[r] : "?";
}

void nops_synth_host_name(const nops_synth_fleet *f, uint32_t h, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s-%03u", nops_synth_service_name(f->host_service[h]), (unsigned)h);
}

void nops_synth_fleet_opts_default(nops_synth_fleet_opts *o)
{
    memset(o, 0, sizeof *o);
    o->hosts = 100;
    o->ticks = 600;
    o->step_s = 10;
    o->start_ns = (EPOCH_S + 8 * 3600) * 1000000000ll;
    o->host_shifts = 12;
    o->spikes = 6;
    o->bursts = 1;
    o->service_shifts = 2;
    o->quiet_ticks = 200;
}

/* Per-host parameters of the base series. */
typedef struct host_par {
    double cpu, mem, disk, lat, err; /* levels (disk: start), err: Poisson mean */
} host_par;

#define AT(f, t, s) ((f)->v[(size_t)(t) * (f)->n_series + (s)])

static double wave(const nops_synth_fleet *f, uint32_t t)
{
    const double sec = (double)f->o.start_ns * 1e-9 + (double)t * f->o.step_s;
    return -cos(6.283185307179586 * (fmod(sec, 86400.0) / 86400.0 - 0.1));
}

static void base_series(nops_synth_fleet *f, synth_rng *r, const host_par *hp)
{
    for (uint32_t h = 0; h < f->o.hosts; h++) {
        const host_par *p = &hp[h];
        double mem_e = 0, disk = p->disk;
        const uint32_t s0 = h * NOPS_SYNTH_METRICS;
        for (uint32_t t = 0; t < f->o.ticks; t++) {
            const double w = wave(f, t);
            double cpu = p->cpu + 8 * w + 2 * synth_normal(r);
            AT(f, t, s0 + M_CPU) = (float)(cpu < 0 ? 0 : cpu > 100 ? 100 : cpu);
            mem_e = 0.8 * mem_e + 0.6 * 0.4 * synth_normal(r);
            AT(f, t, s0 + M_MEM) = (float)(p->mem + mem_e);
            disk += 0.001 + 0.03 * synth_normal(r);
            AT(f, t, s0 + M_DISK) = (float)disk;
            AT(f, t, s0 + M_LAT) =
                (float)(p->lat * (1 + 0.15 * w) + 0.04 * p->lat * synth_normal(r));
            AT(f, t, s0 + M_ERR) = (float)synth_poisson(r, p->err);
        }
    }
}

/* Size of a shift of metric m of a host, in the metric's units (≥ 10σ). */
static double shift_size(synth_rng *r, const host_par *p, uint32_t m)
{
    switch (m) {
    case M_CPU:
        return synth_range(r, 20, 35);
    case M_MEM:
        return synth_range(r, 5, 10);
    case M_LAT:
        return p->lat * synth_range(r, 0.5, 1.2);
    default:
        return p->err * synth_range(r, 3, 5); /* M_ERR: extra mean */
    }
}

/* Shift metric m of host h by `size` over steps [from, to]. */
static void apply_shift(nops_synth_fleet *f, synth_rng *r, uint32_t h, uint32_t m, double size,
                        uint32_t from, uint32_t to)
{
    const uint32_t s = h * NOPS_SYNTH_METRICS + m;
    for (uint32_t t = from; t <= to && t < f->o.ticks; t++)
        AT(f, t, s) += (float)(m == M_ERR ? (double)synth_poisson(r, size) : size);
}

/* A host no event took yet (of service `svc`, or any when svc < 0); UINT32_MAX if none. */
static uint32_t free_host(nops_synth_fleet *f, synth_rng *r, const bool *taken, int svc)
{
    for (int tries = 0; tries < 10000; tries++) {
        const uint32_t h = synth_below(r, f->o.hosts);
        if (!taken[h] && (svc < 0 || f->host_service[h] == (uint32_t)svc)) return h;
    }
    return UINT32_MAX;
}

/* Event k as a one-host event of `kind` on a free host; NULL when no host is left. */
static nops_synth_event *one_host_event(nops_synth_fleet *f, synth_rng *r, bool *taken, uint32_t k,
                                        const char *kind, nops_synth_event_class cls)
{
    nops_synth_event *e = &f->ev[k];
    snprintf(e->kind, sizeof e->kind, "%s", kind);
    e->cls = cls;
    const uint32_t h = free_host(f, r, taken, -1);
    if (h == UINT32_MAX) return NULL;
    taken[h] = true;
    e->hosts[0] = h;
    e->n_hosts = 1;
    e->service = f->host_service[h];
    return e;
}

static nops_err host_shift(nops_synth_fleet *f, synth_rng *r, const host_par *hp, bool *taken,
                           uint32_t k, uint32_t i, uint32_t span)
{
    const uint32_t T = f->o.ticks;
    nops_synth_event *e = one_host_event(f, r, taken, k, "host_shift", NOPS_SYNTH_EV_HOST);
    if (!e) return NOPS_INVAL;
    const uint32_t h = e->hosts[0];
    e->start = f->o.quiet_ticks + synth_below(r, span);
    const bool persist = i % 3 == 2;
    e->end = persist ? T - 1 : e->start + 30 + synth_below(r, 61);
    if (e->end >= T) e->end = T - 1;
    e->win_last = persist ? e->start + 30 : e->end + 6;
    static const uint32_t pool[4] = {M_CPU, M_MEM, M_LAT, M_ERR};
    e->metrics = 1u << (synth_unif(r) < 0.5 ? M_CPU : M_LAT);
    const uint32_t want = 2 + synth_below(r, 2);
    while ((uint32_t)__builtin_popcount(e->metrics) < want)
        e->metrics |= 1u << pool[synth_below(r, 4)];
    for (uint32_t m = 0; m < NOPS_SYNTH_METRICS; m++)
        if (e->metrics & (1u << m)) {
            const uint32_t lag = synth_below(r, 2);
            apply_shift(f, r, h, m, shift_size(r, &hp[h], m), e->start + lag, e->end);
        }
    return NOPS_OK;
}

static nops_err spike(nops_synth_fleet *f, synth_rng *r, const host_par *hp, bool *taken,
                      uint32_t k, uint32_t span)
{
    nops_synth_event *e = one_host_event(f, r, taken, k, "spike", NOPS_SYNTH_EV_SINGLE);
    if (!e) return NOPS_INVAL;
    const uint32_t h = e->hosts[0];
    e->start = e->end = f->o.quiet_ticks + synth_below(r, span);
    e->win_last = e->start + 6;
    static const uint32_t pool[3] = {M_CPU, M_MEM, M_LAT};
    const uint32_t m = pool[synth_below(r, 3)];
    e->metrics = 1u << m;
    const double sigma = m == M_CPU ? 2 : m == M_MEM ? 0.4 : 0.04 * hp[h].lat;
    apply_shift(f, r, h, m, synth_range(r, 8, 12) * sigma, e->start, e->start);
    return NOPS_OK;
}

static nops_err burst(nops_synth_fleet *f, synth_rng *r, const host_par *hp, bool *taken,
                      uint32_t k, uint32_t span)
{
    nops_synth_event *e = one_host_event(f, r, taken, k, "variance_burst", NOPS_SYNTH_EV_SINGLE);
    if (!e) return NOPS_INVAL;
    const uint32_t h = e->hosts[0];
    e->start = f->o.quiet_ticks + synth_below(r, span);
    e->end = e->start + 29;
    e->win_last = e->start + 30;
    e->metrics = 1u << M_LAT;
    const uint32_t s = h * NOPS_SYNTH_METRICS + M_LAT;
    const double extra = 0.04 * hp[h].lat * sqrt(6.0 * 6.0 - 1.0); /* σ ×6 in all */
    for (uint32_t t = e->start; t <= e->end; t++)
        AT(f, t, s) += (float)(extra * synth_normal(r));
    return NOPS_OK;
}

static nops_err service_shift(nops_synth_fleet *f, synth_rng *r, const host_par *hp, bool *taken,
                              uint32_t k, uint32_t span)
{
    nops_synth_event *e = &f->ev[k];
    snprintf(e->kind, sizeof e->kind, "service_shift");
    e->cls = NOPS_SYNTH_EV_SERVICE;
    e->service = synth_below(r, N_SERVICES);
    e->start = f->o.quiet_ticks + synth_below(r, span);
    e->end = e->start + 39;
    e->win_last = e->end + 6;
    e->metrics = (1u << M_LAT) | (1u << M_ERR);
    for (uint32_t j = 0; j < 4; j++) {
        const uint32_t h = free_host(f, r, taken, (int)e->service);
        if (h == UINT32_MAX) return NOPS_INVAL;
        taken[h] = true;
        e->hosts[e->n_hosts++] = h;
        const uint32_t lag = synth_below(r, 3);
        apply_shift(f, r, h, M_LAT, hp[h].lat * synth_range(r, 0.5, 0.8), e->start + lag, e->end);
        apply_shift(f, r, h, M_ERR, hp[h].err * synth_range(r, 3, 5), e->start + lag, e->end);
    }
    return NOPS_OK;
}

/* All events, in a fixed order of kinds (the draws, hence the data, depend on it). */
static nops_err inject(nops_synth_fleet *f, synth_rng *r, const host_par *hp, bool *taken)
{
    const nops_synth_fleet_opts *o = &f->o;
    const uint32_t span = o->ticks - 40 - o->quiet_ticks;
    uint32_t k = 0;
    nops_err e = NOPS_OK;
    for (uint32_t i = 0; e == NOPS_OK && i < o->host_shifts; i++)
        e = host_shift(f, r, hp, taken, k++, i, span);
    for (uint32_t i = 0; e == NOPS_OK && i < o->spikes; i++)
        e = spike(f, r, hp, taken, k++, span);
    for (uint32_t i = 0; e == NOPS_OK && i < o->bursts; i++)
        e = burst(f, r, hp, taken, k++, span);
    for (uint32_t i = 0; e == NOPS_OK && i < o->service_shifts; i++)
        e = service_shift(f, r, hp, taken, k++, span);
    for (uint32_t i = 0; i < f->n_ev; i++)
        if (f->ev[i].win_last >= o->ticks) f->ev[i].win_last = o->ticks - 1;
    return e;
}

static int by_start(const void *a, const void *b)
{
    const nops_synth_event *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

nops_err nops_synth_fleet_new(const nops_synth_fleet_opts *o, uint64_t seed, nops_synth_fleet **out)
{
    *out = NULL;
    const uint32_t need = o->host_shifts + o->spikes + o->bursts + 4 * o->service_shifts;
    if (o->hosts < 2 * N_SERVICES || need * 2 > o->hosts || o->step_s == 0 ||
        o->ticks < o->quiet_ticks + 80 || o->ticks > 10000000 || o->hosts > 1000000)
        return NOPS_INVAL;
    nops_synth_fleet *f = nops_calloc(1, sizeof *f);
    if (!f) return NOPS_NOMEM;
    f->o = *o;
    f->n_series = o->hosts * NOPS_SYNTH_METRICS;
    f->n_ev = o->host_shifts + o->spikes + o->bursts + o->service_shifts;
    f->v = nops_malloc((size_t)o->ticks * f->n_series * sizeof *f->v);
    f->host_service = nops_malloc(o->hosts * sizeof *f->host_service);
    f->host_region = nops_malloc(o->hosts * sizeof *f->host_region);
    f->series_host = nops_malloc(f->n_series * sizeof *f->series_host);
    f->ev = nops_calloc(f->n_ev ? f->n_ev : 1, sizeof *f->ev);
    host_par *hp = nops_malloc(o->hosts * sizeof *hp);
    bool *taken = nops_calloc(o->hosts, sizeof *taken);
    nops_err err = NOPS_NOMEM;
    if (!f->v || !f->host_service || !f->host_region || !f->series_host || !f->ev || !hp || !taken)
        goto fail;
    synth_rng r;
    synth_rng_seed(&r, seed);
    for (uint32_t h = 0; h < o->hosts; h++) {
        f->host_service[h] = h % N_SERVICES;
        f->host_region[h] = (h / N_SERVICES) % N_REGIONS;
        hp[h] =
            (host_par){synth_range(&r, 20, 40), synth_range(&r, 40, 70), synth_range(&r, 30, 70),
                       synth_range(&r, 80, 160), synth_range(&r, 3, 8)};
        for (uint32_t m = 0; m < NOPS_SYNTH_METRICS; m++)
            f->series_host[h * NOPS_SYNTH_METRICS + m] = h;
    }
    base_series(f, &r, hp);
    if ((err = inject(f, &r, hp, taken)) != NOPS_OK) goto fail;
    qsort(f->ev, f->n_ev, sizeof *f->ev, by_start);
    nops_free(hp);
    nops_free(taken);
    *out = f;
    return NOPS_OK;
fail:
    nops_free(hp);
    nops_free(taken);
    nops_synth_fleet_destroy(f);
    return err;
}

void nops_synth_fleet_destroy(nops_synth_fleet *f)
{
    if (!f) return;
    nops_free(f->v);
    nops_free(f->host_service);
    nops_free(f->host_region);
    nops_free(f->series_host);
    nops_free(f->ev);
    nops_free(f);
}

void nops_synth_fleet_truth(const nops_synth_fleet *f, nops_synth_event_truth *out)
{
    for (uint32_t i = 0; i < f->n_ev; i++) {
        const nops_synth_event *e = &f->ev[i];
        nops_synth_event_truth *t = &out[i];
        memset(t, 0, sizeof *t);
        t->cls = e->cls;
        t->first = e->start;
        t->last = e->win_last;
        for (uint32_t j = 0; j < e->n_hosts; j++)
            for (uint32_t m = 0; m < NOPS_SYNTH_METRICS; m++)
                if ((e->metrics & (1u << m)) && t->n_series < NOPS_SYNTH_EVENT_SERIES)
                    t->series[t->n_series++] = e->hosts[j] * NOPS_SYNTH_METRICS + m;
    }
}
