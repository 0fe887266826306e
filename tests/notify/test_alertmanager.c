/*
 * test_alertmanager.c — a real Alertmanager (Debian prometheus-alertmanager, started by this
 * test on a free loopback port with a minimal config and a temporary storage path) receives
 * what the notifier sends: an incident's alert appears with its labels, severity and
 * generatorURL, is kept alive by the re-posts (its endsAt moves on), is replaced when its
 * severity goes up, and leaves the active list when resolved (Alertmanager keeps it with an
 * endsAt in the past and counts it as a resolved alert received). A pending approval fires,
 * survives a restart of the notifier (the active set is persisted) and ends with "done".
 * Skipped, with a message, only when the binary is not installed (deploy/install-deps.sh
 * installs it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "notify/notify.h"
#include "tests/api/http.h"
#include "tests/notify/notify_fixture.h"

#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

static char g_dir[] = "/tmp/nops-am-XXXXXX";
static char g_bin[512];
static pid_t g_am = -1;
static int g_port;
static nops_secret *g_key;

/* The Alertmanager binary: the Debian name first, then a plain `alertmanager` on PATH. */
static bool find_binary(void)
{
    const char *names[] = {"prometheus-alertmanager", "alertmanager"};
    const char *path = getenv("PATH");
    char dirs[4096];
    for (size_t k = 0; k < 2; k++) {
        snprintf(dirs, sizeof dirs, "%s:/usr/bin:/usr/local/bin", path ? path : "");
        char *save = NULL;
        for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
            snprintf(g_bin, sizeof g_bin, "%s/%s", d, names[k]);
            if (access(g_bin, X_OK) == 0) return true;
        }
    }
    return false;
}

static void print_log(void)
{
    char p[128];
    snprintf(p, sizeof p, "%s/am.log", g_dir);
    FILE *f = fopen(p, "r");
    char line[512];
    while (f && fgets(line, sizeof line, f))
        fprintf(stderr, "alertmanager: %s", line);
    if (f) fclose(f);
}

static int setup(void **state)
{
    (void)state;
    if (!find_binary()) return 0; /* each test skips */
    if (!mkdtemp(g_dir)) return -1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    g_key = nops_secret_from_bytes("am-test-key", 11);
    char cfg[128], logp[128], cfgflag[160], storage[160], listen[64];
    snprintf(cfg, sizeof cfg, "%s/am.yml", g_dir);
    FILE *f = fopen(cfg, "w");
    if (!f) return -1;
    fprintf(f, "route:\n  receiver: none\nreceivers:\n  - name: none\n");
    fclose(f);
    g_port = nf_free_port();
    snprintf(logp, sizeof logp, "%s/am.log", g_dir);
    snprintf(cfgflag, sizeof cfgflag, "--config.file=%s", cfg);
    snprintf(storage, sizeof storage, "--storage.path=%s/data", g_dir);
    snprintf(listen, sizeof listen, "--web.listen-address=127.0.0.1:%d", g_port);
    fflush(NULL);
    g_am = fork();
    if (g_am < 0) return -1;
    if (g_am == 0) {
        if (!freopen(logp, "w", stderr) || !freopen("/dev/null", "w", stdout)) _exit(126);
        execl(g_bin, g_bin, cfgflag, storage, listen, "--cluster.listen-address=", (char *)NULL);
        _exit(127);
    }
    time_t end = time(NULL) + NF_DEADLINE_S;
    for (;;) { /* ready when /-/ready answers 200 */
        http_res r = http_do(g_port, "GET", "/-/ready", NULL, NULL, 0);
        long st = r.status;
        http_free(&r);
        if (st == 200) return 0;
        if (waitpid(g_am, NULL, WNOHANG) == g_am || time(NULL) > end) {
            print_log();
            g_am = -1;
            return -1;
        }
        nf_sleep_ms(50);
    }
}

static int teardown(void **state)
{
    (void)state;
    if (g_am > 0) {
        kill(g_am, SIGTERM);
        waitpid(g_am, NULL, 0);
    }
    if (!g_key) return 0;
    nops_secret_destroy(g_key);
    curl_global_cleanup();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

#define NEED_AM()                                                                                  \
    do {                                                                                           \
        if (g_am <= 0) {                                                                           \
            print_message("prometheus-alertmanager is not installed (deploy/install-deps.sh "      \
                          "installs it): skipped\n");                                              \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

static nops_notifier *start(const char *spool)
{
    nops_notify_params p;
    nops_notify_params_default(&p);
    snprintf(p.alertmanager_url, sizeof p.alertmanager_url, "http://127.0.0.1:%d/", g_port);
    snprintf(p.external_url, sizeof p.external_url, "http://engine.example:8080");
    p.resend_s = 1;
    p.backoff_ms = 50;
    p.backoff_max_ms = 500;
    p.max_retries = 100;
    char dir[200], err[300];
    snprintf(dir, sizeof dir, "%s/%s", g_dir, spool);
    nops_notifier *n = nops_notifier_new(&p, g_key, dir, err, sizeof err);
    if (!n) fail_msg("nops_notifier_new: %s", err);
    return n;
}

/* Alertmanager's active alerts whose label `key` is `value`, as a new array. */
static json_t *alerts_with(const char *key, const char *value)
{
    http_res r = http_do(g_port, "GET", "/api/v2/alerts", NULL, NULL, 0);
    json_t *all = r.status == 200 ? json_loadb(r.body, r.len, 0, NULL) : NULL;
    http_free(&r);
    json_t *out = json_array(), *a;
    size_t i;
    json_array_foreach(all, i, a)
    {
        const char *v = json_string_value(json_object_get(json_object_get(a, "labels"), key));
        if (v && strcmp(v, value) == 0) json_array_append(out, a);
    }
    json_decref(all);
    return out;
}

/* Poll until alerts_with(key, value) has `count` alerts (and, when sev is set, the first has
 * that severity); returns that array or fails. */
static json_t *await_alerts(const char *key, const char *value, size_t count, const char *sev)
{
    time_t end = time(NULL) + NF_DEADLINE_S;
    for (;;) {
        json_t *a = alerts_with(key, value);
        const char *s = json_string_value(
            json_object_get(json_object_get(json_array_get(a, 0), "labels"), "severity"));
        if (json_array_size(a) == count && (!sev || (s && strcmp(s, sev) == 0))) return a;
        json_decref(a);
        if (time(NULL) > end)
            fail_msg("Alertmanager never showed %zu alert(s) with %s=%s", count, key, value);
        nf_sleep_ms(50);
    }
}

/* A sample of Alertmanager's own /metrics (the first line starting with `series`), or -1. */
static double am_metric(const char *series)
{
    http_res r = http_do(g_port, "GET", "/metrics", NULL, NULL, 0);
    double v = -1;
    const char *p = r.body ? strstr(r.body, series) : NULL;
    if (p) v = strtod(p + strlen(series), NULL);
    http_free(&r);
    return v;
}

static const char *label(const json_t *alert, const char *k)
{
    return json_string_value(json_object_get(json_object_get(alert, "labels"), k));
}

#define RESOLVED_V2 "alertmanager_alerts_received_total{status=\"resolved\",version=\"v2\"} "

static void test_incident_fires_and_resolves(void **state)
{
    (void)state;
    NEED_AM();
    nops_notifier *n = start("spool1");
    nops_incident inc = nf_incident("00000000000a0001", NOPS_SEVERITY_WARNING, false);
    assert_int_equal(nops_notify_incident(n, &inc), NOPS_OK);
    json_t *as = await_alerts("incident_id", inc.id, 1, "warning");
    json_t *a = json_array_get(as, 0);
    assert_string_equal(label(a, "alertname"), "NeuralOpsIncident");
    assert_string_equal(label(a, "service"), "api");
    assert_string_equal(label(a, "host"), "h1");
    assert_string_equal(label(a, "my_label"), "x<&>y");          /* name made valid */
    assert_string_equal(label(a, "exported_severity"), "bogus"); /* clash with ours */
    assert_string_equal(json_string_value(json_object_get(a, "generatorURL")),
                        "http://engine.example:8080/incidents/00000000000a0001");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(a, "annotations"), "summary")),
        inc.summary);
    assert_string_equal(json_string_value(json_object_get(json_object_get(a, "status"), "state")),
                        "active");
    char ends[64];
    snprintf(ends, sizeof ends, "%s", json_string_value(json_object_get(a, "endsAt")));
    json_decref(as);

    /* the re-posts keep it alive: Alertmanager moves its endsAt on with each one */
    nops_notify_stats st;
    uint64_t two = 2;
    assert_true(nf_wait(n, nf_resent_at_least, &two, &st));
    assert_int_equal(st.active, 1);
    time_t end = time(NULL) + NF_DEADLINE_S;
    for (;;) {
        as = await_alerts("incident_id", inc.id, 1, NULL);
        bool moved =
            strcmp(json_string_value(json_object_get(json_array_get(as, 0), "endsAt")), ends) > 0;
        json_decref(as);
        if (moved) break;
        assert_true(time(NULL) <= end);
        nf_sleep_ms(100);
    }

    /* info is not routed to Alertmanager by default */
    nops_notifier_get_stats(n, &st);
    uint64_t queued = st.queued;
    nops_incident info = nf_incident("00000000000a0002", NOPS_SEVERITY_INFO, false);
    assert_int_equal(nops_notify_incident(n, &info), NOPS_OK);
    nops_notifier_get_stats(n, &st);
    assert_int_equal(st.queued, queued);

    /* resolved: endsAt = now, gone from the active list, counted as resolved by Alertmanager */
    double before = am_metric(RESOLVED_V2);
    assert_true(before >= 0);
    inc.status = NOPS_INCIDENT_RESOLVED;
    assert_int_equal(nops_notify_incident(n, &inc), NOPS_OK);
    json_decref(await_alerts("incident_id", inc.id, 0, NULL));
    assert_true(am_metric(RESOLVED_V2) > before);
    nops_notifier_get_stats(n, &st);
    assert_int_equal(st.active, 0);
    assert_int_equal(st.failed, 0);
    nops_notifier_destroy(n);
}

/* Severity up changes the alert's identity (its labels): the old one is resolved with it. */
static void test_severity_up_replaces_alert(void **state)
{
    (void)state;
    NEED_AM();
    nops_notifier *n = start("spool2");
    nops_incident inc = nf_incident("00000000000b0001", NOPS_SEVERITY_WARNING, false);
    assert_int_equal(nops_notify_incident(n, &inc), NOPS_OK);
    json_t *as = await_alerts("incident_id", inc.id, 1, "warning");
    char starts[64];
    snprintf(starts, sizeof starts, "%s",
             json_string_value(json_object_get(json_array_get(as, 0), "startsAt")));
    json_decref(as);
    inc.severity = NOPS_SEVERITY_CRITICAL;
    assert_int_equal(nops_notify_incident(n, &inc), NOPS_OK);
    as = await_alerts("incident_id", inc.id, 1, "critical");
    /* the same incident keeps its start */
    assert_string_equal(json_string_value(json_object_get(json_array_get(as, 0), "startsAt")),
                        starts);
    json_decref(as);
    inc.status = NOPS_INCIDENT_RESOLVED;
    assert_int_equal(nops_notify_incident(n, &inc), NOPS_OK);
    json_decref(await_alerts("incident_id", inc.id, 0, NULL));
    nops_notifier_destroy(n);
}

/* A pending approval fires; a new notifier (a restart) keeps re-posting it; "done" ends it. */
static void test_approval_across_restart(void **state)
{
    (void)state;
    NEED_AM();
    json_t *rec = json_pack(
        "{s:s, s:s, s:s, s:{s:s, s:{s:s}}, s:{s:s, s:s}}", "id", "orch-00aa11bb22cc33dd", "state",
        "dry_run_ok", "playbook_id", "restart-api", "context", "incident_id", "00000000000c0001",
        "labels", "service", "api", "policy", "action", "require_approval", "escalation", "none");
    nops_notifier *n = start("spool3");
    assert_int_equal(nops_notify_approval(n, rec, "pending", NULL), NOPS_OK);
    json_t *as = await_alerts("orchestration_id", "orch-00aa11bb22cc33dd", 1, "warning");
    json_t *a = json_array_get(as, 0);
    assert_string_equal(label(a, "alertname"), "NeuralOpsApprovalPending");
    assert_string_equal(label(a, "playbook_id"), "restart-api");
    assert_string_equal(label(a, "incident_id"), "00000000000c0001");
    assert_string_equal(label(a, "service"), "api");
    assert_string_equal(json_string_value(json_object_get(a, "generatorURL")),
                        "http://engine.example:8080/orchestrations/orch-00aa11bb22cc33dd");
    json_decref(as);
    nops_notifier_destroy(n);

    n = start("spool3");
    nops_notify_stats st;
    nops_notifier_get_stats(n, &st);
    assert_int_equal(st.active, 1);
    uint64_t one = 1;
    assert_true(nf_wait(n, nf_resent_at_least, &one, &st));
    assert_int_equal(nops_notify_approval(n, rec, "done", NULL), NOPS_OK);
    json_decref(await_alerts("orchestration_id", "orch-00aa11bb22cc33dd", 0, NULL));
    nops_notifier_destroy(n);
    char active[200];
    snprintf(active, sizeof active, "%s/spool3/active", g_dir);
    assert_int_equal(nf_count_files(active, ".json"), 0);
    json_decref(rec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_incident_fires_and_resolves),
        cmocka_unit_test(test_severity_up_replaces_alert),
        cmocka_unit_test(test_approval_across_restart),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
