/*
 * recoutil.h — what the recommendation tests share (header-only, tests only; include after
 * cmocka.h): a history index of generated runs (synth/history.c) written the way `neuralops
 * vectorize` writes one, and a recommender that follows it.
 */
#ifndef NOPS_TESTS_RECOUTIL_H
#define NOPS_TESTS_RECOUTIL_H

#include "recommend/recommend.h"
#include "synth/history.h"
#include "vector/vector.h"

#include <stdio.h>

/* Write `n` generated runs (seed) as a new generation of the index directory `dir`. */
static inline void tu_history_index(const char *dir, size_t n, uint64_t seed)
{
    char err[512];
    nops_histdir_writer *w = nops_histdir_begin(dir, NOPS_INDEX_AUTO, err, sizeof err);
    assert_non_null(w);
    history_gen g;
    history_init(&g, seed);
    nops_redactor *red = nops_redactor_new("test-key", err, sizeof err);
    assert_non_null(red);
    for (size_t i = 0; i < n; i++) {
        json_t *run = history_run(&g);
        float v[NOPS_EMBED_DIM];
        nops_run_meta m;
        if (nops_vector_prepare_run(red, run, v, &m, NULL, err, sizeof err) != NOPS_OK)
            fail_msg("run %zu: %s", i, err); /* as vectorize takes it */
        assert_int_equal(nops_histdir_add(w, v, &m), NOPS_OK);
        json_decref(run);
    }
    nops_redactor_destroy(red);
    if (nops_histdir_commit(w, "test", 0, err, sizeof err) != NOPS_OK)
        fail_msg("commit: %s", err);
}

/* A recommender on `dir` (100 neighbours, similarity ≥ 0.5, prior weight 2), checking for a
 * new generation every `reload_s`; fails the test when it cannot open. */
static inline nops_recommender *tu_reco_open(const char *dir, int64_t reload_s)
{
    nops_reco_params p = {.neighbours = 100, .min_similarity = 0.5, .prior_weight = 2,
                          .reload_s = reload_s};
    snprintf(p.index_dir, sizeof p.index_dir, "%s", dir);
    char err[512];
    nops_recommender *r = nops_recommender_new(&p, err, sizeof err);
    if (!r)
        fail_msg("recommender: %s", err);
    return r;
}

#endif
