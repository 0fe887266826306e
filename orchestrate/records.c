/*
 * records.c — where orchestration records live: JSON files in a state directory
 * (records_files.c, with its index) or, with a PostgreSQL DSN, rows of table `orchestrations`
 * whose state column makes every transition a compare-and-set, so two processes cannot both take
 * the same step; listings there use an index on (state, created_at). A record that cannot be read
 * as one (a torn or edited file, a row whose record does not match its id or state) comes back
 * as a damaged placeholder, logged (rate-limited), and is never acted on. The workflow_runs rows an
 * execution produces go to the history JSONL and to PostgreSQL.
 */
#include "orchestrate/orch_int.h"

#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const char *schema_sql =
    "CREATE TABLE IF NOT EXISTS orchestrations ("
    " id text PRIMARY KEY, state text NOT NULL, playbook_id text NOT NULL,"
    " record jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),"
    " updated_at timestamptz NOT NULL DEFAULT now());"
    "CREATE INDEX IF NOT EXISTS orchestrations_state ON orchestrations (state);"
    "CREATE TABLE IF NOT EXISTS workflow_runs ("
    " id text PRIMARY KEY, playbook_id text NOT NULL, incident_summary text, metrics text[],"
    " labels jsonb, signals jsonb, started_at timestamptz, finished_at timestamptz,"
    " status text NOT NULL, executed_by text, notes text);";

struct nops_records {
    nops_rfiles *files;  /* the file store, or NULL */
    PGconn *pg;          /* the PostgreSQL store, or NULL */
    pthread_mutex_t mu;  /* one statement at a time on pg; the file index and compare-and-set */
};

/* ---- shared: ids, states, damage ---------------------------------------------------------- */

bool nops__record_id_valid(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > 40)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= '0' && id[i] <= '9') || id[i] == '-'))
            return false;
    return true;
}

/* The states of an open record (counted against orchestrate.max_open): the one list. */
static const char *const open_states[] = {"suggested", "dry_running", "dry_run_ok",
                                          "dry_run_failed", "approved", "executing"};
#define N_OPEN_STATES (sizeof open_states / sizeof open_states[0])

bool nops__record_state_open(const char *state)
{
    for (size_t i = 0; state && i < N_OPEN_STATES; i++)
        if (strcmp(state, open_states[i]) == 0)
            return true;
    return false;
}

const char *nops__record_damage(json_t *rec, const char *id)
{
    const char *rid = json_string_value(json_object_get(rec, "id"));
    const char *st = json_string_value(json_object_get(rec, "state"));
    if (!json_is_object(rec))
        return "not a JSON object";
    if (!rid || strcmp(rid, id) != 0)
        return "its id does not match where it is stored";
    if (!st || !*st || strcmp(st, "damaged") == 0)
        return "it has no state";
    return NULL;
}

json_t *nops__record_damaged(const char *id, const char *why, const char *created_at)
{
    return json_pack("{s:s, s:s, s:s, s:s}", "id", id, "state", "damaged", "error", why,
                     "created_at", created_at ? created_at : "");
}

/* At most this many lines about damaged records a minute; the rest are counted and said in the
 * next minute's first line. */
#define DAMAGE_LINES_PER_MIN 10

void nops__record_warn_damaged(const char *id, const char *why)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static uint64_t window;
    static unsigned lines, suppressed;
    pthread_mutex_lock(&mu);
    const uint64_t now = nops_now_ns() / 60000000000ull;
    if (now != window) {
        if (suppressed)
            NOPS_WARN("orchestrate", "%u more damaged orchestration records were not logged",
                      suppressed);
        window = now;
        lines = suppressed = 0;
    }
    if (lines < DAMAGE_LINES_PER_MIN) {
        lines++;
        NOPS_WARN("orchestrate", "orchestration record %s is damaged: %s (listed as damaged; "
                  "no step is taken on it)", id, why);
    } else {
        suppressed++;
    }
    pthread_mutex_unlock(&mu);
}

/* ---- PostgreSQL ----------------------------------------------------------------------------- */

/* The store's statements (under s->mu). */
static PGresult *pg_exec(nops_records *s, const char *sql, int n, const char *const *v)
{
    return nops_pg_exec(s->pg, sql, n, v);
}

/* Columns every record query selects: id, state, record, created_at. */
#define PG_COLS                                                                                 \
    "SELECT id, state, record::text, "                                                          \
    "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') "             \
    "FROM orchestrations "
/* A row whose record is not the record of its id in its state. */
#define PG_DAMAGED                                                                              \
    "(jsonb_typeof(record) <> 'object' OR record->>'id' IS DISTINCT FROM id OR "                \
    "record->>'state' IS DISTINCT FROM state)"

/* Row i of a PG_COLS result: the record, or a damaged placeholder (logged). */
static json_t *pg_row(PGresult *r, int i)
{
    const char *id = PQgetvalue(r, i, 0), *state = PQgetvalue(r, i, 1);
    json_t *rec = json_loads(PQgetvalue(r, i, 2), 0, NULL);
    const char *why = !rec ? "its record is not JSON" : nops__record_damage(rec, id);
    const char *st = json_string_value(json_object_get(rec, "state"));
    char buf[200];
    if (!why && strcmp(st, state) != 0) {
        snprintf(buf, sizeof buf, "its state column (%.40s) and its record (%.40s) disagree",
                 state, st);
        why = buf;
    }
    if (!why)
        return rec;
    json_decref(rec);
    nops__record_warn_damaged(id, why);
    return nops__record_damaged(id, why, PQgetvalue(r, i, 3));
}

/* The rows of a PG_COLS query as records (new array), NULL when the query failed. */
static json_t *pg_rows(nops_records *s, const char *sql, int n, const char *const *v)
{
    PGresult *r = pg_exec(s, sql, n, v);
    json_t *out = r && PQresultStatus(r) == PGRES_TUPLES_OK ? json_array() : NULL;
    if (!out)
        NOPS_ERROR("orchestrate", "cannot read the orchestrations: %s", PQerrorMessage(s->pg));
    for (int i = 0; out && i < PQntuples(r); i++) {
        json_t *rec = pg_row(r, i);
        if (rec)
            json_array_append_new(out, rec);
    }
    PQclear(r);
    return out;
}

static nops_err save_pg(nops_records *s, json_t *rec, const char *id, const char *expect,
                        char *errstr, size_t errstr_size)
{
    char *text = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
    const char *pb = json_string_value(json_object_get(rec, "playbook_id"));
    const char *st = json_string_value(json_object_get(rec, "state"));
    const char *v[5] = {id, st ? st : "", pb ? pb : "", text, expect};
    if (!text) {
        nops_errf(errstr, errstr_size, "out of memory");
        return NOPS_NOMEM;
    }
    /* the compare-and-set also requires an intact row: a damaged one is never stepped on */
    PGresult *r =
        expect && !*expect /* create only: one suggestion per id across instances */
            ? pg_exec(s, "INSERT INTO orchestrations (id, state, playbook_id, record) "
                         "VALUES ($1, $2, $3, $4::jsonb) ON CONFLICT (id) DO NOTHING", 4, v)
        : expect ? pg_exec(s, "UPDATE orchestrations SET state = $2, playbook_id = $3, "
                            "record = $4::jsonb, updated_at = now() WHERE id = $1 AND state = $5 "
                            "AND NOT " PG_DAMAGED,
                         5, v)
               : pg_exec(s, "INSERT INTO orchestrations (id, state, playbook_id, record) "
                            "VALUES ($1, $2, $3, $4::jsonb) ON CONFLICT (id) DO UPDATE SET "
                            "state = $2, playbook_id = $3, record = $4::jsonb, "
                            "updated_at = now()",
                         4, v);
    free(text);
    nops_err e = NOPS_OK;
    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
        nops_errf(errstr, errstr_size, "orchestrations: PostgreSQL: %s", PQerrorMessage(s->pg));
        e = NOPS_IO;
    } else if (expect && !*expect && strcmp(PQcmdTuples(r), "1") != 0) {
        nops_errf(errstr, errstr_size, "orchestration %s exists already", id);
        e = NOPS_EXISTS;
    } else if (expect && strcmp(PQcmdTuples(r), "1") != 0) {
        nops_errf(errstr, errstr_size, "orchestration %s changed meanwhile (no longer %s)", id,
                  expect);
        e = NOPS_INVAL;
    }
    PQclear(r);
    return e;
}

static json_t *list_pg(nops_records *s, const char *state, size_t limit)
{
    char lim[24];
    snprintf(lim, sizeof lim, "%llu", /* bigint */
             (unsigned long long)(limit > (size_t)INT64_MAX ? (size_t)INT64_MAX : limit));
    const char *v[2] = {lim, state};
    if (state && strcmp(state, "damaged") == 0)
        return pg_rows(s, PG_COLS "WHERE " PG_DAMAGED " ORDER BY created_at DESC, id DESC "
                              "LIMIT $1::bigint", 1, v);
    json_t *out = state ? pg_rows(s, PG_COLS "WHERE state = $2 ORDER BY created_at DESC, "
                                             "id DESC LIMIT $1::bigint", 2, v)
                        : pg_rows(s, PG_COLS "ORDER BY created_at DESC, id DESC "
                                             "LIMIT $1::bigint", 1, v);
    size_t i = json_array_size(out);
    while (state && i-- > 0) /* a damaged row is listed as damaged, not in the state asked */
        if (strcmp(json_string_value(json_object_get(json_array_get(out, i), "state")),
                   state) != 0)
            json_array_remove(out, i);
    return out;
}

/* ---- the store ------------------------------------------------------------------------------ */

nops_records *nops__records_open(const char *dir, const char *pg_dsn, char *errstr,
                                 size_t errstr_size)
{
    static const char *schema_more =
        "CREATE INDEX IF NOT EXISTS orchestrations_created ON orchestrations (created_at, id);"
        "CREATE INDEX IF NOT EXISTS orchestrations_state_created ON orchestrations "
        "(state, created_at, id);"
        "CREATE TABLE IF NOT EXISTS orchestrate_state (key text PRIMARY KEY, value jsonb NOT "
        "NULL, mac text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());";
    nops_records *s = nops_calloc(1, sizeof *s);
    if (!s) {
        nops_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    bool ok;
    if (pg_dsn && *pg_dsn) {
        ok = (s->pg = nops_pg_open(pg_dsn, schema_sql, "orchestrations", errstr,
                                   errstr_size)) != NULL &&
             nops_pg_schema(s->pg, schema_more, "orchestrations", errstr, errstr_size);
    } else {
        ok = (s->files = nops__rfiles_open(dir, errstr, errstr_size)) != NULL;
    }
    if (!ok) {
        nops__records_close(s);
        return NULL;
    }
    return s;
}

void nops__records_close(nops_records *s)
{
    if (!s)
        return;
    PQfinish(s->pg);
    nops__rfiles_close(s->files);
    pthread_mutex_destroy(&s->mu);
    nops_free(s);
}

json_t *nops__records_load(nops_records *s, const char *id)
{
    if (!nops__record_id_valid(id))
        return NULL;
    pthread_mutex_lock(&s->mu);
    json_t *rec = NULL;
    if (s->files) {
        rec = nops__rfiles_load(s->files, id);
    } else {
        const char *v[1] = {id};
        json_t *rows = pg_rows(s, PG_COLS "WHERE id = $1", 1, v);
        rec = json_incref(json_array_get(rows, 0));
        json_decref(rows);
    }
    pthread_mutex_unlock(&s->mu);
    return rec;
}

nops_err nops__records_save(nops_records *s, json_t *rec, const char *expect_state,
                            char *errstr, size_t errstr_size)
{
    const char *id = json_string_value(json_object_get(rec, "id"));
    if (!nops__record_id_valid(id)) {
        nops_errf(errstr, errstr_size, "orchestrations: bad record id");
        return NOPS_INVAL;
    }
    pthread_mutex_lock(&s->mu);
    nops_err e = s->pg ? save_pg(s, rec, id, expect_state, errstr, errstr_size)
                       : nops__rfiles_save(s->files, rec, id, expect_state, errstr, errstr_size);
    pthread_mutex_unlock(&s->mu);
    return e;
}

json_t *nops__records_list(nops_records *s, const char *state, size_t limit)
{
    pthread_mutex_lock(&s->mu);
    json_t *out = s->pg ? list_pg(s, state, limit) : nops__rfiles_list(s->files, state, limit);
    pthread_mutex_unlock(&s->mu);
    return out;
}

long long nops__records_count_open(nops_records *s)
{
    long long n = -1;
    pthread_mutex_lock(&s->mu);
    if (s->files) {
        n = nops__rfiles_count_open(s->files);
    } else {
        char arr[128] = "{"; /* open_states as a PostgreSQL array literal */
        for (size_t i = 0; i < N_OPEN_STATES; i++)
            snprintf(arr + strlen(arr), sizeof arr - strlen(arr), "%s%s", open_states[i],
                     i + 1 < N_OPEN_STATES ? "," : "}");
        const char *v[1] = {arr};
        PGresult *r = pg_exec(s, "SELECT count(*) FROM orchestrations WHERE state = "
                                 "ANY ($1::text[])", 1, v);
        if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
            n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}

void nops__records_lock(nops_records *s, PGconn **pg, nops_rfiles **files)
{
    pthread_mutex_lock(&s->mu);
    *pg = s->pg;
    *files = s->files;
}

void nops__records_unlock(nops_records *s)
{
    pthread_mutex_unlock(&s->mu);
}

uint64_t nops__records_file_reads(nops_records *s)
{
    pthread_mutex_lock(&s->mu);
    uint64_t n = s->files ? nops__rfiles_reads(s->files) : 0;
    pthread_mutex_unlock(&s->mu);
    return n;
}

nops_err nops__records_add_run(nops_records *s, const char *history_jsonl, const json_t *row,
                               char *errstr, size_t errstr_size)
{
    nops_err e = NOPS_OK;
    char *text = json_dumps(row, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text) {
        nops_errf(errstr, errstr_size, "out of memory");
        return NOPS_NOMEM;
    }
    if (history_jsonl && *history_jsonl) {
        FILE *f = nops_file_fopen(history_jsonl, "a");
        if (!f || fprintf(f, "%s\n", text) < 0 || fflush(f) != 0) {
            nops_errf(errstr, errstr_size, "cannot append the run to %s: %s", history_jsonl,
                      strerror(errno));
            e = NOPS_IO;
        }
        if (f)
            fclose(f);
    }
    pthread_mutex_lock(&s->mu);
    if (s->pg) {
        const char *v[1] = {text};
        PGresult *r = pg_exec(s, "INSERT INTO workflow_runs SELECT * FROM "
                                 "json_populate_record(NULL::workflow_runs, $1::json)",
                              1, v);
        if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
            nops_errf(errstr, errstr_size, "workflow_runs: PostgreSQL: %s",
                      PQerrorMessage(s->pg));
            e = NOPS_IO;
        }
        PQclear(r);
    }
    pthread_mutex_unlock(&s->mu);
    free(text);
    return e;
}
