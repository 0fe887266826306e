/*
 * reco_int.h — recommend/ internals shared by recommend.c and calib.c (not for other modules).
 */
#ifndef NOPS_RECO_INT_H
#define NOPS_RECO_INT_H

#include "recommend/recommend.h"

#define NOPS_RECO_CALIB_SAMPLE 256 /* indexed runs a calibration looks at */

/*
 * How similar the runs of one index generation are to each other, measured when it is loaded:
 * what "close" means in this history. A dense history (hundreds of runs of each kind) has
 * near-duplicates, a young one does not; a fixed cut-off cannot say both.
 */
typedef struct nops__reco_calib {
    bool ok;           /* measured (the index holds at least 2 runs) */
    double nn_median;  /* median cosine of a sampled run to its nearest other run */
    double nn_low;     /* its 10th percentile: 90 % of runs have a neighbour this close */
    double background; /* median cosine between two sampled runs (mostly unrelated ones) */
    int samples;       /* runs sampled */
} nops__reco_calib;

/*
 * Measure `c` on h: up to NOPS_RECO_CALIB_SAMPLE runs spread over the index (8 blocks of
 * consecutive ids), each searched for its nearest other run, and every pair of them compared.
 * With fewer than 2 runs c->ok is false and NOPS_OK is returned. NOPS_NOMEM, or the index's
 * error with a sentence.
 */
nops_err nops__reco_calibrate(const nops_histdir *h, nops__reco_calib *c, char *errstr,
                              size_t errstr_size);

/**
 * The ranking step of nops_recommend alone (tests feed it extreme similarities): the k
 * neighbours ids[]/sims[] of one query against `h`, read with calibration `c` (NULL: none) →
 * the JSON array nops_recommend returns (NULL when out of memory). ids and sims are changed in
 * place: a non-finite similarity drops its neighbour, the others are clamped to [-1, 1].
 * Whatever the input and the calibration, "score" and "confidence" are in [0, 1] and every
 * evidence "similarity" in [-1, 1].
 */
json_t *nops__reco_rank(const nops_reco_params *p, const nops_histdir *h,
                        const nops__reco_calib *c, int64_t *ids, float *sims, int k, int top_n);

#endif
