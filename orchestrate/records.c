/*
 * records.c — where orchestration records live: JSON files in a state directory (written aside
 * and renamed) or, with a PostgreSQL DSN, rows of table `orchestrations` whose state column makes
 * every transition a compare-and-set, so two processes cannot both take the same step. The
 * workflow_runs rows an execution produces go to the history JSONL and to PostgreSQL.
 */
#include "orchestrate/orch_int.h"

#include <dirent.h>
#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
    char dir[512];
    PGconn *pg;          /* NULL: the file store */
    pthread_mutex_t mu;  /* one statement at a time on pg; file compare-and-set */
};

static bool valid_id(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > 40)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= '0' && id[i] <= '9') || id[i] == '-'))
            return false;
    return true;
}

PGresult *nops__pg_exec(PGconn *c, const char *sql, int n, const char *const *params)
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

/* The store's statements (under s->mu). */
static PGresult *pg_exec(nops_records *s, const char *sql, int n, const char *const *v)
{
    return nops__pg_exec(s->pg, sql, n, v);
}

PGconn *nops__pg_open(const char *dsn, const char *schema, const char *what, char *errstr,
                      size_t errstr_size)
{
    PGconn *c = PQconnectdb(dsn);
    PGresult *r = NULL;
    if (PQstatus(c) == CONNECTION_OK) {
        PQclear(PQexec(c, "SET client_min_messages = warning"));
        r = PQexec(c, schema);
    }
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        nops_errf(errstr, errstr_size, "%s: PostgreSQL: %s", what, PQerrorMessage(c));
    PQclear(r);
    if (!ok) {
        PQfinish(c);
        return NULL;
    }
    return c;
}

nops_records *nops__records_open(const char *dir, const char *pg_dsn, char *errstr,
                                 size_t errstr_size)
{
    nops_records *s = nops_calloc(1, sizeof *s);
    if (!s) {
        nops_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    snprintf(s->dir, sizeof s->dir, "%s", dir ? dir : "");
    if (pg_dsn && *pg_dsn) {
        if (!(s->pg = nops__pg_open(pg_dsn, schema_sql, "orchestrations", errstr,
                                    errstr_size))) {
            nops__records_close(s);
            return NULL;
        }
    } else if (mkdir(s->dir, 0750) != 0 && errno != EEXIST) {
        nops_errf(errstr, errstr_size, "orchestrations: cannot create %s: %s", s->dir,
                  strerror(errno));
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
    pthread_mutex_destroy(&s->mu);
    nops_free(s);
}

static json_t *load_locked(nops_records *s, const char *id)
{
    if (!valid_id(id))
        return NULL;
    if (!s->pg) {
        char path[700];
        snprintf(path, sizeof path, "%s/%s.json", s->dir, id);
        return json_load_file(path, 0, NULL);
    }
    const char *v[1] = {id};
    PGresult *r = pg_exec(s, "SELECT record::text FROM orchestrations WHERE id = $1", 1, v);
    json_t *rec = r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1
                      ? json_loads(PQgetvalue(r, 0, 0), 0, NULL)
                      : NULL;
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        NOPS_ERROR("orchestrate", "cannot read orchestration %s: %s", id, PQerrorMessage(s->pg));
    PQclear(r);
    return rec;
}

json_t *nops__records_load(nops_records *s, const char *id)
{
    pthread_mutex_lock(&s->mu);
    json_t *rec = load_locked(s, id);
    pthread_mutex_unlock(&s->mu);
    return rec;
}

static const char *state_of(const json_t *rec)
{
    const char *st = json_string_value(json_object_get(rec, "state"));
    return st ? st : "";
}

static nops_err save_file(nops_records *s, json_t *rec, const char *id, const char *expect,
                          char *errstr, size_t errstr_size)
{
    if (expect) {
        json_t *cur = load_locked(s, id);
        bool same = cur && strcmp(state_of(cur), expect) == 0;
        if (!same)
            nops_errf(errstr, errstr_size, "orchestration %s changed meanwhile (now %s)", id,
                      cur ? state_of(cur) : "gone");
        json_decref(cur);
        if (!same)
            return NOPS_INVAL;
    }
    char path[700], tmp[720];
    snprintf(path, sizeof path, "%s/%s.json", s->dir, id);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (json_dump_file(rec, tmp, JSON_INDENT(2) | JSON_SORT_KEYS) != 0 || rename(tmp, path) != 0) {
        nops_errf(errstr, errstr_size, "orchestrations: cannot write %s", path);
        return NOPS_IO;
    }
    return NOPS_OK;
}

static nops_err save_pg(nops_records *s, json_t *rec, const char *id, const char *expect,
                        char *errstr, size_t errstr_size)
{
    char *text = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
    const char *pb = json_string_value(json_object_get(rec, "playbook_id"));
    const char *v[5] = {id, state_of(rec), pb ? pb : "", text, expect};
    PGresult *r =
        expect ? pg_exec(s, "UPDATE orchestrations SET state = $2, playbook_id = $3, "
                            "record = $4::jsonb, updated_at = now() WHERE id = $1 AND state = $5",
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
    } else if (expect && strcmp(PQcmdTuples(r), "1") != 0) {
        nops_errf(errstr, errstr_size, "orchestration %s changed meanwhile (no longer %s)", id,
                  expect);
        e = NOPS_INVAL;
    }
    PQclear(r);
    return e;
}

nops_err nops__records_save(nops_records *s, json_t *rec, const char *expect_state,
                            char *errstr, size_t errstr_size)
{
    const char *id = json_string_value(json_object_get(rec, "id"));
    if (!valid_id(id)) {
        nops_errf(errstr, errstr_size, "orchestrations: bad record id");
        return NOPS_INVAL;
    }
    pthread_mutex_lock(&s->mu);
    nops_err e = s->pg ? save_pg(s, rec, id, expect_state, errstr, errstr_size)
                       : save_file(s, rec, id, expect_state, errstr, errstr_size);
    pthread_mutex_unlock(&s->mu);
    return e;
}

static int newest_first(const void *a, const void *b)
{
    const char *x = json_string_value(json_object_get(*(json_t *const *)a, "created_at"));
    const char *y = json_string_value(json_object_get(*(json_t *const *)b, "created_at"));
    return strcmp(y ? y : "", x ? x : "");
}

json_t *nops__records_list(nops_records *s, const char *state, size_t limit)
{
    json_t *out = json_array();
    pthread_mutex_lock(&s->mu);
    if (s->pg) {
        char lim[24];
        snprintf(lim, sizeof lim, "%llu", /* bigint */
                 (unsigned long long)(limit > (size_t)INT64_MAX ? (size_t)INT64_MAX : limit));
        const char *v[2] = {lim, state};
        PGresult *r = pg_exec(s, state ? "SELECT record::text FROM orchestrations WHERE state = $2 "
                                         "ORDER BY record->>'created_at' DESC LIMIT $1::bigint"
                                       : "SELECT record::text FROM orchestrations "
                                         "ORDER BY record->>'created_at' DESC LIMIT $1::bigint",
                              state ? 2 : 1, v);
        if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
            json_decref(out);
            out = NULL;
        }
        for (int i = 0; out && i < PQntuples(r); i++) {
            json_t *rec = json_loads(PQgetvalue(r, i, 0), 0, NULL);
            if (rec)
                json_array_append_new(out, rec);
        }
        PQclear(r);
        pthread_mutex_unlock(&s->mu);
        return out;
    }
    DIR *d = opendir(s->dir);
    struct dirent *de;
    size_t n = 0, cap = 0;
    json_t **all = NULL;
    while (d && (de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len < 6 || len > 45 || strcmp(de->d_name + len - 5, ".json") != 0)
            continue;
        char id[48];
        snprintf(id, sizeof id, "%.*s", (int)(len - 5), de->d_name);
        json_t *rec = load_locked(s, id);
        if (!rec || (state && strcmp(state_of(rec), state) != 0)) {
            json_decref(rec);
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            json_t **grown = realloc(all, cap * sizeof *all);
            if (!grown) {
                json_decref(rec);
                break;
            }
            all = grown;
        }
        all[n++] = rec;
    }
    if (d)
        closedir(d);
    pthread_mutex_unlock(&s->mu);
    if (n)
        qsort(all, n, sizeof *all, newest_first);
    for (size_t i = 0; i < n; i++) {
        if (i < limit)
            json_array_append(out, all[i]);
        json_decref(all[i]);
    }
    free(all);
    if (!d) {
        json_decref(out);
        return NULL;
    }
    return out;
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
        FILE *f = fopen(history_jsonl, "a");
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
