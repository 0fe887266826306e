/*
 * test_claim.c — an execution whose claim could not be stored: the trail says "started", then
 * "not-recorded", and the record stays approved. A retry once the store works again must run
 * it (nothing ran), in the same process and after the audit trail is reopened (the entries are
 * read back at open); a claim that was stored still counts as a start. Without a trail, the
 * process remembers its own executions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "orchestrate/orchestrate.h"
#include "tests/support/orchutil.h"
#include "tests/support/pgutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_dir[] = "/tmp/nops-claim-XXXXXX";
static tu_orch_dirs g_d;
static nops_registry *g_r;
static nops_policy *g_p;
static nops_secret *g_secret;

static int setup(void **state)
{
    (void)state;
    if (tu_orch_dirs_make(g_dir, &g_d) != 0)
        return -1;
    tu_orch_playbook(g_d.reg, g_d.key, "echo", "[{\"name\":\"hi\",\"exec\":[\"/bin/echo\",\"hi\"]}]",
                     "manual", 30, "");
    char err[256];
    g_r = nops_registry_load(g_d.reg, g_d.pub, err, sizeof err);
    g_p = nops_policy_parse("[]", err, sizeof err);
    g_secret = nops_secret_from_bytes("claim test key", 14);
    return g_r && g_p && g_secret ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    nops_registry_destroy(g_r);
    nops_policy_destroy(g_p);
    nops_secret_destroy(g_secret);
    return tu_orch_dirs_remove(g_dir);
}

static nops_audit *trail(void)
{
    char err[256];
    nops_audit *a = nops_audit_open(g_d.audit, NULL, g_secret, NULL, err, sizeof err);
    if (!a)
        fail_msg("audit: %s", err);
    return a;
}

static nops_orchestrator *orch(nops_audit *a)
{
    char err[256];
    nops_orch_deps d = {.state_dir = g_d.state, .reg = g_r, .pol = g_p, .audit = a,
                        .secret = g_secret};
    nops_orchestrator *o = nops_orch_new(&d, err, sizeof err);
    if (!o)
        fail_msg("%s", err);
    return o;
}

/* The records store refuses to write record `id` while `on`: a directory sits where
 * nops_file_replace writes its temporary file (root ignores file modes, not this). */
static void block_store(const char *id, bool on)
{
    char tmp[400];
    snprintf(tmp, sizeof tmp, "%s/%s.json.tmp.%ld", g_d.state, id, (long)getpid());
    if (on)
        assert_int_equal(mkdir(tmp, 0700), 0);
    else
        assert_int_equal(rmdir(tmp), 0);
}

static const char *st(json_t *rec)
{
    return json_string_value(json_object_get(rec, "state"));
}

/* Execute `id`; the claim is refused by the store: the record stays approved. */
static void failed_claim(nops_orchestrator *o, const char *id)
{
    char err[512];
    json_t *rec = NULL;
    block_store(id, true);
    assert_int_not_equal(nops_orch_execute(o, id, &TU_ADMIN, &rec, err, sizeof err), NOPS_OK);
    assert_null(rec);
    block_store(id, false);
    assert_int_equal(nops_orch_get(o, id, &rec), NOPS_OK);
    assert_string_equal(st(rec), "approved");
    json_decref(rec);
}

static void executes(nops_orchestrator *o, const char *id)
{
    char err[512];
    json_t *rec = NULL;
    if (nops_orch_execute(o, id, &TU_ADMIN, &rec, err, sizeof err) != NOPS_OK)
        fail_msg("retry refused: %s", err);
    assert_string_equal(st(rec), "executed");
    json_decref(rec);
}

/* A trail and an orchestrator on it, and an approved orchestration (id) whose claim the store
 * refused once. */
static void refused_once(nops_audit **a, nops_orchestrator **o, char id[64])
{
    *a = trail();
    *o = orch(*a);
    tu_orch_approved(*o, "echo", id, 64);
    failed_claim(*o, id);
}

static void test_retry_same_process(void **state)
{
    (void)state;
    nops_audit *a;
    nops_orchestrator *o;
    char id[64];
    refused_once(&a, &o, id);
    /* the trail holds the claim and its withdrawal: no start */
    assert_false(nops_audit_started(a, id, NULL));
    executes(o, id);
    uint64_t seq = 0;
    assert_true(nops_audit_started(a, id, &seq));
    assert_true(seq > 0);
    nops_orch_destroy(o);
    nops_audit_close(a);
}

static void test_retry_after_reopen(void **state)
{
    (void)state;
    nops_audit *a;
    nops_orchestrator *o;
    char id[64];
    refused_once(&a, &o, id);
    failed_claim(o, id); /* twice: each withdrawal takes back its own claim */
    nops_orch_destroy(o);
    nops_audit_close(a);
    /* a restart: the entries are read back at open */
    a = trail();
    assert_false(nops_audit_started(a, id, NULL));
    o = orch(a);
    executes(o, id);
    nops_orch_destroy(o);
    nops_audit_close(a);
    /* and the start that was stored is read back too */
    a = trail();
    assert_true(nops_audit_started(a, id, NULL));
    nops_audit_close(a);
}

/* Without an audit trail the orchestrator remembers its own executions: a record set back to
 * approved outside the engine is not run twice by the same process. */
static void test_no_trail_remembers_its_runs(void **state)
{
    (void)state;
    nops_orchestrator *o = orch(NULL);
    char id[64], err[512], path[400];
    tu_orch_approved(o, "echo", id, sizeof id);
    executes(o, id);
    snprintf(path, sizeof path, "%s/%s.json", g_d.state, id);
    json_t *rec = json_load_file(path, 0, NULL);
    assert_non_null(rec);
    json_object_set_new(rec, "state", json_string("approved"));
    assert_int_equal(json_dump_file(rec, path, JSON_INDENT(2) | JSON_SORT_KEYS), 0);
    json_decref(rec);
    rec = NULL;
    assert_int_equal(nops_orch_execute(o, id, &TU_ADMIN, &rec, err, sizeof err), NOPS_INVAL);
    assert_null(rec);
    assert_non_null(strstr(err, "executed by this process already"));
    nops_orch_destroy(o);
}

/* orchestrate.max_open on the PostgreSQL store: the open states counted there are the ones
 * nops__record_state_open names (one list). */
static void test_max_open_on_postgres(void **state)
{
    (void)state;
    char dsn[600], err[512], id[64];
    PGconn *c = tu_pg_schema("nops_claim_open", dsn, sizeof dsn);
    nops_orch_deps d = {.state_dir = g_d.state, .pg_dsn = dsn, .reg = g_r, .pol = g_p,
                        .secret = g_secret, .max_open = 2};
    nops_orchestrator *o = nops_orch_new(&d, err, sizeof err);
    if (!o)
        fail_msg("%s", err);
    tu_orch_approved(o, "echo", id, sizeof id); /* approved: open */
    json_t *inc = json_pack("{s:s}", "summary", "x"), *rec = NULL;
    assert_int_equal(nops_orch_suggest(o, inc, "echo", &TU_OPS, &rec, err, sizeof err), NOPS_OK);
    json_decref(rec);
    rec = NULL;
    assert_int_equal(nops_orch_suggest(o, inc, "echo", &TU_OPS, &rec, err, sizeof err),
                     NOPS_FULL);
    executes(o, id); /* executed: no longer open, room for one more */
    assert_int_equal(nops_orch_suggest(o, inc, "echo", &TU_OPS, &rec, err, sizeof err), NOPS_OK);
    json_decref(rec);
    json_decref(inc);
    nops_orch_destroy(o);
    tu_pg_drop_schema(c, "nops_claim_open");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_same_process),
        cmocka_unit_test(test_retry_after_reopen),
        cmocka_unit_test(test_no_trail_remembers_its_runs),
        cmocka_unit_test(test_max_open_on_postgres),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
