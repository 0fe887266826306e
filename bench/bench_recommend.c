/*
 * bench_recommend.c — `neuralops-bench recommend`: at 100k and 1M generated runs (redacted and
 * embedded as vectorize does, indexed by AUTO = IVF), single-query latency p50/p99 of
 *   - the whole recommend path in-process (embed + search + rank: nops_recommend),
 *   - POST /recommend over loopback HTTP (one keep-alive connection, libcurl),
 *   - the raw search of the same index (the peer of both: for IVF vindex.c's in-place scan of
 *     FAISS's lists), and FAISS's own search of it beside,
 *   - the exact (flat) search of the same vectors,
 * and recall@10 of the index against the exact search, on held-out incidents.
 *
 * First, the quality lines (synth/recoeval.h): top-1 accuracy (all known-kind probes, trap
 * kinds, probes in words the history never uses) and the median top-1 confidence of probes of
 * kinds absent from the history against known kinds, for two regimes — 350 runs a kind, and 20
 * runs a kind with 15 % of runs using an unrelated playbook — each beside the exact-kNN baseline
 * on the same data. `--set recommend.KEY=VALUE` (repeatable) runs the quality lines alone with
 * those settings instead of the defaults.
 */
#include "bench/bench.h"

#include "api/api.h"
#include "synth/history.h"
#include "synth/recoeval.h"
#include "loop/loop.h"
#include "recommend/recommend.h"
#include "vector/vector.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#define QUERIES 2000
#define SCARCE_HISTORIES 8 /* 20 runs a kind: figures pooled over this many histories */

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double q)
{
    qsort(v, n, sizeof *v, cmp_d);
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

/* n runs → an index generation in dir; the vectors also into *flat (exact peer). */
static bool build(const char *dir, size_t n, nops_vindex **flat)
{
    char err[256];
    nops_redactor *red = nops_redactor_new("bench", err, sizeof err);
    nops_histdir_writer *w = nops_histdir_begin(dir, NOPS_INDEX_AUTO, err, sizeof err);
    *flat = nops_vindex_new(NOPS_EMBED_DIM, NOPS_INDEX_FLAT, n, err, sizeof err);
    history_gen g;
    history_init(&g, 77);
    float *batch = malloc(4096 * NOPS_EMBED_DIM * sizeof *batch);
    size_t nb = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *run = history_run(&g);
        float *v = batch + nb * NOPS_EMBED_DIM;
        nops_run_meta m;
        if (nops_vector_prepare_run(red, run, v, &m, NULL, err, sizeof err) != NOPS_OK ||
            nops_histdir_add(w, v, &m) != NOPS_OK) {
            fprintf(stderr, "bench recommend: run %zu: %s\n", i, err);
            json_decref(run);
            continue;
        }
        json_decref(run);
        if (++nb == 4096 || i + 1 == n) {
            nops_vindex_add(*flat, batch, nb, err, sizeof err);
            nb = 0;
        }
        if ((i + 1) % 200000 == 0)
            fprintf(stderr, "bench recommend: %zu of %zu runs embedded\n", i + 1, n);
    }
    free(batch);
    nops_redactor_destroy(red);
    double t0 = bench_seconds();
    bool ok = nops_histdir_commit(w, "bench", 0, err, sizeof err) == NOPS_OK;
    fprintf(stderr, "bench recommend: index of %zu runs built in %.1f s%s%s\n", n,
            bench_seconds() - t0, ok ? "" : ": ", ok ? "" : err);
    return ok;
}

static size_t discard(char *p, size_t sz, size_t n, void *ud)
{
    return sz * n;
}

/* Latency of POST /recommend for each query body, one keep-alive connection. */
static void http_latencies(int port, json_t **incs, size_t nq, double *lat)
{
    CURL *h = curl_easy_init();
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/recommend", port);
    struct curl_slist *hd = curl_slist_append(NULL, "Content-Type: application/json");
    hd = curl_slist_append(hd, "X-API-Key: bench-key");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    for (size_t i = 0; i < nq; i++) {
        json_t *body = json_pack("{s:O, s:i}", "incident", incs[i], "top_n", 3);
        char *txt = json_dumps(body, JSON_COMPACT);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, txt);
        double t0 = bench_seconds();
        long code = 0;
        if (curl_easy_perform(h) != CURLE_OK ||
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK || code != 200)
            fprintf(stderr, "bench recommend: HTTP request failed (%ld)\n", code);
        lat[i] = (bench_seconds() - t0) * 1e3;
        free(txt);
        json_decref(body);
    }
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
}

static nops_api *start_api(nops_recommender *r, nops_store *store, nops_detect_params *dp)
{
    nops_api_params p = {.rate = 1e9, .burst = 1e9, .body_limit = 1 << 20, .timeout_s = 10,
                         .threads = 1, .history = 10};
    snprintf(p.listen, sizeof p.listen, "127.0.0.1:0");
    char hex[65], err[256];
    nops_api_hash_key("bench-key", hex);
    snprintf(p.keys, sizeof p.keys, "b:viewer:%s", hex);
    nops_api_deps d = {.store = store, .detect = dp, .recommender = r};
    nops_api *api = nops_api_new(&p, &d, err, sizeof err);
    if (!api || nops_api_start(api, err, sizeof err) != NOPS_OK) {
        fprintf(stderr, "bench recommend: %s\n", err);
        nops_api_destroy(api);
        return NULL;
    }
    return api;
}

/*
 * The top 10 of each of the n queries q in ix: the latency of each into lat (may be NULL), the
 * ids into ids (10 per query; may be NULL), and how many of them the reference answers `ref`
 * (10 per query; may be NULL) hold — recall@10's numerator.
 */
static size_t search_top10(const nops_vindex *ix, const float *q, size_t n, const int64_t *ref,
                           int64_t *ids, double *lat)
{
    char err[128];
    size_t hit = 0;
    for (size_t i = 0; i < n; i++) {
        float s[10];
        int64_t id[10];
        double t0 = bench_seconds();
        nops_vindex_search(ix, q + i * NOPS_EMBED_DIM, 1, 10, s, id, err, sizeof err);
        if (lat)
            lat[i] = (bench_seconds() - t0) * 1e3;
        if (ids)
            memcpy(ids + i * 10, id, sizeof id);
        for (int a = 0; ref && a < 10; a++)
            for (int b = 0; b < 10; b++)
                hit += id[a] == ref[i * 10 + b];
    }
    return hit;
}

/* Raw IVF search latency and recall@10 for a few nprobe values, then for a few caps on the
 * vectors scanned (the defaults are marked). */
static void sweep_nprobe(nops_histdir *h, const nops_vindex *flat, const float *q, size_t nq,
                         size_t n)
{
    nops_vindex *ix = (nops_vindex *)nops_histdir_index(h); /* not shared with queries here */
    if (nops_vindex_type(ix) != NOPS_INDEX_IVF)
        return;
    const int probes[] = {4, 8, 16, 32, 64};
    double *lat = malloc(nq * sizeof *lat);
    int64_t *exact = malloc(nq * 10 * sizeof *exact);
    search_top10(flat, q, nq, NULL, exact, NULL); /* the exact answers once */
    for (size_t p = 0; p < sizeof probes / sizeof probes[0]; p++) {
        nops_vindex_set_nprobe(ix, probes[p]);
        const size_t hit = search_top10(ix, q, nq, exact, NULL, lat);
        char extra[160];
        snprintf(extra, sizeof extra, "\"runs\":%zu,\"nprobe\":%d,\"p99_ms\":%.4f,\"recall_at_10\":"
                 "%.4f%s", n, probes[p], pct(lat, nq, 0.99), (double)hit / (double)(nq * 10),
                 probes[p] == NOPS_INDEX_IVF_NPROBE ? ",\"default\":true" : "");
        bench_emit("recommend", "ivf_sweep_p50_ms", pct(lat, nq, 0.5), "ms", "none", 0, extra);
    }
    nops_vindex_set_nprobe(ix, NOPS_INDEX_IVF_NPROBE);
    /* the cap on vectors scanned, at the default nprobe (0: none, FAISS's own behaviour) */
    const double caps[] = {0, 1, 1.5, 2, 3};
    for (size_t c = 0; c < sizeof caps / sizeof caps[0]; c++) {
        nops_vindex_set_scan_cap(ix, caps[c]);
        const size_t hit = search_top10(ix, q, nq, exact, NULL, lat);
        char extra[200];
        snprintf(extra, sizeof extra, "\"runs\":%zu,\"nprobe\":%d,\"scan_cap\":%.1f,\"p99_ms\":"
                 "%.4f,\"recall_at_10\":%.4f%s", n, NOPS_INDEX_IVF_NPROBE, caps[c],
                 pct(lat, nq, 0.99), (double)hit / (double)(nq * 10),
                 caps[c] == NOPS_INDEX_IVF_SCAN_CAP ? ",\"default\":true" : "");
        bench_emit("recommend", "ivf_cap_sweep_p50_ms", pct(lat, nq, 0.5), "ms", "none", 0, extra);
    }
    nops_vindex_set_scan_cap(ix, NOPS_INDEX_IVF_SCAN_CAP);
    free(lat);
    free(exact);
}

/* How many vectors the default search scans per query, beside the lists' sizes (the cause of
 * the IVF's tail: on a clustered history some lists are many times the mean). */
static void scan_stats(const nops_vindex *ix, const float *q, size_t nq, size_t n)
{
    nops_vindex_ivf_stats st;
    size_t *scanned = malloc(nq * sizeof *scanned);
    double *sd = malloc(nq * sizeof *sd);
    char err[256], extra[400];
    if (scanned && sd &&
        nops_vindex_ivf_scan(ix, q, nq, &st, scanned, err, sizeof err) == NOPS_OK) {
        for (size_t i = 0; i < nq; i++)
            sd[i] = (double)scanned[i];
        const double p50 = pct(sd, nq, 0.5), p99 = pct(sd, nq, 0.99), max = pct(sd, nq, 1);
        snprintf(extra, sizeof extra, "\"runs\":%zu,\"lists\":%zu,\"mean_list\":%.0f,"
                 "\"largest_list\":%zu,\"largest_over_mean\":%.1f,\"empty_lists\":%zu,"
                 "\"nprobe\":%zu,\"max_codes\":%zu,\"scanned_p50\":%.0f,\"scanned_max\":%.0f",
                 n, st.lists, st.mean_list, st.largest_list,
                 (double)st.largest_list / st.mean_list, st.empty_lists, st.nprobe, st.max_codes,
                 p50, max);
        bench_emit("recommend", "ivf_scanned_p99", p99, "vectors", "nprobe_x_mean_list",
                   (double)st.nprobe * st.mean_list, extra);
    }
    free(scanned);
    free(sd);
}

/* IVF: FAISS's own search of the same index (its scalar list scan in Debian's build) beside
 * vindex.c's in-place scan (in_place: the latencies just measured), the same queries, k = 100. */
static void faiss_own(nops_histdir *h, const float *q, size_t nq, const double *in_place,
                      size_t n)
{
    nops_vindex *ix = (nops_vindex *)nops_histdir_index(h); /* not shared with queries here */
    double *lat = malloc(nq * sizeof *lat), *mine = malloc(nq * sizeof *mine);
    char err[128], extra[200];
    if (!lat || !mine) {
        free(lat);
        free(mine);
        return;
    }
    memcpy(mine, in_place, nq * sizeof *mine);
    nops_vindex_set_in_place(ix, false);
    for (size_t i = 0; i < nq; i++) {
        float s[100];
        int64_t id[100];
        const double t0 = bench_seconds();
        nops_vindex_search(ix, q + i * NOPS_EMBED_DIM, 1, 100, s, id, err, sizeof err);
        lat[i] = (bench_seconds() - t0) * 1e3;
    }
    nops_vindex_set_in_place(ix, true);
    snprintf(extra, sizeof extra, "\"runs\":%zu,\"p50_ms\":%.4f,\"peer_p50_ms\":%.4f", n,
             pct(mine, nq, 0.5), pct(lat, nq, 0.5));
    bench_emit("recommend", "in_place_ivf_search_p99_ms", pct(mine, nq, 0.99), "ms",
               "faiss_ivf_search_p99_ms", pct(lat, nq, 0.99), extra);
    free(lat);
    free(mine);
}

/* The figures of one size: lat[0] recommend, [1] raw ANN search, [2] exact search (n_exact of
 * them), [3] POST /recommend (when http). */
static void emit_figures(size_t n, const char *type, double *lat[4], size_t nq, size_t n_exact,
                         double recall, bool http)
{
    double p99[4], p50[4];
    for (int k = 0; k < 4; k++) {
        size_t m = k == 2 ? n_exact : nq;
        p99[k] = pct(lat[k], m, 0.99);
        p50[k] = pct(lat[k], m, 0.50);
    }
    char extra[256];
    snprintf(extra, sizeof extra, "\"runs\":%zu,\"index\":\"%s\",\"k\":100,\"p50_ms\":%.4f,"
             "\"peer_p50_ms\":%.4f,\"target_p99_ms\":2,\"target_overhead\":1.3", n, type,
             p50[0], p50[1]);
    bench_emit("recommend", "recommend_p99_ms", p99[0], "ms", "raw_index_search_p99_ms", p99[1],
               extra);
    snprintf(extra, sizeof extra, "\"runs\":%zu,\"p50_ms\":%.4f,\"peer_p50_ms\":%.4f,"
             "\"target_p99_ms\":5", n, p50[3], p50[1]);
    if (http)
        bench_emit("recommend", "http_recommend_p99_ms", p99[3], "ms", "raw_index_search_p99_ms",
                   p99[1], extra);
    snprintf(extra, sizeof extra, "\"runs\":%zu,\"p50_ms\":%.4f,\"peer_p50_ms\":%.4f", n,
             p50[1], p50[2]);
    bench_emit("recommend", "ann_search_p99_ms", p99[1], "ms", "exact_search_p99_ms", p99[2],
               extra);
    snprintf(extra, sizeof extra, "\"runs\":%zu,\"index\":\"%s\",\"target\":0.95", n, type);
    bench_emit("recommend", "recall_at_10", recall, "fraction", "exact", 1.0, extra);
}

/* The nq query incidents (kinds in rotation, a fixed seed) in incs, their embeddings in q. */
static void make_queries(json_t **incs, float *q, size_t nq)
{
    history_gen g;
    history_init(&g, 9191);
    for (size_t i = 0; i < nq; i++) {
        incs[i] = history_incident(&g, (int)(i % HISTORY_KINDS));
        nops_embed_json(incs[i], q + i * NOPS_EMBED_DIM);
    }
}

/* The recommend path's latencies, twice: right after the recommender loaded its copy of the
 * index (cold: its pages and the process's allocator still warming up), then as a serving
 * engine runs (those in lat); the line of the first pass beside the second. */
static void recommend_latencies(nops_recommender *r, json_t **incs, size_t nq, size_t n,
                                double *lat)
{
    char err[256];
    double *cold = malloc(nq * sizeof *cold);
    for (int pass = 0; pass < 2 && cold; pass++)
        for (size_t i = 0; i < nq; i++) {
            double t0 = bench_seconds();
            json_t *out = NULL;
            nops_recommend(r, incs[i], 3, &out, err, sizeof err);
            (pass == 0 ? cold : lat)[i] = (bench_seconds() - t0) * 1e3;
            json_decref(out);
        }
    if (cold) {
        char extra[160];
        snprintf(extra, sizeof extra, "\"runs\":%zu,\"p50_ms\":%.4f,\"peer_p50_ms\":%.4f", n,
                 pct(cold, nq, 0.5), pct(lat, nq, 0.5));
        bench_emit("recommend", "recommend_first_pass_p99_ms", pct(cold, nq, 0.99), "ms",
                   "recommend_second_pass_p99_ms", pct(lat, nq, 0.99), extra);
        free(cold);
    }
}

/* The raw ANN search's latencies (k = 100) in lat, each query's first 10 ids in ann_ids. */
static void ann_latencies(const nops_vindex *ix, const float *q, size_t nq, double *lat,
                          int64_t *ann_ids)
{
    char err[256];
    for (size_t i = 0; i < nq; i++) {
        float s[100];
        int64_t id[100];
        double t0 = bench_seconds();
        nops_vindex_search(ix, q + i * NOPS_EMBED_DIM, 1, 100, s, id, err, sizeof err);
        lat[i] = (bench_seconds() - t0) * 1e3;
        memcpy(ann_ids + i * 10, id, 10 * sizeof *id);
    }
}

static void one_size(size_t n, size_t nq)
{
    char dir[] = "/tmp/nops-bench-reco-XXXXXX", err[256];
    nops_vindex *flat = NULL;
    if (!mkdtemp(dir) || !build(dir, n, &flat))
        return;
    nops_reco_params rp = {.neighbours = 100, .min_similarity = 0.5, .prior_weight = 2,
                           .reload_s = 3600};
    snprintf(rp.index_dir, sizeof rp.index_dir, "%s", dir);
    nops_recommender *r = nops_recommender_new(&rp, err, sizeof err);
    nops_histdir *h = nops_histdir_open(dir, err, sizeof err);
    json_t **incs = malloc(nq * sizeof *incs);
    float *q = malloc(nq * NOPS_EMBED_DIM * sizeof *q);
    make_queries(incs, q, nq);
    double *lat[4];
    for (int k = 0; k < 4; k++)
        lat[k] = malloc(nq * sizeof(double));
    /* each kind of query in its own loop, so that one does not evict the other's caches */
    recommend_latencies(r, incs, nq, n, lat[0]);
    int64_t *ann_ids = malloc(nq * 10 * sizeof *ann_ids);
    ann_latencies(nops_histdir_index(h), q, nq, lat[1], ann_ids);
    size_t n_exact = n > 200000 && nq > 300 ? 300 : nq; /* exact: ~0.15 s/query at 1M */
    const size_t hit = search_top10(flat, q, n_exact, ann_ids, NULL, lat[2]);
    free(ann_ids);
    if (nops_vindex_type(nops_histdir_index(h)) == NOPS_INDEX_IVF) {
        scan_stats(nops_histdir_index(h), q, nq, n);
        faiss_own(h, q, nq, lat[1], n);
    }
    sweep_nprobe(h, flat, q, nq < 200 ? nq : 200, n);
    nops_store *store = nops_store_new(10, 10);
    nops_detect_params dp;
    nops_detect_params_default(&dp);
    nops_api *api = start_api(r, store, &dp);
    if (api)
        http_latencies(nops_api_port(api), incs, nq, lat[3]);
    const char *type = nops_index_type_name(nops_vindex_type(nops_histdir_index(h)));
    emit_figures(n, type, lat, nq, n_exact, (double)hit / (double)(n_exact * 10), api != NULL);
    nops_api_destroy(api);
    nops_store_destroy(store);
    for (size_t i = 0; i < nq; i++)
        json_decref(incs[i]);
    for (int k = 0; k < 4; k++)
        free(lat[k]);
    free(incs);
    free(q);
    nops_histdir_close(h);
    nops_recommender_destroy(r);
    nops_vindex_destroy(flat);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench recommend: cannot remove %s\n", dir);
}

/* The [recommend] defaults with the --set overrides; false (and a message) on a bad one. */
static bool quality_params(const bench_opts *o, nops_reco_params *rp)
{
    char err[256] = "";
    nops_cfg *cfg = nops_cfg_new();
    nops_err e = cfg ? nops_cfg_add(cfg, &nops_reco_cfg_section, rp, err, sizeof err) : NOPS_NOMEM;
    for (int i = 0; e == NOPS_OK && i < o->n_sets; i++) {
        char name[128];
        const char *eq = strchr(o->sets[i], '=');
        if (!eq || (size_t)(eq - o->sets[i]) >= sizeof name) {
            snprintf(err, sizeof err, "--set expects section.key=value, not \"%s\"", o->sets[i]);
            e = NOPS_INVAL;
            break;
        }
        memcpy(name, o->sets[i], (size_t)(eq - o->sets[i]));
        name[eq - o->sets[i]] = '\0';
        e = nops_cfg_set(cfg, name, eq + 1, "--set", err, sizeof err);
        if (e == NOPS_OK)
            fprintf(stderr, "bench recommend: quality with %s\n", o->sets[i]);
    }
    nops_cfg_destroy(cfg);
    if (e != NOPS_OK)
        fprintf(stderr, "neuralops-bench recommend: %s\n", *err ? err : nops_strerror(e));
    return e == NOPS_OK;
}

/* The quality lines of one regime, the engine beside the exact-kNN baseline. */
static bool quality_regime(const nops_reco_params *rp, int runs_per_kind, double noise,
                           uint64_t seed, int histories, double suggest, const char *targets[4])
{
    nops_synth_reco_regime rg = {.runs_per_kind = runs_per_kind, .noise = noise, .seed = seed,
                                 .histories = histories, .suggest = suggest};
    nops_synth_reco_figures f;
    char err[512] = "", extra[300];
    const double t0 = bench_seconds();
    if (nops_synth_reco_eval(&rg, rp, "/tmp", &f, err, sizeof err) != NOPS_OK) {
        fprintf(stderr, "bench recommend: quality at %d runs a kind: %s\n", runs_per_kind, err);
        return false;
    }
    fprintf(stderr, "bench recommend: quality at %d runs a kind (%zu runs) in %.1f s\n",
            runs_per_kind, f.runs, bench_seconds() - t0);
    const struct {
        const char *name;
        double v, peer;
        size_t n;
    } fig[] = {
        {"top1", f.engine.top1, f.baseline.top1, f.probes_known},
        {"top1_trap_kinds", f.engine.top1_trap, f.baseline.top1_trap, f.probes_trap},
        {"top1_unseen_words", f.engine.top1_fresh, f.baseline.top1_fresh, f.probes_known},
        {"confidence_unseen_over_known", f.engine.conf_ratio, f.baseline.conf_ratio,
         f.probes_unseen},
    };
    for (int i = 0; i < 4; i++) {
        snprintf(extra, sizeof extra, "\"runs_per_kind\":%d,\"noise\":%.2f,\"runs\":%zu,"
                 "\"histories\":%d,\"probes\":%zu%s%s%s", runs_per_kind, noise, f.runs,
                 histories, fig[i].n,
                 targets[i] ? ",\"target\":\"" : "", targets[i] ? targets[i] : "",
                 targets[i] ? "\"" : "");
        bench_emit("recommend", fig[i].name, fig[i].v, "fraction", "exact_knn", fig[i].peer,
                   extra);
    }
    snprintf(extra, sizeof extra, "\"runs_per_kind\":%d,\"noise\":%.2f,\"known_median\":%.3f,"
             "\"unseen_kind_median\":%.3f,\"unseen_words_median\":%.3f", runs_per_kind, noise,
             f.engine.conf_known, f.engine.conf_unseen, f.engine.conf_fresh);
    bench_emit("recommend", "confidence_known_median", f.engine.conf_known, "fraction",
               "exact_knn_mean_similarity", f.baseline.conf_known, extra);
    snprintf(extra, sizeof extra, "\"runs_per_kind\":%d,\"noise\":%.2f,\"histories\":%d,"
             "\"trap_kinds\":%.3f", runs_per_kind, noise, histories, f.ceiling_trap);
    bench_emit("recommend", "history_ceiling_top1", f.ceiling_top1, "fraction", "engine_top1",
               f.engine.top1, extra);
    snprintf(extra, sizeof extra, "\"runs_per_kind\":%d,\"noise\":%.2f,\"suggest_confidence\":"
             "%.2f,\"known_kinds_suggested\":%.3f,\"unseen_kind_max_confidence\":%.3f",
             runs_per_kind, noise, suggest, f.engine.auto_known, f.engine.conf_unseen_max);
    bench_emit("recommend", "unseen_kinds_suggested", f.engine.auto_unseen, "fraction",
               "known_kinds_suggested", f.engine.auto_known, extra);
    return true;
}

/* Both regimes' quality lines. */
static int quality(const bench_opts *o)
{
    nops_reco_params rp;
    if (!quality_params(o, &rp))
        return 1;
    const uint64_t seed = o->seed ? o->seed : 18;
    const char *rich[4] = {"unchanged", "unchanged", "unchanged", "<= 0.3"};
    const char *scarce[4] = {">= 0.93", ">= 0.87", NULL, "<= 0.3"};
    double suggest = 0;
    nops_cfg *cfg = nops_cfg_new();
    nops_loop_params lp;
    if (cfg && nops_cfg_add(cfg, &nops_loop_cfg_section, &lp, NULL, 0) == NOPS_OK)
        suggest = lp.suggest_confidence; /* the automatic-suggestion default */
    nops_cfg_destroy(cfg);
    bool ok = quality_regime(&rp, 350, 0, seed, 1, suggest, rich);
    ok = quality_regime(&rp, 20, 0.15, seed, SCARCE_HISTORIES, suggest, scarce) && ok;
    return ok ? 0 : 1;
}

int bench_recommend(const bench_opts *o)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    nops_log_configure(NOPS_LOG_WARN, NOPS_LOG_TEXT);
    const int q = quality(o);
    if (o->n_sets) {
        curl_global_cleanup();
        return q;
    }
    if (o->series) {
        one_size(o->series, o->quick ? 200 : QUERIES);
    } else if (o->quick) {
        one_size(60000, 200);
    } else {
        one_size(100000, QUERIES);
        one_size(1000000, QUERIES);
    }
    curl_global_cleanup();
    return q;
}
