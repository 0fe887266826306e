/*
 * audit.c — the tamper-evident audit trail of orchestrate.h: a SHA-256 hash chain in JSONL and,
 * optionally, in PostgreSQL audit_logs (UPDATE and DELETE refused by a trigger).
 */
#include "orchestrate/orch_int.h"

#include <errno.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"

static const char *schema_sql =
    "CREATE TABLE IF NOT EXISTS audit_logs ("
    " seq bigint PRIMARY KEY, ts text NOT NULL, actor text NOT NULL, action text NOT NULL,"
    " subject text NOT NULL, decision text NOT NULL, details json NOT NULL,"
    " prev_hash text NOT NULL, hash text NOT NULL);"
    "CREATE OR REPLACE FUNCTION audit_logs_append_only() RETURNS trigger AS $$"
    " BEGIN RAISE EXCEPTION 'audit_logs is append-only: % refused', TG_OP; END $$"
    " LANGUAGE plpgsql;"
    "DROP TRIGGER IF EXISTS audit_logs_append_only ON audit_logs;"
    "CREATE TRIGGER audit_logs_append_only BEFORE UPDATE OR DELETE ON audit_logs"
    " FOR EACH ROW EXECUTE FUNCTION audit_logs_append_only();";

struct nops_audit {
    pthread_mutex_t mu;
    FILE *f;
    PGconn *pg;
    uint64_t seq;        /* last seq written */
    char prev[65];       /* its hash */
    long *off;           /* file offset of each line (entry seq k at off[k-1]) */
    size_t noff, capoff;
};

static bool push_off(nops_audit *a, long at)
{
    if (a->noff == a->capoff) {
        size_t cap = a->capoff ? a->capoff * 2 : 1024;
        long *n = realloc(a->off, cap * sizeof *n);
        if (!n)
            return false;
        a->off = n;
        a->capoff = cap;
    }
    a->off[a->noff++] = at;
    return true;
}

/* hex SHA-256 of prev ‖ canonical JSON of `e` (without "hash"). */
static bool entry_hash(const char *prev, json_t *e, char out[65])
{
    json_t *copy = json_copy(e);
    json_object_del(copy, "hash");
    char *canon = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    json_decref(copy);
    if (!canon)
        return false;
    unsigned char md[32];
    unsigned int n = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    bool ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) &&
              EVP_DigestUpdate(c, prev, strlen(prev)) &&
              EVP_DigestUpdate(c, canon, strlen(canon)) && EVP_DigestFinal_ex(c, md, &n);
    EVP_MD_CTX_free(c);
    free(canon);
    for (unsigned i = 0; ok && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return ok;
}

/* ---- checking one entry against the chain ------------------------------------------------ */

static const char *fields[] = {"seq", "ts", "actor", "action", "subject", "decision",
                               "details", "prev_hash", "hash"};

/* Whether entry `e` (the k-th, 1-based) follows `prev`; *why says what is wrong. */
static bool check_entry(json_t *e, uint64_t k, const char *prev, char *why, size_t why_size)
{
    if (!json_is_object(e) || json_object_size(e) != 9) {
        snprintf(why, why_size, "not an audit entry (nine fields expected)");
        return false;
    }
    for (size_t i = 0; i < 9; i++)
        if (!json_object_get(e, fields[i])) {
            snprintf(why, why_size, "field \"%s\" is missing", fields[i]);
            return false;
        }
    if (json_integer_value(json_object_get(e, "seq")) != (json_int_t)k) {
        snprintf(why, why_size, "seq %lld where %llu was due (an entry was removed, added or "
                 "moved)", (long long)json_integer_value(json_object_get(e, "seq")),
                 (unsigned long long)k);
        return false;
    }
    const char *ph = json_string_value(json_object_get(e, "prev_hash"));
    if (!ph || strcmp(ph, prev) != 0) {
        snprintf(why, why_size, "prev_hash does not match the hash of entry %llu",
                 (unsigned long long)(k - 1));
        return false;
    }
    char h[65];
    const char *stored = json_string_value(json_object_get(e, "hash"));
    if (!entry_hash(prev, e, h) || !stored || strcmp(h, stored) != 0) {
        snprintf(why, why_size, "hash does not match the entry's content (a field was changed)");
        return false;
    }
    return true;
}

/* Write all of buf to fd (retrying short writes and EINTR). */
static bool write_all(int fd, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, buf, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        buf += w;
        n -= (size_t)w;
    }
    return true;
}

/* ---- opening and appending ------------------------------------------------------------- */

/* Index the lines of the file; the last non-empty one into buf. */
static bool index_lines(nops_audit *a, char *buf, size_t cap)
{
    char *line = NULL;
    size_t lcap = 0;
    bool any = false;
    ssize_t n;
    rewind(a->f);
    long at = 0;
    while ((n = getline(&line, &lcap, a->f)) > 0) {
        if (n > 1) {
            snprintf(buf, cap, "%s", line);
            any = true;
            push_off(a, at);
        }
        at += (long)n;
    }
    free(line);
    fseek(a->f, 0, SEEK_END);
    return any;
}

nops_audit *nops_audit_open(const char *path, const char *pg_dsn, char *errstr,
                            size_t errstr_size)
{
    nops_audit *a = nops_calloc(1, sizeof *a);
    if (!a) {
        nops_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&a->mu, NULL);
    snprintf(a->prev, sizeof a->prev, ZERO_HASH);
    if (!(a->f = fopen(path, "a+"))) {
        nops_errf(errstr, errstr_size, "audit: cannot open %s: %s", path, strerror(errno));
        nops_audit_close(a);
        return NULL;
    }
    static char last[1 << 16];
    if (index_lines(a, last, sizeof last)) {
        json_t *e = json_loads(last, 0, NULL);
        const char *h = json_string_value(json_object_get(e, "hash"));
        json_int_t seq = json_integer_value(json_object_get(e, "seq"));
        if (!h || strlen(h) != 64 || seq < 1) {
            nops_errf(errstr, errstr_size, "audit: the last line of %s is not a chain entry "
                      "(check it with neuralops audit verify)", path);
            json_decref(e);
            nops_audit_close(a);
            return NULL;
        }
        snprintf(a->prev, sizeof a->prev, "%s", h);
        a->seq = (uint64_t)seq;
        json_decref(e);
    }
    if (pg_dsn && *pg_dsn &&
        !(a->pg = nops__pg_open(pg_dsn, schema_sql, "audit", errstr, errstr_size))) {
        nops_audit_close(a);
        return NULL;
    }
    return a;
}

void nops_audit_close(nops_audit *a)
{
    if (!a)
        return;
    if (a->f)
        fclose(a->f);
    PQfinish(a->pg);
    free(a->off);
    pthread_mutex_destroy(&a->mu);
    nops_free(a);
}

static bool pg_insert(nops_audit *a, json_t *e, char *errstr, size_t errstr_size)
{
    char seq[24];
    snprintf(seq, sizeof seq, "%llu", (unsigned long long)json_integer_value(
                                          json_object_get(e, "seq")));
    char *details = json_dumps(json_object_get(e, "details"),
                               JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    const char *v[9] = {seq, json_string_value(json_object_get(e, "ts")),
                        json_string_value(json_object_get(e, "actor")),
                        json_string_value(json_object_get(e, "action")),
                        json_string_value(json_object_get(e, "subject")),
                        json_string_value(json_object_get(e, "decision")), details,
                        json_string_value(json_object_get(e, "prev_hash")),
                        json_string_value(json_object_get(e, "hash"))};
    PGresult *r = nops__pg_exec(a->pg,
                                "INSERT INTO audit_logs (seq, ts, actor, action, subject, "
                                "decision, details, prev_hash, hash) VALUES "
                                "($1::bigint, $2, $3, $4, $5, $6, $7::json, $8, $9)",
                                9, v);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        nops_errf(errstr, errstr_size, "audit: PostgreSQL: %s", PQerrorMessage(a->pg));
    PQclear(r);
    free(details);
    return ok;
}

nops_err nops_audit_append(nops_audit *a, const char *actor, const char *action,
                           const char *subject, const char *decision, const json_t *details,
                           uint64_t *seq, char *errstr, size_t errstr_size)
{
    char ts[40];
    nops_format_ts(nops_wall_ns(), ts, sizeof ts);
    pthread_mutex_lock(&a->mu);
    json_t *e = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:o, s:s}", "seq",
                          (json_int_t)(a->seq + 1), "ts", ts, "actor", actor ? actor : "",
                          "action", action ? action : "", "subject", subject ? subject : "",
                          "decision", decision ? decision : "", "details",
                          details ? json_incref((json_t *)details) : json_object(), "prev_hash",
                          a->prev);
    char h[65];
    nops_err err = NOPS_IO;
    if (!e || !entry_hash(a->prev, e, h)) {
        nops_errf(errstr, errstr_size, "audit: out of memory");
        err = NOPS_NOMEM;
    } else {
        json_object_set_new(e, "hash", json_string(h));
        char *text = json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
        char *line = text ? realloc(text, strlen(text) + 2) : NULL;
        if (line)
            strcat(line, "\n");
        else
            free(text);
        /* write(2) on the O_APPEND descriptor, not stdio: a failed write leaves nothing
         * buffered to come out later, and whatever part reached the file is cut off again */
        const int fd = fileno(a->f);
        const off_t at = lseek(fd, 0, SEEK_END);
        bool ok = line && at >= 0 && write_all(fd, line, strlen(line)) && fsync(fd) == 0;
        if (!ok)
            nops_errf(errstr, errstr_size, "audit: cannot write the log: %s", strerror(errno));
        if (ok && a->pg && !pg_insert(a, e, errstr, errstr_size))
            ok = false; /* keep file and database in step: the line is taken back below */
        if (ok && !push_off(a, (long)at)) {
            ok = false;
            nops_errf(errstr, errstr_size, "audit: out of memory");
        }
        if (!ok && at >= 0 && ftruncate(fd, at) != 0)
            NOPS_ERROR("audit", "cannot take back a partly written or refused line: %s",
                       strerror(errno));
        free(line);
        if (ok) {
            a->seq++;
            snprintf(a->prev, sizeof a->prev, "%s", h);
            if (seq)
                *seq = a->seq;
            err = NOPS_OK;
        }
    }
    json_decref(e);
    pthread_mutex_unlock(&a->mu);
    return err;
}

/* ---- reading a page ------------------------------------------------------------------------- */

static bool matches(json_t *e, const char *field, const char *want)
{
    const char *v = json_string_value(json_object_get(e, field));
    return !want || (v && strcmp(v, want) == 0);
}

nops_err nops_audit_page(nops_audit *a, const nops_audit_query *q, json_t **out, char *errstr,
                         size_t errstr_size)
{
    *out = NULL;
    json_t *entries = json_array();
    size_t limit = q->limit < 1 ? 1 : q->limit > 1000 ? 1000 : q->limit;
    char *line = NULL;
    size_t lcap = 0, scanned = 0;
    nops_err err = NOPS_OK;
    pthread_mutex_lock(&a->mu);
    size_t i = q->after < a->noff ? (size_t)q->after : a->noff;
    for (; i < a->noff && json_array_size(entries) < limit && scanned < 100000; i++, scanned++) {
        if (fseek(a->f, a->off[i], SEEK_SET) != 0 || getline(&line, &lcap, a->f) <= 0) {
            nops_errf(errstr, errstr_size, "audit: cannot read entry %zu", i + 1);
            err = NOPS_IO;
            break;
        }
        json_t *e = json_loads(line, 0, NULL);
        if (!e) {
            nops_errf(errstr, errstr_size, "audit: entry %zu is not JSON (run neuralops audit "
                      "verify)", i + 1);
            err = NOPS_PARSE;
            break;
        }
        if (matches(e, "actor", q->actor) && matches(e, "action", q->action) &&
            matches(e, "subject", q->subject))
            json_array_append(entries, e);
        json_decref(e);
    }
    const size_t total = a->noff;
    fseek(a->f, 0, SEEK_END);
    pthread_mutex_unlock(&a->mu);
    free(line);
    if (err != NOPS_OK) {
        json_decref(entries);
        return err;
    }
    *out = json_pack("{s:o, s:o, s:I}", "entries", entries, "next",
                     i < total ? json_integer((json_int_t)i) : json_null(), "total",
                     (json_int_t)total);
    return NOPS_OK;
}

/* ---- verification ------------------------------------------------------------------------- */

nops_err nops_audit_verify_file(const char *path, nops_audit_report *r)
{
    memset(r, 0, sizeof *r);
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(r->why, sizeof r->why, "cannot read %s: %s", path, strerror(errno));
        return NOPS_IO;
    }
    char prev[65] = ZERO_HASH, *line = NULL;
    size_t cap = 0;
    ssize_t n;
    nops_err e = NOPS_OK;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (n == 1 && line[0] == '\n') {
            snprintf(r->why, sizeof r->why, "an empty line (a removed entry?)");
            r->first_bad = r->entries + 1;
            e = NOPS_PARSE;
            break;
        }
        r->entries++;
        json_t *ent = json_loads(line, 0, NULL);
        if (!ent || !check_entry(ent, r->entries, prev, r->why, sizeof r->why)) {
            if (!ent)
                snprintf(r->why, sizeof r->why, "not JSON");
            r->first_bad = r->entries;
            json_decref(ent);
            e = NOPS_PARSE;
            break;
        }
        snprintf(prev, sizeof prev, "%s", json_string_value(json_object_get(ent, "hash")));
        json_decref(ent);
    }
    free(line);
    fclose(f);
    return e;
}

nops_err nops_audit_verify_pg(const char *dsn, nops_audit_report *r, char *errstr,
                              size_t errstr_size)
{
    memset(r, 0, sizeof *r);
    PGconn *c = PQconnectdb(dsn);
    PGresult *res = NULL;
    nops_err e = NOPS_IO;
    if (PQstatus(c) != CONNECTION_OK ||
        PQresultStatus(res = PQexec(c, "SELECT seq, ts, actor, action, subject, decision, "
                                       "details::text, prev_hash, hash FROM audit_logs "
                                       "ORDER BY seq")) != PGRES_TUPLES_OK) {
        nops_errf(errstr, errstr_size, "audit: PostgreSQL: %s", PQerrorMessage(c));
        goto out;
    }
    char prev[65] = ZERO_HASH;
    e = NOPS_OK;
    for (int i = 0; i < PQntuples(res) && e == NOPS_OK; i++) {
        r->entries++;
        json_t *details = json_loads(PQgetvalue(res, i, 6), 0, NULL);
        json_t *ent = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s}", "seq",
                                (json_int_t)atoll(PQgetvalue(res, i, 0)), "ts",
                                PQgetvalue(res, i, 1), "actor", PQgetvalue(res, i, 2), "action",
                                PQgetvalue(res, i, 3), "subject", PQgetvalue(res, i, 4),
                                "decision", PQgetvalue(res, i, 5), "details",
                                details ? details : json_null(), "prev_hash",
                                PQgetvalue(res, i, 7), "hash", PQgetvalue(res, i, 8));
        if (!ent || !check_entry(ent, r->entries, prev, r->why, sizeof r->why)) {
            r->first_bad = r->entries;
            e = NOPS_PARSE;
        } else {
            snprintf(prev, sizeof prev, "%s", PQgetvalue(res, i, 8));
        }
        json_decref(ent);
    }
out:
    PQclear(res);
    PQfinish(c);
    return e;
}
