/*
 * test_pg_schema.c — schemas made by several instances starting at once against one database.
 *
 * Two `neuralops serve` started together on a fresh database (deploy/compose.yaml's first `up`)
 * both ran `CREATE TABLE IF NOT EXISTS ...`; PostgreSQL does not serialise those, and the second
 * failed with `duplicate key value violates unique constraint "pg_type_typname_nsp_index"` and
 * the engine exited at start (found by tests/deploy's topology check). nops_pg_open now makes
 * the schema under a transaction-level advisory lock, as nops_pg_schema does for later DDL.
 *
 * The test: rounds of THREADS connections released at once by a barrier, each opening a fresh
 * schema with the sink's kind of DDL (tables, indexes, added columns); every open must succeed
 * and the tables must be there once. Skipped without NEURALOPS_TEST_PG_DSN (make test sets it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "pg/pg.h"
#include "tests/support/pgutil.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define THREADS 8
#define ROUNDS 12

static const char *ddl =
    "CREATE TABLE IF NOT EXISTS race_a (id text PRIMARY KEY, v jsonb NOT NULL DEFAULT '{}');"
    "CREATE INDEX IF NOT EXISTS race_a_v ON race_a USING gin (v);"
    "CREATE TABLE IF NOT EXISTS race_b (id text PRIMARY KEY, ts timestamptz NOT NULL);"
    "ALTER TABLE race_b ADD COLUMN IF NOT EXISTS extra text;";
static const char *ddl_more = "CREATE INDEX IF NOT EXISTS race_b_ts ON race_b (ts);"
                              "CREATE TABLE IF NOT EXISTS race_c (k text PRIMARY KEY);";

typedef struct {
    pthread_barrier_t *go;
    const char *dsn;
    char err[512];
    int ok;
} opener;

static void *open_one(void *arg)
{
    opener *o = arg;
    pthread_barrier_wait(o->go);
    PGconn *c = nops_pg_open(o->dsn, ddl, "race", o->err, sizeof o->err);
    o->ok = c && nops_pg_schema(c, ddl_more, "race", o->err, sizeof o->err);
    PQfinish(c);
    return NULL;
}

static void test_concurrent_schema_creation(void **state)
{
    (void)state;
    int failures = 0;
    for (int round = 0; round < ROUNDS; round++) {
        char schema[64], dsn[1024];
        snprintf(schema, sizeof schema, "schema_race_%d", round);
        PGconn *admin = tu_pg_schema_opt(schema, dsn, sizeof dsn);
        if (!admin) {
            print_message("NEURALOPS_TEST_PG_DSN unset: skipped (make test provides it)\n");
            skip();
        }
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, THREADS);
        opener o[THREADS];
        pthread_t t[THREADS];
        for (int i = 0; i < THREADS; i++) {
            o[i] = (opener){.go = &go, .dsn = dsn};
            assert_int_equal(pthread_create(&t[i], NULL, open_one, &o[i]), 0);
        }
        for (int i = 0; i < THREADS; i++) {
            pthread_join(t[i], NULL);
            if (!o[i].ok) {
                if (failures++ < 3) print_message("round %d, opener %d: %s\n", round, i, o[i].err);
            }
        }
        pthread_barrier_destroy(&go);
        char sql[256];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_tables WHERE schemaname = '%s'", schema);
        PGresult *r = PQexec(admin, sql);
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        assert_string_equal(PQgetvalue(r, 0, 0), "3");
        PQclear(r);
        tu_pg_drop_schema(admin, schema);
    }
    if (failures)
        fail_msg("%d of %d concurrent schema creations failed", failures, THREADS * ROUNDS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_schema_creation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
