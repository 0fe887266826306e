/*
 * score.c — the scorers of score.h.
 *
 * The window score follows the published definition of the Numenta Anomaly Benchmark (NAB,
 * Lavin & Ahmad, "Evaluating Real-time Anomaly Detection Algorithms — the Numenta Anomaly
 * Benchmark", IEEE ICMLA 2015, arXiv:1510.03336), as its reference code states it:
 * github.com/numenta/NAB nab/sweeper.py (scaledSigmoid, calcSweepScore, calcScoreByThreshold),
 * nab/runner.py (normalize) and config/profiles.json (the three cost profiles). Written here
 * from that description, not copied:
 *   - S(y) = 2·sigmoid(−5y) − 1 = 2/(1+e^{5y}) − 1, and −1 for y ≥ 3;
 *   - inside a window of width w ending at index r, a detection at i scores
 *     tp·S(−(r − i + 1)/w)/S(−1) (so the window's first point earns exactly tp);
 *     a window keeps the best (earliest) of its detections, or −fn when it has none;
 *   - outside windows a detection scores fp·S(|r_prev − i|/(w_prev − 1)) where r_prev and
 *     w_prev belong to the last window that ended before it, and fp·S(3) = −fp before the
 *     first window;
 *   - NAB ignores the first min(15 % of the series, 750) points ("probationary"); the
 *     caller passes that length;
 *   - normalised = 100·(raw − null)/(perfect − null), null the score of a detector that never
 *     fires (−fn per window), perfect tp per window.
 * NAB also sweeps each detector's threshold to its best score on the corpus; that is the
 * caller's business (bench/bench_quality.c does it for the baselines).
 *
 * Event scoring (fleet) counts signals against event windows and follows each event's signals
 * into the incidents they joined; see nops_synth_event_score.
 */
#include "synth/score.h"

#include <math.h>
#include <string.h>

const nops_synth_nab_profile nops_synth_nab_profiles[NOPS_SYNTH_NAB_PROFILES] = {
    {"standard", 1.0, 0.11, 1.0},
    {"reward_low_FP_rate", 1.0, 0.22, 1.0},
    {"reward_low_FN_rate", 1.0, 0.11, 2.0},
};

double nops_synth_nab_sigmoid(double y)
{
    if (y >= 3.0) return -1.0;
    return 2.0 / (1.0 + exp(5.0 * y)) - 1.0;
}

nops_err nops_synth_nab_score(const nops_synth_nab_profile *p, uint32_t n,
                              const nops_synth_window *w, size_t nw, const uint32_t *det, size_t nd,
                              uint32_t probation, nops_synth_nab_tally *t)
{
    for (size_t k = 0; k < nw; k++)
        if (w[k].first > w[k].last || w[k].last >= n || (k > 0 && w[k].first <= w[k - 1].last))
            return NOPS_INVAL;
    for (size_t j = 1; j < nd; j++)
        if (det[j] < det[j - 1]) return NOPS_INVAL;
    const double max_tp = nops_synth_nab_sigmoid(-1.0);
    double raw = 0, fp_cost = 0;
    uint32_t hit = 0, fp = 0;
    size_t k = 0, j = 0;
    /* one walk: windows in order, detections in order */
    while (j < nd && det[j] < probation)
        j++;
    for (; j < nd; j++) {
        const uint32_t i = det[j];
        if (i >= n) return NOPS_INVAL;
        while (k < nw && w[k].last < i) { /* windows passed without (more) detections */
            k++;
        }
        if (k < nw && i >= w[k].first) { /* inside window k: only its first detection counts */
            const double width = (double)(w[k].last - w[k].first + 1);
            raw +=
                p->tp * nops_synth_nab_sigmoid(-((double)(w[k].last - i) + 1.0) / width) / max_tp;
            hit++;
            /* skip the rest of this window's detections */
            const uint32_t last = w[k].last;
            while (j + 1 < nd && det[j + 1] <= last)
                j++;
            k++;
            continue;
        }
        /* outside: relative to the last window that ended before i */
        double pos = 3.0;
        if (k > 0) {
            const nops_synth_window *pw = &w[k - 1];
            const double width = (double)(pw->last - pw->first + 1);
            pos = width > 1 ? (double)(i - pw->last) / (width - 1.0) : 3.0;
        }
        const double c = p->fp * nops_synth_nab_sigmoid(pos);
        raw += c;
        fp_cost += c;
        fp++;
    }
    raw -= p->fn * (double)(nw - hit);
    t->raw += raw;
    t->fp_cost += fp_cost;
    t->windows += (uint32_t)nw;
    t->hit += hit;
    t->fp += fp;
    t->points += n > probation ? n - probation : 0;
    return NOPS_OK;
}

double nops_synth_nab_normalised(const nops_synth_nab_profile *p, const nops_synth_nab_tally *t)
{
    const double null = -p->fn * t->windows, perfect = p->tp * t->windows;
    if (perfect - null <= 0) return 0.0;
    return 100.0 * (t->raw - null) / (perfect - null);
}

/* ---- fleet events ------------------------------------------------------------------------ */

/* Index of the event a signal belongs to, or −1. */
int nops_synth_event_match(const nops_synth_event_truth *ev, size_t nev,
                           const nops_synth_detection *d)
{
    for (size_t e = 0; e < nev; e++) {
        if (d->tick < ev[e].first || d->tick > ev[e].last) continue;
        for (uint32_t s = 0; s < ev[e].n_series; s++)
            if (ev[e].series[s] == d->series) return (int)e;
    }
    return -1;
}

#define NO_HOST UINT32_MAX
#define MIXED (UINT32_MAX - 1)

/* Did all signals of event e go into one incident, and which? −1 when none or several. */
static int32_t sole_incident(const nops_synth_detection *d, size_t nd, const int *owner, int e)
{
    int32_t inc = -1;
    for (size_t j = 0; j < nd; j++) {
        if (owner[j] != e) continue;
        if (d[j].incident < 0 || (inc >= 0 && d[j].incident != inc)) return -1;
        inc = d[j].incident;
    }
    return inc;
}

/* The grouping figures of score.h, per host and service event (a helper of
 * nops_synth_event_score: owner[] maps each signal to its event, inc_host[] each incident to
 * its one host, MIXED or NO_HOST; inc_true[] whether it holds a true signal). */
static void grouping(const nops_synth_event_truth *ev, size_t nev, const uint32_t *series_host,
                     const nops_synth_detection *d, size_t nd, const int *owner,
                     const uint32_t *inc_host, nops_synth_event_figures *f)
{
    for (size_t e = 0; e < nev; e++) {
        if (ev[e].cls == NOPS_SYNTH_EV_HOST) {
            f->host_events++;
            const int32_t inc = sole_incident(d, nd, owner, (int)e);
            /* one host per host event: the incident must hold only it */
            if (inc >= 0 && ev[e].n_series > 0 && inc_host[inc] == series_host[ev[e].series[0]])
                f->host_one++;
        } else if (ev[e].cls == NOPS_SYNTH_EV_SERVICE) {
            f->service_events++;
            const int32_t inc = sole_incident(d, nd, owner, (int)e);
            if (inc < 0) continue;
            /* every signal of that incident on a host of the event, at least two hosts */
            uint32_t h0 = NO_HOST;
            bool two = false, outside = false;
            for (size_t j = 0; j < nd && !outside; j++) {
                if (d[j].incident != inc) continue;
                const uint32_t h = series_host[d[j].series];
                bool in = false;
                for (uint32_t s = 0; s < ev[e].n_series && !in; s++)
                    in = series_host[ev[e].series[s]] == h;
                outside = !in;
                if (h0 == NO_HOST)
                    h0 = h;
                else if (h != h0)
                    two = true;
            }
            if (two && !outside) f->service_one++;
        }
    }
}

nops_err nops_synth_event_score(const nops_synth_event_truth *ev, size_t nev,
                                const uint32_t *series_host, uint32_t n_series, uint64_t points,
                                const nops_synth_detection *d, size_t nd, uint32_t n_incidents,
                                nops_synth_event_figures *f)
{
    memset(f, 0, sizeof *f);
    for (size_t e = 0; e < nev; e++)
        for (uint32_t s = 0; s < ev[e].n_series; s++)
            if (ev[e].series[s] >= n_series) return NOPS_INVAL;
    for (size_t j = 0; j < nd; j++)
        if (d[j].series >= n_series || d[j].incident >= (int32_t)n_incidents || d[j].incident < -1)
            return NOPS_INVAL;
    int *owner = nops_malloc((nd ? nd : 1) * sizeof *owner);
    uint32_t *first = nops_malloc((nev ? nev : 1) * sizeof *first);
    uint32_t *inc_host = nops_malloc((n_incidents ? n_incidents : 1) * sizeof *inc_host);
    bool *inc_true = nops_calloc(n_incidents ? n_incidents : 1, sizeof *inc_true);
    if (!owner || !first || !inc_host || !inc_true) {
        nops_free(owner);
        nops_free(first);
        nops_free(inc_host);
        nops_free(inc_true);
        return NOPS_NOMEM;
    }
    for (size_t e = 0; e < nev; e++)
        first[e] = UINT32_MAX;
    for (uint32_t i = 0; i < n_incidents; i++)
        inc_host[i] = NO_HOST;
    for (size_t j = 0; j < nd; j++) {
        owner[j] = nops_synth_event_match(ev, nev, &d[j]);
        if (owner[j] >= 0) {
            f->true_signals++;
            if (d[j].tick < first[owner[j]]) first[owner[j]] = d[j].tick;
        }
        if (d[j].incident >= 0) {
            uint32_t *h = &inc_host[d[j].incident];
            const uint32_t sh = series_host[d[j].series];
            *h = *h == NO_HOST ? sh : *h == sh ? sh : MIXED;
            inc_true[d[j].incident] |= owner[j] >= 0;
        }
    }
    f->events = (uint32_t)nev;
    f->signals = nd;
    f->false_signals = nd - f->true_signals;
    double delay = 0;
    for (size_t e = 0; e < nev; e++)
        if (first[e] != UINT32_MAX) {
            f->found++;
            delay += (double)(first[e] - ev[e].first);
        }
    f->recall = nev ? (double)f->found / (double)nev : 1.0;
    f->precision = nd ? (double)f->true_signals / (double)nd : 1.0;
    f->false_per_100k = points ? 1e5 * (double)f->false_signals / (double)points : 0.0;
    f->mean_delay = f->found ? delay / f->found : 0.0;
    grouping(ev, nev, series_host, d, nd, owner, inc_host, f);
    f->host_share = f->host_events ? (double)f->host_one / f->host_events : 0.0;
    for (uint32_t i = 0; i < n_incidents; i++)
        if (inc_host[i] != NO_HOST) {
            f->incidents++;
            f->false_incidents += !inc_true[i];
        }
    f->incidents_per_event = nev ? (double)f->incidents / (double)nev : 0.0;
    nops_free(owner);
    nops_free(first);
    nops_free(inc_host);
    nops_free(inc_true);
    return NOPS_OK;
}

/* Add v to the set s[0..*n) (at most 64 kept); whether it was new. */
static bool set_add(uint32_t *s, uint32_t *n, uint32_t v)
{
    for (uint32_t i = 0; i < *n; i++)
        if (s[i] == v)
            return false;
    if (*n < 64)
        s[(*n)++] = v;
    return true;
}

static bool event_has_host(const nops_synth_event_truth *ev, const uint32_t *series_host,
                           uint32_t h)
{
    for (uint32_t s = 0; s < ev->n_series; s++)
        if (series_host[ev->series[s]] == h)
            return true;
    return false;
}

nops_err nops_synth_event_outcome_of(const nops_synth_event_truth *ev, size_t nev, size_t e,
                                     const uint32_t *series_host, uint32_t n_series,
                                     const nops_synth_detection *d, size_t nd,
                                     nops_synth_event_outcome *out)
{
    memset(out, 0, sizeof *out);
    if (e >= nev)
        return NOPS_INVAL;
    for (size_t j = 0; j < nd; j++)
        if (d[j].series >= n_series)
            return NOPS_INVAL;
    uint32_t incs[64], hosts[64], others[64], first = UINT32_MAX;
    for (size_t j = 0; j < nd; j++) {
        if (nops_synth_event_match(ev, nev, &d[j]) != (int)e)
            continue;
        out->signals++;
        if (d[j].tick < first)
            first = d[j].tick;
        set_add(hosts, &out->hosts, series_host[d[j].series]);
        if (d[j].incident < 0)
            out->unplaced++;
        else
            set_add(incs, &out->incidents, (uint32_t)d[j].incident);
    }
    out->delay = out->signals ? first - ev[e].first : 0;
    for (size_t j = 0; j < nd; j++) {
        if (d[j].incident < 0)
            continue;
        bool mine = false;
        for (uint32_t i = 0; i < out->incidents && !mine; i++)
            mine = incs[i] == (uint32_t)d[j].incident;
        const uint32_t h = series_host[d[j].series];
        if (mine && !event_has_host(&ev[e], series_host, h))
            set_add(others, &out->other_hosts, h);
    }
    return NOPS_OK;
}
