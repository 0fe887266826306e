/*
 * recommend.h — which playbooks fixed incidents like this one before (the method and
 * the formula: docs/recommendation.md).
 *
 * A recommender follows an index directory written by `neuralops vectorize`: it opens
 * DIR/current and a background thread reloads it when a rebuild swaps the link, without
 * blocking queries (a query keeps the generation it started with until it ends).
 *
 * Ownership: the caller owns the recommender and the JSON it returns. Thread-safe.
 */
#ifndef NOPS_RECOMMEND_H
#define NOPS_RECOMMEND_H

#include "core/core.h"
#include "vector/vector.h"

#include <jansson.h>

/** [recommend] settings. */
typedef struct nops_reco_params {
    char index_dir[512];    /**< index directory ("" = no recommendations) */
    int64_t neighbours;     /**< k nearest past runs looked at */
    double min_similarity;  /**< neighbours below this cosine are not evidence */
    double prior_weight;    /**< pseudo-runs of the success-rate prior (smoothing) */
    int64_t reload_s;       /**< how often the directory is checked for a new generation */
} nops_reco_params;

extern const nops_cfg_section nops_reco_cfg_section;

typedef struct nops_recommender nops_recommender;

/**
 * Open params->index_dir. A missing directory is not an error (nothing to recommend from until
 * vectorize writes one; the reload thread picks it up); a corrupt one is (NULL + sentence).
 */
nops_recommender *nops_recommender_new(const nops_reco_params *params, char *errstr,
                                       size_t errstr_size);
void nops_recommender_destroy(nops_recommender *r);

/**
 * Rank playbooks for `incident` (a stored incident with full signal objects, an inline one, or
 * labels/summary/metrics alone): a JSON array of at most top_n
 * {"playbook_id","score","confidence","justification","evidence":[{"run_id","similarity",
 * "status"}]}. With no similar past run the array holds one entry with playbook_id null,
 * confidence 0 and a justification that says so. NOPS_PARSE when the incident has nothing to
 * embed; NOPS_NOTFOUND when no index is loaded.
 */
nops_err nops_recommend(nops_recommender *r, const json_t *incident, int top_n, json_t **out,
                        char *errstr, size_t errstr_size);

/**
 * Rank playbooks for an incident record as the pipeline holds it (its common labels, metric
 * names, summary and root-cause hint are embedded; no signal objects) and write at most
 * min(top_n, cap) of them, best first, to out[] as the recommendations an incident carries
 * (playbook id, score, confidence, and evidence = how many similar past runs used that
 * playbook); *n says how many. top_n ≤ 0 means 3. With no similar past run, NOPS_OK and *n = 0
 * (nops_recommend's null-playbook answer). NOPS_PARSE when the record holds nothing to embed,
 * NOPS_NOTFOUND when no index is loaded, NOPS_NOMEM; *n = 0 then, with a sentence in errstr.
 * A playbook id longer than the 63 bytes a nops_incident_reco holds is cut.
 * Thread-safe; allocates (the embedder's query), searches the index: not for hot loops.
 */
nops_err nops_recommend_incident(nops_recommender *r, const nops_incident *inc, int top_n,
                                 nops_incident_reco *out, size_t cap, size_t *n, char *errstr,
                                 size_t errstr_size);

/** Runs in the loaded index and its generation (0, 0 when none). */
void nops_recommender_info(nops_recommender *r, size_t *runs, uint64_t *generation);

/**
 * The ranking step of nops_recommend alone (internal; tests feed it extreme similarities):
 * the k neighbours ids[]/sims[] of one query against `h` → the JSON array nops_recommend
 * returns (NULL when out of memory). ids and sims are changed in place: a non-finite
 * similarity drops its neighbour, the others are clamped to [-1, 1]. Whatever the input,
 * "score" and "confidence" are in [0, 1] and every evidence "similarity" in [-1, 1].
 */
json_t *nops__reco_rank(const nops_reco_params *p, const nops_histdir *h, int64_t *ids,
                        float *sims, int k, int top_n);

#endif /* NOPS_RECOMMEND_H */
