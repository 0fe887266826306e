/*
 * test_season.c — the seasonal baseline (detect.h: nops_detect_set_season, season_points).
 *
 * Every case runs every kernel variant this CPU has and asserts they agree bit for bit with the
 * scalar one (flags, z, EWMA z and ratio), on uniform blocks (a fleet in lockstep), on blocks
 * whose series sit at different phases (the gather path) and through the pairs entry point.
 * The behaviour cases compare a detector with the seasonal baseline against the same detector
 * without it, on series built so that only the seasonal one can see the event.
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

#define TWO_PI 6.283185307179586

/* A daily-like wave of period P and amplitude A (in σ = 1) around 100, plus noise. */
static double wave(int t, int P, double A, rng *r)
{
    return 100.0 + A * sin(TWO_PI * t / P) + nrand(r);
}

/*
 * Run ns series × n points (x[s * n + t]) through every variant with `season` points of season
 * on every series (0: none), by update_range over all series per step (`stagger`: series s
 * starts s·stagger steps late, so blocks mix phases and counts) and, when `pairs`, through
 * update_pairs one series at a time as well. FIRED counts per detector of the scalar run go to
 * fired[NOPS_DETECTOR_N]; the scalar flags to f (may be NULL).
 */
static void run(const float *x, int ns, int n, uint32_t season, int stagger, bool pairs,
                long fired[NOPS_DETECTOR_N], uint8_t *f_out)
{
    memset(fired, 0, NOPS_DETECTOR_N * sizeof *fired);
    const size_t tot = (size_t)ns * n;
    uint8_t *f0 = calloc(tot, 1);
    float *z0 = calloc(tot, sizeof *z0), *e0 = calloc(tot, sizeof *e0), *r0 = calloc(tot, 4);
    float *xs = malloc((size_t)ns * sizeof *xs), *z = malloc((size_t)ns * 4);
    float *ze = malloc((size_t)ns * 4), *ra = malloc((size_t)ns * 4);
    uint8_t *fl = malloc((size_t)ns);
    for (int mode = 0; mode < (pairs ? 2 : 1); mode++) {
        for (int v = NOPS_VARIANT_SCALAR; v <= NOPS_VARIANT_AVX512; v++) {
            if (!nops_detect_variant_supported((nops_detect_variant)v))
                continue;
            nops_detect_params p;
            nops_detect_params_default(&p);
            p.variant = v;
            char err[256];
            nops_detector *d = nops_detect_new(&p, (uint32_t)ns, err, sizeof err);
            assert_non_null(d);
            for (int s = 0; s < ns; s++) {
                uint32_t slot;
                assert_int_equal(nops_detect_slot(d, 77 + (uint64_t)s, NULL, 0, 0, &slot),
                                 NOPS_OK);
                assert_int_equal(nops_detect_set_season(d, slot, season), NOPS_OK);
            }
            const int steps = n + (ns - 1) * stagger;
            for (int k = 0; k < steps; k++) {
                /* the series that have a point at step k: s with s·stagger ≤ k < s·stagger + n */
                int lo = 0, hi = ns;
                while (lo < ns && k - lo * stagger >= n)
                    lo++;
                while (hi > lo && k - (hi - 1) * stagger < 0)
                    hi--;
                if (lo >= hi)
                    continue;
                for (int s = lo; s < hi; s++)
                    xs[s - lo] = x[(size_t)s * n + (k - s * stagger)];
                nops_detect_out o = {z, ze, fl, ra};
                if (mode == 0) {
                    assert_int_equal(nops_detect_update_range(d, (uint32_t)lo,
                                                              (uint32_t)(hi - lo), xs, &o),
                                     NOPS_OK);
                } else {
                    for (int s = lo; s < hi; s++) {
                        uint32_t slot = (uint32_t)s;
                        nops_detect_out o1 = {z + s - lo, ze + s - lo, fl + s - lo,
                                              ra + s - lo};
                        assert_int_equal(
                            nops_detect_update_pairs(d, &slot, &xs[s - lo], 1, &o1), NOPS_OK);
                    }
                }
                for (int s = lo; s < hi; s++) {
                    const size_t i = (size_t)s * n + (k - s * stagger);
                    const int j = s - lo;
                    if (mode == 0 && v == NOPS_VARIANT_SCALAR) {
                        f0[i] = fl[j];
                        z0[i] = z[j];
                        e0[i] = ze[j];
                        r0[i] = ra[j];
                        if (fl[j] & NOPS_DETECT_FIRED)
                            fired[NOPS_DETECT_WHICH(fl[j])]++;
                    } else if (fl[j] != f0[i] || memcmp(&z[j], &z0[i], 4) ||
                               memcmp(&ze[j], &e0[i], 4) || memcmp(&ra[j], &r0[i], 4)) {
                        fail_msg("%s (%s) differs from scalar range at series %d point %d: "
                                 "flags %02x/%02x ratio %.9g/%.9g",
                                 nops_detect_variant_name((nops_detect_variant)v),
                                 mode ? "pairs" : "range", s, k - s * stagger, fl[j], f0[i],
                                 (double)ra[j], (double)r0[i]);
                    }
                }
            }
            nops_detect_destroy(d);
        }
    }
    if (f_out)
        memcpy(f_out, f0, tot);
    free(f0);
    free(z0);
    free(e0);
    free(r0);
    free(xs);
    free(z);
    free(ze);
    free(ra);
    free(fl);
}

static long total(const long fired[NOPS_DETECTOR_N])
{
    long t = 0;
    for (int i = 0; i < NOPS_DETECTOR_N; i++)
        t += fired[i];
    return t;
}

/* Mixed series (waves of several amplitudes, steps, spikes, NaN, a flat line, a drift), in
 * lockstep and staggered, range and pairs: every variant gives the scalar bits. */
static void test_season_variants_identical(void **state)
{
    (void)state;
    enum { NS = 70, N = 2400, P = 288 };
    float *x = malloc((size_t)NS * N * sizeof *x);
    rng r = {0x5eed5eedull};
    for (int s = 0; s < NS; s++)
        for (int t = 0; t < N; t++) {
            double v = wave(t, P, (s % 5) * 4.0, &r);
            if (s % 7 == 1 && t > 1500)
                v += 6.0; /* a persistent shift */
            if (s % 7 == 2 && t % 500 == 321)
                v += 30.0; /* spikes */
            if (s % 7 == 3 && t % 97 == 5)
                v = NAN; /* invalid points */
            if (s % 7 == 4)
                v = 1024.0 + (t % 300 == 0); /* flat with blips */
            if (s % 7 == 5)
                v += 0.01 * t; /* a drift */
            x[(size_t)s * N + t] = (float)v;
        }
    long fired[NOPS_DETECTOR_N];
    run(x, NS, N, P, 0, true, fired, NULL);  /* lockstep: uniform blocks, and pairs */
    run(x, NS, N, P, 3, false, fired, NULL); /* staggered: blocks of mixed phases */
    run(x, NS, N, 96, 1, false, fired, NULL);
    assert_true(fired[NOPS_DETECTOR_SEASON] > 0); /* the seasonal path was exercised */
    free(x);
}

/* The calibration with the seasonal baseline on: 10⁶ stationary points, and 10⁶ points of a
 * pure ±10σ wave plus noise, raise about the documented one false signal per 10⁶ (≤ 4, as the
 * plain calibration test allows). */
static void test_season_stationary_quiet(void **state)
{
    (void)state;
    enum { NS = 10, N = 100000, P = 288 };
    float *x = malloc((size_t)NS * N * sizeof *x);
    long fired[NOPS_DETECTOR_N];
    for (int k = 0; k < 2; k++) {
        rng r = {0xca11b7a7eull + (uint64_t)k};
        for (int s = 0; s < NS; s++)
            for (int t = 0; t < N; t++)
                x[(size_t)s * N + t] = (float)wave(t, P, k ? 10.0 : 0.0, &r);
        run(x, NS, N, P, 0, false, fired, NULL);
        print_message("  %s: %ld false signals in 10^6 points (z %ld, ewma %ld, cusum %ld, "
                      "season %ld)\n", k ? "wave + noise" : "noise", total(fired), fired[0],
                      fired[1], fired[2], fired[3]);
        assert_true(total(fired) <= 4);
    }
    free(x);
}

/*
 * Autocorrelated noise (AR(1), φ = 0.6, as real metrics have) is stationary too: 10⁶ points at
 * the defaults raise about the documented number of false signals. Before the CUSUM scaled its
 * input by the long-run variance of its residuals it alarmed on the noise's own slow wander:
 * 1,578 false signals here, 1,577 of them the CUSUM's.
 */
static void test_autocorrelated_quiet(void **state)
{
    (void)state;
    enum { NS = 10, N = 100000 };
    float *x = malloc((size_t)NS * N * sizeof *x);
    rng r = {0xa2a2a2ull};
    for (int s = 0; s < NS; s++) {
        double e = 0.0;
        for (int t = 0; t < N; t++) {
            e = 0.6 * e + 0.8 * nrand(&r); /* stationary σ = 1 */
            x[(size_t)s * N + t] = (float)(50.0 + e);
        }
    }
    long fired[NOPS_DETECTOR_N];
    run(x, NS, N, 0, 0, false, fired, NULL);
    print_message("  AR(1) 0.6: %ld false signals in 10^6 points (z %ld, ewma %ld, cusum %ld)\n",
                  total(fired), fired[0], fired[1], fired[2]);
    assert_true(total(fired) <= 4);
    free(x);
}

/* Count, per series, whether a signal fired in [from, to) and how many fired outside it after
 * `quiet_from`. */
static void tally(const uint8_t *f, int ns, int n, int from, int to, int quiet_from, int *hit,
                  int *outside)
{
    *hit = *outside = 0;
    for (int s = 0; s < ns; s++) {
        int h = 0;
        for (int t = quiet_from; t < n; t++) {
            if (!(f[(size_t)s * n + t] & NOPS_DETECT_FIRED))
                continue;
            if (t >= from && t < to)
                h = 1;
            else
                (*outside)++;
        }
        *hit += h;
    }
}

/*
 * "A night-time value at daytime level": at the wave's peak the series stops following the
 * wave and stays at its daytime level for half a period. Nothing jumps, so the rolling z and
 * the EWMA follow it; without the seasonal baseline the wave keeps the CUSUM's gate shut and
 * the event is found only when the series snaps back. With it, the CUSUM on the
 * deseasonalised value finds it within a quarter of the event.
 */
static void test_season_stuck_at_day_level(void **state)
{
    (void)state;
    enum { NS = 20, N = 20000, P = 288, AT = 10000 - 10000 % P + P / 4, LEN = P / 2 };
    float *x = malloc((size_t)NS * N * sizeof *x);
    uint8_t *f = malloc((size_t)NS * N);
    rng r = {42};
    for (int s = 0; s < NS; s++)
        for (int t = 0; t < N; t++)
            x[(size_t)s * N + t] =
                (float)(t >= AT && t < AT + LEN ? 110.0 + nrand(&r) : wave(t, P, 10.0, &r));
    long fired[NOPS_DETECTOR_N];
    int hit_s, out_s, hit_n, out_n;
    run(x, NS, N, P, 0, false, fired, f);
    tally(f, NS, N, AT, AT + LEN / 2, 2 * P, &hit_s, &out_s);
    run(x, NS, N, 0, 0, false, fired, f);
    tally(f, NS, N, AT, AT + LEN / 2, 2 * P, &hit_n, &out_n);
    print_message("  found in the first half of the event: %d/%d with the seasonal baseline "
                  "(%d signals elsewhere), %d/%d without (%d elsewhere)\n",
                  hit_s, NS, out_s, hit_n, NS, out_n);
    assert_true(hit_s >= NS - 1);
    assert_true(hit_n <= NS / 4);
    /* elsewhere: at most the snap back at the event's end, one per series */
    assert_true(out_s <= 2 * NS);
    free(x);
    free(f);
}

/* A small (3σ) persistent shift on a ±10σ wave: the seasonal baseline opens the CUSUM's gate,
 * so it is found within a few points, and it signals once (the shift is the new normal: the
 * profile does not relearn it as a second event). Without the baseline it is not found. */
static void test_season_small_shift_once(void **state)
{
    (void)state;
    enum { NS = 20, N = 12000, P = 288, AT = 8000 };
    float *x = malloc((size_t)NS * N * sizeof *x);
    uint8_t *f = malloc((size_t)NS * N);
    rng r = {7};
    for (int s = 0; s < NS; s++)
        for (int t = 0; t < N; t++)
            x[(size_t)s * N + t] = (float)(wave(t, P, 10.0, &r) + (t >= AT ? 3.0 : 0.0));
    long fired[NOPS_DETECTOR_N];
    int hit_s, out_s, hit_n, out_n;
    run(x, NS, N, P, 0, false, fired, f);
    tally(f, NS, N, AT, AT + 30, 2 * P, &hit_s, &out_s);
    run(x, NS, N, 0, 0, false, fired, f);
    tally(f, NS, N, AT, AT + 30, 2 * P, &hit_n, &out_n);
    print_message("  3 sigma shift found within 30 points: %d/%d with (%d other signals), "
                  "%d/%d without (%d other)\n", hit_s, NS, out_s, hit_n, NS, out_n);
    assert_true(hit_s >= NS - 1);
    assert_true(out_s <= 2);
    assert_true(hit_n <= 2);
    free(x);
    free(f);
}

/* The API: periods out of range, methods without the CUSUM, unknown slots; a no-op re-set keeps
 * the profile; the getter; season_for_step. */
static void test_season_api(void **state)
{
    (void)state;
    nops_detect_params p;
    nops_detect_params_default(&p);
    char err[256];
    nops_detector *d = nops_detect_new(&p, 4, err, sizeof err);
    uint32_t slot;
    assert_int_equal(nops_detect_slot(d, 5, NULL, 0, 0, &slot), NOPS_OK);
    assert_int_equal(nops_detect_get_season(d, slot), 0);
    assert_int_equal(nops_detect_set_season(d, slot, NOPS_DETECT_SEASON_MIN - 1), NOPS_INVAL);
    assert_int_equal(nops_detect_set_season(d, slot, NOPS_DETECT_SEASON_MAX + 1u), NOPS_INVAL);
    assert_int_equal(nops_detect_set_season(d, slot + 1, 288), NOPS_RANGE);
    assert_int_equal(nops_detect_set_season(d, slot, 288), NOPS_OK);
    assert_int_equal(nops_detect_get_season(d, slot), 288);
    assert_int_equal(nops_detect_set_season(d, slot, 0), NOPS_OK);
    assert_int_equal(nops_detect_get_season(d, slot), 0);
    nops_detect_destroy(d);

    p.method = NOPS_METHOD_BOTH;
    d = nops_detect_new(&p, 4, err, sizeof err);
    assert_int_equal(nops_detect_slot(d, 5, NULL, 0, 0, &slot), NOPS_OK);
    assert_int_equal(nops_detect_set_season(d, slot, 288), NOPS_INVAL);
    nops_detect_destroy(d);
    /* season_points needs method all */
    p.season_points = 288;
    assert_int_equal(nops_detect_params_check(&p, err, sizeof err), NOPS_CONFIG);
    p.method = NOPS_METHOD_ALL;
    assert_int_equal(nops_detect_params_check(&p, err, sizeof err), NOPS_OK);
    p.season_points = 10;
    assert_int_equal(nops_detect_params_check(&p, err, sizeof err), NOPS_CONFIG);

    nops_detect_params_default(&p);
    assert_int_equal(p.season_s, 86400);
    assert_int_equal(nops_detect_season_for_step(&p, 60), 1440);
    assert_int_equal(nops_detect_season_for_step(&p, 300), 288);
    assert_int_equal(nops_detect_season_for_step(&p, 3600), 0); /* 24 points: too few */
    assert_int_equal(nops_detect_season_for_step(&p, 0), 0);
    p.season_s = 0;
    assert_int_equal(nops_detect_season_for_step(&p, 60), 0);
}

/* A series with a season saves and restores into a fresh detector bit for bit: the same next
 * outputs. An "NDS2" record (before the seasonal baseline) restores warm, its profile learned
 * from scratch, counted by nops_detect_season_relearned. */
static void test_season_snapshot(void **state)
{
    (void)state;
    enum { P = 96, N = 700, M = 400 };
    nops_detect_params p;
    nops_detect_params_default(&p);
    p.season_points = P;
    char err[256];
    nops_detector *a = nops_detect_new(&p, 2, err, sizeof err);
    nops_detector *b = nops_detect_new(&p, 2, err, sizeof err);
    uint32_t sa, sb;
    assert_int_equal(nops_detect_slot(a, nops_detect_key_id("w", 1), "w", 1, 0, &sa), NOPS_OK);
    assert_int_equal(nops_detect_get_season(a, sa), P);
    rng r = {9};
    float x[N + M];
    for (int t = 0; t < N + M; t++)
        x[t] = (float)wave(t, P, 8.0, &r);
    float z, ze, ra, zb, zeb, rb;
    uint8_t f, fb;
    nops_detect_out oa = {&z, &ze, &f, &ra}, ob = {&zb, &zeb, &fb, &rb};
    for (int t = 0; t < N; t++)
        nops_detect_update_pairs(a, &sa, &x[t], 1, &oa);
    static uint8_t rec[NOPS_DETECT_SERIES_REC_MAX];
    size_t n = nops_detect_save_series(a, sa, rec, sizeof rec), used = 0;
    assert_true(n > 0);
    assert_int_equal(memcmp(rec, "NDS3", 4), 0);
    assert_int_equal(nops_detect_restore_series(b, rec, n, 0, &used, &sb), NOPS_OK);
    assert_int_equal(used, n);
    assert_int_equal(nops_detect_get_season(b, sb), P);
    for (int t = N; t < N + M; t++) {
        nops_detect_update_pairs(a, &sa, &x[t], 1, &oa);
        nops_detect_update_pairs(b, &sb, &x[t], 1, &ob);
        assert_int_equal(f, fb);
        assert_memory_equal(&ra, &rb, 4);
        assert_memory_equal(&ze, &zeb, 4);
    }
    assert_int_equal(nops_detect_season_relearned(b), 0);

    /* NDS2: the same record without the seasonal block (u32 lc is new too: the 56 bytes of the
     * old extra fields, then the window) */
    n = nops_detect_save_series(a, sa, rec, sizeof rec);
    uint32_t klen;
    memcpy(&klen, rec + 8, 4);
    const size_t head = 12 + klen + 4 + 8 + 8, old_extra = 56;
    const size_t new_extra = old_extra + 4 + 8 + 4 * NOPS_DETECT_SEASON_BINS;
    static uint8_t old[NOPS_DETECT_SERIES_REC_MAX];
    memcpy(old, rec, head + old_extra);
    memcpy(old, "NDS2", 4);
    memcpy(old + head + old_extra, rec + head + new_extra, n - head - new_extra);
    const size_t on = n - (new_extra - old_extra);
    nops_detector *c = nops_detect_new(&p, 2, err, sizeof err);
    uint32_t sc;
    assert_int_equal(nops_detect_restore_series(c, old, on, 0, &used, &sc), NOPS_OK);
    assert_int_equal(used, on);
    assert_int_equal(nops_detect_get_season(c, sc), P); /* the detector's season_points */
    assert_int_equal(nops_detect_season_relearned(c), 1);
    /* warm: verdicts at once, and the EWMA's state carried over (same EWMA z as the original
     * on the next point; the profile is new, so it is in raw terms until a period is in) */
    nops_detect_update_pairs(c, &sc, &x[N], 1, &ob);
    assert_true(fb & NOPS_DETECT_WARM);
    /* a truncated record is refused */
    assert_int_equal(nops_detect_restore_series(c, rec, head + 60, 0, &used, &sc), NOPS_PARSE);
    nops_detect_destroy(a);
    nops_detect_destroy(b);
    nops_detect_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_season_variants_identical),
        cmocka_unit_test(test_season_stationary_quiet),
        cmocka_unit_test(test_autocorrelated_quiet),
        cmocka_unit_test(test_season_stuck_at_day_level),
        cmocka_unit_test(test_season_small_shift_once),
        cmocka_unit_test(test_season_api),
        cmocka_unit_test(test_season_snapshot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
