/*
 * pg.c — the PostgreSQL helpers of pg.h: open (connect, quiet notices, schema), run, and a
 * parameterised exec that survives one lost connection.
 */
#include "pg/pg.h"

static void pg_err(const char *what, const char *reason, char *errstr, size_t errstr_size)
{
    if (what)
        nops_errf(errstr, errstr_size, "%s: PostgreSQL: %s", what, reason);
    else
        nops_errf(errstr, errstr_size, "PostgreSQL: %s", reason);
}

bool nops_pg_run(PGconn *c, const char *sql, const char *what, char *errstr,
                 size_t errstr_size)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        pg_err(what, r ? PQresultErrorMessage(r) : PQerrorMessage(c), errstr, errstr_size);
    PQclear(r);
    return ok;
}

/*
 * Schema changes under one lock. PostgreSQL checks `IF NOT EXISTS` before it inserts the
 * catalogue rows, without a lock between the two, so instances starting together on a fresh
 * database (a compose stack's first `up`, a StatefulSet's pods in parallel) both find the table
 * missing and the second fails on the catalogue's unique index. A transaction-level advisory
 * lock, the same key for every schema the engine makes, runs them one after another; the later
 * ones find everything there. The lock ends with the transaction, also when it fails.
 */
#define NOPS_PG_SCHEMA_LOCK "SELECT pg_advisory_xact_lock(7954893450941067120)" /* "neuralop" */

bool nops_pg_schema(PGconn *c, const char *schema, const char *what, char *errstr,
                    size_t errstr_size)
{
    if (!nops_pg_run(c, "BEGIN", what, errstr, errstr_size))
        return false;
    if (nops_pg_run(c, NOPS_PG_SCHEMA_LOCK, what, errstr, errstr_size) &&
        nops_pg_run(c, schema, what, errstr, errstr_size) &&
        nops_pg_run(c, "COMMIT", what, errstr, errstr_size))
        return true;
    PQclear(PQexec(c, "ROLLBACK")); /* the error above is the one to report */
    return false;
}

PGconn *nops_pg_open(const char *dsn, const char *schema, const char *what, char *errstr,
                     size_t errstr_size)
{
    PGconn *c = PQconnectdb(dsn);
    if (PQstatus(c) != CONNECTION_OK) {
        char reason[512];
        snprintf(reason, sizeof reason, "cannot connect: %s", PQerrorMessage(c));
        pg_err(what, reason, errstr, errstr_size);
        PQfinish(c);
        return NULL;
    }
    if (!nops_pg_run(c, "SET client_min_messages = warning", what, errstr, errstr_size) ||
        (schema && !nops_pg_schema(c, schema, what, errstr, errstr_size))) {
        PQfinish(c);
        return NULL;
    }
    return c;
}

PGresult *nops_pg_exec(PGconn *c, const char *sql, int n, const char *const *params)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (PQstatus(c) != CONNECTION_OK)
            PQreset(c);
        PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || PQstatus(c) == CONNECTION_OK)
            return r; /* done, or an error of the statement itself */
        PQclear(r);
    }
    return NULL;
}
