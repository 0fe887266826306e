/*
 * test_registry.c — series keys, stable ids, dense slots, growth, eviction, memory, and clean
 * failure when allocations fail.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "detect/detect.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

static nops_label L(const char *k, const char *v)
{
    return (nops_label){k, strlen(k), v, strlen(v)};
}

static void test_key_canonical_and_sorted(void **state)
{
    char key[256];
    size_t len;
    uint64_t id1, id2;
    nops_label a[] = {L("region", "eu"), L("host", "web-1"), L("az", "b")};
    assert_int_equal(nops_detect_series_key("cpu_usage_user", 14, a, 3, key, sizeof key, &len,
                                            &id1),
                     NOPS_OK);
    assert_string_equal(key, "cpu_usage_user{az=\"b\",host=\"web-1\",region=\"eu\"}");
    assert_int_equal(len, strlen(key));
    /* the same labels in another order give the same key and id */
    nops_label b[] = {L("host", "web-1"), L("az", "b"), L("region", "eu")};
    char key2[256];
    assert_int_equal(nops_detect_series_key("cpu_usage_user", 14, b, 3, key2, sizeof key2, NULL,
                                            &id2),
                     NOPS_OK);
    assert_string_equal(key, key2);
    assert_true(id1 == id2);
    /* stable: the id is XXH3-64 of the canonical text, the same on every machine and version */
    assert_true(id1 == XXH3_64bits(key, len));
    /* no labels: no braces */
    assert_int_equal(nops_detect_series_key("up", 2, NULL, 0, key, sizeof key, &len, NULL),
                     NOPS_OK);
    assert_string_equal(key, "up");
}

static void test_key_escaping_and_errors(void **state)
{
    char key[64];
    nops_label e[] = {L("path", "a\"b\\c\nd")};
    assert_int_equal(nops_detect_series_key("m", 1, e, 1, key, sizeof key, NULL, NULL), NOPS_OK);
    assert_string_equal(key, "m{path=\"a\\\"b\\\\c\\nd\"}");
    nops_label dup[] = {L("host", "a"), L("host", "b")};
    assert_int_equal(nops_detect_series_key("m", 1, dup, 2, key, sizeof key, NULL, NULL),
                     NOPS_INVAL);
    assert_int_equal(nops_detect_series_key("", 0, NULL, 0, key, sizeof key, NULL, NULL),
                     NOPS_INVAL);
    nops_label big[] = {L("k", "0123456789012345678901234567890123456789012345678901234567890")};
    assert_int_equal(nops_detect_series_key("m", 1, big, 1, key, sizeof key, NULL, NULL),
                     NOPS_RANGE);
    /* exactly fitting vs one byte short */
    assert_int_equal(nops_detect_series_key("abc", 3, NULL, 0, key, 4, NULL, NULL), NOPS_OK);
    assert_int_equal(nops_detect_series_key("abc", 3, NULL, 0, key, 3, NULL, NULL), NOPS_RANGE);
}

static nops_detector *make(uint32_t cap, int64_t ttl)
{
    nops_detect_params p;
    nops_detect_params_default(&p);
    p.ttl_s = ttl;
    char err[128];
    nops_detector *d = nops_detect_new(&p, cap, err, sizeof err);
    assert_non_null(d);
    return d;
}

static void test_slots_dense_and_stable(void **state)
{
    nops_detector *d = make(4, 0);
    uint32_t slot;
    for (uint32_t i = 0; i < 1000; i++) { /* grows from 4 past 1000 */
        char key[32];
        int n = snprintf(key, sizeof key, "m{i=\"%u\"}", i);
        assert_int_equal(nops_detect_slot(d, nops_detect_key_id(key, (size_t)n), key, (size_t)n,
                                          1, &slot),
                         NOPS_OK);
        assert_int_equal(slot, i);
    }
    assert_int_equal(nops_detect_series_count(d), 1000);
    for (uint32_t i = 0; i < 1000; i += 37) {
        char key[32];
        int n = snprintf(key, sizeof key, "m{i=\"%u\"}", i);
        assert_int_equal(nops_detect_lookup(d, nops_detect_key_id(key, (size_t)n), &slot),
                         NOPS_OK);
        assert_int_equal(slot, i);
        assert_string_equal(nops_detect_slot_key(d, slot), key);
    }
    assert_int_equal(nops_detect_lookup(d, 12345, &slot), NOPS_NOTFOUND);
    nops_detect_destroy(d);
}

/* State survives growth: a series keeps its window across reallocation of every array. */
static void test_growth_keeps_state(void **state)
{
    nops_detector *d = make(2, 0);
    uint32_t s0, s1, tmp;
    assert_int_equal(nops_detect_slot(d, 1, "a", 1, 0, &s0), NOPS_OK);
    assert_int_equal(nops_detect_slot(d, 2, "b", 1, 0, &s1), NOPS_OK);
    float z[2], ze[2];
    uint8_t f[2];
    nops_detect_out o = {z, ze, f, NULL};
    for (int t = 0; t < 100; t++) {
        float x[2] = {(float)(t % 5), (float)(100 + t % 3)};
        nops_detect_update_range(d, 0, 2, x, &o);
    }
    double m_before, sd_before;
    nops_detect_slot_stats(d, s1, &m_before, &sd_before, NULL);
    for (uint64_t id = 10; id < 5000; id++)
        assert_int_equal(nops_detect_slot(d, id, NULL, 0, 0, &tmp), NOPS_OK);
    double m_after, sd_after;
    uint32_t cnt;
    nops_detect_slot_stats(d, s1, &m_after, &sd_after, &cnt);
    assert_float_equal(m_before, m_after, 0.0);
    assert_float_equal(sd_before, sd_after, 0.0);
    assert_int_equal(cnt, 60);
    nops_detect_destroy(d);
}

/* A detector that doubles from 2 slots to 20,000 (its large arrays grown in place, the ring's
 * rows moved to their new stride) answers bit for bit as one made for 32,768 from the start:
 * every series keeps its window through each growth and every new slot starts from zero. */
static void test_growth_matches_presized(void **state)
{
    (void)state;
    enum { N = 20000, STEP = 2500, TICKS = 70 };
    nops_detector *a = make(2, 0), *b = make(32768, 0);
    float *x = calloc(N, sizeof *x), *z[2], *ze[2], *r[2];
    uint8_t *f[2];
    for (int k = 0; k < 2; k++) {
        z[k] = calloc(N, sizeof(float));
        ze[k] = calloc(N, sizeof(float));
        r[k] = calloc(N, sizeof(float));
        f[k] = calloc(N, 1);
        assert_non_null(z[k]);
        assert_non_null(ze[k]);
        assert_non_null(r[k]);
        assert_non_null(f[k]);
    }
    assert_non_null(x);
    nops_detect_out oa = {z[0], ze[0], f[0], r[0]}, ob = {z[1], ze[1], f[1], r[1]};
    for (uint32_t n = STEP; n <= N; n += STEP) {
        for (uint64_t id = n - STEP + 1; id <= n; id++) {
            uint32_t sa, sb;
            assert_int_equal(nops_detect_slot(a, id, NULL, 0, 0, &sa), NOPS_OK);
            assert_int_equal(nops_detect_slot(b, id, NULL, 0, 0, &sb), NOPS_OK);
            assert_int_equal(sa, sb);
        }
        for (int t = 0; t < TICKS; t++) {
            for (uint32_t i = 0; i < n; i++)
                x[i] = (float)((i * 7u + (uint32_t)t * 13u) % 17u) +
                       (t == TICKS - 3 && i % 97 == 0 ? 60.0f : 0.0f);
            assert_int_equal(nops_detect_update_range(a, 0, n, x, &oa), NOPS_OK);
            assert_int_equal(nops_detect_update_range(b, 0, n, x, &ob), NOPS_OK);
            if (memcmp(z[0], z[1], n * sizeof(float)) || memcmp(ze[0], ze[1], n * sizeof(float)) ||
                memcmp(r[0], r[1], n * sizeof(float)) || memcmp(f[0], f[1], n))
                fail_msg("%u series, tick %d: the grown detector answers differently", n, t);
        }
    }
    uint8_t any = 0;
    for (uint32_t i = 0; i < N; i++)
        any |= f[0][i];
    assert_true(any != 0); /* the spikes were seen: the comparison covered signals too */
    for (int k = 0; k < 2; k++) {
        free(z[k]);
        free(ze[k]);
        free(r[k]);
        free(f[k]);
    }
    free(x);
    nops_detect_destroy(a);
    nops_detect_destroy(b);
}

/* Random insert/evict against a simple model: the hash table never loses or confuses a series. */
static void test_eviction_against_model(void **state)
{
    enum { IDS = 3000 };
    nops_detector *d = make(16, 100);
    static int32_t model_slot[IDS]; /* -1 = absent */
    static uint32_t seen[IDS];
    for (int i = 0; i < IDS; i++)
        model_slot[i] = -1;
    uint64_t rs = 77;
    uint32_t now = 0;
    for (int step = 0; step < 60000; step++) {
        rs = rs * 6364136223846793005ull + 1442695040888963407ull;
        int id = (int)((rs >> 33) % IDS);
        if (step % 500 == 0) {
            now += 40;
            uint32_t expected = 0;
            for (int i = 0; i < IDS; i++)
                if (model_slot[i] >= 0 && now - seen[i] >= 100) {
                    model_slot[i] = -1;
                    expected++;
                }
            assert_int_equal(nops_detect_evict_idle(d, now), expected);
        }
        uint32_t slot;
        /* ids are spread over the table with a multiplier so clusters form and wrap */
        uint64_t sid = (uint64_t)(id + 1) * 0x10001ull;
        assert_int_equal(nops_detect_slot(d, sid, NULL, 0, now, &slot), NOPS_OK);
        if (model_slot[id] >= 0)
            assert_int_equal(slot, (uint32_t)model_slot[id]);
        model_slot[id] = (int32_t)slot;
        seen[id] = now;
    }
    uint32_t active = 0;
    for (int i = 0; i < IDS; i++) {
        uint32_t slot;
        nops_err e = nops_detect_lookup(d, (uint64_t)(i + 1) * 0x10001ull, &slot);
        if (model_slot[i] >= 0) {
            active++;
            assert_int_equal(e, NOPS_OK);
            assert_int_equal(slot, (uint32_t)model_slot[i]);
        } else {
            assert_int_equal(e, NOPS_NOTFOUND);
        }
    }
    assert_int_equal(nops_detect_series_count(d), active);
    nops_detect_destroy(d);
}

/* A reused slot starts cold: no state leaks from the evicted series. */
static void test_evicted_slot_is_reset(void **state)
{
    nops_detector *d = make(4, 10);
    uint32_t s, s2;
    assert_int_equal(nops_detect_slot(d, 1, "old", 3, 0, &s), NOPS_OK);
    float z, ze;
    uint8_t f;
    nops_detect_out o = {&z, &ze, &f, NULL};
    for (int i = 0; i < 80; i++) {
        float x = 1000.0f + (float)(i % 7);
        nops_detect_update_pairs(d, &s, &x, 1, &o);
    }
    assert_int_equal(nops_detect_evict_idle(d, 5), 0);
    nops_detect_touch(d, s, 4); /* seen again at 4: not idle for 10 s until 14 */
    assert_int_equal(nops_detect_evict_idle(d, 10), 0);
    assert_int_equal(nops_detect_evict_idle(d, 14), 1);
    assert_int_equal(nops_detect_slot(d, 2, "new", 3, 10, &s2), NOPS_OK);
    assert_int_equal(s2, s);
    assert_string_equal(nops_detect_slot_key(d, s2), "new");
    uint32_t cnt = 99;
    assert_int_equal(nops_detect_slot_stats(d, s2, NULL, NULL, &cnt), NOPS_RANGE);
    assert_int_equal(cnt, 0);
    float x = 5.0f;
    nops_detect_update_pairs(d, &s2, &x, 1, &o);
    assert_true(z == 0.0f && !(f & NOPS_DETECT_WARM));
    nops_detect_destroy(d);
}

/* A series evicted while anomalous is reported (its incident must hear it cleared); a quiet
 * one is not. */
static void test_evicted_anomalous_is_reported(void **state)
{
    (void)state;
    nops_detector *d = make(4, 10);
    uint32_t s[2];
    assert_int_equal(nops_detect_slot(d, 11, "quiet", 5, 0, &s[0]), NOPS_OK);
    assert_int_equal(nops_detect_slot(d, 22, "loud", 4, 0, &s[1]), NOPS_OK);
    float z, ze;
    uint8_t f;
    nops_detect_out o = {&z, &ze, &f, NULL};
    for (int i = 0; i < 300; i++)
        for (int k = 0; k < 2; k++) {
            float x = 1000.0f + (float)(i % 7);
            nops_detect_update_pairs(d, &s[k], &x, 1, &o);
        }
    float spike = 1.0e6f;
    nops_detect_update_pairs(d, &s[1], &spike, 1, &o);
    assert_true(f & NOPS_DETECT_ANOM);
    uint64_t gone[4] = {0};
    uint32_t n = 99;
    assert_int_equal(nops_detect_evict_idle_report(d, 20, gone, 4, &n), 2);
    assert_int_equal(n, 1);
    assert_int_equal(gone[0], 22);
    /* a full report stops eviction there: the rest is evicted (and reported) next time */
    assert_int_equal(nops_detect_slot(d, 33, "a", 1, 20, &s[0]), NOPS_OK);
    assert_int_equal(nops_detect_slot(d, 44, "b", 1, 20, &s[1]), NOPS_OK);
    for (int i = 0; i < 300; i++)
        for (int k = 0; k < 2; k++) {
            float x = i < 299 ? 1000.0f + (float)(i % 7) : 1.0e6f;
            nops_detect_update_pairs(d, &s[k], &x, 1, &o);
        }
    assert_int_equal(nops_detect_evict_idle_report(d, 40, gone, 1, &n), 1);
    assert_int_equal(n, 1);
    assert_int_equal(nops_detect_series_count(d), 1);
    assert_int_equal(nops_detect_evict_idle_report(d, 40, gone, 1, &n), 1);
    assert_int_equal(n, 1);
    assert_int_equal(nops_detect_series_count(d), 0);
    nops_detect_destroy(d);
}

static void test_memory_report(void **state)
{
    nops_detector *d = make(1000, 0);
    uint32_t slot;
    for (uint64_t i = 1; i <= 1000; i++)
        nops_detect_slot(d, i, "some_metric{host=\"web-01\"}", 26, 0, &slot);
    nops_detect_mem m;
    nops_detect_memory(d, &m);
    assert_int_equal(m.active, 1000);
    assert_int_equal(m.capacity, 1000);
    /* W = 60: 240 B ring + sums, shift (20 B) + EWMA (16 B) + long baseline and gate (32 B) +
     * CUSUM, its autocovariance, last, resolution (20 B) + age, baseline age, meta (12 B) per
     * slot; no seasonal arrays while no series has a season */
    assert_int_equal(m.state_bytes, 1000u * (60u * 4u + 20 + 16 + 32 + 20 + 12));
    /* a season on one series adds the profile arrays to every slot: 24 knots + period + age */
    assert_int_equal(nops_detect_set_season(d, 0, 1440), NOPS_OK);
    nops_detect_memory(d, &m);
    assert_int_equal(m.state_bytes, 1000u * (60u * 4u + 20 + 16 + 32 + 20 + 12 + 96 + 8));
    /* the budget of docs/detection.md: ≤ 1 KiB per series all in at the defaults */
    nops_detect_params dp;
    nops_detect_params_default(&dp);
    assert_true(nops_detect_bytes_per_series(&dp) + 27 + 16 <= 1024);
    dp.season_points = 1440; /* and with a seasonal baseline */
    assert_true(nops_detect_bytes_per_series(&dp) + 27 + 16 <= 1024);
    assert_true(m.registry_bytes > 0 && m.key_bytes >= 1000u * 27u);
    nops_detect_destroy(d);
}

static size_t mem_total(const nops_detect_mem *m)
{
    return m->state_bytes + m->registry_bytes + m->key_bytes;
}

/* The series budget: nops_detect_memory_after_add predicts every registration (growth
 * included), and nops_detect_series_fit gives the most series whose state fits — one more
 * would not. */
static void test_series_budget(void **state)
{
    nops_detect_params p;
    nops_detect_params_default(&p);
    const size_t budgets[] = {1u << 20, 3u << 20, 5000000};
    for (size_t b = 0; b < sizeof budgets / sizeof budgets[0]; b++) {
        const size_t budget = budgets[b];
        const char *key = "some_metric{host=\"web-0001\",service=\"checkout\"}";
        const size_t klen = strlen(key);
        uint32_t n = nops_detect_series_fit(&p, budget, 1024, klen, 0);
        assert_true(n >= 1024);
        char err[128];
        nops_detector *d = nops_detect_new(&p, 1024, err, sizeof err);
        assert_non_null(d);
        nops_detect_mem m, pred;
        for (uint64_t i = 1; i <= n; i++) {
            nops_detect_memory_after_add(d, klen, &pred);
            uint32_t slot;
            assert_int_equal(nops_detect_slot(d, i, key, klen, 0, &slot), NOPS_OK);
            nops_detect_memory(d, &m);
            if (mem_total(&pred) != mem_total(&m) || pred.capacity != m.capacity ||
                pred.active != m.active)
                fail_msg("series %llu: predicted %zu bytes / %u slots, got %zu / %u",
                         (unsigned long long)i, mem_total(&pred), pred.capacity, mem_total(&m),
                         m.capacity);
        }
        assert_true(mem_total(&m) <= budget);
        nops_detect_memory_after_add(d, klen, &pred);
        assert_true(mem_total(&pred) > budget); /* the next one would break the budget */
        print_message("  %zu bytes: %u series (%u slots, %zu bytes held)\n", budget, n,
                      m.capacity, mem_total(&m));
        nops_detect_destroy(d);
    }
    /* a budget that cannot hold the initial arrays fits nothing */
    assert_int_equal(nops_detect_series_fit(&p, 1000, 1024, 40, 0), 0);
    /* the window drives the cost: a longer window, fewer series */
    nops_detect_params w = p;
    w.window = 600;
    assert_true(nops_detect_series_fit(&w, 64u << 20, 1024, 40, 0) <
                nops_detect_series_fit(&p, 64u << 20, 1024, 40, 0) / 4);
}

/* Every allocation of creation and growth can fail: a clean error and no leak. */
static void test_allocation_failures(void **state)
{
    size_t base = nops_alloc_bytes_in_use();
    nops_detect_params p;
    nops_detect_params_default(&p);
    for (long n = 0; n < 40; n++) {
        nops_alloc_fail_after(n, false);
        char err[128] = "";
        nops_detector *d = nops_detect_new(&p, 2, err, sizeof err);
        nops_alloc_fail_after(-1, false);
        if (!d) {
            assert_non_null(strstr(err, "out of memory"));
            assert_int_equal(nops_alloc_bytes_in_use(), base);
            continue;
        }
        /* creation succeeded: now fail inside growth */
        uint32_t slot;
        nops_err e = NOPS_OK;
        nops_alloc_fail_after(n % 12, false);
        for (uint64_t id = 1; id <= 64 && e == NOPS_OK; id++)
            e = nops_detect_slot(d, id, "k", 1, 0, &slot);
        nops_alloc_fail_after(-1, false);
        if (e != NOPS_OK) {
            assert_int_equal(e, NOPS_NOMEM);
            /* the detector still works after the failure */
            assert_int_equal(nops_detect_slot(d, 999, "k", 1, 0, &slot), NOPS_OK);
            uint32_t again;
            assert_int_equal(nops_detect_lookup(d, 999, &again), NOPS_OK);
            assert_int_equal(again, slot);
        }
        nops_detect_destroy(d);
        assert_int_equal(nops_alloc_bytes_in_use(), base);
    }
}

/* A saved series restores to the very same detector state: every detector's (the CUSUM's
 * baseline, gate, sums and restart age, the EWMA, the resolution, the window) — the next
 * points give bit-identical outputs. And an "NDS1" record of the previous version still
 * restores, its series starting warm-up from its window. */
static void test_snapshot_roundtrip_all_detectors(void **state)
{
    (void)state;
    nops_detector *a = make(4, 0), *b = make(4, 0);
    uint32_t sa, sb;
    assert_int_equal(nops_detect_slot(a, 0, "snap{k=\"1\"}", 11, 0, &sa), NOPS_OK);
    uint64_t x = 7;
    float v[4000];
    for (int t = 0; t < 4000; t++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        v[t] = (float)(50.0 + (double)(x >> 40) / 16777216.0 + (t >= 2500 ? 2.0 : 0.0) +
                       (t % 700 == 300 ? 9.0 : 0.0));
    }
    float z[2], ze[2], r[2];
    uint8_t f[2];
    for (int t = 0; t < 3000; t++) {
        nops_detect_out o = {z, ze, f, r};
        nops_detect_update_pairs(a, &sa, &v[t], 1, &o);
    }
    uint8_t rec[1024];
    size_t n = nops_detect_save_series(a, sa, rec, sizeof rec), used = 0;
    assert_true(n > 0);
    /* the record's previous value (after magic, W, key length, the 11-byte key, meta, em, ev
     * and age) is the last point: the kernels with a window keep it only in the ring */
    float last;
    memcpy(&last, rec + 12 + 11 + 20 + 4, 4);
    assert_memory_equal(&last, &v[2999], 4);
    assert_int_equal(nops_detect_restore_series(b, rec, n, 0, &used, &sb), NOPS_OK);
    assert_int_equal(used, n);
    for (int t = 3000; t < 4000; t++) {
        nops_detect_out oa = {&z[0], &ze[0], &f[0], &r[0]}, ob = {&z[1], &ze[1], &f[1], &r[1]};
        nops_detect_update_pairs(a, &sa, &v[t], 1, &oa);
        nops_detect_update_pairs(b, &sb, &v[t], 1, &ob);
        assert_memory_equal(&z[0], &z[1], sizeof z[0]);
        assert_memory_equal(&ze[0], &ze[1], sizeof ze[0]);
        assert_memory_equal(&r[0], &r[1], sizeof r[0]);
        assert_int_equal(f[0], f[1]);
    }
    /* NDS1: magic, W, key length, key, meta (count 60, position 0), em, ev, 60 values */
    uint8_t old[4 * 3 + 1 + 4 + 8 + 8 + 60 * 4], *p = old;
    const uint32_t hdr[3] = {0x3153444eu, 60, 1}, meta = 60;
    const double em = 10.0, ev = 1.0;
    memcpy(p, hdr, sizeof hdr);
    p += sizeof hdr;
    *p++ = 'q';
    memcpy(p, &meta, 4);
    memcpy(p + 4, &em, 8);
    memcpy(p + 12, &ev, 8);
    p += 20;
    for (int i = 0; i < 60; i++) {
        const float w = 10.0f + (float)(i % 3);
        memcpy(p + 4 * i, &w, 4);
    }
    uint32_t sq;
    assert_int_equal(nops_detect_restore_series(b, old, sizeof old, 0, &used, &sq), NOPS_OK);
    assert_int_equal(used, sizeof old);
    /* 60 points of history: warm after 60 more (the default warm-up is 120) */
    for (int t = 0; t < 60; t++) {
        const float y = 10.0f + (float)(t % 3);
        nops_detect_out o = {z, ze, f, r};
        nops_detect_update_pairs(b, &sq, &y, 1, &o);
        assert_false(f[0] & NOPS_DETECT_WARM);
    }
    const float y = 10.0f;
    nops_detect_out o = {z, ze, f, r};
    nops_detect_update_pairs(b, &sq, &y, 1, &o);
    assert_true(f[0] & NOPS_DETECT_WARM);
    nops_detect_destroy(a);
    nops_detect_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_canonical_and_sorted),
        cmocka_unit_test(test_key_escaping_and_errors),
        cmocka_unit_test(test_slots_dense_and_stable),
        cmocka_unit_test(test_growth_keeps_state),
        cmocka_unit_test(test_growth_matches_presized),
        cmocka_unit_test(test_eviction_against_model),
        cmocka_unit_test(test_evicted_slot_is_reset),
        cmocka_unit_test(test_evicted_anomalous_is_reported),
        cmocka_unit_test(test_memory_report),
        cmocka_unit_test(test_series_budget),
        cmocka_unit_test(test_allocation_failures),
        cmocka_unit_test(test_snapshot_roundtrip_all_detectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
