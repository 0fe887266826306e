/*
 * records_auto.c — what automation keeps in the record store besides the records: small named
 * state values (the pause, the ledger of automatic starts) and the last outcome of a playbook on
 * a target.
 *
 * A state value lives in PostgreSQL table orchestrate_state (key, value jsonb, mac) or in
 * STATE_DIR/_<key>.json ({"key","value","mac"}; "_" keeps it out of the records, whose ids are
 * [a-z0-9-]). Both are writable by others, so each value carries an HMAC under the engine key
 * (purpose "orchestrate-state") over `key` NUL canonical JSON of the value (compact, sorted
 * keys, ASCII escapes — values hold only strings, integers, booleans, arrays and objects, so
 * the text survives jsonb). The key is in the MAC: a value cannot be moved to another key.
 * A value that does not verify is reported as such (NOPS_PARSE) and the caller fails safe.
 * Not detected: an old value of the same key put back (a replay) or a value deleted; the audit
 * trail has every change.
 *
 * An update is a read-modify-write that holds across processes: on PostgreSQL inside one
 * transaction under an advisory lock on the key (statements run without nops_pg_exec's
 * reconnect, which would leave the transaction); files under the store's lock (one process per
 * state directory, as for the records).
 */
#include "orchestrate/orch_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATE_PURPOSE "orchestrate-state"
#define STATE_MAX (1u << 20) /* a state file past this is not ours */

/* The MAC text of (key, value): key NUL canonical JSON. NULL when out of memory. */
static char *mac_text(const char *key, const json_t *value, size_t *len)
{
    char *v = json_dumps(value, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII |
                                    JSON_ENCODE_ANY);
    size_t kn = strlen(key), vn = v ? strlen(v) : 0;
    char *t = v ? malloc(kn + 1 + vn + 1) : NULL;
    if (t) {
        memcpy(t, key, kn + 1);
        memcpy(t + kn + 1, v, vn + 1);
        *len = kn + 1 + vn;
    }
    free(v);
    return t;
}

static bool state_mac(const nops_secret *k, const char *key, const json_t *value,
                      char out[2 * NOPS_MAC_LEN + 1])
{
    size_t n = 0;
    char *t = mac_text(key, value, &n);
    if (!t)
        return false;
    nops_secret_mac_hex(k, STATE_PURPOSE, t, n, out);
    free(t);
    return true;
}

static bool state_verify(const nops_secret *k, const char *key, const json_t *value,
                         const char *mac)
{
    size_t n = 0;
    char *t = mac ? mac_text(key, value, &n) : NULL;
    bool ok = t && nops_secret_verify_hex(k, STATE_PURPOSE, t, n, mac);
    free(t);
    return ok;
}

/* ---- files --------------------------------------------------------------------------------- */

static void file_path(nops_rfiles *f, const char *key, char *out, size_t cap)
{
    snprintf(out, cap, "%s/_%s.json", nops__rfiles_dir(f), key);
}

static nops_err file_get(nops_rfiles *f, const nops_secret *k, const char *key, json_t **val,
                         char *errstr, size_t errstr_size)
{
    char path[700];
    file_path(f, key, path, sizeof path);
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT)
            return NOPS_NOTFOUND;
        nops_errf(errstr, errstr_size, "cannot read %s: %s", path, strerror(errno));
        return NOPS_IO;
    }
    json_error_t je;
    /* not JSON, too large, or unreadable: not a value this engine wrote (fails safe) */
    json_t *doc = S_ISREG(st.st_mode) && st.st_size <= (off_t)STATE_MAX
                      ? json_load_file(path, 0, &je) : NULL;
    json_t *v = json_object_get(doc, "value");
    const char *mac = json_string_value(json_object_get(doc, "mac"));
    const char *kk = json_string_value(json_object_get(doc, "key"));
    nops_err e = NOPS_OK;
    if (!v || !kk || strcmp(kk, key) != 0 || !state_verify(k, key, v, mac)) {
        nops_errf(errstr, errstr_size, "%s does not verify under the engine key (changed "
                  "outside the engine, or written under another key)", path);
        e = NOPS_PARSE;
    } else {
        *val = json_incref(v);
    }
    json_decref(doc);
    return e;
}

static nops_err file_put(nops_rfiles *f, const char *key, const json_t *value, const char *mac,
                         char *errstr, size_t errstr_size)
{
    char path[700];
    file_path(f, key, path, sizeof path);
    json_t *doc = json_pack("{s:s, s:O, s:s}", "key", key, "value", value, "mac", mac);
    char *text = doc ? json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    json_decref(doc);
    nops_err e = NOPS_OK;
    if (!text || nops_file_replace(path, text, strlen(text)) != 0) {
        nops_errf(errstr, errstr_size, "cannot write %s: %s", path,
                  text ? strerror(errno) : "out of memory");
        e = NOPS_IO;
    }
    free(text);
    return e;
}

/* ---- PostgreSQL ---------------------------------------------------------------------------- */

static nops_err pg_get(PGconn *pg, const nops_secret *k, const char *key, json_t **val,
                       char *errstr, size_t errstr_size)
{
    const char *v[1] = {key};
    PGresult *r = PQexecParams(pg, "SELECT value::text, mac FROM orchestrate_state WHERE key = $1",
                               1, NULL, v, NULL, NULL, 0);
    nops_err e = NOPS_OK;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        nops_errf(errstr, errstr_size, "orchestrate_state: PostgreSQL: %s", PQerrorMessage(pg));
        e = NOPS_IO;
    } else if (PQntuples(r) == 0) {
        e = NOPS_NOTFOUND;
    } else {
        json_t *value = json_loads(PQgetvalue(r, 0, 0), JSON_DECODE_ANY, NULL);
        if (!value || !state_verify(k, key, value, PQgetvalue(r, 0, 1))) {
            nops_errf(errstr, errstr_size, "orchestrate_state row %s does not verify under the "
                      "engine key (changed outside the engine, or written under another key)",
                      key);
            json_decref(value);
            e = NOPS_PARSE;
        } else {
            *val = value;
        }
    }
    PQclear(r);
    return e;
}

static nops_err pg_put(PGconn *pg, const char *key, const json_t *value, const char *mac,
                       char *errstr, size_t errstr_size)
{
    char *text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
    const char *v[3] = {key, text, mac};
    if (!text) {
        nops_errf(errstr, errstr_size, "out of memory");
        return NOPS_NOMEM;
    }
    PGresult *r = PQexecParams(pg, "INSERT INTO orchestrate_state (key, value, mac) VALUES ($1, "
                                   "$2::jsonb, $3) ON CONFLICT (key) DO UPDATE SET value = "
                                   "$2::jsonb, mac = $3, updated_at = now()",
                               3, NULL, v, NULL, NULL, 0);
    free(text);
    nops_err e = NOPS_OK;
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        nops_errf(errstr, errstr_size, "orchestrate_state: PostgreSQL: %s", PQerrorMessage(pg));
        e = NOPS_IO;
    }
    PQclear(r);
    return e;
}

static bool pg_simple(PGconn *pg, const char *sql, const char *key)
{
    const char *v[1] = {key};
    PGresult *r = PQexecParams(pg, sql, key ? 1 : 0, NULL, key ? v : NULL, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
    return ok;
}

/* ---- the state values ------------------------------------------------------------------------ */

nops_err nops__state_get(nops_records *s, const nops_secret *k, const char *key, json_t **val,
                         char *errstr, size_t errstr_size)
{
    PGconn *pg;
    nops_rfiles *f;
    *val = NULL;
    nops__records_lock(s, &pg, &f);
    if (pg && PQstatus(pg) != CONNECTION_OK)
        PQreset(pg);
    nops_err e = pg ? pg_get(pg, k, key, val, errstr, errstr_size)
                    : file_get(f, k, key, val, errstr, errstr_size);
    nops__records_unlock(s);
    return e;
}

nops_err nops__state_update(nops_records *s, const nops_secret *k, const char *key,
                            nops__state_fn fn, void *ctx, char *errstr, size_t errstr_size)
{
    PGconn *pg;
    nops_rfiles *f;
    nops__records_lock(s, &pg, &f);
    if (pg && PQstatus(pg) != CONNECTION_OK)
        PQreset(pg);
    if (pg && (!pg_simple(pg, "BEGIN", NULL) ||
               !pg_simple(pg, "SELECT pg_advisory_xact_lock(hashtext('orchestrate_state:' || "
                              "$1))", key))) {
        nops_errf(errstr, errstr_size, "orchestrate_state: PostgreSQL: %s", PQerrorMessage(pg));
        pg_simple(pg, "ROLLBACK", NULL);
        nops__records_unlock(s);
        return NOPS_IO;
    }
    json_t *cur = NULL;
    char why[512] = "";
    nops_err st = pg ? pg_get(pg, k, key, &cur, why, sizeof why)
                     : file_get(f, k, key, &cur, why, sizeof why);
    nops_err e = NOPS_OK;
    if (st == NOPS_IO) {
        nops_errf(errstr, errstr_size, "%s", why);
        e = NOPS_IO;
    } else {
        json_t *next = fn(ctx, cur, st);
        char mac[2 * NOPS_MAC_LEN + 1];
        if (next && !state_mac(k, key, next, mac)) {
            nops_errf(errstr, errstr_size, "out of memory");
            e = NOPS_NOMEM;
        } else if (next) {
            e = pg ? pg_put(pg, key, next, mac, errstr, errstr_size)
                   : file_put(f, key, next, mac, errstr, errstr_size);
        }
        json_decref(next);
    }
    json_decref(cur);
    if (pg && !pg_simple(pg, e == NOPS_OK ? "COMMIT" : "ROLLBACK", NULL) && e == NOPS_OK) {
        nops_errf(errstr, errstr_size, "orchestrate_state: PostgreSQL: %s", PQerrorMessage(pg));
        e = NOPS_IO;
    }
    nops__records_unlock(s);
    return e;
}

/* ---- the last run of a playbook on a target -------------------------------------------------- */

/* The target's label `name` in a record ("" when absent). */
static const char *label_of(json_t *rec, const char *name)
{
    const char *v = json_string_value(
        json_object_get(json_object_get(json_object_get(rec, "context"), "labels"), name));
    return v ? v : "";
}

static nops_err last_run_pg(PGconn *pg, const char *playbook, const char *service,
                            const char *host, char *state, size_t cap)
{
    const char *v[3] = {playbook, service, host};
    PGresult *r = PQexecParams(
        pg, "SELECT state FROM orchestrations WHERE playbook_id = $1 AND state IN ('executed', "
            "'failed', 'interrupted') AND coalesce(record->'context'->'labels'->>'service', '') "
            "= $2 AND coalesce(record->'context'->'labels'->>'host', '') = $3 "
            "ORDER BY record->>'updated_at' DESC, updated_at DESC LIMIT 1",
        3, NULL, v, NULL, NULL, 0);
    nops_err e = PQresultStatus(r) == PGRES_TUPLES_OK ? NOPS_OK : NOPS_IO;
    if (e == NOPS_IO)
        NOPS_ERROR("orchestrate", "cannot read the last runs: %s", PQerrorMessage(pg));
    else if (PQntuples(r) == 1)
        snprintf(state, cap, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return e;
}

nops_err nops__records_last_run(nops_records *s, const char *playbook, const char *service,
                                const char *host, char *state, size_t cap)
{
    static const char *const ends[] = {"executed", "failed", "interrupted"};
    PGconn *pg;
    nops_rfiles *f;
    state[0] = '\0';
    nops__records_lock(s, &pg, &f);
    if (pg) {
        if (PQstatus(pg) != CONNECTION_OK)
            PQreset(pg);
        nops_err e = last_run_pg(pg, playbook, service, host, state, cap);
        nops__records_unlock(s);
        return e;
    }
    char newest[40] = "";
    nops_err e = NOPS_OK;
    for (size_t i = 0; i < 3 && e == NOPS_OK; i++) {
        json_t *recs = nops__rfiles_list(f, ends[i], SIZE_MAX), *rec;
        size_t j;
        if (!recs)
            e = NOPS_IO;
        json_array_foreach(recs, j, rec) {
            const char *pb = json_string_value(json_object_get(rec, "playbook_id"));
            const char *at = json_string_value(json_object_get(rec, "updated_at"));
            if (!pb || !at || strcmp(pb, playbook) != 0 ||
                strcmp(label_of(rec, "service"), service) != 0 ||
                strcmp(label_of(rec, "host"), host) != 0 || strcmp(at, newest) <= 0)
                continue;
            snprintf(newest, sizeof newest, "%s", at);
            snprintf(state, cap, "%s", ends[i]);
        }
        json_decref(recs);
    }
    nops__records_unlock(s);
    return e;
}
