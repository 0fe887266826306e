/*
 * pipeutil.h — a pipeline as the integration tests make it (header-only, tests only; include
 * after cmocka.h): default detection and correlation, its state and a JSONL sink in one
 * directory.
 */
#ifndef NOPS_TESTS_SUPPORT_PIPEUTIL_H
#define NOPS_TESTS_SUPPORT_PIPEUTIL_H

#include "ingest/ingest.h"

#include <stdio.h>

/*
 * A pipeline over `kp` with `pp` (and detect, correlate at their defaults), its state in `dir`
 * and a JSONL sink writing there into *sinks (destroy it after the pipeline). Made, not started
 * (a hook may be set first); a failure fails the test.
 */
static inline nops_pipeline *tu_pipeline_new(const char *dir, const nops_kafka_params *kp,
                                             const nops_pipeline_params *pp, nops_sinks **sinks)
{
    nops_detect_params dp;
    nops_detect_params_default(&dp);
    nops_correlate_params cp;
    nops_correlate_defaults(&cp);
    nops_storage_params sp;
    snprintf(sp.data_dir, sizeof sp.data_dir, "%s", dir);
    char err[512];
    *sinks = nops_sinks_new();
    assert_non_null(*sinks);
    if (nops_sinks_add_jsonl(*sinks, dir, 0, err, sizeof err) != NOPS_OK)
        fail_msg("jsonl sink: %s", err);
    nops_pipeline *p = nops_pipeline_new(kp, pp, &dp, &cp, &sp, *sinks, err, sizeof err);
    if (!p)
        fail_msg("pipeline: %s", err);
    return p;
}

/* Start `p`; a failure fails the test. */
static inline void tu_pipeline_start(nops_pipeline *p)
{
    char err[512];
    if (nops_pipeline_start(p, err, sizeof err) != NOPS_OK)
        fail_msg("start: %s", err);
}

#endif
