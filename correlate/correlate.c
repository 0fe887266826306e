/*
 * correlate.c — signals → incidents, host first (correlate.h states the rules).
 *
 * The design. An on-call engineer thinks in hosts and services: "web-7 is sick" (its CPU,
 * latency and errors all moved) or "checkout is sick" (several of its hosts moved together).
 * So a signal first looks for the live incident of its own host; only a host with no live
 * incident may join another host's, and only within its service, for the same metric, and when
 * the two windows — as
 * captured when each signal was detected, so batching cannot change them — have the same shape
 * (|Pearson r| ≥ min_r). Sharing a label alone no longer joins: two hosts of one service that
 * spike at the same time for unrelated reasons stay two incidents, and a whole service is not
 * one incident because two of its hosts had a bad minute.
 *
 * Pearson r of two windows is the dot product of their standardised forms (mean 0, norm 1), so
 * correlating one signal against all recent ones is one matrix-vector product (cblas_sgemv,
 * OpenBLAS) over the matrix of recent standardised windows.
 *
 * Identity. An incident's id is XXH3 of its opening host and its first signal's id; signal ids
 * are a hash of (series, time). Nothing else (no counter, no clock) enters, so a replay or
 * another instance opens the same id for the same first signal, and a signal id seen again is
 * recognised (recent ring and the incident's list) and not counted twice.
 *
 * An incident resolves once every series in it has left its anomalous state and stayed normal
 * for `resolve_s` seconds of data time. Time here is the points' time, so a replay resolves the
 * same way as the live run. A resolved one-host incident is kept reopen_s more (data time, from
 * when it became due): its host signalling again — a persistent shift ending after the
 * detectors took it as the new normal — reopens it rather than paging with a new id.
 */
#include "correlate/correlate_int.h"
#include "detect/detect.h" /* NOPS_DETECT_MAX_WINDOW */

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

static uint64_t hash_str(const char *s)
{
    return *s ? XXH3_64bits(s, strlen(s)) | 1 : 0; /* never 0: 0 means none */
}

/* OpenBLAS's threaded build keeps one pool of worker threads per process; two application
 * threads in it at once — this correlator's sgemv on a pipeline worker while FAISS trains or adds
 * on the learner's thread — can leave both spinning in exec_blas_async_wait for ever (seen: a
 * demo with the learning loop stopped consuming until max.poll.interval.ms threw it out of the
 * group). Products of this size (RECENT × W) gain nothing from threads, and FACTS.md measured
 * FAISS slower with them on 2 vCPUs, so the process's BLAS runs on the calling thread. */
nops_correlator *nops_correlate_new(const nops_correlate_params *p, uint32_t window,
                                    char *errstr, size_t errstr_size)
{
    openblas_set_num_threads(1); /* cheap, and idempotent */
    if (window == 0 || window > NOPS_DETECT_MAX_WINDOW) {
        nops_errf(errstr, errstr_size, "correlator window of %u points: give 1..%u", window,
                  (unsigned)NOPS_DETECT_MAX_WINDOW);
        return NULL;
    }
    nops_correlator *c = nops_calloc(1, sizeof *c);
    if (!c || !(c->mat = nops_aligned_alloc(64, (size_t)RECENT * window * sizeof(float)))) {
        nops_free(c);
        nops_errf(errstr, errstr_size, "out of memory creating the correlator");
        return NULL;
    }
    memset(c->mat, 0, (size_t)RECENT * window * sizeof(float));
    c->p = *p;
    c->W = window;
    c->n_host_names = nops__split_names(p->host_labels, c->host_names);
    c->n_svc_names = nops__split_names(p->service_labels, c->svc_names);
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
 * such a signal never joins another host.
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

/* Narrow an incident's common labels to the pairs a new member also has. */
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

/* k="v",... of a label set, pairs in the order held; a pair that does not fit is left out. */
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

/* ---- matching --------------------------------------------------------------------------- */

/* Is an open incident still live at time ts — not yet due to resolve: a signal within
 * window_s, a member anomalous, or the last one cleared less than resolve_s before? (Only data
 * time decides, so the answer does not depend on when checkpoints ran: a level shift that
 * signals when it starts and again when it ends, minutes later, is one incident.) */
static bool live_at(const nops_correlator *c, const incident_slot *s, int64_t ts)
{
    if (!s->used || s->resolved || s->merged_into[0])
        return false;
    if (llabs(ts - s->last_sig_ns) <= c->p.window_s * NS)
        return true;
    if (ts < s->rec.opened_ns)
        return false;
    for (uint32_t m = 0; m < s->n_members; m++)
        if (s->active[m])
            return true;
    return ts - s->last_clear_ns < c->p.resolve_s * NS;
}

static bool has_host(const incident_slot *s, uint64_t host_h)
{
    for (uint32_t h = 0; h < s->n_hosts; h++)
        if (s->hosts[h] == host_h)
            return true;
    return false;
}

/* The data time an incident resolves at, once no member is anomalous: its last member
 * cleared resolve_s before and no signal joined for window_s (the rule of the tick). */
static int64_t due_ns(const nops_correlator *c, const incident_slot *s)
{
    const int64_t a = s->last_clear_ns + c->p.resolve_s * NS;
    const int64_t b = s->last_sig_ns + c->p.window_s * NS;
    return a > b ? a : b;
}

/* May a signal of its host at ts reopen incident s? A one-host incident that resolved — or is
 * due to, the tick may not have run yet — at most reopen_s before ts in data time. Only data
 * time decides (not when the tick ran), so a replay reopens the same incidents. A service-wide
 * incident is final: one of its hosts signalling later is a problem of its own. */
static bool reopens_at(const nops_correlator *c, const incident_slot *s, int64_t ts)
{
    if (!s->used || s->n_hosts != 1 || ts < s->rec.opened_ns || s->merged_into[0])
        return false;
    for (uint32_t m = 0; m < s->n_members; m++)
        if (s->active[m])
            return false; /* not due: live_at decides */
    return ts - due_ns(c, s) < c->p.reopen_s * NS;
}

/* 1. The live incident of the signal's own host (the newest, if ever several); else the one
 *    it may reopen (the newest). */
static int match_host(const nops_correlator *c, uint64_t host_h, int64_t ts)
{
    int best = -1;
    bool best_live = false;
    for (int i = 0; i < MAX_INCIDENTS; i++) {
        const incident_slot *s = &c->inc[i];
        if (!s->used || !has_host(s, host_h))
            continue;
        const bool live = live_at(c, s, ts);
        if (!live && !reopens_at(c, s, ts))
            continue;
        if (best < 0 || (live && !best_live) ||
            (live == best_live && s->last_sig_ns > c->inc[best].last_sig_ns)) {
            best = i;
            best_live = live;
        }
    }
    return best;
}

#define MAX_BRIDGED 8 /* incidents one signal may bridge */

/* 2. Another host of the same service whose recent signal of the same metric has a window of
 *    the same shape: the service moving, not two hosts each with a problem of its own. */
static int match_service(nops_correlator *c, const nops_signal *sig, uint64_t host_h,
                         uint64_t service_h, uint64_t metric_h, const float *row, int *bridged,
                         uint32_t *n_bridged)
{
    *n_bridged = 0;
    if (!service_h || c->count == 0)
        return -1;
    float y[RECENT]; /* y = M·row: |Pearson r| against every recent window */
    cblas_sgemv(CblasRowMajor, CblasNoTrans, RECENT, (int)c->W, 1.0f, c->mat, (int)c->W, row, 1,
                0.0f, y, 1);
    int best = -1;
    float best_r = 0;
    for (uint32_t k = 0; k < c->count; k++) {
        uint32_t idx = (c->head + RECENT - 1 - k) % RECENT;
        const recent_sig *r = &c->recent[idx];
        if (!c->has_window[idx] || r->incident < 0 || r->service_h != service_h ||
            r->metric_h != metric_h || r->host_h == host_h || llabs(sig->ts_ns - r->ts_ns) > c->p.window_s * NS ||
            !live_at(c, &c->inc[r->incident], sig->ts_ns))
            continue;
        const float a = fabsf(y[idx]);
        if (a < (float)c->p.min_r)
            continue;
        uint32_t b = 0; /* every incident it matches (merge_bridged) */
        while (b < *n_bridged && bridged[b] != r->incident)
            b++;
        if (b == *n_bridged && b < MAX_BRIDGED)
            bridged[(*n_bridged)++] = r->incident;
        if (a > best_r || (a == best_r && r->incident < best)) {
            best_r = a;
            best = r->incident;
        }
    }
    return best;
}

/* 3. A straggler: a host of the service signalling the same metric within window_s of a live
 *    service-wide incident, whose window does not have the service's shape (|r| < min_r, or
 *    no usable window). Most likely the same event seen through a host that reacted
 *    differently (slower, capped, noisier) — but a host with a problem of its own that
 *    happens to start then looks the same at its first signal, and joining would swallow it
 *    (seed 14 of the quality fleet lost one host event that way). So it opens its own
 *    incident, named as a straggler of the service's and held at info while it holds one
 *    series: not a page; a second metric of that host (a problem of its own) makes it page by
 *    the usual rules. */
static int match_straggler(const nops_correlator *c, const nops_signal *sig, uint64_t host_h,
                           uint64_t service_h, uint64_t metric_h)
{
    if (!service_h)
        return -1;
    int best = -1;
    for (uint32_t k = 0; k < c->count; k++) {
        const recent_sig *r = &c->recent[(c->head + RECENT - 1 - k) % RECENT];
        if (r->incident < 0 || r->service_h != service_h || r->metric_h != metric_h ||
            r->host_h == host_h || llabs(sig->ts_ns - r->ts_ns) > c->p.window_s * NS)
            continue;
        const incident_slot *s = &c->inc[r->incident];
        if (s->n_hosts < 2 || !live_at(c, s, sig->ts_ns))
            continue;
        if (best < 0 || s->last_sig_ns > c->inc[best].last_sig_ns)
            best = r->incident;
    }
    return best;
}

/* A signal id already placed in a live incident: that incident's index, else -1. Only the
 * incidents of the signal's host can hold it, so only their lists are searched. */
static int seen_before(const nops_correlator *c, const nops_signal *sig, uint64_t sig_h,
                       uint64_t host_h)
{
    for (uint32_t k = 0; k < c->count; k++) {
        const recent_sig *r = &c->recent[(c->head + RECENT - 1 - k) % RECENT];
        if (r->sig_h == sig_h && r->incident >= 0)
            return r->incident;
    }
    for (int i = 0; i < MAX_INCIDENTS; i++) { /* older than the ring: the listed ids */
        const incident_slot *s = &c->inc[i];
        uint32_t n = s->rec.n_signals < NOPS_INCIDENT_MAX_SIGNALS ? s->rec.n_signals
                                                                 : NOPS_INCIDENT_MAX_SIGNALS;
        for (uint32_t j = 0; s->used && !s->merged_into[0] && has_host(s, host_h) && j < n; j++)
            if (strncmp(s->rec.signals[j], sig->id, NOPS_ID_LEN) == 0)
                return i;
    }
    return -1;
}

/* ---- incidents -------------------------------------------------------------------------- */

/* Forget slot i (lock held): no record; its recent signals no longer point at it. */
static void forget(nops_correlator *c, int i)
{
    c->inc[i].used = false;
    for (uint32_t k = 0; k < RECENT; k++)
        if (c->recent[k].incident == i)
            c->recent[k].incident = -1;
}

int nops__correlate_free_slot(nops_correlator *c)
{
    int victim = -1;
    int64_t victim_due = INT64_MAX;
    for (int i = 0; i < MAX_INCIDENTS; i++) {
        const incident_slot *s = &c->inc[i];
        if (!s->used)
            return i;
        if (s->resolved && due_ns(c, s) < victim_due) {
            victim = i;
            victim_due = due_ns(c, s);
        }
    }
    if (victim >= 0)
        forget(c, victim);
    return victim;
}

static int new_incident(nops_correlator *c, const nops_signal *sig, int32_t part,
                        const sig_labels *sl)
{
    const int i = nops__correlate_free_slot(c);
    if (i >= 0) {
        incident_slot *s = &c->inc[i];
        memset(s, 0, sizeof *s);
        s->used = true;
        s->part = part;
        /* deterministic: opening host and first signal, nothing else */
        char key[VAL_MAX + NOPS_ID_LEN + 1];
        const size_t hl = strlen(sl->host), il = strnlen(sig->id, NOPS_ID_LEN);
        memcpy(key, sl->host, hl + 1);
        memcpy(key + hl + 1, sig->id, il);
        snprintf(s->rec.id, sizeof s->rec.id, "%016llx",
                 (unsigned long long)XXH3_64bits(key, hl + 1 + il));
        s->rec.status = NOPS_INCIDENT_OPEN;
        s->rec.opened_ns = sig->ts_ns;
        s->rec.updated_ns = sig->ts_ns;
        s->last_sig_ns = sig->ts_ns;
        s->rec.common = sig->labels; /* narrowed as members join (intersect_labels) */
        snprintf(s->first_series, sizeof s->first_series, "%.255s", sig->series);
        c->opened_total++;
    }
    return i;
}

nops_severity nops_correlate_severity(const nops_correlate_params *p, uint32_t n_series,
                                      uint32_t n_hosts, double best_score, int64_t span_ns,
                                      int64_t single_series_span_ns)
{
    const bool strong = best_score >= p->strong_score;
    if (n_hosts >= 3 || (n_hosts >= 2 && strong) || (n_series >= 3 && strong) ||
        (n_series >= 2 && span_ns >= p->critical_after_s * NS))
        return NOPS_SEVERITY_CRITICAL;
    if (n_series >= 2 || n_hosts >= 2 || strong || single_series_span_ns >= p->warning_after_s * NS)
        return NOPS_SEVERITY_WARNING;
    return NOPS_SEVERITY_INFO;
}

/* Append text to the string in buf (cap bytes), cut where it no longer fits. */
static void append(char *buf, size_t cap, const char *text)
{
    const size_t len = strnlen(buf, cap - 1), add = strlen(text);
    const size_t n = add < cap - 1 - len ? add : cap - 1 - len;
    memcpy(buf + len, text, n);
    buf[len + n] = '\0';
}

static void describe(const nops_correlator *c, incident_slot *s, const nops_signal *sig)
{
    nops_incident *r = &s->rec;
    labels_text(&r->common, r->labels, sizeof r->labels);
    r->n_series = s->n_members;
    r->n_hosts = s->n_hosts;
    int64_t first = INT64_MAX, last = INT64_MIN, longest = 0;
    for (uint32_t m = 0; m < s->n_members; m++) {
        first = s->first_ns[m] < first ? s->first_ns[m] : first;
        last = s->last_ns[m] > last ? s->last_ns[m] : last;
        longest = s->last_ns[m] - s->first_ns[m] > longest ? s->last_ns[m] - s->first_ns[m]
                                                           : longest;
    }
    if (sig->score >= s->best_score) {
        s->best_score = sig->score;
        snprintf(r->root_cause_hint, sizeof r->root_cause_hint,
                 "earliest: %.150s; strongest: %.150s (score %.3f)", s->first_series,
                 sig->series, sig->score);
    }
    nops_severity sev = nops_correlate_severity(&c->p, s->n_members, s->n_hosts, s->best_score,
                                                s->n_members ? last - first : 0, longest);
    if (s->n_hosts > 1)
        s->straggler_of[0] = '\0'; /* spans hosts now: no longer one host trailing */
    if (s->straggler_of[0] && s->n_members < 2)
        sev = NOPS_SEVERITY_INFO; /* a straggler of a service-wide incident (match_straggler) */
    r->severity = sev > r->severity ? sev : r->severity; /* never lowered */
    char again[32] = "";
    if (s->reopened)
        snprintf(again, sizeof again, ", reopened %u time(s)", s->reopened);
    char weak[64] = "";
    if (s->straggler_of[0])
        snprintf(weak, sizeof weak, ", straggler of service-wide %s", s->straggler_of);
    int len = snprintf(r->summary, sizeof r->summary, "%s: %u signal(s) across %u series%s%s%s",
                       s->n_hosts > 1 ? "service-wide" : "host", r->n_signals, s->n_members,
                       s->n_hosts > 1 ? " on several hosts" : "", weak, again);
    if (len > 0 && (size_t)len < sizeof r->summary && r->labels[0]) { /* the labels, as fit */
        append(r->summary, sizeof r->summary, " sharing ");
        append(r->summary, sizeof r->summary, r->labels);
    }
}

/* Does a signal's hint say its series moved above the baseline (the embedder's reading)? */
static bool says_above(const char *hint, size_t n)
{
    static const char word[] = " above ";
    for (size_t i = 0; i + sizeof word - 1 <= n; i++)
        if (memcmp(hint + i, word, sizeof word - 1) == 0)
            return true;
    return false;
}

/* Keep the signal's metric name in the incident's short list (distinct, first come). */
static void add_metric(nops_incident *r, const nops_signal *sig, size_t name_len)
{
    if (name_len == 0 || name_len >= NOPS_INCIDENT_METRIC_LEN)
        return;
    for (uint8_t i = 0; i < r->n_metrics; i++)
        if (strlen(r->metrics[i]) == name_len && memcmp(r->metrics[i], sig->series, name_len) == 0)
            return;
    if (r->n_metrics == NOPS_INCIDENT_MAX_METRICS)
        return;
    memcpy(r->metrics[r->n_metrics], sig->series, name_len);
    r->metrics[r->n_metrics++][name_len] = '\0';
}

/* Add a signal to incident s: signal list, member series, host, labels, description. */
static void add_signal(nops_correlator *c, incident_slot *s, const nops_signal *sig,
                       const sig_labels *sl, uint64_t host_h, bool opened)
{
    if (!opened)
        intersect_labels(&s->rec.common, &sig->labels);
    add_metric(&s->rec, sig, sl->name_len);
    /* what the embedder reads of signals, kept as counts (recommend/: nops_recommend_incident) */
    s->rec.best_score = sig->score > s->rec.best_score ? (float)sig->score : s->rec.best_score;
    s->rec.n_above += says_above(sig->hint, strnlen(sig->hint, sizeof sig->hint));
    s->rec.n_ewma += sig->method == NOPS_FIRED_EWMA || sig->method == NOPS_FIRED_SEASON;
    if (s->rec.n_signals < NOPS_INCIDENT_MAX_SIGNALS)
        memcpy(s->rec.signals[s->rec.n_signals], sig->id, NOPS_ID_LEN);
    s->rec.n_signals++;
    s->rec.updated_ns = sig->ts_ns > s->rec.updated_ns ? sig->ts_ns : s->rec.updated_ns;
    s->last_sig_ns = sig->ts_ns > s->last_sig_ns ? sig->ts_ns : s->last_sig_ns;
    uint32_t m = 0;
    while (m < s->n_members && s->members[m] != sig->series_id)
        m++;
    if (m == s->n_members && m < MAX_MEMBERS) {
        s->members[s->n_members++] = sig->series_id;
        s->first_ns[m] = s->last_ns[m] = sig->ts_ns;
    }
    if (m < MAX_MEMBERS) {
        s->active[m] = true;
        s->first_ns[m] = sig->ts_ns < s->first_ns[m] ? sig->ts_ns : s->first_ns[m];
        s->last_ns[m] = sig->ts_ns > s->last_ns[m] ? sig->ts_ns : s->last_ns[m];
    }
    if (!has_host(s, host_h) && s->n_hosts < MAX_HOSTS)
        s->hosts[s->n_hosts++] = host_h;
    describe(c, s, sig);
}

static void remember(nops_correlator *c, const nops_signal *sig, uint64_t sig_h, int inc,
                     uint64_t host_h, uint64_t service_h, uint64_t metric_h, const float *row,
                     bool have_row)
{
    uint32_t slot = c->head;
    recent_sig *rs = &c->recent[slot];
    rs->sig_h = sig_h;
    rs->ts_ns = sig->ts_ns;
    rs->incident = inc;
    rs->host_h = host_h;
    rs->service_h = service_h;
    rs->metric_h = metric_h;
    c->has_window[slot] = have_row;
    if (have_row)
        memcpy(c->mat + (size_t)slot * c->W, row, c->W * sizeof(float));
    else
        memset(c->mat + (size_t)slot * c->W, 0, c->W * sizeof(float));
    c->head = (c->head + 1) % RECENT;
    if (c->count < RECENT)
        c->count++;
}

/*
 * A signal that correlates with members of several live incidents of its service and metric
 * bridges them: they are one event that split while it began — its first hosts' windows did
 * not correlate with each other (a one-point step correlates weakly when it is small against
 * the noise), so each opened an incident and later hosts joined whichever matched best (the
 * demo's deploy regression came out as incidents of 47, 33 and 2 hosts). The incident the
 * signal joined (`into`) takes the others in — single linkage, the rule joining already
 * follows — unless one holds several series of one host (a host with a problem of its own
 * keeps it), nor one its host reopened (that host's earlier problem coming back), nor one
 * opened more than window_s from the bridging signal (not the same beginning). Ids stay valid: a merged incident's last record is resolved, naming the incident
 * it went into (written by the next tick), and its signals, series and hosts carry on there.
 */
static void merge_one(nops_correlator *c, incident_slot *into, int from_i)
{
    incident_slot *f = &c->inc[from_i];
    intersect_labels(&into->rec.common, &f->rec.common);
    const uint32_t listed = f->rec.n_signals < NOPS_INCIDENT_MAX_SIGNALS
                                ? f->rec.n_signals : NOPS_INCIDENT_MAX_SIGNALS;
    for (uint32_t j = 0; j < listed; j++) {
        if (into->rec.n_signals < NOPS_INCIDENT_MAX_SIGNALS)
            memcpy(into->rec.signals[into->rec.n_signals], f->rec.signals[j], NOPS_ID_LEN);
        into->rec.n_signals++;
    }
    into->rec.n_signals += f->rec.n_signals - listed;
    for (uint32_t m = 0; m < f->n_members && into->n_members < MAX_MEMBERS; m++) {
        const uint32_t k = into->n_members++;
        into->members[k] = f->members[m];
        into->active[k] = f->active[m];
        into->first_ns[k] = f->first_ns[m];
        into->last_ns[k] = f->last_ns[m];
    }
    for (uint32_t h = 0; h < f->n_hosts; h++)
        if (!has_host(into, f->hosts[h]) && into->n_hosts < MAX_HOSTS)
            into->hosts[into->n_hosts++] = f->hosts[h];
    into->rec.opened_ns = f->rec.opened_ns < into->rec.opened_ns ? f->rec.opened_ns
                                                                 : into->rec.opened_ns;
    into->last_sig_ns = f->last_sig_ns > into->last_sig_ns ? f->last_sig_ns : into->last_sig_ns;
    into->last_clear_ns = f->last_clear_ns > into->last_clear_ns ? f->last_clear_ns
                                                                 : into->last_clear_ns;
    into->rec.severity = f->rec.severity > into->rec.severity ? f->rec.severity
                                                              : into->rec.severity;
    if (f->best_score > into->best_score) {
        into->best_score = f->best_score;
        memcpy(into->rec.root_cause_hint, f->rec.root_cause_hint,
               sizeof into->rec.root_cause_hint); /* distinct slots: no overlap */
    }
    const int into_i = (int)(into - c->inc);
    for (uint32_t k = 0; k < RECENT; k++)
        if (c->recent[k].incident == from_i)
            c->recent[k].incident = into_i;
    memcpy(f->merged_into, into->rec.id, NOPS_ID_LEN);
    f->rec.n_signals = 0; /* they moved: a signal is in one incident (its last record) */
    f->rec.status = NOPS_INCIDENT_RESOLVED;
    f->rec.updated_ns = into->rec.updated_ns;
    char into_id[NOPS_ID_LEN];
    memcpy(into_id, into->rec.id, NOPS_ID_LEN);
    snprintf(f->rec.summary, sizeof f->rec.summary, "merged into service-wide incident %s "
             "(one event that began as several incidents)", into_id);
}

static bool mergeable(const nops_correlator *c, const incident_slot *s, int64_t ts)
{
    return s->used && !s->merged_into[0] && !s->resolved && !s->reopened &&
           !(s->n_hosts < 2 && s->n_members > 1) &&
           llabs(ts - s->rec.opened_ns) <= c->p.window_s * NS;
}

static void merge_bridged(nops_correlator *c, int into_i, const int *bridged, uint32_t n,
                          int64_t ts)
{
    incident_slot *into = &c->inc[into_i];
    if (into->reopened || (into->n_hosts < 2 && into->n_members > 1))
        return; /* a host's own problem (or its return) takes no one in */
    for (uint32_t b = 0; b < n; b++) {
        const incident_slot *f = &c->inc[bridged[b]];
        if (bridged[b] == into_i || !mergeable(c, f, ts))
            continue;
        merge_one(c, into, bridged[b]);
    }
}

nops_err nops_correlate_signal(nops_correlator *c, const nops_signal *sig, int32_t part,
                               const float *window, uint32_t n, nops_incident *out, bool *opened)
{
    unsigned events = 0;
    nops_err e = nops_correlate_place(c, sig, part, window, n, out, &events);
    *opened = (events & NOPS_INC_OPENED) != 0;
    return e;
}

nops_err nops_correlate_place(nops_correlator *c, const nops_signal *sig, int32_t part,
                              const float *window, uint32_t n, nops_incident *out,
                              unsigned *events)
{
    bool opened = false;
    sig_labels sl;
    nops__signal_labels(c, sig, &sl);
    const uint64_t host_h = hash_str(sl.host), service_h = hash_str(sl.service);
    const uint64_t metric_h = XXH3_64bits(sig->series, sl.name_len);
    const uint64_t sig_h = XXH3_64bits(sig->id, strnlen(sig->id, NOPS_ID_LEN));
    float row[NOPS_DETECT_MAX_WINDOW];
    bool have_row = window && standardise(window, n < c->W ? n : c->W, row, c->W);
    pthread_mutex_lock(&c->lock);
    *events = 0;
    int inc = seen_before(c, sig, sig_h, host_h);
    if (inc >= 0) { /* a replayed signal: the incident as it stands */
        *out = c->inc[inc].rec;
        pthread_mutex_unlock(&c->lock);
        return NOPS_OK;
    }
    /* host first — also a host's incident to reopen: its shift ending is its own problem,
     * not the service moving (joining the service first split hosts whose shifts overlap
     * another host's of their service: seeds 3-5 of the quality fleet); but a host whose only
     * incident is an info one (a weak blip, not a page) still joins its service when the
     * service moves in this metric */
    inc = match_host(c, host_h, sig->ts_ns);
    int bridged[MAX_BRIDGED];
    uint32_t n_bridged = 0;
    if ((inc < 0 || c->inc[inc].rec.severity == NOPS_SEVERITY_INFO) && have_row) {
        int svc = match_service(c, sig, host_h, service_h, metric_h, row, bridged, &n_bridged);
        if (svc < 0)
            n_bridged = 0;
        inc = svc >= 0 ? svc : inc;
    }
    if (inc < 0) {
        const int of = match_straggler(c, sig, host_h, service_h, metric_h);
        if ((inc = new_incident(c, sig, part, &sl)) < 0) {
            pthread_mutex_unlock(&c->lock);
            return NOPS_FULL;
        }
        if (of >= 0)
            memcpy(c->inc[inc].straggler_of, c->inc[of].rec.id, NOPS_ID_LEN);
        opened = true;
    }
    incident_slot *s = &c->inc[inc];
    if (s->resolved) { /* its host flapped back within reopen_s: the same incident, open again */
        s->resolved = false;
        s->rec.status = NOPS_INCIDENT_OPEN;
        s->reopened++;
    }
    const uint32_t members_before = s->n_members;
    const nops_severity sev_before = s->rec.severity;
    if (n_bridged > 1)
        merge_bridged(c, inc, bridged, n_bridged, sig->ts_ns);
    add_signal(c, s, sig, &sl, host_h, opened);
    remember(c, sig, sig_h, inc, host_h, service_h, metric_h, row, have_row);
    if (opened)
        *events = NOPS_INC_OPENED;
    else
        *events = NOPS_INC_UPDATED | (s->n_members > members_before ? NOPS_INC_NEW_SERIES : 0) |
                  (s->rec.severity > sev_before ? NOPS_INC_SEVERITY_UP : 0);
    *out = s->rec;
    pthread_mutex_unlock(&c->lock);
    return NOPS_OK;
}

nops_err nops_correlate_attach(nops_correlator *c, const nops_incident *inc)
{
    nops_err e = NOPS_NOTFOUND;
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < MAX_INCIDENTS; i++) {
        nops_incident *r = &c->inc[i].rec;
        if (!c->inc[i].used || strncmp(r->id, inc->id, NOPS_ID_LEN) != 0)
            continue;
        r->n_recos = inc->n_recos <= NOPS_INCIDENT_MAX_RECOS ? inc->n_recos
                                                              : NOPS_INCIDENT_MAX_RECOS;
        memcpy(r->recos, inc->recos, sizeof r->recos);
        r->recommended_ns = inc->recommended_ns;
        e = NOPS_OK;
        break;
    }
    pthread_mutex_unlock(&c->lock);
    return e;
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
    return nops_correlate_tick_parts(c, now_ns, NULL, 0, out, max);
}

size_t nops_correlate_tick_parts(nops_correlator *c, int64_t now_all, const int64_t *part_now,
                                 size_t n_parts, nops_incident *out, size_t max)
{
    size_t n = 0;
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < MAX_INCIDENTS && n < max; i++) {
        incident_slot *s = &c->inc[i];
        if (!s->used)
            continue;
        int64_t now_ns = now_all; /* no later than its own partition's data */
        if (part_now && s->part >= 0 && (size_t)s->part < n_parts && part_now[s->part] < now_ns)
            now_ns = part_now[s->part];
        if (s->merged_into[0]) { /* its last record, naming where it went */
            out[n++] = s->rec;
            c->resolved_total++;
            forget(c, i);
            continue;
        }
        if (s->resolved) { /* kept for reopening: forgotten once reopen_s passed */
            if (now_ns - due_ns(c, s) >= c->p.reopen_s * NS)
                forget(c, i);
            continue;
        }
        bool any_active = false;
        for (uint32_t m = 0; m < s->n_members; m++)
            any_active |= s->active[m];
        if (any_active || now_ns - s->last_clear_ns < c->p.resolve_s * NS ||
            now_ns - s->last_sig_ns <= c->p.window_s * NS)
            continue;
        s->rec.status = NOPS_INCIDENT_RESOLVED;
        s->rec.updated_ns = now_ns;
        out[n++] = s->rec;
        c->resolved_total++;
        s->resolved = true; /* kept, for its host to reopen within reopen_s */
        if (s->n_hosts != 1 || now_ns - due_ns(c, s) >= c->p.reopen_s * NS)
            forget(c, i);
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
        o += c->inc[i].used && !c->inc[i].resolved && !c->inc[i].merged_into[0];
    if (open)
        *open = o;
    if (opened)
        *opened = c->opened_total;
    if (resolved)
        *resolved = c->resolved_total;
    pthread_mutex_unlock(&c->lock);
}
