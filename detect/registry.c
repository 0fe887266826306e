/*
 * registry.c — series identity: stable 64-bit ids, dense slots.
 *
 * A series is its canonical key (core/serieskey.c: name plus labels sorted by key), hashed with
 * XXH3 (stable across versions and machines) into the id. The id → slot map is an open-addressing
 * table with linear probing sized to at least twice the slot capacity, with backward-shift
 * deletion so eviction leaves no tombstones. Slots freed by eviction are reused before new
 * ones; state of a reused slot is reset.
 */
#include "detect/detect_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

uint64_t nops_detect_key_id(const char *key, size_t key_len)
{
    uint64_t id = XXH3_64bits(key, key_len);
    return id ? id : 1; /* 0 marks an empty table cell */
}

nops_err nops_detect_series_key(const char *name, size_t name_len, nops_label *labels,
                                size_t n_labels, char *key, size_t key_cap, size_t *key_len,
                                uint64_t *id)
{
    size_t o;
    nops_err e = nops_series_key(name, name_len, labels, n_labels, key, key_cap, &o);
    if (e != NOPS_OK)
        return e;
    if (key_len)
        *key_len = o;
    if (id)
        *id = nops_detect_key_id(key, o);
    return NOPS_OK;
}

static uint32_t ht_size_for(uint32_t cap)
{
    uint32_t n = 16;
    while (n < 2u * cap && n < (1u << 31))
        n <<= 1;
    return n;
}

static void ht_insert(uint64_t *ids, uint32_t *slots, uint32_t mask, uint64_t id, uint32_t slot)
{
    uint32_t i = (uint32_t)id & mask;
    while (ids[i])
        i = (i + 1) & mask;
    ids[i] = id;
    slots[i] = slot;
}

static nops_err ht_rebuild(nops_detector *det, uint32_t new_cap)
{
    uint64_t *ids = nops_calloc(new_cap, sizeof *ids);
    uint32_t *slots = nops_calloc(new_cap, sizeof *slots);
    if (!ids || !slots) {
        nops_free(ids);
        nops_free(slots);
        return NOPS_NOMEM;
    }
    for (uint32_t i = 0; i < det->ht_cap; i++)
        if (det->ht_id[i])
            ht_insert(ids, slots, new_cap - 1, det->ht_id[i], det->ht_slot[i]);
    nops_free(det->ht_id);
    nops_free(det->ht_slot);
    det->ht_id = ids;
    det->ht_slot = slots;
    det->ht_cap = new_cap;
    return NOPS_OK;
}

static nops_err resize_slot_arrays(nops_detector *det, uint32_t old_cap, uint32_t cap)
{
    uint64_t *sid = nops_realloc(det->slot_id, (size_t)cap * sizeof *sid);
    if (!sid)
        return NOPS_NOMEM;
    det->slot_id = sid;
    uint32_t *ls = nops_realloc(det->last_seen, (size_t)cap * sizeof *ls);
    if (!ls)
        return NOPS_NOMEM;
    det->last_seen = ls;
    char **keys = nops_realloc(det->keys, (size_t)cap * sizeof *keys);
    if (!keys)
        return NOPS_NOMEM;
    det->keys = keys;
    uint32_t *fs = nops_realloc(det->free_slots, (size_t)cap * sizeof *fs);
    if (!fs)
        return NOPS_NOMEM;
    det->free_slots = fs;
    for (uint32_t s = old_cap; s < cap; s++) {
        det->slot_id[s] = 0;
        det->last_seen[s] = 0;
        det->keys[s] = NULL;
    }
    return NOPS_OK;
}

nops_err nops__registry_init(nops_detector *det, uint32_t cap)
{
    nops_err err = resize_slot_arrays(det, 0, cap);
    if (err == NOPS_OK)
        err = ht_rebuild(det, ht_size_for(cap));
    return err;
}

void nops__registry_fini(nops_detector *det)
{
    if (det->keys)
        for (uint32_t s = 0; s < det->hwm; s++)
            nops_free(det->keys[s]);
    nops_free(det->keys);
    nops_free(det->slot_id);
    nops_free(det->last_seen);
    nops_free(det->free_slots);
    nops_free(det->ht_id);
    nops_free(det->ht_slot);
}

nops_err nops_detect_lookup(const nops_detector *det, uint64_t id, uint32_t *slot)
{
    id = id ? id : 1;
    const uint32_t mask = det->ht_cap - 1;
    for (uint32_t i = (uint32_t)id & mask; det->ht_id[i]; i = (i + 1) & mask) {
        if (det->ht_id[i] == id) {
            *slot = det->ht_slot[i];
            return NOPS_OK;
        }
    }
    return NOPS_NOTFOUND;
}

/* Make room for one more slot: grow state, slot arrays and the table together. */
static nops_err grow(nops_detector *det)
{
    const uint32_t old = det->st.cap;
    if (old >= (1u << 30))
        return NOPS_FULL;
    const uint32_t cap = old * 2;
    nops_err err = resize_slot_arrays(det, old, cap);
    if (err == NOPS_OK)
        err = nops__dstate_grow(&det->st, cap);
    return err;
}

nops_err nops_detect_slot(nops_detector *det, uint64_t id, const char *key, size_t key_len,
                          uint32_t now_s, uint32_t *slot)
{
    id = id ? id : 1;
    if (nops_detect_lookup(det, id, slot) == NOPS_OK) {
        det->last_seen[*slot] = now_s;
        return NOPS_OK;
    }
    if (det->n_free == 0 && det->hwm == det->st.cap) {
        nops_err err = grow(det);
        if (err != NOPS_OK)
            return err;
    }
    /* keep the table at most half full (also after a growth whose rebuild failed) */
    if ((uint64_t)(det->active + 1) * 2 > det->ht_cap) {
        nops_err err = ht_rebuild(det, ht_size_for(det->st.cap > det->active + 1
                                                       ? det->st.cap
                                                       : det->active + 1));
        if (err != NOPS_OK)
            return err;
    }
    char *copy = NULL;
    if (key) {
        copy = nops_strndup(key, key_len);
        if (!copy)
            return NOPS_NOMEM;
    }
    const bool reused = det->n_free > 0;
    uint32_t s = reused ? det->free_slots[--det->n_free] : det->hwm++;
    if (reused) /* a slot past the high-water mark was never written: zero already (state.c,
                   realloc_all); the reset's W strided writes were most of a new series' cost */
        nops__dstate_reset_slot(&det->st, s);
    if (det->st.seasonal)
        det->st.sper[s] = (uint32_t)det->p.season_points;
    det->slot_id[s] = id;
    det->last_seen[s] = now_s;
    det->keys[s] = copy;
    if (copy)
        det->key_bytes += key_len + 1 + 16;
    ht_insert(det->ht_id, det->ht_slot, det->ht_cap - 1, id, s);
    det->active++;
    *slot = s;
    return NOPS_OK;
}

nops_err nops_detect_reset_slot(nops_detector *det, uint32_t slot)
{
    if (slot >= det->hwm || !det->slot_id[slot])
        return NOPS_NOTFOUND;
    nops__dstate_reset_slot(&det->st, slot); /* as nops_detect_slot does for a new series */
    if (det->st.seasonal)
        det->st.sper[slot] = (uint32_t)det->p.season_points;
    return NOPS_OK;
}

void nops_detect_touch(nops_detector *det, uint32_t slot, uint32_t now_s)
{
    if (slot < det->hwm)
        det->last_seen[slot] = now_s;
}

uint64_t nops_detect_slot_id(const nops_detector *det, uint32_t slot)
{
    return slot < det->hwm ? det->slot_id[slot] : 0;
}

const char *nops_detect_slot_key(const nops_detector *det, uint32_t slot)
{
    if (slot >= det->hwm || !det->keys[slot])
        return "";
    return det->keys[slot];
}

static void ht_remove(nops_detector *det, uint64_t id)
{
    const uint32_t mask = det->ht_cap - 1;
    uint32_t i = (uint32_t)id & mask;
    while (det->ht_id[i] && det->ht_id[i] != id)
        i = (i + 1) & mask;
    if (!det->ht_id[i])
        return;
    /* backward-shift: pull later members of the cluster into the hole when allowed */
    uint32_t hole = i;
    for (uint32_t j = (i + 1) & mask; det->ht_id[j]; j = (j + 1) & mask) {
        uint32_t home = (uint32_t)det->ht_id[j] & mask;
        bool between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!between) {
            det->ht_id[hole] = det->ht_id[j];
            det->ht_slot[hole] = det->ht_slot[j];
            hole = j;
        }
    }
    det->ht_id[hole] = 0;
}

uint32_t nops_detect_evict_idle_report(nops_detector *det, uint32_t now_s, uint64_t *anomalous,
                                       uint32_t cap, uint32_t *n_anomalous)
{
    uint32_t evicted = 0, n_anom = 0;
    for (uint32_t s = 0; det->p.ttl_s > 0 && s < det->hwm; s++) {
        if (!det->slot_id[s] || (int64_t)now_s - (int64_t)det->last_seen[s] < det->p.ttl_s)
            continue;
        if (NOPS__META_HYST(det->st.meta[s]) & 0x80) { /* anomalous: its incident must hear of it */
            if (n_anom == cap)
                break;
            if (anomalous)
                anomalous[n_anom] = det->slot_id[s];
            n_anom++;
        }
        ht_remove(det, det->slot_id[s]);
        if (det->keys[s]) {
            det->key_bytes -= strlen(det->keys[s]) + 1 + 16;
            nops_free(det->keys[s]);
            det->keys[s] = NULL;
        }
        det->slot_id[s] = 0;
        det->free_slots[det->n_free++] = s;
        det->active--;
        det->evictions++;
        evicted++;
    }
    if (n_anomalous)
        *n_anomalous = n_anom;
    return evicted;
}

uint32_t nops_detect_evict_idle(nops_detector *det, uint32_t now_s)
{
    return nops_detect_evict_idle_report(det, now_s, NULL, UINT32_MAX, NULL);
}

uint64_t nops_detect_evictions(const nops_detector *det)
{
    return det->evictions;
}

uint32_t nops_detect_series_count(const nops_detector *det)
{
    return det->active;
}

void nops_detect_memory(const nops_detector *det, nops_detect_mem *mem)
{
    const size_t cap = det->st.cap;
    mem->state_bytes = cap * nops__dstate_bytes_per_slot(det->st.W, det->st.seasonal);
    mem->registry_bytes = (size_t)det->ht_cap * (sizeof(uint64_t) + sizeof(uint32_t)) +
                          cap * (sizeof(uint64_t) + sizeof(uint32_t) + sizeof(char *) +
                                 sizeof(uint32_t));
    mem->key_bytes = det->key_bytes;
    mem->capacity = det->st.cap;
    mem->active = det->active;
}

uint32_t nops_detect_slot_window(const nops_detector *det, uint32_t slot, float *out, uint32_t n)
{
    if (slot >= det->hwm || det->p.method == NOPS_METHOD_EWMA)
        return 0;
    const uint32_t meta = det->st.meta[slot];
    const uint32_t cnt = NOPS__META_CNT(meta), pos = NOPS__META_POS(meta), W = det->st.W;
    const uint32_t take = n < cnt ? n : cnt;
    /* the newest value sits just before `pos`; a full ring's oldest sits at `pos` */
    for (uint32_t i = 0; i < take; i++) {
        uint32_t k = (pos + W - take + i) % W;
        out[i] = det->st.ring[(size_t)k * det->st.cap + slot];
    }
    return take;
}

uint32_t nops_detect_slot_limit(const nops_detector *det)
{
    return det->hwm;
}

nops_err nops_detect_set_season(nops_detector *det, uint32_t slot, uint32_t period)
{
    if (slot >= det->hwm || !det->slot_id[slot])
        return NOPS_RANGE;
    if (period != 0 && (period < NOPS_DETECT_SEASON_MIN || period > NOPS_DETECT_SEASON_MAX ||
                        det->p.method != NOPS_METHOD_ALL))
        return NOPS_INVAL;
    if (!det->st.seasonal && period == 0)
        return NOPS_OK;
    if (nops__dstate_enable_season(&det->st) != NOPS_OK)
        return NOPS_NOMEM;
    if (det->st.sper[slot] == period)
        return NOPS_OK;
    const uint32_t old = det->st.sper[slot];
    const bool running = old != 0 && (det->st.sage[slot] >> 24) != 0;
    nops__season_reset_slot(&det->st, slot, period);
    /* a running season had the EWMA and the long baseline in deseasonalised terms: restart the
     * long baseline (the EWMA follows within a few points). Before its first period is in, a
     * series sees y = x, so nothing else changes. */
    if (running) {
        det->st.lage[slot] = 0;
        det->st.cp[slot] = det->st.cn[slot] = 0.0f;
    }
    return NOPS_OK;
}

uint32_t nops_detect_season_for_step(const nops_detect_params *p, int64_t step_s)
{
    if (!p || p->season_s <= 0 || step_s <= 0 || p->method != NOPS_METHOD_ALL)
        return 0;
    const int64_t n = p->season_s / step_s;
    return n >= NOPS_DETECT_SEASON_MIN && n <= NOPS_DETECT_SEASON_MAX ? (uint32_t)n : 0;
}

uint32_t nops_detect_get_season(const nops_detector *det, uint32_t slot)
{
    return slot < det->hwm && det->slot_id[slot] && det->st.seasonal ? det->st.sper[slot] : 0;
}

uint64_t nops_detect_season_relearned(const nops_detector *det)
{
    return det->season_relearned;
}

/*
 * Series record, little-endian (x86 and every target we build for):
 *   u32 magic "NDS3" | u32 W | u32 key_len | key | u32 meta | f64 em | f64 ev |
 *   u32 age | f32 last | f32 res | f64 lm | f64 lv | f32 cp | f32 cn | f64 gm | f64 gv |
 *   u32 lage | f32 lc | u32 season period | u32 season age | f32 knots[NOPS_DETECT_SEASON_BINS] |
 *   f32 window[cnt]
 * The window is stored oldest first; cnt comes from meta. Older records are still read, warm:
 * "NDS2" (no seasonal baseline: the series gets the detector's season_points and learns its
 * profile from scratch, counted by nops_detect_season_relearned) and "NDS1" (no fields between
 * ev and the window: age = cnt, the long baseline starts at the EWMA).
 */
#define NOPS__SNAP_MAGIC1 0x3153444eu
#define NOPS__SNAP_MAGIC2 0x3253444eu
#define NOPS__SNAP_MAGIC 0x3353444eu
#define NOPS__SNAP_EXTRA2 (4 + 4 + 4 + 8 + 8 + 4 + 4 + 8 + 8 + 4)
#define NOPS__SNAP_SEASON (4 + 4 + 4 * NOPS_DETECT_SEASON_BINS)
#define NOPS__SNAP_EXTRA (NOPS__SNAP_EXTRA2 + 4 + NOPS__SNAP_SEASON)
_Static_assert(4 * 4 + 8 + 8 + NOPS__SNAP_EXTRA == 88 + 4 + 8 + 4 * NOPS_DETECT_SEASON_BINS,
               "NOPS_DETECT_SERIES_REC_MAX (detect.h) names the record's fixed part");

size_t nops_detect_save_series(const nops_detector *det, uint32_t slot, uint8_t *buf, size_t cap)
{
    if (slot >= det->hwm || !det->slot_id[slot] || !det->keys[slot])
        return 0;
    const uint32_t meta = det->st.meta[slot];
    const uint32_t cnt = NOPS__META_CNT(meta), klen = (uint32_t)strlen(det->keys[slot]);
    const size_t need = 4 * 4 + klen + 8 + 8 + NOPS__SNAP_EXTRA + (size_t)cnt * 4;
    if (need > cap)
        return 0;
    uint8_t *p = buf;
    uint32_t hdr[3] = {NOPS__SNAP_MAGIC, det->st.W, klen};
    memcpy(p, hdr, sizeof hdr);
    p += sizeof hdr;
    memcpy(p, det->keys[slot], klen);
    p += klen;
    memcpy(p, &meta, 4);
    p += 4;
    memcpy(p, &det->st.em[slot], 8);
    p += 8;
    memcpy(p, &det->st.ev[slot], 8);
    p += 8;
    memcpy(p, &det->st.age[slot], 4);
    /* the previous value: a detector with a window keeps it in the ring once the window holds
     * a point (kernel_body.h, lastv), `last` is stale then */
    const uint32_t pos = NOPS__META_POS(meta);
    const float last = det->p.method != NOPS_METHOD_EWMA && cnt > 0
                           ? det->st.ring[(size_t)(pos ? pos - 1u : det->st.W - 1u) * det->st.cap + slot]
                           : det->st.last[slot];
    memcpy(p + 4, &last, 4);
    memcpy(p + 8, &det->st.res[slot], 4);
    memcpy(p + 12, &det->st.lm[slot], 8);
    memcpy(p + 20, &det->st.lv[slot], 8);
    memcpy(p + 28, &det->st.cp[slot], 4);
    memcpy(p + 32, &det->st.cn[slot], 4);
    memcpy(p + 36, &det->st.gm[slot], 8);
    memcpy(p + 44, &det->st.gv[slot], 8);
    memcpy(p + 52, &det->st.lage[slot], 4);
    memcpy(p + 56, &det->st.lc[slot], 4);
    memset(p + 60, 0, NOPS__SNAP_SEASON);
    if (det->st.seasonal) {
        memcpy(p + 60, &det->st.sper[slot], 4);
        memcpy(p + 64, &det->st.sage[slot], 4);
        for (uint32_t b = 0; b < NOPS_DETECT_SEASON_BINS; b++)
            memcpy(p + 68 + 4 * b, &det->st.sk[(size_t)b * det->st.cap + slot], 4);
    }
    p += NOPS__SNAP_EXTRA;
    float win[NOPS_DETECT_MAX_WINDOW];
    uint32_t n = 0;
    if (det->p.method != NOPS_METHOD_EWMA)
        n = nops_detect_slot_window(det, slot, win, cnt);
    if (n < cnt) /* EWMA-only detectors keep no ring: store the count's worth of zeros */
        memset(win + n, 0, (cnt - n) * sizeof(float));
    memcpy(p, win, (size_t)cnt * 4);
    p += (size_t)cnt * 4;
    return (size_t)(p - buf);
}

/* One saved series as read from its record (nops_detect_save_series's layout, v1–v3). */
typedef struct snap_rec {
    const char *key;
    uint32_t key_len, meta, cnt, age, lage, sper, sage;
    double em, ev, lm, lv, gm, gv;
    float last, res, cp, cn, lc;
    bool v2, v3;
    float knots[NOPS_DETECT_SEASON_BINS];
    float win[NOPS_DETECT_MAX_WINDOW];
    size_t used; /* bytes of the record */
} snap_rec;

/* The v2 and v3 parts after the EWMA moments at p; returns the end of what was read. */
static const uint8_t *decode_extra(const nops_detector *det, snap_rec *r, const uint8_t *p)
{
    if (r->v2) {
        memcpy(&r->age, p, 4);
        memcpy(&r->last, p + 4, 4);
        memcpy(&r->res, p + 8, 4);
        memcpy(&r->lm, p + 12, 8);
        memcpy(&r->lv, p + 20, 8);
        memcpy(&r->cp, p + 28, 4);
        memcpy(&r->cn, p + 32, 4);
        memcpy(&r->gm, p + 36, 8);
        memcpy(&r->gv, p + 44, 8);
        memcpy(&r->lage, p + 52, 4);
        p += NOPS__SNAP_EXTRA2;
    }
    r->sper = (uint32_t)det->p.season_points;
    if (r->v3) {
        memcpy(&r->lc, p, 4);
        memcpy(&r->sper, p + 4, 4);
        memcpy(&r->sage, p + 8, 4);
        memcpy(r->knots, p + 12, sizeof r->knots);
        p += 4 + NOPS__SNAP_SEASON;
    }
    return p;
}

/* Whether every value read is one the detector could have saved. */
static bool snap_valid(const snap_rec *r, uint32_t W)
{
    bool ok = isfinite(r->lc);
    for (uint32_t b = 0; b < NOPS_DETECT_SEASON_BINS; b++)
        ok = ok && isfinite(r->knots[b]);
    ok = ok && (!r->v3 || r->sper == 0 ||
                (r->sper >= NOPS_DETECT_SEASON_MIN && r->sper <= NOPS_DETECT_SEASON_MAX &&
                 (r->sage & 0xffffffu) < r->sper));
    ok = ok && r->cnt <= W && isfinite(r->em) && r->ev >= 0 && isfinite(r->ev) &&
         !memchr(r->key, '\0', r->key_len) && r->age >= r->cnt && r->age <= NOPS__AGE_MAX &&
         r->lage <= r->age && isfinite(r->last) && r->res >= 0 && isfinite(r->res) &&
         isfinite(r->lm) && r->lv >= 0 && isfinite(r->lv) && r->cp >= 0 && isfinite(r->cp) &&
         r->cn >= 0 && isfinite(r->cn) && isfinite(r->gm) && r->gv >= 0 && isfinite(r->gv);
    for (uint32_t i = 0; ok && i < r->cnt; i++)
        ok = isfinite(r->win[i]);
    return ok;
}

/* Reads and checks one record; NOPS_PARSE for anything the detector could not have saved. */
static nops_err decode_record(const nops_detector *det, const uint8_t *rec, size_t len,
                              snap_rec *r)
{
    uint32_t hdr[3];
    if (len < sizeof hdr)
        return NOPS_PARSE;
    memcpy(hdr, rec, sizeof hdr);
    memset(r, 0, offsetof(snap_rec, knots));
    memset(r->knots, 0, sizeof r->knots);
    r->v3 = hdr[0] == NOPS__SNAP_MAGIC;
    r->v2 = r->v3 || hdr[0] == NOPS__SNAP_MAGIC2;
    const size_t extra = r->v3 ? NOPS__SNAP_EXTRA : r->v2 ? NOPS__SNAP_EXTRA2 : 0;
    if ((!r->v2 && hdr[0] != NOPS__SNAP_MAGIC1) || hdr[1] != det->st.W || hdr[2] == 0 ||
        hdr[2] >= NOPS_KEY_MAX || len < sizeof hdr + hdr[2] + 20 + extra)
        return NOPS_PARSE;
    r->key = (const char *)rec + sizeof hdr;
    r->key_len = hdr[2];
    const uint8_t *p = rec + sizeof hdr + hdr[2];
    memcpy(&r->meta, p, 4);
    memcpy(&r->em, p + 4, 8);
    memcpy(&r->ev, p + 12, 8);
    r->cnt = NOPS__META_CNT(r->meta);
    r->age = r->lage = r->cnt;
    r->lm = r->gm = r->em;
    r->lv = r->gv = r->ev;
    p = decode_extra(det, r, p + 20);
    if (r->cnt > det->st.W || (size_t)(p - rec) + (size_t)r->cnt * 4 > len)
        return NOPS_PARSE;
    memcpy(r->win, p, (size_t)r->cnt * 4);
    r->used = (size_t)(p - rec) + (size_t)r->cnt * 4;
    if (!snap_valid(r, det->st.W))
        return NOPS_PARSE;
    /* a season the detector cannot run (method not all) is dropped, not refused */
    if (r->v3 && det->p.method != NOPS_METHOD_ALL)
        r->sper = r->sage = 0;
    return NOPS_OK;
}

/* Puts a decoded record into the (reset) slot. */
static void install_record(nops_detector *det, uint32_t slot, const snap_rec *r)
{
    nops__dstate *st = &det->st;
    const uint32_t cnt = r->cnt, W = st->W;
    nops__dstate_reset_slot(st, slot);
    for (uint32_t i = 0; i < cnt; i++) /* oldest at 0: the next point goes to cnt % W */
        st->ring[(size_t)i * st->cap + slot] = r->win[i];
    st->meta[slot] = NOPS__META(cnt, cnt % W, NOPS__META_HYST(r->meta));
    st->em[slot] = r->em;
    st->ev[slot] = r->ev;
    st->age[slot] = r->age;
    st->lage[slot] = r->lage;
    /* with a window (not EWMA alone) and cnt > 0 the kernel takes the previous value from the
     * ring, win[cnt − 1]: a record saved by such a detector has last = win[cnt − 1] */
    st->last[slot] = r->v2 ? r->last : (cnt ? r->win[cnt - 1] : 0.0f);
    st->res[slot] = r->res;
    st->lm[slot] = r->lm;
    st->lv[slot] = r->lv;
    st->cp[slot] = r->cp;
    st->cn[slot] = r->cn;
    st->gm[slot] = r->gm;
    st->gv[slot] = r->gv;
    st->lc[slot] = r->lc;
    nops__season_reset_slot(st, slot, r->sper);
    if (st->seasonal)
        st->sage[slot] = r->sage;
    if (r->v3 && st->seasonal) {
        for (uint32_t b = 0; b < NOPS_DETECT_SEASON_BINS; b++)
            st->sk[(size_t)b * st->cap + slot] = r->knots[b];
    } else if (!r->v3 && r->sper) {
        det->season_relearned++; /* an older record: the profile starts over, the rest is warm */
    }
    /* exact sums from the window (the same as recompute at a wrap) */
    double acc = 0;
    for (uint32_t i = 0; i < cnt; i++)
        acc += r->win[i];
    const float K = cnt ? (float)(acc / cnt) : 0.0f;
    double s1 = 0, s2 = 0;
    for (uint32_t i = 0; i < cnt; i++) {
        const double d = (double)r->win[i] - K;
        s1 += d;
        s2 += d * d;
    }
    st->shift[slot] = K;
    st->sum[slot] = s1;
    st->sumsq[slot] = s2;
}

nops_err nops_detect_restore_series(nops_detector *det, const uint8_t *rec, size_t len,
                                    uint32_t now_s, size_t *used, uint32_t *slot_out)
{
    snap_rec r;
    nops_err e = decode_record(det, rec, len, &r);
    if (e != NOPS_OK)
        return e;
    if (r.sper && nops__dstate_enable_season(&det->st) != NOPS_OK)
        return NOPS_NOMEM;
    uint32_t slot;
    e = nops_detect_slot(det, nops_detect_key_id(r.key, r.key_len), r.key, r.key_len, now_s,
                         &slot);
    if (e != NOPS_OK)
        return e;
    install_record(det, slot, &r);
    *used = r.used;
    if (slot_out)
        *slot_out = slot;
    return NOPS_OK;
}
