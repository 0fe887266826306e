/*
 * vindex.c — the ANN index of vector.h on FAISS's official C API (inner product = cosine for
 * the L2-normalised embeddings).
 *
 * Types (all METRIC_INNER_PRODUCT):
 *   FLAT "Flat": exact.
 *   IVF  "IVF<nlist>,Flat", nlist ≈ 4·√n bounded to 16..16384 and to ≤ n/39 (k-means wants 39
 *        training points per list); trained on an evenly spread sample of ≤ 64 points per
 *        list; searched with nprobe = NOPS_INDEX_IVF_NPROBE, at most NOPS_INDEX_IVF_SCAN_CAP ×
 *        nprobe × the mean list's size scanned (FAISS's max_codes) — by search_in_place
 *        below (FAISS's lists, OpenBLAS inner products) where the index allows it.
 *   HNSW "HNSW32", efConstruction HNSW_EF_CONSTRUCTION (FAISS's default 40 leaves clustered
 *        data with islands: recall stalls near 0.99), efSearch HNSW_EF_SEARCH (p99 ≈ 1.6 ms at
 *        1M; 512 and more cost 2–4× the time for ≤ 1 point of recall).
 *   AUTO FLAT below NOPS_INDEX_AUTO_FLAT_MAX vectors, else IVF. Measured on this machine (2 vCPU
 *        EPYC, one thread per query) at 1M vectors of dimension 256: IVF builds in ~1.5 min
 *        where HNSW takes 7–12, answers in p99 ≈ 1.7 ms with recall@10 0.993 on history
 *        embeddings, where HNSW stays at 0.92–0.94 whatever efSearch (their near-duplicates
 *        defeat the graph); on synthetic clusters both reach ≥ 0.98.
 *
 * Threads: search parameters are fixed when an index is built or loaded, never per call
 * (FAISS's ParameterSpace writes into the index), so concurrent searches share nothing mutable.
 * A search holds OpenMP to one thread in the calling thread and restores the previous setting
 * after it (building keeps FAISS's own OpenMP parallelism). Batches of ≥ 20 queries on FLAT go
 * through BLAS, which follows OPENBLAS_NUM_THREADS.
 */
#include "vector/vector.h"

#include "vector/faiss_ext.h"

#include <faiss/c_api/AutoTune_c.h>
#include <faiss/c_api/IndexFlat_c.h>
#include <faiss/c_api/IndexIVF_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>
#include <cblas.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define HNSW_EF_CONSTRUCTION 80
#define HNSW_EF_SEARCH 256
#define IVF_TRAIN_PER_LIST 64
#define SCAN_ROWS 32     /* rows per sgemv: m·n = 8192 < OpenBLAS's 9216 threading threshold at
                          * d = 256, so a search never wakes BLAS threads (correlate.c says why) */
#define MAX_NPROBE 1024  /* probes the in-place scan takes (more: FAISS searches) */

struct nops_vindex {
    FaissIndex *ix;
    nops_index_type type;
    bool l2; /* an L2 index (written by older builds): similarities are 1 − d²/2 */
    size_t max_codes; /* IVF: FAISS's cap on the vectors one search scans (0: none) */
    double cap_factor; /* of nprobe × the mean list */
    float *cent;       /* IVF scanned in place (faiss_ext.h): the nlist × d centroids; NULL:
                        * searches go through FAISS */
    size_t nlist;
    bool faiss_only; /* nops_vindex_set_in_place(false) */
};

static const char *type_names[] = {"auto", "flat", "ivf", "hnsw"};

static nops_err direct_scan(nops_vindex *v, char *errstr, size_t errstr_size);

const char *nops_index_type_name(nops_index_type t)
{
    return (unsigned)t < 4 ? type_names[t] : "unknown";
}

nops_err nops_index_type_parse(const char *s, nops_index_type *t)
{
    for (int i = 0; s && i < 4; i++)
        if (strcmp(s, type_names[i]) == 0) {
            *t = (nops_index_type)i;
            return NOPS_OK;
        }
    return NOPS_INVAL;
}

/* FAISS's last message without "Error in <function> at <file>:<line>: " and "'<cond>' failed: ". */
static const char *faiss_msg(void)
{
    const char *e = faiss_get_last_error(), *p;
    if (!e)
        return "unknown error";
    if ((p = strstr(e, ": Error: ")))
        e = p + 9;
    else if (strncmp(e, "Error in ", 9) == 0 && (p = strstr(e, " at ")) && (p = strstr(p, ": ")))
        e = p + 2;
    if (e[0] == '\'' && (p = strstr(e, "' failed: ")))
        e = p + 10;
    return e;
}

static nops_err faiss_failed(char *errstr, size_t errstr_size, const char *what)
{
    nops_errf(errstr, errstr_size, "FAISS %s failed: %.300s", what, faiss_msg());
    return NOPS_INTERNAL;
}

/* ≈ 4·√n lists, but at least 39 training points each (k-means needs them), 16..16384 */
static size_t ivf_lists(size_t n)
{
    size_t nl = (size_t)(4 * sqrt((double)(n ? n : 1)));
    if (nl > n / 39)
        nl = n / 39;
    return nl < 16 ? 16 : nl > 16384 ? 16384 : nl;
}

static int set_param(FaissIndex *ix, const char *name, double value)
{
    FaissParameterSpace *ps = NULL;
    int rc = faiss_ParameterSpace_new(&ps);
    if (rc == 0)
        rc = faiss_ParameterSpace_set_index_parameter(ps, ix, name, value);
    faiss_ParameterSpace_free(ps);
    return rc;
}

/*
 * IVF: a search stops after the probed list (nearest first) that brings its scan to
 * NOPS_INDEX_IVF_SCAN_CAP × nprobe × the mean list's size (FAISS's max_codes). On a
 * clustered history the lists are uneven (1 M runs, 4000 lists: mean 250, median 73, largest
 * 6239) and a query landing among the large ones scans 2× the median query's vectors. FAISS
 * checks the cap between lists, so a query still finishes the list that crosses it: at 2× the
 * measured p99 scan drops only 2 % (recall@10 unchanged, 0.984; 1× costs 0.01), but no query
 * scans more than the cap plus one list (bench/RESULTS.md, "recommend", 2026-12-01). Not
 * stored in FAISS's files: set when the index is built or loaded, after every add and when
 * nprobe changes.
 */
static nops_err cap_scan(nops_vindex *v, char *errstr, size_t errstr_size)
{
    FaissIndexIVF *ivf = faiss_IndexIVF_cast(v->ix);
    if (!ivf)
        return NOPS_OK;
    const double mean = (double)nops_vindex_count(v) / (double)faiss_IndexIVF_nlist(ivf);
    const size_t cap = (size_t)(v->cap_factor * (double)faiss_IndexIVF_nprobe(ivf) * mean);
    if (set_param(v->ix, "max_codes", (double)cap) != 0)
        return faiss_failed(errstr, errstr_size, "max_codes");
    v->max_codes = cap;
    return NOPS_OK;
}

/* Search-time parameters, set once before the index is shared. */
static nops_err tune(nops_vindex *v, char *errstr, size_t errstr_size)
{
    FaissIndexIVF *ivf = faiss_IndexIVF_cast(v->ix);
    if (v->type == NOPS_INDEX_IVF && ivf) {
        faiss_IndexIVF_set_nprobe(ivf, NOPS_INDEX_IVF_NPROBE);
        return cap_scan(v, errstr, errstr_size);
    } else if (v->type == NOPS_INDEX_HNSW) {
        if (set_param(v->ix, "efSearch", HNSW_EF_SEARCH) != 0)
            return faiss_failed(errstr, errstr_size, "efSearch");
    }
    return NOPS_OK;
}

nops_vindex *nops_vindex_new(int dim, nops_index_type type, size_t expected_n, char *errstr,
                             size_t errstr_size)
{
    if (dim <= 0 || (unsigned)type > NOPS_INDEX_HNSW) {
        nops_errf(errstr, errstr_size, "bad index settings (dimension %d, type %d)", dim,
                  (int)type);
        return NULL;
    }
    if (type == NOPS_INDEX_AUTO)
        type = expected_n < NOPS_INDEX_AUTO_FLAT_MAX ? NOPS_INDEX_FLAT : NOPS_INDEX_IVF;
    char desc[64];
    if (type == NOPS_INDEX_FLAT)
        snprintf(desc, sizeof desc, "Flat");
    else if (type == NOPS_INDEX_IVF)
        snprintf(desc, sizeof desc, "IVF%zu,Flat", ivf_lists(expected_n));
    else
        snprintf(desc, sizeof desc, "HNSW32");
    nops_vindex *v = nops_calloc(1, sizeof *v);
    if (!v) {
        nops_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    v->type = type;
    v->cap_factor = NOPS_INDEX_IVF_SCAN_CAP;
    if (faiss_index_factory(&v->ix, dim, desc, METRIC_INNER_PRODUCT) != 0 ||
        (type == NOPS_INDEX_HNSW &&
         set_param(v->ix, "efConstruction", HNSW_EF_CONSTRUCTION) != 0)) {
        faiss_failed(errstr, errstr_size, desc);
        nops_vindex_destroy(v);
        return NULL;
    }
    if (tune(v, errstr, errstr_size) != NOPS_OK) {
        nops_vindex_destroy(v);
        return NULL;
    }
    return v;
}

void nops_vindex_destroy(nops_vindex *v)
{
    if (!v)
        return;
    if (v->ix)
        faiss_Index_free(v->ix);
    nops_free(v->cent);
    nops_free(v);
}

nops_err nops_vindex_train(nops_vindex *v, const float *x, size_t n, char *errstr,
                           size_t errstr_size)
{
    if (faiss_Index_is_trained(v->ix))
        return NOPS_OK;
    FaissIndexIVF *ivf = faiss_IndexIVF_cast(v->ix);
    size_t lists = ivf ? faiss_IndexIVF_nlist(ivf) : 1;
    if (n < lists) {
        nops_errf(errstr, errstr_size, "an IVF index of %zu lists needs at least as many "
                  "training vectors, got %zu (use --index-type flat)", lists, n);
        return NOPS_INVAL;
    }
    /* k-means needs no more than IVF_TRAIN_PER_LIST points per list: an evenly spread sample
     * (histories are in time order, a prefix would miss what came later) */
    size_t want = lists * IVF_TRAIN_PER_LIST < n ? lists * IVF_TRAIN_PER_LIST : n;
    const size_t d = (size_t)faiss_Index_d(v->ix);
    float *sample = (float *)x;
    if (want < n) {
        if (!(sample = nops_malloc(want * d * sizeof *sample))) {
            nops_errf(errstr, errstr_size, "out of memory");
            return NOPS_NOMEM;
        }
        for (size_t i = 0; i < want; i++)
            memcpy(sample + i * d, x + (size_t)((double)i * (double)n / (double)want) * d,
                   d * sizeof *x);
    }
    int rc = faiss_Index_train(v->ix, (idx_t)want, sample);
    if (sample != x)
        nops_free(sample);
    return rc ? faiss_failed(errstr, errstr_size, "train") : direct_scan(v, errstr, errstr_size);
}

nops_err nops_vindex_add(nops_vindex *v, const float *x, size_t n, char *errstr,
                         size_t errstr_size)
{
    if (!faiss_Index_is_trained(v->ix)) {
        nops_errf(errstr, errstr_size, "the %s index must be trained before vectors are added",
                  nops_index_type_name(v->type));
        return NOPS_INVAL;
    }
    if (n && faiss_Index_add(v->ix, (idx_t)n, x) != 0)
        return faiss_failed(errstr, errstr_size, "add");
    return v->type == NOPS_INDEX_IVF ? cap_scan(v, errstr, errstr_size) : NOPS_OK;
}

/*
 * IVF searched in place. FAISS's own IVF search is right but slow here: Debian's libfaiss is
 * built for baseline x86-64 and computes every inner product with its scalar reference loop
 * (44 % of a 1 M-run search's time, and the coarse quantizer's nlist products on top). So an
 * inner-product IVF-Flat index whose lists FAISS keeps in memory (faiss_ext.h) is searched here
 * with the same algorithm — the nprobe centroids of highest inner product, their lists scanned
 * nearest first, stopping after the list that brings the scan to max_codes — and the inner
 * products computed by OpenBLAS (cblas_sgemv, its kernel chosen for the CPU at run time).
 * Results equal FAISS's up to float rounding of the products (summation order). The centroids
 * are copied once (nlist × d floats: 4 MB at 1 M runs) when the index is trained or loaded; a
 * search allocates nothing and writes only its own outputs and stack.
 */
static nops_err direct_scan(nops_vindex *v, char *errstr, size_t errstr_size)
{
    FaissIndexIVF *ivf = faiss_IndexIVF_cast(v->ix);
    const float *codes;
    const int64_t *lid;
    size_t n;
    nops_free(v->cent);
    v->cent = NULL;
    if (!ivf || v->l2 || !faiss_Index_is_trained(v->ix) ||
        nops_faiss_ivf_flat_list(ivf, 0, &codes, &lid, &n) != 0)
        return NOPS_OK; /* FAISS searches */
    FaissIndex *quant = faiss_IndexIVF_quantizer(ivf);
    const size_t nlist = faiss_IndexIVF_nlist(ivf), d = (size_t)faiss_Index_d(v->ix);
    if (!quant || (size_t)faiss_Index_ntotal(quant) != nlist || faiss_Index_d(quant) != (int)d)
        return NOPS_OK;
    float *cent = nops_malloc(nlist * d * sizeof *cent);
    if (!cent) {
        nops_errf(errstr, errstr_size, "out of memory");
        return NOPS_NOMEM;
    }
    if (faiss_Index_reconstruct_n(quant, 0, (idx_t)nlist, cent) != 0) {
        nops_free(cent);
        return faiss_failed(errstr, errstr_size, "centroids");
    }
    v->cent = cent;
    v->nlist = nlist;
    return NOPS_OK;
}

/* Put (s, id) at the root of the min-heap hs/hi of k entries (the k highest seen; root the
 * lowest) and sift it down to its place. */
static void sift_down(float *hs, int64_t *hi, size_t k, float s, int64_t id)
{
    size_t i = 0;
    for (;;) {
        const size_t l = 2 * i + 1, r = l + 1;
        size_t m = i;
        float ms = s;
        if (l < k && hs[l] < ms)
            ms = hs[m = l];
        if (r < k && hs[r] < ms)
            m = r;
        if (m == i)
            break;
        hs[i] = hs[m];
        hi[i] = hi[m];
        i = m;
    }
    hs[i] = s;
    hi[i] = id;
}

/* Offer (s, id) to the heap: it replaces the lowest when higher. */
static void heap_offer(float *hs, int64_t *hi, size_t k, float s, int64_t id)
{
    if (s > hs[0])
        sift_down(hs, hi, k, s, id);
}

/* The heap as a list, highest first (heapsort: the lowest goes to the end each round). */
static void heap_sorted(float *hs, int64_t *hi, size_t k)
{
    for (size_t n = k; n > 1; n--) {
        const float s = hs[n - 1];
        const int64_t id = hi[n - 1];
        hs[n - 1] = hs[0];
        hi[n - 1] = hi[0];
        sift_down(hs, hi, n - 1, s, id);
    }
}

/* Every row's inner product with q, offered to the heap hs/hi (k), ids from ids (NULL: the row
 * number + base). */
static void scan_rows(const float *rows, size_t n, size_t d, const float *q, const int64_t *ids,
                      int64_t base, float *hs, int64_t *hi, size_t k)
{
    float dot[SCAN_ROWS];
    for (size_t i = 0; i < n; i += SCAN_ROWS) {
        const size_t m = n - i < SCAN_ROWS ? n - i : SCAN_ROWS;
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)m, (int)d, 1.0f, rows + i * d, (int)d, q,
                    1, 0.0f, dot, 1);
        for (size_t j = 0; j < m; j++)
            heap_offer(hs, hi, k, dot[j], ids ? ids[i + j] : base + (int64_t)(i + j));
    }
}

/* One query, k results (highest first; −1 ids and −FLT_MAX past the last found), as FAISS's
 * IVF search gives them; false if a list cannot be read in place. */
static bool search_in_place(const nops_vindex *v, FaissIndexIVF *ivf, const float *q, int k,
                            float *sims, int64_t *ids)
{
    const size_t d = (size_t)faiss_Index_d(v->ix);
    size_t np = faiss_IndexIVF_nprobe(ivf);
    np = np < v->nlist ? np : v->nlist;
    float ps[MAX_NPROBE];
    int64_t pl[MAX_NPROBE];
    for (size_t j = 0; j < np; j++) {
        ps[j] = -FLT_MAX;
        pl[j] = -1;
    }
    scan_rows(v->cent, v->nlist, d, q, NULL, 0, ps, pl, np);
    heap_sorted(ps, pl, np);
    for (int i = 0; i < k; i++) {
        sims[i] = -FLT_MAX;
        ids[i] = -1;
    }
    size_t scanned = 0;
    for (size_t j = 0; j < np && pl[j] >= 0; j++) {
        const float *codes;
        const int64_t *lid;
        size_t n;
        if (nops_faiss_ivf_flat_list(ivf, (size_t)pl[j], &codes, &lid, &n) != 0)
            return false;
        scan_rows(codes, n, d, q, lid, 0, sims, ids, (size_t)k);
        scanned += n;
        if (v->max_codes && scanned >= v->max_codes)
            break;
    }
    heap_sorted(sims, ids, (size_t)k);
    return true;
}

nops_err nops_vindex_search(const nops_vindex *v, const float *q, size_t nq, int k, float *sims,
                            int64_t *ids, char *errstr, size_t errstr_size)
{
    if (k <= 0) {
        nops_errf(errstr, errstr_size, "k must be positive");
        return NOPS_INVAL;
    }
    FaissIndexIVF *ivf = v->cent && !v->faiss_only ? faiss_IndexIVF_cast(v->ix) : NULL;
    if (ivf && faiss_IndexIVF_nprobe(ivf) <= MAX_NPROBE) {
        const size_t d = (size_t)faiss_Index_d(v->ix);
        for (size_t i = 0; i < nq; i++)
            if (!search_in_place(v, ivf, q + i * d, k, sims + i * (size_t)k,
                                 ids + i * (size_t)k)) {
                nops_errf(errstr, errstr_size, "an IVF list could not be read in place");
                return NOPS_INTERNAL;
            }
        return NOPS_OK;
    }
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1); /* this call runs on the calling thread only */
    int rc = faiss_Index_search(v->ix, (idx_t)nq, q, k, sims, (idx_t *)ids);
    omp_set_num_threads(threads);
    if (rc != 0)
        return faiss_failed(errstr, errstr_size, "search");
    if (v->l2)
        for (size_t i = 0; i < nq * (size_t)k; i++)
            sims[i] = ids[i] >= 0 ? 1.0f - sims[i] / 2 : -1.0f;
    return NOPS_OK;
}

nops_err nops_vindex_reconstruct_n(const nops_vindex *v, int64_t i0, size_t n, float *out,
                                   char *errstr, size_t errstr_size)
{
    if (i0 < 0 || (uint64_t)i0 + n > nops_vindex_count(v)) {
        nops_errf(errstr, errstr_size, "vectors %lld..%lld are not in the index of %zu",
                  (long long)i0, (long long)i0 + (long long)n - 1, nops_vindex_count(v));
        return NOPS_INVAL;
    }
    if (n && faiss_Index_reconstruct_n(v->ix, (idx_t)i0, (idx_t)n, out) != 0)
        return faiss_failed(errstr, errstr_size, "reconstruct");
    return NOPS_OK;
}

void nops_vindex_set_nprobe(nops_vindex *v, int nprobe)
{
    FaissIndexIVF *ivf = faiss_IndexIVF_cast(v->ix);
    char err[8];
    if (ivf && nprobe > 0) {
        faiss_IndexIVF_set_nprobe(ivf, (size_t)nprobe);
        cap_scan(v, err, sizeof err); /* FAISS takes max_codes from any IVF index */
    }
}

void nops_vindex_set_scan_cap(nops_vindex *v, double factor)
{
    char err[8];
    v->cap_factor = factor > 0 ? factor : 0;
    cap_scan(v, err, sizeof err);
}

void nops_vindex_set_in_place(nops_vindex *v, bool on)
{
    v->faiss_only = !on;
}

size_t nops_vindex_count(const nops_vindex *v)
{
    return (size_t)faiss_Index_ntotal(v->ix);
}

int nops_vindex_dim(const nops_vindex *v)
{
    return faiss_Index_d(v->ix);
}

nops_index_type nops_vindex_type(const nops_vindex *v)
{
    return v->type;
}

nops_err nops_vindex_save(const nops_vindex *v, const char *path, char *errstr,
                          size_t errstr_size)
{
    FILE *f = nops_file_fopen(path, "w");
    if (!f) {
        nops_errf(errstr, errstr_size, "cannot write the index to %s: %s", path,
                  strerror(errno));
        return NOPS_IO;
    }
    int rc = faiss_write_index(v->ix, f);
    bool ok = rc == 0 && fflush(f) == 0 && fsync(fileno(f)) == 0;
    const int saved = errno;
    ok = fclose(f) == 0 && ok;
    if (!ok) {
        if (rc != 0)
            nops_errf(errstr, errstr_size, "cannot write the index to %s: %.300s", path,
                      faiss_msg());
        else
            nops_errf(errstr, errstr_size, "cannot write the index to %s: %s", path,
                      strerror(saved ? saved : errno));
        return NOPS_IO;
    }
    return NOPS_OK;
}

/* What a loaded index is, from the index itself; HNSW is the one that takes an efSearch. */
static nops_err recover_type(nops_vindex *v, const char *path, char *errstr, size_t errstr_size)
{
    FaissMetricType m = faiss_Index_metric_type(v->ix);
    v->l2 = m == METRIC_L2;
    if (m != METRIC_INNER_PRODUCT && m != METRIC_L2) {
        nops_errf(errstr, errstr_size, "%s is a FAISS index of an unsupported metric (%d)", path,
                  (int)m);
        return NOPS_PARSE;
    }
    if (faiss_IndexFlat_cast(v->ix))
        v->type = NOPS_INDEX_FLAT;
    else if (faiss_IndexIVF_cast(v->ix))
        v->type = NOPS_INDEX_IVF;
    else if (set_param(v->ix, "efSearch", HNSW_EF_SEARCH) == 0)
        v->type = NOPS_INDEX_HNSW;
    else {
        nops_errf(errstr, errstr_size, "%s is a FAISS index of a kind NeuralOps does not use "
                  "(not Flat, IVF or HNSW)", path);
        return NOPS_PARSE;
    }
    return tune(v, errstr, errstr_size);
}

/* The index just read into v->ix (rc: FAISS's result) checked and tuned; NULL on failure. */
static nops_vindex *loaded(nops_vindex *v, int rc, const char *path, int dim, char *errstr,
                           size_t errstr_size)
{
    if (rc != 0 || !v->ix) {
        nops_errf(errstr, errstr_size, "%s is not a readable FAISS index: %.300s", path,
                  faiss_msg());
        nops_vindex_destroy(v);
        return NULL;
    }
    if (faiss_Index_d(v->ix) != dim) {
        nops_errf(errstr, errstr_size, "%s has dimension %d, expected %d", path,
                  faiss_Index_d(v->ix), dim);
        nops_vindex_destroy(v);
        return NULL;
    }
    if (recover_type(v, path, errstr, errstr_size) != NOPS_OK ||
        direct_scan(v, errstr, errstr_size) != NOPS_OK) {
        nops_vindex_destroy(v);
        return NULL;
    }
    return v;
}

nops_vindex *nops_vindex_load(const char *path, int dim, char *errstr, size_t errstr_size)
{
    nops_vindex *v = nops_calloc(1, sizeof *v);
    if (!v) {
        nops_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    v->cap_factor = NOPS_INDEX_IVF_SCAN_CAP;
    return loaded(v, faiss_read_index_fname(path, 0, &v->ix), path, dim, errstr, errstr_size);
}

nops_vindex *nops_vindex_read(FILE *f, const char *name, int dim, char *errstr,
                              size_t errstr_size)
{
    nops_vindex *v = nops_calloc(1, sizeof *v);
    if (!v) {
        nops_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    v->cap_factor = NOPS_INDEX_IVF_SCAN_CAP;
    return loaded(v, faiss_read_index(f, 0, &v->ix), name, dim, errstr, errstr_size);
}

nops_err nops_vindex_ivf_scan(const nops_vindex *v, const float *q, size_t nq,
                              nops_vindex_ivf_stats *st, size_t *scanned, char *errstr,
                              size_t errstr_size)
{
    FaissIndexIVF *ivf = faiss_IndexIVF_cast(v->ix);
    if (!ivf) {
        nops_errf(errstr, errstr_size, "the %s index has no inverted lists",
                  nops_index_type_name(v->type));
        return NOPS_INVAL;
    }
    *st = (nops_vindex_ivf_stats){.lists = faiss_IndexIVF_nlist(ivf),
                                  .nprobe = faiss_IndexIVF_nprobe(ivf),
                                  .max_codes = v->max_codes,
                                  .in_place = v->cent && !v->faiss_only};
    for (size_t l = 0; l < st->lists; l++) {
        const size_t sz = faiss_IndexIVF_get_list_size(ivf, l);
        st->largest_list = sz > st->largest_list ? sz : st->largest_list;
        st->empty_lists += sz == 0;
    }
    st->mean_list = (double)nops_vindex_count(v) / (double)(st->lists ? st->lists : 1);
    float *d = nops_malloc(st->nprobe * sizeof *d);
    idx_t *probed = nops_malloc(st->nprobe * sizeof *probed);
    nops_err e = d && probed ? NOPS_OK : NOPS_NOMEM;
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    const size_t dim = (size_t)faiss_Index_d(v->ix);
    for (size_t i = 0; e == NOPS_OK && i < nq; i++) {
        if (faiss_Index_search(faiss_IndexIVF_quantizer(ivf), 1, q + i * dim, (idx_t)st->nprobe,
                               d, probed) != 0) {
            e = faiss_failed(errstr, errstr_size, "quantizer search");
            break;
        }
        size_t n = 0;
        for (size_t j = 0; j < st->nprobe && probed[j] >= 0; j++) {
            n += faiss_IndexIVF_get_list_size(ivf, (size_t)probed[j]);
            if (v->max_codes && n >= v->max_codes)
                break;
        }
        scanned[i] = n;
    }
    omp_set_num_threads(threads);
    if (e == NOPS_NOMEM)
        nops_errf(errstr, errstr_size, "out of memory");
    nops_free(d);
    nops_free(probed);
    return e;
}
