/*
 * recoeval.h — the recommendation-quality yardstick (synth/, for tests/recommend and
 * `neuralops-bench recommend`): a generated remediation history whose right answers are known,
 * the held-out incidents that probe it, and an evaluator that puts the real recommender
 * (vectorize pipeline → index directory → nops_recommend) and a reference baseline through it.
 *
 * The history: NOPS_SYNTH_RECO_KINDS incident kinds, each with its metric, label shape,
 * direction, two ways of describing it in words, and two or three playbooks used at known
 * frequencies and succeeding at known true rates. In the "trap" kinds the most used playbook is
 * a poor one and a rarer one is better. A regime says how many runs each kind has and which
 * share of runs used an unrelated playbook (another kind's, succeeding at 0.3): the mistakes
 * real histories hold.
 *
 * The probes, all generated after the history from their own seed:
 *   - known: incidents of the history's kinds described as the history describes them;
 *   - fresh words: incidents of the history's kinds whose summary uses only words that appear
 *     nowhere in the history (nops_synth_reco_fresh_words_unseen checks that claim);
 *   - unseen kinds: NOPS_SYNTH_RECO_UNSEEN incidents kinds that are not in the history at all
 *     (other metrics, other words; the same services and regions).
 * Right answer of a probe of a known kind: the kind's playbook with the highest true rate.
 *
 * The baseline ("exact kNN"): the same embeddings, exact cosine search, the k nearest runs
 * (unweighted), each playbook's Laplace-smoothed success rate (s + 1)/(n + 2) among them, the
 * highest wins; its confidence is the mean similarity of the k neighbours. A plain method
 * written here in a few dozen lines, the peer the engine is measured against.
 *
 * Each call builds its own index in a directory of its own under `workdir` and removes it;
 * calls share nothing.
 */
#ifndef NOPS_SYNTH_RECOEVAL_H
#define NOPS_SYNTH_RECOEVAL_H

#include "recommend/recommend.h"

#include <jansson.h>

#define NOPS_SYNTH_RECO_KINDS 14 /**< incident kinds in the history */
#define NOPS_SYNTH_RECO_UNSEEN 4 /**< kinds only the probes have */
#define NOPS_SYNTH_RECO_BASE_K 20 /**< the baseline's neighbours */

/** How much history, and how clean. */
typedef struct nops_synth_reco_regime {
    int runs_per_kind; /**< runs of each kind in the history (≥ 1) */
    double noise;      /**< share of runs that used an unrelated playbook, [0, 1) */
    uint64_t seed;     /**< generator seed of the history (0 = a fixed default) */
    int probes;        /**< probes of each sort per kind (0 = 40) */
    double suggest;    /**< a confidence threshold (loop.suggest_confidence) whose reach is
                            counted: auto_known, auto_unseen (0 = none counted) */
    int histories;     /**< independent histories (seeds seed, seed+1, …) whose probes are
                            pooled (0 = 1): with 20 runs a kind one sample of the history
                            decides a lot, so the small regime is judged over several */
} nops_synth_reco_regime;

/** The figures of one method over the probes. */
typedef struct nops_synth_reco_tally {
    double top1;              /**< known-kind probes whose top playbook is the best one */
    double top1_trap;         /**< the same over the trap kinds only */
    double top1_fresh;        /**< fresh-words probes whose top playbook is the best one */
    double conf_known;        /**< median top-1 confidence, known-kind probes (0 = no answer) */
    double conf_unseen;       /**< median top-1 confidence, unseen-kind probes */
    double conf_ratio;        /**< conf_unseen / conf_known (0 when conf_known is 0) */
    double conf_fresh;        /**< median top-1 confidence, fresh-words probes */
    double auto_known;        /**< share of known-kind probes at or above regime.suggest */
    double auto_unseen;       /**< share of unseen-kind probes at or above regime.suggest */
    double conf_unseen_max;   /**< the highest top-1 confidence of an unseen-kind probe */
} nops_synth_reco_tally;

/** The figures of one regime: the engine beside the baseline. */
typedef struct nops_synth_reco_figures {
    size_t runs;                 /**< runs in each history index */
    size_t probes_known;         /**< known-kind probes (as many fresh-words probes) */
    size_t probes_trap;          /**< of them, of trap kinds */
    size_t probes_unseen;        /**< unseen-kind probes */
    double ceiling_top1;         /**< share of known kinds (over the histories) whose best
                                      playbook is also the best one in their history's own
                                      runs (Laplace-smoothed rates, the kind known): what any
                                      method can reach from that history */
    double ceiling_trap;         /**< the same over the trap kinds */
    nops_synth_reco_tally engine;   /**< nops_recommend */
    nops_synth_reco_tally baseline; /**< exact kNN with smoothed success rates */
} nops_synth_reco_figures;

/** Kind k's name (0..KINDS+UNSEEN−1; the unseen kinds come last). */
const char *nops_synth_reco_kind(int k);
/** Whether kind k's most used playbook is not its best one. */
bool nops_synth_reco_trap(int k);
/** Kind k's playbook with the highest true success rate. */
const char *nops_synth_reco_best(int k);

/**
 * One run of kind k (0..KINDS−1) as a workflow_runs JSON object (new reference; NULL without
 * memory): with probability `noise` its playbook is another kind's, succeeding at 0.3; else one
 * of k's, drawn by their frequencies, succeeding at its true rate. *rng is the generator state
 * (any non-zero start).
 */
json_t *nops_synth_reco_run(uint64_t *rng, int k, double noise, uint64_t id);
/**
 * One incident of kind k (0..KINDS+UNSEEN−1) in the Incident shape (labels, summary, metrics,
 * full signals; new reference or NULL). `fresh`: its summary uses the kind's fresh words.
 */
json_t *nops_synth_reco_incident(uint64_t *rng, int k, bool fresh);
/**
 * Whether the words (3+ letters, as the embedder reads them) of every fresh summary and of
 * every unseen kind's summary are absent from every summary the history uses; when not, the
 * first such word into `word` (cap bytes) and false.
 */
bool nops_synth_reco_fresh_words_unseen(char *word, size_t cap);

/**
 * Generate the regime's history (each of its `histories`), write it through the vectorize
 * pipeline into a new index directory under `workdir`, open a recommender with `rp` (NULL: the
 * [recommend] defaults; index_dir is set here), and score it and the baseline on the probes,
 * pooled over the histories. The directories are removed afterwards. NOPS_INVAL for a bad regime, NOPS_IO / NOPS_NOMEM with a sentence.
 */
nops_err nops_synth_reco_eval(const nops_synth_reco_regime *rg, const nops_reco_params *rp,
                              const char *workdir, nops_synth_reco_figures *fig, char *errstr,
                              size_t errstr_size);

#endif
