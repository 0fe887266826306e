/*
 * test_recommend_incident.c — nops_recommend_incident: recommendations for an incident record
 * as the pipeline holds it (nops_incident), against a real small index (the generated history
 * of synth/history.c, prepared as `neuralops vectorize` prepares it):
 *   - it ranks exactly as nops_recommend does for the same labels, metrics and summary given
 *     as JSON, with the evidence counted (not just the five runs shown);
 *   - a record the correlator built from live-like signals (its labels, metric list and
 *     summary; no signal objects) gets its kind's best playbook first;
 *   - no similar past run: n = 0; nothing to embed: NOPS_PARSE; no index: NOPS_NOTFOUND;
 *     top_n and cap both bound the answer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "correlate/correlate.h"
#include "detect/detect.h" /* nops_detect_key_id */
#include "recommend/recommend.h"
#include "synth/history.h"
#include "tests/support/recoutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_dir[] = "/tmp/nops-recoinc-XXXXXX";

static int setup(void **state)
{
    (void)state;
    assert_non_null(mkdtemp(g_dir));
    tu_history_index(g_dir, 4000, 7);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static nops_recommender *open_reco(const char *dir)
{
    return tu_reco_open(dir, 60);
}

/* The record of a generated incident: its labels, metrics and summary (no signals). */
static void record_of(const json_t *src, nops_incident *inc)
{
    memset(inc, 0, sizeof *inc);
    snprintf(inc->id, sizeof inc->id, "00000000000000a1");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)json_object_get(src, "labels"), k, v)
        assert_int_equal(nops_labels_add(&inc->common, k, strlen(k), json_string_value(v),
                                         strlen(json_string_value(v))),
                         NOPS_OK);
    size_t i;
    json_array_foreach(json_object_get(src, "metrics"), i, v)
        snprintf(inc->metrics[inc->n_metrics++], NOPS_INCIDENT_METRIC_LEN, "%s",
                 json_string_value(v));
    snprintf(inc->summary, sizeof inc->summary, "%s",
             json_string_value(json_object_get(src, "summary")));
}

/* The struct path ranks as the JSON path does for the same fields. */
static void test_same_as_json(void **state)
{
    (void)state;
    nops_recommender *r = open_reco(g_dir);
    history_gen g;
    history_init(&g, 4242);
    int compared = 0;
    for (int round = 0; round < 4; round++)
        for (int k = 0; k < HISTORY_KINDS; k++) {
            json_t *full = history_incident(&g, k);
            nops_incident inc;
            record_of(full, &inc);
            json_t *q = json_pack("{s:O, s:O, s:O}", "labels", json_object_get(full, "labels"),
                                  "metrics", json_object_get(full, "metrics"), "summary",
                                  json_object_get(full, "summary"));
            char err[256];
            json_t *want = NULL;
            assert_int_equal(nops_recommend(r, q, 3, &want, err, sizeof err), NOPS_OK);
            nops_incident_reco got[NOPS_INCIDENT_MAX_RECOS];
            size_t n = 99;
            assert_int_equal(nops_recommend_incident(r, &inc, 3, got, NOPS_INCIDENT_MAX_RECOS,
                                                     &n, err, sizeof err),
                             NOPS_OK);
            const bool none = json_is_null(json_object_get(json_array_get(want, 0),
                                                           "playbook_id"));
            assert_int_equal(n, none ? 0 : json_array_size(want));
            for (size_t j = 0; j < n; j++) {
                json_t *w = json_array_get(want, j);
                assert_string_equal(got[j].playbook_id,
                                    json_string_value(json_object_get(w, "playbook_id")));
                assert_true(fabs(got[j].score - json_real_value(json_object_get(w, "score"))) <
                            1e-6);
                assert_true(fabs(got[j].confidence -
                                 json_real_value(json_object_get(w, "confidence"))) < 1e-6);
                /* evidence counts every similar run of it; the JSON shows at most five */
                const size_t shown = json_array_size(json_object_get(w, "evidence"));
                assert_true(got[j].evidence >= shown && shown > 0);
                assert_true(shown == 5 || got[j].evidence == shown);
                compared++;
            }
            json_decref(want);
            json_decref(q);
            json_decref(full);
        }
    print_message("  %d recommendation(s) compared\n", compared);
    assert_true(compared >= 24); /* most generated incidents have similar history */
    nops_recommender_destroy(r);
}

/* Build a record as the pipeline does: the correlator places live-like signals of `metric` on
 * hosts of `svc` (one host, or three moving together), with hints like the detectors'. */
static nops_incident correlated(const char *metric, const char *svc, int hosts, bool above)
{
    nops_correlate_params p;
    nops_correlate_defaults(&p);
    char err[128];
    nops_correlator *c = nops_correlate_new(&p, 60, err, sizeof err);
    assert_non_null(c);
    float w[60];
    nops_incident inc;
    for (int h = 0; h < hosts; h++) {
        for (int i = 0; i < 60; i++) /* the same shape on every host: they move together */
            w[i] = (float)(100 + (i % 7) + (i >= 55 ? (above ? 40 : -40) : 0));
        char series[256];
        snprintf(series, sizeof series, "%s{host=\"%s-%03d\",region=\"eu-west-1\",service=\"%s\"}",
                 metric, svc, 17 + 7 * h, svc);
        nops_signal s;
        memset(&s, 0, sizeof s);
        assert_int_equal(nops_signal_set_series(&s, series), NOPS_OK);
        s.series_id = nops_detect_key_id(series, strlen(series));
        s.ts_ns = 1700000000000000000ll + h * 1000000000ll;
        snprintf(s.id, sizeof s.id, "%016llx", (unsigned long long)(s.series_id ^ (uint64_t)h));
        s.score = 0.95;
        snprintf(s.hint, sizeof s.hint, "%s is 8.0σ %s its rolling mean (100)", series,
                 above ? "above" : "below");
        unsigned ev;
        assert_int_equal(nops_correlate_place(c, &s, 0, w, 60, &inc, &ev), NOPS_OK);
    }
    nops_correlate_destroy(c);
    return inc;
}

static void test_record_from_the_correlator(void **state)
{
    (void)state;
    nops_recommender *r = open_reco(g_dir);
    struct {
        const char *metric, *svc;
        int hosts;
        bool above;
        const char *best;
    } cases[] = {
        {"http_latency_p50_ms", "checkout", 3, true, history_best_playbook(1)},
        {"cpu_usage_user", "search", 1, true, history_best_playbook(2)},
        {"disk_used_percent", "ledger", 1, true, history_best_playbook(4)},
        {"http_error_rate", "payments", 3, true, history_best_playbook(3)},
        {"http_requests_rate", "auth", 3, false, history_best_playbook(5)},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nops_incident inc = correlated(cases[i].metric, cases[i].svc, cases[i].hosts,
                                       cases[i].above);
        assert_int_equal(inc.n_metrics, 1);
        assert_string_equal(inc.metrics[0], cases[i].metric);
        assert_int_equal(inc.n_hosts, (uint32_t)cases[i].hosts);
        nops_incident_reco got[NOPS_INCIDENT_MAX_RECOS];
        size_t n;
        char err[256];
        assert_int_equal(nops_recommend_incident(r, &inc, 3, got, NOPS_INCIDENT_MAX_RECOS, &n,
                                                 err, sizeof err),
                         NOPS_OK);
        print_message("  %s on %d host(s): %zu recommendation(s), first %s (score %.2f, "
                      "confidence %.2f, %u runs)\n", cases[i].metric, cases[i].hosts, n,
                      n ? got[0].playbook_id : "-", n ? got[0].score : 0.0,
                      n ? got[0].confidence : 0.0, n ? got[0].evidence : 0);
        assert_true(n >= 1);
        if (strcmp(got[0].playbook_id, cases[i].best) != 0)
            fail_msg("%s: first %s, expected %s", cases[i].metric, got[0].playbook_id,
                     cases[i].best);
        for (size_t j = 0; j < n; j++) {
            assert_true(got[j].score >= 0 && got[j].score <= 1);
            assert_true(got[j].confidence >= 0 && got[j].confidence <= 1);
            assert_true(got[j].evidence >= 1);
            assert_true(j == 0 || got[j - 1].score >= got[j].score);
        }
    }
    nops_recommender_destroy(r);
}

static void test_edges(void **state)
{
    (void)state;
    nops_recommender *r = open_reco(g_dir);
    char err[256];
    nops_incident_reco got[NOPS_INCIDENT_MAX_RECOS];
    size_t n = 99;
    /* nothing like it in the history: no recommendation, not an error */
    nops_incident inc;
    memset(&inc, 0, sizeof inc);
    assert_int_equal(nops_labels_add(&inc.common, "team", 4, "data-platform", 13), NOPS_OK);
    snprintf(inc.summary, sizeof inc.summary, "kafka consumer lag keeps growing on the billing "
             "export");
    snprintf(inc.metrics[0], NOPS_INCIDENT_METRIC_LEN, "kafka_consumergroup_lag");
    inc.n_metrics = 1;
    assert_int_equal(nops_recommend_incident(r, &inc, 3, got, 3, &n, err, sizeof err), NOPS_OK);
    assert_int_equal(n, 0);
    /* nothing to embed */
    memset(&inc, 0, sizeof inc);
    n = 99;
    assert_int_equal(nops_recommend_incident(r, &inc, 3, got, 3, &n, err, sizeof err),
                     NOPS_PARSE);
    assert_int_equal(n, 0);
    assert_non_null(strstr(err, "nothing to embed"));
    /* top_n and cap bound the answer */
    history_gen g;
    history_init(&g, 77);
    json_t *full = history_incident(&g, 0);
    record_of(full, &inc);
    json_decref(full);
    assert_int_equal(nops_recommend_incident(r, &inc, 3, got, 1, &n, err, sizeof err), NOPS_OK);
    assert_int_equal(n, 1);
    nops_incident_reco first = got[0];
    assert_int_equal(nops_recommend_incident(r, &inc, 2, got, 3, &n, err, sizeof err), NOPS_OK);
    assert_int_equal(n, 2);
    assert_string_equal(got[0].playbook_id, first.playbook_id);
    assert_int_equal(nops_recommend_incident(r, &inc, 0, got, 3, &n, err, sizeof err), NOPS_OK);
    assert_int_equal(n, 3); /* top_n ≤ 0: 3 */
    nops_recommender_destroy(r);
    /* no index loaded */
    char empty[] = "/tmp/nops-recoinc-empty-XXXXXX";
    assert_non_null(mkdtemp(empty));
    r = open_reco(empty);
    n = 99;
    assert_int_equal(nops_recommend_incident(r, &inc, 3, got, 3, &n, err, sizeof err),
                     NOPS_NOTFOUND);
    assert_int_equal(n, 0);
    assert_non_null(strstr(err, "no history index"));
    nops_recommender_destroy(r);
    rmdir(empty);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_as_json),
        cmocka_unit_test(test_record_from_the_correlator),
        cmocka_unit_test(test_edges),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
