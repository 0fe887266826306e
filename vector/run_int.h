/*
 * run_int.h — what the two readers of a workflow run share (internal to vector/): the jansson
 * tree path (nops_vector_prepare_run, nops_embed_json) and the tokenizer path
 * (nops_vector_prepare_text, runtok.c). Both feed the embedder's feature accumulator in the
 * same order and pass the same checks, so their vectors and metadata are equal bit for bit
 * (tests/vector/test_runtok.c holds them equal).
 */
#ifndef NOPS_VECTOR_RUN_INT_H
#define NOPS_VECTOR_RUN_INT_H

#include "vector/vector.h"

/** The embedder's accumulator over one run or incident (embed.c). Strings handed to it must
 *  stay valid (NUL-terminated) until nops__feats_end. */
typedef struct nops__feats {
    float *v;                         /* the output vector being summed into */
    int signals, metrics, ewma, above; /* counts for the numeric features */
    double max_score, sum_score;      /* over the signals' scores */
    float per_signal;                 /* weight of one signal's labels, method, direction */
    const char *seen_metrics[64];     /* distinct metric names so far (the first 64) */
} nops__feats;

/** Start: zero `out`; `n_sig` is the length of the signals array (non-objects included). */
void nops__feats_begin(nops__feats *f, float out[NOPS_EMBED_DIM], size_t n_sig);
/** A metric name (NULL or "" ignored; repeats counted once). */
void nops__feats_metric(nops__feats *f, const char *m);
/** One label pair (`val` NULL for a value that is not a string: ignored; "__name__" too). */
void nops__feats_label(nops__feats *f, const char *key, const char *val, float scale);
/** A signal object begins: counted, its metric added. Its labels follow (scale per_signal). */
void nops__feats_signal(nops__feats *f, const char *metric);
/** The rest of the signal object: its method, hint (redacted) and score (0 when absent). */
void nops__feats_signal_end(nops__feats *f, const char *method, const char *hint, double score);
/** Words of free text (NULL ignored). */
void nops__feats_words(nops__feats *f, const char *text);
/** Finish: the numeric features, then L2-normalise. NOPS_PARSE when nothing was embedded
 *  (`has_labels`: the labels object has at least one member; `summary` the summary used). */
nops_err nops__feats_end(nops__feats *f, bool has_labels, const char *summary);

/**
 * The checks of a run before redaction (histdir.c), as nops_vector_prepare_run makes them and
 * in its order: id, playbook_id, status, the playbook id's shape, finished_at → meta, and that
 * the playbook id holds nothing the redactor finds. Any argument may be NULL (not a string).
 * NOPS_PARSE with the reason in `why`.
 */
nops_err nops__run_check(const nops_redactor *r, const char *id, const char *pb,
                         const char *status, const char *fin, nops_run_meta *meta, char *why,
                         size_t why_size);
/** After the embedding: the run id as stored (plain or keyed hash), the playbook id, status. */
void nops__run_finish(const nops_redactor *r, const char *id, const char *pb,
                      const char *status, nops_run_meta *meta, nops_redact_stats *st);

#endif /* NOPS_VECTOR_RUN_INT_H */
