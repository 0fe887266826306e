/*
 * pgutil.h — the throw-away PostgreSQL of `make test` for the integration tests (header-only,
 * tests only; include after cmocka.h).
 */
#ifndef NOPS_TESTS_SUPPORT_PGUTIL_H
#define NOPS_TESTS_SUPPORT_PGUTIL_H

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * A fresh, empty `schema` in the test database (dropped first if a run left it) and a DSN into
 * `dsn` whose search_path is that schema, so every table the code under test creates lands
 * there. Returns the connection (PQfinish it after tu_pg_drop_schema), or skips the test when
 * NEURALOPS_TEST_PG_DSN is unset (make test sets it).
 */
static inline PGconn *tu_pg_schema_opt(const char *schema, char *dsn, size_t cap);

static inline PGconn *tu_pg_schema(const char *schema, char *dsn, size_t cap)
{
    if (!getenv("NEURALOPS_TEST_PG_DSN")) {
        print_message("NEURALOPS_TEST_PG_DSN unset: skipped (make test provides it)\n");
        skip();
    }
    return tu_pg_schema_opt(schema, dsn, cap);
}

/* The same for a test that runs on without PostgreSQL: NULL (and `dsn` "") when
 * NEURALOPS_TEST_PG_DSN is unset. */
static inline PGconn *tu_pg_schema_opt(const char *schema, char *dsn, size_t cap)
{
    const char *base = getenv("NEURALOPS_TEST_PG_DSN");
    dsn[0] = '\0';
    if (!base)
        return NULL;
    PGconn *c = PQconnectdb(base);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    char sql[256];
    snprintf(sql, sizeof sql, "SET client_min_messages = warning; DROP SCHEMA IF EXISTS %s "
             "CASCADE; CREATE SCHEMA %s", schema, schema);
    PGresult *r = PQexec(c, sql);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    snprintf(dsn, cap, "%s options=-csearch_path=%s", base, schema);
    return c;
}

static inline void tu_pg_drop_schema(PGconn *c, const char *schema)
{
    char sql[128];
    snprintf(sql, sizeof sql, "DROP SCHEMA %s CASCADE", schema);
    PQclear(PQexec(c, sql));
    PQfinish(c);
}

/*
 * Orchestration `id` as PostgreSQL holds it in `schema`: its record's state, its workflow_runs
 * row's status, and how many audit_logs rows name it — asserted equal to the arguments.
 */
static inline void tu_pg_expect_run(PGconn *c, const char *schema, const char *id,
                                    const char *state, const char *status, int min_audit)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT o.state, w.status, (SELECT count(*) FROM %s.audit_logs WHERE subject = $1) "
             "FROM %s.orchestrations o JOIN %s.workflow_runs w USING (id) WHERE id = $1",
             schema, schema, schema);
    const char *v[1] = {id};
    PGresult *r = PQexecParams(c, sql, 1, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        fail_msg("orchestration %s is not in %s: %s", id, schema, PQerrorMessage(c));
    assert_string_equal(PQgetvalue(r, 0, 0), state);
    assert_string_equal(PQgetvalue(r, 0, 1), status);
    assert_true(atoi(PQgetvalue(r, 0, 2)) >= min_audit);
    PQclear(r);
}

#endif
