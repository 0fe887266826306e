/*
 * audit_int.h — the audit trail's parts (internal to orchestrate/audit*.c): the keyed entry hash
 * and the walk that checks a chain entry by entry (audit_chain.c), the head record kept outside
 * the data dir and the PostgreSQL head (audit_head.c). orchestrate.h says what the chain is.
 */
#ifndef NOPS_ORCHESTRATE_AUDIT_INT_H
#define NOPS_ORCHESTRATE_AUDIT_INT_H

#include "orchestrate/orch_int.h"

#include <libpq-fe.h>
#include <stdatomic.h>

#define NOPS__AUDIT_ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"
#define NOPS__AUDIT_SEAL_ACTION "audit.keyed" /* the entry that seals an unkeyed prefix */

/* Integrity problems found since the process started (nops_audit_integrity_failures). */
extern atomic_uint_least64_t nops__audit_alarms;

/* ---- the chain (audit_chain.c) ------------------------------------------------------------- */

/* The keyed hash of entry `e` (its "hash" member ignored): hex HMAC-SHA256 under the subkey
 * "audit" of prev ‖ canonical JSON. False when out of memory. */
bool nops__audit_hash(const nops_secret *key, const char *prev, const json_t *e, char out[65]);

/* Checking a chain from its first entry (or from a known position) one entry at a time. */
typedef struct nops__audit_walk {
    const nops_secret *key; /* the engine key (borrowed) */
    uint64_t n;             /* entries accepted so far (the seq of the last one) */
    uint64_t legacy;        /* of these, unkeyed entries of an earlier version (a prefix) */
    bool keyed;             /* a keyed entry was accepted */
    char prev[65];          /* the hash of the last accepted entry (64 zeros at the start) */
} nops__audit_walk;

/* Start before entry 1. */
void nops__audit_walk_init(nops__audit_walk *w, const nops_secret *key);
/* Start after entry `seq` whose (keyed) hash is `hash`. */
void nops__audit_walk_from(nops__audit_walk *w, const nops_secret *key, uint64_t seq,
                           const char *hash);
/* Accept `e` as entry w->n + 1; false with *why when it is not. */
bool nops__audit_walk_step(nops__audit_walk *w, const json_t *e, char *why, size_t why_size);
/* After the last entry: false with *why when unkeyed entries were never sealed. */
bool nops__audit_walk_end(const nops__audit_walk *w, char *why, size_t why_size);

/* A PostgreSQL row (seq, ts, actor, action, subject, decision, details::text, prev_hash, hash)
 * of `res` as an entry (new reference; NULL when out of memory). */
json_t *nops__audit_pg_entry(const PGresult *res, int row);

/* ---- where the chain ends: the head record and PostgreSQL (audit_head.c) ------------------- */

/* A position in the chain: entry `seq` has hash `hash` (seq 0: the empty chain). */
typedef struct nops__audit_pos {
    uint64_t seq;
    char hash[65];
} nops__audit_pos;

/* The head record of one audit file, kept in a directory outside the data dir. */
typedef struct nops__audit_head {
    char file[1200];       /* the record's own path */
    char id[1100];         /* the audit file it is about: real path of its directory + name */
    bool present;          /* a record was read */
    nops__audit_pos at;    /* the head it remembers */
    bool pg;               /* PostgreSQL held the chain up to that head too */
} nops__audit_head;

/* Name the head record of audit file `path` in `dir` (h->file, h->id; nothing read yet). */
bool nops__audit_head_locate(nops__audit_head *h, const char *dir, const char *path,
                             char *errstr, size_t errstr_size);
/* Read it: NOPS_OK (h->present says whether there was one), NOPS_PARSE when it is not a record
 * made with this key for this file (why), NOPS_IO when it cannot be read. */
nops_err nops__audit_head_read(nops__audit_head *h, const nops_secret *key, char *why,
                               size_t why_size);
/* Replace it (durably) with head `at`. 0 or -1 (errno). */
int nops__audit_head_write(const nops__audit_head *h, const nops_secret *key,
                           const nops__audit_pos *at, bool pg);

/* Whether the file's end `f` fits head record `h` (present), `at_h` being the file's hash of
 * entry h->at.seq (NULL when the file is shorter): true, or false with *why (truncated, rolled
 * back or rewritten). */
bool nops__audit_head_check(const nops__audit_pos *f, const char *at_h,
                            const nops__audit_head *h, char *why, size_t why_size);

/* PostgreSQL's end of the chain: its last row and how many rows there are. */
typedef struct nops__audit_pg_head {
    nops__audit_pos at; /* the last row (seq 0 when the table is empty) */
    uint64_t rows;      /* rows in the table */
} nops__audit_pg_head;

bool nops__audit_pg_head_read(PGconn *c, nops__audit_pg_head *p, char *errstr,
                              size_t errstr_size);

/*
 * Whether PostgreSQL's end `p` fits the file's end `f`, `at_p` being the file's hash of entry
 * p->at.seq (NULL when the file is shorter) and `h` the head record (NULL: none kept). Returns
 * the number of entries at the file's end the table lacks but may take (0: the ends agree), or
 * -1 with *why when one of them was truncated, rolled back or rewritten.
 */
int64_t nops__audit_pg_gap(const nops__audit_pos *f, const char *at_p,
                           const nops__audit_pg_head *p, const nops__audit_head *h, char *why,
                           size_t why_size);

#endif
