/*
 * audit_verify.c — `neuralops audit verify`: every entry of the file and of PostgreSQL
 * audit_logs checked under the engine key, and the ends of both checked against each other and
 * against the head record. Read-only: nothing is repaired here (a start does what may be done).
 */
#include "orchestrate/audit_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void nops_audit_head_dir_for(const char *key_path, char *out, size_t cap)
{
    const char *slash = key_path ? strrchr(key_path, '/') : NULL;
    if (!slash)
        snprintf(out, cap, "audit-heads");
    else
        snprintf(out, cap, "%.*s/audit-heads", (int)(slash - key_path), key_path);
}

/* What a walk wants to know besides whether the chain holds: the hashes of up to two entries
 * (want[i] = 0: none) and where it ends. */
typedef struct probe {
    uint64_t want[2];
    char got[2][65]; /* "" when the chain is shorter */
    nops__audit_pos end;
} probe;

static void probe_init(probe *p, uint64_t a, uint64_t b)
{
    memset(p, 0, sizeof *p);
    p->want[0] = a;
    p->want[1] = b;
}

static void probe_note(probe *p, const nops__audit_walk *w)
{
    for (int i = 0; i < 2; i++)
        if (p->want[i] == w->n)
            snprintf(p->got[i], sizeof p->got[i], "%s", w->prev);
    p->end.seq = w->n;
    snprintf(p->end.hash, sizeof p->end.hash, "%s", w->prev);
}

/* Walk the JSONL chain in `path`; r->entries, first_bad, why, legacy. */
static nops_err walk_path(const char *path, const nops_secret *key, nops_audit_report *r,
                          probe *p)
{
    FILE *f = nops_file_fopen(path, "r");
    if (!f) {
        snprintf(r->why, sizeof r->why, "cannot read %s: %s", path, strerror(errno));
        return NOPS_IO;
    }
    nops__audit_walk w;
    nops__audit_walk_init(&w, key);
    probe_note(p, &w);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    nops_err e = NOPS_OK;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (n == 1 && line[0] == '\n') {
            snprintf(r->why, sizeof r->why, "an empty line (a removed entry?)");
            r->first_bad = w.n + 1;
            e = NOPS_PARSE;
            break;
        }
        r->entries++;
        json_t *ent = json_loads(line, 0, NULL);
        if (!ent || !nops__audit_walk_step(&w, ent, r->why, sizeof r->why)) {
            if (!ent)
                snprintf(r->why, sizeof r->why, "not JSON");
            r->first_bad = r->entries;
            e = NOPS_PARSE;
        }
        json_decref(ent);
        if (e != NOPS_OK)
            break;
        probe_note(p, &w);
    }
    free(line);
    fclose(f);
    if (e == NOPS_OK && !nops__audit_walk_end(&w, r->why, sizeof r->why)) {
        r->first_bad = 1;
        e = NOPS_PARSE;
    }
    r->legacy = w.legacy;
    return e;
}

/* Walk audit_logs in seq order; r->pg_entries, first_bad, why. */
static nops_err walk_pg(PGconn *c, const nops_secret *key, nops_audit_report *r, probe *p,
                        char *errstr, size_t errstr_size)
{
    PGresult *res = nops_pg_exec(c, "SELECT seq, ts, actor, action, subject, decision, "
                                    "details::text, prev_hash, hash FROM audit_logs ORDER BY seq",
                                 0, NULL);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        nops_errf(errstr, errstr_size, "audit: PostgreSQL: %s", PQerrorMessage(c));
        PQclear(res);
        return NOPS_IO;
    }
    nops__audit_walk w;
    nops__audit_walk_init(&w, key);
    probe_note(p, &w);
    nops_err e = NOPS_OK;
    char why[300] = "";
    for (int i = 0; i < PQntuples(res) && e == NOPS_OK; i++) {
        r->pg_entries++;
        json_t *ent = nops__audit_pg_entry(res, i);
        if (!ent || !nops__audit_walk_step(&w, ent, why, sizeof why)) {
            r->first_bad = r->pg_entries;
            e = NOPS_PARSE;
        } else {
            probe_note(p, &w);
        }
        json_decref(ent);
    }
    PQclear(res);
    if (e == NOPS_OK && !nops__audit_walk_end(&w, why, sizeof why)) {
        r->first_bad = 1;
        e = NOPS_PARSE;
    }
    if (e != NOPS_OK)
        snprintf(r->why, sizeof r->why, "PostgreSQL audit_logs: %s", why);
    if (!r->legacy)
        r->legacy = w.legacy;
    return e;
}

nops_err nops_audit_verify_file(const char *path, const nops_secret *key, nops_audit_report *r)
{
    char err[300];
    nops_audit_sources s = {.path = path};
    nops_err e = nops_audit_verify(&s, key, r, err, sizeof err);
    if (e == NOPS_IO && !r->why[0])
        snprintf(r->why, sizeof r->why, "%s", err);
    return e;
}

nops_err nops_audit_verify_pg(const char *dsn, const nops_secret *key, nops_audit_report *r,
                              char *errstr, size_t errstr_size)
{
    nops_audit_sources s = {.pg_dsn = dsn};
    return nops_audit_verify(&s, key, r, errstr, errstr_size);
}

/* The head record of src->path: NOPS_OK (h->present says whether there is one), NOPS_PARSE
 * (*why says why), NOPS_IO. */
static nops_err read_head(const nops_audit_sources *src, const nops_secret *key,
                          nops__audit_head *h, char *why, size_t why_size, char *errstr,
                          size_t errstr_size)
{
    memset(h, 0, sizeof *h);
    if (!src->path || !src->head_dir || !src->head_dir[0])
        return NOPS_OK;
    if (!nops__audit_head_locate(h, src->head_dir, src->path, errstr, errstr_size))
        return NOPS_IO;
    nops_err e = nops__audit_head_read(h, key, why, why_size);
    if (e == NOPS_IO)
        nops_errf(errstr, errstr_size, "audit: %s", why);
    return e;
}

/* The ends of file, table and head record against each other (after both chains held). */
static nops_err compare_ends(const nops_audit_sources *src, const nops__audit_head *h,
                             const probe *fp, const nops__audit_pg_head *ph,
                             nops_audit_report *r)
{
    char why[700];
    if (h->present) {
        const char *at = fp->got[0][0] ? fp->got[0] : NULL;
        if (!nops__audit_head_check(&fp->end, at, h, why, sizeof why)) {
            snprintf(r->why, sizeof r->why, "%s", why);
            r->first_bad = h->at.seq > fp->end.seq ? fp->end.seq + 1 : h->at.seq;
            return NOPS_PARSE;
        }
    } else if (src->path && src->head_dir && src->head_dir[0]) {
        snprintf(r->note, sizeof r->note, "no head record (%s): entries cut off the file's end "
                 "cannot be told from the file alone", h->file);
    }
    if (!src->path || !src->pg_dsn || !src->pg_dsn[0])
        return NOPS_OK;
    const char *at = fp->got[1][0] ? fp->got[1] : NULL;
    int64_t gap = nops__audit_pg_gap(&fp->end, at, ph, h, why, sizeof why);
    if (gap < 0) {
        snprintf(r->why, sizeof r->why, "%s", why);
        r->first_bad = (ph->at.seq < fp->end.seq ? ph->at.seq : fp->end.seq) + 1;
        return NOPS_PARSE;
    }
    if (gap > 0)
        snprintf(r->note, sizeof r->note, "PostgreSQL audit_logs lacks the file's last %lld "
                 "entries (an append a crash cut short, or a table new to this chain); the next "
                 "start copies them", (long long)gap);
    return NOPS_OK;
}

nops_err nops_audit_verify(const nops_audit_sources *src, const nops_secret *key,
                           nops_audit_report *r, char *errstr, size_t errstr_size)
{
    memset(r, 0, sizeof *r);
    if (!key) {
        nops_errf(errstr, errstr_size, "audit: no engine key: the chain is keyed with it");
        return NOPS_INVAL;
    }
    nops__audit_head h;
    char head_why[700] = "";
    nops_err he = read_head(src, key, &h, head_why, sizeof head_why, errstr, errstr_size);
    if (he == NOPS_IO)
        return NOPS_IO;
    nops__audit_pg_head ph = {.rows = 0};
    PGconn *c = NULL;
    nops_err e = NOPS_OK;
    if (src->pg_dsn && src->pg_dsn[0]) {
        c = nops_pg_open(src->pg_dsn, NULL, "audit", errstr, errstr_size);
        if (!c)
            e = NOPS_IO;
        else if (!nops__audit_pg_head_read(c, &ph, errstr, errstr_size)) {
            e = NOPS_IO;
        }
    }
    probe fp, pp;
    probe_init(&fp, h.present ? h.at.seq : 0, ph.at.seq);
    probe_init(&pp, 0, 0);
    if (e == NOPS_OK && src->path) {
        e = walk_path(src->path, key, r, &fp);
        if (e == NOPS_IO)
            nops_errf(errstr, errstr_size, "audit: %s", r->why);
    }
    if (e == NOPS_OK && c)
        e = walk_pg(c, key, r, &pp, errstr, errstr_size);
    if (!src->path)
        r->entries = r->pg_entries;
    if (e == NOPS_OK && he != NOPS_OK) { /* the entries hold, the head record does not */
        snprintf(r->why, sizeof r->why, "%s", head_why);
        e = NOPS_PARSE;
    }
    if (e == NOPS_OK)
        e = compare_ends(src, &h, &fp, &ph, r);
    if (e == NOPS_PARSE)
        atomic_fetch_add(&nops__audit_alarms, 1);
    PQfinish(c);
    return e;
}
