/*
 * test_automation.c — the closed loop's orchestrator half with real signed playbooks, real
 * child processes and the real PostgreSQL: one engine suggestion per incident and playbook
 * (across a restart with files, across two orchestrators on one database, also when both race),
 * the kill switch (config, pause, restart, a second instance, a tampered pause file or row),
 * the per-service budget (across instances), no automatic repeat after a failure until a run
 * succeeded, safety.allowed_roles for approve and execute, escalation with a fake clock, and a
 * deny that says why.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "orchestrate/orchestrate.h"
#include "tests/support/orchutil.h"
#include "tests/support/pgutil.h"
#include "tests/testutil.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char g_dir[] = "/tmp/nops-auto-XXXXXX";
static tu_orch_dirs g_d;
static nops_registry *g_r;
static nops_policy *g_p;
static nops_audit *g_a;
static nops_secret *g_secret, *g_audit_key;
static char g_flag[200]; /* while it exists, playbook auto-flaky fails */

#define SEC 1000000000ll

/* A signed playbook with these allowed_roles (a JSON array text). */
static void playbook_roles(const char *id, const char *steps, const char *mode,
                           const char *roles)
{
    char path[300], err[256], text[2048];
    snprintf(path, sizeof path, "%s/%s.json", g_d.reg, id);
    snprintf(text, sizeof text,
             "{\"id\":\"%s\",\"name\":\"%s\",\"version\":\"1\",\"safety\":{\"mode\":\"%s\","
             "\"allowed_roles\":%s},\"steps\":%s,\"timeout_s\":30}", id, id, mode, roles, steps);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    if (nops_playbook_sign(path, g_d.key, err, sizeof err) != NOPS_OK)
        fail_msg("sign: %s", err);
}

static int setup(void **state)
{
    (void)state;
    if (tu_orch_dirs_make(g_dir, &g_d) != 0)
        return -1;
    snprintf(g_flag, sizeof g_flag, "%s/fail", g_dir);
    char steps[400];
    playbook_roles("auto-ok", "[{\"name\":\"fix\",\"exec\":[\"/bin/true\"]}]", "auto",
                   "[\"org-admin\"]");
    snprintf(steps, sizeof steps, "[{\"name\":\"fix\",\"exec\":[\"/bin/sh\",\"-c\",\"test ! -e "
             "%s\"]}]", g_flag);
    playbook_roles("auto-flaky", steps, "auto", "[\"org-admin\"]");
    playbook_roles("admin-only", "[{\"name\":\"x\",\"exec\":[\"/bin/true\"]}]", "manual",
                   "[\"org-admin\"]");
    playbook_roles("ops-too", "[{\"name\":\"x\",\"exec\":[\"/bin/true\"]}]", "manual",
                   "[\"operator\",\"org-admin\"]");
    playbook_roles("ops-only", "[{\"name\":\"x\",\"exec\":[\"/bin/true\"]}]", "manual",
                   "[\"operator\"]");
    playbook_roles("esc-failover", "[{\"name\":\"x\",\"exec\":[\"/bin/true\"]}]", "manual",
                   "[\"org-admin\"]");
    playbook_roles("delete-db", "[{\"name\":\"x\",\"exec\":[\"/bin/true\"]}]", "manual",
                   "[\"org-admin\"]");
    char err[256];
    g_r = nops_registry_load(g_d.reg, g_d.pub, err, sizeof err);
    g_p = nops_policy_parse(
        "[{\"name\":\"no-deletes\",\"priority\":10,\"when\":\"playbook.id ~ \\\"delete-*\\\"\","
        "\"action\":\"deny\",\"reason\":\"deleting data needs a change ticket\"},"
        "{\"name\":\"failovers-escalate\",\"priority\":8,\"when\":\"playbook.id ~ "
        "\\\"esc-*\\\"\",\"action\":\"escalate\",\"escalation\":\"warning\"},"
        "{\"name\":\"autos\",\"priority\":5,\"when\":\"playbook.id ~ \\\"auto-*\\\"\","
        "\"action\":\"allow\"}]", err, sizeof err);
    if (!g_p)
        print_error("policy: %s\n", err);
    g_audit_key = nops_secret_from_bytes("auto-audit-key", 14);
    g_a = nops_audit_open(g_d.audit, NULL, g_audit_key, NULL, err, sizeof err);
    g_secret = nops_secret_from_bytes("automation test key", 19);
    return g_r && g_p && g_a && g_secret ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    nops_registry_destroy(g_r);
    nops_policy_destroy(g_p);
    nops_audit_close(g_a);
    nops_secret_destroy(g_secret);
    nops_secret_destroy(g_audit_key);
    return tu_orch_dirs_remove(g_dir);
}

typedef struct opts {
    const char *dsn;
    const char *state; /* another state dir (NULL = g_d.state) */
    bool off;
    int64_t budget;
} opts;

static nops_orchestrator *orch(opts op)
{
    char err[256];
    nops_orch_deps d = {.state_dir = op.state ? op.state : g_d.state, .pg_dsn = op.dsn,
                        .reg = g_r, .pol = g_p, .audit = g_a, .secret = g_secret,
                        .automation_off = op.off, .auto_budget_per_hour = op.budget};
    nops_orchestrator *o = nops_orch_new(&d, err, sizeof err);
    if (!o)
        fail_msg("%s", err);
    return o;
}

static const char *st(const json_t *rec)
{
    return json_string_value(json_object_get(rec, "state"));
}

static json_t *incident(const char *id, const char *service, const char *host)
{
    return json_pack("{s:s, s:s, s:{s:s, s:s}, s:s}", "id", id, "summary", "latency jumped",
                     "labels", "service", service, "host", host, "severity", "critical");
}

/* The engine's flow up to dry_run_ok for incident `iid` and playbook `pb`; the id in `id`. */
static void engine_ready(nops_orchestrator *o, const char *iid, const char *service,
                         const char *host, const char *pb, char id[64])
{
    char err[512];
    bool created = false;
    json_t *inc = incident(iid, service, host), *rec = NULL;
    if (nops_orch_suggest_once(o, inc, pb, &NOPS_ORCH_ENGINE, &rec, &created, err,
                               sizeof err) != NOPS_OK)
        fail_msg("suggest_once: %s", err);
    assert_true(created);
    snprintf(id, 64, "%s", json_string_value(json_object_get(rec, "id")));
    json_decref(rec);
    json_decref(inc);
    if (nops_orch_dry_run(o, id, &NOPS_ORCH_ENGINE, &rec, err, sizeof err) != NOPS_OK)
        fail_msg("dry-run: %s", err);
    assert_string_equal(st(rec), "dry_run_ok");
    json_decref(rec);
}

/* Wait (generously: the machine is shared) until `id` is no longer executing; its state. */
static const char *await_end(nops_orchestrator *o, const char *id)
{
    static char state[32];
    for (int i = 0; i < 1200; i++) {
        json_t *rec = NULL;
        assert_int_equal(nops_orch_get(o, id, &rec), NOPS_OK);
        snprintf(state, sizeof state, "%s", st(rec));
        json_decref(rec);
        if (strcmp(state, "executing") != 0)
            return state;
        usleep(50000);
    }
    fail_msg("%s still executing after a minute", id);
    return NULL;
}

/* Audit entries about `subject` with this action and decision. */
static size_t audited(const char *subject, const char *action, const char *decision)
{
    nops_audit_query q = {.limit = 1000, .subject = subject, .action = action};
    json_t *page = NULL, *e;
    char err[256];
    size_t i, n = 0;
    assert_int_equal(nops_audit_page(g_a, &q, &page, err, sizeof err), NOPS_OK);
    json_array_foreach(json_object_get(page, "entries"), i, e) {
        n += strcmp(json_string_value(json_object_get(e, "decision")), decision) == 0;
    }
    json_decref(page);
    return n;
}

/* ---- one suggestion per incident and playbook -------------------------------------------- */

static void test_suggest_once_files(void **state)
{
    (void)state;
    char err[512], id[64];
    bool created = true;
    json_t *inc = incident("inc-once", "checkout", "web-1"), *rec = NULL;
    nops_orchestrator *o = orch((opts){0});
    assert_int_equal(nops_orch_suggest_once(o, inc, "admin-only", &NOPS_ORCH_ENGINE, &rec,
                                            &created, err, sizeof err), NOPS_OK);
    assert_true(created);
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(rec, "id")));
    assert_string_equal(json_string_value(json_object_get(rec, "requested_by")), "engine");
    assert_int_equal(strlen(id), 5 + 32);
    json_decref(rec);
    /* again: the same record, not made again */
    assert_int_equal(nops_orch_suggest_once(o, inc, "admin-only", &NOPS_ORCH_ENGINE, &rec,
                                            &created, err, sizeof err), NOPS_OK);
    assert_false(created);
    assert_string_equal(json_string_value(json_object_get(rec, "id")), id);
    json_decref(rec);
    /* another playbook for the same incident: another suggestion */
    assert_int_equal(nops_orch_suggest_once(o, inc, "ops-too", &NOPS_ORCH_ENGINE, &rec,
                                            &created, err, sizeof err), NOPS_OK);
    assert_true(created);
    assert_string_not_equal(json_string_value(json_object_get(rec, "id")), id);
    json_decref(rec);
    /* the engine cannot approve what it suggested (nor anything: it is no org-admin) */
    assert_int_equal(nops_orch_dry_run(o, id, &NOPS_ORCH_ENGINE, &rec, err, sizeof err),
                     NOPS_OK);
    json_decref(rec);
    assert_int_equal(nops_orch_approve(o, id, &NOPS_ORCH_ENGINE, &rec, err, sizeof err),
                     NOPS_INVAL);
    const nops_actor engine_admin = {"engine", "org-admin"};
    assert_int_equal(nops_orch_approve(o, id, &engine_admin, &rec, err, sizeof err), NOPS_INVAL);
    assert_non_null(strstr(err, "requester"));
    nops_orch_destroy(o);
    /* after a restart: still the one record */
    o = orch((opts){0});
    assert_int_equal(nops_orch_suggest_once(o, inc, "admin-only", &NOPS_ORCH_ENGINE, &rec,
                                            &created, err, sizeof err), NOPS_OK);
    assert_false(created);
    assert_string_equal(json_string_value(json_object_get(rec, "id")), id);
    assert_string_equal(st(rec), "dry_run_ok");
    json_decref(rec);
    /* an incident without an id cannot be suggested once */
    json_t *anon = json_pack("{s:s}", "summary", "x");
    assert_int_equal(nops_orch_suggest_once(o, anon, "admin-only", &NOPS_ORCH_ENGINE, &rec,
                                            &created, err, sizeof err), NOPS_INVAL);
    json_decref(anon);
    json_decref(inc);
    nops_orch_destroy(o);
}

typedef struct racer {
    nops_orchestrator *o;
    int created;
    int failed;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    for (int i = 0; i < 15; i++) {
        char iid[32], err[512];
        snprintf(iid, sizeof iid, "inc-race-%d", i);
        json_t *inc = incident(iid, "search", "web-2"), *rec = NULL;
        bool created = false;
        if (nops_orch_suggest_once(r->o, inc, "admin-only", &NOPS_ORCH_ENGINE, &rec, &created,
                                   err, sizeof err) != NOPS_OK)
            r->failed++;
        r->created += created;
        json_decref(rec);
        json_decref(inc);
    }
    return NULL;
}

static void test_suggest_once_postgres(void **state)
{
    (void)state;
    char dsn[600];
    PGconn *c = tu_pg_schema("auto_once", dsn, sizeof dsn);
    nops_orchestrator *o1 = orch((opts){.dsn = dsn}), *o2 = orch((opts){.dsn = dsn});
    racer a = {o1, 0, 0}, b = {o2, 0, 0};
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, race, &a), 0);
    assert_int_equal(pthread_create(&tb, NULL, race, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_int_equal(a.failed + b.failed, 0);
    assert_int_equal(a.created + b.created, 15); /* each incident once, whoever was first */
    PGresult *r = PQexec(c, "SELECT count(*) FROM auto_once.orchestrations");
    assert_string_equal(PQgetvalue(r, 0, 0), "15");
    PQclear(r);
    nops_orch_destroy(o1);
    nops_orch_destroy(o2);
    tu_pg_drop_schema(c, "auto_once");
}

/* ---- the kill switch ---------------------------------------------------------------------- */

static void test_pause_files(void **state)
{
    (void)state;
    char err[512], id[64], state_dir[200];
    snprintf(state_dir, sizeof state_dir, "%s/pause-state", g_dir);
    nops_orchestrator *o = orch((opts){.state = state_dir});
    nops_orch_stats stats;
    assert_false(nops_orch_paused(o));
    /* only an org-admin pauses */
    assert_int_equal(nops_orch_set_paused(o, true, &TU_OPS, err, sizeof err), NOPS_INVAL);
    assert_false(nops_orch_paused(o));
    assert_int_equal(nops_orch_set_paused(o, true, &TU_ADMIN, err, sizeof err), NOPS_OK);
    assert_true(nops_orch_paused(o));
    engine_ready(o, "inc-pause", "cart", "web-3", "auto-ok", id);
    json_t *rec = NULL;
    assert_int_equal(nops_orch_auto_execute(o, id, &rec, err, sizeof err), NOPS_INVAL);
    assert_non_null(strstr(err, "paused"));
    assert_null(rec);
    assert_int_equal(audited(id, "auto_execute", "held"), 1);
    nops_orch_get_stats(o, &stats);
    assert_int_equal(stats.auto_held_paused, 1);
    assert_int_equal(stats.auto_started, 0);
    nops_orch_destroy(o);
    /* the pause outlives a restart */
    o = orch((opts){.state = state_dir});
    assert_true(nops_orch_paused(o));
    json_t *view = NULL;
    assert_int_equal(nops_orch_automation(o, &view), NOPS_OK);
    assert_true(json_is_true(json_object_get(view, "paused")));
    assert_string_equal(json_string_value(json_object_get(view, "paused_by")), TU_ADMIN.id);
    json_decref(view);
    /* a pause file edited to say "not paused" does not verify: held all the same */
    char path[300];
    snprintf(path, sizeof path, "%s/_automation.json", state_dir);
    json_t *doc = json_load_file(path, 0, NULL);
    assert_non_null(doc);
    json_object_set_new(json_object_get(doc, "value"), "paused", json_false());
    assert_int_equal(json_dump_file(doc, path, 0), 0);
    json_decref(doc);
    assert_true(nops_orch_paused(o));
    assert_int_equal(nops_orch_auto_execute(o, id, &rec, err, sizeof err), NOPS_INVAL);
    nops_orch_get_stats(o, &stats);
    assert_true(stats.automation_tampered >= 1);
    /* resumed: it runs */
    assert_int_equal(nops_orch_set_paused(o, false, &TU_ADMIN, err, sizeof err), NOPS_OK);
    assert_false(nops_orch_paused(o));
    assert_int_equal(nops_orch_auto_execute(o, id, &rec, err, sizeof err), NOPS_OK);
    assert_string_equal(st(rec), "executing");
    assert_string_equal(json_string_value(json_object_get(rec, "executed_by")), "engine");
    json_decref(rec);
    assert_string_equal(await_end(o, id), "executed");
    nops_orch_get_stats(o, &stats);
    assert_int_equal(stats.auto_started, 1);
    assert_int_equal(audited("automation", "automation", "paused"), 1);
    assert_true(audited("automation", "automation", "resumed") >= 1);
    nops_orch_destroy(o);
    /* automation off in the config: held whatever the pause says */
    o = orch((opts){.state = state_dir, .off = true});
    assert_true(nops_orch_paused(o));
    engine_ready(o, "inc-off", "cart", "web-3", "auto-ok", id);
    assert_int_equal(nops_orch_auto_execute(o, id, &rec, err, sizeof err), NOPS_INVAL);
    assert_non_null(strstr(err, "orchestrate.automation"));
    nops_orch_destroy(o);
}

static void test_pause_postgres_shared(void **state)
{
    (void)state;
    char dsn[600], err[512];
    PGconn *c = tu_pg_schema("auto_pause", dsn, sizeof dsn);
    nops_orchestrator *o1 = orch((opts){.dsn = dsn}), *o2 = orch((opts){.dsn = dsn});
    assert_int_equal(nops_orch_set_paused(o1, true, &TU_ADMIN, err, sizeof err), NOPS_OK);
    assert_true(nops_orch_paused(o2)); /* the other instance sees it */
    nops_orch_destroy(o2);
    o2 = orch((opts){.dsn = dsn}); /* and after its restart */
    assert_true(nops_orch_paused(o2));
    assert_int_equal(nops_orch_set_paused(o2, false, &TU_ADMIN, err, sizeof err), NOPS_OK);
    assert_false(nops_orch_paused(o1));
    /* a row edited by hand (paused → the mac of "not paused" is missing) is refused */
    assert_int_equal(nops_orch_set_paused(o1, true, &TU_ADMIN, err, sizeof err), NOPS_OK);
    PGresult *r = PQexec(c, "UPDATE auto_pause.orchestrate_state SET value = jsonb_set(value, "
                            "'{paused}', 'false') WHERE key = 'automation'");
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    assert_string_equal(PQcmdTuples(r), "1");
    PQclear(r);
    assert_true(nops_orch_paused(o1));
    assert_true(nops_orch_paused(o2));
    json_t *view = NULL;
    assert_int_equal(nops_orch_automation(o2, &view), NOPS_OK);
    assert_false(json_is_true(json_object_get(view, "verified")));
    assert_true(json_is_true(json_object_get(view, "paused")));
    json_decref(view);
    /* a verified value moved to another key does not verify there either */
    r = PQexec(c, "INSERT INTO auto_pause.orchestrate_state (key, value, mac) SELECT "
                  "'auto_starts', value, mac FROM auto_pause.orchestrate_state WHERE key = "
                  "'automation' ON CONFLICT (key) DO UPDATE SET value = excluded.value, mac = "
                  "excluded.mac");
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    assert_int_equal(nops_orch_set_paused(o2, false, &TU_ADMIN, err, sizeof err), NOPS_OK);
    assert_false(nops_orch_paused(o1));
    assert_int_equal(nops_orch_automation(o1, &view), NOPS_OK);
    assert_true(json_is_true(json_object_get(view, "ledger_verified"))); /* resume: new one */
    json_decref(view);
    nops_orch_destroy(o1);
    nops_orch_destroy(o2);
    tu_pg_drop_schema(c, "auto_pause");
}

/* ---- the budget ----------------------------------------------------------------------------- */

static void test_budget_across_instances(void **state)
{
    (void)state;
    char dsn[600], err[512], id[64];
    PGconn *c = tu_pg_schema("auto_budget", dsn, sizeof dsn);
    nops_orchestrator *o1 = orch((opts){.dsn = dsn, .budget = 2});
    nops_orchestrator *o2 = orch((opts){.dsn = dsn, .budget = 2});
    json_t *rec = NULL;
    engine_ready(o1, "inc-b1", "payments", "db-1", "auto-ok", id);
    assert_int_equal(nops_orch_auto_execute(o1, id, &rec, err, sizeof err), NOPS_OK);
    json_decref(rec);
    assert_string_equal(await_end(o1, id), "executed");
    engine_ready(o2, "inc-b2", "payments", "db-2", "auto-ok", id);
    assert_int_equal(nops_orch_auto_execute(o2, id, &rec, err, sizeof err), NOPS_OK);
    json_decref(rec);
    assert_string_equal(await_end(o2, id), "executed");
    /* the third automatic start of payments within the hour is held, on either instance */
    engine_ready(o1, "inc-b3", "payments", "db-3", "auto-ok", id);
    assert_int_equal(nops_orch_auto_execute(o1, id, &rec, err, sizeof err), NOPS_INVAL);
    assert_non_null(strstr(err, "auto_budget_per_hour"));
    assert_int_equal(nops_orch_auto_execute(o2, id, &rec, err, sizeof err), NOPS_INVAL);
    assert_int_equal(audited(id, "auto_execute", "held"), 2);
    nops_orch_get(o1, id, &rec);
    assert_string_equal(st(rec), "dry_run_ok"); /* held, not spent: a person may approve it */
    json_decref(rec);
    nops_orch_stats stats;
    nops_orch_get_stats(o1, &stats);
    assert_int_equal(stats.auto_held_budget, 1);
    /* another service has its own budget */
    engine_ready(o2, "inc-b4", "search", "idx-1", "auto-ok", id);
    assert_int_equal(nops_orch_auto_execute(o2, id, &rec, err, sizeof err), NOPS_OK);
    json_decref(rec);
    assert_string_equal(await_end(o2, id), "executed");
    json_t *view = NULL;
    assert_int_equal(nops_orch_automation(o1, &view), NOPS_OK);
    json_t *used = json_object_get(view, "used_last_hour");
    assert_int_equal(json_integer_value(json_object_get(used, "payments")), 2);
    assert_int_equal(json_integer_value(json_object_get(used, "search")), 1);
    json_decref(view);
    /* a record that is not an automatic run is refused by the claim, takes no budget */
    engine_ready(o1, "inc-b5", "search", "idx-2", "admin-only", id);
    assert_int_equal(nops_orch_auto_execute(o1, id, &rec, err, sizeof err), NOPS_INVAL);
    assert_non_null(strstr(err, "needs an approval"));
    assert_int_equal(nops_orch_automation(o1, &view), NOPS_OK);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(view, "used_last_hour"),
                                                        "search")), 1);
    json_decref(view);
    /* a ledger edited by hand (emptied) does not verify: every automatic run is held */
    PGresult *r = PQexec(c, "UPDATE auto_budget.orchestrate_state SET value = "
                            "'{\"starts\":[]}' WHERE key = 'auto_starts'");
    assert_string_equal(PQcmdTuples(r), "1");
    PQclear(r);
    engine_ready(o1, "inc-b6", "search", "idx-3", "auto-ok", id);
    assert_int_equal(nops_orch_auto_execute(o1, id, &rec, err, sizeof err), NOPS_INVAL);
    assert_non_null(strstr(err, "does not verify"));
    nops_orch_destroy(o1);
    nops_orch_destroy(o2);
    tu_pg_drop_schema(c, "auto_budget");
}

typedef struct starter {
    nops_orchestrator *o;
    const char *id;
    nops_err e;
} starter;

static void *start_auto(void *arg)
{
    starter *s = arg;
    char err[512];
    json_t *rec = NULL;
    s->e = nops_orch_auto_execute(s->o, s->id, &rec, err, sizeof err);
    json_decref(rec);
    return NULL;
}

/* Two instances start the same run at once: it runs once and takes one slot of the budget. */
static void test_auto_execute_race(void **state)
{
    (void)state;
    char dsn[600], id[64];
    PGconn *c = tu_pg_schema("auto_race", dsn, sizeof dsn);
    nops_orchestrator *o1 = orch((opts){.dsn = dsn}), *o2 = orch((opts){.dsn = dsn});
    for (int round = 0; round < 3; round++) {
        char iid[32];
        snprintf(iid, sizeof iid, "inc-race-%d", round);
        engine_ready(o1, iid, "race", "h", "auto-ok", id);
        starter a = {o1, id, NOPS_OK}, b = {o2, id, NOPS_OK};
        pthread_t ta, tb;
        assert_int_equal(pthread_create(&ta, NULL, start_auto, &a), 0);
        assert_int_equal(pthread_create(&tb, NULL, start_auto, &b), 0);
        pthread_join(ta, NULL);
        pthread_join(tb, NULL);
        assert_int_equal((a.e == NOPS_OK) + (b.e == NOPS_OK), 1);
        assert_string_equal(await_end(o1, id), "executed");
        json_t *view = NULL;
        assert_int_equal(nops_orch_automation(o2, &view), NOPS_OK);
        assert_int_equal(json_integer_value(json_object_get(
                             json_object_get(view, "used_last_hour"), "race")), round + 1);
        json_decref(view);
    }
    nops_orch_destroy(o1);
    nops_orch_destroy(o2);
    tu_pg_drop_schema(c, "auto_race");
}

/* ---- no automatic repeat after a failure ---------------------------------------------------- */

static void test_failed_before(void **state)
{
    (void)state;
    char err[512], id[64], state_dir[200];
    snprintf(state_dir, sizeof state_dir, "%s/failed-state", g_dir);
    nops_orchestrator *o = orch((opts){.state = state_dir, .budget = 100});
    json_t *rec = NULL;
    FILE *f = fopen(g_flag, "w"); /* the playbook fails while this exists */
    assert_non_null(f);
    fclose(f);
    engine_ready(o, "inc-f1", "cart", "web-9", "auto-flaky", id);
    assert_int_equal(nops_orch_auto_execute(o, id, &rec, err, sizeof err), NOPS_OK);
    json_decref(rec);
    assert_string_equal(await_end(o, id), "failed");
    /* the same playbook on the same target: held */
    engine_ready(o, "inc-f2", "cart", "web-9", "auto-flaky", id);
    assert_int_equal(nops_orch_auto_execute(o, id, &rec, err, sizeof err), NOPS_INVAL);
    assert_non_null(strstr(err, "failed"));
    assert_int_equal(audited(id, "auto_execute", "held"), 1);
    nops_orch_stats stats;
    nops_orch_get_stats(o, &stats);
    assert_int_equal(stats.auto_held_failed_before, 1);
    /* another host is another target; another playbook on this target is not affected */
    char other[64];
    engine_ready(o, "inc-f3", "cart", "web-10", "auto-ok", other);
    assert_int_equal(nops_orch_auto_execute(o, other, &rec, err, sizeof err), NOPS_OK);
    json_decref(rec);
    assert_string_equal(await_end(o, other), "executed");
    /* a person approves and runs it once the cause is fixed: it succeeds ... */
    unlink(g_flag);
    assert_int_equal(nops_orch_approve(o, id, &TU_ADMIN, &rec, err, sizeof err), NOPS_OK);
    json_decref(rec);
    assert_int_equal(nops_orch_execute(o, id, &TU_ADMIN, &rec, err, sizeof err), NOPS_OK);
    assert_string_equal(st(rec), "executed");
    json_decref(rec);
    /* ... and automatic runs there go on */
    engine_ready(o, "inc-f4", "cart", "web-9", "auto-flaky", id);
    assert_int_equal(nops_orch_auto_execute(o, id, &rec, err, sizeof err), NOPS_OK);
    json_decref(rec);
    assert_string_equal(await_end(o, id), "executed");
    nops_orch_destroy(o);
}

/* ---- who may approve and execute ----------------------------------------------------------- */

static void test_allowed_roles(void **state)
{
    (void)state;
    char err[512], id[64];
    nops_orchestrator *o = orch((opts){0});
    json_t *rec = NULL;
    /* an operator may not execute a playbook only org-admins may run */
    tu_orch_approved(o, "admin-only", id, sizeof id);
    assert_int_equal(nops_orch_execute(o, id, &TU_OPS, &rec, err, sizeof err), NOPS_INVAL);
    assert_non_null(strstr(err, "allowed_roles"));
    assert_int_equal(audited(id, "execute", "refused"), 1);
    assert_int_equal(nops_orch_execute(o, id, &TU_ADMIN, &rec, err, sizeof err), NOPS_OK);
    json_decref(rec);
    /* where operators are allowed, they execute */
    tu_orch_approved(o, "ops-too", id, sizeof id);
    assert_int_equal(nops_orch_execute(o, id, &TU_OPS, &rec, err, sizeof err), NOPS_OK);
    assert_string_equal(st(rec), "executed");
    json_decref(rec);
    /* a playbook whose allowed_roles leave out org-admin cannot be approved at all */
    json_t *inc = incident("inc-r", "cart", "web-1");
    assert_int_equal(nops_orch_suggest(o, inc, "ops-only", &TU_OPS, &rec, err, sizeof err),
                     NOPS_OK);
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(rec, "id")));
    json_decref(rec);
    json_decref(inc);
    assert_int_equal(nops_orch_dry_run(o, id, &TU_OPS, &rec, err, sizeof err), NOPS_OK);
    json_decref(rec);
    assert_int_equal(nops_orch_approve(o, id, &TU_ADMIN, &rec, err, sizeof err), NOPS_INVAL);
    assert_non_null(strstr(err, "allowed_roles are [operator]"));
    assert_int_equal(audited(id, "approve", "refused"), 1);
    nops_orch_destroy(o);
}

/* ---- escalation ----------------------------------------------------------------------------- */

typedef struct raised {
    int n;
    char level[16];
    char id[64];
} raised;

static void on_raise(void *ctx, const json_t *rec, const char *level)
{
    raised *r = ctx;
    r->n++;
    snprintf(r->level, sizeof r->level, "%s", level);
    snprintf(r->id, sizeof r->id, "%s", json_string_value(json_object_get(rec, "id")));
}

static void test_escalation(void **state)
{
    (void)state;
    char err[512], id[64], state_dir[200];
    snprintf(state_dir, sizeof state_dir, "%s/esc-state", g_dir);
    nops_orchestrator *o = orch((opts){.state = state_dir});
    engine_ready(o, "inc-e1", "auth", "eu-1", "esc-failover", id);
    json_t *rec = NULL;
    assert_int_equal(nops_orch_get(o, id, &rec), NOPS_OK);
    json_t *esc = json_object_get(rec, "escalation");
    assert_string_equal(json_string_value(json_object_get(esc, "level")), "warning");
    const int64_t t0 = json_integer_value(json_object_get(esc, "since_ns"));
    json_decref(rec);
    raised r = {0};
    assert_int_equal(nops_orch_escalate_due(o, t0 + 899 * SEC, on_raise, &r), 0);
    assert_int_equal(r.n, 0);
    assert_int_equal(nops_orch_escalate_due(o, t0 + 900 * SEC, on_raise, &r), 1);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.level, "critical");
    assert_string_equal(r.id, id);
    /* its time starts again at the new level */
    assert_int_equal(nops_orch_escalate_due(o, t0 + 1000 * SEC, on_raise, &r), 0);
    assert_int_equal(nops_orch_escalate_due(o, t0 + 1800 * SEC, on_raise, &r), 1);
    assert_string_equal(r.level, "emergency");
    assert_int_equal(nops_orch_escalate_due(o, t0 + 9000 * SEC, on_raise, &r), 0); /* the top */
    assert_int_equal(r.n, 2);
    assert_int_equal(audited(id, "escalate", "critical"), 1);
    assert_int_equal(audited(id, "escalate", "emergency"), 1);
    nops_orch_stats stats;
    nops_orch_get_stats(o, &stats);
    assert_int_equal(stats.escalations, 2);
    /* the seals still hold: it is approved and runs */
    assert_int_equal(nops_orch_approve(o, id, &TU_ADMIN, &rec, err, sizeof err), NOPS_OK);
    json_decref(rec);
    /* an edit below the sealed level goes no lower than it; a record whose seal does not hold
     * is not escalated (nobody is notified of it); one whose escalation was removed, or put in
     * the future, starts its clock again at the next look (delayed, not silenced) */
    char id2[64], id3[64], id4[64], id5[64], path[300];
    engine_ready(o, "inc-e2", "auth", "eu-2", "esc-failover", id2);
    engine_ready(o, "inc-e3", "auth", "eu-3", "esc-failover", id3);
    engine_ready(o, "inc-e4", "auth", "eu-4", "esc-failover", id4);
    engine_ready(o, "inc-e5", "auth", "eu-5", "esc-failover", id5);
    nops_orch_destroy(o);
    snprintf(path, sizeof path, "%s/%s.json", state_dir, id2);
    json_t *doc = json_load_file(path, 0, NULL);
    json_object_set_new(json_object_get(doc, "escalation"), "level", json_string("info"));
    assert_int_equal(json_dump_file(doc, path, 0), 0);
    json_decref(doc);
    snprintf(path, sizeof path, "%s/%s.json", state_dir, id3);
    doc = json_load_file(path, 0, NULL);
    json_object_set_new(json_object_get(doc, "context"), "labels", json_pack("{s:s}",
                                                                             "service", "x"));
    assert_int_equal(json_dump_file(doc, path, 0), 0);
    json_decref(doc);
    snprintf(path, sizeof path, "%s/%s.json", state_dir, id4);
    doc = json_load_file(path, 0, NULL);
    json_object_del(doc, "escalation");
    assert_int_equal(json_dump_file(doc, path, 0), 0);
    json_decref(doc);
    snprintf(path, sizeof path, "%s/%s.json", state_dir, id5);
    doc = json_load_file(path, 0, NULL);
    json_object_set_new(json_object_get(doc, "escalation"), "since_ns",
                        json_integer((json_int_t)INT64_MAX));
    assert_int_equal(json_dump_file(doc, path, 0), 0);
    json_decref(doc);
    o = orch((opts){.state = state_dir});
    memset(&r, 0, sizeof r);
    const int64_t t1 = nops_wall_ns() + 901 * SEC;
    assert_int_equal(nops_orch_escalate_due(o, t1, on_raise, &r), 1);
    assert_string_equal(r.id, id2);
    assert_string_equal(r.level, "critical"); /* from warning (sealed), not from info */
    assert_int_equal(nops_orch_escalate_due(o, t1 + 900 * SEC, on_raise, &r), 3);
    assert_int_equal(r.n, 4); /* id2 to emergency, id4 and id5 to critical; never id3 */
    assert_int_equal(audited(id3, "escalate", "critical"), 0);
    assert_int_equal(audited(id4, "escalate", "critical"), 1);
    assert_int_equal(audited(id5, "escalate", "critical"), 1);
    nops_orch_destroy(o);
}

/* ---- deny says why ------------------------------------------------------------------------ */

static void test_deny_records_why(void **state)
{
    (void)state;
    char err[512];
    nops_orchestrator *o = orch((opts){0});
    json_t *inc = incident("inc-d", "db", "pg-1"), *rec = NULL;
    assert_int_equal(nops_orch_suggest(o, inc, "delete-db", &TU_OPS, &rec, err, sizeof err),
                     NOPS_OK);
    assert_string_equal(st(rec), "denied");
    json_t *pol = json_object_get(rec, "policy");
    assert_string_equal(json_string_value(json_object_get(pol, "rule")), "no-deletes");
    assert_string_equal(json_string_value(json_object_get(pol, "reason")),
                        "deleting data needs a change ticket");
    assert_non_null(strstr(json_string_value(json_object_get(rec, "error")), "no-deletes"));
    const char *id = json_string_value(json_object_get(rec, "id"));
    nops_audit_query q = {.limit = 10, .subject = id, .action = "suggest"};
    json_t *page = NULL;
    assert_int_equal(nops_audit_page(g_a, &q, &page, err, sizeof err), NOPS_OK);
    json_t *e = json_array_get(json_object_get(page, "entries"), 0);
    assert_string_equal(json_string_value(json_object_get(e, "decision")), "deny");
    json_t *det = json_object_get(e, "details");
    assert_string_equal(json_string_value(json_object_get(det, "rule")), "no-deletes");
    assert_string_equal(json_string_value(json_object_get(det, "reason")),
                        "deleting data needs a change ticket");
    json_decref(page);
    json_decref(rec);
    json_decref(inc);
    nops_orch_destroy(o);
    /* a reason that is not a short string is refused at load, naming the rule */
    nops_policy *bad = nops_policy_parse("[{\"name\":\"r\",\"priority\":1,\"when\":"
                                         "\"actor.role == \\\"x\\\"\",\"action\":\"deny\","
                                         "\"reason\":5}]", err, sizeof err);
    assert_null(bad);
    assert_non_null(strstr(err, "(r) needs a reason"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_suggest_once_files),
        cmocka_unit_test(test_suggest_once_postgres),
        cmocka_unit_test(test_pause_files),
        cmocka_unit_test(test_pause_postgres_shared),
        cmocka_unit_test(test_budget_across_instances),
        cmocka_unit_test(test_auto_execute_race),
        cmocka_unit_test(test_failed_before),
        cmocka_unit_test(test_allowed_roles),
        cmocka_unit_test(test_escalation),
        cmocka_unit_test(test_deny_records_why),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
