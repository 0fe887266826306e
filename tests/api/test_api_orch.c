/*
 * test_api_orch.c — the orchestration routes over real loopback HTTP, in front of the engine
 * of api_fixture.c: suggest → dry-run → approve → execute with the role checks on the way, the
 * listing by state, /metrics and the audit trail of a run, and the same flow with the records,
 * runs and audit trail in PostgreSQL.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/api/api_fixture.h"
#include "tests/support/pgutil.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

/* Poll GET /orchestrations/{id} on `port` until it is in `state` (the worker runs the steps). */
static void await_state_on(int port, const char *id, const char *state)
{
    char path[160], want[64];
    snprintf(path, sizeof path, "/orchestrations/%s", id);
    snprintf(want, sizeof want, "\"state\":\"%s\"", state);
    for (int i = 0; i < 500; i++) {
        http_res r = http_do(port, "GET", path, H_VIEWER, NULL, 0);
        bool there = r.status == 200 && r.body && strstr(r.body, want);
        http_free(&r);
        if (there)
            return;
        nanosleep(&(struct timespec){0, 20000000}, NULL);
    }
    fail_msg("orchestration %s never reached %s", id, state);
}

static void await_state(const char *id, const char *state)
{
    await_state_on(g_port, id, state);
}

static const char *OP_JSON[] = {"X-API-Key: operator-key-1", "Content-Type: application/json",
                                NULL};
static const char *SUGGEST = "{\"playbook_id\":\"echo\",\"incident\":{\"summary\":\"test\","
                             "\"labels\":{\"service\":\"checkout\"}}}";

/* POST /orchestrate as an operator: the new run's id into id (64 bytes). */
static void suggest(char *id)
{
    http_res r = http_do(g_port, "POST", "/orchestrate", OP_JSON, SUGGEST, (size_t)-1);
    assert_int_equal(r.status, 201);
    json_t *o = json_of(&r);
    snprintf(id, 64, "%s", json_string_value(json_object_get(o, "id")));
    assert_string_equal(json_string_value(json_object_get(o, "state")), "suggested");
    json_decref(o);
    http_free(&r);
}

/* POST /orchestrations/{id}/{step} by `who`; the status. */
static long step(const char *id, const char *name, const char **who)
{
    char path[160];
    snprintf(path, sizeof path, "/orchestrations/%s/%s", id, name);
    return status_of(http_do(g_port, "POST", path, who, "", 0));
}

/*
 * Wait until the audit trail holds n entries about run id. An outcome (the dry run's, the
 * execution's) is audited just after the record shows it (orchestrator.c commit_step), so a
 * client that acts on the state at once can get its own entry in first: the tests that read
 * the trail's order wait for the outcome's entry before the next step.
 */
static void await_audit_on(int port, const char *id, size_t n)
{
    char path[160];
    snprintf(path, sizeof path, "/audit?subject=%s&limit=1000", id);
    size_t have = 0;
    for (int i = 0; i < 500 && have < n; i++) {
        http_res r = http_do(port, "GET", path, H_OPERATOR, NULL, 0);
        json_t *o = r.status == 200 ? json_loadb(r.body, r.len, 0, NULL) : NULL;
        have = json_array_size(json_object_get(o, "entries"));
        json_decref(o);
        http_free(&r);
        if (have < n)
            sleep_ms(20);
    }
    if (have < n)
        fail_msg("run %s: %zu audit entries, never %zu", id, have, n);
}

static void await_audit(const char *id, size_t n)
{
    await_audit_on(g_port, id, n);
}

/* A new run, dry-run and waiting for approval (its two entries in the trail: suggest, dry-run). */
static void dry_run_ok(char *id)
{
    suggest(id);
    assert_int_equal(step(id, "dry-run", OP_JSON), 202);
    await_state(id, "dry_run_ok");
    await_audit(id, 2);
}

/* The run test_approve_execute took through to executed ("" until it did). */
static char g_executed[64];

/* The playbooks, and what a suggestion needs: a signed playbook and an operator. */
static void test_suggest(void **state)
{
    (void)state;
    http_res r = http_do(g_port, "GET", "/playbooks", H_VIEWER, NULL, 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"echo\""));
    http_free(&r);
    expect_error(http_do(g_port, "POST", "/orchestrate", OP_JSON,
                         "{\"playbook_id\":\"nope\",\"incident\":{}}", (size_t)-1),
                 404, "no signed playbook");
    expect_error(http_do(g_port, "POST", "/orchestrate", H_VIEWER, SUGGEST, (size_t)-1), 403,
                 "needs operator");
    char id[64], path[160];
    suggest(id);
    snprintf(path, sizeof path, "/orchestrations/%s/execute", id);
    expect_error(http_do(g_port, "POST", path, OP_JSON, "", 0), 409, "is suggested");
    expect_error(http_do(g_port, "GET", "/orchestrations/orch-none", H_VIEWER, NULL, 0), 404,
                 "no orchestration");
    expect_error(http_do(g_port, "POST", "/orchestrations/x/undo", OP_JSON, "", 0), 404, NULL);
}

/* A dry run runs on the worker; what waits for an approval is listed by state. */
static void test_dry_run_and_list(void **state)
{
    (void)state;
    char id[64], path[160];
    suggest(id);
    snprintf(path, sizeof path, "/orchestrations/%s/dry-run", id);
    http_res r = http_do(g_port, "POST", path, OP_JSON, "", 0);
    assert_int_equal(r.status, 202); /* steps run on the worker: the record says so */
    assert_non_null(strstr(r.body, "\"dry_running\""));
    http_free(&r);
    await_state(id, "dry_run_ok");
    r = http_do(g_port, "GET", "/orchestrations?state=dry_run_ok&limit=10", H_VIEWER, NULL, 0);
    assert_int_equal(r.status, 200);
    json_t *doc = json_of(&r), *waiting = json_object_get(doc, "orchestrations");
    http_free(&r);
    assert_int_equal(json_array_size(waiting), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(waiting, 0), "id")), id);
    json_decref(doc);
    expect_error(http_do(g_port, "GET", "/orchestrations?state=pending", H_VIEWER, NULL, 0), 400,
                 "state must be");
    r = http_do(g_port, "GET", "/orchestrations?state=damaged", H_VIEWER, NULL, 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"orchestrations\":[]"));
    http_free(&r);
    expect_error(http_do(g_port, "GET", "/orchestrations?limit=0", H_VIEWER, NULL, 0), 400,
                 "limit");
}

/* An org-admin approves, an operator executes once; the output and /metrics show it. */
static void test_approve_execute(void **state)
{
    (void)state;
    char id[64], path[160];
    dry_run_ok(id);
    snprintf(path, sizeof path, "/orchestrations/%s/approve", id);
    expect_error(http_do(g_port, "POST", path, OP_JSON, "", 0), 403, "needs org-admin");
    assert_int_equal(step(id, "approve", H_ADMIN_JSON), 200);
    snprintf(path, sizeof path, "/orchestrations/%s/execute", id);
    http_res r = http_do(g_port, "POST", path, OP_JSON, "", 0);
    assert_int_equal(r.status, 202);
    assert_non_null(strstr(r.body, "\"executing\""));
    http_free(&r);
    /* taken once: a second execute while (or after) it runs is refused */
    expect_error(http_do(g_port, "POST", path, OP_JSON, "", 0), 409, NULL);
    await_state(id, "executed");
    snprintf(g_executed, sizeof g_executed, "%s", id);
    snprintf(path, sizeof path, "/orchestrations/%s", id);
    r = http_do(g_port, "GET", path, H_VIEWER, NULL, 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "fixed\\n"));
    http_free(&r);
    r = http_do(g_port, "GET", "/metrics", NULL, NULL, 0);
    assert_non_null(strstr(r.body, "neuralops_orchestration_steps_total{step=\"execute\","
                                   "outcome=\"executed\"} 1\n"));
    assert_non_null(strstr(r.body, "neuralops_orchestration_steps_total{step=\"approve\","
                                   "outcome=\"approved\"} 1\n"));
    assert_non_null(strstr(r.body, "neuralops_orchestration_running 0\n"));
    assert_non_null(strstr(r.body, "neuralops_orchestration_damaged_records 0\n"));
    assert_non_null(strstr(r.body, "neuralops_audit_integrity_failures_total 0\n"));
    http_free(&r);
}

/* The audit trail of an executed run: operators and admins read it, page by page and
 * filtered; bad queries are named. */
static void test_audit_trail(void **state)
{
    (void)state;
    if (!g_executed[0]) { /* run alone: take a run through first */
        dry_run_ok(g_executed);
        assert_int_equal(step(g_executed, "approve", H_ADMIN_JSON), 200);
        assert_int_equal(step(g_executed, "execute", OP_JSON), 202);
        await_state(g_executed, "executed");
    }
    await_audit(g_executed, 5); /* suggest, dry-run, approved, started, executed */
    const char *id = g_executed;
    char path[160];
    expect_error(http_do(g_port, "GET", "/audit", H_VIEWER, NULL, 0), 403, "needs operator");
    snprintf(path, sizeof path, "/audit?subject=%s&limit=2", id);
    http_res r = http_do(g_port, "GET", path, H_OPERATOR, NULL, 0);
    assert_int_equal(r.status, 200);
    json_t *page = json_of(&r);
    http_free(&r);
    json_t *entries = json_object_get(page, "entries");
    assert_int_equal(json_array_size(entries), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(entries, 0), "action")),
                        "suggest");
    json_int_t next = json_integer_value(json_object_get(page, "next"));
    assert_true(next >= 2);
    json_decref(page);
    snprintf(path, sizeof path, "/audit?subject=%s&after=%lld&limit=1000", id, (long long)next);
    r = http_do(g_port, "GET", path, H_ADMIN, NULL, 0);
    page = json_of(&r);
    http_free(&r);
    entries = json_object_get(page, "entries");
    /* after suggest and dry-run: approved, execute started, executed (refusals by the server's
     * role check or for a wrong state come before any decision about this run) */
    assert_int_equal(json_array_size(entries), 3);
    assert_true(json_is_null(json_object_get(page, "next")));
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e) {
        assert_string_equal(json_string_value(json_object_get(e, "subject")), id);
        assert_true(json_integer_value(json_object_get(e, "seq")) > next);
    }
    const char *decisions[] = {"approved", "started", "executed"};
    json_array_foreach(entries, i, e)
        assert_string_equal(json_string_value(json_object_get(e, "decision")), decisions[i]);
    json_decref(page);
    expect_error(http_do(g_port, "GET", "/audit?limit=0", H_ADMIN, NULL, 0), 400, "limit");
    expect_error(http_do(g_port, "GET", "/audit?after=-1", H_ADMIN, NULL, 0), 400, "after");
    expect_error(http_do(g_port, "GET", "/audit?sort=x", H_ADMIN, NULL, 0), 400, "sort");
}

/* The same flow over HTTP with the records, runs and audit trail in PostgreSQL. */
static void test_orchestration_over_http_on_postgres(void **state)
{
    (void)state;
    char dsn[600], err[512], path[256], state_dir[256];
    PGconn *c = tu_pg_schema("api_pg", dsn, sizeof dsn);
    snprintf(path, sizeof path, "%s/audit-pg.jsonl", g_dir);
    snprintf(state_dir, sizeof state_dir, "%s/orch-pg", g_dir);
    nops_audit *audit = nops_audit_open(path, dsn, g_audit_key, NULL, err, sizeof err);
    assert_non_null(audit);
    nops_orch_deps d = {.state_dir = state_dir, .pg_dsn = dsn, .reg = g_reg, .audit = audit,
                        .secret = g_secret, .max_open = 1};
    nops_orchestrator *orch = nops_orch_new(&d, err, sizeof err);
    assert_non_null(orch);
    nops_orchestrator *files_orch = g_orch;
    nops_audit *files_audit = g_audit;
    g_orch = orch;
    g_audit = audit;
    nops_api_params ap;
    api_params(&ap);
    ap.body_limit = 1 << 20; /* the incident's own cap is the one to meet */
    nops_api *api = start_api(&ap, g_boot);
    g_orch = files_orch;
    g_audit = files_audit;
    const int port = nops_api_port(api);
    const char *op_json[] = {"X-API-Key: operator-key-1", "Content-Type: application/json", NULL};
    http_res r = http_do(port, "POST", "/orchestrate", op_json,
                         "{\"playbook_id\":\"echo\",\"incident\":{\"summary\":\"pg\","
                         "\"labels\":{\"service\":\"ledger\"}}}",
                         (size_t)-1);
    assert_int_equal(r.status, 201);
    json_t *o = json_of(&r);
    http_free(&r);
    char id[64], url[160];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(o, "id")));
    json_decref(o);
    /* an inline incident over 64 KiB of JSON */
    static char big[NOPS_ORCH_MAX_INCIDENT + 100];
    snprintf(big, sizeof big, "{\"playbook_id\":\"echo\",\"incident\":{\"summary\":\"%0*d\"}}",
             NOPS_ORCH_MAX_INCIDENT, 0);
    expect_error(http_do(port, "POST", "/orchestrate", op_json, big, (size_t)-1), 413,
                 "incident is");
    /* orchestrate.max_open = 1: a second open one is refused until the first ends */
    expect_error(http_do(port, "POST", "/orchestrate", op_json,
                         "{\"playbook_id\":\"echo\",\"incident\":{}}", (size_t)-1),
                 429, "orchestrate.max_open");
    snprintf(url, sizeof url, "/orchestrations/%s/dry-run", id);
    assert_int_equal(status_of(http_do(port, "POST", url, op_json, "", 0)), 202);
    await_state_on(port, id, "dry_run_ok");
    snprintf(url, sizeof url, "/orchestrations/%s/approve", id);
    assert_int_equal(status_of(http_do(port, "POST", url, H_ADMIN_JSON, "", 0)), 200);
    snprintf(url, sizeof url, "/orchestrations/%s/execute", id);
    assert_int_equal(status_of(http_do(port, "POST", url, op_json, "", 0)), 202);
    await_state_on(port, id, "executed");
    await_audit_on(port, id, 5); /* the outcome's entry follows the record (see await_audit) */
    snprintf(url, sizeof url, "/audit?subject=%s", id);
    r = http_do(port, "GET", url, H_OPERATOR, NULL, 0);
    assert_int_equal(r.status, 200);
    o = json_of(&r);
    http_free(&r);
    assert_int_equal(json_array_size(json_object_get(o, "entries")), 5);
    json_decref(o);
    /* the row edited to be approved again by someone else: the approval does not verify */
    const char *v[1] = {id};
    PGresult *pr = PQexecParams(c, "UPDATE api_pg.orchestrations SET state = 'approved', record "
                                   "= jsonb_set(jsonb_set(record, '{state}', '\"approved\"'), "
                                   "'{approval,by}', '\"key:mallory\"') WHERE id = $1",
                                1, NULL, v, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(pr), PGRES_COMMAND_OK);
    PQclear(pr);
    snprintf(url, sizeof url, "/orchestrations/%s/execute", id);
    expect_error(http_do(port, "POST", url, op_json, "", 0), 409, "does not verify");
    nops_api_destroy(api);
    nops_orch_destroy(orch);
    nops_audit_close(audit);
    /* all of it is in the database: the record, the run and the five audit rows */
    tu_pg_expect_run(c, "api_pg", id, "approved", "success", 6); /* + the refusal */
    tu_pg_drop_schema(c, "api_pg");
}

/* A stored signal and the stored incident it belongs to (the shapes the sinks write). */
static void store_incident(const char *inc_id, const char *sig_id, const char *metric)
{
    char line[1024];
    int n = snprintf(line, sizeof line,
                     "{\"id\":\"%s\",\"series\":\"%s{host=\\\"db-1\\\"}\",\"metric\":\"%s\","
                     "\"labels\":{\"service\":\"ledger\",\"host\":\"db-1\"},\"ts\":"
                     "\"2024-01-01T00:00:10Z\",\"value\":97,\"score\":0.99,\"method\":\"zscore\","
                     "\"hint\":\"%s is 9.1 sigma above its rolling mean\"}",
                     sig_id, metric, metric, metric);
    assert_int_equal(nops_store_add(g_store, NOPS_SINK_SIGNAL, line, (size_t)n), NOPS_OK);
    n = snprintf(line, sizeof line,
                 "{\"id\":\"%s\",\"status\":\"open\",\"opened_at\":\"2024-01-01T00:00:10Z\","
                 "\"updated_at\":\"2024-01-01T00:00:10Z\",\"signals\":[\"%s\"],\"labels\":"
                 "{\"service\":\"ledger\"},\"summary\":\"disk filling on ledger/db-1\","
                 "\"root_cause_hint\":\"%s on db-1\"}",
                 inc_id, sig_id, metric);
    assert_int_equal(nops_store_add(g_store, NOPS_SINK_INCIDENT, line, (size_t)n), NOPS_OK);
}

/* The workflow_runs row of run `id` in the fixture's history file (polled: it is written as
 * the execution ends), as JSON. */
static json_t *history_row(const char *id)
{
    char path[300];
    snprintf(path, sizeof path, "%s/runs.jsonl", g_dir);
    for (int i = 0; i < 500; i++) {
        FILE *f = fopen(path, "r");
        char *line = NULL;
        size_t cap = 0;
        json_t *found = NULL;
        while (f && !found && getline(&line, &cap, f) > 0) {
            json_t *row = json_loads(line, 0, NULL);
            if (row && strcmp(json_string_value(json_object_get(row, "id")), id) == 0)
                found = row;
            else
                json_decref(row);
        }
        free(line);
        if (f)
            fclose(f);
        if (found)
            return found;
        sleep_ms(20);
    }
    fail_msg("no history row for %s", id);
    return NULL;
}

/* A run started from a stored incident (incident_id) writes a complete workflow_runs row: the
 * incident's summary, labels, its metrics and its signals as objects (what the index learns
 * from), and the outcome. */
static void test_run_row_from_incident_id(void **state)
{
    (void)state;
    store_incident("inc-row-1", "sig-row-1", "disk_used_percent");
    http_res r = http_do(g_port, "POST", "/orchestrate", OP_JSON,
                         "{\"playbook_id\":\"echo\",\"incident_id\":\"inc-row-1\"}", (size_t)-1);
    assert_int_equal(r.status, 201);
    json_t *o = json_of(&r);
    http_free(&r);
    char id[64];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(o, "id")));
    json_decref(o);
    assert_int_equal(step(id, "dry-run", OP_JSON), 202);
    await_state(id, "dry_run_ok");
    assert_int_equal(step(id, "approve", H_ADMIN_JSON), 200);
    assert_int_equal(step(id, "execute", OP_JSON), 202);
    await_state(id, "executed");
    json_t *row = history_row(id);
    assert_string_equal(json_string_value(json_object_get(row, "status")), "success");
    assert_string_equal(json_string_value(json_object_get(row, "incident_summary")),
                        "disk filling on ledger/db-1");
    assert_string_equal(json_string_value(json_object_get(json_object_get(row, "labels"),
                                                          "service")), "ledger");
    json_t *metrics = json_object_get(row, "metrics");
    assert_int_equal(json_array_size(metrics), 1);
    assert_string_equal(json_string_value(json_array_get(metrics, 0)), "disk_used_percent");
    json_t *sig = json_array_get(json_object_get(row, "signals"), 0);
    assert_true(json_is_object(sig));
    assert_string_equal(json_string_value(json_object_get(sig, "metric")), "disk_used_percent");
    json_decref(row);
}

/* An index in DIR/index of runs for disk incidents on ledger hosts: "echo" (signed here)
 * succeeded in 18 of 30, "unsigned-fix" (not in the registry) in all of its 30. */
static void build_index(char *dir, size_t cap)
{
    snprintf(dir, cap, "%s/index", g_dir);
    char err[512];
    nops_histdir_writer *w = nops_histdir_begin(dir, NOPS_INDEX_FLAT, err, sizeof err);
    nops_redactor *red = nops_redactor_new("api-test-key", err, sizeof err);
    assert_non_null(w);
    assert_non_null(red);
    for (int i = 0; i < 60; i++) {
        const bool echo = i % 2 == 0;
        json_t *run = json_pack(
            "{s:s+, s:s, s:s, s:s, s:[s], s:{s:s, s:s}, s:[{s:s, s:s, s:f, s:s, s:{s:s}}]}", "id",
            "run-", echo ? "e" : "u", "playbook_id", echo ? "echo" : "unsigned-fix", "status",
            echo && i % 10 >= 6 ? "failure" : "success", "incident_summary",
            "disk filling on ledger/db-1", "metrics", "disk_used_percent", "labels", "service",
            "ledger", "host", "db-1", "signals", "metric", "disk_used_percent", "method",
            "zscore", "score", 0.99, "hint", "disk_used_percent is 9.1 sigma above its rolling "
            "mean", "labels", "service", "ledger");
        char id[32];
        snprintf(id, sizeof id, "run-%s-%02d", echo ? "e" : "u", i);
        json_object_set_new(run, "id", json_string(id));
        float v[NOPS_EMBED_DIM];
        nops_run_meta m;
        if (nops_vector_prepare_run(red, run, v, &m, NULL, err, sizeof err) != NOPS_OK)
            fail_msg("run %d: %s", i, err);
        assert_int_equal(nops_histdir_add(w, v, &m), NOPS_OK);
        json_decref(run);
    }
    nops_redactor_destroy(red);
    if (nops_histdir_commit(w, "test", 0, err, sizeof err) != NOPS_OK)
        fail_msg("commit: %s", err);
}

/* The audit entries of `action` about `subject` (GET /audit), as a JSON array (new ref). */
static json_t *audit_entries(int port, const char *action, const char *subject)
{
    char path[200];
    snprintf(path, sizeof path, "/audit?action=%s&subject=%s&limit=1000", action, subject);
    http_res r = http_do(port, "GET", path, H_OPERATOR, NULL, 0);
    assert_int_equal(r.status, 200);
    json_t *o = json_of(&r);
    http_free(&r);
    json_t *e = json_incref(json_object_get(o, "entries"));
    json_decref(o);
    return e;
}

/* The request rules of POST /orchestrate's recommendation form (the fixture's API has no
 * recommender: 422 saying so). */
static void orchestrate_request_rules(void)
{
    expect_error(http_do(g_port, "POST", "/orchestrate", OP_JSON,
                         "{\"incident_id\":\"inc-reco-1\"}", (size_t)-1),
                 422, "recommend.index_dir");
    expect_error(http_do(g_port, "POST", "/orchestrate", OP_JSON, "{\"incident_id\":5}",
                         (size_t)-1), 400, "incident_id must be a non-empty string");
    expect_error(http_do(g_port, "POST", "/orchestrate", OP_JSON,
                         "{\"playbook_id\":7,\"incident_id\":\"inc-reco-1\"}", (size_t)-1),
                 400, "playbook_id must be a non-empty string");
    expect_error(http_do(g_port, "POST", "/orchestrate", OP_JSON,
                         "{\"incident_id\":\"inc-reco-1\",\"signal_id\":\"sig-reco-1\"}",
                         (size_t)-1), 400, "exactly one of");
    expect_error(http_do(g_port, "POST", "/orchestrate", OP_JSON,
                         "{\"incident_id\":\"inc-reco-1\",\"top\":1}", (size_t)-1), 400,
                 "top");
    expect_error(http_do(g_port, "POST", "/orchestrate", OP_JSON, "{\"signal_id\":\"nope\"}",
                         (size_t)-1), 404, "no signal nope");
}

/* An API with a recommender over a fresh index and a learner over the fixture's history. */
static nops_api *api_with_recommender(void)
{
    char idx[300], err[512];
    build_index(idx, sizeof idx);
    nops_reco_params rp = {.neighbours = 100, .min_similarity = 0.5, .prior_weight = 2,
                           .reload_s = 1};
    snprintf(rp.index_dir, sizeof rp.index_dir, "%s", idx);
    g_reco = nops_recommender_new(&rp, err, sizeof err);
    assert_non_null(g_reco);
    /* the learner over the fixture's history (runs executed by the tests before), for /metrics */
    nops_learn_params lp = {.min_runs = 1};
    snprintf(lp.index_dir, sizeof lp.index_dir, "%s", idx);
    snprintf(lp.history_jsonl, sizeof lp.history_jsonl, "%s/runs.jsonl", g_dir);
    snprintf(lp.actor_key, sizeof lp.actor_key, "api-test-key");
    g_learner = nops_learner_new(&lp, err, sizeof err);
    assert_non_null(g_learner);
    nops_api_params ap;
    api_params(&ap);
    return start_api(&ap, g_boot);
}

/* unsigned-fix ranks first but is not signed here: echo (second) is taken, by incident and by
 * signal; nothing similar is 422 with the reason; the recommendation that chose is audited. */
static void orchestrate_takes_echo(int port)
{
    http_res r = http_do(port, "POST", "/orchestrate", OP_JSON, "{\"incident_id\":\"inc-reco-1\"}",
                         (size_t)-1);
    assert_int_equal(r.status, 201);
    json_t *o = json_of(&r);
    http_free(&r);
    assert_string_equal(json_string_value(json_object_get(o, "playbook_id")), "echo");
    json_t *pick = json_object_get(o, "recommendation");
    assert_string_equal(json_string_value(json_object_get(pick, "playbook_id")), "echo");
    assert_int_equal(json_integer_value(json_object_get(pick, "rank")), 2);
    const double score = json_real_value(json_object_get(pick, "score"));
    assert_true(score > 0 && score < 1);
    json_decref(o);
    r = http_do(port, "POST", "/orchestrate", OP_JSON, "{\"signal_id\":\"sig-reco-1\"}",
                (size_t)-1);
    assert_int_equal(r.status, 201);
    o = json_of(&r);
    http_free(&r);
    assert_string_equal(json_string_value(json_object_get(o, "playbook_id")), "echo");
    json_decref(o);
    expect_error(http_do(port, "POST", "/orchestrate", OP_JSON,
                         "{\"incident\":{\"summary\":\"quantum flux capacitor overheated\","
                         "\"labels\":{\"service\":\"time-machine\"}}}", (size_t)-1),
                 422, "nothing to recommend");
    /* audited: the recommendation that chose it, with the top ids, scores and generation */
    json_t *entries = audit_entries(port, "recommend", "inc-reco-1");
    assert_int_equal(json_array_size(entries), 1);
    json_t *e0 = json_array_get(entries, 0), *det = json_object_get(e0, "details");
    assert_string_equal(json_string_value(json_object_get(e0, "actor")), "key:o1");
    assert_string_equal(json_string_value(json_object_get(e0, "decision")), "ranked");
    assert_int_equal(json_integer_value(json_object_get(det, "generation")), 1);
    json_t *top = json_object_get(det, "top");
    assert_string_equal(json_string_value(json_object_get(json_array_get(top, 0),
                                                          "playbook_id")), "unsigned-fix");
    assert_string_equal(json_string_value(json_object_get(json_array_get(top, 1),
                                                          "playbook_id")), "echo");
    json_decref(entries);
}

static const char *v_json[] = {"X-API-Key: viewer-key-1", "Content-Type: application/json",
                               NULL};

/* Every POST /recommend is audited (viewers too), inline ones as subject "inline". */
static void recommend_is_audited(int port)
{
    json_t *before = audit_entries(port, "recommend", "inline");
    http_res r = http_do(port, "POST", "/recommend", v_json,
                         "{\"incident\":{\"summary\":\"disk filling on ledger/db-1\",\"metrics\":"
                         "[\"disk_used_percent\"],\"labels\":{\"service\":\"ledger\"}}}",
                         (size_t)-1);
    assert_int_equal(r.status, 200);
    http_free(&r);
    json_t *after = audit_entries(port, "recommend", "inline");
    assert_int_equal(json_array_size(after), json_array_size(before) + 1);
    json_t *last = json_array_get(after, json_array_size(after) - 1);
    assert_string_equal(json_string_value(json_object_get(last, "actor")), "key:v1");
    json_decref(before);
    json_decref(after);
}

/* An audit entry that cannot be written: no recommendation, the caller is told, the trail
 * still verifies. */
static void unwritable_audit_refuses(int port)
{
    char apath[300];
    snprintf(apath, sizeof apath, "%s/audit.jsonl", g_dir);
    struct stat sb;
    assert_int_equal(stat(apath, &sb), 0);
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    lim.rlim_cur = (rlim_t)sb.st_size + 10; /* room for a part of a line, not a whole one */
    lim.rlim_max = old.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    http_res r = http_do(port, "POST", "/recommend", v_json, "{\"incident_id\":\"inc-reco-1\"}",
                         (size_t)-1);
    http_res r2 = http_do(port, "POST", "/orchestrate", OP_JSON,
                          "{\"incident_id\":\"inc-reco-1\"}", (size_t)-1);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    expect_error(r, 500, "audit trail refused");
    expect_error(r2, 500, "audit trail refused");
    nops_audit_report rep;
    assert_int_equal(nops_audit_verify_file(apath, g_audit_key, &rep), NOPS_OK);
}

/* The learning loop in /metrics: the runs executed here appended as a new generation. */
static void learner_in_metrics(int port)
{
    char err[512];
    size_t appended = 0;
    if (nops_learner_run_once(g_learner, &appended, err, sizeof err) != NOPS_OK)
        fail_msg("learn: %s", err);
    assert_true(appended > 0);
    http_res r = http_do(port, "GET", "/metrics", NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    char want[80];
    snprintf(want, sizeof want, "neuralops_learn_runs_appended_total %zu\n", appended);
    assert_non_null(strstr(r.body, want));
    assert_non_null(strstr(r.body, "neuralops_learn_cycles_total 1\n"));
    assert_non_null(strstr(r.body, "neuralops_learn_generation 2\n"));
    assert_non_null(strstr(r.body, "neuralops_learn_failures_total 0\n"));
    http_free(&r);
}

/* POST /orchestrate without playbook_id takes the best-ranked recommendation that is a signed
 * playbook here, says which and its score, and the recommendation is audited; with no index or
 * nothing similar it is 422; the request is checked strictly. One scenario in steps: each step
 * works on the state the one before left (the recommender, the audit trail, the history). */
static void test_orchestrate_takes_the_recommendation(void **state)
{
    (void)state;
    store_incident("inc-reco-1", "sig-reco-1", "disk_used_percent");
    orchestrate_request_rules();
    nops_api *api = api_with_recommender();
    const int port = nops_api_port(api);
    orchestrate_takes_echo(port);
    recommend_is_audited(port);
    unwritable_audit_refuses(port);
    learner_in_metrics(port);
    nops_api_destroy(api);
    nops_learner_destroy(g_learner);
    g_learner = NULL;
    nops_recommender_destroy(g_reco);
    g_reco = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_suggest),
        cmocka_unit_test(test_dry_run_and_list),
        cmocka_unit_test(test_approve_execute),
        cmocka_unit_test(test_audit_trail),
        cmocka_unit_test(test_run_row_from_incident_id),
        cmocka_unit_test(test_orchestrate_takes_the_recommendation),
        cmocka_unit_test(test_orchestration_over_http_on_postgres),
    };
    return cmocka_run_group_tests(tests, tapi_setup, tapi_teardown);
}
