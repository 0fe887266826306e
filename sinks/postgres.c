/*
 * postgres.c — the PostgreSQL sink: tables insight_signals and incidents, created or migrated
 * idempotently when the sink is added (connections and statements through pg/).
 *
 * Records are buffered as JSON; a flush sends each kind as one parameterised statement over a
 * JSON array (`jsonb_array_elements`), inside one transaction: a multi-row insert, no SQL built
 * from data. Signals are keyed by id and `ON CONFLICT DO NOTHING` absorbs replays; incidents
 * are upserted, the newest record of an id in a batch winning (its recommendations too, in the
 * jsonb column `recommendations`: [] when none were attached). If the server is down the flush
 * fails, the buffer is kept (bounded), and the next flush reconnects and tries again.
 */
#include "pg/pg.h"
#include "sinks/sinks.h"

#include <string.h>

typedef struct pg_buf {
    nops_buf a;  /* "[doc,doc,...": a JSON array without its closing bracket */
    size_t n;    /* records */
} pg_buf;

typedef struct pg_sink {
    char dsn[512];       /* connection string */
    PGconn *conn;        /* current connection (may be bad) */
    pg_buf buf[2];       /* signals, incidents */
    size_t max_buffer;   /* bytes per buffer */
} pg_sink;

static const char *schema_sql =
    "CREATE TABLE IF NOT EXISTS neuralops_schema (version integer NOT NULL);"
    "CREATE TABLE IF NOT EXISTS insight_signals ("
    "  id text PRIMARY KEY, series text NOT NULL, metric text NOT NULL,"
    "  labels jsonb NOT NULL DEFAULT '{}', ts timestamptz NOT NULL, value double precision,"
    "  method text, zscore real, ewma real, score double precision, hint text,"
    "  inserted_at timestamptz NOT NULL DEFAULT now());"
    "CREATE INDEX IF NOT EXISTS insight_signals_ts ON insight_signals (ts);"
    "CREATE INDEX IF NOT EXISTS insight_signals_labels ON insight_signals USING gin (labels);"
    "CREATE TABLE IF NOT EXISTS incidents ("
    "  id text PRIMARY KEY, status text NOT NULL, opened_at timestamptz NOT NULL,"
    "  updated_at timestamptz NOT NULL, signals jsonb NOT NULL, signal_count integer,"
    "  labels jsonb NOT NULL DEFAULT '{}', summary text, root_cause_hint text);"
    "CREATE INDEX IF NOT EXISTS incidents_updated ON incidents (updated_at);"
    "ALTER TABLE incidents ADD COLUMN IF NOT EXISTS severity text;"
    "ALTER TABLE incidents ADD COLUMN IF NOT EXISTS recommendations jsonb NOT NULL"
    "  DEFAULT '[]';"
    "INSERT INTO neuralops_schema (version) SELECT 1 WHERE NOT EXISTS "
    "  (SELECT 1 FROM neuralops_schema);";

static const char *insert_signals =
    "INSERT INTO insight_signals (id, series, metric, labels, ts, value, method, zscore, ewma,"
    " score, hint) SELECT d->>'id', d->>'series', d->>'metric', d->'labels',"
    " (d->>'ts')::timestamptz, (d->>'value')::float8, d->>'method', (d->>'zscore')::real,"
    " (d->>'ewma')::real, (d->>'score')::float8, d->>'hint'"
    " FROM jsonb_array_elements($1::jsonb) AS d ON CONFLICT (id) DO NOTHING";

static const char *upsert_incidents =
    "INSERT INTO incidents (id, status, opened_at, updated_at, signals, signal_count, labels,"
    " summary, root_cause_hint, severity, recommendations) SELECT DISTINCT ON (d->>'id')"
    " d->>'id', d->>'status',"
    " (d->>'opened_at')::timestamptz, (d->>'updated_at')::timestamptz, d->'signals',"
    " (d->>'signal_count')::int, d->'labels', d->>'summary', d->>'root_cause_hint',"
    " d->>'severity', COALESCE(d->'recommendations', '[]'::jsonb)"
    " FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS t(d, n) ORDER BY d->>'id', n DESC"
    " ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, updated_at = EXCLUDED.updated_at,"
    " signals = EXCLUDED.signals, signal_count = EXCLUDED.signal_count,"
    " labels = EXCLUDED.labels, summary = EXCLUDED.summary,"
    " root_cause_hint = EXCLUDED.root_cause_hint, severity = EXCLUDED.severity,"
    " recommendations = EXCLUDED.recommendations";

/* (Re)connect if needed; the libpq message is copied at once on failure. */
static bool pg_connect(pg_sink *s, const char *schema, char *errstr, size_t errstr_size)
{
    if (s->conn && PQstatus(s->conn) == CONNECTION_OK)
        return true;
    if (s->conn)
        PQfinish(s->conn);
    s->conn = nops_pg_open(s->dsn, schema, NULL, errstr, errstr_size);
    return s->conn != NULL;
}

static nops_err pg_write(void *self, int kind, const char *json, size_t len)
{
    pg_sink *s = self;
    pg_buf *b = &s->buf[kind == NOPS_SINK_INCIDENT];
    if (b->a.len + len + 2 > s->max_buffer)
        return NOPS_FULL;
    if (nops_buf_reserve(&b->a, len + 2) != NOPS_OK) /* +1 separator, +1 closing bracket */
        return NOPS_NOMEM;
    b->a.b[b->a.len++] = b->n ? ',' : '[';
    memcpy(b->a.b + b->a.len, json, len);
    b->a.len += len;
    b->n++;
    return NOPS_OK;
}

/* Send one buffer as one statement; on success the buffer is emptied by the caller. */
static bool pg_send(pg_sink *s, pg_buf *b, const char *sql, char *errstr, size_t errstr_size)
{
    if (!b->n)
        return true;
    b->a.b[b->a.len] = ']';
    char *arr = nops_strndup(b->a.b, b->a.len + 1);
    if (!arr) {
        nops_errf(errstr, errstr_size, "out of memory");
        return false;
    }
    const char *params[1] = {arr};
    PGresult *r = PQexecParams(s->conn, sql, 1, NULL, params, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        nops_errf(errstr, errstr_size, "%s", PQresultErrorMessage(r));
    PQclear(r);
    nops_free(arr);
    return ok;
}

static nops_err pg_flush(void *self, char *errstr, size_t errstr_size)
{
    pg_sink *s = self;
    if (!s->buf[0].n && !s->buf[1].n)
        return NOPS_OK;
    if (!pg_connect(s, NULL, errstr, errstr_size))
        return NOPS_IO;
    bool ok = nops_pg_run(s->conn, "BEGIN", NULL, errstr, errstr_size) &&
              pg_send(s, &s->buf[0], insert_signals, errstr, errstr_size) &&
              pg_send(s, &s->buf[1], upsert_incidents, errstr, errstr_size) &&
              nops_pg_run(s->conn, "COMMIT", NULL, errstr, errstr_size);
    if (!ok) {
        if (PQstatus(s->conn) == CONNECTION_OK) {
            char ignore[64];
            nops_pg_run(s->conn, "ROLLBACK", NULL, ignore, sizeof ignore);
        }
        return NOPS_IO;
    }
    for (int i = 0; i < 2; i++)
        s->buf[i].a.len = s->buf[i].n = 0;
    return NOPS_OK;
}

static void pg_destroy(void *self)
{
    pg_sink *s = self;
    if (s->conn)
        PQfinish(s->conn);
    nops_free(s->buf[0].a.b);
    nops_free(s->buf[1].a.b);
    nops_free(s);
}

static const nops_sink_ops pg_ops = {"postgres", pg_write, pg_flush, pg_destroy, false};

nops_err nops_sinks_add_postgres(nops_sinks *set, const char *dsn, size_t max_buffer,
                                 char *errstr, size_t errstr_size)
{
    pg_sink *s = nops_calloc(1, sizeof *s);
    if (!s) {
        nops_errf(errstr, errstr_size, "out of memory");
        return NOPS_NOMEM;
    }
    snprintf(s->dsn, sizeof s->dsn, "%s", dsn);
    s->max_buffer = max_buffer ? max_buffer : (64u << 20);
    char err[512] = "";
    if (!pg_connect(s, schema_sql, err, sizeof err)) {
        nops_errf(errstr, errstr_size, "postgres sink: %s", err);
        pg_destroy(s);
        return NOPS_IO;
    }
    nops_err e = nops_sinks_add(set, &pg_ops, s);
    if (e != NOPS_OK) {
        nops_errf(errstr, errstr_size, "too many sinks");
        pg_destroy(s);
    }
    return e;
}
