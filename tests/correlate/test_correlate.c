/*
 * test_correlate.c — signals into incidents, host first:
 *   - several metrics of one host make one incident, whatever their windows;
 *   - several hosts of one service whose windows (as captured at detection) move together make
 *     one service-wide incident; two hosts of different services at the same time, or of one
 *     service with unrelated windows, stay apart; a cut-short window never joins hosts;
 *   - severity from score, breadth and duration, never lowered; a single weak signal is info;
 *   - ids depend only on the data (host and first signal), a replayed signal is not counted
 *     twice, and saved state carries open incidents across a restart;
 *   - resolution after all series cleared; a host that signals again within reopen_s of its
 *     incident resolving reopens it (same id), after that it opens a new one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "correlate/correlate.h"
#include "detect/detect.h" /* nops_detect_key_id */
#include "sinks/sinks.h"   /* nops_incident_json */

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S 1000000000ll
#define W 60

static nops_correlator *make(void)
{
    nops_correlate_params p;
    nops_correlate_defaults(&p);
    assert_int_equal(p.window_s, 120);
    char err[128];
    nops_correlator *c = nops_correlate_new(&p, W, err, sizeof err);
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

/* Noise of its own (seeded) around `level`, with a step of `step` over the last 5 points. */
static void window(float *w, unsigned seed, double level, double step)
{
    for (int i = 0; i < W; i++) {
        seed = seed * 1103515245u + 12345u;
        w[i] = (float)(level + ((seed >> 8) % 1000) / 1000.0 - 0.5 + (i >= W - 5 ? step : 0));
    }
}

static nops_incident place_in(nops_correlator *c, int32_t part, const nops_signal *s,
                              const float *w, bool want_opened)
{
    nops_incident inc;
    bool opened;
    assert_int_equal(nops_correlate_signal(c, s, part, w, w ? W : 0, &inc, &opened), NOPS_OK);
    if (opened != want_opened)
        fail_msg("%s: opened %d, expected %d", s->series, opened, want_opened);
    return inc;
}

static nops_incident place(nops_correlator *c, const nops_signal *s, const float *w,
                           bool want_opened)
{
    return place_in(c, 0, s, w, want_opened);
}

/* A correlator leaves the process's OpenBLAS on one thread: its threaded pool hangs when the
 * pipeline's sgemv and the learning loop's FAISS training enter it at once (the demo with the
 * learner stopped consuming). Failed before: the pool kept its default thread count. */
static void test_blas_single_threaded(void **state)
{
    (void)state;
    openblas_set_num_threads(2);
    nops_correlator *c = make();
    assert_int_equal(openblas_get_num_threads(), 1);
    nops_correlate_destroy(c);
}

static void test_one_host_many_metrics(void **state)
{
    (void)state;
    nops_correlator *c = make();
    float a[W], b[W], d[W];
    window(a, 1, 50, 10);
    window(b, 2, 200, -40); /* shapes that need not correlate */
    window(d, 3, 5, 0);
    nops_signal s1 = sig("cpu{host=\"web-1\",service=\"checkout\"}", 100 * S, 0.7);
    nops_signal s2 = sig("latency{host=\"web-1\",service=\"checkout\"}", 110 * S, 0.7);
    nops_signal s3 = sig("errors{host=\"web-1\",service=\"checkout\"}", 130 * S, 0.7);
    nops_incident i1 = place(c, &s1, a, true);
    assert_int_equal(i1.severity, NOPS_SEVERITY_INFO); /* one weak signal: not paging */
    nops_incident i2 = place(c, &s2, b, false);
    nops_incident i3 = place(c, &s3, d, false);
    assert_string_equal(i1.id, i3.id);
    assert_string_equal(i2.id, i3.id);
    assert_int_equal(i3.n_signals, 3);
    assert_int_equal(i3.n_series, 3);
    assert_int_equal(i3.n_hosts, 1);
    assert_int_equal(i3.severity, NOPS_SEVERITY_WARNING); /* several metrics */
    assert_string_equal(i3.labels, "host=\"web-1\",service=\"checkout\"");
    /* another host of the same service at the same time, unrelated window: its own incident */
    float e[W];
    window(e, 9, 70, 0);
    nops_signal s4 = sig("cpu{host=\"web-2\",service=\"checkout\"}", 131 * S, 0.9);
    nops_incident i4 = place(c, &s4, e, true);
    assert_string_not_equal(i4.id, i3.id);
    nops_correlate_destroy(c);
}

/* A host's incident takes its later signals for as long as it is not due to resolve: a level
 * shift that signals when it starts and again when it ends, minutes apart, is one incident. */
static void test_host_incident_until_resolved(void **state)
{
    (void)state;
    nops_correlator *c = make();
    nops_signal a = sig("disk{host=\"db-1\"}", 100 * S, 0.9);
    nops_signal b = sig("disk{host=\"db-1\"}", 350 * S, 0.9);  /* 250 s later: past window_s */
    /* resolved at 660 s (cleared 360 s + resolve_s): past reopen_s (1800 s) after that */
    nops_signal d = sig("disk{host=\"db-1\"}", 2460 * S, 0.9);
    nops_incident i1 = place(c, &a, NULL, true);
    nops_correlate_cleared(c, a.series_id, 110 * S);
    nops_incident i2 = place(c, &b, NULL, false); /* 240 s after the clear, resolve_s is 300 */
    assert_string_equal(i1.id, i2.id);
    assert_int_equal(i2.n_signals, 2);
    nops_correlate_cleared(c, b.series_id, 360 * S);
    place(c, &d, NULL, true);
    nops_correlate_destroy(c);
}

static void test_two_unrelated_hosts_same_time(void **state)
{
    (void)state;
    nops_correlator *c = make();
    float a[W], b[W];
    window(a, 1, 50, 10);
    memcpy(b, a, sizeof b); /* the very same shape: r = 1 */
    nops_signal x = sig("latency{host=\"web-1\",service=\"checkout\"}", 100 * S, 0.95);
    nops_signal y = sig("latency{host=\"db-1\",service=\"ledger\"}", 100 * S, 0.95);
    nops_signal z = sig("temp{rack=\"r7\"}", 100 * S, 0.95); /* no host, no service */
    nops_incident ix = place(c, &x, a, true);
    nops_incident iy = place(c, &y, b, true); /* other service: never joins */
    nops_incident iz = place(c, &z, b, true);
    assert_string_not_equal(ix.id, iy.id);
    assert_string_not_equal(iz.id, iy.id);
    assert_int_equal(iy.n_hosts, 1);
    nops_correlate_destroy(c);
}

static void test_several_hosts_one_service(void **state)
{
    (void)state;
    nops_correlator *c = make();
    float w[4][W];
    for (int h = 0; h < 4; h++)
        window(w[h], 10u + (unsigned)h, 100 + 10 * h, 8); /* all step up together */
    char key[128];
    nops_incident inc[4];
    for (int h = 0; h < 3; h++) {
        snprintf(key, sizeof key, "latency{host=\"web-%d\",service=\"checkout\"}", h);
        nops_signal s = sig(key, (100 + h) * S, 0.7);
        inc[h] = place(c, &s, w[h], h == 0);
        assert_string_equal(inc[h].id, inc[0].id);
    }
    assert_int_equal(inc[2].n_hosts, 3);
    assert_int_equal(inc[2].severity, NOPS_SEVERITY_CRITICAL); /* three hosts */
    assert_string_equal(inc[2].labels, "service=\"checkout\""); /* the host is not common */
    assert_non_null(strstr(inc[2].summary, "service-wide"));
    /* a second metric of a host already in it joins by host */
    nops_signal s = sig("errors{host=\"web-1\",service=\"checkout\"}", 105 * S, 0.6);
    nops_incident j = place(c, &s, NULL, false);
    assert_string_equal(j.id, inc[0].id);
    /* the same shape in another metric of another host of the service: that host has a
     * problem of its own (the service moves when one metric moves on several hosts) */
    nops_signal m = sig("cpu{host=\"web-3\",service=\"checkout\"}", 104 * S, 0.7);
    place(c, &m, w[3], true);
    /* the same shape on a host of another service stays out */
    nops_signal o = sig("latency{host=\"pay-1\",service=\"payments\"}", 103 * S, 0.7);
    place(c, &o, w[3], true);
    nops_correlate_destroy(c);
}

/* A service of 100 hosts moving together is one incident, and each host's second signal (the
 * way back) finds it by host: before, an incident tracked 32 hosts, so the 33rd and later
 * hosts' next signals opened incidents of their own. */
static void test_large_service_stays_one_incident(void **state)
{
    (void)state;
    nops_correlator *c = make();
    float w[W];
    window(w, 7u, 100, 8);
    char key[128];
    nops_incident first = {0};
    for (int pass = 0; pass < 2; pass++)
        for (int h = 0; h < 100; h++) {
            snprintf(key, sizeof key, "latency{host=\"web-%03d\",service=\"checkout\"}", h);
            nops_signal s = sig(key, (100 + pass * 30) * S + h, 0.7);
            /* the way back carries no window: only the host can place it */
            nops_incident inc = place(c, &s, pass ? NULL : w, pass == 0 && h == 0);
            if (pass == 0 && h == 0)
                first = inc;
            assert_string_equal(inc.id, first.id);
        }
    nops_correlate_destroy(c);
}

/* Host first, except over a weak blip: a host whose only live incident is info still joins
 * its service moving in the same metric; one whose incident pages (warning) stays in it. */
static void test_info_blip_does_not_hold_a_host_back(void **state)
{
    (void)state;
    nops_correlator *c = make();
    float w[3][W];
    for (int h = 0; h < 3; h++)
        window(w[h], 20u + (unsigned)h, 100, 8);
    nops_signal blip = sig("disk{host=\"web-1\",service=\"checkout\"}", 90 * S, 0.6);
    nops_incident own = place(c, &blip, NULL, true);
    assert_int_equal(own.severity, NOPS_SEVERITY_INFO);
    nops_signal strong = sig("disk{host=\"web-2\",service=\"checkout\"}", 90 * S, 0.95);
    nops_incident paging = place(c, &strong, NULL, true);
    assert_int_equal(paging.severity, NOPS_SEVERITY_WARNING);
    nops_signal l0 = sig("latency{host=\"web-0\",service=\"checkout\"}", 100 * S, 0.7);
    nops_signal l1 = sig("latency{host=\"web-1\",service=\"checkout\"}", 101 * S, 0.7);
    nops_signal l2 = sig("latency{host=\"web-2\",service=\"checkout\"}", 102 * S, 0.7);
    nops_incident svc = place(c, &l0, w[0], true);
    nops_incident j1 = place(c, &l1, w[1], false);
    assert_string_equal(j1.id, svc.id); /* over its info blip: with the service */
    assert_int_equal(j1.n_hosts, 2);
    nops_incident j2 = place(c, &l2, w[2], false);
    assert_string_equal(j2.id, paging.id); /* its own incident pages: host first */
    nops_correlate_destroy(c);
}

/* A straggler — a host of a service that is moving, signalling the same metric at the same
 * time but with a window of another shape (|r| < min_r) — opens an incident of its own that
 * does not page (info) while it holds one series; before, a strong straggler paged (warning).
 * A second metric of that host (a problem of its own) makes it page by the usual rules. Only
 * a live service-wide incident makes stragglers, only of its metric and within window_s. */
static void test_straggler_does_not_page(void **state)
{
    (void)state;
    nops_correlator *c = make();
    float w[3][W], odd[W], odd2[W];
    for (int h = 0; h < 3; h++)
        window(w[h], 30u + (unsigned)h, 100, 8); /* the service steps up together */
    for (int i = 0; i < W; i++) { /* unrelated shapes */
        odd[i] = (float)(100.0 + 3.0 * sin(i * 0.2));
        odd2[i] = (float)(100.0 + 3.0 * cos(i * 0.7) * (i % 7));
    }
    /* while the service's incident holds one host, a strong signal of another host pages */
    nops_signal a = sig("latency{host=\"web-0\",service=\"checkout\"}", 100 * S, 0.7);
    nops_incident svc = place(c, &a, w[0], true);
    nops_signal lone = sig("latency{host=\"web-9\",service=\"checkout\"}", 100 * S, 0.95);
    assert_int_equal(place(c, &lone, odd2, true).severity, NOPS_SEVERITY_WARNING);
    for (int h = 1; h < 3; h++) {
        char key[128];
        snprintf(key, sizeof key, "latency{host=\"web-%d\",service=\"checkout\"}", h);
        nops_signal s = sig(key, (100 + h) * S, 0.7);
        svc = place(c, &s, w[h], false);
    }
    assert_int_equal(svc.n_hosts, 3);
    /* the straggler: strong, same metric, another shape, 10 s later */
    nops_signal st = sig("latency{host=\"web-3\",service=\"checkout\"}", 112 * S, 0.95);
    nops_incident j = place(c, &st, odd, true);
    assert_int_equal(j.severity, NOPS_SEVERITY_INFO);
    char want[64];
    snprintf(want, sizeof want, "straggler of service-wide %s", svc.id);
    assert_non_null(strstr(j.summary, want));
    /* the same without a usable window */
    nops_signal st3 = sig("latency{host=\"web-6\",service=\"checkout\"}", 113 * S, 0.95);
    assert_int_equal(place(c, &st3, NULL, true).severity, NOPS_SEVERITY_INFO);
    /* its host's second metric: a problem of its own, it pages */
    nops_signal st2 = sig("errors{host=\"web-3\",service=\"checkout\"}", 115 * S, 0.7);
    nops_incident j2 = place(c, &st2, NULL, false);
    assert_string_equal(j2.id, j.id);
    assert_int_equal(j2.severity, NOPS_SEVERITY_WARNING);
    /* another metric, another service, or later than window_s: not stragglers */
    nops_signal m = sig("cpu{host=\"web-4\",service=\"checkout\"}", 113 * S, 0.95);
    assert_int_equal(place(c, &m, odd, true).severity, NOPS_SEVERITY_WARNING);
    nops_signal o = sig("latency{host=\"pay-1\",service=\"payments\"}", 113 * S, 0.95);
    assert_int_equal(place(c, &o, odd, true).severity, NOPS_SEVERITY_WARNING);
    nops_signal late = sig("latency{host=\"web-5\",service=\"checkout\"}", 300 * S, 0.95);
    assert_int_equal(place(c, &late, odd, true).severity, NOPS_SEVERITY_WARNING);
    nops_correlate_destroy(c);
}

/* One event that began as two incidents — its first two hosts' windows did not correlate
 * with each other (r 0.43) — is merged when a third host correlates with both (r 0.83, 0.86):
 * before, the third joined one and the service stayed split (the demo's deploy regression in
 * incidents of 47, 33 and 2 hosts). The merged one's last record names where it went. A host
 * with a problem of its own (several series) is never merged in. */
static void test_bridged_incidents_merge(void **state)
{
    (void)state;
    nops_correlator *c = make();
    float a[W], b[W], m[W];
    for (int i = 0; i < W; i++) {
        const float step = i >= W - 5 ? 8.0f : 0.0f;
        a[i] = (float)(100.0 + step + 2.0 * sin(i * 0.5));
        b[i] = (float)(100.0 + step - 2.0 * sin(i * 0.5));
        m[i] = 100.0f + step;
    }
    nops_signal sa = sig("latency{host=\"web-0\",service=\"checkout\"}", 100 * S, 0.7);
    nops_signal sb = sig("latency{host=\"web-1\",service=\"checkout\"}", 100 * S, 0.7);
    nops_signal sm = sig("latency{host=\"web-2\",service=\"checkout\"}", 100 * S, 0.7);
    /* a host with a problem of its own (cpu, then latency of a's shape) is not merged in */
    nops_signal d1 = sig("cpu{host=\"web-9\",service=\"checkout\"}", 99 * S, 0.7);
    nops_signal d2 = sig("latency{host=\"web-9\",service=\"checkout\"}", 99 * S, 0.7);
    nops_incident own = place(c, &d1, NULL, true);
    assert_string_equal(place(c, &d2, a, false).id, own.id);
    nops_incident y = place(c, &sb, b, true); /* r(a, b) 0.43: its own */
    assert_string_equal(place(c, &sm, m, false).id, y.id);
    nops_incident out[4];
    assert_int_equal(nops_correlate_tick(c, 101 * S, out, 4), 0);
    uint64_t open = 0;
    nops_correlate_counts(c, &open, NULL, NULL);
    assert_int_equal(open, 2);
    nops_correlate_destroy(c);

    /* the plain case: a, b, then m bridging them */
    c = make();
    nops_incident ia = place(c, &sa, a, true);
    nops_incident ib = place(c, &sb, b, true);
    assert_string_not_equal(ia.id, ib.id);
    nops_incident im = place(c, &sm, m, false);
    assert_string_equal(im.id, ib.id); /* the better match (0.86) */
    assert_int_equal(im.n_hosts, 3);
    assert_int_equal(im.n_signals, 3);
    assert_int_equal(im.severity, NOPS_SEVERITY_CRITICAL);
    size_t n = nops_correlate_tick(c, 101 * S, out, 4); /* long before anything resolves */
    assert_int_equal(n, 1);
    assert_string_equal(out[0].id, ia.id);
    assert_int_equal(out[0].status, NOPS_INCIDENT_RESOLVED);
    char want[80];
    snprintf(want, sizeof want, "merged into service-wide incident %s", ib.id);
    assert_non_null(strstr(out[0].summary, want));
    assert_int_equal(out[0].n_signals, 0); /* its signal moved with it */
    nops_correlate_counts(c, &open, NULL, NULL);
    assert_int_equal(open, 1);
    /* web-0's next signal finds the merged incident by host */
    nops_signal again = sig("errors{host=\"web-0\",service=\"checkout\"}", 110 * S, 0.7);
    assert_string_equal(place(c, &again, NULL, false).id, ib.id);
    nops_correlate_destroy(c);

    /* an incident its host reopened (an earlier problem coming back) is not merged in */
    c = make();
    nops_signal early = sig("latency{host=\"web-0\",service=\"checkout\"}", 10 * S, 0.7);
    nops_incident e = place(c, &early, NULL, true);
    nops_correlate_cleared(c, early.series_id, 11 * S);
    assert_int_equal(nops_correlate_tick(c, 500 * S, out, 4), 1); /* resolved, kept */
    sa.ts_ns = sb.ts_ns = sm.ts_ns = 900 * S; /* within reopen_s */
    assert_string_equal(place(c, &sa, a, false).id, e.id); /* reopened */
    ib = place(c, &sb, b, true);
    assert_string_equal(place(c, &sm, m, false).id, ib.id);
    assert_int_equal(nops_correlate_tick(c, 901 * S, out, 4), 0); /* nothing merged */
    nops_correlate_destroy(c);
}

/* A spike at the end of a cut-short window says nothing about shape: two such windows of
 * hosts of one service do not join; their full windows (r ≈ 0.45) do not either, so grouping
 * does not hang on how much of a window was captured. */
static void test_short_windows_do_not_join(void **state)
{
    (void)state;
    float a[W], b[W];
    for (int i = 0; i < W; i++) { /* two unrelated noises, a spike at the end of each */
        a[i] = (float)(100.0 + sin(i * 1.7) * 0.5 + sin(i * 0.31) * 0.4 + (i == 59 ? 4.0 : 0));
        b[i] = (float)(200.0 + cos(i * 2.3) * 0.5 + sin(i * 0.53) * 0.4 + (i == 59 ? 4.0 : 0));
    }
    for (int n = 60; n >= 11; n -= 49) {
        nops_correlator *c = make();
        nops_incident i1, i2;
        bool opened;
        nops_signal x = sig("lat{host=\"a1\",service=\"a\"}", 100 * S, 0.9);
        nops_signal y = sig("err{host=\"b1\",service=\"a\"}", 100 * S, 0.9);
        nops_correlate_signal(c, &x, 0, a + 60 - n, (uint32_t)n, &i1, &opened);
        assert_true(opened);
        nops_correlate_signal(c, &y, 0, b + 60 - n, (uint32_t)n, &i2, &opened);
        if (!opened)
            fail_msg("windows of %d points joined two unrelated hosts", n);
        assert_string_equal(i2.labels, "host=\"b1\",service=\"a\"");
        nops_correlate_destroy(c);
    }
}

static void test_severity_rules(void **state)
{
    (void)state;
    nops_correlate_params p;
    nops_correlate_defaults(&p);
    const int64_t m = 60 * S;
    struct {
        uint32_t series, hosts;
        double best;
        int64_t span, single;
        nops_severity want;
    } cases[] = {
        {1, 1, 0.60, 0, 0, NOPS_SEVERITY_INFO},         /* one weak signal */
        {1, 1, 0.89, 9 * m, 9 * m, NOPS_SEVERITY_INFO}, /* weak, short of 10 min */
        {1, 1, 0.60, 10 * m, 10 * m, NOPS_SEVERITY_WARNING}, /* lasting */
        {1, 1, 0.90, 0, 0, NOPS_SEVERITY_WARNING},      /* strong */
        {2, 1, 0.50, 0, 0, NOPS_SEVERITY_WARNING},      /* several metrics of a host */
        {3, 1, 0.95, 0, 0, NOPS_SEVERITY_CRITICAL},     /* broad and strong */
        {3, 1, 0.80, 0, 0, NOPS_SEVERITY_WARNING},      /* broad, weak */
        {2, 1, 0.50, 30 * m, 1, NOPS_SEVERITY_CRITICAL}, /* several series for 30 min */
        {2, 2, 0.60, 0, 0, NOPS_SEVERITY_WARNING},      /* two hosts, weak */
        {2, 2, 0.95, 0, 0, NOPS_SEVERITY_CRITICAL},     /* two hosts, strong */
        {3, 3, 0.50, 0, 0, NOPS_SEVERITY_CRITICAL},     /* three hosts */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nops_severity got = nops_correlate_severity(&p, cases[i].series, cases[i].hosts,
                                                    cases[i].best, cases[i].span,
                                                    cases[i].single);
        if (got != cases[i].want)
            fail_msg("case %zu: %s, expected %s", i, nops_severity_name(got),
                     nops_severity_name(cases[i].want));
    }
    /* in an incident: a repeat of one weak series over 10 min escalates it, and a weaker later
     * signal never lowers it; the JSON carries the severity */
    nops_correlator *c = make();
    nops_signal a = sig("disk{host=\"db-1\"}", 0, 0.6);
    nops_incident i = place(c, &a, NULL, true);
    assert_int_equal(i.severity, NOPS_SEVERITY_INFO);
    nops_signal b = sig("disk{host=\"db-1\"}", 100 * S, 0.95);
    i = place(c, &b, NULL, false);
    assert_int_equal(i.severity, NOPS_SEVERITY_WARNING);
    nops_signal d = sig("disk{host=\"db-1\"}", 200 * S, 0.55);
    i = place(c, &d, NULL, false);
    assert_int_equal(i.severity, NOPS_SEVERITY_WARNING);
    char json[8192];
    assert_true(nops_incident_json(&i, json, sizeof json) > 0);
    assert_non_null(strstr(json, "\"severity\":\"warning\""));
    nops_correlate_destroy(c);
}

/* Ids hang on the data only; a signal seen again changes nothing. */
static void test_identity_and_replay(void **state)
{
    (void)state;
    nops_correlator *c1 = make(), *c2 = make();
    float w[W];
    window(w, 5, 10, 3);
    nops_signal other = sig("cpu{host=\"x-9\"}", 90 * S, 0.9);
    nops_signal a = sig("cpu{host=\"web-1\"}", 100 * S, 0.9);
    nops_signal b = sig("mem{host=\"web-1\"}", 101 * S, 0.9);
    place(c1, &other, NULL, true); /* c1 saw something else first: no counter moves ids */
    nops_incident x = place(c1, &a, w, true);
    nops_incident y = place(c2, &a, w, true);
    assert_string_equal(x.id, y.id);
    x = place(c1, &b, NULL, false);
    nops_incident again = place(c1, &b, NULL, false); /* replayed */
    assert_int_equal(again.n_signals, 2);
    assert_string_equal(again.id, x.id);
    nops_correlate_destroy(c1);
    nops_correlate_destroy(c2);
}

/* A partition's saved state carries its open incidents into a new correlator (a restart, or
 * the next owner after a rebalance): the next signal of the host updates the same incident, a
 * replayed one is recognised; other partitions' incidents are neither saved nor touched;
 * damaged bytes are refused. */
static void test_save_and_load(void **state)
{
    (void)state;
    nops_correlator *c = make();
    float w[W];
    window(w, 4, 10, 5);
    nops_signal a = sig("cpu{host=\"web-1\",service=\"s\"}", 100 * S, 0.9);
    nops_signal b = sig("mem{host=\"web-1\",service=\"s\"}", 110 * S, 0.9);
    nops_signal d = sig("io{host=\"web-1\",service=\"s\"}", 120 * S, 0.9);
    nops_signal x = sig("cpu{host=\"db-1\"}", 100 * S, 0.9);
    nops_incident first = place_in(c, 3, &a, w, true);
    place_in(c, 3, &b, w, false);
    place_in(c, 5, &x, NULL, true);
    void *blob;
    size_t len;
    assert_int_equal(nops_correlate_save(c, 3, &blob, &len), NOPS_OK);
    nops_correlate_destroy(c);

    nops_correlator *r = make();
    nops_incident stale = place_in(r, 3, &d, NULL, true); /* replaced by the load */
    nops_signal y = sig("cpu{host=\"db-2\"}", 100 * S, 0.9);
    nops_incident kept = place_in(r, 5, &y, NULL, true);
    assert_int_equal(nops_correlate_load(r, 3, blob, len - 1), NOPS_PARSE);
    assert_int_equal(nops_correlate_load(r, 4, blob, len), NOPS_PARSE); /* not partition 4's */
    assert_int_equal(nops_correlate_load(r, 3, blob, len), NOPS_OK);
    uint64_t open;
    nops_correlate_counts(r, &open, NULL, NULL);
    assert_int_equal(open, 2); /* web-1's, restored; db-2's, kept */
    nops_incident again = place_in(r, 3, &b, w, false); /* replayed after the restart */
    assert_int_equal(again.n_signals, 2);
    assert_string_equal(again.id, first.id);
    nops_incident next = place_in(r, 3, &d, NULL, false);
    assert_string_equal(next.id, first.id);
    assert_string_not_equal(next.id, stale.id);
    assert_int_equal(next.n_signals, 3);
    nops_signal y2 = sig("mem{host=\"db-2\"}", 101 * S, 0.9);
    assert_string_equal(place_in(r, 5, &y2, NULL, false).id, kept.id);
    /* released (the partition went to another instance): forgotten, not resolved */
    nops_correlate_release(r, 3);
    nops_correlate_counts(r, &open, NULL, NULL);
    assert_int_equal(open, 1);
    nops_incident done[4];
    assert_int_equal(nops_correlate_tick(r, 100000 * S, done, 4), 0); /* db-2 still active */
    nops_correlate_destroy(r);

    nops_correlate_params p; /* another window length: refused */
    nops_correlate_defaults(&p);
    char err[128];
    nops_correlator *other = nops_correlate_new(&p, W / 2, err, sizeof err);
    assert_int_equal(nops_correlate_load(other, 3, blob, len), NOPS_PARSE);
    nops_correlate_destroy(other);
    nops_free(blob);
}

/* A saved partition with any one byte damaged (0xff: a bool of 255, a huge count, a time near
 * INT64_MAX, an unknown status) is refused or loads into a correlator that keeps working —
 * nothing read back is trusted for indexing, looping or subtracting (ASan/UBSan pass). */
static void test_load_damaged_bytes(void **state)
{
    (void)state;
    nops_correlator *c = make();
    float w[W];
    window(w, 4, 10, 5);
    nops_signal a = sig("cpu{host=\"web-1\",service=\"s\"}", 100 * S, 0.9);
    nops_signal b = sig("mem{host=\"web-2\",service=\"s\"}", 101 * S, 0.9);
    place_in(c, 3, &a, w, true);
    place_in(c, 3, &b, w, true); /* another host, another metric: an incident of its own */
    void *blob;
    size_t len;
    assert_int_equal(nops_correlate_save(c, 3, &blob, &len), NOPS_OK);
    nops_correlate_destroy(c);
    unsigned char *bad = nops_malloc(len);
    assert_non_null(bad);
    nops_correlator *r = make();
    size_t refused = 0;
    for (size_t at = 0; at < len; at += 3) {
        memcpy(bad, blob, len);
        if (bad[at] == 0xff)
            continue;
        bad[at] = 0xff;
        if (nops_correlate_load(r, 3, bad, len) != NOPS_OK) {
            refused++;
            continue;
        }
        nops_signal d = sig("io{host=\"web-1\",service=\"s\"}", 102 * S, 0.9);
        nops_incident inc;
        bool opened;
        assert_int_equal(nops_correlate_signal(r, &d, 3, w, W, &inc, &opened), NOPS_OK);
        nops_incident done[4];
        while (nops_correlate_tick(r, 100000 * S, done, 4) == 4) {
        }
        nops_correlate_release(r, 3);
    }
    print_message("  %zu of %zu damaged copies refused\n", refused, (len + 2) / 3);
    assert_true(refused > 0);
    nops_correlate_destroy(r);
    nops_free(bad);
    nops_free(blob);
}

static void test_resolution(void **state)
{
    (void)state;
    nops_correlator *c = make();
    nops_incident inc, done[4];
    bool opened;
    nops_signal a = sig("a{host=\"h\"}", 100 * S, 0.9);
    nops_signal b = sig("b{host=\"h\"}", 105 * S, 0.9);
    nops_correlate_signal(c, &a, 0, NULL, 0, &inc, &opened);
    nops_correlate_signal(c, &b, 0, NULL, 0, &inc, &opened);
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
    char first_id[NOPS_ID_LEN];
    memcpy(first_id, inc.id, sizeof first_id);
    uint64_t opened_total, resolved;
    nops_correlate_counts(c, &open, &opened_total, &resolved);
    assert_int_equal(open, 0);
    assert_int_equal(opened_total, 1);
    assert_int_equal(resolved, 1);
    /* time per partition: an incident of a partition whose data lags is judged at its time */
    nops_signal x = sig("a{host=\"p1\"}", 1000 * S, 0.9), y = sig("a{host=\"p2\"}", 1000 * S, 0.9);
    nops_correlate_signal(c, &x, 1, NULL, 0, &inc, &opened);
    nops_correlate_signal(c, &y, 2, NULL, 0, &inc, &opened);
    nops_correlate_cleared(c, x.series_id, 1001 * S);
    nops_correlate_cleared(c, y.series_id, 1001 * S);
    int64_t part_now[3] = {0, 1100 * S, 5000 * S}; /* partition 1 is behind */
    assert_int_equal(nops_correlate_tick_parts(c, 5000 * S, part_now, 3, done, 4), 1);
    assert_string_equal(done[0].id, inc.id); /* partition 2's */
    part_now[1] = 1400 * S;
    assert_int_equal(nops_correlate_tick_parts(c, 5000 * S, part_now, 3, done, 4), 1);
    /* its host signalling again 10 s after it resolved reopens it (test_reopen has more) */
    nops_signal later = sig("a{host=\"h\"}", 430 * S, 0.9);
    nops_correlate_signal(c, &later, 0, NULL, 0, &inc, &opened);
    assert_false(opened);
    assert_string_equal(inc.id, first_id);
    assert_int_equal(inc.status, NOPS_INCIDENT_OPEN);
    nops_correlate_destroy(c);
}

/* One host's shift: cpu and latency signal at its start (the detectors then take the new
 * level as normal and clear), the incident resolves, and the shift ends — a return signal. */
static nops_incident shift_and_resolve(nops_correlator *c, int32_t part, const char *host,
                                       int64_t t0, int64_t *resolved_at)
{
    char k1[96], k2[96];
    snprintf(k1, sizeof k1, "cpu{host=\"%s\"}", host);
    snprintf(k2, sizeof k2, "latency{host=\"%s\"}", host);
    nops_signal a = sig(k1, t0 * S, 0.7), b = sig(k2, (t0 + 10) * S, 0.7);
    nops_incident first = place_in(c, part, &a, NULL, true);
    assert_string_equal(place_in(c, part, &b, NULL, false).id, first.id);
    nops_correlate_cleared(c, a.series_id, (t0 + 20) * S);
    nops_correlate_cleared(c, b.series_id, (t0 + 30) * S);
    nops_incident done[4];
    assert_int_equal(nops_correlate_tick(c, (t0 + 329) * S, done, 4), 0);
    assert_int_equal(nops_correlate_tick(c, (t0 + 330) * S, done, 4), 1);
    assert_int_equal(done[0].status, NOPS_INCIDENT_RESOLVED);
    assert_string_equal(done[0].id, first.id);
    assert_int_equal(done[0].severity, NOPS_SEVERITY_WARNING); /* two series of one host */
    uint64_t open;
    nops_correlate_counts(c, &open, NULL, NULL);
    assert_int_equal(open, 0); /* kept to reopen, not open */
    *resolved_at = t0 + 330;
    return done[0];
}

static void test_reopen(void **state)
{
    (void)state;
    nops_correlator *c = make();
    int64_t res;
    nops_incident first = shift_and_resolve(c, 0, "web-1", 1000, &res);
    /* the shift ends 600 s after it began: the return signal reopens the same incident */
    nops_signal back = sig("cpu{host=\"web-1\"}", 1600 * S, 0.6);
    nops_incident again = place(c, &back, NULL, false);
    assert_string_equal(again.id, first.id);
    assert_int_equal(again.status, NOPS_INCIDENT_OPEN);
    assert_int_equal(again.n_signals, 3);
    assert_int_equal(again.opened_ns, first.opened_ns);
    assert_true(again.severity >= first.severity); /* never lowered across the reopen */
    assert_non_null(strstr(again.summary, "reopened 1 time(s)"));
    uint64_t open, opened_total, resolved_total;
    nops_correlate_counts(c, &open, &opened_total, &resolved_total);
    assert_int_equal(open, 1);
    assert_int_equal(opened_total, 1);
    assert_int_equal(resolved_total, 1);
    /* as sinks and GET /incidents see it: open again, the latest record */
    char json[4096];
    assert_true(nops_incident_json(&again, json, sizeof json) > 0);
    assert_non_null(strstr(json, "\"status\":\"open\""));
    /* resolves again; reopen_s counts from then, in data time (no tick needed in between):
     * 1800 s after it is due the host's next signal opens a new incident */
    nops_correlate_cleared(c, back.series_id, 1610 * S);
    nops_incident done[4];
    assert_int_equal(nops_correlate_tick(c, 1910 * S, done, 4), 1);
    assert_string_equal(done[0].id, first.id);
    nops_signal late = sig("cpu{host=\"web-1\"}", (1910 + 1800) * S, 0.6);
    nops_incident fresh = place(c, &late, NULL, true);
    assert_string_not_equal(fresh.id, first.id);
    assert_int_equal(fresh.n_signals, 1);
    /* once reopen_s passed the tick forgets it: nothing is written, it no longer counts */
    assert_int_equal(nops_correlate_tick(c, (1910 + 1800) * S, done, 4), 0);
    nops_correlate_counts(c, &open, &opened_total, &resolved_total);
    assert_int_equal(open, 1);
    assert_int_equal(opened_total, 2);
    nops_correlate_destroy(c);

    /* a resolved incident kept for reopening travels with its partition's snapshot */
    c = make();
    first = shift_and_resolve(c, 2, "db-1", 1000, &res);
    void *blob;
    size_t len;
    assert_int_equal(nops_correlate_save(c, 2, &blob, &len), NOPS_OK);
    nops_correlate_destroy(c);
    nops_correlator *r = make();
    assert_int_equal(nops_correlate_load(r, 2, blob, len), NOPS_OK);
    nops_free(blob);
    nops_correlate_counts(r, &open, NULL, NULL);
    assert_int_equal(open, 0);
    nops_signal db_back = sig("latency{host=\"db-1\"}", (res + 500) * S, 0.6);
    nops_incident restored = place_in(r, 2, &db_back, NULL, false);
    assert_string_equal(restored.id, first.id);
    assert_int_equal(restored.status, NOPS_INCIDENT_OPEN);
    nops_correlate_destroy(r);

    /* reopen_s = 0: resolved is final, as before */
    nops_correlate_params p;
    nops_correlate_defaults(&p);
    assert_int_equal(p.reopen_s, 1800);
    p.reopen_s = 0;
    char err[128];
    c = nops_correlate_new(&p, W, err, sizeof err);
    assert_non_null(c);
    first = shift_and_resolve(c, 0, "web-2", 1000, &res);
    nops_signal b2 = sig("cpu{host=\"web-2\"}", (res + 1) * S, 0.6);
    assert_string_not_equal(place(c, &b2, NULL, true).id, first.id);
    nops_correlate_destroy(c);
}

/* The open-incident limit still holds: kept incidents give their slot to a new open one (the
 * one due first goes), never the other way round. */
static void test_reopen_within_the_limit(void **state)
{
    (void)state;
    nops_correlator *c = make();
    int64_t res;
    shift_and_resolve(c, 0, "kept", 1000, &res); /* one kept for reopening */
    char key[64];
    nops_incident inc;
    bool opened;
    for (int h = 0; h < 1024; h++) { /* 1023 fill the other slots, the 1024th takes the kept */
        snprintf(key, sizeof key, "cpu{host=\"h%d\"}", h);
        nops_signal x = sig(key, (res + 10) * S, 0.7);
        assert_int_equal(nops_correlate_signal(c, &x, 0, NULL, 0, &inc, &opened), NOPS_OK);
        assert_true(opened);
    }
    uint64_t open;
    nops_correlate_counts(c, &open, NULL, NULL);
    assert_int_equal(open, 1024);
    nops_signal more = sig("cpu{host=\"one-more\"}", (res + 20) * S, 0.7);
    assert_int_equal(nops_correlate_signal(c, &more, 0, NULL, 0, &inc, &opened), NOPS_FULL);
    /* the kept one is gone: its host's return has no incident to reopen and no free slot */
    nops_signal back = sig("cpu{host=\"kept\"}", (res + 30) * S, 0.7);
    assert_int_equal(nops_correlate_signal(c, &back, 0, NULL, 0, &inc, &opened), NOPS_FULL);
    nops_correlate_destroy(c);
}

/* A service-wide incident is final once resolved: one of its hosts signalling later is a
 * problem of its own, not the service again. */
static void test_service_wide_does_not_reopen(void **state)
{
    (void)state;
    nops_correlator *c = make();
    float w[2][W];
    for (int h = 0; h < 2; h++)
        window(w[h], 20u + (unsigned)h, 100 + 10 * h, 8);
    nops_signal a = sig("latency{host=\"web-0\",service=\"checkout\"}", 100 * S, 0.7);
    nops_signal b = sig("latency{host=\"web-1\",service=\"checkout\"}", 101 * S, 0.7);
    nops_incident i = place(c, &a, w[0], true);
    assert_string_equal(place(c, &b, w[1], false).id, i.id);
    nops_correlate_cleared(c, a.series_id, 110 * S);
    nops_correlate_cleared(c, b.series_id, 110 * S);
    nops_incident done[4];
    assert_int_equal(nops_correlate_tick(c, 410 * S, done, 4), 1);
    nops_signal later = sig("latency{host=\"web-1\",service=\"checkout\"}", 500 * S, 0.7);
    assert_string_not_equal(place(c, &later, NULL, true).id, i.id);
    nops_correlate_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blas_single_threaded),
        cmocka_unit_test(test_one_host_many_metrics),
        cmocka_unit_test(test_host_incident_until_resolved),
        cmocka_unit_test(test_two_unrelated_hosts_same_time),
        cmocka_unit_test(test_several_hosts_one_service),
        cmocka_unit_test(test_large_service_stays_one_incident),
        cmocka_unit_test(test_info_blip_does_not_hold_a_host_back),
        cmocka_unit_test(test_straggler_does_not_page),
        cmocka_unit_test(test_bridged_incidents_merge),
        cmocka_unit_test(test_short_windows_do_not_join),
        cmocka_unit_test(test_severity_rules),
        cmocka_unit_test(test_identity_and_replay),
        cmocka_unit_test(test_save_and_load),
        cmocka_unit_test(test_load_damaged_bytes),
        cmocka_unit_test(test_resolution),
        cmocka_unit_test(test_reopen),
        cmocka_unit_test(test_reopen_within_the_limit),
        cmocka_unit_test(test_service_wide_does_not_reopen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
