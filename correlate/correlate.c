/*
 * correlate.c — signals → incidents.
 *
 * A new signal joins an open incident when, within the correlation window, it shares a grouping
 * label value (default service, host, cluster) with a signal of that incident, or when its
 * recent window correlates with one of theirs (|Pearson r| ≥ 0.8). Otherwise it opens an
 * incident. Pearson r of two windows is the dot product of their standardised forms (mean 0,
 * norm 1), so correlating one signal against all recent ones is one matrix-vector product
 * (cblas_sgemv, OpenBLAS) over the matrix of recent standardised windows.
 *
 * An incident resolves once every series in it has left its anomalous state and stayed normal
 * for `resolve_s` seconds of data time. Time here is the points' time, so a replay resolves the
 * same way as the live run.
 */
#include "correlate/correlate.h"
#include "detect/detect.h" /* NOPS_DETECT_MAX_WINDOW */

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#define RECENT 256           /* recent signals kept for matching */
#define MAX_INCIDENTS 1024   /* open incidents tracked */
#define MAX_MEMBERS 64       /* series tracked per incident for resolution */
#define GROUP_VALS 4         /* grouping labels compared */

typedef struct recent_sig {
    uint64_t series_id;              /* series */
    int64_t ts_ns;                   /* its time */
    int incident;                    /* index into incidents, -1 when gone */
    char group[GROUP_VALS][128];     /* values of the grouping labels ("" = absent) */
} recent_sig;

typedef struct incident_slot {
    bool used;                       /* slot in use */
    nops_incident rec;               /* the record as written to sinks */
    uint64_t members[MAX_MEMBERS];   /* series ids */
    bool active[MAX_MEMBERS];        /* member still anomalous */
    uint32_t n_members;              /* members tracked */
    int64_t last_clear_ns;           /* when the last member cleared */
    double best_score;               /* strongest signal so far */
    char first_series[256];          /* earliest signal's series */
} incident_slot;

struct nops_correlator {
    pthread_mutex_t lock;
    nops_correlate_params p;
    uint32_t W;                      /* window length used for correlation */
    char groups[GROUP_VALS][64];     /* grouping label names */
    size_t n_groups;
    recent_sig recent[RECENT];       /* ring of recent signals */
    float *mat;                      /* RECENT × W standardised windows, row per ring slot */
    bool has_window[RECENT];         /* row holds a usable window */
    uint32_t head, count;            /* ring */
    incident_slot inc[MAX_INCIDENTS];
    uint64_t opened_total, resolved_total;
    uint64_t seq;                    /* for incident ids */
};

/* The values of the grouping labels among a signal's labels ("" = absent). */
static void pick_groups(const nops_correlator *c, const nops_labels *ls, char vals[][128])
{
    for (uint32_t i = 0; i < ls->n; i++) {
        nops_label l = nops_labels_at(ls, i);
        for (size_t g = 0; g < c->n_groups; g++)
            if (strlen(c->groups[g]) == l.key_len && memcmp(c->groups[g], l.key, l.key_len) == 0 &&
                l.value_len < 128) {
                memcpy(vals[g], l.value, l.value_len);
                vals[g][l.value_len] = '\0';
            }
    }
}

nops_correlator *nops_correlate_new(const nops_correlate_params *p, uint32_t window,
                                    char *errstr, size_t errstr_size)
{
    nops_correlator *c = nops_calloc(1, sizeof *c);
    if (!c || !(c->mat = nops_aligned_alloc(64, (size_t)RECENT * window * sizeof(float)))) {
        nops_free(c);
        nops_errf(errstr, errstr_size, "out of memory creating the correlator");
        return NULL;
    }
    c->p = *p;
    c->W = window;
    const char *s = p->group_labels;
    while (*s && c->n_groups < GROUP_VALS) {
        const char *comma = strchr(s, ',');
        size_t n = comma ? (size_t)(comma - s) : strlen(s);
        if (n && n < sizeof c->groups[0]) {
            memcpy(c->groups[c->n_groups], s, n);
            c->groups[c->n_groups++][n] = '\0';
        }
        s += n + (comma ? 1 : 0);
    }
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

void nops_correlate_destroy(nops_correlator *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->lock);
    nops_free(c->mat);
    nops_free(c);
}

/*
 * Standardise into row: mean 0, norm 1; false for (near-)constant windows and for windows
 * shorter than half the correlation window. The detector gives no verdict before a series holds
 * W/2 points, so a signal's own window is never shorter; a shorter one is a window cut short,
 * and a few points ending in a spike correlate with any other spike (r ≈ 0.9 for 11 points):
 * such a signal joins by its labels only.
 */
static bool standardise(const float *w, uint32_t n, float *row, uint32_t W)
{
    if (n < 8 || n < W / 2)
        return false;
    double mean = 0, ss = 0;
    for (uint32_t i = 0; i < n; i++)
        mean += w[i];
    mean /= n;
    for (uint32_t i = 0; i < n; i++)
        ss += (w[i] - mean) * (w[i] - mean);
    if (!(ss > 1e-12 * (mean * mean + 1.0)))
        return false;
    const double inv = 1.0 / sqrt(ss);
    /* right-align shorter windows; the missing (oldest) part is zero and adds nothing */
    memset(row, 0, W * sizeof *row);
    for (uint32_t i = 0; i < n; i++)
        row[W - n + i] = (float)((w[i] - mean) * inv);
    return true;
}

/* Keep in `common` the pairs `other` holds too. */
static void intersect_labels(nops_labels *common, const nops_labels *other)
{
    nops_labels out = {0};
    for (uint32_t i = 0; i < common->n; i++) {
        nops_label l = nops_labels_at(common, i);
        if (nops_labels_has(other, &l))
            nops_labels_add(&out, l.key, l.key_len, l.value, l.value_len); /* fits: a subset */
    }
    *common = out;
}

/* The pairs as `k="v",...` into buf (cap bytes); pairs that do not fit are left out. */
static void labels_text(const nops_labels *ls, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < ls->n; i++) {
        nops_label l = nops_labels_at(ls, i);
        int n = snprintf(buf + len, cap - len, "%s%.*s=\"%.*s\"", len ? "," : "", (int)l.key_len,
                         l.key, (int)l.value_len, l.value);
        if (n > 0 && len + (size_t)n < cap)
            len += (size_t)n;
        else
            buf[len] = '\0'; /* a pair cut short is left out */
    }
}

static int find_match(nops_correlator *c, const nops_signal *sig, char vals[][128],
                      const float *row, bool have_row, float *r_out)
{
    /* 1. a shared grouping label with a recent signal of an open incident */
    for (uint32_t k = 0; k < c->count; k++) {
        const recent_sig *r = &c->recent[(c->head + RECENT - 1 - k) % RECENT];
        if (r->incident < 0 || sig->ts_ns - r->ts_ns > c->p.window_s * 1000000000ll ||
            r->ts_ns - sig->ts_ns > c->p.window_s * 1000000000ll)
            continue;
        for (size_t g = 0; g < c->n_groups; g++)
            if (vals[g][0] && strcmp(vals[g], r->group[g]) == 0)
                return r->incident;
    }
    if (!have_row || c->count == 0)
        return -1;
    /* 2. |Pearson r| over the standardised windows of all recent signals: y = M·row */
    float y[RECENT];
    cblas_sgemv(CblasRowMajor, CblasNoTrans, RECENT, (int)c->W, 1.0f, c->mat, (int)c->W, row, 1,
                0.0f, y, 1);
    int best = -1;
    float best_r = 0;
    for (uint32_t k = 0; k < c->count; k++) {
        uint32_t idx = (c->head + RECENT - 1 - k) % RECENT;
        const recent_sig *r = &c->recent[idx];
        if (!c->has_window[idx] || r->incident < 0 || r->series_id == sig->series_id ||
            llabs(sig->ts_ns - r->ts_ns) > c->p.window_s * 1000000000ll)
            continue;
        if (fabsf(y[idx]) >= c->p.min_r && fabsf(y[idx]) > best_r) {
            best_r = fabsf(y[idx]);
            best = r->incident;
        }
    }
    *r_out = best_r;
    return best;
}

static int new_incident(nops_correlator *c, const nops_signal *sig)
{
    for (int i = 0; i < MAX_INCIDENTS; i++) {
        if (c->inc[i].used)
            continue;
        incident_slot *s = &c->inc[i];
        memset(s, 0, sizeof *s);
        s->used = true;
        uint64_t h = XXH3_64bits_withSeed(&sig->series_id, sizeof sig->series_id,
                                          (uint64_t)sig->ts_ns ^ ++c->seq);
        snprintf(s->rec.id, sizeof s->rec.id, "%016llx", (unsigned long long)h);
        s->rec.status = NOPS_INCIDENT_OPEN;
        s->rec.opened_ns = sig->ts_ns;
        s->rec.common = sig->labels; /* narrowed as members join (intersect_labels) */
        snprintf(s->first_series, sizeof s->first_series, "%.255s", sig->series);
        c->opened_total++;
        return i;
    }
    return -1;
}

static void describe(incident_slot *s, const nops_signal *sig)
{
    nops_incident *r = &s->rec;
    labels_text(&r->common, r->labels, sizeof r->labels);
    snprintf(r->summary, sizeof r->summary, "%u signal(s) across %u series%s%.300s", r->n_signals,
             s->n_members, r->labels[0] ? " sharing " : "", r->labels);
    if (sig->score >= s->best_score) {
        s->best_score = sig->score;
        snprintf(r->root_cause_hint, sizeof r->root_cause_hint,
                 "earliest: %.150s; strongest: %.150s (score %.3f)", s->first_series,
                 sig->series, sig->score);
    }
}

nops_err nops_correlate_signal(nops_correlator *c, const nops_signal *sig, const float *window,
                               uint32_t n, nops_incident *out, bool *opened)
{
    char vals[GROUP_VALS][128] = {{0}};
    pick_groups(c, &sig->labels, vals);
    float row[NOPS_DETECT_MAX_WINDOW];
    bool have_row = window && standardise(window, n < c->W ? n : c->W,
                                          row, c->W);
    pthread_mutex_lock(&c->lock);
    float r = 0;
    int inc = find_match(c, sig, vals, row, have_row, &r);
    *opened = inc < 0;
    if (inc < 0 && (inc = new_incident(c, sig)) < 0) {
        pthread_mutex_unlock(&c->lock);
        return NOPS_FULL;
    }
    incident_slot *s = &c->inc[inc];
    if (!*opened)
        intersect_labels(&s->rec.common, &sig->labels);
    if (s->rec.n_signals < NOPS_INCIDENT_MAX_SIGNALS)
        memcpy(s->rec.signals[s->rec.n_signals], sig->id, NOPS_ID_LEN);
    s->rec.n_signals++;
    s->rec.updated_ns = sig->ts_ns > s->rec.updated_ns ? sig->ts_ns : s->rec.updated_ns;
    uint32_t m = 0;
    while (m < s->n_members && s->members[m] != sig->series_id)
        m++;
    if (m == s->n_members && m < MAX_MEMBERS)
        s->members[s->n_members++] = sig->series_id;
    if (m < MAX_MEMBERS)
        s->active[m] = true;
    describe(s, sig);
    /* remember the signal for later matches */
    uint32_t slot = c->head;
    recent_sig *rs = &c->recent[slot];
    rs->series_id = sig->series_id;
    rs->ts_ns = sig->ts_ns;
    rs->incident = inc;
    memcpy(rs->group, vals, sizeof rs->group);
    c->has_window[slot] = have_row;
    if (have_row)
        memcpy(c->mat + (size_t)slot * c->W, row, c->W * sizeof(float));
    else
        memset(c->mat + (size_t)slot * c->W, 0, c->W * sizeof(float));
    c->head = (c->head + 1) % RECENT;
    if (c->count < RECENT)
        c->count++;
    *out = s->rec;
    pthread_mutex_unlock(&c->lock);
    return NOPS_OK;
}

void nops_correlate_cleared(nops_correlator *c, uint64_t series_id, int64_t ts_ns)
{
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < MAX_INCIDENTS; i++) {
        incident_slot *s = &c->inc[i];
        if (!s->used)
            continue;
        for (uint32_t m = 0; m < s->n_members; m++)
            if (s->members[m] == series_id && s->active[m]) {
                s->active[m] = false;
                s->last_clear_ns = ts_ns > s->last_clear_ns ? ts_ns : s->last_clear_ns;
            }
    }
    pthread_mutex_unlock(&c->lock);
}

size_t nops_correlate_tick(nops_correlator *c, int64_t now_ns, nops_incident *out, size_t max)
{
    size_t n = 0;
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < MAX_INCIDENTS && n < max; i++) {
        incident_slot *s = &c->inc[i];
        if (!s->used)
            continue;
        bool any_active = false;
        for (uint32_t m = 0; m < s->n_members; m++)
            any_active |= s->active[m];
        if (any_active || now_ns - s->last_clear_ns < c->p.resolve_s * 1000000000ll)
            continue;
        s->rec.status = NOPS_INCIDENT_RESOLVED;
        s->rec.updated_ns = now_ns;
        out[n++] = s->rec;
        s->used = false;
        c->resolved_total++;
        for (uint32_t k = 0; k < RECENT; k++) /* recent signals no longer point at it */
            if (c->recent[k].incident == i)
                c->recent[k].incident = -1;
    }
    pthread_mutex_unlock(&c->lock);
    return n;
}

void nops_correlate_counts(nops_correlator *c, uint64_t *open, uint64_t *opened,
                           uint64_t *resolved)
{
    pthread_mutex_lock(&c->lock);
    uint64_t o = 0;
    for (int i = 0; i < MAX_INCIDENTS; i++)
        o += c->inc[i].used;
    if (open)
        *open = o;
    if (opened)
        *opened = c->opened_total;
    if (resolved)
        *resolved = c->resolved_total;
    pthread_mutex_unlock(&c->lock);
}

/* ---- the [correlate] table -------------------------------------------------------------- */

#define C(f) offsetof(nops_correlate_params, f)
static const nops_cfg_entry correlate_entries[] = {
    {"window_s", NOPS_CFG_INT, C(window_s), 1, 86400, "120", NULL, NULL, 0,
     "Signals at most this many seconds apart may join one incident."},
    {"min_r", NOPS_CFG_DOUBLE, C(min_r), 0.0, 1.0, "0.8", NULL, NULL, 0,
     "Series whose recent windows correlate at least this much (|Pearson r|) join."},
    {"group_labels", NOPS_CFG_STRING, C(group_labels), 0, 128, "service,host,cluster", NULL, NULL,
     0, "Comma-separated labels: signals sharing a value of one of them join (at most 4)."},
    {"resolve_s", NOPS_CFG_INT, C(resolve_s), 0, 86400 * 7, "300", NULL, NULL, 0,
     "An incident resolves once all its series have been normal this many seconds."},
};
#undef C

const nops_cfg_section nops_correlate_cfg_section = {
    "correlate",
    "Grouping of signals into incidents.",
    correlate_entries,
    sizeof correlate_entries / sizeof correlate_entries[0],
    NULL,
};
