/*
 * test_correlate.c — signals into incidents: shared grouping labels, correlated windows (Pearson
 * through OpenBLAS), the time window, common labels, and resolution after all series cleared.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "correlate/correlate.h"
#include "detect/detect.h" /* nops_detect_key_id */

#include <math.h>
#include <stdio.h>
#include <string.h>

#define S 1000000000ll

static nops_correlator *make(void)
{
    nops_correlate_params p = {120, 0.8, "service,host,cluster", 300};
    char err[128];
    nops_correlator *c = nops_correlate_new(&p, 60, err, sizeof err);
    assert_non_null(c);
    return c;
}

static nops_signal sig(const char *series, int64_t ts, double score)
{
    nops_signal s;
    memset(&s, 0, sizeof s);
    assert_int_equal(nops_signal_set_series(&s, series), NOPS_OK);
    s.series_id = nops_detect_key_id(series, strlen(series));
    snprintf(s.id, sizeof s.id, "%016llx", (unsigned long long)(s.series_id ^ (uint64_t)ts));
    s.ts_ns = ts;
    s.score = score;
    return s;
}

static void window(float *w, int n, double phase, double noise_seed)
{
    for (int i = 0; i < n; i++)
        w[i] = (float)(10.0 + sin(i * 0.3 + phase) + 0.01 * sin(i * 7.7 * noise_seed));
}

static void test_shared_label_joins(void **state)
{
    nops_correlator *c = make();
    nops_incident inc1, inc2, inc3;
    bool opened;
    nops_signal a = sig("latency{host=\"web-1\",region=\"eu\",service=\"checkout\"}", 100 * S, 0.9);
    nops_signal b = sig("errors{host=\"web-2\",region=\"eu\",service=\"checkout\"}", 130 * S, 0.99);
    nops_signal d = sig("latency{host=\"db-1\",region=\"us\",service=\"ledger\"}", 140 * S, 0.7);
    assert_int_equal(nops_correlate_signal(c, &a, NULL, 0, &inc1, &opened), NOPS_OK);
    assert_true(opened);
    assert_int_equal(nops_correlate_signal(c, &b, NULL, 0, &inc2, &opened), NOPS_OK);
    assert_false(opened);
    assert_string_equal(inc1.id, inc2.id);
    assert_int_equal(inc2.n_signals, 2);
    assert_string_equal(inc2.labels, "region=\"eu\",service=\"checkout\""); /* common to both */
    assert_non_null(strstr(inc2.root_cause_hint, "earliest: latency{host=\"web-1\""));
    assert_non_null(strstr(inc2.root_cause_hint, "strongest: errors{host=\"web-2\""));
    assert_int_equal(nops_correlate_signal(c, &d, NULL, 0, &inc3, &opened), NOPS_OK);
    assert_true(opened); /* no shared grouping label, no window: its own incident */
    assert_string_not_equal(inc3.id, inc1.id);
    /* outside the time window a shared label no longer joins */
    nops_signal late = sig("cpu{host=\"web-9\",service=\"checkout\"}", 400 * S, 0.6);
    assert_int_equal(nops_correlate_signal(c, &late, NULL, 0, &inc3, &opened), NOPS_OK);
    assert_true(opened);
    nops_correlate_destroy(c);
}

static void test_correlated_windows_join(void **state)
{
    nops_correlator *c = make();
    float w1[60], w2[60], w3[60];
    window(w1, 60, 0.0, 1.0);
    window(w2, 60, 0.05, 2.0);  /* nearly the same shape: r ≈ 1 */
    window(w3, 60, 1.57, 3.0);  /* a quarter period off: r ≈ 0 */
    for (int i = 0; i < 60; i++)
        w2[i] = 500.0f - 3.0f * w2[i]; /* other level and scale, inverted: |r| still ≈ 1 */
    nops_incident i1, i2, i3;
    bool opened;
    nops_signal a = sig("queue_depth{broker=\"k1\"}", 100 * S, 0.8);
    nops_signal b = sig("consumer_lag{app=\"billing\"}", 110 * S, 0.8);
    nops_signal d = sig("temperature{rack=\"r7\"}", 115 * S, 0.8);
    nops_correlate_signal(c, &a, w1, 60, &i1, &opened);
    assert_true(opened);
    nops_correlate_signal(c, &b, w2, 60, &i2, &opened);
    assert_false(opened); /* joined through |Pearson r| ≥ 0.8 */
    assert_string_equal(i1.id, i2.id);
    assert_string_equal(i2.labels, ""); /* nothing in common */
    nops_correlate_signal(c, &d, w3, 60, &i3, &opened);
    assert_true(opened);
    /* a constant window cannot be standardised: it never joins by correlation */
    float flat[60];
    for (int i = 0; i < 60; i++)
        flat[i] = 5.0f;
    nops_signal e = sig("constant{x=\"1\"}", 116 * S, 0.5);
    nops_correlate_signal(c, &e, flat, 60, &i3, &opened);
    assert_true(opened);
    nops_correlate_destroy(c);
}

/* A spike at the end of a cut-short window says nothing about shape: two such windows of
 * unrelated series (noise of their own, r ≈ 0.45 over the full 60 points) do not join; the same
 * series with their full windows do not either, so grouping does not hang on window length. */
static void test_short_windows_do_not_join(void **state)
{
    float a[60], b[60];
    for (int i = 0; i < 60; i++) { /* two unrelated noises, a spike at the end of each */
        a[i] = (float)(100.0 + sin(i * 1.7) * 0.5 + sin(i * 0.31) * 0.4 + (i == 59 ? 4.0 : 0));
        b[i] = (float)(200.0 + cos(i * 2.3) * 0.5 + sin(i * 0.53) * 0.4 + (i == 59 ? 4.0 : 0));
    }
    for (int n = 60; n >= 11; n -= 49) {
        nops_correlator *c = make();
        nops_incident i1, i2;
        bool opened;
        nops_signal x = sig("lat{host=\"a1\",service=\"a\"}", 100 * S, 0.9);
        nops_signal y = sig("err{host=\"b1\",service=\"b\"}", 100 * S, 0.9);
        nops_correlate_signal(c, &x, a + 60 - n, (uint32_t)n, &i1, &opened);
        assert_true(opened);
        nops_correlate_signal(c, &y, b + 60 - n, (uint32_t)n, &i2, &opened);
        if (!opened)
            fail_msg("windows of %d points joined two unrelated series", n);
        assert_string_equal(i2.labels, "host=\"b1\",service=\"b\"");
        nops_correlate_destroy(c);
    }
}

static void test_resolution(void **state)
{
    nops_correlator *c = make();
    nops_incident inc, done[4];
    bool opened;
    nops_signal a = sig("a{service=\"s\"}", 100 * S, 0.9);
    nops_signal b = sig("b{service=\"s\"}", 105 * S, 0.9);
    nops_correlate_signal(c, &a, NULL, 0, &inc, &opened);
    nops_correlate_signal(c, &b, NULL, 0, &inc, &opened);
    uint64_t open;
    nops_correlate_counts(c, &open, NULL, NULL);
    assert_int_equal(open, 1);
    nops_correlate_cleared(c, a.series_id, 110 * S);
    assert_int_equal(nops_correlate_tick(c, 1000 * S, done, 4), 0); /* b still anomalous */
    nops_correlate_cleared(c, b.series_id, 120 * S);
    assert_int_equal(nops_correlate_tick(c, 120 * S + 299 * S, done, 4), 0); /* not yet 300 s */
    assert_int_equal(nops_correlate_tick(c, 120 * S + 300 * S, done, 4), 1);
    assert_int_equal(done[0].status, NOPS_INCIDENT_RESOLVED);
    assert_string_equal(done[0].id, inc.id);
    uint64_t opened_total, resolved;
    nops_correlate_counts(c, &open, &opened_total, &resolved);
    assert_int_equal(open, 0);
    assert_int_equal(opened_total, 1);
    assert_int_equal(resolved, 1);
    /* a resolved incident is not joined again: a new signal opens a new one */
    nops_signal later = sig("a{service=\"s\"}", 430 * S, 0.9);
    nops_correlate_signal(c, &later, NULL, 0, &inc, &opened);
    assert_true(opened);
    nops_correlate_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_label_joins),
        cmocka_unit_test(test_correlated_windows_join),
        cmocka_unit_test(test_resolution),
        cmocka_unit_test(test_short_windows_do_not_join),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
