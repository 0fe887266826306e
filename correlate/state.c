/*
 * state.c — a partition's open incidents as bytes and back: saved with the partition's detector
 * snapshot (ingest/snapshot.c) and restored with it, after a restart or by the next owner
 * after a rebalance; released when the partition goes.
 */
#include "correlate/correlate_int.h"

#include <stdlib.h>
#include <stddef.h>
#include <string.h>

/*
 * An incident belongs to the partition of its opening signal (where its host's points arrive,
 * when producers key by host); its state is saved with that partition's detector snapshot and
 * restored with it, by whichever instance is assigned the partition next.
 *
 * The saved form: a header, the partition's incidents — open ones and resolved ones kept for
 * reopening (incident_slot, in order) — then the recent signals that point at them (recent_sig
 * with `incident` as an index into that list, a flag, and the standardised window). Structs are plain data (no pointers), written as they are
 * in memory: a snapshot is read back by the same build, and the header's sizes refuse others.
 */
#define CORR_MAGIC 0x35524f4353504f4eull /* "NOPSCOR5": records carry metrics and recos,
                                            * slots straggler_of and merged_into */
#define CORR_MAGIC_V3 0x33524f4353504f4eull /* "NOPSCOR3": the layout before them, still read */

/*
 * Version 3 (the build before incidents carried metric names and recommendations, and before
 * stragglers and merges) saved a shorter slot: nops_incident up to n_hosts (the fields added
 * since are appended at its end: core.h keeps it so), and no straggler_of / merged_into. Its
 * layout is spelled out below, so the compiler places every field where that build did; a v3
 * slot is widened field by field on load (new fields zero: no metrics, no recommendations, no
 * straggler, not merged). (Version 4 never reached a release: two branches each used it.)
 */
#define ROUND_UP(x, a) (((x) + (a) - 1) / (a) * (a))
/* sizeof(nops_incident) in version 3: the struct ended at n_hosts */
#define V3_REC ROUND_UP(offsetof(nops_incident, metrics), _Alignof(nops_incident))
_Static_assert(offsetof(nops_incident, metrics) ==
                   offsetof(nops_incident, n_hosts) + sizeof(uint32_t),
               "nops_incident's version-3 prefix moved: version-3 snapshots cannot be read");

typedef struct incident_slot_v3 {
    bool used;
    int32_t part;
    _Alignas(nops_incident) unsigned char rec[V3_REC];
    uint64_t members[MAX_MEMBERS];
    bool active[MAX_MEMBERS];
    int64_t first_ns[MAX_MEMBERS];
    int64_t last_ns[MAX_MEMBERS];
    uint32_t n_members;
    uint64_t hosts[MAX_HOSTS];
    uint32_t n_hosts;
    bool resolved;
    uint32_t reopened;
    int64_t last_clear_ns;
    int64_t last_sig_ns;
    double best_score;
    char first_series[256];
} incident_slot_v3;
#define V3_SLOT sizeof(incident_slot_v3)

typedef struct corr_hdr {
    uint64_t magic;                  /* CORR_MAGIC */
    uint32_t W, slot_size, sig_size; /* window length, sizeof(incident_slot), sizeof(recent_sig) */
    int32_t part;                    /* whose incidents */
    uint32_t n_used, n_sigs;         /* incidents, then recent signals that follow */
} corr_hdr;

static size_t sig_rec_size(const nops_correlator *c)
{
    return sizeof(recent_sig) + sizeof(uint32_t) + (size_t)c->W * sizeof(float);
}

nops_err nops_correlate_save(nops_correlator *c, int32_t part, void **out, size_t *len)
{
    pthread_mutex_lock(&c->lock);
    int32_t *map = nops_malloc(MAX_INCIDENTS * sizeof *map); /* slot → index in the file */
    if (!map) {
        pthread_mutex_unlock(&c->lock);
        return NOPS_NOMEM;
    }
    corr_hdr h = {CORR_MAGIC, c->W, sizeof(incident_slot), sizeof(recent_sig), part, 0, 0};
    for (int i = 0; i < MAX_INCIDENTS; i++)
        map[i] = c->inc[i].used && c->inc[i].part == part ? (int32_t)h.n_used++ : -1;
    for (uint32_t k = 0; k < c->count; k++) {
        const recent_sig *r = &c->recent[(c->head + RECENT - c->count + k) % RECENT];
        h.n_sigs += r->incident >= 0 && map[r->incident] >= 0;
    }
    const size_t total = sizeof h + (size_t)h.n_used * sizeof(incident_slot) +
                         (size_t)h.n_sigs * sig_rec_size(c);
    unsigned char *b = nops_malloc(total);
    if (!b) {
        nops_free(map);
        pthread_mutex_unlock(&c->lock);
        return NOPS_NOMEM;
    }
    size_t o = 0;
#define PUT(src, n) (memcpy(b + o, (src), (n)), o += (n))
    PUT(&h, sizeof h);
    for (int i = 0; i < MAX_INCIDENTS; i++)
        if (map[i] >= 0)
            PUT(&c->inc[i], sizeof c->inc[i]);
    for (uint32_t k = 0; k < c->count; k++) { /* oldest first, as they came */
        const uint32_t idx = (c->head + RECENT - c->count + k) % RECENT;
        recent_sig r = c->recent[idx];
        if (r.incident < 0 || map[r.incident] < 0)
            continue;
        r.incident = map[r.incident];
        const uint32_t has = c->has_window[idx];
        PUT(&r, sizeof r);
        PUT(&has, sizeof has);
        PUT(c->mat + (size_t)idx * c->W, c->W * sizeof(float));
    }
#undef PUT
    nops_free(map);
    pthread_mutex_unlock(&c->lock);
    *out = b;
    *len = total;
    return NOPS_OK;
}

/* Forget the incidents of `part` (lock held): no record is written, their partition's owner
 * carries them on. */
static void release_locked(nops_correlator *c, int32_t part)
{
    for (int i = 0; i < MAX_INCIDENTS; i++) {
        if (!c->inc[i].used || c->inc[i].part != part)
            continue;
        c->inc[i].used = false;
        for (uint32_t k = 0; k < RECENT; k++)
            if (c->recent[k].incident == i)
                c->recent[k].incident = -1;
    }
}

void nops_correlate_release(nops_correlator *c, int32_t part)
{
    pthread_mutex_lock(&c->lock);
    release_locked(c, part);
    pthread_mutex_unlock(&c->lock);
}

/* A time read back: within ±2^62 ns (a few hundred years), so differences cannot overflow. */
static bool time_sane(int64_t t)
{
    return t >= -(INT64_C(1) << 62) && t <= (INT64_C(1) << 62);
}

/* A bool field read back holds 0 or 1 (any other byte would be undefined once loaded). */
static bool bool_byte(const unsigned char *q, size_t off)
{
    return q[off] <= 1;
}

/*
 * Is the saved incident slot at q well formed for `part`? The snapshot's tag vouches for its
 * origin only when the engine key is set (without it the tag is a plain checksum anyone who can
 * write the state directory can recompute), so every field that indexes, loops or subtracts is
 * checked before the slot is used.
 */
static bool slot_sane(const unsigned char *q, int32_t part)
{
    if (!bool_byte(q, offsetof(incident_slot, used)) ||
        !bool_byte(q, offsetof(incident_slot, resolved)))
        return false;
    for (size_t m = 0; m < MAX_MEMBERS; m++)
        if (!bool_byte(q, offsetof(incident_slot, active) + m))
            return false;
    incident_slot s;
    memcpy(&s, q, sizeof s);
    if (!s.used || s.part != part || s.n_members > MAX_MEMBERS || s.n_hosts > MAX_HOSTS ||
        !nops_labels_valid(&s.rec.common) ||
        (s.rec.status != NOPS_INCIDENT_OPEN && s.rec.status != NOPS_INCIDENT_RESOLVED) ||
        s.rec.severity < NOPS_SEVERITY_INFO || s.rec.severity > NOPS_SEVERITY_CRITICAL ||
        !time_sane(s.rec.opened_ns) || !time_sane(s.rec.updated_ns) ||
        !time_sane(s.last_clear_ns) || !time_sane(s.last_sig_ns) || !(s.best_score >= 0.0) ||
        !(s.best_score <= 1.0))
        return false;
    for (uint32_t m = 0; m < s.n_members; m++)
        if (!time_sane(s.first_ns[m]) || !time_sane(s.last_ns[m]))
            return false;
    if (!memchr(s.straggler_of, '\0', sizeof s.straggler_of) ||
        !memchr(s.merged_into, '\0', sizeof s.merged_into))
        return false; /* ids are strings: a copy or a compare must find their end */
    if (s.rec.n_metrics > NOPS_INCIDENT_MAX_METRICS || s.rec.n_recos > NOPS_INCIDENT_MAX_RECOS ||
        !time_sane(s.rec.recommended_ns) || !(s.rec.best_score >= 0.0f) ||
        !(s.rec.best_score <= 1.0f))
        return false;
    for (uint8_t k = 0; k < s.rec.n_recos; k++) {
        const nops_incident_reco *r = &s.rec.recos[k];
        if (!(r->score >= 0.0f && r->score <= 1.0f) ||
            !(r->confidence >= 0.0f && r->confidence <= 1.0f))
            return false;
    }
    return true;
}

/* The saved slot at q (of a file of version `magic`) in this build's layout, into out. */
static void widen_slot(uint64_t magic, const unsigned char *q, unsigned char *out)
{
    if (magic == CORR_MAGIC) {
        memcpy(out, q, sizeof(incident_slot));
        return;
    }
    incident_slot_v3 v;
    incident_slot w;
    memcpy(&v, q, sizeof v);
    memset(&w, 0, sizeof w);
    w.used = v.used;
    w.part = v.part;
    memcpy(&w.rec, v.rec, V3_REC);
    memcpy(w.members, v.members, sizeof w.members);
    memcpy(w.active, v.active, sizeof w.active);
    memcpy(w.first_ns, v.first_ns, sizeof w.first_ns);
    memcpy(w.last_ns, v.last_ns, sizeof w.last_ns);
    w.n_members = v.n_members;
    memcpy(w.hosts, v.hosts, sizeof w.hosts);
    w.n_hosts = v.n_hosts;
    w.resolved = v.resolved;
    w.reopened = v.reopened;
    w.last_clear_ns = v.last_clear_ns;
    w.last_sig_ns = v.last_sig_ns;
    w.best_score = v.best_score;
    memcpy(w.first_series, v.first_series, sizeof w.first_series);
    memcpy(out, &w, sizeof w);
}

/* Is the saved form in b well shaped for this correlator and `part`? */
static bool load_shape(const nops_correlator *c, int32_t part, const unsigned char *b,
                       size_t len, corr_hdr *h)
{
    if (len < sizeof *h)
        return false;
    memcpy(h, b, sizeof *h);
    const size_t slot = h->magic == CORR_MAGIC ? sizeof(incident_slot) : V3_SLOT;
    if ((h->magic != CORR_MAGIC && h->magic != CORR_MAGIC_V3) || h->W != c->W ||
        h->slot_size != slot || h->sig_size != sizeof(recent_sig) || h->part != part ||
        h->n_used > MAX_INCIDENTS || h->n_sigs > RECENT)
        return false;
    if (len != sizeof *h + (size_t)h->n_used * slot + (size_t)h->n_sigs * sig_rec_size(c))
        return false;
    const unsigned char *q = b + sizeof *h;
    unsigned char wide[sizeof(incident_slot)];
    for (uint32_t k = 0; k < h->n_used; k++, q += slot) {
        widen_slot(h->magic, q, wide);
        if (!slot_sane(wide, part))
            return false;
    }
    for (uint32_t k = 0; k < h->n_sigs; k++, q += sig_rec_size(c)) {
        recent_sig r;
        memcpy(&r, q, sizeof r);
        if (r.incident < 0 || (uint32_t)r.incident >= h->n_used || !time_sane(r.ts_ns))
            return false;
    }
    return true;
}

nops_err nops_correlate_load(nops_correlator *c, int32_t part, const void *data, size_t len)
{
    const unsigned char *b = data;
    corr_hdr h;
    if (!load_shape(c, part, b, len, &h))
        return NOPS_PARSE;
    pthread_mutex_lock(&c->lock);
    release_locked(c, part);
    int slot_of[MAX_INCIDENTS];
    const unsigned char *q = b + sizeof h;
    nops_err e = NOPS_OK;
    const size_t slot = h.slot_size; /* checked by load_shape */
    for (uint32_t k = 0; k < h.n_used; k++, q += slot) {
        const int i = nops__correlate_free_slot(c); /* may forget a resolved one of another */
        slot_of[k] = i;
        for (uint32_t j = 0; i >= 0 && j < k; j++) /* a full table: one just loaded went */
            slot_of[j] = slot_of[j] == i ? -1 : slot_of[j];
        if (i < 0) {
            e = NOPS_FULL;
            continue;
        }
        incident_slot *s = &c->inc[i];
        widen_slot(h.magic, q, (unsigned char *)s);
        s->rec.id[NOPS_ID_LEN - 1] = s->rec.labels[sizeof s->rec.labels - 1] = '\0';
        for (uint8_t m = 0; m < NOPS_INCIDENT_MAX_METRICS; m++)
            s->rec.metrics[m][NOPS_INCIDENT_METRIC_LEN - 1] = '\0';
        for (uint8_t r = 0; r < NOPS_INCIDENT_MAX_RECOS; r++)
            s->rec.recos[r].playbook_id[sizeof s->rec.recos[r].playbook_id - 1] = '\0';
        s->rec.summary[sizeof s->rec.summary - 1] = '\0';
        s->rec.root_cause_hint[sizeof s->rec.root_cause_hint - 1] = '\0';
        s->first_series[255] = '\0';
    }
    for (uint32_t k = 0; k < h.n_sigs; k++, q += sig_rec_size(c)) {
        recent_sig r;
        uint32_t has;
        memcpy(&r, q, sizeof r);
        memcpy(&has, q + sizeof r, sizeof has);
        r.incident = slot_of[r.incident];
        const uint32_t at = c->head;
        c->recent[at] = r;
        c->has_window[at] = has != 0;
        memcpy(c->mat + (size_t)at * c->W, q + sizeof r + sizeof has, c->W * sizeof(float));
        c->head = (c->head + 1) % RECENT;
        c->count += c->count < RECENT;
    }
    pthread_mutex_unlock(&c->lock);
    return e;
}

