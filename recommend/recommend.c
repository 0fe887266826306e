/*
 * recommend.c — ranking playbooks by what fixed similar incidents (recommend.h); the formula,
 * with a worked example, is docs/recommendation.md:
 *
 *   neighbours i with cosine s_i ≥ min_similarity are the evidence; s_top the highest;
 *   weight w_i = s_i² · e^(−(s_top − s_i)/τ), τ = 8 · (1 − nn_low)   (calib.c: 90 % of the
 *     indexed runs have a neighbour at cosine ≥ nn_low — a dense history gives a narrow
 *     kernel, a young one a wide kernel);
 *   prior p0 = weighted success share over all the evidence;
 *   per playbook P:  W = Σ w_i,  S = Σ w_i·[run i succeeded],
 *                    rate = (S + a·p0) / (W + a)          (a = prior_weight)
 *                    support = W / (W + 1)
 *                    score = rate · support
 *                    near = (max s_i of P − background) / (nn_median − background), in [0, 1]
 *                    confidence = near² · (1 − e^(−W/2)) · max(rate, 1 − rate)
 *   (background: the median cosine between two indexed runs; nn_median: of a run to its
 *   nearest other run — both measured on the generation when it is loaded, calib.c.)
 *
 * Ranges hold whatever the index returns: a non-finite s_i drops its neighbour, the others are
 * clamped to [−1, 1] first, and rate, score and confidence to [0, 1].
 */
#include "recommend/reco_int.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_K 1000
#define MAX_PLAYBOOKS 128
#define EVIDENCE_SHOWN 5
#define MIN_SPAN 0.02  /* the least nn_median − background a calibration is read with */
#define KERNEL_REACH 8 /* evidence kernel width, in units of the history's 90 % NN distance */
#define MIN_REACH 0.01 /* ... read as at least this (a history of exact duplicates) */

/* ---- config ---------------------------------------------------------------------------- */

#define OFF(f) offsetof(nops_reco_params, f)
static const nops_cfg_entry reco_entries[] = {
    {"index_dir", NOPS_CFG_STRING, OFF(index_dir), 0,
     sizeof(((nops_reco_params *)0)->index_dir), "./neuralops-data/index", NULL, "index", 0,
     "Index directory written by `neuralops vectorize` (followed: rebuilds are picked up); "
     "left at the default, it is `<storage.data_dir>/index`."},
    {"neighbours", NOPS_CFG_INT, OFF(neighbours), 1, MAX_K, "100", NULL, NULL, 0,
     "Nearest past runs looked at per recommendation."},
    {"min_similarity", NOPS_CFG_DOUBLE, OFF(min_similarity), -1, 1, "0.5", NULL, NULL, 0,
     "Past runs less similar than this (cosine) are not used as evidence."},
    {"prior_weight", NOPS_CFG_DOUBLE, OFF(prior_weight), 0, 1000, "2", NULL, NULL, 0,
     "Smoothing: pseudo-runs at the prior success rate added to each playbook's record."},
    {"reload_s", NOPS_CFG_INT, OFF(reload_s), 1, 3600, "2", NULL, NULL, 0,
     "Seconds between checks of the index directory for a new generation."},
    {"learn_interval_s", NOPS_CFG_INT, OFF(learn_interval_s), 0, 86400, "60", NULL, NULL, 0,
     "serve: seconds between appends of new workflow runs (history.jsonl, PostgreSQL "
     "workflow_runs) to the index, as `vectorize --append` does; 0 = the index never learns."},
    {"learn_min_runs", NOPS_CFG_INT, OFF(learn_min_runs), 1, 1000000, "20", NULL, NULL, 0,
     "serve: usable workflow runs needed before the learning loop builds a first index where "
     "there is none."},
};
#undef OFF

const nops_cfg_section nops_reco_cfg_section = {
    "recommend", "Playbook recommendations from the history index (docs/recommendation.md).",
    reco_entries, sizeof reco_entries / sizeof reco_entries[0], NULL};

/* ---- a loaded generation, shared by queries ----------------------------------------------- */

typedef struct loaded {
    nops_histdir *h;
    nops__reco_calib calib; /* what "close" means in it, measured at load */
    int refs;     /* queries using it + 1 while current */
} loaded;

struct nops_recommender {
    nops_reco_params p;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    loaded *cur;
    bool stop;
    pthread_t thr;
    bool thr_started;
};

static void release(nops_recommender *r, loaded *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&r->mu);
    bool last = --l->refs == 0;
    pthread_mutex_unlock(&r->mu);
    if (last) {
        nops_histdir_close(l->h);
        nops_free(l);
    }
}

static loaded *acquire(nops_recommender *r)
{
    pthread_mutex_lock(&r->mu);
    loaded *l = r->cur;
    if (l)
        l->refs++;
    pthread_mutex_unlock(&r->mu);
    return l;
}

/* Open the current generation if it differs from the loaded one; swap it in. */
static nops_err reload(nops_recommender *r, char *errstr, size_t errstr_size)
{
    uint64_t gen = nops_histdir_current(r->p.index_dir);
    loaded *have = acquire(r);
    bool same = have && nops_histdir_generation(have->h) == gen && gen != 0;
    release(r, have);
    if (same || (gen == 0 && have))
        return NOPS_OK;
    nops_histdir *h = nops_histdir_open(r->p.index_dir, errstr, errstr_size);
    if (!h)
        return NOPS_IO;
    loaded *l = nops_calloc(1, sizeof *l);
    if (!l) {
        nops_histdir_close(h);
        return NOPS_NOMEM;
    }
    l->h = h;
    l->refs = 1;
    nops_err e = nops__reco_calibrate(h, &l->calib, errstr, errstr_size);
    if (e != NOPS_OK) {
        nops_histdir_close(h);
        nops_free(l);
        return e;
    }
    pthread_mutex_lock(&r->mu);
    loaded *old = r->cur;
    r->cur = l;
    pthread_mutex_unlock(&r->mu);
    release(r, old);
    NOPS_INFO("recommend", "history index %s: generation %llu, %zu runs", r->p.index_dir,
              (unsigned long long)nops_histdir_generation(h), nops_histdir_count(h));
    return NOPS_OK;
}

static void *reload_main(void *arg)
{
    nops_recommender *r = arg;
    uint64_t failed_gen = 0;
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += r->p.reload_s;
        pthread_cond_timedwait(&r->cv, &r->mu, &ts);
        if (r->stop)
            break;
        pthread_mutex_unlock(&r->mu);
        uint64_t gen = nops_histdir_current(r->p.index_dir);
        char err[512];
        if (gen && gen != failed_gen && reload(r, err, sizeof err) != NOPS_OK) {
            NOPS_WARN("recommend", "keeping the loaded index: %s", err);
            failed_gen = gen;
        }
        pthread_mutex_lock(&r->mu);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

nops_recommender *nops_recommender_new(const nops_reco_params *params, char *errstr,
                                       size_t errstr_size)
{
    nops_recommender *r = nops_calloc(1, sizeof *r);
    if (!r) {
        nops_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    r->p = *params;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (r->p.index_dir[0] && nops_histdir_current(r->p.index_dir) &&
        reload(r, errstr, errstr_size) != NOPS_OK) {
        nops_recommender_destroy(r);
        return NULL;
    }
    if (r->p.index_dir[0] && pthread_create(&r->thr, NULL, reload_main, r) == 0)
        r->thr_started = true;
    return r;
}

void nops_recommender_destroy(nops_recommender *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (r->thr_started)
        pthread_join(r->thr, NULL);
    release(r, r->cur);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    nops_free(r);
}

void nops_recommender_info(nops_recommender *r, size_t *runs, uint64_t *generation)
{
    loaded *l = acquire(r);
    *runs = l ? nops_histdir_count(l->h) : 0;
    *generation = l ? nops_histdir_generation(l->h) : 0;
    release(r, l);
}

/* ---- ranking -------------------------------------------------------------------------- */

typedef struct pb_stat {
    const char *id;
    double w, s, sim_sum, smax; /* weight, successful weight, Σ s_i, max s_i */
    int n, succ;
    int ev[EVIDENCE_SHOWN]; /* neighbour indices, most similar first */
    int n_ev;
    double rate, support, score, confidence;
} pb_stat;

static int by_score(const void *a, const void *b)
{
    const pb_stat *x = a, *y = b;
    return x->score < y->score ? 1 : x->score > y->score ? -1 : strcmp(x->id, y->id);
}

static json_t *evidence(const nops_histdir *h, const int64_t *ids, const float *sims,
                        const int *idx, int n)
{
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        const nops_run_meta *m = nops_histdir_meta(h, ids[idx[i]]);
        if (!m)
            continue;
        json_t *e = json_pack("{s:s, s:f, s:s}", "run_id", m->run_id, "similarity",
                              (double)sims[idx[i]], "status", nops_run_status_name(m->status));
        if (e && m->finished_ns > 0) { /* when it ran, where the run said (finished_at) */
            char ts[40];
            nops_format_ts(m->finished_ns, ts, sizeof ts);
            json_object_set_new(e, "finished_at", json_string(ts));
        }
        json_array_append_new(arr, e);
    }
    return arr;
}

static json_t *no_history(const nops_histdir *h, const int64_t *ids, const float *sims, int k,
                          double min_sim)
{
    char why[400];
    int idx[EVIDENCE_SHOWN], n = 0;
    for (int i = 0; i < k && n < EVIDENCE_SHOWN; i++)
        if (ids[i] >= 0)
            idx[n++] = i;
    if (n)
        snprintf(why, sizeof why, "No similar past runs: the nearest has similarity %.2f, below "
                 "the %.2f needed to count as evidence, so no playbook is recommended.",
                 (double)sims[idx[0]], min_sim);
    else
        snprintf(why, sizeof why, "No past runs in the history: nothing to recommend from.");
    json_t *o = json_pack("{s:n, s:f, s:f, s:s, s:o}", "playbook_id", "score", 0.0,
                          "confidence", 0.0, "justification", why, "evidence",
                          evidence(h, ids, sims, idx, n));
    json_t *arr = json_array();
    json_array_append_new(arr, o);
    return arr;
}

static void justify(const pb_stat *p, const pb_stat *all, int np, int n_evidence, char *out,
                    size_t cap)
{
    int at = snprintf(out, cap,
                      "%s was run in %d of the %d similar past runs (mean similarity %.2f) and "
                      "succeeded in %d of them; smoothed success rate %.2f, evidence weight "
                      "%.2f, so score %.2f.",
                      p->id, p->n, n_evidence, p->sim_sum / p->n, p->succ, p->rate, p->w,
                      p->score);
    for (int i = 0; i < np && at > 0 && (size_t)at < cap; i++) /* a more frequent, worse one */
        if (&all[i] != p && all[i].n > p->n && all[i].rate < p->rate) {
            snprintf(out + at, cap - (size_t)at,
                     " %s was used more often (%d runs) but succeeded less (rate %.2f).",
                     all[i].id, all[i].n, all[i].rate);
            break;
        }
}

/* x limited to [lo, hi] (NaN → lo) */
static double clamp(double x, double lo, double hi)
{
    return x >= lo ? (x <= hi ? x : hi) : lo;
}

/* How close similarity `sim` is in this history: 1 at the similarity of a typical run to its
 * nearest other run, 0 at the similarity of two unrelated runs (calib.c), linear between;
 * without a calibration (fewer than 2 runs), the similarity itself. */
static double closeness(const nops__reco_calib *c, double sim)
{
    if (!c || !c->ok)
        return clamp(sim, 0, 1);
    const double span = c->nn_median - c->background;
    return clamp((sim - c->background) / (span > MIN_SPAN ? span : MIN_SPAN), 0, 1);
}

/* The playbooks among the k neighbours with their statistics, best first, into pb (room for
 * MAX_PLAYBOOKS); how many (0: no neighbour is evidence). *n_evidence: the neighbours used. */
static int rank_stats(const nops_reco_params *p, const nops__reco_calib *c,
                      const nops_histdir *h, const int64_t *ids, const float *sims, int k,
                      pb_stat *pb, int *n_evidence)
{
    int np = 0, n_ev = 0;
    double W = 0, S = 0, top = -1;
    for (int i = 0; i < k; i++)
        if (ids[i] >= 0 && sims[i] >= p->min_similarity && sims[i] > top &&
            nops_histdir_meta(h, ids[i]))
            top = sims[i];
    /* the kernel's width: KERNEL_REACH times the distance (1 − cosine) within which 90 % of
     * this history's runs have a neighbour; no calibration (< 2 runs): no kernel */
    const double reach = c && c->ok ? 1 - c->nn_low : INFINITY;
    const double tau = KERNEL_REACH * (reach > MIN_REACH ? reach : MIN_REACH);
    for (int i = 0; i < k; i++) {
        const nops_run_meta *m = ids[i] >= 0 ? nops_histdir_meta(h, ids[i]) : NULL;
        if (!m || sims[i] < p->min_similarity)
            continue;
        int j = 0;
        while (j < np && strcmp(pb[j].id, m->playbook_id) != 0)
            j++;
        if (j == np) {
            if (np == MAX_PLAYBOOKS)
                continue;
            memset(&pb[np], 0, sizeof pb[np]);
            pb[np++].id = m->playbook_id;
        }
        const double w = (double)sims[i] * sims[i] * exp(-(top - sims[i]) / tau);
        const bool ok = m->status == NOPS_RUN_SUCCESS;
        pb[j].w += w;
        pb[j].s += ok ? w : 0;
        if (pb[j].n == 0 || sims[i] > pb[j].smax)
            pb[j].smax = sims[i];
        pb[j].sim_sum += sims[i];
        pb[j].n++;
        pb[j].succ += ok;
        if (pb[j].n_ev < EVIDENCE_SHOWN)
            pb[j].ev[pb[j].n_ev++] = i;
        W += w;
        S += ok ? w : 0;
        n_ev++;
    }
    *n_evidence = n_ev;
    if (n_ev == 0)
        return 0;
    /* W is 0 only when every piece of evidence has similarity 0 (min_similarity ≤ 0) */
    const double p0 = W > 0 ? S / W : 0, a = p->prior_weight;
    for (int j = 0; j < np; j++) {
        const double wa = pb[j].w + a;
        pb[j].rate = clamp(wa > 0 ? (pb[j].s + a * p0) / wa : p0, 0, 1);
        pb[j].support = pb[j].w / (pb[j].w + 1);
        pb[j].score = clamp(pb[j].rate * pb[j].support, 0, 1);
        const double near = closeness(c, pb[j].smax);
        const double agree = pb[j].rate > 0.5 ? pb[j].rate : 1 - pb[j].rate;
        pb[j].confidence = clamp(near * near * (1 - exp(-pb[j].w / 2)) * agree, 0, 1);
    }
    qsort(pb, (size_t)np, sizeof pb[0], by_score);
    return np;
}

static json_t *rank(const nops_reco_params *p, const nops__reco_calib *c, const nops_histdir *h,
                    const int64_t *ids, const float *sims, int k, int top_n)
{
    pb_stat pb[MAX_PLAYBOOKS];
    int n_ev = 0;
    const int np = rank_stats(p, c, h, ids, sims, k, pb, &n_ev);
    if (np == 0)
        return no_history(h, ids, sims, k, p->min_similarity);
    json_t *arr = json_array();
    for (int j = 0; j < np && j < top_n; j++) {
        char why[800];
        justify(&pb[j], pb, np, n_ev, why, sizeof why);
        json_array_append_new(arr, json_pack("{s:s, s:f, s:f, s:s, s:o}", "playbook_id",
                                             pb[j].id, "score", pb[j].score, "confidence",
                                             pb[j].confidence, "justification", why, "evidence",
                                             evidence(h, ids, sims, pb[j].ev, pb[j].n_ev)));
    }
    return arr;
}

/* An index is checked when it is loaded, but its distances are still only numbers from a
 * file: a non-finite similarity drops its neighbour and the others are held to the cosine
 * range, so no score, confidence or shown similarity leaves its documented range. */
static void sanitize(int64_t *ids, float *sims, int k)
{
    for (int i = 0; i < k; i++) {
        if (!isfinite(sims[i]))
            ids[i] = -1;
        sims[i] = (float)clamp(sims[i], -1, 1);
    }
}

json_t *nops__reco_rank(const nops_reco_params *p, const nops_histdir *h,
                        const nops__reco_calib *c, int64_t *ids, float *sims, int k, int top_n)
{
    sanitize(ids, sims, k);
    return rank(p, c, h, ids, sims, k, top_n);
}

/* The k nearest past runs of query q in the loaded generation (*l, acquired: the caller
 * releases it), sanitised; NOPS_NOTFOUND when no index is loaded. */
static nops_err neighbours(nops_recommender *r, const float *q, loaded **l, int64_t *ids,
                           float *sims, int *k, char *errstr, size_t errstr_size)
{
    *l = acquire(r);
    if (!*l) {
        nops_errf(errstr, errstr_size, "no history index is loaded (%s): run neuralops "
                  "vectorize", r->p.index_dir[0] ? r->p.index_dir : "recommend.index_dir unset");
        return NOPS_NOTFOUND;
    }
    *k = (int)(r->p.neighbours < MAX_K ? r->p.neighbours : MAX_K);
    nops_err e = nops_vindex_search(nops_histdir_index((*l)->h), q, 1, *k, sims, ids, errstr,
                                    errstr_size);
    if (e == NOPS_OK)
        sanitize(ids, sims, *k);
    return e;
}

nops_err nops_recommend(nops_recommender *r, const json_t *incident, int top_n, json_t **out,
                        char *errstr, size_t errstr_size)
{
    return nops_recommend_at(r, incident, top_n, out, NULL, errstr, errstr_size);
}

nops_err nops_recommend_at(nops_recommender *r, const json_t *incident, int top_n, json_t **out,
                           uint64_t *generation, char *errstr, size_t errstr_size)
{
    float q[NOPS_EMBED_DIM];
    *out = NULL;
    if (generation)
        *generation = 0;
    if (nops_embed_json(incident, q) != NOPS_OK) {
        nops_errf(errstr, errstr_size, "the incident has nothing to embed: give signals, "
                                       "labels, metrics or a summary");
        return NOPS_PARSE;
    }
    loaded *l;
    int k;
    float sims[MAX_K];
    int64_t ids[MAX_K];
    nops_err e = neighbours(r, q, &l, ids, sims, &k, errstr, errstr_size);
    if (generation && l)
        *generation = nops_histdir_generation(l->h);
    if (e == NOPS_OK) {
        *out = rank(&r->p, &l->calib, l->h, ids, sims, k, top_n > 0 ? top_n : 3);
        if (!*out) {
            nops_errf(errstr, errstr_size, "out of memory");
            e = NOPS_NOMEM;
        }
    }
    release(r, l);
    return e;
}

/* ---- recommendations attached to an incident record ---------------------------------------- */

/* What the embedder reads of an incident record, as the JSON it takes: its common labels, its
 * metric names, summary and root-cause hint (new reference; NULL without memory). A label
 * whose key or value is not text is left out, as the sinks would not write it either. */
static json_t *incident_query(const nops_incident *inc)
{
    json_t *labels = json_object(), *metrics = json_array();
    json_t *o = json_object();
    bool ok = labels && metrics && o;
    for (uint32_t i = 0; ok && i < inc->common.n; i++) {
        nops_label lb = nops_labels_at(&inc->common, i);
        json_t *v = json_stringn(lb.value, lb.value_len); /* NULL: not UTF-8 */
        if (!v || !nops_utf8_valid(lb.key, lb.key_len) || memchr(lb.key, '\0', lb.key_len)) {
            json_decref(v);
            continue;
        }
        ok = json_object_setn_new(labels, lb.key, lb.key_len, v) == 0; /* takes v */
    }
    const uint8_t nm = inc->n_metrics < NOPS_INCIDENT_MAX_METRICS ? inc->n_metrics
                                                                   : NOPS_INCIDENT_MAX_METRICS;
    for (uint8_t i = 0; ok && i < nm; i++) {
        json_t *m = json_stringn(inc->metrics[i], strnlen(inc->metrics[i],
                                                          NOPS_INCIDENT_METRIC_LEN));
        ok = !m || json_array_append_new(metrics, m) == 0;
    }
    /* its signals as the embedder reads them, rebuilt from the record's counts (it keeps no
     * signal objects): as many as it had (at most NOPS_INCIDENT_MAX_SIGNALS), the metrics of
     * its list in turn, its common labels, EWMA and "above" in the shares it counted, its best
     * score — so an incident and a past run of the same kind embed alike */
    json_t *sigs = json_array();
    const uint32_t ns = inc->n_signals < NOPS_INCIDENT_MAX_SIGNALS ? inc->n_signals
                                                                   : NOPS_INCIDENT_MAX_SIGNALS;
    const double best = isfinite(inc->best_score) ? clamp(inc->best_score, 0, 1) : 0;
    ok = ok && sigs;
    for (uint32_t i = 0; ok && i < ns; i++) {
        const bool ewma = (double)i < (double)inc->n_ewma * ns / inc->n_signals;
        const bool above = (double)i < (double)inc->n_above * ns / inc->n_signals;
        json_t *sg = json_pack("{s:O, s:s, s:s, s:f}", "labels", labels, "method",
                               ewma ? "ewma" : "zscore", "hint", above ? " above " : " below ",
                               "score", best);
        if (sg && nm)
            json_object_set_new(sg, "metric", json_string(inc->metrics[i % nm]));
        ok = sg && json_array_append_new(sigs, sg) == 0;
    }
    ok = ok && json_object_set(o, "signals", sigs) == 0;
    json_decref(sigs);
    json_t *summary = json_stringn(inc->summary, strnlen(inc->summary, sizeof inc->summary));
    json_t *hint = json_stringn(inc->root_cause_hint,
                                strnlen(inc->root_cause_hint, sizeof inc->root_cause_hint));
    ok = ok && json_object_set(o, "labels", labels) == 0 &&
         json_object_set(o, "metrics", metrics) == 0 &&
         (!summary || json_object_set(o, "summary", summary) == 0) &&
         (!hint || json_object_set(o, "root_cause_hint", hint) == 0);
    json_decref(labels);
    json_decref(metrics);
    json_decref(summary);
    json_decref(hint);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

nops_err nops_recommend_incident(nops_recommender *r, const nops_incident *inc, int top_n,
                                 nops_incident_reco *out, size_t cap, size_t *n, char *errstr,
                                 size_t errstr_size)
{
    *n = 0;
    json_t *query = incident_query(inc);
    if (!query) {
        nops_errf(errstr, errstr_size, "out of memory");
        return NOPS_NOMEM;
    }
    float q[NOPS_EMBED_DIM];
    nops_err e = nops_embed_json(query, q);
    json_decref(query);
    if (e != NOPS_OK) {
        nops_errf(errstr, errstr_size, "incident %.16s has nothing to embed: no labels, "
                  "metrics or summary", inc->id);
        return NOPS_PARSE;
    }
    loaded *l;
    int k;
    float sims[MAX_K];
    int64_t ids[MAX_K];
    e = neighbours(r, q, &l, ids, sims, &k, errstr, errstr_size);
    if (e == NOPS_OK) {
        pb_stat pb[MAX_PLAYBOOKS];
        int n_ev;
        const int np = rank_stats(&r->p, &l->calib, l->h, ids, sims, k, pb, &n_ev);
        const size_t want = (size_t)(top_n > 0 ? top_n : 3);
        for (int j = 0; j < np && *n < want && *n < cap; j++) {
            nops_incident_reco *o = &out[(*n)++];
            memset(o, 0, sizeof *o);
            snprintf(o->playbook_id, sizeof o->playbook_id, "%s", pb[j].id);
            o->score = (float)pb[j].score;
            o->confidence = (float)pb[j].confidence;
            o->evidence = (uint32_t)pb[j].n;
        }
    }
    release(r, l);
    return e;
}
