/*
 * corpus.c — the labelled series of corpus.h.
 *
 * Every series has 4,032 points (14 days at 5 min, 2.8 days at 1 min, 11 h at 10 s) and 1 or
 * 2 labelled anomalies placed after NAB's probationary stretch (min(15 %, 750) points). A
 * window starts at the anomaly's first point (the generator knows the onset exactly, so there
 * is no lead-in as in NAB's centred windows) and lasts max(the anomaly's duration, n/(20·k))
 * points, k the series' anomalies: 100 points for two, 201 for one. Things that look unusual
 * but are normal for the series are not labelled: seasonal swings, weekends, slow drift,
 * one-quantum blips on a flat line, heavy-tailed noise, sampling gaps.
 *
 * The kinds (σ is the noise scale of the series):
 *   seasonal_spike  5 min step, daily (288 points) and weekly cycle, AR(1) noise; two spikes
 *                   of 6–10σ.
 *   seasonal_shift  1 min step, daily cycle (1,440 points); a persistent shift of 6–9σ.
 *   drift_jump      1 min step, a slow linear drift of 10–20σ over the series; a persistent
 *                   jump of 6–9σ either way.
 *   counter         1 min step, Poisson counts (mean 2–6, ±50 % daily); two bursts (mean ×5–8,
 *                   10–20 points).
 *   flat_spike      10 s step, a flat line at 1,024 with rare one-quantum blips; a spike of
 *                   12–25 quanta, then a persistent step of 4–8 quanta.
 *   heavy_tail      1 min step, Student-t (3 degrees of freedom) noise; a spike of 20–30σ and
 *                   a persistent shift of 8–12σ.
 *   irregular       ~1 min step jittered ±40 % with occasional gaps of 5–60 steps, daily cycle;
 *                   a persistent drop of 7–10σ and a variance burst (σ ×5–7, 40 points).
 *   variance_burst  10 s step, AR(1) noise; σ ×5–8 for 40 points.
 *   seasonal_stuck  5 min step, daily cycle (288 points) of 8–12σ, AR(1) noise; once, from
 *                   the day's peak, the series stops following the wave and holds its daytime
 *                   level for 5–8 h (60–96 points): no jump, a deviation that only stands out
 *                   against the season (a night-time value at daytime level), up to ~2A.
 */
#include "synth/corpus.h"
#include "synth/rng_int.h"

#include <stdio.h>
#include <string.h>

#define N_POINTS 4032
#define EPOCH_S 1767571200ll /* Monday 2026-01-05 00:00 UTC */
#define DAY_S 86400.0
#define TWO_PI 6.283185307179586

static const char *kind_names[NOPS_SYNTH_KINDS] = {
    "seasonal_spike", "seasonal_shift", "drift_jump", "counter",
    "flat_spike",     "heavy_tail",     "irregular",  "variance_burst",
    "seasonal_stuck",
};

const char *nops_synth_kind_name(int k)
{
    return k >= 0 && k < NOPS_SYNTH_KINDS ? kind_names[k] : "?";
}

/* Regular timestamps at step_s. */
static void regular_ts(nops_synth_series *s)
{
    for (uint32_t i = 0; i < s->n; i++)
        s->ts_ns[i] = (EPOCH_S + (int64_t)i * s->step_s) * 1000000000ll;
}

/* Daily wave (cos peaking mid-afternoon) at data time t_ns, amplitude 1. */
static double daily(int64_t t_ns)
{
    const double t = (double)t_ns * 1e-9;
    return -cos(TWO_PI * (fmod(t, DAY_S) / DAY_S - 0.1));
}

/* 1 on weekend days (Saturday, Sunday; the epoch is a Monday), else 0. */
static double weekend(int64_t t_ns)
{
    const int64_t day = (t_ns / 1000000000ll - EPOCH_S) / 86400;
    return (day % 7) >= 5 ? 1.0 : 0.0;
}

/* Onsets of k anomalies (1 or 2), spread over the scored part of the series. */
static void onsets(synth_rng *r, uint32_t n, uint32_t k, uint32_t *at)
{
    if (k == 1) {
        at[0] = (uint32_t)(n * synth_range(r, 0.45, 0.8));
    } else {
        at[0] = (uint32_t)(n * synth_range(r, 0.25, 0.45));
        at[1] = (uint32_t)(n * synth_range(r, 0.6, 0.85));
    }
}

/* Label the window of an anomaly starting at `at` lasting `dur` points (k in the series). */
static void label(nops_synth_series *s, uint32_t at, uint32_t dur, uint32_t k)
{
    uint32_t wl = s->n / (20 * k);
    if (dur > wl) wl = dur;
    uint32_t last = at + wl - 1;
    if (last >= s->n) last = s->n - 1;
    s->win[s->n_win].first = at;
    s->win[s->n_win].last = last;
    s->n_win++;
}

/* AR(1) noise with stationary standard deviation sigma, phi in [0, 1). */
typedef struct ar1 {
    double e, phi, sigma;
} ar1;

static double ar1_next(ar1 *a, synth_rng *r)
{
    a->e = a->phi * a->e + sqrt(1.0 - a->phi * a->phi) * a->sigma * synth_normal(r);
    return a->e;
}

static void gen_seasonal_spike(synth_rng *r, nops_synth_series *s)
{
    s->step_s = 300;
    regular_ts(s);
    const double L = 100, sig = 2, A = synth_range(r, 6, 12) * sig;
    ar1 a = {0, 0.5, sig};
    uint32_t at[2];
    onsets(r, s->n, 2, at);
    for (uint32_t i = 0; i < s->n; i++)
        s->v[i] = (float)(L + A * daily(s->ts_ns[i]) * (1 - 0.4 * weekend(s->ts_ns[i])) -
                          0.3 * A * weekend(s->ts_ns[i]) + ar1_next(&a, r));
    for (int j = 0; j < 2; j++) {
        s->v[at[j]] += (float)(synth_range(r, 6, 10) * sig);
        label(s, at[j], 1, 2);
    }
}

static void gen_seasonal_shift(synth_rng *r, nops_synth_series *s)
{
    s->step_s = 60;
    regular_ts(s);
    const double L = 50, sig = 1.5, A = synth_range(r, 4, 8) * sig;
    const double shift = synth_range(r, 6, 9) * sig;
    ar1 a = {0, 0.5, sig};
    uint32_t at[1];
    onsets(r, s->n, 1, at);
    for (uint32_t i = 0; i < s->n; i++)
        s->v[i] = (float)(L + A * daily(s->ts_ns[i]) + ar1_next(&a, r) + (i >= at[0] ? shift : 0));
    label(s, at[0], 1, 1);
}

static void gen_drift_jump(synth_rng *r, nops_synth_series *s)
{
    s->step_s = 60;
    regular_ts(s);
    const double L = 200, sig = 3;
    const double drift = synth_range(r, 10, 20) * sig * (synth_unif(r) < 0.5 ? -1 : 1);
    const double jump = synth_range(r, 6, 9) * sig * (synth_unif(r) < 0.5 ? -1 : 1);
    uint32_t at[1];
    onsets(r, s->n, 1, at);
    for (uint32_t i = 0; i < s->n; i++)
        s->v[i] = (float)(L + drift * i / s->n + sig * synth_normal(r) + (i >= at[0] ? jump : 0));
    label(s, at[0], 1, 1);
}

static void gen_counter(synth_rng *r, nops_synth_series *s)
{
    s->step_s = 60;
    regular_ts(s);
    const double lambda0 = synth_range(r, 2, 6);
    uint32_t at[2], dur[2];
    double mult[2];
    onsets(r, s->n, 2, at);
    for (int j = 0; j < 2; j++) {
        dur[j] = 10 + synth_below(r, 11);
        mult[j] = synth_range(r, 5, 8);
    }
    for (uint32_t i = 0; i < s->n; i++) {
        double lambda = lambda0 * (1 + 0.5 * daily(s->ts_ns[i]));
        for (int j = 0; j < 2; j++)
            if (i >= at[j] && i < at[j] + dur[j]) lambda *= mult[j];
        s->v[i] = (float)synth_poisson(r, lambda);
    }
    for (int j = 0; j < 2; j++)
        label(s, at[j], dur[j], 2);
}

static void gen_flat_spike(synth_rng *r, nops_synth_series *s)
{
    s->step_s = 10;
    regular_ts(s);
    const double v0 = 1024;
    uint32_t at[2];
    onsets(r, s->n, 2, at);
    const double spike = (double)(12 + synth_below(r, 14)), step = (double)(4 + synth_below(r, 5));
    uint32_t blip_until = 0;
    double blip = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        if (i >= blip_until && synth_unif(r) < 1.0 / 400) { /* a one-quantum blip, 1–3 points */
            blip_until = i + 1 + synth_below(r, 3);
            blip = synth_unif(r) < 0.5 ? -1 : 1;
        }
        double x = v0 + (i < blip_until ? blip : 0) + (i >= at[1] ? step : 0);
        if (i == at[0]) x = v0 + spike;
        s->v[i] = (float)x;
    }
    label(s, at[0], 1, 2);
    label(s, at[1], 1, 2);
}

static void gen_heavy_tail(synth_rng *r, nops_synth_series *s)
{
    s->step_s = 60;
    regular_ts(s);
    const double L = 500, sig = 5;
    uint32_t at[2];
    onsets(r, s->n, 2, at);
    const double spike = synth_range(r, 20, 30) * sig, shift = synth_range(r, 8, 12) * sig;
    for (uint32_t i = 0; i < s->n; i++)
        s->v[i] = (float)(L + sig * synth_student(r, 3) + (i >= at[1] ? shift : 0) +
                          (i == at[0] ? spike : 0));
    label(s, at[0], 1, 2);
    label(s, at[1], 1, 2);
}

static void gen_irregular(synth_rng *r, nops_synth_series *s)
{
    s->step_s = 60;
    int64_t t = EPOCH_S * 1000000000ll;
    for (uint32_t i = 0; i < s->n; i++) {
        s->ts_ns[i] = t;
        double steps = synth_range(r, 0.6, 1.4);
        if (synth_unif(r) < 0.005) steps += synth_range(r, 5, 60);
        t += (int64_t)(steps * 60e9);
    }
    const double L = 80, sig = 2, A = 3 * sig;
    const double drop = synth_range(r, 7, 10) * sig, vmul = synth_range(r, 5, 7);
    ar1 a = {0, 0.3, sig};
    uint32_t at[2];
    onsets(r, s->n, 2, at);
    /* the burst first, the drop later (a drop that persists would hide a later burst) */
    for (uint32_t i = 0; i < s->n; i++) {
        double e = ar1_next(&a, r);
        if (i >= at[0] && i < at[0] + 40) e *= vmul;
        s->v[i] = (float)(L + A * daily(s->ts_ns[i]) + e - (i >= at[1] ? drop : 0));
    }
    label(s, at[0], 40, 2);
    label(s, at[1], 1, 2);
}

static void gen_variance_burst(synth_rng *r, nops_synth_series *s)
{
    s->step_s = 10;
    regular_ts(s);
    const double L = 10, sig = 0.5, vmul = synth_range(r, 5, 8);
    ar1 a = {0, 0.6, sig};
    uint32_t at[1];
    onsets(r, s->n, 1, at);
    for (uint32_t i = 0; i < s->n; i++) {
        double e = ar1_next(&a, r);
        if (i >= at[0] && i < at[0] + 40) e *= vmul;
        s->v[i] = (float)(L + e);
    }
    label(s, at[0], 40, 1);
}

static void gen_seasonal_stuck(synth_rng *r, nops_synth_series *s)
{
    s->step_s = 300;
    regular_ts(s);
    const double L = 60, sig = 1.5, A = synth_range(r, 8, 12) * sig;
    ar1 a = {0, 0.5, sig};
    uint32_t at[1];
    onsets(r, s->n, 1, at);
    /* move the onset to the next peak of the wave (14:24 of data time: daily() = 1) */
    const uint32_t day = 288, peak = (uint32_t)(0.6 * day);
    uint32_t o = at[0] - at[0] % day + peak;
    if (o < at[0]) o += day;
    const uint32_t dur = 60 + synth_below(r, 37);
    if (o + dur >= s->n) o -= day;
    for (uint32_t i = 0; i < s->n; i++) {
        const double w = (i >= o && i < o + dur) ? 1.0 : daily(s->ts_ns[i]);
        s->v[i] = (float)(L + A * w + ar1_next(&a, r));
    }
    label(s, o, dur, 1);
}

typedef void (*gen_fn)(synth_rng *, nops_synth_series *);
static const gen_fn gens[NOPS_SYNTH_KINDS] = {
    gen_seasonal_spike, gen_seasonal_shift, gen_drift_jump, gen_counter,
    gen_flat_spike,     gen_heavy_tail,     gen_irregular,  gen_variance_burst,
    gen_seasonal_stuck,
};

nops_err nops_synth_corpus_new(uint64_t seed, uint32_t per_kind, nops_synth_corpus **out)
{
    *out = NULL;
    if (per_kind == 0 || per_kind > 64) return NOPS_INVAL;
    nops_synth_corpus *c = nops_calloc(1, sizeof *c);
    if (!c) return NOPS_NOMEM;
    c->n = per_kind * NOPS_SYNTH_KINDS;
    c->s = nops_calloc(c->n, sizeof *c->s);
    if (!c->s) goto nomem;
    for (uint32_t i = 0; i < c->n; i++) {
        nops_synth_series *s = &c->s[i];
        const int kind = (int)(i / per_kind);
        s->kind = kind_names[kind];
        s->kind_id = (uint32_t)kind;
        snprintf(s->name, sizeof s->name, "%s_%u", s->kind, (unsigned)(i % per_kind));
        s->n = N_POINTS;
        s->probation = (uint32_t)(0.15 * N_POINTS) < 750 ? (uint32_t)(0.15 * N_POINTS) : 750;
        s->ts_ns = nops_malloc(s->n * sizeof *s->ts_ns);
        s->v = nops_malloc(s->n * sizeof *s->v);
        if (!s->ts_ns || !s->v) goto nomem;
        /* each series its own stream: adding kinds later does not change the others */
        synth_rng r;
        synth_rng_seed(&r, seed ^ (0x51ED270B27A1F1C3ull * (uint64_t)(i + 1)));
        gens[kind](&r, s);
        c->points += s->n;
    }
    *out = c;
    return NOPS_OK;
nomem:
    nops_synth_corpus_destroy(c);
    return NOPS_NOMEM;
}

void nops_synth_corpus_destroy(nops_synth_corpus *c)
{
    if (!c) return;
    for (uint32_t i = 0; c->s && i < c->n; i++) {
        nops_free(c->s[i].ts_ns);
        nops_free(c->s[i].v);
    }
    nops_free(c->s);
    nops_free(c);
}
