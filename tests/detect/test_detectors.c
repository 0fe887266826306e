/*
 * test_detectors.c — each detector on its own labelled cases, and the calibration.
 *
 * Calibration: a stationary Gaussian series of 10⁶ points (10 series × 10⁵, fixed seeds) must
 * raise about the documented number of false signals: ≈ 10⁶/N at false_alarm_points = N. The
 * bands are wide enough for the estimate's own spread (Poisson at 100 expected: ±30 %) and
 * narrow enough that an uncalibrated threshold (4σ: thousands; 7σ: none) fails.
 * Every case runs every variant this CPU has and asserts they agree bit for bit.
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

typedef struct rng {
    uint64_t s;
} rng;

static double urand(rng *r)
{
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return (double)(r->s >> 11) * (1.0 / 9007199254740992.0);
}

static double nrand(rng *r)
{
    double u1 = urand(r), u2 = urand(r);
    return sqrt(-2.0 * log(u1 > 1e-300 ? u1 : 1e-300)) * cos(6.283185307179586 * u2);
}

static nops_detect_params defaults(void)
{
    nops_detect_params p;
    nops_detect_params_default(&p);
    return p;
}

/* Set N and re-derive the thresholds from it. */
static nops_detect_params with_n(double n)
{
    nops_detect_params p = defaults();
    p.false_alarm_points = n;
    p.z_threshold = p.ewma_threshold = p.cusum_threshold = 0.0;
    nops_detect_params_resolve(&p);
    return p;
}

/*
 * Run `ns` series of `n` points through every variant; the scalar flags and ratios land in
 * f/ra (series-major: f[s * n + t]). Returns the FIRED count per detector in fired[3].
 */
static void run(const nops_detect_params *p, const float *x, int ns, int n, uint8_t *f, float *ra,
                long fired[3])
{
    fired[0] = fired[1] = fired[2] = 0;
    float *z = malloc((size_t)ns * sizeof *z), *ze = malloc((size_t)ns * sizeof *ze);
    float *r = malloc((size_t)ns * sizeof *r), *xs = malloc((size_t)ns * sizeof *xs);
    uint8_t *fl = malloc((size_t)ns);
    for (int v = NOPS_VARIANT_SCALAR; v <= NOPS_VARIANT_AVX512; v++) {
        if (!nops_detect_variant_supported((nops_detect_variant)v))
            continue;
        nops_detect_params q = *p;
        q.variant = v;
        char err[256];
        nops_detector *d = nops_detect_new(&q, (uint32_t)ns, err, sizeof err);
        assert_non_null(d);
        for (int s = 0; s < ns; s++) {
            uint32_t slot;
            assert_int_equal(nops_detect_slot(d, 500 + (uint64_t)s, NULL, 0, 0, &slot), NOPS_OK);
        }
        for (int t = 0; t < n; t++) {
            for (int s = 0; s < ns; s++)
                xs[s] = x[(size_t)s * n + t];
            nops_detect_out o = {z, ze, fl, r};
            assert_int_equal(nops_detect_update_range(d, 0, (uint32_t)ns, xs, &o), NOPS_OK);
            for (int s = 0; s < ns; s++) {
                const size_t i = (size_t)s * n + t;
                if (v == NOPS_VARIANT_SCALAR) {
                    f[i] = fl[s];
                    if (ra)
                        ra[i] = r[s];
                    if (fl[s] & NOPS_DETECT_FIRED)
                        fired[NOPS_DETECT_WHICH(fl[s])]++;
                } else if (fl[s] != f[i] || (ra && memcmp(&r[s], &ra[i], sizeof r[s]))) {
                    fail_msg("variant %s differs from scalar at s=%d t=%d",
                             nops_detect_variant_name((nops_detect_variant)v), s, t);
                }
            }
        }
        nops_detect_destroy(d);
    }
    free(z);
    free(ze);
    free(r);
    free(xs);
    free(fl);
}

static long total(const long fired[3])
{
    return fired[0] + fired[1] + fired[2];
}

/* ---- calibration --------------------------------------------------------------------------- */

enum { CAL_S = 10, CAL_T = 100000 };

static float *stationary(uint64_t seed)
{
    float *x = malloc((size_t)CAL_S * CAL_T * sizeof *x);
    rng r = {seed};
    for (size_t i = 0; i < (size_t)CAL_S * CAL_T; i++)
        x[i] = (float)(250.0 + 3.0 * nrand(&r));
    return x;
}

static void test_calibration_rate(void **state)
{
    (void)state;
    float *x = stationary(0x9e3779b97f4a7c15ull);
    uint8_t *f = malloc((size_t)CAL_S * CAL_T);
    long fired[3];
    /* N = 10⁴: ≈ 100 expected in 10⁶ points */
    nops_detect_params p = with_n(1e4);
    run(&p, x, CAL_S, CAL_T, f, NULL, fired);
    print_message("  N = 1e4: %ld false signals in 1e6 points (z %ld, ewma %ld, cusum %ld)\n",
                  total(fired), fired[0], fired[1], fired[2]);
    assert_true(total(fired) >= 60 && total(fired) <= 150);
    /* each detector takes part and none dominates: each its third of the budget */
    for (int k = 0; k < 3; k++)
        assert_true(fired[k] >= 15 && fired[k] <= 70);
    /* N = 10⁵: ≈ 10 */
    p = with_n(1e5);
    run(&p, x, CAL_S, CAL_T, f, NULL, fired);
    print_message("  N = 1e5: %ld false signals in 1e6 points\n", total(fired));
    assert_true(total(fired) >= 3 && total(fired) <= 25);
    /* the defaults: N = 10⁶, ≈ 1 */
    p = defaults();
    assert_true(p.false_alarm_points == 1e6);
    run(&p, x, CAL_S, CAL_T, f, NULL, fired);
    print_message("  defaults (N = 1e6): %ld false signals in 1e6 points\n", total(fired));
    assert_true(total(fired) <= 4);
    /* the old uncalibrated thresholds (z 4, EWMA 4 with α_var = α = 0.1) fail the band */
    p = with_n(1e4);
    p.z_threshold = p.ewma_threshold = 4.0;
    p.alpha_var = 0.1;
    p.method = NOPS_METHOD_BOTH;
    run(&p, x, CAL_S, CAL_T, f, NULL, fired);
    print_message("  thresholds 4, alpha_var 0.1: %ld false signals\n", total(fired));
    assert_true(total(fired) > 300);
    free(x);
    free(f);
}

static void test_thresholds_monotone(void **state)
{
    (void)state;
    double prev[3] = {0, 0, 0};
    for (double n = 100; n <= 1e12; n *= 10) {
        double t[3];
        nops_detect_thresholds(n, 60, 0.01, 0.5, &t[0], &t[1], &t[2]);
        for (int k = 0; k < 3; k++) {
            assert_true(isfinite(t[k]) && t[k] > prev[k]);
            prev[k] = t[k];
        }
    }
    /* a Gaussian sanity point: for a huge window the z threshold nears the normal quantile
     * (two-sided 1/(3·10⁶): 5.11) */
    double tz, te, h;
    nops_detect_thresholds(1e6, 1024, 1e-4, 0.5, &tz, &te, &h);
    assert_true(fabs(tz - 5.11) < 0.05 && fabs(te - 5.11) < 0.05);
}

/* ---- labelled cases, one per detector -------------------------------------------------------- */

/* A spike of 9σ at t = 500 on stationary noise: the rolling z fires at that point. */
static void test_zscore_spike(void **state)
{
    (void)state;
    enum { T = 1000 };
    float x[T];
    uint8_t f[T];
    float ra[T];
    rng r = {11};
    for (int t = 0; t < T; t++)
        x[t] = (float)(40.0 + nrand(&r));
    x[500] += 9.0f;
    nops_detect_params p = defaults();
    p.method = NOPS_METHOD_ZSCORE;
    long fired[3];
    run(&p, x, 1, T, f, ra, fired);
    assert_true(f[500] & NOPS_DETECT_FIRED);
    assert_int_equal(NOPS_DETECT_WHICH(f[500]), NOPS_DETECTOR_ZSCORE);
    assert_int_equal(total(fired), 1);
}

/* The EWMA: its variance has enough samples that a 7σ point fires, and one outlier does not
 * blind it (the clipped variance): after a 40σ outlier, a 7σ point 30 later fires again once
 * the first excursion has cleared. Unclipped, the outlier would add 40²·α_var = 16σ² to the
 * variance and hide the second point (z ≈ 7/4.1). */
static void test_ewma_robust_scale(void **state)
{
    (void)state;
    enum { T = 1200 };
    float x[T];
    uint8_t f[T];
    rng r = {12};
    for (int t = 0; t < T; t++)
        x[t] = (float)(5.0 + 0.5 * nrand(&r));
    x[400] += 0.5f * 40.0f; /* a 40σ outlier */
    x[430] += 0.5f * 7.0f;
    nops_detect_params p = defaults();
    p.method = NOPS_METHOD_EWMA;
    long fired[3];
    run(&p, x, 1, T, f, NULL, fired);
    assert_true(f[400] & NOPS_DETECT_FIRED);
    assert_true(f[430] & NOPS_DETECT_FIRED);
    assert_int_equal(total(fired), 2);
}

/* The CUSUM: a sustained 1.5σ shift (invisible to the z detectors at ≈ 5.8σ) is found within
 * 40 points, once, and then becomes the new normal: no signal for the next 3000 points. Odd
 * seeds shift down, even ones up: the signal's NOPS_DETECT_CUSUM_DOWN says which way. */
static void test_cusum_small_shift_once(void **state)
{
    (void)state;
    enum { T = 7000, AT = 3000 };
    float *x = malloc(T * sizeof *x);
    uint8_t *f = malloc(T);
    int detected = 0;
    for (uint64_t seed = 1; seed <= 10; seed++) {
        rng r = {seed * 7777};
        for (int t = 0; t < T; t++)
            x[t] = (float)(100.0 + 2.0 * nrand(&r) + (t >= AT ? (seed & 1 ? -3.0 : 3.0) : 0.0));
        nops_detect_params p = defaults();
        long fired[3];
        run(&p, x, 1, T, f, NULL, fired);
        int first = -1, after = 0, before = 0;
        for (int t = 0; t < T; t++) {
            if (!(f[t] & NOPS_DETECT_FIRED))
                continue;
            if (t < AT)
                before++;
            else if (first < 0)
                first = t;
            else
                after++;
        }
        assert_int_equal(before, 0);
        assert_true(first >= AT && first <= AT + 40);
        assert_int_equal(NOPS_DETECT_WHICH(f[first]), NOPS_DETECTOR_CUSUM);
        assert_int_equal((f[first] & NOPS_DETECT_CUSUM_DOWN) != 0, (seed & 1) != 0);
        assert_int_equal(after, 0);
        detected++;
        /* the z detectors alone do not see it */
        p.method = NOPS_METHOD_BOTH;
        run(&p, x, 1, T, f, NULL, fired);
        assert_int_equal(total(fired), 0);
    }
    assert_int_equal(detected, 10);
    free(x);
    free(f);
}

/* A large persistent level shift signals once, and the way back to the new normal (windows and
 * baselines catching up) raises nothing more. */
static void test_level_shift_once(void **state)
{
    (void)state;
    enum { T = 8000, AT = 2500 };
    float *x = malloc(T * sizeof *x);
    uint8_t *f = malloc(T);
    for (uint64_t seed = 1; seed <= 10; seed++) {
        rng r = {seed * 31};
        for (int t = 0; t < T; t++)
            x[t] = (float)(20.0 + nrand(&r) + (t >= AT ? (seed % 2 ? 12.0 : -12.0) : 0.0));
        nops_detect_params p = defaults();
        long fired[3];
        run(&p, x, 1, T, f, NULL, fired);
        for (int t = 0; t < T; t++)
            if (f[t] & NOPS_DETECT_FIRED)
            assert_true(f[AT] & NOPS_DETECT_FIRED);
        assert_int_equal(total(fired), 1);
    }
    free(x);
    free(f);
}

/* Quantised and flat-lined series do not fire on one tick: the resolution floor. */
static void test_quantised_one_tick(void **state)
{
    (void)state;
    enum { T = 5000 };
    float x[T];
    uint8_t f[T];
    rng r = {13};
    /* a counter at 7 that ticks to 8 or 6 now and then (σ ≈ 0.1 of a step) */
    for (int t = 0; t < T; t++) {
        double u = urand(&r);
        x[t] = 7.0f + (u < 0.005 ? 1.0f : u > 0.995 ? -1.0f : 0.0f);
    }
    nops_detect_params p = defaults();
    long fired[3];
    run(&p, x, 1, T, f, NULL, fired);
    assert_int_equal(total(fired), 0);
    /* but a real jump of 40 ticks does fire */
    for (int t = 4000; t < 4005; t++)
        x[t] = 47.0f;
    run(&p, x, 1, T, f, NULL, fired);
    assert_true(f[4000] & NOPS_DETECT_FIRED);
    /* flat for 3000 points after some motion, then one tick (2.5 % of the level): quiet */
    for (int t = 0; t < T; t++)
        x[t] = t < 300 ? (float)(40 + t % 3) : 42.0f;
    x[3500] = 43.0f;
    run(&p, x, 1, T, f, NULL, fired);
    assert_int_equal(total(fired), 0);
    /* a step of half the level is no tick: it fires even where it is the smallest step seen */
    for (int t = 0; t < T; t++)
        x[t] = 100.0f + (t % 100 == 30 && t >= 130 ? 50.0f : 0.0f);
    run(&p, x, 1, T, f, NULL, fired);
    assert_int_equal(total(fired), (T - 130 + 99) / 100);
}

/* No verdict before the warm-up; the first verdicts after it are not a burst of false alarms. */
static void test_warmup(void **state)
{
    (void)state;
    enum { S = 200, T = 400 };
    float *x = malloc((size_t)S * T * sizeof *x);
    uint8_t *f = malloc((size_t)S * T);
    rng r = {14};
    for (size_t i = 0; i < (size_t)S * T; i++)
        x[i] = (float)(1e3 + 50.0 * nrand(&r));
    nops_detect_params p = defaults();
    long fired[3];
    run(&p, x, S, T, f, NULL, fired);
    for (int s = 0; s < S; s++)
        for (int t = 0; t < T; t++)
            assert_true(((f[(size_t)s * T + t] & NOPS_DETECT_WARM) != 0) == (t >= p.warmup));
    /* 200 series × 280 fresh verdicts each: at N = 10⁶ about 0.06 expected */
    assert_true(total(fired) <= 1);
    free(x);
    free(f);
}

/* A daily wave and a random walk: the CUSUM sits out, nothing fires. */
static void test_nonstationary_quiet(void **state)
{
    (void)state;
    enum { T = 40000 };
    float *x = malloc(2 * T * sizeof *x);
    uint8_t *f = malloc(2 * T);
    rng r = {15};
    double walk = 0.0;
    for (int t = 0; t < T; t++) {
        x[t] = (float)(100.0 + 10.0 * sin(6.283185307179586 * t / 8640.0) + nrand(&r));
        walk += 0.1 * nrand(&r);
        x[T + t] = (float)(500.0 + walk);
    }
    nops_detect_params p = defaults();
    long fired[3];
    run(&p, x, 2, T, f, NULL, fired);
    print_message("  wave + walk, 80k points: %ld signals (cusum %ld)\n", total(fired), fired[2]);
    assert_true(total(fired) <= 2);
    assert_int_equal(fired[2], 0);
    free(x);
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_calibration_rate),
        cmocka_unit_test(test_thresholds_monotone),
        cmocka_unit_test(test_zscore_spike),
        cmocka_unit_test(test_ewma_robust_scale),
        cmocka_unit_test(test_cusum_small_shift_once),
        cmocka_unit_test(test_level_shift_once),
        cmocka_unit_test(test_quantised_one_tick),
        cmocka_unit_test(test_warmup),
        cmocka_unit_test(test_nonstationary_quiet),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
