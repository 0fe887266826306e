/*
 * test_loop.c — the closed loop with real pieces: a FAISS history index built from generated
 * runs (synth/history.c), the orchestrator with signed playbooks, the policy gate and the audit
 * trail, real child processes for the steps, and the notifier posting to a webhook receiver
 * (libmicrohttpd) in this test. Incidents are records as the correlator builds them, handed to
 * the loop as the pipeline's hook does. Checked: recommendations attached by the hook; one
 * suggestion per incident without any API call; an auto-allowed playbook runs by itself; a
 * require_approval one waits and is notified; an escalate one is notified and escalated after
 * its timeout; an info incident gets recommendations only; the kill switch holds automatic runs;
 * a kill -9 and restart neither repeats a suggestion nor forgets the records it followed; low confidence is
 * not suggested; automatic recommendations are audited; the time-to-remediation histograms
 * count each stage. No timing is asserted: conditions are awaited with a generous deadline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "correlate/correlate.h"
#include "detect/detect.h"
#include "loop/loop.h"
#include "synth/history.h"
#include "tests/support/orchutil.h"
#include "tests/support/recoutil.h"
#include "vector/vector.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char g_dir[] = "/tmp/nops-loop-XXXXXX";
static char g_index[200];
static tu_orch_dirs g_d;
static nops_registry *g_r;
static nops_policy *g_p;
static nops_audit *g_a;
static nops_secret *g_secret;
static nops_recommender *g_reco;

/* ---- a webhook receiver: the events it got, in order ---------------------------------------- */

#define MAX_EVENTS 512
static struct {
    pthread_mutex_t mu;
    char ev[MAX_EVENTS][48];
    int n;
    struct MHD_Daemon *mhd;
    int port;
} g_rx = {.mu = PTHREAD_MUTEX_INITIALIZER};

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **st)
{
    (void)cls, (void)url, (void)method, (void)version, (void)data;
    if (!*st) {
        *st = (void *)1;
        return MHD_YES;
    }
    if (*size) { /* the body is not needed: the event is in a header */
        *size = 0;
        return MHD_YES;
    }
    const char *ev = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-NeuralOps-Event");
    pthread_mutex_lock(&g_rx.mu);
    if (g_rx.n < MAX_EVENTS)
        snprintf(g_rx.ev[g_rx.n++], sizeof g_rx.ev[0], "%s", ev ? ev : "?");
    pthread_mutex_unlock(&g_rx.mu);
    struct MHD_Response *r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ok = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ok;
}

static int received(const char *event)
{
    int n = 0;
    pthread_mutex_lock(&g_rx.mu);
    for (int i = 0; i < g_rx.n; i++)
        n += strcmp(g_rx.ev[i], event) == 0;
    pthread_mutex_unlock(&g_rx.mu);
    return n;
}

static void rx_start(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    g_rx.mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, on_request,
                                NULL, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_END);
    assert_non_null(g_rx.mhd);
    g_rx.port = MHD_get_daemon_info(g_rx.mhd, MHD_DAEMON_INFO_BIND_PORT)->port;
}

/* ---- set-up ---------------------------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    if (tu_orch_dirs_make(g_dir, &g_d) != 0)
        return -1;
    snprintf(g_index, sizeof g_index, "%s/index", g_dir);
    tu_history_index(g_index, 4000, 11);
    const char *ok = "[{\"name\":\"fix\",\"exec\":[\"/bin/true\"]}]";
    tu_orch_playbook(g_d.reg, g_d.key, history_best_playbook(2), ok, "auto", 30, "");
    tu_orch_playbook(g_d.reg, g_d.key, history_best_playbook(1), ok, "manual", 30, "");
    tu_orch_playbook(g_d.reg, g_d.key, history_best_playbook(3), ok, "manual", 30, "");
    char err[256], rules[1024];
    snprintf(rules, sizeof rules,
             "[{\"name\":\"auto-ok\",\"priority\":6,\"when\":\"playbook.id == \\\"%s\\\"\","
             "\"action\":\"allow\"},{\"name\":\"esc\",\"priority\":8,\"when\":\"playbook.id == "
             "\\\"%s\\\"\",\"action\":\"escalate\",\"escalation\":\"warning\"}]",
             history_best_playbook(2), history_best_playbook(3));
    g_p = nops_policy_parse(rules, err, sizeof err);
    g_r = nops_registry_load(g_d.reg, g_d.pub, err, sizeof err);
    g_secret = nops_secret_from_bytes("loop test key", 13);
    g_a = nops_audit_open(g_d.audit, NULL, g_secret, NULL, err, sizeof err);
    g_reco = tu_reco_open(g_index, 60);
    rx_start();
    return g_p && g_r && g_secret && g_a && g_reco ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    MHD_stop_daemon(g_rx.mhd);
    nops_recommender_destroy(g_reco);
    nops_audit_close(g_a);
    nops_registry_destroy(g_r);
    nops_policy_destroy(g_p);
    nops_secret_destroy(g_secret);
    return tu_orch_dirs_remove(g_dir);
}

/* An orchestrator on state dir g_dir/<name> (escalations after 1 s). */
static nops_orchestrator *orch(const char *name)
{
    char dir[300], err[256];
    snprintf(dir, sizeof dir, "%s/%s", g_dir, name);
    nops_orch_deps d = {.state_dir = dir, .reg = g_r, .pol = g_p, .audit = g_a,
                        .secret = g_secret, .escalate_after_s = 1};
    nops_orchestrator *o = nops_orch_new(&d, err, sizeof err);
    if (!o)
        fail_msg("orchestrator: %s", err);
    return o;
}

static nops_notifier *notifier(const char *spool)
{
    nops_notify_params p;
    nops_notify_params_default(&p);
    snprintf(p.webhook_urls, sizeof p.webhook_urls, "http://127.0.0.1:%d/hook", g_rx.port);
    snprintf(p.webhook_severities, sizeof p.webhook_severities, "info,warning,critical");
    p.backoff_ms = 50;
    char dir[300], err[256];
    snprintf(dir, sizeof dir, "%s/%s", g_dir, spool);
    nops_notifier *n = nops_notifier_new(&p, g_secret, dir, err, sizeof err);
    if (!n)
        fail_msg("notifier: %s", err);
    return n;
}

/* A loop suggesting at `confidence`. The incidents below are built by the correlator, not
 * by the history's generator, so their nearest past runs are only about 0.7 similar where the
 * history's runs are 0.99 similar to each other: calibrated confidence 0.2–0.37; the tests
 * that expect suggestions ask for 0.15 (the default). */
static nops_loop *loop(nops_orchestrator *o, nops_notifier *n, double confidence)
{
    nops_loop_params p = {.enabled = true, .recommendations = 3,
                          .suggest_confidence = confidence, .tick_ms = 50, .queue = 64};
    snprintf(p.suggest_severities, sizeof p.suggest_severities, "warning,critical");
    nops_loop_deps d = {.reco = g_reco, .orch = o, .notify = n, .audit = g_a};
    char err[256];
    nops_loop *l = nops_loop_new(&p, &d, err, sizeof err);
    if (!l)
        fail_msg("loop: %s", err);
    return l;
}

/* An incident record as the correlator builds it: signals of `metric` on `hosts` hosts of
 * `svc` moving together, then the severity the test wants. */
static nops_incident incident(const char *metric, const char *svc, int hosts, nops_severity sev)
{
    nops_correlate_params p;
    nops_correlate_defaults(&p);
    char err[128];
    nops_correlator *c = nops_correlate_new(&p, 60, err, sizeof err);
    assert_non_null(c);
    float w[60];
    nops_incident inc;
    for (int h = 0; h < hosts; h++) {
        for (int i = 0; i < 60; i++)
            w[i] = (float)(100 + (i % 7) + (i >= 55 ? 40 : 0));
        char series[256];
        snprintf(series, sizeof series, "%s{host=\"%s-%03d\",region=\"eu-west-1\",service=\"%s\"}",
                 metric, svc, 3 + 5 * h, svc);
        nops_signal s;
        memset(&s, 0, sizeof s);
        assert_int_equal(nops_signal_set_series(&s, series), NOPS_OK);
        s.series_id = nops_detect_key_id(series, strlen(series));
        s.ts_ns = 1700000000000000000ll + h * 1000000000ll;
        snprintf(s.id, sizeof s.id, "%016llx", (unsigned long long)(s.series_id ^ (uint64_t)h));
        s.score = 0.95;
        snprintf(s.hint, sizeof s.hint, "%s is 8.0σ above its rolling mean (100)", series);
        unsigned ev;
        assert_int_equal(nops_correlate_place(c, &s, 0, w, 60, &inc, &ev), NOPS_OK);
    }
    nops_correlate_destroy(c);
    inc.severity = sev;
    return inc;
}

/* The record of orchestrator `o` suggested for incident `id` (new reference) or NULL. */
static json_t *record_for(nops_orchestrator *o, const char *id)
{
    json_t *all = NULL, *found = NULL, *rec;
    size_t i;
    assert_int_equal(nops_orch_list(o, NULL, 1000, &all), NOPS_OK);
    json_array_foreach(all, i, rec) {
        const char *inc = json_string_value(
            json_object_get(json_object_get(rec, "context"), "incident_id"));
        if (inc && strcmp(inc, id) == 0) {
            if (found)
                fail_msg("two records for incident %s", id);
            found = json_incref(rec);
        }
    }
    json_decref(all);
    return found;
}

static const char *state_of(const json_t *rec)
{
    return rec ? json_string_value(json_object_get(rec, "state")) : "(none)";
}

/* Poll until the record for incident `id` is in `state` (60 s at most); fails otherwise. */
static void await_state(nops_orchestrator *o, const char *id, const char *state)
{
    json_t *rec = NULL;
    for (int i = 0; i < 1200; i++) {
        json_decref(rec);
        rec = record_for(o, id);
        if (rec && strcmp(state_of(rec), state) == 0) {
            json_decref(rec);
            return;
        }
        nanosleep(&(struct timespec){0, 50000000}, NULL);
    }
    fail_msg("incident %s: record %s, expected %s", id, state_of(rec), state);
}

static void await_received(const char *event, int n)
{
    for (int i = 0; i < 1200 && received(event) < n; i++)
        nanosleep(&(struct timespec){0, 50000000}, NULL);
    if (received(event) < n)
        fail_msg("the receiver got %d %s, expected at least %d", received(event), event, n);
}

/* ---- tests ----------------------------------------------------------------------------------- */

/* The four outcomes: runs alone, waits, escalates, recommendations only. */
static void test_outcomes(void **state)
{
    (void)state;
    nops_orchestrator *o = orch("st1");
    nops_notifier *n = notifier("spool1");
    nops_loop *l = loop(o, n, 0.15);
    nops_incident cpu = incident("cpu_usage_user", "search", 1, NOPS_SEVERITY_WARNING);
    nops_incident lat = incident("http_latency_p50_ms", "checkout", 3, NOPS_SEVERITY_WARNING);
    nops_incident err = incident("http_error_rate", "payments", 3, NOPS_SEVERITY_CRITICAL);
    nops_incident disk = incident("disk_used_percent", "ledger", 1, NOPS_SEVERITY_INFO);
    nops_incident *all[] = {&cpu, &lat, &err, &disk};
    const char *best[] = {history_best_playbook(2), history_best_playbook(1),
                          history_best_playbook(3), history_best_playbook(4)};
    for (int i = 0; i < 4; i++) {
        nops_loop_incident(l, all[i], NOPS_INC_OPENED);
        assert_true(all[i]->n_recos >= 1); /* attached by the hook, before the sinks */
        assert_true(all[i]->recommended_ns > 0);
        assert_string_equal(all[i]->recos[0].playbook_id, best[i]);
    }
    await_state(o, cpu.id, "executed");     /* policy allow + mode auto: nobody called */
    await_state(o, lat.id, "dry_run_ok");   /* require_approval: waits */
    await_state(o, err.id, "dry_run_ok");   /* escalate: waits, then goes up a level */
    await_received("approval.pending", 2);
    await_received("approval.escalated", 1);
    await_received("incident.firing", 4);
    nops_loop_flush(l);
    json_t *rec = record_for(o, disk.id);
    assert_null(rec); /* info: recommendations, no suggestion */
    rec = record_for(o, cpu.id);
    assert_string_equal(json_string_value(json_object_get(rec, "requested_by")), "engine");
    json_decref(rec);
    nops_loop_stats st;
    nops_loop_get_stats(l, &st);
    assert_int_equal(st.recommended, 4);
    assert_int_equal(st.suggested, 3);
    assert_int_equal(st.auto_started, 1);
    assert_int_equal(st.approvals_pending, 2);
    assert_true(st.escalations >= 1);
    assert_int_equal(st.stage[NOPS_LOOP_RECOMMENDED].count, 4);
    assert_int_equal(st.stage[NOPS_LOOP_SUGGESTED].count, 3);
    for (int i = 0; i < 200 && st.stage[NOPS_LOOP_FINISHED].count < 1; i++) {
        nanosleep(&(struct timespec){0, 50000000}, NULL);
        nops_loop_get_stats(l, &st);
    }
    assert_int_equal(st.stage[NOPS_LOOP_APPROVED].count, 1);
    assert_int_equal(st.stage[NOPS_LOOP_FINISHED].count, 1);
    /* every automatic recommendation is audited */
    nops_audit_query q = {.limit = 1000, .actor = "engine", .action = "recommend"};
    json_t *page = NULL;
    char e[256];
    assert_int_equal(nops_audit_page(g_a, &q, &page, e, sizeof e), NOPS_OK);
    assert_true(json_array_size(json_object_get(page, "entries")) >= 4);
    json_decref(page);
    nops_loop_destroy(l);
    nops_notifier_destroy(n);
    nops_orch_destroy(o);
}

/* Paused automation: the auto-allowed run waits for a human instead, and says so. */
static void test_kill_switch(void **state)
{
    (void)state;
    nops_orchestrator *o = orch("st2");
    char err[256];
    assert_int_equal(nops_orch_set_paused(o, true, &TU_ADMIN, err, sizeof err), NOPS_OK);
    nops_loop *l = loop(o, NULL, 0.15);
    nops_incident cpu = incident("cpu_usage_user", "auth", 1, NOPS_SEVERITY_CRITICAL);
    nops_loop_incident(l, &cpu, NOPS_INC_OPENED);
    await_state(o, cpu.id, "dry_run_ok");
    nops_loop_stats st;
    for (int i = 0; i < 1200; i++) {
        nops_loop_get_stats(l, &st);
        if (st.auto_held + st.auto_started)
            break;
        nanosleep(&(struct timespec){0, 50000000}, NULL);
    }
    assert_int_equal(st.auto_started, 0);
    assert_int_equal(st.auto_held, 1);
    assert_int_equal(st.approvals_pending, 1);
    json_t *rec = record_for(o, cpu.id);
    assert_string_equal(state_of(rec), "dry_run_ok"); /* still: nothing ran */
    json_decref(rec);
    nops_loop_destroy(l);
    nops_orch_destroy(o);
}

/* kill -9 after the suggestion: the replayed incident makes no second suggestion, and the
 * record the dead engine started is followed again by the new one. The child has its own
 * recommender and no audit trail (the parent's trail must not be appended from two processes). */
static void test_kill_and_restart(void **state)
{
    (void)state;
    nops_incident lat = incident("http_latency_p50_ms", "catalog", 3, NOPS_SEVERITY_WARNING);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char err[256], dir[300];
        nops_reco_params rp = {.neighbours = 100, .min_similarity = 0.5, .prior_weight = 2,
                               .reload_s = 60};
        snprintf(rp.index_dir, sizeof rp.index_dir, "%s", g_index);
        nops_recommender *r = nops_recommender_new(&rp, err, sizeof err);
        snprintf(dir, sizeof dir, "%s/st3", g_dir);
        nops_orch_deps d = {.state_dir = dir, .reg = g_r, .pol = g_p, .secret = g_secret};
        nops_orchestrator *o = r ? nops_orch_new(&d, err, sizeof err) : NULL;
        nops_loop_params p = {.enabled = true, .recommendations = 3, .suggest_confidence = 0.15,
                              .tick_ms = 50, .queue = 64};
        snprintf(p.suggest_severities, sizeof p.suggest_severities, "warning");
        nops_loop_deps ld = {.reco = r, .orch = o};
        nops_loop *l = o ? nops_loop_new(&p, &ld, err, sizeof err) : NULL;
        if (!l)
            _exit(3);
        nops_loop_incident(l, &lat, NOPS_INC_OPENED);
        nops_loop_flush(l);
        nops_loop_stats st;
        nops_loop_get_stats(l, &st);
        _exit(st.suggested == 1 ? 0 : 4);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0); /* it suggested, then died without a teardown */
    nops_orchestrator *o = orch("st3");
    nops_loop *l = loop(o, NULL, 0.15);
    nops_incident again = incident("http_latency_p50_ms", "catalog", 3, NOPS_SEVERITY_WARNING);
    assert_string_equal(again.id, lat.id); /* deterministic ids: the replay is the same one */
    nops_loop_incident(l, &again, NOPS_INC_OPENED);
    nops_loop_flush(l);
    nops_loop_stats st;
    nops_loop_get_stats(l, &st);
    assert_int_equal(st.suggested, 0);   /* it existed */
    await_state(o, lat.id, "dry_run_ok"); /* the dead engine's record, dry-run by this one */
    json_t *rec = record_for(o, lat.id);  /* fails on a second record */
    assert_non_null(rec);
    json_decref(rec);
    nops_loop_destroy(l);
    nops_orch_destroy(o);
}

/* Below loop.suggest_confidence: attached, never suggested. */
static void test_low_confidence(void **state)
{
    (void)state;
    nops_orchestrator *o = orch("st4");
    nops_loop *l = loop(o, NULL, 0.999);
    nops_incident cpu = incident("cpu_usage_user", "ledger", 1, NOPS_SEVERITY_CRITICAL);
    nops_loop_incident(l, &cpu, NOPS_INC_OPENED);
    nops_loop_flush(l);
    assert_true(cpu.n_recos >= 1);
    assert_true(cpu.recos[0].confidence < 0.999f);
    json_t *rec = record_for(o, cpu.id);
    assert_null(rec);
    nops_loop_destroy(l);
    nops_orch_destroy(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outcomes),
        cmocka_unit_test(test_kill_switch),
        cmocka_unit_test(test_kill_and_restart),
        cmocka_unit_test(test_low_confidence),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
