/*
 * test_flow.c — suggest → dry-run → approve → execute with real signed playbooks and real child
 * processes: the happy path (with its workflow_runs row and audit entries that verify), the
 * approver-is-requester and wrong-role refusals, a policy deny, auto-execution, a step that
 * fails, a step that outlives the timeout, a manifest changed after approval, and a restart of
 * the orchestrator in the middle of a flow.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "orchestrate/orchestrate.h"
#include "tests/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char g_dir[] = "/tmp/nops-flow-XXXXXX";
static char g_reg[160], g_key[160], g_pub[160], g_state[160], g_hist[160], g_audit[160];
static nops_registry *g_r;
static nops_policy *g_p;
static nops_audit *g_a;

static const nops_actor OPS = {"key:ops", "operator"};
static const nops_actor ADMIN = {"key:admin", "org-admin"};
static const nops_actor ADMIN_OPS = {"key:ops", "org-admin"}; /* the requester, promoted */

static void playbook(const char *id, const char *steps, const char *mode, int timeout)
{
    char path[300], text[2048], err[256];
    snprintf(path, sizeof path, "%s/%s.json", g_reg, id);
    snprintf(text, sizeof text,
             "{\"id\":\"%s\",\"name\":\"%s\",\"version\":\"1\",\"safety\":{\"mode\":\"%s\","
             "\"allowed_roles\":[\"org-admin\"]},\"steps\":%s,\"timeout_s\":%d}",
             id, id, mode, steps, timeout);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    if (nops_playbook_sign(path, g_key, err, sizeof err) != NOPS_OK)
        fail_msg("sign: %s", err);
}

static nops_orchestrator *orch(void)
{
    char err[256];
    nops_orch_deps d = {.state_dir = g_state, .history_jsonl = g_hist, .reg = g_r, .pol = g_p,
                        .audit = g_a};
    nops_orchestrator *o = nops_orch_new(&d, err, sizeof err);
    if (!o)
        fail_msg("%s", err);
    return o;
}

static int setup(void **state)
{
    if (!mkdtemp(g_dir))
        return -1;
    snprintf(g_reg, sizeof g_reg, "%s/reg", g_dir);
    snprintf(g_key, sizeof g_key, "%s/k.pem", g_dir);
    snprintf(g_pub, sizeof g_pub, "%s/p.pem", g_dir);
    snprintf(g_state, sizeof g_state, "%s/orch", g_dir);
    snprintf(g_hist, sizeof g_hist, "%s/history.jsonl", g_dir);
    snprintf(g_audit, sizeof g_audit, "%s/audit.jsonl", g_dir);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "mkdir %s && openssl ecparam -name prime256v1 -genkey -noout -out "
             "%s 2>/dev/null && openssl ec -in %s -pubout -out %s 2>/dev/null",
             g_reg, g_key, g_key, g_pub);
    if (system(cmd) != 0)
        return -1;
    playbook("echo-ok", "[{\"name\":\"hello\",\"exec\":[\"/bin/echo\",\"restarted\"]},"
                        "{\"name\":\"check\",\"exec\":[\"/bin/sh\",\"-c\",\"echo dry=$NEURALOPS_DRY_RUN "
                        "args=$0\"],\"dry_run\":true}]", "manual", 30);
    playbook("fails", "[{\"name\":\"boom\",\"exec\":[\"/bin/false\"]}]", "manual", 30);
    playbook("slow", "[{\"name\":\"sleep\",\"exec\":[\"/bin/sleep\",\"30\"]}]", "manual", 1);
    playbook("auto-fix", "[{\"name\":\"fix\",\"exec\":[\"/bin/true\"]}]", "auto", 30);
    playbook("delete-all", "[{\"name\":\"rm\",\"exec\":[\"/bin/echo\",\"rm\"]}]", "manual", 30);
    playbook("relative", "[{\"name\":\"rel\",\"exec\":[\"echo\",\"x\"]}]", "manual", 30);
    char err[256];
    g_r = nops_registry_load(g_reg, g_pub, err, sizeof err);
    g_p = nops_policy_parse("[{\"name\":\"no-deletes\",\"priority\":10,\"when\":\"playbook.id ~ "
                            "\\\"delete-*\\\"\",\"action\":\"deny\"},{\"name\":\"auto\","
                            "\"priority\":5,\"when\":\"playbook.id == \\\"auto-fix\\\"\","
                            "\"action\":\"allow\"}]",
                            err, sizeof err);
    g_a = nops_audit_open(g_audit, NULL, err, sizeof err);
    return g_r && g_p && g_a ? 0 : -1;
}

static int teardown(void **state)
{
    nops_registry_destroy(g_r);
    nops_policy_destroy(g_p);
    nops_audit_close(g_a);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *st(json_t *rec)
{
    return json_string_value(json_object_get(rec, "state"));
}

static json_t *incident(void)
{
    return json_pack("{s:s, s:{s:s}, s:s}", "summary", "p50 latency on checkout jumped",
                     "labels", "service", "checkout", "severity", "sev2");
}

/* suggest by OPS, dry-run; returns the id (static buffer). */
static const char *prepared(nops_orchestrator *o, const char *pb)
{
    static char id[64];
    char err[256];
    json_t *inc = incident(), *rec;
    assert_int_equal(nops_orch_suggest(o, inc, pb, &OPS, &rec, err, sizeof err), NOPS_OK);
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(rec, "id")));
    json_decref(rec);
    json_decref(inc);
    assert_int_equal(nops_orch_dry_run(o, id, &OPS, &rec, err, sizeof err), NOPS_OK);
    json_decref(rec);
    return id;
}

static void test_happy_path(void **state)
{
    nops_orchestrator *o = orch();
    char err[256], id[64];
    json_t *rec;
    snprintf(id, sizeof id, "%s", prepared(o, "echo-ok"));
    assert_int_equal(nops_orch_get(o, id, &rec), NOPS_OK);
    assert_string_equal(st(rec), "dry_run_ok");
    /* the dry-run ran the step that has a dry-run mode, with the variable and the argument */
    const char *out = json_string_value(json_object_get(json_array_get(
        json_object_get(rec, "dry_run"), 1), "output"));
    assert_non_null(strstr(out, "dry=1 args=--dry-run"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(rec, "policy"),
                                                          "action")), "require_approval");
    json_decref(rec);
    /* not yet approved: execute refused */
    assert_int_equal(nops_orch_execute(o, id, &ADMIN, &rec, err, sizeof err), NOPS_INVAL);
    assert_non_null(strstr(err, "needs an approval"));
    /* wrong role, then the requester himself */
    assert_int_equal(nops_orch_approve(o, id, &OPS, &rec, err, sizeof err), NOPS_INVAL);
    assert_non_null(strstr(err, "org-admin"));
    assert_int_equal(nops_orch_approve(o, id, &ADMIN_OPS, &rec, err, sizeof err), NOPS_INVAL);
    assert_non_null(strstr(err, "must not be the requester"));
    assert_int_equal(nops_orch_approve(o, id, &ADMIN, &rec, err, sizeof err), NOPS_OK);
    assert_string_equal(st(rec), "approved");
    json_decref(rec);
    nops_orch_destroy(o);
    /* a restart between approval and execution: the new orchestrator goes on */
    o = orch();
    assert_int_equal(nops_orch_execute(o, id, &ADMIN, &rec, err, sizeof err), NOPS_OK);
    assert_string_equal(st(rec), "executed");
    out = json_string_value(json_object_get(json_array_get(json_object_get(rec, "execution"), 0),
                                            "output"));
    assert_string_equal(out, "restarted\n");
    json_decref(rec);
    /* executed once: not again */
    assert_int_equal(nops_orch_execute(o, id, &ADMIN, &rec, err, sizeof err), NOPS_INVAL);
    nops_orch_destroy(o);
    /* the history learned it; the audit chain holds every step and verifies */
    char *hist = tu_read_file(g_hist);
    assert_non_null(strstr(hist, id));
    assert_non_null(strstr(hist, "\"status\":\"success\""));
    free(hist);
    nops_audit_report r;
    assert_int_equal(nops_audit_verify_file(g_audit, &r), NOPS_OK);
    char *log = tu_read_file(g_audit);
    const char *actions[] = {"\"suggest\"", "\"dry-run\"", "\"approve\"", "\"execute\""};
    for (int i = 0; i < 4; i++)
        assert_non_null(strstr(log, actions[i]));
    assert_non_null(strstr(log, "must not be the requester"));
    free(log);
}

static void test_failures(void **state)
{
    nops_orchestrator *o = orch();
    char err[512], id[64];
    json_t *rec;
    /* a failing step */
    snprintf(id, sizeof id, "%s", prepared(o, "fails"));
    assert_int_equal(nops_orch_approve(o, id, &ADMIN, &rec, err, sizeof err), NOPS_OK);
    json_decref(rec);
    assert_int_equal(nops_orch_execute(o, id, &ADMIN, &rec, err, sizeof err), NOPS_OK);
    assert_string_equal(st(rec), "failed");
    assert_non_null(strstr(json_string_value(json_object_get(rec, "error")), "boom"));
    json_decref(rec);
    /* a step that outlives the playbook's timeout is killed */
    snprintf(id, sizeof id, "%s", prepared(o, "slow"));
    assert_int_equal(nops_orch_approve(o, id, &ADMIN, &rec, err, sizeof err), NOPS_OK);
    json_decref(rec);
    assert_int_equal(nops_orch_execute(o, id, &ADMIN, &rec, err, sizeof err), NOPS_OK);
    assert_string_equal(st(rec), "failed"); /* the sleep would have succeeded: it was killed */
    assert_non_null(strstr(json_string_value(json_object_get(rec, "error")), "timed out"));
    json_decref(rec);
    /* policy deny: the flow ends at once */
    json_t *inc = incident();
    assert_int_equal(nops_orch_suggest(o, inc, "delete-all", &OPS, &rec, err, sizeof err),
                     NOPS_OK);
    assert_string_equal(st(rec), "denied");
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(rec, "id")));
    json_decref(rec);
    assert_int_equal(nops_orch_dry_run(o, id, &OPS, &rec, err, sizeof err), NOPS_INVAL);
    /* a relative command is refused at dry-run */
    assert_int_equal(nops_orch_suggest(o, inc, "relative", &OPS, &rec, err, sizeof err),
                     NOPS_OK);
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(rec, "id")));
    json_decref(rec);
    assert_int_equal(nops_orch_dry_run(o, id, &OPS, &rec, err, sizeof err), NOPS_OK);
    assert_string_equal(st(rec), "dry_run_failed");
    json_decref(rec);
    /* unknown playbook and orchestration */
    assert_int_equal(nops_orch_suggest(o, inc, "nope", &OPS, &rec, err, sizeof err),
                     NOPS_NOTFOUND);
    assert_int_equal(nops_orch_get(o, "orch-0000", &rec), NOPS_NOTFOUND);
    assert_int_equal(nops_orch_get(o, "../../etc/passwd", &rec), NOPS_NOTFOUND);
    json_decref(inc);
    nops_orch_destroy(o);
}

static void test_auto_and_tampering(void **state)
{
    nops_orchestrator *o = orch();
    char err[512], id[64];
    json_t *rec;
    /* auto: allowed by policy, mode auto, org-admin allowed → runs after a dry-run, no approval */
    snprintf(id, sizeof id, "%s", prepared(o, "auto-fix"));
    assert_int_equal(nops_orch_execute(o, id, &OPS, &rec, err, sizeof err), NOPS_OK);
    assert_string_equal(st(rec), "executed");
    json_decref(rec);
    /* a manifest changed (and re-signed) after approval is refused at execute */
    snprintf(id, sizeof id, "%s", prepared(o, "echo-ok"));
    assert_int_equal(nops_orch_approve(o, id, &ADMIN, &rec, err, sizeof err), NOPS_OK);
    json_decref(rec);
    playbook("echo-ok", "[{\"name\":\"hello\",\"exec\":[\"/bin/echo\",\"something else\"]}]",
             "manual", 30);
    assert_int_equal(nops_orch_execute(o, id, &ADMIN, &rec, err, sizeof err), NOPS_INVAL);
    assert_non_null(strstr(err, "changed since it was approved"));
    nops_orch_destroy(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_happy_path),
        cmocka_unit_test(test_failures),
        cmocka_unit_test(test_auto_and_tampering),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
