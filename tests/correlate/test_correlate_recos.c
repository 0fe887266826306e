/*
 * test_correlate_recos.c — what the correlator tells the pipeline's incident hook and keeps for
 * it (issue 15):
 *   - the events of each record: OPENED alone on the first, UPDATED (+ NEW_SERIES when a series
 *     new to the incident joins, + SEVERITY_UP when its severity rises) on later ones, 0 for a
 *     replayed signal; the incident's short list of metric names;
 *   - recommendations attached with nops_correlate_attach stay on the incident's later records,
 *     its resolve record, a reopening (an update, not OPENED) and across a save/load of its
 *     partition (format version 4);
 *   - a version-3 snapshot (tests/correlate/data/corr_v3_part3.bin, saved by the build before
 *     incidents carried metrics and recommendations: one incident of host web-1 in partition 3
 *     with signals of cpu and mem) still loads, and its incident carries on under its id;
 *   - recommendations read back from a snapshot are checked like every other field.
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
#include <stdlib.h>
#include <string.h>

#define S 1000000000ll
#define W 60

static nops_correlator *make(void)
{
    nops_correlate_params p;
    nops_correlate_defaults(&p);
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

static nops_incident place_ev(nops_correlator *c, int32_t part, const nops_signal *s,
                              unsigned want)
{
    nops_incident inc;
    unsigned ev = 0xffu;
    assert_int_equal(nops_correlate_place(c, s, part, NULL, 0, &inc, &ev), NOPS_OK);
    if (ev != want)
        fail_msg("%s: events 0x%x, expected 0x%x", s->series, ev, want);
    return inc;
}

static void test_events_and_metrics(void **state)
{
    (void)state;
    nops_correlator *c = make();
    nops_signal a = sig("cpu{host=\"web-1\",service=\"s\"}", 100 * S, 0.5);
    nops_signal a2 = sig("cpu{host=\"web-1\",service=\"s\"}", 105 * S, 0.5);
    nops_signal b = sig("mem{host=\"web-1\",service=\"s\"}", 110 * S, 0.5);
    nops_signal d = sig("io{host=\"web-1\",service=\"s\"}", 120 * S, 0.5);
    snprintf(a.hint, sizeof a.hint, "cpu{...} is 6.0σ above its rolling mean (1)");
    b.method = NOPS_FIRED_EWMA;
    b.score = 0.75;
    nops_incident i = place_ev(c, 0, &a, NOPS_INC_OPENED);
    assert_int_equal(i.severity, NOPS_SEVERITY_INFO);
    assert_int_equal(i.n_metrics, 1);
    assert_string_equal(i.metrics[0], "cpu");
    /* the same series again: an update, nothing new, severity unchanged */
    i = place_ev(c, 0, &a2, NOPS_INC_UPDATED);
    assert_int_equal(i.n_metrics, 1);
    /* a second metric of the host: a new series, and two series make it warning */
    i = place_ev(c, 0, &b, NOPS_INC_UPDATED | NOPS_INC_NEW_SERIES | NOPS_INC_SEVERITY_UP);
    assert_int_equal(i.severity, NOPS_SEVERITY_WARNING);
    /* a replay changes nothing */
    place_ev(c, 0, &b, 0);
    /* what the embedder reads of signals, as counts: replays not counted twice */
    assert_true(i.best_score == 0.75f);
    assert_int_equal(i.n_above, 1);
    assert_int_equal(i.n_ewma, 1);
    i = place_ev(c, 0, &d, NOPS_INC_UPDATED | NOPS_INC_NEW_SERIES);
    assert_int_equal(i.n_metrics, 3);
    assert_string_equal(i.metrics[1], "mem");
    assert_string_equal(i.metrics[2], "io");
    /* the list holds NOPS_INCIDENT_MAX_METRICS names; a name too long to keep is left out */
    char longname[NOPS_INCIDENT_METRIC_LEN + 40];
    memset(longname, 'x', NOPS_INCIDENT_METRIC_LEN);
    snprintf(longname + NOPS_INCIDENT_METRIC_LEN, 40, "{host=\"web-1\",service=\"s\"}");
    nops_signal lng = sig(longname, 121 * S, 0.5);
    i = place_ev(c, 0, &lng, NOPS_INC_UPDATED | NOPS_INC_NEW_SERIES);
    assert_int_equal(i.n_metrics, 3);
    const char *more[] = {"net{host=\"web-1\",service=\"s\"}",
                          "disk{host=\"web-1\",service=\"s\"}"};
    for (int k = 0; k < 2; k++) {
        nops_signal m = sig(more[k], (122 + k) * S, 0.5);
        i = place_ev(c, 0, &m, NOPS_INC_UPDATED | NOPS_INC_NEW_SERIES);
    }
    assert_int_equal(i.n_metrics, NOPS_INCIDENT_MAX_METRICS);
    assert_string_equal(i.metrics[3], "net");
    /* nops_correlate_signal still says "opened" the same way */
    nops_signal other = sig("cpu{host=\"db-9\"}", 130 * S, 0.5);
    nops_incident o;
    bool opened = false;
    assert_int_equal(nops_correlate_signal(c, &other, 0, NULL, 0, &o, &opened), NOPS_OK);
    assert_true(opened);
    nops_correlate_destroy(c);
}

static void fill_recos(nops_incident *inc)
{
    inc->n_recos = 2;
    snprintf(inc->recos[0].playbook_id, sizeof inc->recos[0].playbook_id, "scale-out");
    inc->recos[0].score = 0.75f;
    inc->recos[0].confidence = 0.5f;
    inc->recos[0].evidence = 12;
    snprintf(inc->recos[1].playbook_id, sizeof inc->recos[1].playbook_id, "restart-pod");
    inc->recos[1].score = 0.25f;
    inc->recos[1].confidence = 0.125f;
    inc->recos[1].evidence = 3;
    inc->recommended_ns = 1234567890123456789ll;
}

static void assert_recos(const nops_incident *inc)
{
    assert_int_equal(inc->n_recos, 2);
    assert_string_equal(inc->recos[0].playbook_id, "scale-out");
    assert_true(inc->recos[0].score == 0.75f && inc->recos[0].confidence == 0.5f);
    assert_int_equal(inc->recos[0].evidence, 12);
    assert_string_equal(inc->recos[1].playbook_id, "restart-pod");
    assert_true(inc->recommended_ns == 1234567890123456789ll);
}

/* Attached recommendations ride on every later record: updates, a save/load, the resolution. */
static void test_attach_carried(void **state)
{
    (void)state;
    nops_correlator *c = make();
    nops_signal a = sig("cpu{host=\"web-1\",service=\"s\"}", 100 * S, 0.5);
    nops_signal b = sig("mem{host=\"web-1\",service=\"s\"}", 110 * S, 0.5);
    nops_signal d = sig("io{host=\"web-1\",service=\"s\"}", 120 * S, 0.5);
    nops_incident i = place_ev(c, 3, &a, NOPS_INC_OPENED);
    assert_int_equal(i.n_recos, 0);
    assert_true(i.recommended_ns == 0);
    fill_recos(&i);
    snprintf(i.summary, sizeof i.summary, "changed by the hook"); /* only recos are kept */
    assert_int_equal(nops_correlate_attach(c, &i), NOPS_OK);
    nops_incident u = place_ev(c, 3, &b, NOPS_INC_UPDATED | NOPS_INC_NEW_SERIES |
                                             NOPS_INC_SEVERITY_UP);
    assert_recos(&u);
    assert_string_not_equal(u.summary, "changed by the hook");
    nops_incident none = i;
    snprintf(none.id, sizeof none.id, "0000000000000000");
    assert_int_equal(nops_correlate_attach(c, &none), NOPS_NOTFOUND);

    void *blob;
    size_t len;
    assert_int_equal(nops_correlate_save(c, 3, &blob, &len), NOPS_OK);
    nops_correlate_destroy(c);
    nops_correlator *r = make();
    assert_int_equal(nops_correlate_load(r, 3, blob, len), NOPS_OK);
    nops_free(blob);
    nops_incident after = place_ev(r, 3, &d, NOPS_INC_UPDATED | NOPS_INC_NEW_SERIES);
    assert_string_equal(after.id, i.id);
    assert_recos(&after);
    assert_int_equal(after.n_metrics, 3); /* cpu, mem from the snapshot; io since */
    assert_string_equal(after.metrics[0], "cpu");
    nops_correlate_cleared(r, a.series_id, 130 * S);
    nops_correlate_cleared(r, b.series_id, 130 * S);
    nops_correlate_cleared(r, d.series_id, 130 * S);
    nops_incident done[4];
    assert_int_equal(nops_correlate_tick(r, 100000 * S, done, 4), 1);
    assert_int_equal(done[0].status, NOPS_INCIDENT_RESOLVED);
    assert_recos(&done[0]);
    nops_correlate_destroy(r);
}

/* A resolved one-host incident reopened by its host: an update (not OPENED), recommendations
 * and all — the resolve record carried them, the reopened one does too. */
static void test_reopen_is_an_update(void **state)
{
    (void)state;
    nops_correlator *c = make();
    nops_signal a = sig("cpu{host=\"web-1\"}", 100 * S, 0.5);
    nops_incident i = place_ev(c, 0, &a, NOPS_INC_OPENED);
    fill_recos(&i);
    assert_int_equal(nops_correlate_attach(c, &i), NOPS_OK);
    nops_correlate_cleared(c, a.series_id, 110 * S);
    nops_incident done[4];
    assert_int_equal(nops_correlate_tick(c, 500 * S, done, 4), 1);
    assert_recos(&done[0]);
    nops_signal back = sig("cpu{host=\"web-1\"}", 900 * S, 0.5); /* within reopen_s */
    /* its one series now spans 800 s, past warning_after_s: the severity rises too */
    nops_incident again = place_ev(c, 0, &back, NOPS_INC_UPDATED | NOPS_INC_SEVERITY_UP);
    assert_string_equal(again.id, i.id);
    assert_int_equal(again.status, NOPS_INCIDENT_OPEN);
    assert_recos(&again);
    nops_correlate_destroy(c);
}

static void *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    static unsigned char buf[1 << 16];
    *len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return buf;
}

/* A version-3 snapshot (saved by the build before this change) loads: its incident carries on
 * under its id, with no recommendations and the metric names of the signals since. */
static void test_load_version_3(void **state)
{
    (void)state;
    size_t len;
    const void *v3 = read_file(NOPS_SOURCE_DIR "/tests/correlate/data/corr_v3_part3.bin", &len);
    nops_correlator *r = make();
    assert_int_equal(nops_correlate_load(r, 3, v3, len), NOPS_OK);
    uint64_t open;
    nops_correlate_counts(r, &open, NULL, NULL);
    assert_int_equal(open, 1);
    /* the saved signal b replayed: recognised (0 events), the incident as it was saved */
    nops_signal b = sig("mem{host=\"web-1\",service=\"s\"}", 110 * S, 0.9);
    nops_incident was = place_ev(r, 3, &b, 0);
    assert_string_equal(was.id, "a0548fc2538eeba9");
    assert_int_equal(was.n_signals, 2);
    assert_int_equal(was.n_series, 2);
    assert_int_equal(was.n_recos, 0);
    assert_int_equal(was.n_metrics, 0);
    assert_string_equal(was.labels, "host=\"web-1\",service=\"s\"");
    nops_signal d = sig("io{host=\"web-1\",service=\"s\"}", 120 * S, 0.9);
    nops_incident next = place_ev(r, 3, &d, NOPS_INC_UPDATED | NOPS_INC_NEW_SERIES |
                                                NOPS_INC_SEVERITY_UP); /* 3 strong series */
    assert_string_equal(next.id, "a0548fc2538eeba9");
    assert_int_equal(next.n_signals, 3);
    assert_int_equal(next.n_metrics, 1);
    assert_string_equal(next.metrics[0], "io");
    /* the v3 bytes cut short, or claimed to be version 4, are refused */
    nops_correlator *q = make();
    assert_int_equal(nops_correlate_load(q, 3, v3, len - 1), NOPS_PARSE);
    unsigned char *v4 = malloc(len);
    assert_non_null(v4);
    memcpy(v4, v3, len);
    v4[7] = '4'; /* "NOPSCOR3" → "NOPSCOR4", little-endian: the last byte of the magic */
    assert_int_equal(nops_correlate_load(q, 3, v4, len), NOPS_PARSE);
    free(v4);
    nops_correlate_destroy(q);
    nops_correlate_destroy(r);
}

/* Recommendations read back from a snapshot are checked: a count past the array, or a score
 * or confidence out of [0, 1] (NaN included), is refused. */
static void test_load_checks_recos(void **state)
{
    (void)state;
    nops_correlator *c = make();
    nops_signal a = sig("cpu{host=\"web-1\",service=\"s\"}", 100 * S, 0.5);
    nops_incident i = place_ev(c, 3, &a, NOPS_INC_OPENED);
    fill_recos(&i);
    assert_int_equal(nops_correlate_attach(c, &i), NOPS_OK);
    void *blob;
    size_t len;
    assert_int_equal(nops_correlate_save(c, 3, &blob, &len), NOPS_OK);
    nops_correlate_destroy(c);
    /* find the saved record by its recommended_ns, then damage its fields one at a time */
    const int64_t mark = 1234567890123456789ll;
    unsigned char *b = blob;
    size_t at = 0;
    while (at + sizeof mark <= len && memcmp(b + at, &mark, sizeof mark) != 0)
        at++;
    assert_true(at + sizeof mark <= len);
    const size_t rec = at - offsetof(nops_incident, recommended_ns);
    nops_correlator *r = make();
    assert_int_equal(nops_correlate_load(r, 3, blob, len), NOPS_OK);
    const float bad_scores[] = {NAN, -0.5f, 1.5f};
    for (int k = 0; k < 3; k++) {
        unsigned char *copy = malloc(len);
        assert_non_null(copy);
        memcpy(copy, blob, len);
        memcpy(copy + rec + offsetof(nops_incident, recos) + offsetof(nops_incident_reco, score),
               &bad_scores[k], sizeof(float));
        assert_int_equal(nops_correlate_load(r, 3, copy, len), NOPS_PARSE);
        memcpy(copy, blob, len);
        memcpy(copy + rec + offsetof(nops_incident, recos) +
                   offsetof(nops_incident_reco, confidence),
               &bad_scores[k], sizeof(float));
        assert_int_equal(nops_correlate_load(r, 3, copy, len), NOPS_PARSE);
        free(copy);
    }
    unsigned char *copy = malloc(len);
    assert_non_null(copy);
    memcpy(copy, blob, len);
    copy[rec + offsetof(nops_incident, n_recos)] = NOPS_INCIDENT_MAX_RECOS + 1;
    assert_int_equal(nops_correlate_load(r, 3, copy, len), NOPS_PARSE);
    memcpy(copy, blob, len);
    copy[rec + offsetof(nops_incident, n_metrics)] = NOPS_INCIDENT_MAX_METRICS + 1;
    assert_int_equal(nops_correlate_load(r, 3, copy, len), NOPS_PARSE);
    free(copy);
    nops_correlate_destroy(r);
    nops_free(blob);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_events_and_metrics),
        cmocka_unit_test(test_attach_carried),
        cmocka_unit_test(test_reopen_is_an_update),
        cmocka_unit_test(test_load_version_3),
        cmocka_unit_test(test_load_checks_recos),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
