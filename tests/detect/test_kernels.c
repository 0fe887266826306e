/*
 * test_kernels.c — every kernel variant against the scalar one and against the double
 * reference, on many input shapes; the exact known cases; the long-run drift check.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/detect/ref.h"

#include <float.h>
#include <stdio.h>

/* ---- data ------------------------------------------------------------------------------- */

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
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

typedef enum kind {
    K_RANDOM, K_CONSTANT, K_STEP, K_RAMP, K_SPIKE, K_HUGE, K_NAN, K_MIXED_MAGNITUDE, K_N
} kind;
static const char *kind_names[] = {"random", "constant", "step", "ramp", "spike",
                                   "huge", "nan", "mixed_magnitude"};

static float gen(kind k, rng *r, int t, int series)
{
    const double level = 10.0 + series * 7.5;
    switch (k) {
    case K_RANDOM:
        return (float)(level + nrand(r) * (1.0 + series % 3));
    case K_CONSTANT:
        return (float)level;
    case K_STEP:
        return (float)(level + (t >= 250 ? 25.0 : 0.0) + nrand(r));
    case K_RAMP:
        return (float)(level + 0.05 * t + 0.3 * nrand(r));
    case K_SPIKE:
        return (float)(level + nrand(r) + (t % 97 == 50 ? 12.0 : 0.0));
    case K_HUGE:
        return (float)(1e30 * (1.0 + series) + 1e28 * nrand(r));
    case K_NAN: {
        double u = urand(r);
        if (u < 0.03)
            return NAN;
        if (u < 0.05)
            return u < 0.04 ? INFINITY : -INFINITY;
        return (float)(level + nrand(r));
    }
    case K_MIXED_MAGNITUDE:
        /* ordinary values with the odd 1e30 spike: tests absorption in the window sums */
        return (float)(t % 131 == 7 ? 1e30 : level + nrand(r));
    default:
        return 0.0f;
    }
}

static nops_detect_params params(int method)
{
    nops_detect_params p;
    nops_detect_params_default(&p);
    p.window = 60;
    p.method = method;
    p.variant = NOPS_VARIANT_SCALAR;
    return p;
}

static nops_detector *make(const nops_detect_params *p, nops_detect_variant v, uint32_t nseries)
{
    nops_detect_params q = *p;
    q.variant = v;
    char err[256];
    nops_detector *d = nops_detect_new(&q, nseries, err, sizeof err);
    assert_non_null(d);
    for (uint32_t i = 0; i < nseries; i++) {
        uint32_t slot;
        assert_int_equal(nops_detect_slot(d, 1000 + i, NULL, 0, 0, &slot), NOPS_OK);
        assert_int_equal(slot, i);
    }
    return d;
}

/* ---- variants vs scalar vs reference ---------------------------------------------------- */

#define S 37   /* not a multiple of the block: tails get exercised */
#define T 700

static void check_kind(kind k, int method)
{
    nops_detect_params p = params(method);
    nops_detect_variant vs[3] = {NOPS_VARIANT_SCALAR, NOPS_VARIANT_AVX2, NOPS_VARIANT_AVX512};
    nops_detector *det[3] = {NULL, NULL, NULL};
    for (int v = 0; v < 3; v++)
        if (nops_detect_variant_supported(vs[v]))
            det[v] = make(&p, vs[v], S);
    ref_det *ref = calloc(S, sizeof *ref);
    assert_non_null(ref);
    bool flag_sync[S];
    for (int s = 0; s < S; s++) {
        ref_init(&ref[s], &p);
        flag_sync[s] = true;
    }
    rng r = {0x1234567 + (uint64_t)k * 977 + (uint64_t)method};
    float x[S], z[3][S], ze[3][S], ra[3][S];
    uint8_t fl[3][S];
    double worst_ref = 0.0;
    for (int t = 0; t < T; t++) {
        for (int s = 0; s < S; s++)
            x[s] = gen(k, &r, t, s);
        for (int v = 0; v < 3; v++) {
            if (!det[v])
                continue;
            nops_detect_out out = {z[v], ze[v], fl[v], ra[v]};
            assert_int_equal(nops_detect_update_range(det[v], 0, S, x, &out), NOPS_OK);
        }
        for (int s = 0; s < S; s++) {
            double rz, rze;
            unsigned rf = ref_update(&ref[s], x[s], &rz, &rze);
            for (int v = 0; v < 3; v++) {
                if (!det[v])
                    continue;
                assert_true(isfinite(z[v][s]) && isfinite(ze[v][s]));
                /* against the double reference: 1e-3 */
                if (!close_enough(z[v][s], rz, 1e-3) || !close_enough(ze[v][s], rze, 1e-3)) {
                    fail_msg("%s method %d variant %s t=%d s=%d: z %.9g vs ref %.9g, ze %.9g "
                             "vs ref %.9g",
                             kind_names[k], method, nops_detect_variant_name(vs[v]), t, s,
                             z[v][s], rz, ze[v][s], rze);
                }
                double e = fabs(z[v][s] - rz) / (fabs(rz) > 1 ? fabs(rz) : 1);
                worst_ref = e > worst_ref ? e : worst_ref;
                /* against the scalar variant: bit-identical (no FMA contraction anywhere) */
                if (v > 0) {
                    if (memcmp(&z[v][s], &z[0][s], 4) || memcmp(&ze[v][s], &ze[0][s], 4) ||
                        memcmp(&ra[v][s], &ra[0][s], 4) || fl[v][s] != fl[0][s])
                        fail_msg("%s method %d variant %s t=%d s=%d: z %.9g ze %.9g r %.9g f %#x "
                                 "vs scalar %.9g %.9g %.9g %#x",
                                 kind_names[k], method, nops_detect_variant_name(vs[v]), t, s,
                                 z[v][s], ze[v][s], ra[v][s], fl[v][s], z[0][s], ze[0][s],
                                 ra[0][s], fl[0][s]);
                }
            }
            /* flags vs reference, until a boundary case makes the two legitimately diverge */
            if (flag_sync[s]) {
                double ratio = ref[s].ratio;
                if (fabs(ratio - 1.0) < 1e-3 || fabs(ratio - p.hysteresis) < 1e-3)
                    flag_sync[s] = false;
                else if (fl[0][s] != rf)
                    fail_msg("%s t=%d s=%d: flags %#x vs ref %#x (ratio %.6f)", kind_names[k], t,
                             s, fl[0][s], rf, ratio);
            }
        }
    }
    print_message("  %-16s method %d: worst |Δz| vs reference %.3g\n", kind_names[k], method,
                  worst_ref);
    for (int v = 0; v < 3; v++)
        nops_detect_destroy(det[v]);
    free(ref);
}

static void test_variants_all_kinds(void **state)
{
    for (int k = 0; k < K_N; k++) {
        check_kind((kind)k, NOPS_METHOD_ALL);
        check_kind((kind)k, NOPS_METHOD_BOTH);
    }
}

static void test_variants_single_methods(void **state)
{
    check_kind(K_RANDOM, NOPS_METHOD_ZSCORE);
    check_kind(K_STEP, NOPS_METHOD_ZSCORE);
    check_kind(K_RANDOM, NOPS_METHOD_EWMA);
    check_kind(K_NAN, NOPS_METHOD_EWMA);
}

/* The pairs API (gather path, shuffled order, repeated slots) gives the range API's answers. */
static void test_pairs_equals_range(void **state)
{
    nops_detect_params p = params(NOPS_METHOD_BOTH);
    for (int v = NOPS_VARIANT_SCALAR; v <= NOPS_VARIANT_AVX512; v++) {
        if (!nops_detect_variant_supported((nops_detect_variant)v))
            continue;
        nops_detector *a = make(&p, (nops_detect_variant)v, S);
        nops_detector *b = make(&p, (nops_detect_variant)v, S);
        rng r = {42};
        /* two ticks per call for b: every slot appears twice in one batch */
        float x[2][S], za[S], zea[S], zb[2 * S], zeb[2 * S], xb[2 * S];
        uint8_t fa[S], fb[2 * S];
        uint32_t slots[2 * S];
        for (int t = 0; t < 400; t += 2) {
            for (int s = 0; s < S; s++) {
                x[0][s] = gen(K_SPIKE, &r, t, s);
                x[1][s] = gen(K_NAN, &r, t + 1, s);
            }
            /* b: a shuffled interleaving that keeps each series' own order */
            int perm[S];
            for (int s = 0; s < S; s++)
                perm[s] = s;
            for (int s = S - 1; s > 0; s--) {
                int j = (int)(urand(&r) * (s + 1));
                int tmp = perm[s];
                perm[s] = perm[j];
                perm[j] = tmp;
            }
            for (int s = 0; s < S; s++) {
                slots[s] = (uint32_t)perm[s];
                xb[s] = x[0][perm[s]];
                slots[S + s] = (uint32_t)perm[S - 1 - s];
                xb[S + s] = x[1][perm[S - 1 - s]];
            }
            nops_detect_out ob = {zb, zeb, fb, NULL};
            assert_int_equal(nops_detect_update_pairs(b, slots, xb, 2 * S, &ob), NOPS_OK);
            for (int h = 0; h < 2; h++) {
                nops_detect_out oa = {za, zea, fa, NULL};
                assert_int_equal(nops_detect_update_range(a, 0, S, x[h], &oa), NOPS_OK);
                for (int i = 0; i < S; i++) {
                    int s = (int)slots[h * S + i];
                    assert_float_equal(zb[h * S + i], za[s], 1e-6 * fmax(1.0, fabs(za[s])));
                    assert_float_equal(zeb[h * S + i], zea[s], 1e-6 * fmax(1.0, fabs(zea[s])));
                    assert_int_equal(fb[h * S + i], fa[s]);
                }
            }
        }
        nops_detect_destroy(a);
        nops_detect_destroy(b);
    }
}

/* The default method (all) gives the same bits through the range kernel as through the gather
 * kernel: the pipeline hands a run's consecutive slots to the one and the rest to the other
 * (ingest/pipeline.c, detect_update), so a series' signals must not depend on which it took.
 * Here b takes a stretch by range and the rest, shuffled, by pairs; a takes all by range. */
static void test_range_and_pairs_same_bits(void **state)
{
    (void)state;
    nops_detect_params p = params(NOPS_METHOD_ALL);
    for (int v = NOPS_VARIANT_SCALAR; v <= NOPS_VARIANT_AVX512; v++) {
        if (!nops_detect_variant_supported((nops_detect_variant)v))
            continue;
        nops_detector *a = make(&p, (nops_detect_variant)v, S);
        nops_detector *b = make(&p, (nops_detect_variant)v, S);
        rng r = {7};
        float x[S], xb[S], za[S], zea[S], ra[S], zb[S], zeb[S], rb[S];
        uint8_t fa[S], fb[S];
        uint32_t slots[S];
        const int cut = 20; /* b: slots [0, cut) by range, the rest by pairs */
        for (int t = 0; t < 600; t++) {
            for (int s = 0; s < S; s++)
                x[s] = gen(t % 3 ? K_SPIKE : K_NAN, &r, t, s);
            nops_detect_out oa = {za, zea, fa, ra};
            assert_int_equal(nops_detect_update_range(a, 0, S, x, &oa), NOPS_OK);
            for (int s = 0; s < S; s++)
                slots[s] = (uint32_t)s;
            for (int s = S - 1; s > cut; s--) {
                int j = cut + (int)(urand(&r) * (s - cut + 1));
                uint32_t tmp = slots[s];
                slots[s] = slots[j];
                slots[j] = tmp;
            }
            for (int s = 0; s < S; s++)
                xb[s] = x[slots[s]];
            nops_detect_out o1 = {zb, zeb, fb, rb};
            assert_int_equal(nops_detect_update_range(b, 0, (uint32_t)cut, xb, &o1), NOPS_OK);
            nops_detect_out o2 = {zb + cut, zeb + cut, fb + cut, rb + cut};
            assert_int_equal(
                nops_detect_update_pairs(b, slots + cut, xb + cut, (size_t)(S - cut), &o2),
                NOPS_OK);
            for (int i = 0; i < S; i++) {
                const uint32_t s = slots[i];
                assert_memory_equal(&zb[i], &za[s], sizeof(float));
                assert_memory_equal(&zeb[i], &zea[s], sizeof(float));
                assert_memory_equal(&rb[i], &ra[s], sizeof(float));
                assert_int_equal(fb[i], fa[s]);
            }
        }
        nops_detect_destroy(a);
        nops_detect_destroy(b);
    }
}

/* ---- known cases ------------------------------------------------------------------------ */

/* Run one series through a detector; returns flags per point. */
static void run_series(const nops_detect_params *p, const float *x, int n, uint8_t *flags,
                       float *z)
{
    for (int v = NOPS_VARIANT_SCALAR; v <= NOPS_VARIANT_AVX512; v++) {
        if (!nops_detect_variant_supported((nops_detect_variant)v))
            continue;
        nops_detector *d = make(p, (nops_detect_variant)v, 1);
        for (int i = 0; i < n; i++) {
            float zz, ze;
            uint8_t f;
            nops_detect_out o = {&zz, &ze, &f, NULL};
            uint32_t slot = 0;
            assert_int_equal(nops_detect_update_pairs(d, &slot, &x[i], 1, &o), NOPS_OK);
            if (v == NOPS_VARIANT_SCALAR) {
                flags[i] = f;
                if (z)
                    z[i] = zz;
            } else {
                assert_int_equal(f, flags[i]); /* every variant tells the same story */
            }
        }
        nops_detect_destroy(d);
    }
}

static void test_spike_flagged_at_its_row(void **state)
{
    nops_detect_params p = params(NOPS_METHOD_BOTH);
    /* after the warm-up (2W = 120 points); 8σ: above the default thresholds (≈ 5.8σ) */
    for (int spike_at = 130; spike_at <= 490; spike_at += 90) {
        float x[600];
        uint8_t f[600];
        rng r = {7 + (uint64_t)spike_at};
        for (int i = 0; i < 600; i++)
            x[i] = (float)(50.0 + nrand(&r));
        x[spike_at] = (float)(50.0 + 8.0); /* 8σ above the level */
        run_series(&p, x, 600, f, NULL);
        for (int i = 0; i < spike_at; i++)
            assert_false(f[i] & NOPS_DETECT_ANOM);
        assert_true(f[spike_at] & NOPS_DETECT_ANOM);
        assert_true(f[spike_at] & NOPS_DETECT_FIRED);
    }
}

static void test_constant_never_fires(void **state)
{
    const float levels[] = {0.0f, 42.0f, -7.25f, 1e4f, 3e38f, 1e-30f};
    for (size_t l = 0; l < sizeof levels / sizeof levels[0]; l++) {
        for (int method = 0; method < 3; method++) {
            nops_detect_params p = params(method);
            enum { N = 5000 };
            float *x = malloc(N * sizeof *x), *z = malloc(N * sizeof *z);
            uint8_t *f = malloc(N);
            for (int i = 0; i < N; i++)
                x[i] = levels[l];
            run_series(&p, x, N, f, z);
            for (int i = 0; i < N; i++) {
                assert_false(f[i] & (NOPS_DETECT_ANOM | NOPS_DETECT_FIRED));
                assert_true(z[i] == 0.0f);
            }
            free(x);
            free(z);
            free(f);
        }
    }
}

static void test_zero_std_gives_defined_z(void **state)
{
    nops_detect_params p = params(NOPS_METHOD_BOTH);
    nops_detector *d = make(&p, NOPS_VARIANT_AUTO, 1);
    uint32_t slot = 0;
    float z, ze;
    uint8_t f;
    nops_detect_out o = {&z, &ze, &f, NULL};
    for (int i = 0; i < 100; i++) {
        float x = 5.0f;
        nops_detect_update_pairs(d, &slot, &x, 1, &o);
    }
    float jump[] = {6.0f, -3e38f, 3e38f, 5.0f};
    for (int i = 0; i < 4; i++) {
        nops_detect_update_pairs(d, &slot, &jump[i], 1, &o);
        assert_true(isfinite(z) && isfinite(ze));
        assert_true(fabsf(z) <= NOPS_DETECT_Z_MAX);
    }
    nops_detect_destroy(d);
}

static void test_level_shift_within_quarter_window(void **state)
{
    nops_detect_params p = params(NOPS_METHOD_BOTH);
    int noise_signals = 0;
    for (int seed = 1; seed <= 20; seed++) {
        enum { N = 400, AT = 200 };
        float x[N];
        uint8_t f[N];
        rng r = {(uint64_t)seed * 31337};
        for (int i = 0; i < N; i++)
            x[i] = (float)(100.0 + nrand(&r) + (i >= AT ? 8.0 : 0.0));
        run_series(&p, x, N, f, NULL);
        int first = -1;
        for (int i = 0; i < N; i++) {
            if (!(f[i] & NOPS_DETECT_FIRED))
                continue;
            if (i < AT)
                noise_signals++; /* a false positive of the noise before the shift */
            else if (first < 0)
                first = i;
        }
        if (first < AT || first > AT + p.window / 4)
            fail_msg("seed %d: first signal at %d, shift at %d", seed, first, AT);
    }
    /* 20 × 170 judged points of pure Gaussian noise: only the odd false alarm */
    print_message("  false signals before the shift: %d in 3400 points\n", noise_signals);
    assert_true(noise_signals <= 5); /* 3 with these seeds */
}

static void test_hysteresis_one_signal_per_excursion(void **state)
{
    nops_detect_params p = params(NOPS_METHOD_BOTH);
    enum { N = 800 };
    float x[N];
    uint8_t f[N];
    rng r = {99};
    for (int i = 0; i < N; i++)
        x[i] = (float)(20.0 + nrand(&r));
    /* excursion 1: five consecutive points well above; excursion 2: one spike; 3: a dip */
    for (int i = 200; i < 205; i++)
        x[i] = 32.0f;
    x[400] = 33.0f;
    for (int i = 600; i < 603; i++)
        x[i] = 8.0f;
    run_series(&p, x, N, f, NULL);
    int fired = 0, cleared = 0;
    for (int i = 0; i < N; i++) {
        fired += (f[i] & NOPS_DETECT_FIRED) != 0;
        cleared += (f[i] & NOPS_DETECT_CLEARED) != 0;
    }
    assert_int_equal(fired, 3);
    assert_int_equal(cleared, 3);
    assert_true(f[200] & NOPS_DETECT_FIRED);
    assert_true(f[400] & NOPS_DETECT_FIRED);
    assert_true(f[600] & NOPS_DETECT_FIRED);
}

/* NaN/Inf points are rejected and leave the state as if they had never arrived. */
static void test_nan_leaves_state_untouched(void **state)
{
    nops_detect_params p = params(NOPS_METHOD_BOTH);
    for (int v = NOPS_VARIANT_SCALAR; v <= NOPS_VARIANT_AVX512; v++) {
        if (!nops_detect_variant_supported((nops_detect_variant)v))
            continue;
        nops_detector *clean = make(&p, (nops_detect_variant)v, 1);
        nops_detector *dirty = make(&p, (nops_detect_variant)v, 1);
        rng r = {5};
        uint32_t slot = 0;
        for (int i = 0; i < 1000; i++) {
            float x = (float)(10.0 + nrand(&r) + (i % 113 == 0 ? 9.0 : 0.0));
            float z1, ze1, z2, ze2;
            uint8_t f1, f2;
            nops_detect_out o1 = {&z1, &ze1, &f1, NULL}, o2 = {&z2, &ze2, &f2, NULL};
            if (i % 7 == 3) {
                float bad[3] = {NAN, INFINITY, -INFINITY};
                float zz[3], zze[3];
                uint8_t ff[3];
                uint32_t sl[3] = {0, 0, 0};
                nops_detect_out ob = {zz, zze, ff, NULL};
                nops_detect_update_pairs(dirty, sl, bad, 3, &ob);
                for (int j = 0; j < 3; j++) {
                    assert_int_equal(ff[j], 0);
                    assert_true(zz[j] == 0.0f && zze[j] == 0.0f);
                }
            }
            nops_detect_update_pairs(clean, &slot, &x, 1, &o1);
            nops_detect_update_pairs(dirty, &slot, &x, 1, &o2);
            assert_true(z1 == z2 && ze1 == ze2);
            assert_int_equal(f1, f2);
        }
        nops_detect_destroy(clean);
        nops_detect_destroy(dirty);
    }
}

/* 10^7 updates at level 1e4, σ = 1: the kernels still match the double reference. */
static void test_no_drift_ten_million(void **state)
{
    nops_detect_params p = params(NOPS_METHOD_BOTH);
    p.window = 64;
    nops_detector *d = make(&p, NOPS_VARIANT_AUTO, 1);
    ref_det ref;
    ref_init(&ref, &p);
    rng r = {2024};
    enum { B = 4096 };
    static float x[B], z[B], ze[B];
    static uint8_t f[B];
    static uint32_t slots[B];
    double worst = 0.0;
    long n = 0;
    while (n < 10000000) {
        for (int i = 0; i < B; i++)
            x[i] = (float)(1e4 + nrand(&r));
        nops_detect_out o = {z, ze, f, NULL};
        assert_int_equal(nops_detect_update_pairs(d, slots, x, B, &o), NOPS_OK);
        for (int i = 0; i < B; i++) {
            double rz, rze;
            ref_update(&ref, x[i], &rz, &rze);
            double e1 = fabs(z[i] - rz) / fmax(1.0, fabs(rz));
            double e2 = fabs(ze[i] - rze) / fmax(1.0, fabs(rze));
            worst = fmax(worst, fmax(e1, e2));
        }
        n += B;
    }
    print_message("  %ld updates at 1e4±1 (%s): worst |Δz| vs reference %.3g\n", n,
                  nops_detect_variant_name(nops_detect_get_variant(d)), worst);
    assert_true(worst <= 1e-3);
    nops_detect_destroy(d);
}

static void test_variant_forcing(void **state)
{
    nops_detect_params p = params(NOPS_METHOD_BOTH);
    nops_detector *d = make(&p, NOPS_VARIANT_AUTO, 1);
    assert_int_equal(nops_detect_get_variant(d), nops_detect_variant_best());
    assert_int_equal(nops_detect_set_variant(d, NOPS_VARIANT_SCALAR), NOPS_OK);
    assert_int_equal(nops_detect_get_variant(d), NOPS_VARIANT_SCALAR);
    for (int v = NOPS_VARIANT_AVX2; v <= NOPS_VARIANT_AVX512; v++)
        assert_int_equal(nops_detect_set_variant(d, (nops_detect_variant)v),
                         nops_detect_variant_supported((nops_detect_variant)v)
                             ? NOPS_OK
                             : NOPS_UNSUPPORTED);
    nops_detect_destroy(d);
}

static void test_bad_arguments(void **state)
{
    nops_detect_params p = params(NOPS_METHOD_BOTH);
    char err[256] = "";
    p.window = 2;
    assert_null(nops_detect_new(&p, 1, err, sizeof err));
    assert_non_null(strstr(err, "window"));
    p = params(NOPS_METHOD_BOTH);
    nops_detector *d = make(&p, NOPS_VARIANT_AUTO, 2);
    float x[3] = {1, 2, 3}, z[3], ze[3];
    uint8_t f[3];
    nops_detect_out o = {z, ze, f, NULL};
    assert_int_equal(nops_detect_update_range(d, 0, 2, x, &o), NOPS_OK);
    assert_int_equal(nops_detect_update_range(d, 1, 2, x, &o), NOPS_RANGE);
    uint32_t bad = 7;
    assert_int_equal(nops_detect_update_pairs(d, &bad, x, 1, &o), NOPS_RANGE);
    nops_detect_out none = {NULL, ze, f, NULL};
    assert_int_equal(nops_detect_update_range(d, 0, 1, x, &none), NOPS_INVAL);
    nops_detect_destroy(d);
    nops_detect_destroy(NULL);
}

static void test_score_mapping(void **state)
{
    assert_float_equal(nops_detect_score(0.0), 0.0, 0.0);
    assert_float_equal(nops_detect_score(1.0), 0.5, 1e-12);
    assert_float_equal(nops_detect_score(2.0), 0.9375, 1e-12);
    assert_true(nops_detect_score(100.0) <= 1.0);
    assert_float_equal(nops_detect_score(NAN), 0.0, 0.0);
    nops_detect_params p = params(NOPS_METHOD_ZSCORE);
    p.z_threshold = p.ewma_threshold = 4.0;
    assert_float_equal(nops_detect_ratio(&p, -8.0, 100.0), 2.0, 1e-12);
    p.method = NOPS_METHOD_BOTH;
    assert_float_equal(nops_detect_ratio(&p, -8.0, 12.0), 3.0, 1e-12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_variants_all_kinds),
        cmocka_unit_test(test_variants_single_methods),
        cmocka_unit_test(test_pairs_equals_range),
        cmocka_unit_test(test_range_and_pairs_same_bits),
        cmocka_unit_test(test_spike_flagged_at_its_row),
        cmocka_unit_test(test_constant_never_fires),
        cmocka_unit_test(test_zero_std_gives_defined_z),
        cmocka_unit_test(test_level_shift_within_quarter_window),
        cmocka_unit_test(test_hysteresis_one_signal_per_excursion),
        cmocka_unit_test(test_nan_leaves_state_untouched),
        cmocka_unit_test(test_no_drift_ten_million),
        cmocka_unit_test(test_variant_forcing),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_score_mapping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
