/*
 * quality.c — the runner of quality.h.
 *
 * Corpus: one detector holds every series of the corpus (one slot each); each series is fed
 * in order, in chunks, through nops_detect_update_pairs; the points where a series fires are
 * its detections, scored per NAB profile.
 *
 * Fleet: one detector holds the fleet's series in slot order; each step is one
 * nops_detect_update_range over all of them (the layout of a scrape). Each FIRED point becomes
 * a nops_signal as the ingest pipeline builds it (key, series id, value, z values, score) and
 * goes to the correlator with the series' window as of that point; CLEARED points are passed
 * on and the correlator is ticked every step in data time. The incident each signal lands in
 * is told apart by incident id (a small hash table from id to index), so the scorer sees, per
 * signal, its series, its step and its incident.
 *
 * The baselines are written here as references, a few lines each (see quality.h).
 */
#include "synth/quality.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define CHUNK 1024
#define BASE_WARM 60 /* windowed Gaussian: verdicts from this many points */

nops_err nops_synth_engine_defaults(nops_detect_params *dp, nops_correlate_params *cp, char *errstr,
                                    size_t errstr_size)
{
    nops_cfg *cfg = nops_cfg_new();
    if (!cfg) {
        nops_errf(errstr, errstr_size, "out of memory");
        return NOPS_NOMEM;
    }
    nops_err e = nops_cfg_add(cfg, &nops_detect_cfg_section, dp, errstr, errstr_size);
    if (e == NOPS_OK) e = nops_cfg_add(cfg, &nops_correlate_cfg_section, cp, errstr, errstr_size);
    nops_cfg_destroy(cfg);
    return e;
}

/* ---- baselines ----------------------------------------------------------------------------- */

typedef struct base_state {
    float *ring;      /* last W values, centred on `origin` */
    uint32_t W;       /* window */
    uint32_t count;   /* values held (≤ W) */
    uint32_t head;    /* next slot to write */
    double sum, sum2; /* of the held (centred) values */
    double origin;    /* first value seen: keeps the sums small */
    bool started;     /* origin set */
    bool above;       /* in a run over the threshold */
} base_state;

/* |z| of x against the window, 0 while not warm; then x enters the window. */
static double base_step(base_state *b, double x, uint32_t warm)
{
    if (!b->started) {
        b->origin = x;
        b->started = true;
    }
    const double c = x - b->origin;
    double z = 0;
    if (b->count >= warm && b->count > 0) {
        const double mean = b->sum / b->count;
        double var = b->sum2 / b->count - mean * mean;
        const double sd = var > 0 ? sqrt(var) : 0;
        if (sd > 1e-9 * (1 + fabs(mean + b->origin)))
            z = fabs(c - mean) / sd;
        else
            z = fabs(c - mean) > 1e-9 * (1 + fabs(x)) ? 1e6 : 0; /* a flat window: any move */
    }
    if (b->count == b->W) {
        const double old = b->ring[b->head];
        b->sum -= old;
        b->sum2 -= old * old;
    } else {
        b->count++;
    }
    b->ring[b->head] = (float)c;
    b->sum += (float)c;
    b->sum2 += (double)(float)c * (float)c;
    b->head = b->head + 1 == b->W ? 0 : b->head + 1;
    return z;
}

static uint32_t base_warm(const nops_synth_run_opts *o)
{
    if (o->det == NOPS_SYNTH_ROLLING_Z) return o->window;
    return o->window < BASE_WARM ? o->window : BASE_WARM;
}

/* ---- corpus ------------------------------------------------------------------------------- */

static nops_err corpus_engine(const nops_synth_corpus *c, const nops_detect_params *dp,
                              uint32_t **det, size_t *nd, char *errstr, size_t errstr_size)
{
    nops_detector *d = nops_detect_new(dp, c->n, errstr, errstr_size);
    if (!d) return NOPS_NOMEM;
    float z[CHUNK], ze[CHUNK];
    uint8_t flags[CHUNK];
    uint32_t slots[CHUNK];
    nops_detect_out out = {z, ze, flags, NULL};
    nops_err e = NOPS_OK;
    for (uint32_t i = 0; i < c->n && e == NOPS_OK; i++) {
        const nops_synth_series *s = &c->s[i];
        uint32_t slot;
        const uint64_t id = nops_detect_key_id(s->name, strlen(s->name));
        if ((e = nops_detect_slot(d, id, s->name, strlen(s->name), 0, &slot)) != NOPS_OK) break;
        const uint32_t per = nops_detect_season_for_step(nops_detect_get_params(d), s->step_s);
        if (per && (e = nops_detect_set_season(d, slot, per)) != NOPS_OK) break;
        for (uint32_t k = 0; k < CHUNK; k++)
            slots[k] = slot;
        nd[i] = 0;
        for (uint32_t at = 0; at < s->n && e == NOPS_OK; at += CHUNK) {
            const uint32_t n = s->n - at < CHUNK ? s->n - at : CHUNK;
            if ((e = nops_detect_update_pairs(d, slots, s->v + at, n, &out)) != NOPS_OK) break;
            for (uint32_t k = 0; k < n; k++)
                if (flags[k] & NOPS_DETECT_FIRED) det[i][nd[i]++] = at + k;
        }
    }
    if (e != NOPS_OK) nops_errf(errstr, errstr_size, "detector: %s", nops_strerror(e));
    nops_detect_destroy(d);
    return e;
}

static nops_err corpus_baseline(const nops_synth_corpus *c, const nops_synth_run_opts *o,
                                uint32_t **det, size_t *nd)
{
    base_state b = {.W = o->window};
    b.ring = nops_malloc(o->window * sizeof *b.ring);
    if (!b.ring) return NOPS_NOMEM;
    const uint32_t warm = base_warm(o);
    for (uint32_t i = 0; i < c->n; i++) {
        const nops_synth_series *s = &c->s[i];
        b.count = b.head = 0;
        b.sum = b.sum2 = 0;
        b.started = b.above = false;
        nd[i] = 0;
        for (uint32_t k = 0; k < s->n; k++) {
            const bool over = base_step(&b, s->v[k], warm) >= o->threshold;
            if (over && !b.above) det[i][nd[i]++] = k;
            b.above = over;
        }
    }
    nops_free(b.ring);
    return NOPS_OK;
}

nops_err nops_synth_run_corpus(const nops_synth_corpus *c, const nops_synth_run_opts *o,
                               nops_synth_corpus_figures *fig, char *errstr, size_t errstr_size)
{
    memset(fig, 0, sizeof *fig);
    if (o->det != NOPS_SYNTH_ENGINE && (o->window < 2 || o->threshold <= 0)) {
        nops_errf(errstr, errstr_size, "a baseline needs a window of 2 or more and a threshold");
        return NOPS_INVAL;
    }
    nops_detect_params dp;
    nops_correlate_params cp;
    nops_err e = NOPS_OK;
    if (!o->dp && (e = nops_synth_engine_defaults(&dp, &cp, errstr, errstr_size)) != NOPS_OK)
        return e;
    uint32_t **det = nops_calloc(c->n, sizeof *det);
    size_t *nd = nops_calloc(c->n, sizeof *nd);
    if (!det || !nd) e = NOPS_NOMEM;
    for (uint32_t i = 0; e == NOPS_OK && i < c->n; i++)
        if (!(det[i] = nops_malloc(c->s[i].n * sizeof **det))) e = NOPS_NOMEM;
    if (e == NOPS_OK)
        e = o->det == NOPS_SYNTH_ENGINE
                ? corpus_engine(c, o->dp ? o->dp : &dp, det, nd, errstr, errstr_size)
                : corpus_baseline(c, o, det, nd);
    for (uint32_t i = 0; e == NOPS_OK && i < c->n; i++) {
        const nops_synth_series *s = &c->s[i];
        fig->detections += nd[i];
        for (int p = 0; p < NOPS_SYNTH_NAB_PROFILES && e == NOPS_OK; p++)
            e = nops_synth_nab_score(&nops_synth_nab_profiles[p], s->n, s->win, s->n_win, det[i],
                                     nd[i], s->probation, &fig->tally[p]);
        if (e == NOPS_OK && s->kind_id < NOPS_SYNTH_KINDS)
            e = nops_synth_nab_score(&nops_synth_nab_profiles[0], s->n, s->win, s->n_win, det[i],
                                     nd[i], s->probation, &fig->kind[s->kind_id]);
    }
    for (int p = 0; e == NOPS_OK && p < NOPS_SYNTH_NAB_PROFILES; p++)
        fig->score[p] = nops_synth_nab_normalised(&nops_synth_nab_profiles[p], &fig->tally[p]);
    if (e == NOPS_NOMEM) nops_errf(errstr, errstr_size, "out of memory");
    for (uint32_t i = 0; det && i < c->n; i++)
        nops_free(det[i]);
    nops_free(det);
    nops_free(nd);
    return e;
}

/* ---- fleet -------------------------------------------------------------------------------- */

/* Incident ids → dense indices (open addressing, FNV-1a of the id). */
typedef struct inc_map {
    char (*ids)[NOPS_ID_LEN]; /* slot → id ("" = empty) */
    int32_t *idx;             /* slot → index */
    uint32_t cap;             /* slots (a power of two) */
    uint32_t n;               /* indices handed out */
} inc_map;

static nops_err inc_map_grow(inc_map *m)
{
    inc_map g = {0};
    g.cap = m->cap ? m->cap * 2 : 1024;
    g.ids = nops_calloc(g.cap, sizeof *g.ids);
    g.idx = nops_malloc(g.cap * sizeof *g.idx);
    if (!g.ids || !g.idx) {
        nops_free(g.ids);
        nops_free(g.idx);
        return NOPS_NOMEM;
    }
    g.n = m->n;
    for (uint32_t i = 0; i < m->cap; i++) {
        if (!m->ids[i][0]) continue;
        uint32_t h = 2166136261u;
        for (const char *p = m->ids[i]; *p; p++)
            h = (h ^ (uint8_t)*p) * 16777619u;
        uint32_t j = h & (g.cap - 1);
        while (g.ids[j][0])
            j = (j + 1) & (g.cap - 1);
        memcpy(g.ids[j], m->ids[i], NOPS_ID_LEN);
        g.idx[j] = m->idx[i];
    }
    nops_free(m->ids);
    nops_free(m->idx);
    *m = g;
    return NOPS_OK;
}

/* Index of incident `id`, a new one if unseen; −1 when memory is refused. */
static int32_t inc_map_get(inc_map *m, const char *id)
{
    if ((m->n + 1) * 2 > m->cap && inc_map_grow(m) != NOPS_OK) return -1;
    uint32_t h = 2166136261u;
    for (const char *p = id; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    uint32_t j = h & (m->cap - 1);
    while (m->ids[j][0]) {
        if (strcmp(m->ids[j], id) == 0) return m->idx[j];
        j = (j + 1) & (m->cap - 1);
    }
    snprintf(m->ids[j], NOPS_ID_LEN, "%s", id);
    m->idx[j] = (int32_t)m->n++;
    return m->idx[j];
}

/* Everything one fleet run holds. */
typedef struct fleet_run {
    const nops_synth_fleet *f;
    const nops_synth_run_opts *o;
    const nops_detect_params *dp;
    nops_correlator *corr;
    nops_detector *det;      /* engine only */
    char (*keys)[192];       /* canonical key per series */
    uint64_t *ids;           /* series id per series */
    nops_synth_detection *d; /* signals so far */
    size_t nd, cap;
    inc_map incs;
    uint64_t refused;
    float win[NOPS_DETECT_MAX_WINDOW];
} fleet_run;

static int64_t tick_ns(const nops_synth_fleet *f, uint32_t t)
{
    return f->o.start_ns + (int64_t)t * f->o.step_s * 1000000000ll;
}

/* Build series keys the way the ingest path does: name{host,region,service}. */
static nops_err fleet_keys(fleet_run *r)
{
    const nops_synth_fleet *f = r->f;
    for (uint32_t s = 0; s < f->n_series; s++) {
        const uint32_t h = f->series_host[s];
        char host[48];
        nops_synth_host_name(f, h, host, sizeof host);
        const char *svc = nops_synth_service_name(f->host_service[h]);
        const char *reg = nops_synth_region_name(f->host_region[h]);
        nops_label l[3] = {{"host", 4, host, strlen(host)},
                           {"service", 7, svc, strlen(svc)},
                           {"region", 6, reg, strlen(reg)}};
        const char *name = nops_synth_metric_name(s % NOPS_SYNTH_METRICS);
        size_t len;
        nops_err e = nops_detect_series_key(name, strlen(name), l, 3, r->keys[s], sizeof r->keys[s],
                                            &len, &r->ids[s]);
        if (e != NOPS_OK) return e;
    }
    return NOPS_OK;
}

/* One signal of series s at step t: to the correlator, and noted for the scorer. */
static nops_err fleet_signal(fleet_run *r, uint32_t s, uint32_t t, double value, float z, float ze,
                             double ratio, const float *win, uint32_t nw)
{
    if (r->nd == r->cap) {
        const size_t cap = r->cap ? r->cap * 2 : 4096;
        nops_synth_detection *d = nops_realloc(r->d, cap * sizeof *d);
        if (!d) return NOPS_NOMEM;
        r->d = d;
        r->cap = cap;
    }
    nops_signal sig;
    memset(&sig, 0, sizeof sig);
    (void)nops_signal_set_series(&sig, r->keys[s]); /* the key and its label pairs */
    sig.series_id = r->ids[s];
    sig.ts_ns = tick_ns(r->f, t);
    uint64_t h = r->ids[s] ^ ((uint64_t)sig.ts_ns * 0x9E3779B97F4A7C15ull);
    h ^= h >> 29;
    snprintf(sig.id, sizeof sig.id, "%016llx", (unsigned long long)h);
    sig.value = value;
    sig.zscore = z;
    sig.ewma = ze;
    sig.method = fabsf(z) >= fabsf(ze) ? NOPS_FIRED_ZSCORE : NOPS_FIRED_EWMA;
    sig.score = nops_detect_score(ratio);
    snprintf(sig.hint, sizeof sig.hint, "%s: |z| %.1f", r->keys[s], (double)fabsf(z));
    nops_incident inc;
    bool opened = false;
    int32_t idx = -1;
    if (nops_correlate_signal(r->corr, &sig, -1, win, nw, &inc, &opened) == NOPS_OK) {
        if ((idx = inc_map_get(&r->incs, inc.id)) < 0) return NOPS_NOMEM;
    } else {
        r->refused++;
    }
    r->d[r->nd++] = (nops_synth_detection){s, t, idx};
    return NOPS_OK;
}

/* The last nw ≤ W values of series s up to step t, oldest first, from the fleet itself. */
static uint32_t fleet_window(const nops_synth_fleet *f, uint32_t s, uint32_t t, uint32_t W,
                             float *out)
{
    const uint32_t from = t + 1 >= W ? t + 1 - W : 0;
    for (uint32_t k = from; k <= t; k++)
        out[k - from] = f->v[(size_t)k * f->n_series + s];
    return t + 1 - from;
}

static nops_err fleet_engine(fleet_run *r, char *errstr, size_t errstr_size)
{
    const nops_synth_fleet *f = r->f;
    r->det = nops_detect_new(r->dp, f->n_series, errstr, errstr_size);
    float *z = nops_malloc(f->n_series * sizeof *z), *ze = nops_malloc(f->n_series * sizeof *ze);
    uint8_t *flags = nops_malloc(f->n_series);
    nops_err e = r->det && z && ze && flags ? NOPS_OK : NOPS_NOMEM;
    for (uint32_t s = 0; e == NOPS_OK && s < f->n_series; s++) {
        uint32_t slot;
        e = nops_detect_slot(r->det, r->ids[s], r->keys[s], strlen(r->keys[s]), 0, &slot);
        if (e == NOPS_OK && slot != s)
            e = NOPS_INTERNAL; /* slots are dense from 0 in a fresh detector */
    }
    const nops_detect_out out = {z, ze, flags, NULL};
    nops_incident done[16];
    for (uint32_t t = 0; e == NOPS_OK && t < f->o.ticks; t++) {
        const int64_t ts = tick_ns(f, t);
        const float *row = f->v + (size_t)t * f->n_series;
        if ((e = nops_detect_update_range(r->det, 0, f->n_series, row, &out)) != NOPS_OK) break;
        for (uint32_t s = 0; s < f->n_series && e == NOPS_OK; s++) {
            if (flags[s] & NOPS_DETECT_CLEARED) nops_correlate_cleared(r->corr, r->ids[s], ts);
            if (!(flags[s] & NOPS_DETECT_FIRED)) continue;
            uint32_t nw = nops_detect_slot_window(r->det, s, r->win, NOPS_DETECT_MAX_WINDOW);
            if (nw == 0) /* a detector without a window: the fleet's own recent values */
                nw = fleet_window(f, s, t, (uint32_t)r->dp->window, r->win);
            e = fleet_signal(r, s, t, row[s], z[s], ze[s], nops_detect_ratio(r->dp, z[s], ze[s]),
                             r->win, nw);
        }
        while (nops_correlate_tick(r->corr, ts, done, 16) > 0) {
        }
    }
    if (e != NOPS_OK && !(errstr && *errstr))
        nops_errf(errstr, errstr_size, "engine run: %s", nops_strerror(e));
    nops_free(z);
    nops_free(ze);
    nops_free(flags);
    return e;
}

static nops_err fleet_baseline(fleet_run *r)
{
    const nops_synth_fleet *f = r->f;
    const nops_synth_run_opts *o = r->o;
    base_state *b = nops_calloc(f->n_series, sizeof *b);
    float *rings = nops_malloc((size_t)f->n_series * o->window * sizeof *rings);
    nops_err e = b && rings ? NOPS_OK : NOPS_NOMEM;
    for (uint32_t s = 0; e == NOPS_OK && s < f->n_series; s++) {
        b[s].W = o->window;
        b[s].ring = rings + (size_t)s * o->window;
    }
    const uint32_t warm = base_warm(o), W = (uint32_t)r->dp->window;
    nops_incident done[16];
    for (uint32_t t = 0; e == NOPS_OK && t < f->o.ticks; t++) {
        const int64_t ts = tick_ns(f, t);
        const float *row = f->v + (size_t)t * f->n_series;
        for (uint32_t s = 0; s < f->n_series && e == NOPS_OK; s++) {
            const double z = base_step(&b[s], row[s], warm);
            const bool over = z >= o->threshold;
            if (over && !b[s].above) {
                const uint32_t nw = fleet_window(f, s, t, W, r->win);
                e = fleet_signal(r, s, t, row[s], (float)z, 0, z / o->threshold, r->win, nw);
            } else if (!over && b[s].above) {
                nops_correlate_cleared(r->corr, r->ids[s], ts);
            }
            b[s].above = over;
        }
        while (nops_correlate_tick(r->corr, ts, done, 16) > 0) {
        }
    }
    nops_free(rings);
    nops_free(b);
    return e;
}

nops_err nops_synth_run_fleet(const nops_synth_fleet *f, const nops_synth_run_opts *o,
                              nops_synth_fleet_figures *fig, char *errstr, size_t errstr_size)
{
    memset(fig, 0, sizeof *fig);
    if (o->det != NOPS_SYNTH_ENGINE && (o->window < 2 || o->threshold <= 0)) {
        nops_errf(errstr, errstr_size, "a baseline needs a window of 2 or more and a threshold");
        return NOPS_INVAL;
    }
    nops_detect_params dp;
    nops_correlate_params cp;
    nops_err e = nops_synth_engine_defaults(&dp, &cp, errstr, errstr_size);
    if (e != NOPS_OK) return e;
    fleet_run r = {.f = f, .o = o, .dp = o->dp ? o->dp : &dp};
    r.keys = nops_malloc(f->n_series * sizeof *r.keys);
    r.ids = nops_malloc(f->n_series * sizeof *r.ids);
    nops_synth_event_truth *truth = nops_malloc((f->n_ev ? f->n_ev : 1) * sizeof *truth);
    if (!r.keys || !r.ids || !truth) {
        e = NOPS_NOMEM;
        nops_errf(errstr, errstr_size, "out of memory");
        goto out;
    }
    if ((e = fleet_keys(&r)) != NOPS_OK) {
        nops_errf(errstr, errstr_size, "series key: %s", nops_strerror(e));
        goto out;
    }
    r.corr = nops_correlate_new(o->cp ? o->cp : &cp, (uint32_t)r.dp->window, errstr, errstr_size);
    if (!r.corr) {
        e = NOPS_CONFIG;
        goto out;
    }
    e = o->det == NOPS_SYNTH_ENGINE ? fleet_engine(&r, errstr, errstr_size) : fleet_baseline(&r);
    if (e != NOPS_OK) goto out;
    nops_synth_fleet_truth(f, truth);
    fig->points = (uint64_t)f->o.ticks * f->n_series;
    fig->correlate_refused = r.refused;
    e = nops_synth_event_score(truth, f->n_ev, f->series_host, f->n_series, fig->points, r.d, r.nd,
                               r.incs.n, &fig->ev);
    for (uint32_t i = 0; e == NOPS_OK && i < f->n_ev && i < NOPS_SYNTH_MAX_OUTCOMES; i++)
        e = nops_synth_event_outcome_of(truth, f->n_ev, i, f->series_host, f->n_series, r.d, r.nd,
                                        &fig->outcome[i]);
    for (size_t j = 0; e == NOPS_OK && j < r.nd; j++)
        if (nops_synth_event_match(truth, f->n_ev, &r.d[j]) < 0) {
            fig->false_by_metric[r.d[j].series % NOPS_SYNTH_METRICS]++;
            fig->false_early += r.d[j].tick < 100;
        }
    if (e != NOPS_OK) nops_errf(errstr, errstr_size, "scoring: %s", nops_strerror(e));
out:
    nops_detect_destroy(r.det);
    nops_correlate_destroy(r.corr);
    nops_free(r.keys);
    nops_free(r.ids);
    nops_free(r.d);
    nops_free(r.incs.ids);
    nops_free(r.incs.idx);
    nops_free(truth);
    return e;
}
