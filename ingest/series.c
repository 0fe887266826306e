/*
 * series.c — a point's series identity: name and labels → canonical key → id → detector slot,
 * computed once per series and raw form, not once per point.
 *
 * The canonical key (detect/registry.c: `name{k="v",...}`, labels sorted, values escaped) and
 * its XXH3 id are the series' identity everywhere (signal ids, snapshots, queries); building it
 * costs a name copy, a label sort and an escape per point — several times the parse itself.
 * But a line-protocol point carries its series as written (nops_point.series: measurement and
 * tags, escapes and tag order as they came), and equal raw bytes with an equal field name always
 * give the same key. So each worker keeps a cache from a 128-bit XXH3 of (raw span, field) to
 * (series id, slot):
 *
 *   - hit: the hash matches (96 bits: the high half and the low half's low 32 bits, which also
 *     pick the cell) — no key is built, no detector table is probed;
 *   - miss: the key is built as before, the detector's id → slot table answers (or the series
 *     is admitted and registered), and the raw form is remembered. Two raw forms of one series
 *     (tags in another order, other escaping) are two entries pointing to the same slot, since
 *     both went through the canonical key on their miss.
 *
 * The low half picks the cell (linear probing); the high half is compared on every hit, so a
 * collision of the low halves keeps two series apart (probing goes on). Series would be merged
 * only if all 96 compared bits collided (about 2^-96 per pair of raw forms). A 16-byte entry
 * keeps the table of 100k series at 4 MiB. Entries hold slots, not ids: when the detector
 * evicts idle series (and may hand their slots to others) its eviction count moves and the
 * whole cache is forgotten — evictions come in TTL sweeps at most every 10 s, and each series
 * costs one key build afterwards. Points without a raw span (JSON) are keyed every time. The
 * table stays at most half full; when it would grow while holding more than twice the
 * detector's series (stale forms, a churn of tag orders), it is emptied instead.
 *
 * Past ~50k series the table outgrows L2, and a hit waits for one cache miss: most of a hit's
 * cost. So the work also comes in two steps (nops_ingest_series_hash, then _find and on a miss
 * _add): the pipeline hashes every point of a message while it parses it — the hash issues a
 * prefetch of the point's cell — and finds them after the parse, when the cells have arrived;
 * a message's misses then overlap instead of queueing one behind the other. XXH3 is inlined
 * here (XXH_INLINE_ALL): for a 20–90 byte span the library call cost as much as the hash.
 */
#include "ingest/ingest.h"

#include <stdio.h>
#include <string.h>
#define XXH_INLINE_ALL /* the hash of a 20–90 byte span inlined: a call costs as much */
#include <xxhash.h>

typedef struct sc_entry {
    uint64_t hi;   /* raw hash, high half (never 0); 0 marks an empty cell */
    uint32_t lo;   /* raw hash, low 32 bits of the low half: pick the cell, and are checked */
    uint32_t slot; /* the detector slot the raw form resolved to */
} sc_entry;

struct nops_ingest_series_cache {
    sc_entry *e;                /* cap cells, or NULL before the first insert */
    uint32_t cap, n;            /* cells (a power of two), cells in use */
    uint64_t gen;               /* the detector's eviction count the entries are valid for */
    nops__series_hash_fn hash;  /* NULL: raw_hash (tests force collisions through this) */
    char field[64];             /* the field name last hashed ... */
    size_t field_len;           /* ... its length (SIZE_MAX: none) ... */
    uint64_t field_seed;        /* ... and its hash, the seed of the span's */
};

nops_ingest_series_cache *nops_ingest_series_cache_new(void)
{
    nops_ingest_series_cache *c = nops_calloc(1, sizeof *c);
    if (c)
        c->field_len = SIZE_MAX;
    return c;
}

void nops_ingest_series_cache_destroy(nops_ingest_series_cache *c)
{
    if (!c)
        return;
    nops_free(c->e);
    nops_free(c);
}

void nops__ingest_series_cache_set_hash(nops_ingest_series_cache *c, nops__series_hash_fn fn)
{
    c->hash = fn;
}

uint32_t nops__ingest_series_cache_size(const nops_ingest_series_cache *c)
{
    return c->n;
}

/* 128-bit XXH3 of the span seeded by the field's hash (the field of consecutive points rarely
 * changes: its hash is kept). */
static void raw_hash(nops_ingest_series_cache *c, const nops_point *pt, uint64_t h[2])
{
    if (c->hash) {
        c->hash(pt->series, pt->series_len, pt->field, pt->field_len, h);
        return;
    }
    if (pt->field_len != c->field_len || memcmp(pt->field, c->field, pt->field_len) != 0) {
        c->field_seed = pt->field_len ? XXH3_64bits(pt->field, pt->field_len) : 0;
        if (pt->field_len <= sizeof c->field) {
            memcpy(c->field, pt->field, pt->field_len);
            c->field_len = pt->field_len;
        } else {
            c->field_len = SIZE_MAX; /* too long to keep: hashed every time */
        }
    }
    XXH128_hash_t x = XXH3_128bits_withSeed(pt->series, pt->series_len, c->field_seed);
    h[0] = x.low64;
    h[1] = x.high64;
}

/* Room for one more entry: double the table, or empty it when stale entries fill it. */
static bool make_room(nops_ingest_series_cache *c, const nops_detector *det)
{
    if ((uint64_t)(c->n + 1) * 2 <= c->cap)
        return true;
    if (c->cap && c->n > 2 * (uint64_t)nops_detect_series_count(det) + 1024) {
        memset(c->e, 0, (size_t)c->cap * sizeof *c->e);
        c->n = 0;
        return true;
    }
    if (c->cap >= (1u << 30))
        return false;
    const uint32_t cap = c->cap ? c->cap * 2 : 1024;
    sc_entry *e = nops_calloc(cap, sizeof *e);
    if (!e)
        return false;
    for (uint32_t i = 0; i < c->cap; i++) {
        if (!c->e[i].hi)
            continue;
        uint32_t j = c->e[i].lo & (cap - 1);
        while (e[j].hi)
            j = (j + 1) & (cap - 1);
        e[j] = c->e[i];
    }
    nops_free(c->e);
    c->e = e;
    c->cap = cap;
    return true;
}

/* The canonical key of pt's series into key[NOPS_KEY_MAX]; NOPS_REJECT_NONE or why not. */
static nops_reject canonical_key(const nops_point *pt, char *key, size_t *klen, uint64_t *id,
                                 const char **detail)
{
    char name[512]; /* measurement, or measurement_field (copied: snprintf was 7 % of this) */
    const size_t ml = pt->measurement_len, fl = pt->field_len;
    const size_t nl = ml + (fl ? 1 + fl : 0);
    if (nl >= sizeof name) {
        *detail = "series name longer than 511 bytes";
        return NOPS_REJECT_TOO_LARGE;
    }
    memcpy(name, pt->measurement, ml);
    if (fl) {
        name[ml] = '_';
        memcpy(name + ml + 1, pt->field, fl);
    }
    name[nl] = '\0';
    nops_label labels[NOPS_INGEST_MAX_TAGS]; /* sorted in place: the point's stay as they are */
    memcpy(labels, pt->tags, pt->n_tags * sizeof *labels);
    if (nops_detect_series_key(name, nl, labels, pt->n_tags, key, NOPS_KEY_MAX, klen, id) !=
        NOPS_OK) {
        *detail = "series key longer than 1023 bytes, a label given twice, or a name it cannot hold";
        return NOPS_REJECT_TOO_LARGE;
    }
    return NOPS_REJECT_NONE;
}

/* The slow path: build the key, find or admit and register the series. */
static nops_reject resolve_key(nops_detector *det, const nops_point *pt, uint32_t now_s,
                               nops_ingest_admit_fn admit, void *ud, uint32_t *slot,
                               const char **detail)
{
    char key[NOPS_KEY_MAX];
    size_t klen;
    uint64_t id;
    nops_reject r = canonical_key(pt, key, &klen, &id, detail);
    if (r != NOPS_REJECT_NONE)
        return r;
    if (nops_detect_lookup(det, id, slot) == NOPS_OK) {
        nops_detect_touch(det, *slot, now_s);
        return NOPS_REJECT_NONE;
    }
    const char *why = admit ? admit(ud, klen) : NULL;
    if (!why && nops_detect_slot(det, id, key, klen, now_s, slot) != NOPS_OK)
        why = "new series refused: out of memory registering it";
    if (why) {
        *detail = why;
        return NOPS_REJECT_SERIES_LIMIT;
    }
    return NOPS_REJECT_NONE;
}

void nops_ingest_series_hash(nops_ingest_series_cache *c, const nops_point *pt,
                             nops_ingest_series_ref *ref)
{
    uint64_t h[2];
    raw_hash(c, pt, h);
    ref->lo = (uint32_t)h[0];
    ref->hi = h[1] ? h[1] : 1;
    ref->pad = 0;
    if (c->cap) /* a hint: the probe finds the line in cache, or loads it then */
        __builtin_prefetch(&c->e[ref->lo & (c->cap - 1)], 0, 3);
}

bool nops_ingest_series_find(nops_ingest_series_cache *c, nops_detector *det,
                             const nops_ingest_series_ref *ref, uint32_t now_s, uint32_t *slot)
{
    const uint64_t gen = nops_detect_evictions(det);
    if (gen != c->gen) { /* slots were freed (and may be reused): forget every entry */
        if (c->n)
            memset(c->e, 0, (size_t)c->cap * sizeof *c->e);
        c->n = 0;
        c->gen = gen;
    }
    if (!c->cap)
        return false;
    const uint32_t mask = c->cap - 1;
    for (uint32_t i = ref->lo & mask; c->e[i].hi; i = (i + 1) & mask) {
        const sc_entry *e = &c->e[i];
        if (e->hi == ref->hi && e->lo == ref->lo) { /* hit */
            nops_detect_touch(det, e->slot, now_s);
            *slot = e->slot;
            return true;
        }
    }
    return false;
}

nops_reject nops_ingest_series_add(nops_ingest_series_cache *c, nops_detector *det,
                                   const nops_point *pt, const nops_ingest_series_ref *ref,
                                   uint32_t now_s, nops_ingest_admit_fn admit, void *ud,
                                   uint32_t *slot, const char **detail)
{
    nops_reject r = resolve_key(det, pt, now_s, admit, ud, slot, detail);
    if (r == NOPS_REJECT_NONE && nops_detect_evictions(det) == c->gen &&
        make_room(c, det)) { /* out of memory: the point is fine, only not cached */
        const uint32_t mask = c->cap - 1;
        uint32_t i = ref->lo & mask;
        while (c->e[i].hi)
            i = (i + 1) & mask;
        c->e[i] = (sc_entry){ref->hi, ref->lo, *slot};
        c->n++;
    }
    return r;
}

nops_reject nops_ingest_series_resolve(nops_ingest_series_cache *c, nops_detector *det,
                                       const nops_point *pt, uint32_t now_s,
                                       nops_ingest_admit_fn admit, void *ud, uint32_t *slot,
                                       const char **detail)
{
    if (!c || !pt->series_len)
        return resolve_key(det, pt, now_s, admit, ud, slot, detail);
    nops_ingest_series_ref ref;
    nops_ingest_series_hash(c, pt, &ref);
    if (nops_ingest_series_find(c, det, &ref, now_s, slot))
        return NOPS_REJECT_NONE;
    return nops_ingest_series_add(c, det, pt, &ref, now_s, admit, ud, slot, detail);
}
