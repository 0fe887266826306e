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
    int64_t learn_interval_s; /**< serve: new workflow runs appended this often (0 = off) */
    int64_t learn_min_runs; /**< usable runs needed before the learner builds a first index */
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

/** nops_recommend, also saying which index generation answered (*generation; 0 when none). */
nops_err nops_recommend_at(nops_recommender *r, const json_t *incident, int top_n, json_t **out,
                           uint64_t *generation, char *errstr, size_t errstr_size);
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

/* ---- the learning loop ---------------------------------------------------------------- */
/*
 * A learner feeds the index the recommender follows with the workflow runs the orchestrator
 * writes (the history JSONL and/or PostgreSQL table workflow_runs): every interval it runs the
 * pipeline of `neuralops vectorize --append` (vector.h nops_vectorize_*) over the rows it has
 * not seen yet and commits a new generation when any run is new; the recommender's reload
 * thread swaps it in. Where DIR has no generation yet, the first cycle that finds at least
 * min_runs usable runs builds one (before that each cycle says why not, in last_error).
 *
 * Ownership: the learner copies its params. Thread-safety: nops_learner_run_once and
 * nops_learner_get_stats may be called from any thread; cycles never overlap (one lock). Only
 * one writer per index directory: do not run `neuralops vectorize` on DIR while a learner
 * runs on it.
 */

/** What a learner reads and writes. */
typedef struct nops_learn_params {
    char index_dir[512];     /**< the index directory (recommend.index_dir); required */
    char history_jsonl[512]; /**< workflow runs as JSON lines ("" = none) */
    char pg_dsn[512];        /**< libpq DSN of the database holding workflow_runs ("" = none) */
    char actor_key[256];     /**< vector.actor_key (the redactor's key); required */
    int64_t interval_s;      /**< seconds between cycles of the thread (0 = no thread) */
    int64_t min_runs;        /**< usable runs needed to build a first generation (>= 1) */
} nops_learn_params;

/** A learner's counters (for /metrics and tests). */
typedef struct nops_learn_stats {
    uint64_t cycles;        /**< cycles run (thread and run_once) */
    uint64_t failed;        /**< cycles that ended in an error */
    uint64_t appended;      /**< runs added to the index in all */
    uint64_t skipped;       /**< rows that could not be used */
    uint64_t generation;    /**< generation the last commit wrote (0 = none yet) */
    int64_t last_ok_ns;     /**< wall clock of the last cycle without error (0 = never) */
    char last_error[256];   /**< why the last cycle failed or built nothing ("" = it did not) */
} nops_learn_stats;

typedef struct nops_learner nops_learner;

/**
 * A learner over `params` (copied). With params->interval_s > 0 a thread runs a first cycle at
 * once and then one every interval_s seconds until nops_learner_destroy. NULL with a sentence
 * when a setting is missing or the thread cannot start.
 */
nops_learner *nops_learner_new(const nops_learn_params *params, char *errstr,
                               size_t errstr_size);
/** Stop the thread (waits for a cycle in progress) and free; NULL is fine. */
void nops_learner_destroy(nops_learner *l);
/**
 * One cycle now: read the rows not seen yet, append the new runs to DIR/current (or build the
 * first generation), commit. *appended (may be NULL) gets the runs committed (0: nothing new,
 * or too few for a first index — then errstr says why and NOPS_OK is returned). An error
 * (a source that cannot be read, a commit that fails) returns NOPS_IO/NOPS_NOMEM with the
 * sentence; what was not committed is read again next cycle.
 */
nops_err nops_learner_run_once(nops_learner *l, size_t *appended, char *errstr,
                               size_t errstr_size);
/** A copy of the counters. */
void nops_learner_get_stats(nops_learner *l, nops_learn_stats *out);

#endif /* NOPS_RECOMMEND_H */
