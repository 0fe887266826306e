/*
 * test_guard.c — what someone who can write the record store (the data dir, or PostgreSQL
 * table orchestrations) but does not hold the engine's key can make the orchestrator do, and
 * the runner's hygiene:
 *   - an edited record (steps set to a shell, state approved, the old plain plan hash
 *     recomputed) is refused at execute and runs nothing, on files and on PostgreSQL; edited
 *     steps under a genuine approval run the signed manifest's steps; an edited context,
 *     playbook or policy decision, an approval sealed with another key, a record made by
 *     another engine and a record set back to approved after it ran (also after a restart:
 *     the audit trail holds its start) are refused;
 *   - step output that is not UTF-8 (binary bytes, a character cut at the 8 KiB cap) is kept as
 *     text: the record keeps its execution, pre/post state and error, the audit its details;
 *   - a step inherits no descriptor of the engine's (audit file, Kafka producer, others);
 *   - damaged record files and rows are listed as damaged, reported at start, never acted on;
 *   - listing reads only the records it returns; max_open caps open records.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "orchestrate/orch_int.h"
#include "tests/support/orchutil.h"
#include "tests/support/kafkautil.h"
#include "tests/support/pgutil.h"
#include "tests/testutil.h"

#include <fcntl.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char g_dir[] = "/tmp/nops-guard-XXXXXX";
static tu_orch_dirs g_d;
static char g_marker[200];
static nops_registry *g_r;
static nops_policy *g_p;
static nops_audit *g_a;
static nops_secret *g_secret, *g_other; /* the engine's key; another engine's */


/* A signed playbook; `extra` more top-level members (",\"state_probe\":[...]" or ""). */
static void playbook(const char *id, const char *steps, const char *mode, const char *extra)
{
    tu_orch_playbook(g_d.reg, g_d.key, id, steps, mode, 30, extra);
}

static nops_orchestrator *orch_full(const char *dsn, const char *brokers,
                                    const nops_secret *key, int64_t max_open)
{
    char err[256];
    nops_orch_deps d = {.state_dir = g_d.state, .pg_dsn = dsn, .brokers = brokers, .reg = g_r,
                        .pol = g_p, .audit = g_a, .secret = key, .max_open = max_open};
    nops_orchestrator *o = nops_orch_new(&d, err, sizeof err);
    if (!o)
        fail_msg("%s", err);
    return o;
}

static nops_orchestrator *orch(void)
{
    return orch_full(NULL, NULL, g_secret, 0);
}

static int setup(void **state)
{
    (void)state;
    if (tu_orch_dirs_make(g_dir, &g_d) != 0)
        return -1;
    snprintf(g_marker, sizeof g_marker, "%s/pwned", g_dir);
    playbook("safe", "[{\"name\":\"hello\",\"exec\":[\"/bin/echo\",\"safe\"]}]", "manual", "");
    playbook("other", "[{\"name\":\"hello\",\"exec\":[\"/bin/echo\",\"other\"]}]", "manual", "");
    /* mode auto, but no policy rule allows it: it needs an approval */
    playbook("auto-unlisted", "[{\"name\":\"fix\",\"exec\":[\"/bin/true\"]}]", "auto", "");
    /* binary bytes, a failing step that says so, a probe that prints binary too */
    playbook("binary",
             "[{\"name\":\"bin\",\"exec\":[\"/bin/sh\",\"-c\",\"printf 'ok\\\\377\\\\376\\\\000"
             "x\\\\303'\"]},{\"name\":\"bad\",\"exec\":[\"/bin/sh\",\"-c\",\"printf "
             "'\\\\377\\\\200boom\\\\342\\\\202'; exit 3\"]}]",
             "manual", ",\"state_probe\":[\"/bin/sh\",\"-c\",\"printf 'st\\\\377'\"]");
    /* 8190 ASCII bytes then 2-byte characters: the 8191-byte cap falls inside one */
    playbook("multibyte",
             "[{\"name\":\"long\",\"exec\":[\"/bin/sh\",\"-c\",\"head -c 8190 /dev/zero | tr "
             "'\\\\000' a; printf '\\\\303\\\\251\\\\303\\\\251\\\\303\\\\251'\"]}]",
             "manual", "");
    playbook("fds", "[{\"name\":\"fds\",\"exec\":[\"/bin/ls\",\"/proc/self/fd\"]}]", "manual",
             "");
    char err[256];
    g_r = nops_registry_load(g_d.reg, g_d.pub, err, sizeof err);
    g_p = nops_policy_parse("[]", err, sizeof err);
    g_secret = nops_secret_from_bytes("the engine key", 14);
    g_a = nops_audit_open(g_d.audit, NULL, g_secret, NULL, err, sizeof err);
    g_other = nops_secret_from_bytes("another engine key", 18);
    return g_r && nops_registry_count(g_r) == 6 && g_p && g_a && g_secret && g_other ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    nops_registry_destroy(g_r);
    nops_policy_destroy(g_p);
    nops_audit_close(g_a);
    nops_secret_destroy(g_secret);
    nops_secret_destroy(g_other);
    return tu_orch_dirs_remove(g_dir);
}

static const char *st(json_t *rec)
{
    return json_string_value(json_object_get(rec, "state"));
}

/* suggest by TU_OPS and dry-run; the id into `id`. */
static void prepared(nops_orchestrator *o, const char *pb, char id[64])
{
    char err[512];
    json_t *inc = json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", "inc-7", "summary", "x", "labels",
                            "service", "checkout", "host", "web-1"),
           *rec;
    assert_int_equal(nops_orch_suggest(o, inc, pb, &TU_OPS, &rec, err, sizeof err), NOPS_OK);
    snprintf(id, 64, "%s", json_string_value(json_object_get(rec, "id")));
    json_decref(rec);
    json_decref(inc);
    assert_int_equal(nops_orch_dry_run(o, id, &TU_OPS, &rec, err, sizeof err), NOPS_OK);
    assert_string_equal(st(rec), "dry_run_ok");
    json_decref(rec);
}

static void approve(nops_orchestrator *o, const char *id)
{
    char err[512];
    json_t *rec;
    if (nops_orch_approve(o, id, &TU_ADMIN, &rec, err, sizeof err) != NOPS_OK)
        fail_msg("approve %s: %s", id, err);
    json_decref(rec);
}

static json_t *file_rec(const char *id)
{
    char path[300];
    snprintf(path, sizeof path, "%s/%s.json", g_d.state, id);
    json_t *rec = json_load_file(path, 0, NULL);
    assert_non_null(rec);
    return rec;
}

static void file_put(json_t *rec)
{
    char path[300];
    snprintf(path, sizeof path, "%s/%s.json", g_d.state,
             json_string_value(json_object_get(rec, "id")));
    assert_int_equal(json_dump_file(rec, path, JSON_INDENT(2)), 0);
    json_decref(rec);
}

/* What an attacker with write access to the store does to `rec`: steps become a shell that
 * creates the marker (with `shell`), state approved, the approval with the plan hash recomputed as the engine
 * used to compute it (plain SHA-256 of playbook id, manifest hash and steps). */
static void forge_approval(json_t *rec, bool shell)
{
    char cmd[300], ph[65];
    snprintf(cmd, sizeof cmd, "id > %s", g_marker);
    if (shell)
        json_object_set_new(rec, "steps", json_pack("[{s:s, s:[s, s, s]}]", "name", "pwn",
                                                    "exec", "/bin/sh", "-c", cmd));
    json_object_set_new(rec, "state", json_string("approved"));
    json_t *plan = json_pack("{s:O, s:O, s:O}", "playbook_id", json_object_get(rec, "playbook_id"),
                             "manifest_sha256", json_object_get(rec, "manifest_sha256"), "steps",
                             json_object_get(rec, "steps"));
    char *text = json_dumps(plan, JSON_COMPACT | JSON_SORT_KEYS);
    assert_true(nops_sha256_hex(text, strlen(text), ph));
    free(text);
    json_decref(plan);
    json_object_set_new(rec, "approval", json_pack("{s:s, s:s, s:s, s:s}", "by", "key:admin",
                                                   "at", "2026-12-01T00:00:00.000Z",
                                                   "plan_sha256", ph, "mac", ph));
}

/* The last line of the audit trail text `log` about `id` (cut out in place), or NULL. */
static const char *last_entry(char *log, const char *id)
{
    char needle[160], *last = NULL;
    snprintf(needle, sizeof needle, "\"subject\":\"%s\"", id);
    for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n"))
        if (strstr(line, needle))
            last = line;
    return last;
}

/* Execute must be refused with `why` in the message, nothing run, the refusal counted and
 * audited. */
static void expect_refused(nops_orchestrator *o, const char *id, const char *why)
{
    char err[512];
    json_t *rec = NULL;
    nops_orch_stats before, after;
    nops_orch_get_stats(o, &before);
    nops_err e = nops_orch_start(o, NOPS_ORCH_EXECUTE, id, &TU_ADMIN, &rec, err, sizeof err);
    if (e != NOPS_INVAL)
        fail_msg("execute of %s: %d (%s), expected a refusal", id, e,
                 rec ? json_dumps(rec, 0) : err);
    if (!strstr(err, why))
        fail_msg("execute of %s refused with \"%s\", expected \"%s\"", id, err, why);
    assert_int_not_equal(access(g_marker, F_OK), 0);
    nops_orch_get_stats(o, &after);
    assert_int_equal(after.refused, before.refused + 1);
    assert_int_equal(after.running + after.executed, before.running + before.executed);
    char *log = tu_read_file(g_d.audit);
    const char *line = last_entry(log, id); /* the newest entry about it is the refusal */
    assert_non_null(line);
    assert_non_null(strstr(line, "\"decision\":\"refused\""));
    free(log);
}

/* The review's replay: the "started" entry about `id` edited in place (never the last one) as
 * well — the trail is refused as it is opened, so the flow stays off instead of running it
 * again; then the entry put back and the trail opened again for the other tests. */
static void edited_started_entry_is_refused(const char *id)
{
    char aerr[512];
    nops_audit_close(g_a);
    FILE *af = fopen(g_d.audit, "r+");
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof text - 1, af);
    text[n] = '\0';
    char needle[128];
    snprintf(needle, sizeof needle, "\"subject\":\"%s\"", id);
    char *hit = NULL;
    for (char *p = strstr(text, "\"decision\":\"started\""); p && !hit;
         p = strstr(p + 1, "\"decision\":\"started\"")) {
        char *bol = p;
        while (bol > text && bol[-1] != '\n')
            bol--;
        char *eol = strchr(p, '\n');
        char keep = *eol;
        *eol = '\0';
        if (strstr(bol, needle))
            hit = p;
        *eol = keep;
    }
    assert_non_null(hit);
    memcpy(hit + strlen("\"decision\":\"start"), "ex", 2);
    rewind(af);
    assert_int_equal(fwrite(text, 1, n, af), n);
    fclose(af);
    assert_null(nops_audit_open(g_d.audit, NULL, g_secret, NULL, aerr, sizeof aerr));
    assert_non_null(strstr(aerr, "refusing to continue the chain"));
    /* put it back so the other tests have their trail */
    memcpy(hit + strlen("\"decision\":\"start"), "ed", 2);
    af = fopen(g_d.audit, "w");
    assert_int_equal(fwrite(text, 1, n, af), n);
    fclose(af);
    g_a = nops_audit_open(g_d.audit, NULL, g_secret, NULL, aerr, sizeof aerr);
    assert_non_null(g_a);
}

static void test_edited_record_file_runs_nothing(void **state)
{
    (void)state;
    nops_orchestrator *o = orch();
    char id[64], err[512];
    json_t *rec;
    /* the attack of the review: a suggested, dry-run record edited into an approved shell */
    prepared(o, "safe", id);
    rec = file_rec(id);
    forge_approval(rec, true);
    file_put(rec);
    expect_refused(o, id, "changed outside the engine");
    /* only the approval forged, the steps left as they are */
    prepared(o, "safe", id);
    rec = file_rec(id);
    forge_approval(rec, false);
    file_put(rec);
    expect_refused(o, id, "approval of orchestration");
    /* a genuine approval, then the steps shown edited: refused, nothing run */
    prepared(o, "safe", id);
    approve(o, id);
    rec = file_rec(id);
    json_t *approval = json_incref(json_object_get(rec, "approval"));
    forge_approval(rec, true);
    json_object_set_new(rec, "approval", approval);
    file_put(rec);
    expect_refused(o, id, "not its signed manifest's");
    /* the same edit cannot make the steps run anyway: they come from the manifest */
    rec = file_rec(id);
    char why[512] = "";
    assert_true(nops__run_steps(rec, nops_registry_get(g_r, "safe"), NULL, "", false, why,
                                sizeof why));
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(rec, "execution"), 0), "output")),
                        "safe\n");
    json_decref(rec);
    assert_int_not_equal(access(g_marker, F_OK), 0);
    /* a genuine run, then set back to approved to run again: its start is in the audit trail
     * (without a trail, the process's own memory refuses it: test_claim.c) */
    prepared(o, "safe", id);
    approve(o, id);
    assert_int_equal(nops_orch_execute(o, id, &TU_ADMIN, &rec, err, sizeof err), NOPS_OK);
    assert_string_equal(st(rec), "executed");
    json_decref(rec);
    rec = file_rec(id);
    json_object_set_new(rec, "state", json_string("approved"));
    file_put(rec);
    expect_refused(o, id, "was started before (audit entry");
    nops_orch_destroy(o);
    /* ... nor after a restart: the keyed audit trail, verified entry by entry as it is
     * opened again, holds its start */
    char aerr[512];
    nops_audit_close(g_a);
    g_a = nops_audit_open(g_d.audit, NULL, g_secret, NULL, aerr, sizeof aerr);
    assert_non_null(g_a);
    o = orch();
    expect_refused(o, id, "was started before (audit entry");
    nops_orch_destroy(o);
    /* ... nor with its "started" entry edited in place: the trail itself is refused */
    edited_started_entry_is_refused(id);
}

/* Edits of what is sealed: the context, the playbook, the policy's decision, the dry-run. */
static void test_edited_seals_are_refused(void **state)
{
    (void)state;
    nops_orchestrator *o = orch();
    char id[64], err[512];
    json_t *rec;
    /* the context the steps get (labels → NEURALOPS_SERVICE, kafka labels) is sealed */
    prepared(o, "safe", id);
    approve(o, id);
    rec = file_rec(id);
    json_object_set_new(json_object_get(json_object_get(rec, "context"), "labels"), "service",
                        json_string("payments"));
    file_put(rec);
    expect_refused(o, id, "does not verify");
    /* so is the playbook: pointing an approved record at another signed playbook */
    prepared(o, "safe", id);
    approve(o, id);
    rec = file_rec(id);
    json_object_set_new(rec, "playbook_id", json_string("other"));
    file_put(rec);
    expect_refused(o, id, "not the one orchestration");
    rec = file_rec(id); /* with the other manifest's hash too */
    json_object_set_new(rec, "manifest_sha256", json_string(nops_registry_get(g_r,
                                                                              "other")->sha256));
    file_put(rec);
    expect_refused(o, id, "does not verify");
    /* and the policy's decision: auto_execute forged on a playbook in auto mode */
    prepared(o, "auto-unlisted", id);
    rec = file_rec(id);
    json_object_set_new(json_object_get(rec, "policy"), "auto_execute", json_true());
    json_object_set_new(json_object_get(rec, "policy"), "action", json_string("allow"));
    file_put(rec);
    expect_refused(o, id, "does not verify");
    /* nor the dry-run's results the approver reads */
    prepared(o, "safe", id);
    rec = file_rec(id);
    json_object_set_new(json_array_get(json_object_get(rec, "dry_run"), 0), "output",
                        json_string("all clear"));
    file_put(rec);
    assert_int_equal(nops_orch_approve(o, id, &TU_ADMIN, &rec, err, sizeof err), NOPS_INVAL);
    assert_non_null(strstr(err, "dry-run"));
    /* a dry-run that never happened cannot be approved */
    json_t *inc = json_object();
    assert_int_equal(nops_orch_suggest(o, inc, "safe", &TU_OPS, &rec, err, sizeof err), NOPS_OK);
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(rec, "id")));
    json_decref(rec);
    json_decref(inc);
    rec = file_rec(id);
    json_object_set_new(rec, "state", json_string("dry_run_ok"));
    file_put(rec);
    assert_int_equal(nops_orch_approve(o, id, &TU_ADMIN, &rec, err, sizeof err), NOPS_INVAL);
    assert_non_null(strstr(err, "dry-run"));
    nops_orch_destroy(o);
}

/* Seals made under another engine's key: an approval forged with it, a whole record (suggest,
 * dry-run, approval) made by an engine holding it; and a genuine approval still executes. */
static void test_other_key_is_refused(void **state)
{
    (void)state;
    nops_orchestrator *o = orch();
    char id[64], err[512], mac[2 * NOPS_MAC_LEN + 1];
    json_t *rec;
    prepared(o, "safe", id);
    rec = file_rec(id);
    json_t *sub = json_pack("{s:s, s:s, s:s}", "by", "key:admin", "at",
                            "2026-12-01T00:00:00.000Z", "manifest_sha256",
                            nops_registry_get(g_r, "safe")->sha256);
    assert_true(nops__seal_make(g_other, "approval", rec, nops_registry_get(g_r, "safe"), sub,
                                mac));
    json_object_set_new(sub, "mac", json_string(mac));
    json_object_set_new(rec, "approval", sub);
    json_object_set_new(rec, "state", json_string("approved"));
    file_put(rec);
    expect_refused(o, id, "approval of orchestration");
    /* the same seal made with the engine's own key is accepted: the test above is sharp */
    rec = file_rec(id);
    sub = json_object_get(rec, "approval");
    assert_true(nops__seal_make(g_secret, "approval", rec, nops_registry_get(g_r, "safe"), sub,
                                mac));
    json_object_set_new(sub, "mac", json_string(mac));
    file_put(rec);
    assert_int_equal(nops_orch_execute(o, id, &TU_ADMIN, &rec, err, sizeof err), NOPS_OK);
    assert_string_equal(st(rec), "executed");
    json_decref(rec);
    /* a record made and approved by another engine */
    nops_orchestrator *theirs = orch_full(NULL, NULL, g_other, 0);
    prepared(theirs, "safe", id);
    approve(theirs, id);
    nops_orch_destroy(theirs);
    expect_refused(o, id, "does not verify");
    /* a legit flow still runs */
    prepared(o, "safe", id);
    approve(o, id);
    assert_int_equal(nops_orch_execute(o, id, &TU_ADMIN, &rec, err, sizeof err), NOPS_OK);
    assert_string_equal(st(rec), "executed");
    json_decref(rec);
    nops_orch_destroy(o);
}

/* The same attack on the PostgreSQL store: UPDATE orchestrations SET record = ..., state. */
static void test_edited_row_runs_nothing(void **state)
{
    (void)state;
    char dsn[600], id[64], err[512];
    PGconn *c = tu_pg_schema("guard_test", dsn, sizeof dsn);
    nops_orchestrator *o = orch_full(dsn, NULL, g_secret, 0);
    prepared(o, "safe", id);
    json_t *rec;
    assert_int_equal(nops_orch_get(o, id, &rec), NOPS_OK);
    forge_approval(rec, true);
    char *text = json_dumps(rec, JSON_COMPACT);
    json_decref(rec);
    const char *v[2] = {id, text};
    PGresult *r = PQexecParams(c, "UPDATE guard_test.orchestrations SET state = 'approved', "
                                  "record = $2::jsonb WHERE id = $1",
                               2, NULL, v, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    assert_string_equal(PQcmdTuples(r), "1");
    PQclear(r);
    free(text);
    expect_refused(o, id, "changed outside the engine");
    /* a genuine approval on the database executes, from another instance too */
    prepared(o, "safe", id);
    approve(o, id);
    nops_orchestrator *o2 = orch_full(dsn, NULL, g_secret, 0);
    assert_int_equal(nops_orch_execute(o2, id, &TU_ADMIN, &rec, err, sizeof err), NOPS_OK);
    assert_string_equal(st(rec), "executed");
    json_decref(rec);
    nops_orch_destroy(o2);
    /* rows that are not records of their id and state are listed as damaged, never stepped on */
    prepared(o, "safe", id);
    const char *w[1] = {id};
    r = PQexecParams(c, "UPDATE guard_test.orchestrations SET state = 'approved' WHERE id = $1",
                     1, NULL, w, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    PQclear(PQexec(c, "INSERT INTO guard_test.orchestrations (id, state, playbook_id, record) "
                      "VALUES ('orch-junk', 'executing', 'safe', '[1, 2]')"));
    assert_int_equal(nops_orch_get(o, id, &rec), NOPS_OK);
    assert_string_equal(st(rec), "damaged");
    assert_non_null(strstr(json_string_value(json_object_get(rec, "error")), "disagree"));
    json_decref(rec);
    assert_int_equal(nops_orch_execute(o, id, &TU_ADMIN, &rec, err, sizeof err), NOPS_INVAL);
    assert_non_null(strstr(err, "damaged"));
    json_t *list;
    assert_int_equal(nops_orch_list(o, "damaged", 10, &list), NOPS_OK);
    assert_int_equal(json_array_size(list), 2);
    json_decref(list);
    assert_int_equal(nops_orch_list(o, "approved", 10, &list), NOPS_OK);
    assert_int_equal(json_array_size(list), 1); /* the forged one; the damaged row is not */
    assert_string_not_equal(json_string_value(json_object_get(json_array_get(list, 0), "id")),
                            id);
    json_decref(list);
    nops_orch_destroy(o);
    /* a restart reports them (the executing one is not silently skipped) */
    o = orch_full(dsn, NULL, g_secret, 0);
    nops_orch_stats sts;
    nops_orch_get_stats(o, &sts);
    assert_int_equal(sts.damaged, 2);
    nops_orch_destroy(o);
    assert_int_not_equal(access(g_marker, F_OK), 0);
    tu_pg_drop_schema(c, "guard_test");
}

/* Step output that is not UTF-8 keeps the record whole: execution, pre/post state, error, and
 * the audit entry's details. */
static void test_binary_output_is_kept_as_text(void **state)
{
    (void)state;
    nops_orchestrator *o = orch();
    char id[64], err[512];
    json_t *rec;
    prepared(o, "binary", id);
    approve(o, id);
    assert_int_equal(nops_orch_execute(o, id, &TU_ADMIN, &rec, err, sizeof err), NOPS_OK);
    assert_string_equal(st(rec), "failed");
    json_t *ex = json_object_get(rec, "execution");
    assert_int_equal(json_array_size(ex), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(ex, 0), "output")),
                        "ok\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDx\xEF\xBF\xBD");
    assert_non_null(strstr(json_string_value(json_object_get(rec, "error")),
                           "\xEF\xBF\xBD\xEF\xBF\xBD" "boom\xEF\xBF\xBD"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(rec, "pre_state"),
                                                          "output")), "st\xEF\xBF\xBD");
    assert_non_null(json_object_get(rec, "post_state"));
    json_decref(rec);
    /* the stored record is the same */
    rec = file_rec(id);
    assert_int_equal(json_array_size(json_object_get(rec, "execution")), 2);
    json_decref(rec);
    /* the audit entry of the outcome has its details */
    char *log = tu_read_file(g_d.audit);
    const char *line = last_entry(log, id);
    assert_non_null(line);
    assert_non_null(strstr(line, "\"decision\":\"failed\""));
    assert_non_null(strstr(line, "boom"));
    free(log);
    /* UTF-8 cut by the 8 KiB cap on a character boundary */
    prepared(o, "multibyte", id);
    approve(o, id);
    assert_int_equal(nops_orch_execute(o, id, &TU_ADMIN, &rec, err, sizeof err), NOPS_OK);
    assert_string_equal(st(rec), "executed");
    const char *out = json_string_value(json_object_get(
        json_array_get(json_object_get(rec, "execution"), 0), "output"));
    assert_non_null(out);
    assert_int_equal(strlen(out), 8190);
    assert_int_equal(out[8189], 'a');
    json_decref(rec);
    nops_orch_destroy(o);
}

/* A step sees descriptors 0, 1, 2 and the one ls opens — not the audit file, the Kafka
 * producer's pipes and sockets, or a descriptor of the process opened without close-on-exec. */
static void test_steps_inherit_no_descriptors(void **state)
{
    (void)state;
    char boot[256], id[64], err[512];
    rd_kafka_t *cluster = tu_mock_cluster(1, NULL, 0, boot, sizeof boot);
    assert_non_null(cluster);
    int leaky = open("/dev/null", O_RDONLY); /* no O_CLOEXEC, on purpose */
    assert_true(leaky > 2);
    nops_orchestrator *o = orch_full(NULL, boot, g_secret, 0);
    prepared(o, "fds", id);
    approve(o, id);
    json_t *rec;
    assert_int_equal(nops_orch_execute(o, id, &TU_ADMIN, &rec, err, sizeof err), NOPS_OK);
    assert_string_equal(st(rec), "executed");
    const char *out = json_string_value(json_object_get(
        json_array_get(json_object_get(rec, "execution"), 0), "output"));
    int n = 0;
    for (const char *p = out; *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p)) {
        int fd = atoi(p);
        if (fd > 3)
            fail_msg("the step inherited descriptor %d:\n%s", fd, out);
        n++;
    }
    assert_int_equal(n, 4); /* 0 1 2 and ls's own directory */
    json_decref(rec);
    nops_orch_destroy(o);
    close(leaky);
    rd_kafka_destroy(cluster);
}

static void write_file(const char *id, const char *text, size_t n)
{
    char path[300];
    snprintf(path, sizeof path, "%s/%s.json", g_d.state, id);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, n, f), n);
    fclose(f);
}

/* Torn, garbled and misplaced record files: listed as damaged with the reason, found by the
 * start-up report, refused for any step — not 404, not left out. */
static void test_damaged_files_are_listed(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_d.state);
    assert_int_equal(system(cmd), 0);
    nops_orchestrator *o = orch();
    char id[64], err[512];
    prepared(o, "safe", id);
    /* an executing record torn in half */
    json_t *rec = file_rec(id);
    json_object_set_new(rec, "state", json_string("executing"));
    char *text = json_dumps(rec, JSON_INDENT(2));
    write_file("orch-torn", text, strlen(text) / 2);
    free(text);
    json_decref(rec);
    write_file("orch-garbage", "\x01\x02 not json", 11);
    const char *elsewhere = "{\"id\":\"orch-other\",\"state\":\"approved\"}";
    write_file("orch-elsewhere", elsewhere, strlen(elsewhere));
    nops_orch_destroy(o);
    o = orch();
    nops_orch_stats sts;
    nops_orch_get_stats(o, &sts);
    assert_int_equal(sts.damaged, 3);
    assert_int_equal(nops_orch_get(o, "orch-torn", &rec), NOPS_OK);
    assert_string_equal(st(rec), "damaged");
    assert_non_null(strstr(json_string_value(json_object_get(rec, "error")), "not JSON"));
    json_decref(rec);
    assert_int_equal(nops_orch_get(o, "orch-elsewhere", &rec), NOPS_OK);
    assert_non_null(strstr(json_string_value(json_object_get(rec, "error")), "id"));
    json_decref(rec);
    assert_int_equal(nops_orch_execute(o, "orch-elsewhere", &TU_ADMIN, &rec, err, sizeof err),
                     NOPS_INVAL);
    assert_non_null(strstr(err, "damaged"));
    json_t *list;
    assert_int_equal(nops_orch_list(o, NULL, 100, &list), NOPS_OK);
    assert_int_equal(json_array_size(list), 4);
    json_decref(list);
    assert_int_equal(nops_orch_list(o, "damaged", 100, &list), NOPS_OK);
    assert_int_equal(json_array_size(list), 3);
    json_decref(list);
    /* a record edited behind the index's back into garbage is found when it is read */
    write_file(id, "{", 1);
    assert_int_equal(nops_orch_get(o, id, &rec), NOPS_OK);
    assert_string_equal(st(rec), "damaged");
    json_decref(rec);
    assert_int_equal(nops_orch_list(o, "damaged", 100, &list), NOPS_OK);
    assert_int_equal(json_array_size(list), 4);
    json_decref(list);
    /* records are written durably, private, with no temporary file left */
    nops_orch_destroy(o);
    o = orch();
    prepared(o, "safe", id);
    char path[300];
    snprintf(path, sizeof path, "%s/%s.json", g_d.state, id);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0640);
    snprintf(cmd, sizeof cmd, "ls %s | grep -c tmp", g_d.state);
    assert_int_not_equal(system(cmd), 0); /* grep found none */
    nops_orch_destroy(o);
}

/* The file store's index: a listing reads the records it returns and no other; counting the
 * open records reads none. */
static void test_listing_reads_only_the_page(void **state)
{
    (void)state;
    char dir[200], err[256];
    snprintf(dir, sizeof dir, "%s/many", g_dir);
    nops_records *s = nops__records_open(dir, NULL, err, sizeof err);
    assert_non_null(s);
    for (int i = 0; i < 300; i++) {
        char id[32], ts[40];
        snprintf(id, sizeof id, "orch-%04d", i);
        snprintf(ts, sizeof ts, "2026-12-01T00:%02d:%02d.000Z", i / 60, i % 60);
        json_t *rec = json_pack("{s:s, s:s, s:s, s:s}", "id", id, "state",
                                i % 3 ? "executed" : "suggested", "playbook_id", "safe",
                                "created_at", ts);
        assert_int_equal(nops__records_save(s, rec, NULL, err, sizeof err), NOPS_OK);
        json_decref(rec);
    }
    nops__records_close(s);
    s = nops__records_open(dir, NULL, err, sizeof err); /* the index is built once: 300 reads */
    assert_int_equal(nops__records_file_reads(s), 300);
    json_t *page = nops__records_list(s, NULL, 10);
    assert_int_equal(json_array_size(page), 10);
    assert_string_equal(json_string_value(json_object_get(json_array_get(page, 0), "id")),
                        "orch-0299");
    json_decref(page);
    assert_int_equal(nops__records_file_reads(s), 310);
    page = nops__records_list(s, "suggested", 5);
    assert_int_equal(json_array_size(page), 5);
    assert_string_equal(json_string_value(json_object_get(json_array_get(page, 0), "id")),
                        "orch-0297");
    json_decref(page);
    assert_int_equal(nops__records_file_reads(s), 315);
    assert_int_equal(nops__records_count_open(s), 100);
    assert_int_equal(nops__records_file_reads(s), 315);
    nops__records_close(s);
}

/* orchestrate.max_open: suggestions past it are refused until one ends; incidents over the
 * inline cap are refused. */
static void test_max_open(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_d.state);
    assert_int_equal(system(cmd), 0);
    nops_orchestrator *o = orch_full(NULL, NULL, g_secret, 2);
    char a[64], b[64], err[512];
    json_t *rec, *inc = json_object();
    prepared(o, "safe", a);
    prepared(o, "safe", b);
    assert_int_equal(nops_orch_suggest(o, inc, "safe", &TU_OPS, &rec, err, sizeof err), NOPS_FULL);
    assert_non_null(strstr(err, "orchestrate.max_open"));
    approve(o, a);
    assert_int_equal(nops_orch_execute(o, a, &TU_ADMIN, &rec, err, sizeof err), NOPS_OK);
    json_decref(rec);
    assert_int_equal(nops_orch_suggest(o, inc, "safe", &TU_OPS, &rec, err, sizeof err), NOPS_OK);
    json_decref(rec);
    json_decref(inc);
    nops_orch_destroy(o);
    o = orch();
    static char big[NOPS_ORCH_MAX_INCIDENT + 10];
    memset(big, 'x', sizeof big - 1);
    inc = json_pack("{s:s}", "summary", big);
    assert_int_equal(nops_orch_suggest(o, inc, "safe", &TU_OPS, &rec, err, sizeof err), NOPS_RANGE);
    json_decref(inc);
    nops_orch_destroy(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edited_record_file_runs_nothing),
        cmocka_unit_test(test_edited_seals_are_refused),
        cmocka_unit_test(test_other_key_is_refused),
        cmocka_unit_test(test_edited_row_runs_nothing),
        cmocka_unit_test(test_binary_output_is_kept_as_text),
        cmocka_unit_test(test_steps_inherit_no_descriptors),
        cmocka_unit_test(test_damaged_files_are_listed),
        cmocka_unit_test(test_listing_reads_only_the_page),
        cmocka_unit_test(test_max_open),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
