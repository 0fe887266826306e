/*
 * vindex.c — the ANN index of vector.h on FAISS's official C API (inner product = cosine for
 * the L2-normalised embeddings).
 *
 * Types: FLAT "Flat" (exact); IVF "IVF<nlist>,Flat" with nlist ≈ 4·√n (≥ 39 training points
 * per list, 16..16384), trained on up to 64 points per list, searched with nprobe = 16 (NOPS_INDEX_IVF_NPROBE, chosen by the sweep of bench recommend); HNSW
 * "HNSW32" with efSearch 1024 (clustered histories need it for recall ≥ 0.95), on the
 * L2 metric (equivalent ranking for unit vectors; similarities converted back). AUTO is
 * FLAT below NOPS_INDEX_AUTO_FLAT_MAX vectors, IVF above (it builds in seconds where HNSW takes
 * minutes on two cores, see bench/RESULTS.md). Search parameters are fixed when the index is
 * built or loaded, never per call, so concurrent searches share nothing mutable; OpenMP is held
 * to one thread per search (omp_set_num_threads(1) in the calling thread).
 */
#include "vector/vector.h"

#include <faiss/c_api/AutoTune_c.h>
#include <faiss/c_api/IndexIVF_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#define HNSW_EF_SEARCH 1024

struct nops_vindex {
    FaissIndex *ix;
    nops_index_type type;
    bool l2; /* built with the L2 metric (HNSW): similarities are 1 − d²/2 */
};

static const char *type_names[] = {"auto", "flat", "ivf", "hnsw"};

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

static nops_err faiss_failed(char *errstr, size_t errstr_size, const char *what)
{
    const char *e = faiss_get_last_error();
    nops_errf(errstr, errstr_size, "FAISS %s: %.300s", what, e ? e : "failed");
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

/* Search-time parameters, set once before the index is shared. */
static nops_err tune(nops_vindex *v, char *errstr, size_t errstr_size)
{
    if (v->type == NOPS_INDEX_IVF) {
        FaissIndexIVF *ivf = faiss_IndexIVF_cast(v->ix);
        if (ivf)
            faiss_IndexIVF_set_nprobe(ivf, NOPS_INDEX_IVF_NPROBE);
    } else if (v->type == NOPS_INDEX_HNSW) {
        FaissParameterSpace *ps = NULL;
        if (faiss_ParameterSpace_new(&ps) ||
            faiss_ParameterSpace_set_index_parameter(ps, v->ix, "efSearch", HNSW_EF_SEARCH)) {
            faiss_ParameterSpace_free(ps);
            return faiss_failed(errstr, errstr_size, "efSearch");
        }
        faiss_ParameterSpace_free(ps);
    }
    return NOPS_OK;
}

nops_vindex *nops_vindex_new(int dim, nops_index_type type, size_t expected_n, char *errstr,
                             size_t errstr_size)
{
    if (dim <= 0 || (unsigned)type > NOPS_INDEX_HNSW) {
        nops_errf(errstr, errstr_size, "bad index settings (dimension %d)", dim);
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
    /* HNSW's graph is built for a metric: on unit vectors L2 ranks exactly like the cosine, and
     * gives it far better recall than inner product as FAISS builds it) */
    v->l2 = type == NOPS_INDEX_HNSW;
    if (faiss_index_factory(&v->ix, dim, desc, v->l2 ? METRIC_L2 : METRIC_INNER_PRODUCT) != 0 ||
        tune(v, errstr, errstr_size) != NOPS_OK) {
        faiss_failed(errstr, errstr_size, desc);
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
    /* 64 points per list are plenty for k-means; an evenly strided sample of the data */
    size_t want = lists * 64 < n ? lists * 64 : n, stride = n / want;
    const int d = faiss_Index_d(v->ix);
    float *sample = (float *)x;
    if (stride > 1) {
        if (!(sample = nops_malloc(want * (size_t)d * sizeof *sample))) {
            nops_errf(errstr, errstr_size, "out of memory");
            return NOPS_NOMEM;
        }
        for (size_t i = 0; i < want; i++)
            memcpy(sample + i * (size_t)d, x + i * stride * (size_t)d, (size_t)d * sizeof *x);
    }
    int rc = faiss_Index_train(v->ix, (idx_t)want, sample);
    if (sample != x)
        nops_free(sample);
    return rc ? faiss_failed(errstr, errstr_size, "train") : NOPS_OK;
}

nops_err nops_vindex_add(nops_vindex *v, const float *x, size_t n, char *errstr,
                         size_t errstr_size)
{
    if (n && faiss_Index_add(v->ix, (idx_t)n, x) != 0)
        return faiss_failed(errstr, errstr_size, "add");
    return NOPS_OK;
}

nops_err nops_vindex_search(const nops_vindex *v, const float *q, size_t nq, int k, float *sims,
                            int64_t *ids, char *errstr, size_t errstr_size)
{
    if (k <= 0) {
        nops_errf(errstr, errstr_size, "k must be positive");
        return NOPS_INVAL;
    }
    omp_set_num_threads(1); /* this thread's searches run on this thread only */
    if (faiss_Index_search(v->ix, (idx_t)nq, q, k, sims, (idx_t *)ids) != 0)
        return faiss_failed(errstr, errstr_size, "search");
    if (v->l2)
        for (size_t i = 0; i < nq * (size_t)k; i++)
            sims[i] = ids[i] >= 0 ? 1.0f - sims[i] / 2 : -1.0f;
    return NOPS_OK;
}

void nops_vindex_set_nprobe(nops_vindex *v, int nprobe)
{
    FaissIndexIVF *ivf = faiss_IndexIVF_cast(v->ix);
    if (ivf && nprobe > 0)
        faiss_IndexIVF_set_nprobe(ivf, (size_t)nprobe);
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
    if (faiss_write_index_fname(v->ix, path) != 0) {
        faiss_failed(errstr, errstr_size, "write");
        return NOPS_IO;
    }
    return NOPS_OK;
}

nops_vindex *nops_vindex_load(const char *path, int dim, char *errstr, size_t errstr_size)
{
    nops_vindex *v = nops_calloc(1, sizeof *v);
    if (!v) {
        nops_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    if (faiss_read_index_fname(path, 0, &v->ix) != 0 || !v->ix) {
        const char *e = faiss_get_last_error();
        nops_errf(errstr, errstr_size, "%s is not a readable FAISS index: %.200s", path,
                  e ? e : "unknown error");
        nops_vindex_destroy(v);
        return NULL;
    }
    if (faiss_Index_d(v->ix) != dim) {
        nops_errf(errstr, errstr_size, "%s has dimension %d, expected %d", path,
                  faiss_Index_d(v->ix), dim);
        nops_vindex_destroy(v);
        return NULL;
    }
    v->l2 = faiss_Index_metric_type(v->ix) == METRIC_L2;
    /* the type back from the index itself: IVF casts; only HNSW takes an efSearch */
    v->type = faiss_IndexIVF_cast(v->ix) ? NOPS_INDEX_IVF : NOPS_INDEX_HNSW;
    char ignored[64];
    if (v->type == NOPS_INDEX_HNSW && tune(v, ignored, sizeof ignored) != NOPS_OK)
        v->type = NOPS_INDEX_FLAT;
    if (tune(v, errstr, errstr_size) != NOPS_OK) {
        nops_vindex_destroy(v);
        return NULL;
    }
    return v;
}
