/*
 * test_vectorize.c — `neuralops vectorize` and `neuralops recommend` as a user runs them: a
 * generated history (`neuralops loadgen --history`) vectorized from JSONL and, loaded into a
 * real PostgreSQL `workflow_runs` table, from PostgreSQL; both give the same index contents;
 * none of the PII and secrets of the input reaches the index directory; bad rows are named,
 * skipped and make the exit status 3; `recommend` prints the ranked playbooks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "recommend/recommend.h"
#include "tests/testutil.h"
#include "tests/support/pgutil.h"

#include <libpq-fe.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static char g_dir[] = "/tmp/nops-vec-XXXXXX";

static int setup(void **state)
{
    (void)state;
    assert_non_null(mkdtemp(g_dir));
    /* vectorize refuses the published default key; every command below inherits this one */
    setenv("NEURALOPS_VECTOR_ACTOR_KEY", "test-vectorize-actor-key", 1);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s loadgen --history 3000 --seed 11 --out %s/runs.jsonl",
             NEURALOPS_BIN, g_dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Run a shell command, capture stdout+stderr into *out; the exit status. */
static int run(const char *cmd, char **out)
{
    char path[256], full[2048];
    snprintf(path, sizeof path, "%s/out.txt", g_dir);
    snprintf(full, sizeof full, "%s > %s 2>&1", cmd, path);
    int rc = system(full);
    *out = tu_read_file(path);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void test_jsonl_and_no_pii(void **state)
{
    (void)state;
    char cmd[1024], *out;
    snprintf(cmd, sizeof cmd, "%s vectorize --input %s/runs.jsonl --out %s/ix1", NEURALOPS_BIN,
             g_dir, g_dir);
    int rc = run(cmd, &out);
    if (rc != 0)
        fail_msg("vectorize exited %d: %s", rc, out);
    assert_non_null(strstr(out, "3000 vectors written"));
    free(out);
    /* the input is full of PII; the index directory holds none of it */
    const char *pii[] = {"@corp.example.com", "alice.smith", "bob.jones", "AKIAIOSFODNN7EX",
                         "Hunter", "Bearer abc", "192.168.", "415-555", "tok_", "fe80::"};
    snprintf(cmd, sizeof cmd, "grep -c -e alice.smith -e AKIA %s/runs.jsonl > /dev/null",
             g_dir);
    assert_int_equal(system(cmd), 0); /* (the input does have them) */
    for (size_t i = 0; i < sizeof pii / sizeof pii[0]; i++) {
        snprintf(cmd, sizeof cmd, "grep -r -a -l -F -e '%s' %s/ix1", pii[i], g_dir);
        rc = run(cmd, &out);
        if (rc != 1) /* grep: 1 = no match */
            fail_msg("\"%s\" reached the index directory: %s", pii[i], out);
        free(out);
    }
    /* recommend from the CLI */
    snprintf(cmd, sizeof cmd,
             "echo '{\"labels\":{\"service\":\"checkout\",\"host\":\"checkout-007\"},"
             "\"summary\":\"p50 latency on checkout/checkout-007 jumped to 300 ms\","
             "\"metrics\":[\"http_latency_p50_ms\"]}' > %s/inc.json && "
             "%s recommend --index %s/ix1 --incident %s/inc.json --top-n 2",
             g_dir, NEURALOPS_BIN, g_dir, g_dir);
    rc = run(cmd, &out);
    if (rc != 0)
        fail_msg("recommend exited %d: %s", rc, out);
    json_t *arr = json_loads(strchr(out, '['), 0, NULL);
    assert_non_null(arr);
    assert_int_equal(json_array_size(arr), 2);
    assert_non_null(json_string_value(json_object_get(json_array_get(arr, 0), "playbook_id")));
    json_decref(arr);
    free(out);
}

static void test_bad_rows_are_named_and_counted(void **state)
{
    (void)state;
    char path[128], cmd[2048], *out;
    snprintf(path, sizeof path, "%s/bad.jsonl", g_dir);
    snprintf(cmd, sizeof cmd, "head -n 20 %s/runs.jsonl > %s && echo '{\"id\":\"r-x\"' >> %s && "
             "echo '{\"id\":\"r-y\",\"status\":\"success\"}' >> %s && "
             "echo '{\"id\":\"r-z\",\"playbook_id\":\"p\",\"status\":\"maybe\"}' >> %s && "
             "echo '{\"id\":\"ghp_1234567890abcdefghijABCDEFGHIJ123456\"}' >> %s",
             g_dir, path, path, path, path, path);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s vectorize --input %s --out %s/ix-bad", NEURALOPS_BIN, path,
             g_dir);
    int rc = run(cmd, &out);
    assert_int_equal(rc, 3);
    assert_non_null(strstr(out, "skipped line 21"));
    assert_non_null(strstr(out, "skipped line 22 id r-y: no usable \"playbook_id\""));
    assert_non_null(strstr(out, "skipped line 23 id r-z: \"status\""));
    /* a skipped row is named by its redacted id: the message does not leak what it holds */
    assert_non_null(strstr(out, "skipped line 24 id <API_KEY>: no usable \"playbook_id\""));
    assert_null(strstr(out, "ghp_"));
    assert_non_null(strstr(out, "20 vectors written"));
    assert_non_null(strstr(out, "4 rows skipped"));
    free(out);
    /* usage errors */
    snprintf(cmd, sizeof cmd, "%s vectorize --out %s/x", NEURALOPS_BIN, g_dir);
    rc = run(cmd, &out);
    assert_int_equal(rc, 2);
    free(out);
    snprintf(cmd, sizeof cmd, "%s vectorize --input %s --index-type magic", NEURALOPS_BIN, path);
    rc = run(cmd, &out);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "--index-type"));
    free(out);
}

/* --append adds the new runs to the current index; runs it has are left alone. */
static void test_append(void **state)
{
    (void)state;
    char cmd[2048], *out;
    snprintf(cmd, sizeof cmd, "head -n 2000 %s/runs.jsonl > %s/first.jsonl && "
             "%s vectorize --input %s/first.jsonl --out %s/ix-app --index-type ivf",
             g_dir, g_dir, NEURALOPS_BIN, g_dir, g_dir);
    int rc = run(cmd, &out);
    if (rc != 0)
        fail_msg("vectorize: %s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s vectorize --append --input %s/runs.jsonl --out %s/ix-app",
             NEURALOPS_BIN, g_dir, g_dir);
    rc = run(cmd, &out);
    if (rc != 0)
        fail_msg("vectorize --append: %s", out);
    assert_non_null(strstr(out, "1000 vectors written"));
    assert_non_null(strstr(out, "2000 already indexed"));
    free(out);
    char dir[256], err[256];
    snprintf(dir, sizeof dir, "%s/ix-app", g_dir);
    nops_histdir *h = nops_histdir_open(dir, err, sizeof err);
    assert_non_null(h);
    assert_int_equal(nops_histdir_count(h), 3000);
    assert_int_equal(nops_histdir_generation(h), 2);
    assert_int_equal(nops_vindex_type(nops_histdir_index(h)), NOPS_INDEX_IVF);
    nops_histdir_close(h);
    /* appending to nothing is refused with a sentence */
    snprintf(cmd, sizeof cmd, "%s vectorize --append --input %s/runs.jsonl --out %s/none",
             NEURALOPS_BIN, g_dir, g_dir);
    rc = run(cmd, &out);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "not an index directory"));
    free(out);
}

static void pg_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
}

/* Same history through a real PostgreSQL table: the same index contents. */
static void test_postgres_gives_the_same_index(void **state)
{
    (void)state;
    char dsn[600];
    PGconn *c = tu_pg_schema("vectorize_test", dsn, sizeof dsn);
    pg_exec(c, "SET search_path = vectorize_test"); /* where `vectorize` will read */
    pg_exec(c, "CREATE TABLE workflow_runs (id text PRIMARY KEY, playbook_id text NOT NULL, "
               "incident_summary text, metrics text[], labels jsonb, signals jsonb, "
               "started_at timestamptz, finished_at timestamptz, status text NOT NULL, "
               "executed_by text, notes text)");
    char path[256];
    snprintf(path, sizeof path, "%s/runs.jsonl", g_dir);
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    pg_exec(c, "BEGIN");
    while (getline(&line, &cap, f) > 0) {
        const char *params[1] = {line};
        PGresult *r = PQexecParams(c,
                                   "INSERT INTO workflow_runs SELECT * FROM "
                                   "json_populate_record(NULL::workflow_runs, $1::json)",
                                   1, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            fail_msg("insert: %s", PQerrorMessage(c));
        PQclear(r);
    }
    pg_exec(c, "COMMIT");
    free(line);
    fclose(f);
    char cmd[1400], *out;
    snprintf(cmd, sizeof cmd, "%s vectorize --from-postgres '%s' --out %s/ix2", NEURALOPS_BIN,
             dsn, g_dir);
    int rc = run(cmd, &out);
    if (rc != 0)
        fail_msg("vectorize from PostgreSQL exited %d: %s", rc, out);
    assert_non_null(strstr(out, "3000 vectors written"));
    free(out);
    /* the same runs, in the same order, with the same metadata */
    char a[256], b[256];
    snprintf(a, sizeof a, "%s/ix1/current/runs.meta", g_dir);
    snprintf(b, sizeof b, "%s/ix2/current/runs.meta", g_dir);
    snprintf(cmd, sizeof cmd, "cmp %s %s", a, b);
    assert_int_equal(system(cmd), 0);
    /* and the same vectors: each run's nearest neighbours agree */
    snprintf(a, sizeof a, "%s/ix1", g_dir);
    snprintf(b, sizeof b, "%s/ix2", g_dir);
    char err[256];
    nops_histdir *h1 = nops_histdir_open(a, err, sizeof err), *h2 = nops_histdir_open(b, err,
                                                                                      sizeof err);
    assert_non_null(h1);
    assert_non_null(h2);
    float q[NOPS_EMBED_DIM] = {0};
    for (int t = 0; t < 20; t++) {
        for (int d = 0; d < NOPS_EMBED_DIM; d++)
            q[d] = (float)((d * 7 + t * 13) % 17) - 8.0f;
        float s1[10], s2[10];
        int64_t i1[10], i2[10];
        assert_int_equal(nops_vindex_search(nops_histdir_index(h1), q, 1, 10, s1, i1, err,
                                            sizeof err), NOPS_OK);
        assert_int_equal(nops_vindex_search(nops_histdir_index(h2), q, 1, 10, s2, i2, err,
                                            sizeof err), NOPS_OK);
        for (int k = 0; k < 10; k++) {
            assert_int_equal(i1[k], i2[k]);
            assert_true(fabsf(s1[k] - s2[k]) < 1e-4f);
        }
    }
    nops_histdir_close(h1);
    nops_histdir_close(h2);
    tu_pg_drop_schema(c, "vectorize_test");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jsonl_and_no_pii),
        cmocka_unit_test(test_bad_rows_are_named_and_counted),
        cmocka_unit_test(test_append),
        cmocka_unit_test(test_postgres_gives_the_same_index),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
