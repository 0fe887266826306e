/*
 * test_flow.c — suggest → dry-run → approve → execute with real signed playbooks and real child
 * processes: the happy path (with its workflow_runs row and audit entries that verify), the
 * approver-is-requester and wrong-role refusals, a policy deny, auto-execution, a step that
 * fails, a step that outlives the timeout, a manifest changed after approval, a restart of
 * the orchestrator in the middle of a flow, steps left half-done by a dead process, kafka steps
 * against a real (mock-cluster) broker read back by a consumer, the worker thread, and the whole
 * flow on the PostgreSQL record store with its workflow_runs row.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "correlate/correlate.h"
#include "orchestrate/orchestrate.h"
#include "sinks/sinks.h" /* nops_incident_json */
#include "tests/support/kafkautil.h"
#include "tests/support/orchutil.h"
#include "tests/support/pgutil.h"
#include "tests/testutil.h"

#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char g_dir[] = "/tmp/nops-flow-XXXXXX";
static tu_orch_dirs g_d;
static char g_hist[160];
static nops_registry *g_r;
static nops_policy *g_p;
static nops_audit *g_a;
static nops_secret *g_secret; /* the engine's key: seals records */
static nops_secret *g_audit_key; /* the audit chain's key (in memory) */

static const nops_actor ADMIN_OPS = {"key:ops", "org-admin"}; /* the requester, promoted */

static void playbook(const char *id, const char *steps, const char *mode, int timeout)
{
    tu_orch_playbook(g_d.reg, g_d.key, id, steps, mode, timeout, "");
}

static const char *g_allowed; /* orchestrate.allowed_commands for the next orchestrator */

static nops_orchestrator *orch_with(const char *dsn, const char *brokers)
{
    char err[256];
    nops_orch_deps d = {.state_dir = g_d.state, .history_jsonl = g_hist, .pg_dsn = dsn,
                        .brokers = brokers, .reg = g_r, .pol = g_p, .audit = g_a,
                        .allowed_commands = g_allowed, .secret = g_secret};
    nops_orchestrator *o = nops_orch_new(&d, err, sizeof err);
    if (!o)
        fail_msg("%s", err);
    return o;
}

static nops_orchestrator *orch(void)
{
    return orch_with(NULL, NULL);
}

static int setup(void **state)
{
    if (tu_orch_dirs_make(g_dir, &g_d) != 0)
        return -1;
    snprintf(g_hist, sizeof g_hist, "%s/history.jsonl", g_dir);
    playbook("echo-ok", "[{\"name\":\"hello\",\"exec\":[\"/bin/echo\",\"restarted\"]},"
                        "{\"name\":\"check\",\"exec\":[\"/bin/sh\",\"-c\",\"echo dry=$NEURALOPS_DRY_RUN "
                        "args=$0\"],\"dry_run\":true}]", "manual", 30);
    playbook("fails", "[{\"name\":\"boom\",\"exec\":[\"/bin/false\"]}]", "manual", 30);
    playbook("slow", "[{\"name\":\"sleep\",\"exec\":[\"/bin/sleep\",\"30\"]}]", "manual", 1);
    playbook("auto-fix", "[{\"name\":\"fix\",\"exec\":[\"/bin/true\"]}]", "auto", 30);
    playbook("delete-all", "[{\"name\":\"rm\",\"exec\":[\"/bin/echo\",\"rm\"]}]", "manual", 30);
    playbook("relative", "[{\"name\":\"rel\",\"exec\":[\"echo\",\"x\"]}]", "manual", 30);
    playbook("notify-agent", "[{\"name\":\"env\",\"exec\":[\"/usr/bin/env\"]},"
                             "{\"name\":\"tell\",\"kafka\":{\"topic\":\"ops.actions\","
                             "\"payload\":{\"do\":\"restart\",\"n\":2}}}]", "manual", 30);
    playbook("to-nowhere", "[{\"name\":\"tell\",\"kafka\":{\"topic\":\"no.such.topic\","
                           "\"payload\":{}}}]", "manual", 2);
    playbook("pg-ok", "[{\"name\":\"hello\",\"exec\":[\"/bin/echo\",\"ok\"]}]", "manual", 30);
    /* a step that waits for the flag file the other one creates: both must run at once */
    char steps[600];
    snprintf(steps, sizeof steps, "[{\"name\":\"wait\",\"dry_run\":true,\"exec\":[\"/bin/sh\","
             "\"-c\",\"while [ ! -e %s/flag ]; do sleep 0.05; done\"]}]", g_dir);
    playbook("wait-flag", steps, "manual", 20);
    snprintf(steps, sizeof steps, "[{\"name\":\"flag\",\"dry_run\":true,\"exec\":"
             "[\"/bin/sh\",\"-c\",\": > %s/flag\"]}]", g_dir);
    playbook("set-flag", steps, "manual", 20);
    char err[256];
    g_r = nops_registry_load(g_d.reg, g_d.pub, err, sizeof err);
    g_p = nops_policy_parse("[{\"name\":\"no-deletes\",\"priority\":10,\"when\":\"playbook.id ~ "
                            "\\\"delete-*\\\"\",\"action\":\"deny\"},{\"name\":\"auto\","
                            "\"priority\":5,\"when\":\"playbook.id == \\\"auto-fix\\\"\","
                            "\"action\":\"allow\"}]",
                            err, sizeof err);
    g_audit_key = nops_secret_from_bytes("test-audit-key", 14);
    g_a = nops_audit_open(g_d.audit, NULL, g_audit_key, NULL, err, sizeof err);
    g_secret = nops_secret_from_bytes("flow test key", 13);
    return g_r && g_p && g_a && g_secret ? 0 : -1;
}

static int teardown(void **state)
{
    nops_registry_destroy(g_r);
    nops_policy_destroy(g_p);
    nops_audit_close(g_a);
    nops_secret_destroy(g_secret);
    nops_secret_destroy(g_audit_key);
    return tu_orch_dirs_remove(g_dir);
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

/* suggest by TU_OPS, dry-run; returns the id (static buffer). */
static const char *prepared(nops_orchestrator *o, const char *pb)
{
    static char id[64];
    char err[256];
    json_t *inc = incident(), *rec;
    assert_int_equal(nops_orch_suggest(o, inc, pb, &TU_OPS, &rec, err, sizeof err), NOPS_OK);
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(rec, "id")));
    json_decref(rec);
    json_decref(inc);
    assert_int_equal(nops_orch_dry_run(o, id, &TU_OPS, &rec, err, sizeof err), NOPS_OK);
    json_decref(rec);
    return id;
}

/* The severity the correlator gives reaches the policy gate through the incident's JSON (as
 * the API hands it to POST /orchestrate): a rule on incident.severity decides. */
static void test_policy_sees_incident_severity(void **state)
{
    (void)state;
    char err[256];
    nops_policy *pol = nops_policy_parse(
        "[{\"name\":\"info-is-no-page\",\"priority\":10,\"when\":\"incident.severity == "
        "\\\"info\\\"\",\"action\":\"deny\"},{\"name\":\"critical-escalates\",\"priority\":9,"
        "\"when\":\"incident.severity == \\\"critical\\\"\",\"action\":\"escalate\","
        "\"escalation\":\"critical\"}]", err, sizeof err);
    if (!pol)
        fail_msg("%s", err);
    nops_orch_deps d = {.state_dir = g_d.state, .history_jsonl = g_hist, .reg = g_r, .pol = pol,
                        .audit = g_a, .allowed_commands = g_allowed, .secret = g_secret};
    nops_orchestrator *o = nops_orch_new(&d, err, sizeof err);
    assert_non_null(o);
    nops_correlate_params cp;
    nops_correlate_defaults(&cp);
    nops_correlator *c = nops_correlate_new(&cp, 60, err, sizeof err);
    assert_non_null(c);
    const char *expect[] = {"denied", "suggested"};
    for (int k = 0; k < 2; k++) { /* one weak signal (info); then three hosts (critical) */
        nops_incident inc;
        bool opened;
        for (int h = 0; h <= 2 * k; h++) {
            nops_signal sg;
            memset(&sg, 0, sizeof sg);
            char key[128];
            snprintf(key, sizeof key, "lat{host=\"h%d-%d\",service=\"s%d\"}", k, h, k);
            assert_int_equal(nops_signal_set_series(&sg, key), NOPS_OK);
            sg.series_id = (uint64_t)(100 + 10 * k + h);
            snprintf(sg.id, sizeof sg.id, "%016x", 0x5100 + 10 * k + h);
            sg.ts_ns = 1000000000000ll + h;
            sg.score = 0.6;
            float w[60];
            for (int i = 0; i < 60; i++) /* the same shape on every host: they move together */
                w[i] = (float)(i % 7) + (i >= 55 ? 30.0f : 0.0f) + (float)h;
            assert_int_equal(nops_correlate_signal(c, &sg, 0, w, 60, &inc, &opened), NOPS_OK);
        }
        char text[8192];
        assert_true(nops_incident_json(&inc, text, sizeof text) > 0);
        json_t *ij = json_loads(text, 0, NULL), *rec;
        assert_int_equal(nops_orch_suggest(o, ij, "echo-ok", &TU_OPS, &rec, err, sizeof err),
                         NOPS_OK);
        assert_string_equal(st(rec), expect[k]);
        assert_string_equal(json_string_value(json_object_get(json_object_get(rec, "policy"),
                                                              "rule")),
                            k ? "critical-escalates" : "info-is-no-page");
        json_decref(rec);
        json_decref(ij);
    }
    nops_correlate_destroy(c);
    nops_orch_destroy(o);
    nops_policy_destroy(pol);
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
    assert_int_equal(nops_orch_execute(o, id, &TU_ADMIN, &rec, err, sizeof err), NOPS_INVAL);
    assert_non_null(strstr(err, "needs an approval"));
    /* wrong role, then the requester himself */
    assert_int_equal(nops_orch_approve(o, id, &TU_OPS, &rec, err, sizeof err), NOPS_INVAL);
    assert_non_null(strstr(err, "org-admin"));
    assert_int_equal(nops_orch_approve(o, id, &ADMIN_OPS, &rec, err, sizeof err), NOPS_INVAL);
    assert_non_null(strstr(err, "must not be the requester"));
    assert_int_equal(nops_orch_approve(o, id, &TU_ADMIN, &rec, err, sizeof err), NOPS_OK);
    assert_string_equal(st(rec), "approved");
    json_decref(rec);
    /* counted: one suggestion, one dry-run, three refusals, one approval, nothing running */
    nops_orch_stats sts;
    nops_orch_get_stats(o, &sts);
    assert_int_equal(sts.suggested, 1);
    assert_int_equal(sts.dry_run_ok, 1);
    assert_int_equal(sts.refused, 3);
    assert_int_equal(sts.approved, 1);
    assert_int_equal(sts.executed + sts.running + sts.audit_failures, 0);
    nops_orch_destroy(o);
    /* a restart between approval and execution: the new orchestrator goes on */
    o = orch();
    assert_int_equal(nops_orch_execute(o, id, &TU_ADMIN, &rec, err, sizeof err), NOPS_OK);
    assert_string_equal(st(rec), "executed");
    out = json_string_value(json_object_get(json_array_get(json_object_get(rec, "execution"), 0),
                                            "output"));
    assert_string_equal(out, "restarted\n");
    json_decref(rec);
    /* executed once: not again */
    assert_int_equal(nops_orch_execute(o, id, &TU_ADMIN, &rec, err, sizeof err), NOPS_INVAL);
    nops_orch_destroy(o);
    /* the history learned it; the audit chain holds every step and verifies */
    char *hist = tu_read_file(g_hist);
    assert_non_null(strstr(hist, id));
    assert_non_null(strstr(hist, "\"status\":\"success\""));
    free(hist);
    nops_audit_report r;
    assert_int_equal(nops_audit_verify_file(g_d.audit, g_audit_key, &r), NOPS_OK);
    char *log = tu_read_file(g_d.audit);
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
    assert_int_equal(nops_orch_approve(o, id, &TU_ADMIN, &rec, err, sizeof err), NOPS_OK);
    json_decref(rec);
    assert_int_equal(nops_orch_execute(o, id, &TU_ADMIN, &rec, err, sizeof err), NOPS_OK);
    assert_string_equal(st(rec), "failed");
    assert_non_null(strstr(json_string_value(json_object_get(rec, "error")), "boom"));
    json_decref(rec);
    /* a step that outlives the playbook's timeout is killed */
    snprintf(id, sizeof id, "%s", prepared(o, "slow"));
    assert_int_equal(nops_orch_approve(o, id, &TU_ADMIN, &rec, err, sizeof err), NOPS_OK);
    json_decref(rec);
    assert_int_equal(nops_orch_execute(o, id, &TU_ADMIN, &rec, err, sizeof err), NOPS_OK);
    assert_string_equal(st(rec), "failed"); /* the sleep would have succeeded: it was killed */
    assert_non_null(strstr(json_string_value(json_object_get(rec, "error")), "timed out"));
    json_decref(rec);
    /* policy deny: the flow ends at once */
    json_t *inc = incident();
    assert_int_equal(nops_orch_suggest(o, inc, "delete-all", &TU_OPS, &rec, err, sizeof err),
                     NOPS_OK);
    assert_string_equal(st(rec), "denied");
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(rec, "id")));
    json_decref(rec);
    assert_int_equal(nops_orch_dry_run(o, id, &TU_OPS, &rec, err, sizeof err), NOPS_INVAL);
    /* a relative command is refused at dry-run */
    assert_int_equal(nops_orch_suggest(o, inc, "relative", &TU_OPS, &rec, err, sizeof err),
                     NOPS_OK);
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(rec, "id")));
    json_decref(rec);
    assert_int_equal(nops_orch_dry_run(o, id, &TU_OPS, &rec, err, sizeof err), NOPS_OK);
    assert_string_equal(st(rec), "dry_run_failed");
    json_decref(rec);
    /* listing: newest first, by state */
    json_t *list;
    assert_int_equal(nops_orch_list(o, "dry_run_failed", 100, &list), NOPS_OK);
    assert_true(json_array_size(list) >= 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "id")), id);
    json_decref(list);
    assert_int_equal(nops_orch_list(o, NULL, 2, &list), NOPS_OK);
    assert_int_equal(json_array_size(list), 2);
    json_decref(list);
    /* unknown playbook and orchestration */
    assert_int_equal(nops_orch_suggest(o, inc, "nope", &TU_OPS, &rec, err, sizeof err),
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
    /* auto: allowed by policy, mode auto, org-admin allowed → runs after a dry-run, no approval
     * (executed by a role in its allowed_roles: only org-admin; test_automation has the rest) */
    snprintf(id, sizeof id, "%s", prepared(o, "auto-fix"));
    assert_int_equal(nops_orch_execute(o, id, &TU_ADMIN, &rec, err, sizeof err), NOPS_OK);
    assert_string_equal(st(rec), "executed");
    json_decref(rec);
    /* a manifest changed (and re-signed) after approval is refused at execute */
    snprintf(id, sizeof id, "%s", prepared(o, "echo-ok"));
    assert_int_equal(nops_orch_approve(o, id, &TU_ADMIN, &rec, err, sizeof err), NOPS_OK);
    json_decref(rec);
    playbook("echo-ok", "[{\"name\":\"hello\",\"exec\":[\"/bin/echo\",\"something else\"]}]",
             "manual", 30);
    assert_int_equal(nops_orch_execute(o, id, &TU_ADMIN, &rec, err, sizeof err), NOPS_INVAL);
    assert_non_null(strstr(err, "changed since it was approved"));
    nops_orch_destroy(o);
}

/* A record as a dead process would leave it: written straight into the file store. */
static void plant(const char *id, const char *state, const char *claim)
{
    char path[300];
    snprintf(path, sizeof path, "%s/%s.json", g_d.state, id);
    json_t *rec = json_pack("{s:s, s:s, s:s, s:s, s:s, s:[], s:{}, s:s, s:s}", "id", id,
                            "playbook_id", "echo-ok", "state", state, "claimed_by", claim,
                            "requested_by", "key:ops", "steps", "incident", "executed_by",
                            "key:admin", "started_at", "2026-01-01T00:00:00Z");
    assert_int_equal(json_dump_file(rec, path, 0), 0);
    json_decref(rec);
}

static void test_recovery_after_a_crash(void **state)
{
    nops_orchestrator *o = orch(); /* makes the state directory */
    nops_orch_destroy(o);
    char host[128] = "", dead[160], alive[160];
    gethostname(host, sizeof host - 1);
    snprintf(dead, sizeof dead, "%s:999999999", host); /* no such pid */
    snprintf(alive, sizeof alive, "%s:%ld", host, (long)getppid()); /* a live process */
    plant("orch-dead-exec", "executing", dead);
    plant("orch-dead-dry", "dry_running", dead);
    plant("orch-live-exec", "executing", alive);
    plant("orch-remote-exec", "executing", "another-host:1");
    o = orch();
    json_t *rec;
    const char *want[][2] = {{"orch-dead-exec", "interrupted"}, {"orch-dead-dry", "suggested"},
                             {"orch-live-exec", "executing"}, {"orch-remote-exec", "executing"}};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(nops_orch_get(o, want[i][0], &rec), NOPS_OK);
        assert_string_equal(st(rec), want[i][1]);
        json_decref(rec);
    }
    nops_orch_destroy(o);
    /* the interrupted run is in the history as aborted; the recovery is audited */
    char *hist = tu_read_file(g_hist);
    const char *row = strstr(hist, "\"id\":\"orch-dead-exec\"");
    assert_non_null(row);
    assert_non_null(strstr(hist, "\"status\":\"aborted\""));
    free(hist);
    char *log = tu_read_file(g_d.audit);
    assert_non_null(strstr(log, "\"interrupted\""));
    free(log);
}

/* Wait for the worker to finish a started step. */
static json_t *await(nops_orchestrator *o, const char *id, const char *busy)
{
    json_t *rec = NULL;
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(nops_orch_get(o, id, &rec), NOPS_OK);
        if (strcmp(st(rec), busy) != 0)
            return rec;
        json_decref(rec);
        nanosleep(&(struct timespec){0, 10000000}, NULL);
    }
    fail_msg("%s stayed %s", id, busy);
    return NULL;
}

/* The first message on partition 0 of `topic` (NULL if none came), its key into key. */
static json_t *read_one(const char *boot, const char *topic, char *key, size_t key_cap)
{
    rd_kafka_t *c = tu_consumer(boot, "agents");
    assert_non_null(c);
    rd_kafka_poll_set_consumer(c);
    rd_kafka_topic_partition_list_t *tl = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(tl, topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(c, tl);
    rd_kafka_topic_partition_list_destroy(tl);
    json_t *msg = NULL;
    for (int i = 0; i < 100 && !msg; i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (m && !m->err) {
            msg = json_loadb(m->payload, m->len, 0, NULL);
            snprintf(key, key_cap, "%.*s", (int)m->key_len, (const char *)m->key);
        }
        if (m)
            rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return msg;
}

/* Suggest `playbook` for a fresh incident on o; the run's id into id (64 bytes). */
static void suggest_on(nops_orchestrator *o, const char *playbook, char *id)
{
    char err[512];
    json_t *inc = incident(), *rec;
    assert_int_equal(nops_orch_suggest(o, inc, playbook, &TU_OPS, &rec, err, sizeof err), NOPS_OK);
    snprintf(id, 64, "%s", json_string_value(json_object_get(rec, "id")));
    json_decref(rec);
    json_decref(inc);
}

/* kafka steps against a real broker (the mock cluster): dry-run checks the topic, execute
 * publishes the envelope, keyed by the orchestration id, which a consumer reads back; the exec
 * step saw the NEURALOPS_* context. Through the worker. */
static void test_kafka_steps_and_worker(void **state)
{
    char boot[256], err[512], id[64];
    static const tu_topic topics[] = {{"ops.actions", 1}};
    rd_kafka_t *cluster = tu_mock_cluster(1, topics, 1, boot, sizeof boot);
    assert_non_null(cluster);
    nops_orchestrator *o = orch_with(NULL, boot);
    json_t *inc = json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", "inc-42", "summary", "x", "labels",
                            "service", "checkout", "host", "web-1;rm -rf");
    json_t *rec;
    assert_int_equal(nops_orch_suggest(o, inc, "notify-agent", &TU_OPS, &rec, err, sizeof err),
                     NOPS_OK);
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(rec, "id")));
    json_decref(rec);
    assert_int_equal(nops_orch_start(o, NOPS_ORCH_DRY_RUN, id, &TU_OPS, &rec, err, sizeof err),
                     NOPS_OK);
    assert_string_equal(st(rec), "dry_running");
    json_decref(rec);
    /* claimed: the same step cannot be taken twice */
    assert_int_equal(nops_orch_dry_run(o, id, &TU_OPS, &rec, err, sizeof err), NOPS_INVAL);
    rec = await(o, id, "dry_running");
    assert_string_equal(st(rec), "dry_run_ok");
    assert_non_null(strstr(json_string_value(json_object_get(
                               json_array_get(json_object_get(rec, "dry_run"), 1), "output")),
                           "not published"));
    json_decref(rec);
    assert_int_equal(nops_orch_approve(o, id, &TU_ADMIN, &rec, err, sizeof err), NOPS_OK);
    json_decref(rec);
    assert_int_equal(nops_orch_start(o, NOPS_ORCH_EXECUTE, id, &TU_ADMIN, &rec, err, sizeof err),
                     NOPS_OK);
    json_decref(rec);
    rec = await(o, id, "executing");
    assert_string_equal(st(rec), "executed");
    const char *env = json_string_value(json_object_get(
        json_array_get(json_object_get(rec, "execution"), 0), "output"));
    assert_non_null(strstr(env, "NEURALOPS_SERVICE=checkout"));
    assert_non_null(strstr(env, "NEURALOPS_HOST=web-1_rm_-rf")); /* sanitised */
    assert_non_null(strstr(env, "NEURALOPS_INCIDENT_ID=inc-42"));
    assert_null(strstr(env, "HOME="));
    json_decref(rec);
    /* a consumer reads the message the step published */
    char key[64] = "";
    json_t *msg = read_one(boot, "ops.actions", key, sizeof key);
    assert_non_null(msg);
    assert_string_equal(key, id);
    assert_string_equal(json_string_value(json_object_get(msg, "orchestration_id")), id);
    assert_string_equal(json_string_value(json_object_get(msg, "step")), "tell");
    assert_true(json_is_false(json_object_get(msg, "dry_run")));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(msg, "payload"), "n")),
                     2);
    json_decref(msg);
    json_decref(inc);
    nops_orch_destroy(o);
    rd_kafka_destroy(cluster);
}

/* A broker that does not answer fails the dry-run within the playbook's timeout, naming the
 * topic (the mock cluster creates any topic it is asked about, so a missing topic on a real
 * broker with auto-creation off is the same path: an error for the topic). */
static void test_kafka_step_broker_unreachable(void **state)
{
    char err[512], id[64];
    json_t *rec;
    nops_orchestrator *o = orch_with(NULL, "127.0.0.1:1");
    suggest_on(o, "to-nowhere", id);
    assert_int_equal(nops_orch_dry_run(o, id, &TU_OPS, &rec, err, sizeof err), NOPS_OK);
    assert_string_equal(st(rec), "dry_run_failed");
    assert_non_null(strstr(json_string_value(json_object_get(rec, "error")), "no.such.topic"));
    json_decref(rec);
    nops_orch_destroy(o);
}

/* Without brokers a kafka step fails clearly. */
static void test_kafka_step_without_brokers(void **state)
{
    char err[512], id[64];
    json_t *rec;
    nops_orchestrator *o = orch();
    suggest_on(o, "notify-agent", id);
    assert_int_equal(nops_orch_dry_run(o, id, &TU_OPS, &rec, err, sizeof err), NOPS_OK);
    assert_non_null(strstr(json_string_value(json_object_get(rec, "error")), "no Kafka brokers"));
    json_decref(rec);
    nops_orch_destroy(o);
}

/* The flow on PostgreSQL: records in table orchestrations (a restart reads them back, a second
 * orchestrator on the same database cannot take a step twice), the run in workflow_runs. */
static void test_postgres_store(void **state)
{
    char dsn[600], err[512], id[64];
    PGconn *c = tu_pg_schema("flow_test", dsn, sizeof dsn);
    nops_orchestrator *o = orch_with(dsn, NULL), *o2 = orch_with(dsn, NULL);
    snprintf(id, sizeof id, "%s", prepared(o, "pg-ok"));
    json_t *rec;
    assert_int_equal(nops_orch_approve(o, id, &TU_ADMIN, &rec, err, sizeof err), NOPS_OK);
    json_decref(rec);
    nops_orch_destroy(o);
    /* the database drops every other connection (a restart, a failover): the other instance
     * reconnects on its next statement */
    PGresult *k = PQexec(c, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                            "WHERE pid <> pg_backend_pid() AND datname = current_database()");
    assert_int_equal(PQresultStatus(k), PGRES_TUPLES_OK);
    assert_true(atoi(PQgetvalue(k, 0, 0)) >= 1);
    PQclear(k);
    /* the other instance sees the approval and executes; the restarted one cannot again */
    nops_err ee = nops_orch_execute(o2, id, &TU_ADMIN, &rec, err, sizeof err);
    if (ee != NOPS_OK)
        fail_msg("execute on the second instance: %s", err);
    assert_string_equal(st(rec), "executed");
    json_decref(rec);
    o = orch_with(dsn, NULL);
    assert_int_equal(nops_orch_get(o, id, &rec), NOPS_OK);
    assert_string_equal(st(rec), "executed");
    json_decref(rec);
    assert_int_equal(nops_orch_execute(o, id, &TU_ADMIN, &rec, err, sizeof err), NOPS_INVAL);
    json_t *list;
    assert_int_equal(nops_orch_list(o, "executed", 10, &list), NOPS_OK);
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "id")), id);
    json_decref(list);
    assert_int_equal(nops_orch_list(o, "approved", 10, &list), NOPS_OK);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
    nops_orch_destroy(o);
    nops_orch_destroy(o2);
    /* an execution a dead process of this host left in the database is found at start */
    char host[128] = "", planted[512];
    gethostname(host, sizeof host - 1);
    snprintf(planted, sizeof planted,
             "INSERT INTO flow_test.orchestrations (id, state, playbook_id, record) VALUES "
             "('orch-dead-pg', 'executing', 'pg-ok', '{\"id\":\"orch-dead-pg\",\"state\":"
             "\"executing\",\"playbook_id\":\"pg-ok\",\"claimed_by\":\"%s:999999999\","
             "\"incident\":{},\"executed_by\":\"key:admin\"}')", host);
    PGresult *pl = PQexec(c, planted);
    assert_int_equal(PQresultStatus(pl), PGRES_COMMAND_OK);
    PQclear(pl);
    o = orch_with(dsn, NULL);
    assert_int_equal(nops_orch_get(o, "orch-dead-pg", &rec), NOPS_OK);
    assert_string_equal(st(rec), "interrupted");
    json_decref(rec);
    nops_orch_destroy(o);
    /* not in the file store: the database is the store */
    char path[300];
    snprintf(path, sizeof path, "%s/%s.json", g_d.state, id);
    assert_int_not_equal(access(path, F_OK), 0);
    const char *v[1] = {id};
    PGresult *r = PQexecParams(c, "SELECT o.state, w.status, w.executed_by, "
                                  "w.labels->>'service' FROM flow_test.orchestrations o JOIN "
                                  "flow_test.workflow_runs w USING (id) WHERE id = $1",
                               1, NULL, v, NULL, NULL, 0);
    assert_int_equal(PQntuples(r), 1);
    assert_string_equal(PQgetvalue(r, 0, 0), "executed");
    assert_string_equal(PQgetvalue(r, 0, 1), "success");
    assert_string_equal(PQgetvalue(r, 0, 2), "key:admin");
    assert_string_equal(PQgetvalue(r, 0, 3), "checkout");
    PQclear(r);
    tu_pg_drop_schema(c, "flow_test");
    /* a database that is not there: a clear error, no orchestrator */
    nops_orch_deps d = {.state_dir = g_d.state, .pg_dsn = "host=127.0.0.1 port=1 connect_timeout=2",
                        .reg = g_r, .secret = g_secret};
    assert_null(nops_orch_new(&d, err, sizeof err));
    assert_non_null(strstr(err, "PostgreSQL"));
}

/* Nothing is granted without its audit entry: with the audit file unable to grow (a real
 * write failure: RLIMIT_FSIZE at its current size), approve and execute are refused and the
 * record stays as it was; the chain is whole afterwards and the step goes through. */
static void test_no_audit_no_action(void **state)
{
    nops_orchestrator *o = orch();
    char err[512], id[64];
    json_t *rec;
    snprintf(id, sizeof id, "%s", prepared(o, "pg-ok"));
    struct stat sb;
    assert_int_equal(stat(g_d.audit, &sb), 0);
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    lim.rlim_cur = (rlim_t)sb.st_size + 10; /* room for a part of a line, not a whole one */
    lim.rlim_max = old.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    nops_err e = nops_orch_approve(o, id, &TU_ADMIN, &rec, err, sizeof err);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    assert_int_equal(e, NOPS_IO);
    assert_non_null(strstr(err, "audit trail refused"));
    assert_int_equal(nops_orch_get(o, id, &rec), NOPS_OK);
    assert_string_equal(st(rec), "dry_run_ok");
    json_decref(rec);
    /* the part of a line that got in was taken back: the chain verifies and goes on */
    nops_audit_report r;
    assert_int_equal(nops_audit_verify_file(g_d.audit, g_audit_key, &r), NOPS_OK);
    assert_int_equal(nops_orch_approve(o, id, &TU_ADMIN, &rec, err, sizeof err), NOPS_OK);
    json_decref(rec);
    assert_int_equal(nops_audit_verify_file(g_d.audit, g_audit_key, &r), NOPS_OK);
    nops_orch_destroy(o);
}

/* orchestrate.allowed_commands: a command outside the patterns fails the dry-run (and would
 * fail an execution), one inside runs. */
static void test_allowed_commands(void **state)
{
    g_allowed = "/usr/bin/*, /bin/echo";
    nops_orchestrator *o = orch();
    char err[512], id[64];
    json_t *rec, *inc = incident();
    /* fails: /bin/false is not allowed */
    assert_int_equal(nops_orch_suggest(o, inc, "fails", &TU_OPS, &rec, err, sizeof err), NOPS_OK);
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(rec, "id")));
    json_decref(rec);
    assert_int_equal(nops_orch_dry_run(o, id, &TU_OPS, &rec, err, sizeof err), NOPS_OK);
    assert_string_equal(st(rec), "dry_run_failed");
    assert_non_null(strstr(json_string_value(json_object_get(rec, "error")),
                           "/bin/false is not in orchestrate.allowed_commands"));
    json_decref(rec);
    /* pg-ok runs /bin/echo: allowed */
    assert_int_equal(nops_orch_suggest(o, inc, "pg-ok", &TU_OPS, &rec, err, sizeof err), NOPS_OK);
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(rec, "id")));
    json_decref(rec);
    assert_int_equal(nops_orch_dry_run(o, id, &TU_OPS, &rec, err, sizeof err), NOPS_OK);
    assert_string_equal(st(rec), "dry_run_ok");
    json_decref(rec);
    json_decref(inc);
    nops_orch_destroy(o);
    g_allowed = NULL;
}

/* The workers are a pool: a playbook that waits for another one's effect does not hold it up
 * (with one worker this would end in the first one's timeout). */
static void test_workers_run_side_by_side(void **state)
{
    nops_orchestrator *o = orch();
    char err[512], a[64], b[64];
    json_t *rec, *inc = incident();
    assert_int_equal(nops_orch_suggest(o, inc, "wait-flag", &TU_OPS, &rec, err, sizeof err), NOPS_OK);
    snprintf(a, sizeof a, "%s", json_string_value(json_object_get(rec, "id")));
    json_decref(rec);
    assert_int_equal(nops_orch_suggest(o, inc, "set-flag", &TU_OPS, &rec, err, sizeof err), NOPS_OK);
    snprintf(b, sizeof b, "%s", json_string_value(json_object_get(rec, "id")));
    json_decref(rec);
    assert_int_equal(nops_orch_start(o, NOPS_ORCH_DRY_RUN, a, &TU_OPS, &rec, err, sizeof err),
                     NOPS_OK);
    json_decref(rec);
    assert_int_equal(nops_orch_start(o, NOPS_ORCH_DRY_RUN, b, &TU_OPS, &rec, err, sizeof err),
                     NOPS_OK);
    json_decref(rec);
    rec = await(o, a, "dry_running");
    assert_string_equal(st(rec), "dry_run_ok");
    json_decref(rec);
    rec = await(o, b, "dry_running");
    assert_string_equal(st(rec), "dry_run_ok");
    json_decref(rec);
    json_decref(inc);
    nops_orch_destroy(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_happy_path),
        cmocka_unit_test(test_policy_sees_incident_severity),
        cmocka_unit_test(test_failures),
        cmocka_unit_test(test_auto_and_tampering),
        cmocka_unit_test(test_recovery_after_a_crash),
        cmocka_unit_test(test_kafka_steps_and_worker),
        cmocka_unit_test(test_kafka_step_broker_unreachable),
        cmocka_unit_test(test_kafka_step_without_brokers),
        cmocka_unit_test(test_postgres_store),
        cmocka_unit_test(test_no_audit_no_action),
        cmocka_unit_test(test_allowed_commands),
        cmocka_unit_test(test_workers_run_side_by_side),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
