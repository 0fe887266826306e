/*
 * test_demo.c — `neuralops demo --approve` as a user runs it (a separate process, its own mock
 * Kafka, HTTP API on a free port): the example playbooks are written and signed with a key pair
 * made at the first run (0600, kept for the next run); the closed loop suggests on its own (the
 * engine is the requester), runs the low-risk scale-out by itself, and the first suggestion that
 * waits is approved by demo-admin and executed (in a run too short for a confident suggestion,
 * the demo's operator suggests the top recommendation instead), its workflow_runs row
 * lands in the history, and the audit chain verifies — on the file store, and again with
 * --postgres, where the record, the run and the audit entries are rows of PostgreSQL.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "orchestrate/orchestrate.h"
#include "tests/support/pgutil.h"
#include "tests/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>

static char g_dir[] = "/tmp/nops-demo-XXXXXX";

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(g_dir))
        return -1;
    /* the engine key (and the audit head records beside it) of the demo runs: here, not in the
     * home directory of whoever runs the tests */
    char cfg[64];
    snprintf(cfg, sizeof cfg, "%s/cfg", g_dir);
    return setenv("XDG_CONFIG_HOME", cfg, 1);
}

/* The engine key the demo runs made (the audit chain is keyed with it). */
static nops_secret *demo_key(void)
{
    char path[200], err[256];
    nops_security_key_path(NULL, path, sizeof path);
    nops_secret *k = nops_secret_load(path, false, err, sizeof err);
    if (!k)
        fail_msg("%s", err);
    return k;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Run the demo into data dir `data` (extra flags appended); its stdout, or fail. */
static char *run_demo(const char *data, int seconds, const char *extra)
{
    char cmd[2048], out[300];
    snprintf(out, sizeof out, "%s/demo.out", g_dir);
    snprintf(cmd, sizeof cmd,
             "%s demo --seconds %d --series 200 --rate 20000 --approve --listen 127.0.0.1:0 "
             "--data-dir %s --index %s/index %s > %s 2>%s.err < /dev/null",
             NEURALOPS_BIN, seconds, data, data, extra, out, out);
    int rc = system(cmd);
    char *text = tu_read_file(out);
    if (rc != 0) {
        snprintf(cmd, sizeof cmd, "%s.err", out);
        char *err = tu_read_file(cmd);
        fail_msg("demo exited %d:\n%s\n%s", rc, text ? text : "", err ? err : "");
    }
    return text;
}

/* The id of the orchestration the demo ran ("orch-…" after "executed"). */
static void ran_id(const char *out, char *id, size_t cap)
{
    const char *p = strstr(out, "Remediation:");
    assert_non_null(p);
    p = strstr(p, "orch-");
    assert_non_null(p);
    size_t n = 5 + strspn(p + 5, "0123456789abcdef"); /* orch- and its hex digits */
    snprintf(id, cap, "%.*s", (int)n, p);
}

/* Records in the orchestrations dir `dir` the engine suggested and ran without an approval. */
static int auto_runs(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".json") != 0 || e->d_name[0] == '_')
            continue;
        char path[700];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        json_t *rec = json_load_file(path, 0, NULL);
        const char *by = json_string_value(json_object_get(rec, "requested_by"));
        const char *st = json_string_value(json_object_get(rec, "state"));
        n += by && st && strcmp(by, "engine") == 0 && strcmp(st, "executed") == 0 &&
             !json_object_get(rec, "approval") &&
             json_is_true(json_object_get(json_object_get(rec, "policy"), "auto_execute"));
        json_decref(rec);
    }
    closedir(d);
    return n;
}

static void test_demo_on_files(void **state)
{
    (void)state;
    char data[200], path[400], id[48];
    snprintf(data, sizeof data, "%s/files", g_dir);
    /* 12 s: three injected incidents (a spike, a regression, a cpu saturation), enough for the
     * engine's own confident suggestions */
    char *out = run_demo(data, 12, "");
    assert_non_null(strstr(out, "a key pair made now, on the first run"));
    if (!strstr(out, "executed by key:demo-admin"))
        fail_msg("the demo did not run a playbook:\n%s", out);
    assert_non_null(strstr(out, "state after"));
    ran_id(out, id, sizeof id);
    free(out);
    /* the key pair: private 0600; the registry: every manifest signed and loadable */
    struct stat sb;
    snprintf(path, sizeof path, "%s/playbooks/demo-signing.key", data);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    char reg[300], pub[300], err[256];
    snprintf(reg, sizeof reg, "%s/playbooks/registry", data);
    snprintf(pub, sizeof pub, "%s/playbooks/demo-signing.pub", data);
    nops_registry *r = nops_registry_load(reg, pub, err, sizeof err);
    assert_non_null(r);
    assert_int_equal(nops_registry_count(r), 10);
    assert_int_equal(nops_registry_refused(r), 0);
    nops_registry_destroy(r);
    /* the run is in the history (status success) and the record says executed */
    snprintf(path, sizeof path, "%s/history.jsonl", data);
    char *hist = tu_read_file(path);
    const char *row = strstr(hist, id);
    assert_non_null(row);
    assert_non_null(strstr(row, "\"status\":\"success\""));
    free(hist);
    snprintf(path, sizeof path, "%s/orchestrations/%s.json", data, id);
    json_t *rec = json_load_file(path, 0, NULL);
    assert_non_null(rec);
    assert_string_equal(json_string_value(json_object_get(rec, "state")), "executed");
    /* suggested by the engine on its own, no API call: the closed loop */
    assert_string_equal(json_string_value(json_object_get(rec, "requested_by")), "engine");
    if (!json_is_true(json_object_get(json_object_get(rec, "policy"), "auto_execute")))
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(rec, "approval"), "by")),
            "key:demo-admin"); /* else rotate-logs: allowed by the demo policy, mode auto */
    json_decref(rec);
    /* and the engine ran the low-risk one on its own: a scale-out record, never approved */
    snprintf(path, sizeof path, "%s/orchestrations", data);
    assert_true(auto_runs(path) >= 1); /* one per incident it fits: how many the short run's
                                          * cpu event makes is the correlator's business */
    /* the incidents carry their recommendations in the JSONL sink */
    snprintf(path, sizeof path, "%s/incidents.jsonl", data);
    char *incs = tu_read_file(path);
    assert_non_null(incs);
    assert_non_null(strstr(incs, "\"recommendations\":[{\"playbook_id\":"));
    free(incs);
    nops_audit_report ar;
    snprintf(path, sizeof path, "%s/audit.jsonl", data);
    nops_secret *key = demo_key();
    assert_int_equal(nops_audit_verify_file(path, key, &ar), NOPS_OK);
    /* suggest, dry-run, (approve,) execute started, executed */
    assert_true(ar.entries >= 4);
    const uint64_t first = ar.entries;
    /* a second run keeps the key pair, the history the first one grew and the audit chain */
    out = run_demo(data, 4, ""); /* one incident: the engine may leave it to the operator */
    assert_non_null(strstr(out, "the key pair of the first run"));
    assert_non_null(strstr(out, "from an earlier run"));
    free(out);
    assert_int_equal(nops_audit_verify_file(path, key, &ar), NOPS_OK);
    assert_true(ar.entries >= first);
    nops_secret_destroy(key);
}

static void test_demo_on_postgres(void **state)
{
    (void)state;
    char data[200], extra[800], dsn[600], id[48];
    PGconn *c = tu_pg_schema("demo_test", dsn, sizeof dsn);
    snprintf(data, sizeof data, "%s/pg", g_dir);
    snprintf(extra, sizeof extra, "--postgres '%s'", dsn);
    char *out = run_demo(data, 4, extra);
    assert_non_null(strstr(out, "executed by key:demo-admin"));
    ran_id(out, id, sizeof id);
    free(out);
    /* the record is a row, not a file; the run and every audit entry are rows too */
    char path[400];
    snprintf(path, sizeof path, "%s/orchestrations/%s.json", data, id);
    FILE *f = fopen(path, "r");
    assert_null(f);
    tu_pg_expect_run(c, "demo_test", id, "executed", "success", 4);
    /* the incidents table carries the recommendations the engine attached */
    PGresult *r = PQexec(c, "SELECT count(*) FROM demo_test.incidents "
                            "WHERE jsonb_array_length(recommendations) > 0");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    if (atoi(PQgetvalue(r, 0, 0)) < 1)
        fail_msg("no incident row carries recommendations");
    PQclear(r);
    nops_audit_report ar;
    char err[256];
    nops_secret *key = demo_key();
    assert_int_equal(nops_audit_verify_pg(dsn, key, &ar, err, sizeof err), NOPS_OK);
    nops_secret_destroy(key);
    assert_true(ar.entries >= 4);
    tu_pg_drop_schema(c, "demo_test");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_demo_on_files),
        cmocka_unit_test(test_demo_on_postgres),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
