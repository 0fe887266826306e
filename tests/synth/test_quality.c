/*
 * test_quality.c — the yardstick of docs/quality.md: the NAB window scorer on hand-built cases
 * whose scores are computed here by hand, the fleet event scorer (recall, precision, false
 * signals, incident grouping) likewise, the generators' promises (deterministic, labelled
 * windows where the scorer can use them, quantised and irregular series, a persistent shift
 * that stays), and documented floors on the engine's figures at its defaults.
 *
 * The floors on the engine (test_engine_floors) are set a little below what the engine reached
 * when the yardstick landed (issue 14, bench/RESULTS.md "Signal precision"), so a change that
 * makes detection or grouping worse fails here; a change that meets the targets raises
 * them to the targets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "synth/quality.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EPS 1e-9

static const nops_synth_nab_profile *STD = &nops_synth_nab_profiles[0];

/* By hand: S(y) = 2/(1+e^{5y}) − 1 = tanh(−5y/2); S(−1) = tanh(2.5). */
static double S(double y)
{
    return tanh(-2.5 * y);
}

static nops_synth_nab_tally score1(const nops_synth_nab_profile *p, uint32_t n,
                                   const nops_synth_window *w, size_t nw, const uint32_t *d,
                                   size_t nd, uint32_t probation)
{
    nops_synth_nab_tally t;
    memset(&t, 0, sizeof t);
    assert_int_equal(nops_synth_nab_score(p, n, w, nw, d, nd, probation, &t), NOPS_OK);
    return t;
}

static void test_sigmoid(void **state)
{
    (void)state;
    assert_true(fabs(nops_synth_nab_sigmoid(-1.0) - 0.98661429815143) < 1e-12);
    assert_true(fabs(nops_synth_nab_sigmoid(0.0)) < EPS);
    assert_true(fabs(nops_synth_nab_sigmoid(-0.5) - tanh(1.25)) < EPS);
    assert_true(nops_synth_nab_sigmoid(3.0) == -1.0);
    assert_true(nops_synth_nab_sigmoid(2.99) > -1.0);
}

/* One window [10, 19] (width 10) in 100 points. */
static const nops_synth_window W1[1] = {{10, 19}};

static void test_perfect_and_null(void **state)
{
    (void)state;
    const uint32_t first = 10;
    nops_synth_nab_tally t = score1(STD, 100, W1, 1, &first, 1, 0);
    assert_true(fabs(t.raw - 1.0) < EPS); /* the window's first point earns tp exactly */
    assert_int_equal(t.hit, 1);
    assert_true(fabs(nops_synth_nab_normalised(STD, &t) - 100.0) < EPS);
    t = score1(STD, 100, W1, 1, NULL, 0, 0);
    assert_true(fabs(t.raw + 1.0) < EPS);
    assert_true(fabs(nops_synth_nab_normalised(STD, &t)) < EPS);
    /* reward_low_FN_rate: a miss costs 2, so null = −2 and perfect = 1 */
    const nops_synth_nab_profile *fn = &nops_synth_nab_profiles[2];
    t = score1(fn, 100, W1, 1, NULL, 0, 0);
    assert_true(fabs(t.raw + 2.0) < EPS);
    assert_true(fabs(nops_synth_nab_normalised(fn, &t)) < EPS);
}

static void test_early_beats_late(void **state)
{
    (void)state;
    const uint32_t mid = 15, last = 19;
    /* i = 15: pos = −(19 − 15 + 1)/10 = −0.5 */
    nops_synth_nab_tally t = score1(STD, 100, W1, 1, &mid, 1, 0);
    assert_true(fabs(t.raw - S(-0.5) / S(-1)) < EPS);
    assert_true(fabs(t.raw - 0.859793) < 1e-6);
    /* i = 19: pos = −0.1 */
    nops_synth_nab_tally u = score1(STD, 100, W1, 1, &last, 1, 0);
    assert_true(fabs(u.raw - S(-0.1) / S(-1)) < EPS);
    assert_true(fabs(u.raw - 0.248242) < 1e-6);
    assert_true(t.raw > u.raw);
    /* normalised: 100·(raw + 1)/2 */
    assert_true(fabs(nops_synth_nab_normalised(STD, &u) - 50.0 * (u.raw + 1.0)) < EPS);
    /* later detections in the same window neither add nor cost */
    const uint32_t two[3] = {15, 16, 19};
    nops_synth_nab_tally v = score1(STD, 100, W1, 1, two, 3, 0);
    assert_true(fabs(v.raw - t.raw) < EPS);
    assert_int_equal(v.fp, 0);
}

static void test_false_positives(void **state)
{
    (void)state;
    /* before any window: fp·S(3) = −0.11, and the window is missed: −1 */
    const uint32_t before = 5;
    nops_synth_nab_tally t = score1(STD, 100, W1, 1, &before, 1, 0);
    assert_true(fabs(t.raw - (-0.11 - 1.0)) < EPS);
    assert_int_equal(t.fp, 1);
    assert_true(fabs(nops_synth_nab_normalised(STD, &t) - (-5.5)) < EPS);
    /* after the window: i = 25, pos = (25 − 19)/(10 − 1) */
    const uint32_t after[2] = {10, 25};
    t = score1(STD, 100, W1, 1, after, 2, 0);
    assert_true(fabs(t.raw - (1.0 + 0.11 * S(6.0 / 9.0))) < EPS);
    assert_true(fabs(t.fp_cost - 0.11 * S(6.0 / 9.0)) < EPS);
    /* three widths after the window and beyond: the full −0.11 */
    const uint32_t far[2] = {10, 46};
    t = score1(STD, 100, W1, 1, far, 2, 0);
    assert_true(fabs(t.raw - (1.0 - 0.11)) < EPS);
    /* reward_low_FP_rate charges twice as much */
    t = score1(&nops_synth_nab_profiles[1], 100, W1, 1, far, 2, 0);
    assert_true(fabs(t.raw - (1.0 - 0.22)) < EPS);
    /* probation: detections before it are ignored */
    t = score1(STD, 100, W1, 1, &before, 1, 8);
    assert_true(fabs(t.raw + 1.0) < EPS);
    assert_int_equal(t.fp, 0);
    assert_int_equal(t.points, 92);
}

static void test_two_windows_and_bad_input(void **state)
{
    (void)state;
    const nops_synth_window w[2] = {{10, 19}, {50, 59}};
    /* hit the second early, miss the first; an FP right after the first (i = 20: pos 1/9) */
    const uint32_t d[2] = {20, 50};
    nops_synth_nab_tally t = score1(STD, 100, w, 2, d, 2, 0);
    assert_true(fabs(t.raw - (-1.0 + 0.11 * S(1.0 / 9.0) + 1.0)) < EPS);
    assert_int_equal(t.windows, 2);
    assert_int_equal(t.hit, 1);
    nops_synth_nab_tally z;
    memset(&z, 0, sizeof z);
    const nops_synth_window bad[2] = {{50, 59}, {10, 19}};
    assert_int_equal(nops_synth_nab_score(STD, 100, bad, 2, d, 2, 0, &z), NOPS_INVAL);
    const nops_synth_window past[1] = {{90, 100}};
    assert_int_equal(nops_synth_nab_score(STD, 100, past, 1, d, 2, 0, &z), NOPS_INVAL);
    const uint32_t unsorted[2] = {50, 20};
    assert_int_equal(nops_synth_nab_score(STD, 100, w, 2, unsorted, 2, 0, &z), NOPS_INVAL);
    const uint32_t beyond = 100;
    assert_int_equal(nops_synth_nab_score(STD, 100, w, 2, &beyond, 1, 0, &z), NOPS_INVAL);
}

/* Two hosts × two series: series 0, 1 on host 0; 2, 3 on host 1. */
static const uint32_t HOSTS[4] = {0, 0, 1, 1};

static void test_event_scoring(void **state)
{
    (void)state;
    nops_synth_event_truth ev = {
        .cls = NOPS_SYNTH_EV_HOST, .series = {0, 1}, .n_series = 2, .first = 10, .last = 20};
    nops_synth_event_figures f;
    /* both metrics in incident 0, a false signal of host 1 in incident 1, one outside the
       window on series 0 (tick 30) in incident 2 */
    nops_synth_detection d[4] = {{0, 12, 0}, {1, 13, 0}, {2, 15, 1}, {0, 30, 2}};
    assert_int_equal(nops_synth_event_score(&ev, 1, HOSTS, 4, 200000, d, 4, 3, &f), NOPS_OK);
    assert_int_equal(f.events, 1);
    assert_int_equal(f.found, 1);
    assert_true(f.recall == 1.0);
    assert_int_equal(f.true_signals, 2);
    assert_int_equal(f.false_signals, 2);
    assert_true(fabs(f.precision - 0.5) < EPS);
    assert_true(fabs(f.false_per_100k - 1.0) < EPS); /* 2 in 200,000 points */
    assert_true(fabs(f.mean_delay - 2.0) < EPS);
    assert_int_equal(f.host_events, 1);
    assert_int_equal(f.host_one, 1);
    assert_int_equal(f.incidents, 3);
    assert_int_equal(f.false_incidents, 2);
    assert_true(fabs(f.incidents_per_event - 3.0) < EPS);
    /* the false signal of host 1 joins incident 0: it now holds another host */
    d[2].incident = 0;
    assert_int_equal(nops_synth_event_score(&ev, 1, HOSTS, 4, 200000, d, 4, 3, &f), NOPS_OK);
    assert_int_equal(f.host_one, 0);
    /* split over two incidents */
    d[2].incident = 1;
    d[1].incident = 1;
    assert_int_equal(nops_synth_event_score(&ev, 1, HOSTS, 4, 200000, d, 4, 3, &f), NOPS_OK);
    assert_int_equal(f.host_one, 0);
    /* nothing detected: recall 0, no delay */
    assert_int_equal(nops_synth_event_score(&ev, 1, HOSTS, 4, 200000, d + 2, 1, 3, &f), NOPS_OK);
    assert_int_equal(f.found, 0);
    assert_true(f.recall == 0.0);
    /* out-of-range indices */
    nops_synth_detection bad = {4, 0, 0};
    assert_int_equal(nops_synth_event_score(&ev, 1, HOSTS, 4, 1, &bad, 1, 3, &f), NOPS_INVAL);
    bad = (nops_synth_detection){0, 0, 3};
    assert_int_equal(nops_synth_event_score(&ev, 1, HOSTS, 4, 1, &bad, 1, 3, &f), NOPS_INVAL);
}

static void test_event_outcome(void **state)
{
    (void)state;
    nops_synth_event_truth ev[2] = {
        {.cls = NOPS_SYNTH_EV_HOST, .series = {0, 1}, .n_series = 2, .first = 10, .last = 20},
        {.cls = NOPS_SYNTH_EV_SINGLE, .series = {3}, .n_series = 1, .first = 50, .last = 55}};
    /* event 0: signals at 14 (incident 0) and 12 (incident 1) and one unplaced at 15; host 1's
       false signal in incident 1; event 1: nothing */
    const nops_synth_detection d[4] = {{0, 14, 0}, {1, 12, 1}, {1, 15, -1}, {2, 13, 1}};
    nops_synth_event_outcome x;
    assert_int_equal(nops_synth_event_outcome_of(ev, 2, 0, HOSTS, 4, d, 4, &x), NOPS_OK);
    assert_int_equal(x.signals, 3);
    assert_int_equal(x.delay, 2);
    assert_int_equal(x.incidents, 2);
    assert_int_equal(x.unplaced, 1);
    assert_int_equal(x.hosts, 1);
    assert_int_equal(x.other_hosts, 1);
    assert_int_equal(nops_synth_event_outcome_of(ev, 2, 1, HOSTS, 4, d, 4, &x), NOPS_OK);
    assert_int_equal(x.signals, 0);
    assert_int_equal(x.incidents, 0);
    assert_int_equal(nops_synth_event_outcome_of(ev, 2, 2, HOSTS, 4, d, 4, &x), NOPS_INVAL);
}

static void test_service_grouping(void **state)
{
    (void)state;
    nops_synth_event_truth ev = {
        .cls = NOPS_SYNTH_EV_SERVICE, .series = {0, 2}, .n_series = 2, .first = 10, .last = 20};
    nops_synth_event_figures f;
    nops_synth_detection d[2] = {{0, 11, 0}, {2, 12, 0}};
    assert_int_equal(nops_synth_event_score(&ev, 1, HOSTS, 4, 1000, d, 2, 1, &f), NOPS_OK);
    assert_int_equal(f.service_events, 1);
    assert_int_equal(f.service_one, 1);
    /* only one host found: not a service-wide grouping */
    assert_int_equal(nops_synth_event_score(&ev, 1, HOSTS, 4, 1000, d, 1, 1, &f), NOPS_OK);
    assert_int_equal(f.service_one, 0);
    /* a host outside the event in the incident */
    const uint32_t hosts3[4] = {0, 2, 1, 3};
    nops_synth_detection e[3] = {{0, 11, 0}, {2, 12, 0}, {3, 12, 0}};
    assert_int_equal(nops_synth_event_score(&ev, 1, hosts3, 4, 1000, e, 3, 1, &f), NOPS_OK);
    assert_int_equal(f.service_one, 0);
}

static void test_corpus_generator(void **state)
{
    (void)state;
    nops_synth_corpus *a, *b, *c;
    assert_int_equal(nops_synth_corpus_new(14, 2, &a), NOPS_OK);
    assert_int_equal(nops_synth_corpus_new(14, 2, &b), NOPS_OK);
    assert_int_equal(nops_synth_corpus_new(15, 2, &c), NOPS_OK);
    assert_int_equal(a->n, 2 * NOPS_SYNTH_KINDS);
    bool differ = false;
    for (uint32_t i = 0; i < a->n; i++) {
        const nops_synth_series *s = &a->s[i];
        assert_memory_equal(s->v, b->s[i].v, s->n * sizeof *s->v); /* same seed, same data */
        differ |= memcmp(s->v, c->s[i].v, s->n * sizeof *s->v) != 0;
        assert_true(s->n_win >= 1);
        for (uint32_t w = 0; w < s->n_win; w++) { /* scored: after probation, inside */
            assert_true(s->win[w].first >= s->probation);
            assert_true(s->win[w].last < s->n);
        }
        nops_synth_nab_tally t;
        memset(&t, 0, sizeof t);
        /* a detector firing exactly at each window's start is perfect */
        uint32_t starts[NOPS_SYNTH_MAX_WINDOWS];
        for (uint32_t w = 0; w < s->n_win; w++)
            starts[w] = s->win[w].first;
        assert_int_equal(
            nops_synth_nab_score(STD, s->n, s->win, s->n_win, starts, s->n_win, s->probation, &t),
            NOPS_OK);
        assert_true(fabs(nops_synth_nab_normalised(STD, &t) - 100.0) < EPS);
        bool integers = true, regular = true;
        for (uint32_t k = 0; k < s->n; k++) {
            assert_true(isfinite(s->v[k]));
            integers &= s->v[k] == floorf(s->v[k]);
            if (k > 0) regular &= s->ts_ns[k] - s->ts_ns[k - 1] == s->step_s * 1000000000ll;
            if (k > 0) assert_true(s->ts_ns[k] > s->ts_ns[k - 1]);
        }
        if (strcmp(s->kind, "counter") == 0 || strcmp(s->kind, "flat_spike") == 0)
            assert_true(integers); /* quantised */
        if (strcmp(s->kind, "heavy_tail") == 0) assert_false(integers);
        assert_true(strcmp(s->kind, "irregular") == 0 ? !regular : regular);
    }
    assert_true(differ);
    nops_synth_corpus_destroy(a);
    nops_synth_corpus_destroy(b);
    nops_synth_corpus_destroy(c);
    assert_int_equal(nops_synth_corpus_new(1, 0, &a), NOPS_INVAL);
    assert_null(a);
}

static void test_fleet_generator(void **state)
{
    (void)state;
    nops_synth_fleet_opts o;
    nops_synth_fleet_opts_default(&o);
    nops_synth_fleet *f, *g;
    assert_int_equal(nops_synth_fleet_new(&o, 14, &f), NOPS_OK);
    assert_int_equal(nops_synth_fleet_new(&o, 14, &g), NOPS_OK);
    assert_int_equal(f->n_series, 500);
    assert_int_equal((uint64_t)f->n_series * o.ticks, 300000);
    assert_int_equal(f->n_ev, 12 + 6 + 1 + 2);
    assert_memory_equal(f->v, g->v, (size_t)f->n_series * o.ticks * sizeof *f->v);
    uint32_t host = 0, single = 0, service = 0;
    bool used[100] = {false};
    for (uint32_t i = 0; i < f->n_ev; i++) {
        const nops_synth_event *e = &f->ev[i];
        assert_true(e->start >= o.quiet_ticks && e->end >= e->start && e->win_last < o.ticks);
        for (uint32_t j = 0; j < e->n_hosts; j++) { /* no host in two events */
            assert_false(used[e->hosts[j]]);
            used[e->hosts[j]] = true;
            assert_int_equal(f->host_service[e->hosts[j]], e->service);
        }
        host += e->cls == NOPS_SYNTH_EV_HOST;
        single += e->cls == NOPS_SYNTH_EV_SINGLE;
        service += e->cls == NOPS_SYNTH_EV_SERVICE;
        if (e->cls == NOPS_SYNTH_EV_HOST) assert_true(__builtin_popcount(e->metrics) >= 2);
        if (e->cls == NOPS_SYNTH_EV_SERVICE) assert_true(e->n_hosts >= 2);
        /* a persistent shift is a new normal: still there at the end */
        if (e->cls == NOPS_SYNTH_EV_HOST && e->end == o.ticks - 1) {
            const uint32_t m = (e->metrics & 1u) ? 0 : 3; /* cpu or latency is always hit */
            const uint32_t s = e->hosts[0] * NOPS_SYNTH_METRICS + m;
            double before = 0, after = 0;
            for (uint32_t t = 0; t < 20; t++) {
                before += f->v[(size_t)(e->start - 25 + t) * f->n_series + s];
                after += f->v[(size_t)(o.ticks - 20 + t) * f->n_series + s];
            }
            assert_true(after > before * 1.2);
        }
    }
    assert_int_equal(host, 12);
    assert_int_equal(single, 7);
    assert_int_equal(service, 2);
    nops_synth_event_truth tr[32];
    nops_synth_fleet_truth(f, tr);
    for (uint32_t i = 0; i < f->n_ev; i++)
        for (uint32_t k = 0; k < tr[i].n_series; k++)
            assert_true(tr[i].series[k] < f->n_series);
    nops_synth_fleet_destroy(f);
    nops_synth_fleet_destroy(g);
    o.hosts = 20; /* too few hosts for 27 event hosts */
    assert_int_equal(nops_synth_fleet_new(&o, 14, &f), NOPS_INVAL);
}

/*
 * Floors on the engine at its defaults, seed 14, the corpus of `neuralops-bench quality`
 * (4 series per kind) and the default fleet. When the yardstick landed the engine reached:
 * NAB standard 63.4, reward_low_FN 74.3; fleet recall 1.000, precision 0.182, 118.7 false
 * signals per 100k points, 0 of 12 multi-metric host events in one incident of their own,
 * 4.52 incidents per event. Host-first incidents (issue 14, part 3) raised the host events in
 * one incident of their own to 7 of 12 (0.583) and made every false signal on an otherwise
 * quiet host an incident of its own (an `info` one, not paging): 15.14 incidents per event,
 * bounded by the false signals, which the calibrated detectors cut. The calibrated detectors
 * (session 5) reached NAB standard 78.4, reward_low_FN 81.1, recall 1.000, precision 0.987,
 * 0.3 false signals per 100k points, 1.29 incidents per event, still 7 of 12 host events in
 * one incident: a persistent shift signalled again when it ended, after its incident had
 * resolved. Reopening a resolved host incident within correlate.reopen_s made that 12 of 12
 * (1.000) and 1.00 incident per event. Session 6: the CUSUM scaled by the long-run variance
 * of its autocorrelated residuals (80.0) and the seasonal baseline (a day at each series'
 * step, detect.season_s) raised NAB standard to 88.0 (1.30 × the windowed Gaussian),
 * reward_low_FP 81.7, reward_low_FN 90.0, the fleet figures unchanged; without the seasonal
 * baseline the engine scores 80.0. The floors sit a little below (ceilings a little
 * above), and at the targets where the engine meets them: ≥ 1.3 × the windowed
 * Gaussian's NAB score (met at seed 14 by 0.1 point: the floor is 85, 1.26 ×), recall ≥ 0.98,
 * ≤ 1 false signal per 100k points, ≥ 95 % of host events in one incident of their own.
 */
static void test_engine_floors(void **state)
{
    (void)state;
    nops_synth_corpus *c;
    nops_synth_fleet *f;
    nops_synth_fleet_opts fo;
    nops_synth_fleet_opts_default(&fo);
    assert_int_equal(nops_synth_corpus_new(14, 4, &c), NOPS_OK);
    assert_int_equal(nops_synth_fleet_new(&fo, 14, &f), NOPS_OK);
    char err[256] = "";
    nops_synth_run_opts eo = {.det = NOPS_SYNTH_ENGINE};
    nops_synth_corpus_figures cf;
    nops_synth_fleet_figures ff;
    assert_int_equal(nops_synth_run_corpus(c, &eo, &cf, err, sizeof err), NOPS_OK);
    assert_int_equal(nops_synth_run_fleet(f, &eo, &ff, err, sizeof err), NOPS_OK);
    print_message("engine: NAB %.1f / %.1f / %.1f, recall %.3f, precision %.3f, "
                  "false/100k %.1f, host share %.3f, incidents/event %.2f\n",
                  cf.score[0], cf.score[1], cf.score[2], ff.ev.recall, ff.ev.precision,
                  ff.ev.false_per_100k, ff.ev.host_share, ff.ev.incidents_per_event);
    assert_int_equal(cf.tally[0].windows, 56);
    assert_true(cf.score[0] >= 85.0);
    assert_true(cf.score[1] >= 78.0);
    assert_true(cf.score[2] >= 87.0);
    /* the seasonal baseline's share: without it the same engine scores clearly lower, and the
     * seasonal spikes it finds (7 of 8) drop to 3 */
    nops_detect_params dp;
    nops_correlate_params cpar;
    assert_int_equal(nops_synth_engine_defaults(&dp, &cpar, err, sizeof err), NOPS_OK);
    dp.season_s = 0;
    nops_synth_run_opts no = {.det = NOPS_SYNTH_ENGINE, .dp = &dp};
    nops_synth_corpus_figures nf;
    assert_int_equal(nops_synth_run_corpus(c, &no, &nf, err, sizeof err), NOPS_OK);
    print_message("engine without the seasonal baseline: NAB %.1f, seasonal spikes %u/%u\n",
                  nf.score[0], nf.kind[0].hit, nf.kind[0].windows);
    assert_true(cf.score[0] >= nf.score[0] + 4.0);
    assert_true(cf.kind[0].hit >= nf.kind[0].hit + 3);
    assert_true(ff.ev.recall >= 0.98);
    assert_true(ff.ev.precision >= 0.95);
    assert_true(ff.ev.false_per_100k <= 1.0);
    assert_true(ff.ev.host_share >= 0.95);
    assert_true(ff.ev.incidents_per_event <= 1.15);
    assert_int_equal(ff.correlate_refused, 0);

    /* the baselines the targets are measured against run and score in a sane range */
    nops_synth_run_opts ro = {.det = NOPS_SYNTH_ROLLING_Z, .threshold = 4, .window = 60};
    nops_synth_run_opts wo = {.det = NOPS_SYNTH_WGAUSS, .threshold = 4.5, .window = 1000};
    nops_synth_corpus_figures rc, wc;
    assert_int_equal(nops_synth_run_corpus(c, &ro, &rc, err, sizeof err), NOPS_OK);
    assert_int_equal(nops_synth_run_corpus(c, &wo, &wc, err, sizeof err), NOPS_OK);
    print_message("baselines: rolling z %.1f, windowed Gaussian %.1f\n", rc.score[0], wc.score[0]);
    assert_true(rc.score[0] > 0 && rc.score[0] < 100);
    assert_true(wc.score[0] > 0 && wc.score[0] < 100);
    nops_synth_run_opts bad = {.det = NOPS_SYNTH_WGAUSS, .threshold = 4, .window = 1};
    assert_int_equal(nops_synth_run_corpus(c, &bad, &wc, err, sizeof err), NOPS_INVAL);
    nops_synth_corpus_destroy(c);
    nops_synth_fleet_destroy(f);
}

/* `neuralops-bench quality --quick`: one JSON line per figure, the table on stderr, the suite
 * listed by --help, --set reaching the engine. */
static void test_bench_quality(void **state)
{
    (void)state;
    FILE *p = popen(NEURALOPS_BENCH_BIN " quality --quick --seed 3 2>/dev/null", "r");
    assert_non_null(p);
    char line[2048];
    int figures = 0;
    bool standard = false, host = false, noseason = false;
    while (fgets(line, sizeof line, p)) {
        static const char head[] = "{\"suite\":\"quality\",\"figure\":";
        assert_true(strncmp(line, head, sizeof head - 1) == 0);
        assert_non_null(strstr(line, "\"peer\":\"windowed_gaussian\""));
        assert_non_null(strstr(line, "\"rolling_z\":"));
        standard |= strstr(line, "\"figure\":\"nab_standard\"") != NULL;
        host |= strstr(line, "\"figure\":\"fleet_host_events_one_incident\"") != NULL;
        noseason |= strstr(line, "\"figure\":\"nab_standard_without_season\"") != NULL;
        figures++;
    }
    assert_int_equal(pclose(p), 0);
    assert_int_equal(figures, 9);
    assert_true(standard && host && noseason);
    p = popen(NEURALOPS_BENCH_BIN " --help", "r");
    assert_non_null(p);
    bool listed = false;
    while (fgets(line, sizeof line, p))
        listed |= strncmp(line, "  quality ", 10) == 0;
    assert_int_equal(pclose(p), 0);
    assert_true(listed);
    /* --set reaches the engine: a higher threshold gives fewer false signals; an unknown key
       is refused */
    double fp[2] = {-1, -1};
    const char *cmd[2] = {NEURALOPS_BENCH_BIN " quality --quick 2>/dev/null",
                          NEURALOPS_BENCH_BIN " quality --quick --set detect.z_threshold=8 --set "
                                              "detect.ewma_threshold=8 2>/dev/null"};
    for (int k = 0; k < 2; k++) {
        p = popen(cmd[k], "r");
        assert_non_null(p);
        while (fgets(line, sizeof line, p)) {
            const char *v = strstr(line, "\"figure\":\"fleet_false_per_100k\",\"value\":");
            if (v)
                fp[k] = strtod(v + strlen("\"figure\":\"fleet_false_per_100k\",\"value\":"), NULL);
        }
        assert_int_equal(pclose(p), 0);
    }
    assert_true(fp[0] > 0 && fp[1] >= 0 && fp[1] < fp[0]);
    p = popen(NEURALOPS_BENCH_BIN " quality --quick --set detect.nosuch=1 2>/dev/null", "r");
    assert_non_null(p);
    while (fgets(line, sizeof line, p)) {
    }
    assert_int_not_equal(pclose(p), 0);
    p = popen(NEURALOPS_BENCH_BIN " quality --seed 0 2>/dev/null", "r");
    assert_non_null(p);
    while (fgets(line, sizeof line, p)) {
    }
    assert_int_not_equal(pclose(p), 0); /* a seed of 0 is refused */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigmoid),
        cmocka_unit_test(test_perfect_and_null),
        cmocka_unit_test(test_early_beats_late),
        cmocka_unit_test(test_false_positives),
        cmocka_unit_test(test_two_windows_and_bad_input),
        cmocka_unit_test(test_event_scoring),
        cmocka_unit_test(test_service_grouping),
        cmocka_unit_test(test_event_outcome),
        cmocka_unit_test(test_corpus_generator),
        cmocka_unit_test(test_fleet_generator),
        cmocka_unit_test(test_engine_floors),
        cmocka_unit_test(test_bench_quality),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
