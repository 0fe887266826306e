/*
 * pg.h — PostgreSQL connection and statement helpers shared by every module that keeps data in
 * PostgreSQL: the audit trail and the orchestration records (orchestrate/) and the PostgreSQL
 * sink (sinks/). One place decides how a connection is opened (notices quiet, schema created
 * idempotently), how a statement reports its error, and how a lost connection is retried.
 *
 * Ownership: a PGconn from nops_pg_open belongs to the caller (PQfinish it); a PGresult from
 * nops_pg_exec belongs to the caller (PQclear it). Errors are copied into errstr at once, as
 * "<what>: PostgreSQL: <reason>" (or "PostgreSQL: <reason>" when `what` is NULL).
 * A connection is not thread-safe: callers serialise its use.
 */
#ifndef NOPS_PG_H
#define NOPS_PG_H

#include "core/core.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

/**
 * Connect to `dsn`, quiet notices below warning, and run `schema` (statements that create or
 * migrate tables idempotently; NULL for none). NULL with the reason ("cannot connect: ..." when
 * the server was not reached) in errstr.
 */
PGconn *nops_pg_open(const char *dsn, const char *schema, const char *what, char *errstr,
                     size_t errstr_size);

/**
 * Run `schema` (statements that create or migrate tables idempotently) on `c` so that instances
 * starting together against one database do not collide: `CREATE TABLE IF NOT EXISTS` run by two
 * sessions at once can fail in the second ("duplicate key value violates unique constraint
 * pg_type_typname_nsp_index"), so the statements run in one transaction holding a
 * transaction-level advisory lock that every NeuralOps schema change takes (nops_pg_open uses
 * it for its `schema`). False with the server's message in errstr (the transaction rolled back).
 */
bool nops_pg_schema(PGconn *c, const char *schema, const char *what, char *errstr,
                    size_t errstr_size);

/**
 * Run `sql` (no parameters; may hold several statements) once. False with the server's
 * message in errstr.
 */
bool nops_pg_run(PGconn *c, const char *sql, const char *what, char *errstr,
                 size_t errstr_size);

/**
 * Run a statement with text parameters; when it failed because the connection was lost (a
 * database restart, a terminated backend — libpq only learns of it on use), reconnect once and
 * run it again. The result (PQclear it), or NULL when even that found no connection. Not for
 * statements inside a transaction: a reconnect would run it outside the transaction.
 */
PGresult *nops_pg_exec(PGconn *c, const char *sql, int n, const char *const *params);

#endif /* NOPS_PG_H */
