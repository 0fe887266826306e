/*
 * audit_chain.c — the keyed hash chain of the audit trail, checked entry by entry.
 *
 * An entry's hash is HMAC-SHA256, under the engine key's subkey for "audit", of its prev_hash
 * followed by its canonical JSON (compact, sorted keys, ASCII escapes, without "hash"). Whoever
 * lacks the key cannot make a hash that verifies, so an edited entry cannot be hidden by
 * recomputing the hashes after it, in the file or in PostgreSQL.
 *
 * Trails written by earlier versions hashed with plain SHA-256 of the same bytes. Such entries
 * are accepted only as a prefix of the chain, and only when the first keyed entry after them is
 * the seal that nops_audit_open appends when it first opens such a trail: action "audit.keyed",
 * details {"legacy_entries": N, "legacy_head": <hash of entry N>}. The seal's keyed hash covers
 * the prefix's last hash, so the prefix cannot be changed after the seal either; a plain-SHA-256
 * entry after a keyed one, or unkeyed entries with no seal after them, are refused (that is what
 * a rewrite without the key looks like).
 */
#include "orchestrate/audit_int.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

atomic_uint_least64_t nops__audit_alarms;

uint64_t nops_audit_integrity_failures(void)
{
    return atomic_load(&nops__audit_alarms);
}

/* prev ‖ canonical JSON of e without "hash" (malloc'ed, length in *n); NULL when out of memory. */
static char *hash_input(const char *prev, const json_t *e, size_t *n)
{
    json_t *copy = json_copy((json_t *)e);
    if (!copy)
        return NULL;
    json_object_del(copy, "hash");
    char *canon = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    json_decref(copy);
    if (!canon)
        return NULL;
    size_t pl = strlen(prev), cl = strlen(canon);
    char *buf = malloc(pl + cl + 1);
    if (buf) {
        memcpy(buf, prev, pl);
        memcpy(buf + pl, canon, cl + 1);
        *n = pl + cl;
    }
    free(canon);
    return buf;
}

bool nops__audit_hash(const nops_secret *key, const char *prev, const json_t *e, char out[65])
{
    size_t n = 0;
    char *in = hash_input(prev, e, &n);
    if (!in)
        return false;
    nops_secret_mac_hex(key, "audit", in, n, out);
    free(in);
    return true;
}

/* The unkeyed hash of earlier versions: hex SHA-256 of the same bytes. */
static bool legacy_hash(const char *prev, const json_t *e, char out[65])
{
    size_t n = 0;
    char *in = hash_input(prev, e, &n);
    bool ok = in && nops_sha256_hex(in, n, out);
    free(in);
    return ok;
}

void nops__audit_walk_init(nops__audit_walk *w, const nops_secret *key)
{
    memset(w, 0, sizeof *w);
    w->key = key;
    snprintf(w->prev, sizeof w->prev, "%s", NOPS__AUDIT_ZERO_HASH);
}

void nops__audit_walk_from(nops__audit_walk *w, const nops_secret *key, uint64_t seq,
                           const char *hash)
{
    nops__audit_walk_init(w, key);
    w->n = seq;
    w->keyed = seq > 0; /* a head remembered by this version is keyed */
    snprintf(w->prev, sizeof w->prev, "%s", hash);
}

static const char *fields[] = {"seq", "ts", "actor", "action", "subject", "decision",
                               "details", "prev_hash", "hash"};

/* The shape of entry k: nine fields, seq k, linked to prev. */
static bool check_shape(const json_t *e, uint64_t k, const char *prev, char *why,
                        size_t why_size)
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
    json_t *seq = json_object_get(e, "seq");
    if (!json_is_integer(seq) || json_integer_value(seq) != (json_int_t)k) {
        snprintf(why, why_size, "seq %lld where %llu was due (an entry was removed, added or "
                 "moved)", (long long)json_integer_value(seq), (unsigned long long)k);
        return false;
    }
    const char *ph = json_string_value(json_object_get(e, "prev_hash"));
    if (!ph || strcmp(ph, prev) != 0) {
        snprintf(why, why_size, "prev_hash does not match the hash of entry %llu",
                 (unsigned long long)(k - 1));
        return false;
    }
    const char *h = json_string_value(json_object_get(e, "hash"));
    if (!h || strlen(h) != 64) {
        snprintf(why, why_size, "hash is not 64 hex digits");
        return false;
    }
    return true;
}

/* The seal after `w->legacy` unkeyed entries: action audit.keyed naming exactly them. */
static bool is_seal(const nops__audit_walk *w, const json_t *e)
{
    const json_t *d = json_object_get(e, "details");
    const char *head = json_string_value(json_object_get(d, "legacy_head"));
    const char *action = json_string_value(json_object_get(e, "action"));
    return action && strcmp(action, NOPS__AUDIT_SEAL_ACTION) == 0 &&
           json_integer_value(json_object_get(d, "legacy_entries")) == (json_int_t)w->legacy &&
           head && strcmp(head, w->prev) == 0;
}

bool nops__audit_walk_step(nops__audit_walk *w, const json_t *e, char *why, size_t why_size)
{
    const uint64_t k = w->n + 1;
    if (!check_shape(e, k, w->prev, why, why_size))
        return false;
    const char *stored = json_string_value(json_object_get(e, "hash"));
    char h[65];
    if (!nops__audit_hash(w->key, w->prev, e, h)) {
        snprintf(why, why_size, "out of memory");
        return false;
    }
    if (CRYPTO_memcmp(h, stored, 64) == 0) {
        if (!w->keyed && w->legacy > 0 && !is_seal(w, e)) {
            snprintf(why, why_size, "a keyed entry follows %llu unkeyed ones without the seal "
                     "(\"%s\") that names them", (unsigned long long)w->legacy,
                     NOPS__AUDIT_SEAL_ACTION);
            return false;
        }
        w->keyed = true;
    } else if (legacy_hash(w->prev, e, h) && strcmp(h, stored) == 0) {
        if (w->keyed) {
            snprintf(why, why_size, "the entry is not keyed (its hash is a plain SHA-256) although "
                     "keyed entries precede it: it was rewritten without the engine key");
            return false;
        }
        w->legacy++;
    } else {
        snprintf(why, why_size, "hash does not match the entry's content under this key (a "
                 "field was changed, or the trail was written with another engine key)");
        return false;
    }
    w->n = k;
    snprintf(w->prev, sizeof w->prev, "%s", stored);
    return true;
}

bool nops__audit_walk_end(const nops__audit_walk *w, char *why, size_t why_size)
{
    if (w->legacy == 0 || w->keyed)
        return true;
    snprintf(why, why_size, "none of the %llu entries is keyed with this engine key and no seal "
             "follows them: a trail of an earlier version that no start of this one has sealed "
             "yet, one written with another key, or one rewritten without the key",
             (unsigned long long)w->legacy);
    return false;
}

json_t *nops__audit_pg_entry(const PGresult *res, int i)
{
    json_t *details = json_loads(PQgetvalue(res, i, 6), 0, NULL);
    return json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s}", "seq",
                     (json_int_t)strtoll(PQgetvalue(res, i, 0), NULL, 10), "ts",
                     PQgetvalue(res, i, 1), "actor", PQgetvalue(res, i, 2), "action",
                     PQgetvalue(res, i, 3), "subject", PQgetvalue(res, i, 4), "decision",
                     PQgetvalue(res, i, 5), "details", details ? details : json_null(),
                     "prev_hash", PQgetvalue(res, i, 7), "hash", PQgetvalue(res, i, 8));
}
