/*
 * audit_head.c — where the audit chain ends, remembered where a rewrite of the data dir cannot
 * reach, and compared with what the file and PostgreSQL hold.
 *
 * Keyed hashes stop anyone without the key from changing entries, but not from cutting the end
 * off: a chain truncated to seq 10 (or replaced by an older copy) is still a valid chain. So the
 * engine keeps a head record per audit file — {"path","seq","hash","pg","mac"}, the MAC under the
 * subkey "audit-head" — in a directory outside the data dir (beside the engine key by default),
 * named after the audit file's real path so that several data dirs sharing one key each have
 * their own. It is rewritten (durably) after every append; a start finding the file shorter than
 * the record, or a different entry at the record's seq, refuses to continue the chain.
 *
 * With PostgreSQL the table holds the chain too. Appends go to the file first, then the table,
 * then the head record, so after a crash the file may be one entry ahead of the table (which
 * then takes it) and the record may lag (the entries after it are checked against it). Anything
 * else — the table shorter by more, with rows missing, longer than the file, or differing at
 * its last row — means one side was truncated or rewritten.
 */
#include "orchestrate/audit_int.h"

#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

/* The real path of `path`'s directory followed by its last component (the file itself may not
 * exist yet, and is never followed if it is a symbolic link: the trail refuses those). */
static bool file_id(const char *path, char *out, size_t cap, char *errstr, size_t errstr_size)
{
    char dir[PATH_MAX], real[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    const char *name = path;
    if (!slash) {
        snprintf(dir, sizeof dir, ".");
    } else {
        name = path + (slash - dir) + 1;
        if (slash == dir)
            dir[1] = '\0';
        else
            *slash = '\0';
    }
    if (!realpath(dir, real)) {
        nops_errf(errstr, errstr_size, "audit: cannot resolve %s: %s", dir, strerror(errno));
        return false;
    }
    if ((size_t)snprintf(out, cap, "%s/%s", strcmp(real, "/") ? real : "", name) >= cap) {
        nops_errf(errstr, errstr_size, "audit: the path %s is too long", path);
        return false;
    }
    return true;
}

bool nops__audit_head_locate(nops__audit_head *h, const char *dir, const char *path,
                             char *errstr, size_t errstr_size)
{
    memset(h, 0, sizeof *h);
    if (!file_id(path, h->id, sizeof h->id, errstr, errstr_size))
        return false;
    char hex[65];
    if (!nops_sha256_hex(h->id, strlen(h->id), hex)) {
        nops_errf(errstr, errstr_size, "audit: SHA-256 failed (OpenSSL)");
        return false;
    }
    if ((size_t)snprintf(h->file, sizeof h->file, "%s/audit-%.32s.head", dir, hex) >=
        sizeof h->file) {
        nops_errf(errstr, errstr_size, "audit: the head record directory %s is too long", dir);
        return false;
    }
    return true;
}

/* The bytes the head record's MAC covers. */
static int mac_input(char *buf, size_t cap, const char *id, const nops__audit_pos *at, bool pg)
{
    return snprintf(buf, cap, "neuralops audit head\n%s\n%llu\n%s\n%d", id,
                    (unsigned long long)at->seq, at->hash, pg ? 1 : 0);
}

nops_err nops__audit_head_read(nops__audit_head *h, const nops_secret *key, char *why,
                               size_t why_size)
{
    h->present = false;
    json_error_t je;
    FILE *f = nops_file_fopen(h->file, "r");
    if (!f) {
        if (errno == ENOENT)
            return NOPS_OK;
        snprintf(why, why_size, "cannot read the head record %s: %s", h->file, strerror(errno));
        return NOPS_IO;
    }
    json_t *r = json_loadf(f, 0, &je);
    fclose(f);
    const char *id = json_string_value(json_object_get(r, "path"));
    const char *hash = json_string_value(json_object_get(r, "hash"));
    const char *mac = json_string_value(json_object_get(r, "mac"));
    json_t *seq = json_object_get(r, "seq");
    nops_err e = NOPS_PARSE;
    if (!id || !hash || strlen(hash) != 64 || !json_is_integer(seq) ||
        json_integer_value(seq) < 0 || !json_is_boolean(json_object_get(r, "pg"))) {
        snprintf(why, why_size, "the head record %s is not a head record", h->file);
    } else if (strcmp(id, h->id) != 0) {
        snprintf(why, why_size, "the head record %s is about %s, not %s", h->file, id, h->id);
    } else {
        h->at.seq = (uint64_t)json_integer_value(seq);
        snprintf(h->at.hash, sizeof h->at.hash, "%s", hash);
        h->pg = json_is_true(json_object_get(r, "pg"));
        char in[1400];
        int n = mac_input(in, sizeof in, h->id, &h->at, h->pg);
        if (n > 0 && (size_t)n < sizeof in && nops_secret_verify_hex(key, "audit-head", in,
                                                                     (size_t)n, mac)) {
            h->present = true;
            e = NOPS_OK;
        } else {
            snprintf(why, why_size, "the head record %s was not made with this engine key "
                     "(forged, or the key was replaced)", h->file);
        }
    }
    json_decref(r);
    return e;
}

int nops__audit_head_write(const nops__audit_head *h, const nops_secret *key,
                           const nops__audit_pos *at, bool pg)
{
    char in[1400], mac[65];
    int n = mac_input(in, sizeof in, h->id, at, pg);
    if (n < 0 || (size_t)n >= sizeof in) {
        errno = ENAMETOOLONG;
        return -1;
    }
    nops_secret_mac_hex(key, "audit-head", in, (size_t)n, mac);
    json_t *r = json_pack("{s:s, s:I, s:s, s:b, s:s}", "path", h->id, "seq",
                          (json_int_t)at->seq, "hash", at->hash, "pg", pg, "mac", mac);
    char *text = r ? json_dumps(r, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(r);
    if (!text) {
        errno = ENOMEM;
        return -1;
    }
    size_t len = strlen(text);
    text[len] = '\n'; /* over the NUL: the record is one line */
    int rc = nops_file_replace(h->file, text, len + 1);
    free(text);
    return rc;
}

bool nops__audit_head_check(const nops__audit_pos *f, const char *at_h,
                            const nops__audit_head *h, char *why, size_t why_size)
{
    if (h->at.seq > f->seq) {
        snprintf(why, why_size, "truncated from seq %llu to %llu: the head record %s says the "
                 "chain reached seq %llu, the file ends at seq %llu (entries were removed, or "
                 "the file was replaced by an older copy)", (unsigned long long)h->at.seq,
                 (unsigned long long)f->seq, h->file, (unsigned long long)h->at.seq,
                 (unsigned long long)f->seq);
        return false;
    }
    if (h->at.seq > 0 && (!at_h || strcmp(at_h, h->at.hash) != 0)) {
        snprintf(why, why_size, "rewritten: entry %llu of the file is not the one the head "
                 "record %s remembers (the file was replaced or rewritten)",
                 (unsigned long long)h->at.seq, h->file);
        return false;
    }
    return true;
}

bool nops__audit_pg_head_read(PGconn *c, nops__audit_pg_head *p, char *errstr,
                              size_t errstr_size)
{
    memset(p, 0, sizeof *p);
    snprintf(p->at.hash, sizeof p->at.hash, "%s", NOPS__AUDIT_ZERO_HASH);
    PGresult *r = nops_pg_exec(c, "SELECT (SELECT count(*) FROM audit_logs), seq, hash FROM "
                                   "audit_logs ORDER BY seq DESC LIMIT 1", 0, NULL);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        nops_errf(errstr, errstr_size, "audit: PostgreSQL: %s", PQerrorMessage(c));
    else if (PQntuples(r) == 1) {
        p->rows = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
        p->at.seq = strtoull(PQgetvalue(r, 0, 1), NULL, 10);
        snprintf(p->at.hash, sizeof p->at.hash, "%s", PQgetvalue(r, 0, 2));
    }
    PQclear(r);
    return ok;
}

int64_t nops__audit_pg_gap(const nops__audit_pos *f, const char *at_p,
                           const nops__audit_pg_head *p, const nops__audit_head *h, char *why,
                           size_t why_size)
{
    const unsigned long long fs = f->seq, ps = p->at.seq;
    if (p->rows != ps) {
        snprintf(why, why_size, "PostgreSQL audit_logs holds %llu rows for seqs 1..%llu: rows "
                 "were deleted or added", (unsigned long long)p->rows, ps);
        return -1;
    }
    if (ps > fs) {
        snprintf(why, why_size, "the file ends at seq %llu but PostgreSQL audit_logs at seq %llu: "
                 "the file was truncated or replaced by an older copy", fs, ps);
        return -1;
    }
    if (ps > 0 && (!at_p || strcmp(at_p, p->at.hash) != 0)) {
        snprintf(why, why_size, "the file and PostgreSQL audit_logs differ at seq %llu: one of "
                 "them was rewritten", ps);
        return -1;
    }
    if (ps == fs)
        return 0;
    /* the table is behind the file, which holds the same entries up to its end */
    const bool held = h && h->present && h->pg;
    if (held && h->at.seq > ps) {
        snprintf(why, why_size, "PostgreSQL audit_logs ends at seq %llu although it held the "
                 "chain up to seq %llu (head record %s): rows were deleted", ps,
                 (unsigned long long)h->at.seq, h->file);
        return -1;
    }
    /* one entry: an append a crash cut off between the file and the table; a table that never
     * held this chain (empty, or the last start ran without it) takes all it lacks */
    if (fs - ps == 1 || (h && h->present && !h->pg) || (ps == 0 && !held))
        return (int64_t)(fs - ps);
    snprintf(why, why_size, "PostgreSQL audit_logs ends at seq %llu, the file at seq %llu: rows "
             "were deleted from the table", ps, fs);
    return -1;
}
