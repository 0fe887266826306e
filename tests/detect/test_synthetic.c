/*
 * test_synthetic.c — detection quality on a labelled synthetic workload.
 *
 * A generator builds long series (noise σ = 1 around a level, a daily seasonality of 3σ over
 * 1440 points) and injects labelled anomalies at known positions: spikes (6–10σ, one point),
 * level shifts (6–10σ, permanent), variance bursts (σ → 6σ for 60 points), fast ramps (0.5σ per
 * point for 40 points) and slow drifts (0.02σ per point for 500 points). The detector (the
 * defaults: every detector, thresholds calibrated to about one false signal per 10⁶ stationary
 * points) runs over them and the test reports, per kind, recall within an allowed delay and the
 * mean delay, and overall precision, then asserts the floors documented in README.md
 * ("Detection quality"). Fast ramps and slow drifts are reported but not asserted: at the
 * calibrated thresholds (≈ 5.8σ) a 60-point z-score and an α = 0.1 EWMA adapt faster than a
 * ramp moves, and the CUSUM, which sees sustained moves, sits out on this seasonal series
 * (its long baseline is not stable: docs/detection.md). Until session 5 the thresholds were 4
 * and this test asserted ramp recall ≥ 0.70 at the cost of ~15 false signals per 100k points;
 * the floor on false signals below is the other side of that trade.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "detect/detect.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum ev_kind { EV_SPIKE, EV_SHIFT, EV_VARIANCE, EV_RAMP, EV_DRIFT, EV_N } ev_kind;
static const char *ev_names[] = {"spike", "level_shift", "variance_burst", "fast_ramp",
                                 "slow_drift"};
static const int ev_duration[] = {1, 1, 60, 40, 500};  /* points the anomaly itself lasts */
static const int ev_max_delay[] = {0, 15, 30, 40, 500}; /* W/4 for shifts */

typedef struct event {
    ev_kind kind;
    int at;
} event;

typedef struct rng {
    uint64_t s;
} rng;

static double urand(rng *r)
{
    r->s = r->s * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(r->s >> 11) * (1.0 / 9007199254740992.0);
}

static double nrand(rng *r)
{
    double u1 = urand(r), u2 = urand(r);
    return sqrt(-2.0 * log(u1 > 1e-300 ? u1 : 1e-300)) * cos(6.283185307179586 * u2);
}

enum { N = 40000, MAX_EV = 128, GAP = 400 };

/* One labelled series: events every GAP..2·GAP points, kinds in rotation. */
static int generate(uint64_t seed, float *x, event *ev)
{
    rng r = {seed};
    int n_ev = 0;
    double level = 100.0;
    int next = 600 + (int)(urand(&r) * GAP);
    int kind_i = (int)(seed % EV_N);
    ev_kind active = EV_N;
    int active_at = 0;
    double sign = 1.0, mag = 0.0;
    for (int t = 0; t < N; t++) {
        if (t == next && n_ev < MAX_EV) {
            active = (ev_kind)(kind_i++ % EV_N);
            active_at = t;
            sign = urand(&r) < 0.5 ? -1.0 : 1.0;
            mag = 6.0 + 4.0 * urand(&r);
            ev[n_ev++] = (event){active, t};
            if (active == EV_SHIFT)
                level += sign * mag;
            next = t + ev_duration[active] + GAP + (int)(urand(&r) * GAP);
        }
        double sigma = 1.0, extra = 0.0;
        if (active != EV_N && t < active_at + ev_duration[active]) {
            int k = t - active_at;
            switch (active) {
            case EV_SPIKE:
                extra = sign * mag;
                break;
            case EV_VARIANCE:
                sigma = 6.0;
                break;
            case EV_RAMP:
                level += sign * 0.5;
                break;
            case EV_DRIFT:
                level += sign * 0.02;
                break;
            default:
                break;
            }
            (void)k;
        }
        double season = 3.0 * sin(6.283185307179586 * t / 1440.0);
        x[t] = (float)(level + season + sigma * nrand(&r) + extra);
    }
    return n_ev;
}

/* What the detector did over the series so far: per kind, events and those found within the
 * allowed delay (and their delays); signals explained by an event or not. */
typedef struct tally {
    int found[EV_N], total[EV_N];
    long delay_sum[EV_N];
    long tp, fp;
} tally;

/* The detector of p over series x (one series, batches of 1000 points): z, ze, flags f. */
static void detect_series(const nops_detect_params *p, const float *x, float *z, float *ze,
                          uint8_t *f, uint32_t *slots)
{
    char err[128];
    nops_detector *d = nops_detect_new(p, 1, err, sizeof err);
    assert_non_null(d);
    uint32_t slot;
    assert_int_equal(nops_detect_slot(d, 1, NULL, 0, 0, &slot), NOPS_OK);
    nops_detect_out o = {z, ze, f, NULL};
    for (int t = 0; t < N; t += 1000) /* one series, batches of points */
        nops_detect_update_pairs(d, slots, x + t, N - t < 1000 ? N - t : 1000,
                                 &(nops_detect_out){o.z + t, o.ze + t, o.flags + t, NULL});
    nops_detect_destroy(d);
}

/* Count the events, and those the detector fired on within their kind's allowed delay. */
static void count_found(const event *ev, int n_ev, const uint8_t *f, tally *c)
{
    for (int e = 0; e < n_ev; e++) {
        c->total[ev[e].kind]++;
        for (int t = ev[e].at; t <= ev[e].at + ev_max_delay[ev[e].kind] && t < N; t++) {
            if (f[t] & NOPS_DETECT_FIRED) {
                c->found[ev[e].kind]++;
                c->delay_sum[ev[e].kind] += t - ev[e].at;
                break;
            }
        }
    }
}

/* Count the signals, true when within an event (or a window after it), false otherwise; with
 * SYN_DEBUG set, print each false one beside the event before it. */
static void count_signals(const event *ev, int n_ev, const uint8_t *f, const float *z,
                          const float *ze, int64_t window, tally *c)
{
    for (int t = 0; t < N; t++) {
        if (!(f[t] & NOPS_DETECT_FIRED))
            continue;
        bool explained = false;
        for (int e = 0; e < n_ev && !explained; e++)
            explained = t >= ev[e].at && t < ev[e].at + ev_duration[ev[e].kind] + window;
        explained ? c->tp++ : c->fp++;
        if (!explained && getenv("SYN_DEBUG")) {
            int pe = -1;
            for (int e = 0; e < n_ev; e++)
                if (ev[e].at <= t)
                    pe = e;
            print_message("    fp t=%d which=%u z=%.2f ze=%.2f prev %s at %d (+%d)\n", t,
                          NOPS_DETECT_WHICH(f[t]), z[t], ze[t],
                          pe >= 0 ? ev_names[ev[pe].kind] : "-", pe >= 0 ? ev[pe].at : 0,
                          pe >= 0 ? t - ev[pe].at : 0);
        }
    }
}

static void test_detection_quality(void **state)
{
    nops_detect_params p;
    nops_detect_params_default(&p);
    if (getenv("SYN_N")) {
        p.false_alarm_points = atof(getenv("SYN_N"));
        p.z_threshold = p.ewma_threshold = p.cusum_threshold = 0;
        nops_detect_params_resolve(&p);
    }
    float *x = malloc(N * sizeof *x), *z = malloc(N * sizeof *z), *ze = malloc(N * sizeof *ze);
    uint8_t *f = malloc(N);
    uint32_t *slots = calloc(N, sizeof *slots);
    event ev[MAX_EV];
    tally c = {{0}, {0}, {0}, 0, 0};
    for (uint64_t seed = 1; seed <= 12; seed++) {
        int n_ev = generate(seed * 7919, x, ev);
        detect_series(&p, x, z, ze, f, slots);
        count_found(ev, n_ev, f, &c);
        count_signals(ev, n_ev, f, z, ze, p.window, &c);
    }
    double recall[EV_N];
    for (int k = 0; k < EV_N; k++) {
        recall[k] = c.total[k] ? (double)c.found[k] / c.total[k] : 0.0;
        print_message("  %-15s recall %.3f (%d/%d)  mean delay %.1f points\n", ev_names[k],
                      recall[k], c.found[k], c.total[k],
                      c.found[k] ? (double)c.delay_sum[k] / c.found[k] : 0.0);
    }
    double precision = (double)c.tp / (double)(c.tp + c.fp);
    print_message("  precision %.3f (%ld true, %ld false signals over %d points)\n", precision,
                  c.tp, c.fp, 12 * N);
    /* floors, documented in README.md */
    /* spikes of 6–10σ against a ≈ 5.8σ threshold: the 6σ ones are at the detection limit */
    assert_true(recall[EV_SPIKE] >= 0.90);
    assert_true(recall[EV_SHIFT] >= 0.95);
    assert_true(recall[EV_VARIANCE] >= 0.90);
    assert_true(precision >= 0.98);
    assert_true(c.fp <= 5); /* ≈ 1 per 100k points (1 with these seeds) */
    assert_true((double)c.delay_sum[EV_SHIFT] / c.found[EV_SHIFT] <= 3.0);
    free(x);
    free(z);
    free(ze);
    free(f);
    free(slots);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detection_quality),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
