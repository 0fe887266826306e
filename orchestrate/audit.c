/*
 * audit.c — the tamper-evident audit trail of orchestrate.h: opening it (and checking that it
 * was not cut short or rewritten since the last start), appending, and reading pages.
 *
 * The chain is keyed (audit_chain.c) and its end is remembered outside the data dir and, with
 * PostgreSQL, in table audit_logs too (audit_head.c). A start that finds the file, the table
 * and the head record disagreeing refuses to continue the chain: nops_audit_open fails with a
 * sentence that says what was found, and the orchestration flow stays off until an operator
 * looks (docs/security-audit.md).
 */
#include "orchestrate/audit_int.h"

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    FILE *f;                 /* the JSONL file, read-write, O_APPEND, close-on-exec */
    PGconn *pg;              /* audit_logs, or NULL */
    const nops_secret *key;  /* the engine key (borrowed) */
    bool keep_head;          /* a head record is kept (head_dir given) */
    nops__audit_head head;   /* which one */
    uint64_t seq;            /* last seq written */
    char prev[65];           /* its hash */
    long *off;               /* file offset of each line (entry seq k at off[k-1]) */
    size_t noff, capoff;
    json_t *started;         /* subject → array of the seqs of its "execute"/"started" entries
                                that no "not-recorded" entry withdrew, from entries verified
                                at open and appended since (nops_audit_started) */
};

/*
 * Keep a->started up to date with entry `e`. A claim of an execution is audited before it is
 * stored (orchestrator.c commit_step); when the store then refuses it, a "not-recorded" entry
 * naming the claim's seq ("withdraws") follows, and that claim no longer counts as a start: the
 * record is still approved and a retry may run it. An outcome that could not be stored is a
 * "not-recorded" entry without "withdraws": its start stands.
 */
static void note_started(nops_audit *a, const json_t *e)
{
    const char *act = json_string_value(json_object_get(e, "action"));
    const char *dec = json_string_value(json_object_get(e, "decision"));
    const char *sub = json_string_value(json_object_get(e, "subject"));
    if (!act || !dec || !sub || strcmp(act, "execute") != 0)
        return;
    json_t *seqs = json_object_get(a->started, sub);
    if (strcmp(dec, "started") == 0) {
        if (!seqs && json_object_set_new(a->started, sub, seqs = json_array()) != 0)
            return;
        json_array_append(seqs, json_object_get(e, "seq"));
        return;
    }
    json_t *w = json_object_get(json_object_get(e, "details"), "withdraws");
    if (strcmp(dec, "not-recorded") != 0 || !json_is_integer(w) || !seqs)
        return;
    for (size_t i = 0; i < json_array_size(seqs); i++)
        if (json_integer_value(json_array_get(seqs, i)) == json_integer_value(w)) {
            json_array_remove(seqs, i);
            break;
        }
    if (json_array_size(seqs) == 0)
        json_object_del(a->started, sub);
}

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

/* Entry k (1-based) of the file as JSON (new reference), NULL when unreadable or not JSON. */
static json_t *read_entry(nops_audit *a, uint64_t k)
{
    if (k < 1 || k > a->noff || fseek(a->f, a->off[k - 1], SEEK_SET) != 0)
        return NULL;
    char *line = NULL;
    size_t cap = 0;
    json_t *e = getline(&line, &cap, a->f) > 0 ? json_loads(line, 0, NULL) : NULL;
    free(line);
    fseek(a->f, 0, SEEK_END);
    return e;
}

/* The hash entry k of the file states into out (k = 0: the zeros before entry 1); false when
 * there is no such entry. */
static bool hash_at(nops_audit *a, uint64_t k, char out[65])
{
    if (k == 0) {
        snprintf(out, 65, "%s", NOPS__AUDIT_ZERO_HASH);
        return true;
    }
    json_t *e = read_entry(a, k);
    const char *h = json_string_value(json_object_get(e, "hash"));
    if (h)
        snprintf(out, 65, "%s", h);
    json_decref(e);
    return h != NULL;
}

/* Check entries from+1..noff against the walk `w` (positioned after entry `from`); with
 * `index`, remember the executions they record as started. */
static bool walk_file(nops_audit *a, nops__audit_walk *w, bool index, char *why, size_t why_size)
{
    for (uint64_t k = w->n + 1; k <= a->noff; k++) {
        json_t *e = read_entry(a, k);
        bool ok = e && nops__audit_walk_step(w, e, why, why_size);
        if (!e)
            snprintf(why, why_size, "entry %llu is not JSON", (unsigned long long)k);
        if (ok && index)
            note_started(a, e);
        json_decref(e);
        if (!ok)
            return false;
    }
    return true;
}

/* ---- appending ------------------------------------------------------------------------------ */

/* Insert entry `e` into audit_logs. Outside a transaction (`in_tx` false) a lost connection is
 * retried once (nops_pg_exec); inside one it is not: a reconnect would run the INSERT outside
 * the transaction. */
static bool pg_insert(nops_audit *a, json_t *e, bool in_tx, char *errstr, size_t errstr_size)
{
    char seq[24];
    snprintf(seq, sizeof seq, "%llu", (unsigned long long)json_integer_value(
                                          json_object_get(e, "seq")));
    char *details = json_dumps(json_object_get(e, "details"),
                               JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    const char *hash = json_string_value(json_object_get(e, "hash"));
    const char *v[9] = {seq, json_string_value(json_object_get(e, "ts")),
                        json_string_value(json_object_get(e, "actor")),
                        json_string_value(json_object_get(e, "action")),
                        json_string_value(json_object_get(e, "subject")),
                        json_string_value(json_object_get(e, "decision")), details,
                        json_string_value(json_object_get(e, "prev_hash")), hash};
    static const char *sql = "INSERT INTO audit_logs (seq, ts, actor, action, subject, "
                             "decision, details, prev_hash, hash) VALUES "
                             "($1::bigint, $2, $3, $4, $5, $6, $7::json, $8, $9)";
    PGresult *r = in_tx ? PQexecParams(a->pg, sql, 9, NULL, v, NULL, NULL, 0)
                        : nops_pg_exec(a->pg, sql, 9, v);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (!ok && !in_tx && state && strcmp(state, "23505") == 0) {
        /* the row is there: the INSERT committed but its answer was lost with the connection
         * and nops_pg_exec ran it again; it counts when it is this very entry */
        PQclear(r);
        r = nops_pg_exec(a->pg, "SELECT hash FROM audit_logs WHERE seq = $1::bigint", 1, v);
        ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && hash &&
             strcmp(PQgetvalue(r, 0, 0), hash) == 0;
        if (!ok)
            nops_errf(errstr, errstr_size, "audit: PostgreSQL audit_logs already holds a "
                      "different entry %s", seq);
    } else if (!ok) {
        nops_errf(errstr, errstr_size, "audit: PostgreSQL: %s", PQerrorMessage(a->pg));
    }
    PQclear(r);
    free(details);
    return ok;
}

/* Remember the new end in the head record. A failure does not take the entry back (it is in the
 * file and the table already): it is logged and counted, and the next append tries again. */
static void update_head(nops_audit *a)
{
    if (!a->keep_head)
        return;
    nops__audit_pos at = {.seq = a->seq};
    snprintf(at.hash, sizeof at.hash, "%s", a->prev);
    if (nops__audit_head_write(&a->head, a->key, &at, a->pg != NULL) != 0) {
        atomic_fetch_add(&nops__audit_alarms, 1);
        NOPS_ERROR("audit", "cannot update the head record %s: %s; until it is written again, "
                   "cutting entries after seq %llu off the trail would go unnoticed",
                   a->head.file, strerror(errno), (unsigned long long)a->seq);
    }
}

/* The entry as one line (malloc'ed, ends in a newline); NULL when out of memory. */
static char *entry_line(json_t *e)
{
    char *text = json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    char *line = text ? realloc(text, strlen(text) + 2) : NULL;
    if (line)
        strcat(line, "\n");
    else
        free(text);
    return line;
}

/* Append under a->mu (or before anyone else can see `a`). */
static nops_err append_locked(nops_audit *a, const char *actor, const char *action,
                              const char *subject, const char *decision, const json_t *details,
                              uint64_t *seq, char *errstr, size_t errstr_size)
{
    char ts[40], h[65];
    nops_format_ts(nops_wall_ns(), ts, sizeof ts);
    json_t *e = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:o, s:s}", "seq",
                          (json_int_t)(a->seq + 1), "ts", ts, "actor", actor ? actor : "",
                          "action", action ? action : "", "subject", subject ? subject : "",
                          "decision", decision ? decision : "", "details",
                          details ? json_incref((json_t *)details) : json_object(), "prev_hash",
                          a->prev);
    char *line = NULL;
    if (!e || !nops__audit_hash(a->key, a->prev, e, h) ||
        json_object_set_new(e, "hash", json_string(h)) != 0 || !(line = entry_line(e))) {
        nops_errf(errstr, errstr_size, "audit: out of memory");
        json_decref(e);
        return NOPS_NOMEM;
    }
    /* write(2) on the O_APPEND descriptor, not stdio: a failed write leaves nothing buffered to
     * come out later, and whatever part reached the file is cut off again */
    const int fd = fileno(a->f);
    const off_t at = lseek(fd, 0, SEEK_END);
    bool ok = at >= 0 && write_all(fd, line, strlen(line)) && fsync(fd) == 0;
    if (!ok)
        nops_errf(errstr, errstr_size, "audit: cannot write the log: %s", strerror(errno));
    if (ok && a->pg && !pg_insert(a, e, false, errstr, errstr_size))
        ok = false; /* keep file and database in step: the line is taken back below */
    if (ok && !push_off(a, (long)at)) {
        ok = false;
        nops_errf(errstr, errstr_size, "audit: out of memory");
    }
    if (!ok && at >= 0 && ftruncate(fd, at) != 0)
        NOPS_ERROR("audit", "cannot take back a partly written or refused line: %s",
                   strerror(errno));
    if (ok)
        note_started(a, e);
    free(line);
    json_decref(e);
    if (!ok)
        return NOPS_IO;
    a->seq++;
    snprintf(a->prev, sizeof a->prev, "%s", h);
    if (seq)
        *seq = a->seq;
    update_head(a);
    return NOPS_OK;
}

nops_err nops_audit_append(nops_audit *a, const char *actor, const char *action,
                           const char *subject, const char *decision, const json_t *details,
                           uint64_t *seq, char *errstr, size_t errstr_size)
{
    pthread_mutex_lock(&a->mu);
    nops_err e = append_locked(a, actor, action, subject, decision, details, seq, errstr,
                               errstr_size);
    pthread_mutex_unlock(&a->mu);
    return e;
}

/* ---- opening: where the chain ends, and whether that is where it ended before ---------------- */

static bool open_file(nops_audit *a, const char *path, char *errstr, size_t errstr_size)
{
    int fd = nops_file_open(path, O_RDWR | O_CREAT | O_APPEND | O_NOFOLLOW);
    if (fd < 0 || !(a->f = fdopen(fd, "a+"))) {
        if (errno == ELOOP)
            nops_errf(errstr, errstr_size, "audit: %s is a symbolic link: refused (the trail "
                      "is remembered by its real path)", path);
        else
            nops_errf(errstr, errstr_size, "audit: cannot open %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return false;
    }
    /* index the lines (entry k at off[k-1]) */
    char *line = NULL;
    size_t lcap = 0;
    ssize_t n;
    long at = 0;
    bool ok = true;
    rewind(a->f);
    while (ok && (n = getline(&line, &lcap, a->f)) > 0) {
        if (n > 1)
            ok = push_off(a, at);
        at += (long)n;
    }
    free(line);
    fseek(a->f, 0, SEEK_END);
    if (!ok)
        nops_errf(errstr, errstr_size, "audit: out of memory");
    return ok;
}

/* Name the head record in head_dir, which must lie outside the audit file's directory. */
static bool prepare_head(nops_audit *a, const char *head_dir, const char *path, char *errstr,
                         size_t errstr_size)
{
    char real[PATH_MAX];
    if (nops_dir_make(head_dir) != 0 || !realpath(head_dir, real)) {
        nops_errf(errstr, errstr_size, "audit: cannot create the head record directory %s: %s",
                  head_dir, strerror(errno));
        return false;
    }
    if (!nops__audit_head_locate(&a->head, real, path, errstr, errstr_size))
        return false;
    const char *slash = strrchr(a->head.id, '/');
    size_t dl = slash ? (size_t)(slash - a->head.id) : 0;
    if (strncmp(real, a->head.id, dl) == 0 && (real[dl] == '\0' || real[dl] == '/')) {
        nops_errf(errstr, errstr_size, "audit: the head record directory %s lies inside %.*s, "
                  "the audit file's directory: whoever can write one could roll back both; "
                  "keep it outside (beside the engine key)", real, (int)dl, a->head.id);
        return false;
    }
    a->keep_head = true;
    return true;
}

/* An integrity refusal: counted, and said with what was found. */
static bool refuse(const char *path, const char *why, char *errstr, size_t errstr_size)
{
    atomic_fetch_add(&nops__audit_alarms, 1);
    nops_errf(errstr, errstr_size, "audit: %s: %s; refusing to continue the chain (neuralops "
              "audit verify checks every entry; docs/security-audit.md says how to recover)",
              path, why);
    return false;
}

/* Where the file ends: its last entry, keyed — or unkeyed, of an earlier version's trail, which
 * *legacy then says and the caller seals (verify_all checks that every entry is unkeyed then). */
static bool load_end(nops_audit *a, const char *path, bool *legacy, char *errstr,
                     size_t errstr_size)
{
    *legacy = false;
    a->seq = 0;
    snprintf(a->prev, sizeof a->prev, "%s", NOPS__AUDIT_ZERO_HASH);
    if (a->noff == 0)
        return true;
    json_t *last = read_entry(a, a->noff);
    const char *ph = json_string_value(json_object_get(last, "prev_hash"));
    char why[400] = "its last line is not a chain entry";
    nops__audit_walk w;
    bool ok = false;
    if (ph && strlen(ph) == 64) {
        nops__audit_walk_from(&w, a->key, a->noff - 1, ph);
        w.keyed = false; /* the last entry alone: keyed, or unkeyed of an earlier version */
        ok = nops__audit_walk_step(&w, last, why, sizeof why);
    }
    json_decref(last);
    *legacy = ok && !w.keyed;
    if (!ok)
        return refuse(path, why, errstr, errstr_size);
    a->seq = w.n;
    snprintf(a->prev, sizeof a->prev, "%s", w.prev);
    return true;
}

/* The head record against the file: refuse a file cut short, replaced or rewritten. */
static bool check_head(nops_audit *a, const char *path, bool legacy, char *errstr,
                       size_t errstr_size)
{
    char why[700];
    nops_err e = nops__audit_head_read(&a->head, a->key, why, sizeof why);
    if (e == NOPS_IO) {
        nops_errf(errstr, errstr_size, "audit: %s", why);
        return false;
    }
    if (e != NOPS_OK)
        return refuse(path, why, errstr, errstr_size);
    if (!a->head.present) {
        if (a->seq > 0 && !legacy)
            NOPS_WARN("audit", "no head record for %s (%s): whether entries were cut off its "
                      "end before this start cannot be told; one is kept from now on", path,
                      a->head.file);
        return true;
    }
    if (legacy)
        return refuse(path, "it holds only unkeyed entries although this version kept a head "
                      "record for it: it was rewritten without the engine key",
                      errstr, errstr_size);
    nops__audit_pos f = {.seq = a->seq};
    snprintf(f.hash, sizeof f.hash, "%s", a->prev);
    char at[65];
    bool have = a->head.at.seq <= a->noff && hash_at(a, a->head.at.seq, at);
    if (!nops__audit_head_check(&f, have ? at : NULL, &a->head, why, sizeof why))
        return refuse(path, why, errstr, errstr_size);
    /* the entries after the head are checked by verify_all, with all the others */
    if (a->seq - a->head.at.seq > 1)
        NOPS_WARN("audit", "the head record %s was %llu entries behind %s (its updates failed); "
                  "the open goes on only if those entries verify", a->head.file,
                  (unsigned long long)(a->seq - a->head.at.seq), path);
    return true;
}

/* Copy entries from..end of the file into audit_logs, all or none: one transaction, because a
 * table left holding part of them would be refused at the next open as one that lost rows
 * (nops__audit_pg_gap, when no head record says it never held the chain). */
static bool pg_copy(nops_audit *a, uint64_t from, char *errstr, size_t errstr_size)
{
    bool ok = nops_pg_run(a->pg, "BEGIN", "audit", errstr, errstr_size);
    for (uint64_t k = from; ok && k <= a->noff; k++) {
        json_t *e = read_entry(a, k);
        ok = e && pg_insert(a, e, true, errstr, errstr_size);
        json_decref(e);
    }
    if (ok)
        return nops_pg_run(a->pg, "COMMIT", "audit", errstr, errstr_size);
    char ignore[64];
    nops_pg_run(a->pg, "ROLLBACK", NULL, ignore, sizeof ignore);
    return false;
}

/* The table against the file (and the head record): refuse when one was cut short or rewritten;
 * give the table the entries it lacks after a crash or when it is new to this chain. */
static bool check_pg(nops_audit *a, const char *dsn, const char *path, char *errstr,
                     size_t errstr_size)
{
    nops__audit_pg_head p;
    if (!(a->pg = nops_pg_open(dsn, schema_sql, "audit", errstr, errstr_size)) ||
        !nops__audit_pg_head_read(a->pg, &p, errstr, errstr_size))
        return false;
    nops__audit_pos f = {.seq = a->seq};
    snprintf(f.hash, sizeof f.hash, "%s", a->prev);
    char at[65], why[700];
    bool have = p.at.seq <= a->noff && hash_at(a, p.at.seq, at);
    int64_t gap = nops__audit_pg_gap(&f, have ? at : NULL, &p, a->keep_head ? &a->head : NULL,
                                     why, sizeof why);
    if (gap < 0)
        return refuse(path, why, errstr, errstr_size);
    if (gap == 0)
        return true;
    if (!pg_copy(a, a->seq - (uint64_t)gap + 1, errstr, errstr_size))
        return false;
    NOPS_WARN("audit", "PostgreSQL audit_logs lacked the last %lld entries of %s (an append a "
              "crash cut short, or a table new to this chain): copied them", (long long)gap,
              path);
    return true;
}

/* Seal a trail of an earlier version: a keyed entry naming its unkeyed entries. */
static bool seal(nops_audit *a, const char *path, char *errstr, size_t errstr_size)
{
    const uint64_t n = a->seq;
    json_t *d = json_pack("{s:I, s:s}", "legacy_entries", (json_int_t)n, "legacy_head", a->prev);
    nops_err e = d ? append_locked(a, "neuralops", NOPS__AUDIT_SEAL_ACTION, "audit", "sealed", d,
                                   NULL, errstr, errstr_size)
                   : NOPS_NOMEM;
    json_decref(d);
    if (e == NOPS_OK)
        NOPS_WARN("audit", "%s held %llu entries of an earlier version, hashed without a key: "
                  "sealed them with keyed entry %llu. They cannot be changed unnoticed from now "
                  "on; a change made to them before this start cannot be detected", path,
                  (unsigned long long)n, (unsigned long long)a->seq);
    return e == NOPS_OK;
}

/*
 * Every entry checked under the key, once per start: the end checks above see only where the
 * chain ends, but decisions are made from entries in its middle too (whether an execution was
 * started: nops_audit_started), so none may be taken from an entry nobody verified. An HMAC over
 * an entry of a few hundred bytes is about a microsecond: a million entries take a second or two.
 * This is the one walk over the whole file at open (the end and head checks read single entries),
 * and it comes before PostgreSQL is given entries it lacks, so none it is given is unverified.
 */
static bool verify_all(nops_audit *a, const char *path, bool legacy, char *errstr,
                       size_t errstr_size)
{
    nops__audit_walk w;
    char why[400] = "", msg[700];
    json_object_clear(a->started);
    nops__audit_walk_init(&w, a->key);
    if (!walk_file(a, &w, true, why, sizeof why)) {
        const bool after_head = a->keep_head && a->head.present && w.n >= a->head.at.seq;
        snprintf(msg, sizeof msg, "entry %llu%s does not verify: %s",
                 (unsigned long long)(w.n + 1), after_head ? " after the head record" : "", why);
        return refuse(path, msg, errstr, errstr_size);
    }
    /* an earlier version's trail is all unkeyed (a keyed entry would have stopped the walk
     * before the unkeyed last one) and is sealed next */
    if (!legacy && !nops__audit_walk_end(&w, why, sizeof why))
        return refuse(path, why, errstr, errstr_size);
    return true;
}

nops_audit *nops_audit_open(const char *path, const char *pg_dsn, const nops_secret *key,
                            const char *head_dir, char *errstr, size_t errstr_size)
{
    if (!key) {
        nops_errf(errstr, errstr_size, "audit: no engine key (security.key_file): the chain is "
                  "keyed with it");
        return NULL;
    }
    nops_audit *a = nops_calloc(1, sizeof *a);
    if (!a) {
        nops_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&a->mu, NULL);
    a->key = key;
    if (!(a->started = json_object())) {
        nops_errf(errstr, errstr_size, "out of memory");
        nops_audit_close(a);
        return NULL;
    }
    bool legacy = false;
    if (!open_file(a, path, errstr, errstr_size) ||
        (head_dir && *head_dir && !prepare_head(a, head_dir, path, errstr, errstr_size)) ||
        !load_end(a, path, &legacy, errstr, errstr_size) ||
        (a->keep_head && !check_head(a, path, legacy, errstr, errstr_size)) ||
        !verify_all(a, path, legacy, errstr, errstr_size) ||
        (pg_dsn && *pg_dsn && !check_pg(a, pg_dsn, path, errstr, errstr_size)) ||
        (legacy && !seal(a, path, errstr, errstr_size))) {
        nops_audit_close(a);
        return NULL;
    }
    if (a->keep_head) {
        nops__audit_pos at = {.seq = a->seq};
        snprintf(at.hash, sizeof at.hash, "%s", a->prev);
        if (nops__audit_head_write(&a->head, key, &at, a->pg != NULL) != 0) {
            nops_errf(errstr, errstr_size, "audit: cannot write the head record %s: %s (the "
                      "engine must be able to write that directory, outside the data dir)",
                      a->head.file, strerror(errno));
            nops_audit_close(a);
            return NULL;
        }
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
    json_decref(a->started);
    pthread_mutex_destroy(&a->mu);
    nops_free(a);
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


bool nops_audit_started(nops_audit *a, const char *subject, uint64_t *seq)
{
    pthread_mutex_lock(&a->mu);
    json_t *v = json_array_get(json_object_get(a->started, subject), 0);
    if (v && seq)
        *seq = (uint64_t)json_integer_value(v);
    pthread_mutex_unlock(&a->mu);
    return v != NULL;
}
