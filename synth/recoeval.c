/*
 * recoeval.c — the evaluator of recoeval.h.
 *
 * The history goes through the vectorize pipeline as JSON text, exactly as `neuralops
 * vectorize` reads history.jsonl, into a fresh index directory; the recommender follows that
 * directory and answers each probe through nops_recommend. The baseline embeds the same runs
 * with the same redactor key (nops_vector_prepare_run, so its vectors are the index's) and
 * searches them exhaustively.
 */
#include "synth/recoeval.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ALL_KINDS (NOPS_SYNTH_RECO_KINDS + NOPS_SYNTH_RECO_UNSEEN)
#define ACTOR_KEY "recoeval"

/* The baseline's memory: every run's vector and what it did. */
typedef struct base_runs {
    float *vec;           /* n × NOPS_EMBED_DIM */
    nops_run_meta *meta;  /* n */
    size_t n;
} base_runs;

/* The ceiling: whether each kind's true best playbook is its best in the history's own runs. */
static void ceiling(const base_runs *b, int *right, int *right_trap)
{
    for (int k = 0; k < NOPS_SYNTH_RECO_KINDS; k++) {
        const char *best = nops_synth_reco_best(k), *top = NULL;
        double top_rate = -1;
        for (size_t i = (size_t)k; i < b->n; i += NOPS_SYNTH_RECO_KINDS) { /* kind i % KINDS */
            const char *pb = b->meta[i].playbook_id;
            int n = 0, s = 0;
            for (size_t j = (size_t)k; j < b->n; j += NOPS_SYNTH_RECO_KINDS)
                if (strcmp(b->meta[j].playbook_id, pb) == 0) {
                    n++;
                    s += b->meta[j].status == NOPS_RUN_SUCCESS;
                }
            const double rate = (s + 1.0) / (n + 2.0);
            if (rate > top_rate) {
                top_rate = rate;
                top = pb;
            }
        }
        const bool ok = top && strcmp(top, best) == 0;
        *right += ok;
        *right_trap += ok && nops_synth_reco_trap(k);
    }
}

/* One probe's answer: the top playbook (NULL: none) and its confidence. */
typedef struct answer {
    char top[48];
    double conf;
} answer;

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
    if (!n)
        return 0;
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- the baseline: exact kNN, Laplace-smoothed success rates ----------------------------- */

static void baseline(const base_runs *b, const float *q, answer *out)
{
    enum { K = NOPS_SYNTH_RECO_BASE_K };
    float best[K];
    size_t idx[K];
    int have = 0;
    for (size_t i = 0; i < b->n; i++) { /* the K largest cosines, kept sorted */
        float s = 0;
        for (int d = 0; d < NOPS_EMBED_DIM; d++)
            s += q[d] * b->vec[i * NOPS_EMBED_DIM + d];
        if (have == K && s <= best[K - 1])
            continue;
        int j = have < K ? have++ : K - 1;
        while (j > 0 && best[j - 1] < s) {
            best[j] = best[j - 1];
            idx[j] = idx[j - 1];
            j--;
        }
        best[j] = s;
        idx[j] = i;
    }
    double sim = 0, top_rate = -1;
    out->top[0] = '\0';
    for (int a = 0; a < have; a++) {
        sim += best[a];
        const char *pb = b->meta[idx[a]].playbook_id;
        int n = 0, s = 0;
        for (int c = 0; c < have; c++)
            if (strcmp(b->meta[idx[c]].playbook_id, pb) == 0) {
                n++;
                s += b->meta[idx[c]].status == NOPS_RUN_SUCCESS;
            }
        const double rate = (s + 1.0) / (n + 2.0);
        if (rate > top_rate || (rate == top_rate && strcmp(pb, out->top) < 0)) {
            top_rate = rate;
            snprintf(out->top, sizeof out->top, "%s", pb);
        }
    }
    out->conf = have ? sim / have : 0;
}

/* ---- the engine -------------------------------------------------------------------------- */

static nops_err engine(nops_recommender *r, const json_t *inc, answer *out, char *errstr,
                       size_t errstr_size)
{
    json_t *arr = NULL;
    nops_err e = nops_recommend(r, inc, 3, &arr, errstr, errstr_size);
    if (e != NOPS_OK)
        return e;
    const json_t *first = json_array_get(arr, 0);
    const char *top = json_string_value(json_object_get(first, "playbook_id"));
    snprintf(out->top, sizeof out->top, "%s", top ? top : "");
    out->conf = json_number_value(json_object_get(first, "confidence"));
    json_decref(arr);
    return NOPS_OK;
}

/* ---- the history ------------------------------------------------------------------------- */

/* Generate the regime's runs into the vectorize job and the baseline's memory. */
static nops_err write_history(const nops_synth_reco_regime *rg, nops_vectorize *v,
                              base_runs *b, char *errstr, size_t errstr_size)
{
    const size_t n = (size_t)rg->runs_per_kind * NOPS_SYNTH_RECO_KINDS;
    b->vec = malloc(n * NOPS_EMBED_DIM * sizeof *b->vec);
    b->meta = malloc(n * sizeof *b->meta);
    nops_redactor *red = nops_redactor_new(ACTOR_KEY, errstr, errstr_size);
    if (!b->vec || !b->meta || !red) {
        nops_redactor_destroy(red);
        if (red)
            snprintf(errstr, errstr_size, "out of memory");
        return red ? NOPS_NOMEM : NOPS_INVAL;
    }
    uint64_t rng = rg->seed;
    nops_err e = NOPS_OK;
    for (size_t i = 0; i < n && e == NOPS_OK; i++) {
        json_t *run = nops_synth_reco_run(&rng, (int)(i % NOPS_SYNTH_RECO_KINDS), rg->noise,
                                          i + 1);
        char *text = run ? json_dumps(run, JSON_COMPACT) : NULL;
        json_decref(run);
        json_t *copy = text ? json_loads(text, 0, NULL) : NULL;
        char why[200];
        if (!copy) {
            snprintf(errstr, errstr_size, "out of memory");
            e = NOPS_NOMEM;
        } else if (nops_vector_prepare_run(red, copy, b->vec + b->n * NOPS_EMBED_DIM,
                                           &b->meta[b->n], NULL, why, sizeof why) != NOPS_OK) {
            snprintf(errstr, errstr_size, "generated run %zu cannot be used: %s", i, why);
            e = NOPS_INVAL;
        } else {
            b->n++;
            nops_vectorize_row(v, text, strlen(text), "generated");
        }
        json_decref(copy);
        free(text);
    }
    nops_redactor_destroy(red);
    return e;
}

/* ---- scoring ----------------------------------------------------------------------------- */

/* What the probes gave one method: per probe, right or not, and its confidence. */
typedef struct sheet {
    size_t right, right_trap, right_fresh, known, trap;
    double *conf_known, *conf_unseen, *conf_fresh;
    size_t n_known, n_unseen, n_fresh;
} sheet;

static void mark(sheet *s, int k, int sort, const answer *a)
{
    const bool right = k < NOPS_SYNTH_RECO_KINDS && strcmp(a->top, nops_synth_reco_best(k)) == 0;
    if (sort == 0) {
        s->known++;
        s->right += right;
        s->trap += nops_synth_reco_trap(k);
        s->right_trap += right && nops_synth_reco_trap(k);
        s->conf_known[s->n_known++] = a->conf;
    } else if (sort == 1) {
        s->right_fresh += right;
        s->conf_fresh[s->n_fresh++] = a->conf;
    } else {
        s->conf_unseen[s->n_unseen++] = a->conf;
    }
}

static double share_at_least(const double *v, size_t n, double x)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += v[i] >= x;
    return n ? (double)k / (double)n : 0;
}

static void tally(sheet *s, double suggest, nops_synth_reco_tally *t)
{
    t->auto_known = suggest > 0 ? share_at_least(s->conf_known, s->n_known, suggest) : 0;
    t->auto_unseen = suggest > 0 ? share_at_least(s->conf_unseen, s->n_unseen, suggest) : 0;
    for (size_t i = 0; i < s->n_unseen; i++)
        t->conf_unseen_max = s->conf_unseen[i] > t->conf_unseen_max ? s->conf_unseen[i]
                                                                    : t->conf_unseen_max;
    t->top1 = s->known ? (double)s->right / (double)s->known : 0;
    t->top1_trap = s->trap ? (double)s->right_trap / (double)s->trap : 0;
    t->top1_fresh = s->n_fresh ? (double)s->right_fresh / (double)s->n_fresh : 0;
    t->conf_known = median(s->conf_known, s->n_known);
    t->conf_unseen = median(s->conf_unseen, s->n_unseen);
    t->conf_fresh = median(s->conf_fresh, s->n_fresh);
    t->conf_ratio = t->conf_known > 0 ? t->conf_unseen / t->conf_known : 0;
}

/* Every probe through both methods. Sorts: 0 known, 1 fresh words, 2 unseen kind. */
static nops_err probe_all(nops_recommender *r, const base_runs *b, int per_kind, uint64_t seed,
                          sheet s[2], char *errstr, size_t errstr_size)
{
    uint64_t rng = (seed ? seed : 1) * 0xD1342543DE82EF95ull + 17;
    for (int k = 0; k < ALL_KINDS; k++)
        for (int sort = k < NOPS_SYNTH_RECO_KINDS ? 0 : 2; sort < (k < NOPS_SYNTH_RECO_KINDS ? 2 : 3);
             sort++)
            for (int i = 0; i < per_kind; i++) {
                json_t *inc = nops_synth_reco_incident(&rng, k, sort == 1);
                float q[NOPS_EMBED_DIM];
                answer a[2];
                nops_err e = !inc ? NOPS_NOMEM : nops_embed_json(inc, q);
                if (e == NOPS_OK)
                    e = engine(r, inc, &a[0], errstr, errstr_size);
                json_decref(inc);
                if (e != NOPS_OK) {
                    if (e == NOPS_NOMEM)
                        snprintf(errstr, errstr_size, "out of memory");
                    return e;
                }
                baseline(b, q, &a[1]);
                mark(&s[0], k, sort, &a[0]);
                mark(&s[1], k, sort, &a[1]);
            }
    return NOPS_OK;
}

static nops_err open_reco(const nops_reco_params *rp, const char *dir, nops_recommender **r,
                          char *errstr, size_t errstr_size)
{
    nops_reco_params p;
    if (rp) {
        p = *rp;
    } else {
        nops_cfg *cfg = nops_cfg_new();
        nops_err e = cfg ? nops_cfg_add(cfg, &nops_reco_cfg_section, &p, errstr, errstr_size)
                         : NOPS_NOMEM;
        nops_cfg_destroy(cfg);
        if (e != NOPS_OK)
            return e;
    }
    p.reload_s = 3600;
    snprintf(p.index_dir, sizeof p.index_dir, "%s", dir);
    *r = nops_recommender_new(&p, errstr, errstr_size);
    return *r ? NOPS_OK : NOPS_IO;
}

/* One history: built, probed into s[0] (engine) and s[1] (baseline), removed. */
static nops_err eval_one(const nops_synth_reco_regime *rg, uint64_t seed, int per_kind,
                         const nops_reco_params *rp, const char *workdir, sheet s[2],
                         size_t *runs, int ceil[2], char *errstr, size_t errstr_size)
{
    char dir[400];
    snprintf(dir, sizeof dir, "%.300s/recoeval-XXXXXX", workdir);
    if (!mkdtemp(dir)) {
        snprintf(errstr, errstr_size, "cannot create a directory under %.200s: %s", workdir,
                 strerror(errno));
        return NOPS_IO;
    }
    nops_vectorize_opts vo = {.actor_key = ACTOR_KEY, .dir = dir, .type = NOPS_INDEX_AUTO};
    nops_vectorize *v = nops_vectorize_begin(&vo, errstr, errstr_size);
    base_runs b = {0};
    nops_recommender *r = NULL;
    nops_synth_reco_regime one = *rg;
    one.seed = seed;
    nops_err e = !v ? NOPS_IO : write_history(&one, v, &b, errstr, errstr_size);
    if (e == NOPS_OK)
        e = nops_vectorize_commit(v, errstr, errstr_size);
    if (e == NOPS_OK)
        e = open_reco(rp, dir, &r, errstr, errstr_size);
    if (e == NOPS_OK)
        e = probe_all(r, &b, per_kind, seed, s, errstr, errstr_size);
    *runs = b.n;
    if (e == NOPS_OK)
        ceiling(&b, &ceil[0], &ceil[1]);
    nops_recommender_destroy(r);
    nops_vectorize_destroy(v);
    free(b.vec);
    free(b.meta);
    char cmd[500];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0 && e == NOPS_OK) {
        snprintf(errstr, errstr_size, "cannot remove %.200s", dir);
        e = NOPS_IO;
    }
    return e;
}

nops_err nops_synth_reco_eval(const nops_synth_reco_regime *rg, const nops_reco_params *rp,
                              const char *workdir, nops_synth_reco_figures *fig, char *errstr,
                              size_t errstr_size)
{
    memset(fig, 0, sizeof *fig);
    if (rg->runs_per_kind < 1 || !(rg->noise >= 0 && rg->noise < 1) || rg->probes < 0 ||
        rg->histories < 0) {
        snprintf(errstr, errstr_size, "a regime needs at least one run a kind and noise in [0, 1)");
        return NOPS_INVAL;
    }
    const int per_kind = rg->probes ? rg->probes : 40;
    const int hist = rg->histories ? rg->histories : 1;
    const size_t nk = (size_t)per_kind * NOPS_SYNTH_RECO_KINDS * (size_t)hist;
    const size_t nu = (size_t)per_kind * NOPS_SYNTH_RECO_UNSEEN * (size_t)hist;
    double *conf = calloc(2 * (2 * nk + nu), sizeof *conf);
    if (!conf) {
        snprintf(errstr, errstr_size, "out of memory");
        return NOPS_NOMEM;
    }
    sheet s[2];
    for (int m = 0; m < 2; m++)
        s[m] = (sheet){.conf_known = conf + m * (2 * nk + nu),
                       .conf_fresh = conf + m * (2 * nk + nu) + nk,
                       .conf_unseen = conf + m * (2 * nk + nu) + 2 * nk};
    const uint64_t seed = rg->seed ? rg->seed : 0x9E3779B97F4A7C15ull;
    nops_err e = NOPS_OK;
    int ceil[2] = {0, 0}, traps = 0;
    for (int k = 0; k < NOPS_SYNTH_RECO_KINDS; k++)
        traps += nops_synth_reco_trap(k);
    for (int h = 0; h < hist && e == NOPS_OK; h++)
        e = eval_one(rg, seed + (uint64_t)h, per_kind, rp, workdir, s, &fig->runs, ceil, errstr,
                     errstr_size);
    if (e == NOPS_OK) {
        fig->ceiling_top1 = (double)ceil[0] / (NOPS_SYNTH_RECO_KINDS * hist);
        fig->ceiling_trap = traps ? (double)ceil[1] / (traps * hist) : 0;
        fig->probes_known = s[0].known;
        fig->probes_trap = s[0].trap;
        fig->probes_unseen = s[0].n_unseen;
        tally(&s[0], rg->suggest, &fig->engine);
        tally(&s[1], rg->suggest, &fig->baseline);
    }
    free(conf);
    return e;
}
