/*
 * calib.c — what "similar" means in one history index (reco_int.h).
 *
 * Cosines between embeddings mean different things in different histories: in a dense one the
 * nearest past run of an ordinary incident sits at 0.98, in a young one at 0.9, and a run of
 * another kind on the same service at 0.3–0.6 in both. The recommender turns a query's
 * similarities into "as close as this history's runs are to each other" (1) down to "as close
 * as two unrelated runs" (0) with two numbers measured here when a generation is loaded: the
 * median similarity of a run to its nearest other run, and the median similarity between two
 * runs. The sample is 8 blocks of consecutive ids spread over the index (an IVF index gives
 * a block back in one pass over its lists); the cost is one k = 2 search per sampled run and
 * 256² dot products — milliseconds up to 100 k runs, about half a second at 1 M (in the reload
 * thread, except for the first load).
 */
#include "recommend/reco_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BLOCKS 8

/* x held to the cosine range */
static double clamp1(double x)
{
    return x < -1 ? -1 : x > 1 ? 1 : x;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The sampled runs' vectors into x (room for NOPS_RECO_CALIB_SAMPLE) and their ids; how many. */
static nops_err sample(const nops_vindex *ix, size_t n, float *x, int64_t *ids, size_t *got,
                       char *errstr, size_t errstr_size)
{
    const size_t want = n < NOPS_RECO_CALIB_SAMPLE ? n : NOPS_RECO_CALIB_SAMPLE;
    const size_t per = (want + BLOCKS - 1) / BLOCKS;
    *got = 0;
    for (size_t b = 0; b < BLOCKS && *got < want; b++) {
        const size_t len = per < want - *got ? per : want - *got;
        size_t i0 = n * b / BLOCKS; /* blocks spread over the ids, none past the end */
        if (i0 + len > n)
            i0 = n - len;
        if (b && i0 < (size_t)ids[*got - 1] + 1)
            i0 = (size_t)ids[*got - 1] + 1; /* small index: blocks touch, none overlaps */
        if (i0 + len > n)
            break;
        nops_err e = nops_vindex_reconstruct_n(ix, (int64_t)i0, len, x + *got * NOPS_EMBED_DIM,
                                               errstr, errstr_size);
        if (e != NOPS_OK)
            return e;
        for (size_t i = 0; i < len; i++)
            ids[*got + i] = (int64_t)(i0 + i);
        *got += len;
    }
    return NOPS_OK;
}

nops_err nops__reco_calibrate(const nops_histdir *h, nops__reco_calib *c, char *errstr,
                              size_t errstr_size)
{
    memset(c, 0, sizeof *c);
    const nops_vindex *ix = nops_histdir_index(h);
    const size_t n = nops_vindex_count(ix);
    if (n < 2)
        return NOPS_OK;
    float *x = malloc((size_t)NOPS_RECO_CALIB_SAMPLE * NOPS_EMBED_DIM * sizeof *x);
    double *nn = malloc(NOPS_RECO_CALIB_SAMPLE * sizeof *nn);
    double *pair = malloc((size_t)NOPS_RECO_CALIB_SAMPLE * NOPS_RECO_CALIB_SAMPLE / 2 *
                          sizeof *pair);
    int64_t ids[NOPS_RECO_CALIB_SAMPLE];
    size_t got = 0, np = 0, nn_n = 0;
    nops_err e = x && nn && pair ? sample(ix, n, x, ids, &got, errstr, errstr_size) : NOPS_NOMEM;
    for (size_t i = 0; e == NOPS_OK && i < got; i++) {
        float s[2];
        int64_t id[2];
        e = nops_vindex_search(ix, x + i * NOPS_EMBED_DIM, 1, 2, s, id, errstr, errstr_size);
        const int j = id[0] == ids[i] ? 1 : 0; /* its nearest other run */
        if (e == NOPS_OK && id[j] >= 0 && isfinite(s[j])) /* an index is only numbers */
            nn[nn_n++] = clamp1(s[j]);
        for (size_t k = i + 1; e == NOPS_OK && k < got; k++) {
            double d = 0;
            for (int t = 0; t < NOPS_EMBED_DIM; t++)
                d += (double)x[i * NOPS_EMBED_DIM + t] * x[k * NOPS_EMBED_DIM + t];
            if (isfinite(d))
                pair[np++] = clamp1(d);
        }
    }
    if (e == NOPS_OK && nn_n && np) {
        c->ok = true;
        c->samples = (int)got;
        c->nn_median = median(nn, nn_n); /* sorts nn */
        c->nn_low = nn[nn_n / 10];
        c->background = median(pair, np);
    }
    if (e == NOPS_NOMEM)
        nops_errf(errstr, errstr_size, "out of memory");
    free(x);
    free(nn);
    free(pair);
    return e;
}
