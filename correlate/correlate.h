/*
 * correlate.h — signals → incidents: the correlator that groups the signals of all workers into
 * incidents (by shared grouping labels and by Pearson r of the series' recent windows), and its
 * [correlate] settings.
 *
 * Thread contract. Unlike a nops_detector (one per worker, lock-free, never shared), there is
 * one correlator per pipeline, shared by every worker: each call takes its mutex, so any thread
 * may call any function at any time. A call does bounded work (one matrix-vector product over
 * the recent signals, through OpenBLAS's cblas_sgemv) and is made once per signal, not per
 * point, so the lock stays off the detectors' hot path. OpenBLAS may start its own threads.
 *
 * Ownership: nops_correlate_new returns a correlator the caller destroys (NULL is fine);
 * signals and windows passed in are borrowed for the call; incidents are copied out into the
 * caller's memory.
 */
#ifndef NOPS_CORRELATE_H
#define NOPS_CORRELATE_H

#include "core/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Settings of the [correlate] config section. */
typedef struct nops_correlate_params {
    int64_t window_s;       /**< signals this close in time may join one incident */
    double min_r;           /**< |Pearson r| of recent windows that joins two series */
    char group_labels[128]; /**< comma-separated labels whose shared value joins signals */
    int64_t resolve_s;      /**< an incident resolves after all its series were normal this long */
} nops_correlate_params;

extern const nops_cfg_section nops_correlate_cfg_section;

typedef struct nops_correlator nops_correlator;

/** A correlator for windows of `window` points (detect.window). */
nops_correlator *nops_correlate_new(const nops_correlate_params *p, uint32_t window,
                                    char *errstr, size_t errstr_size);
void nops_correlate_destroy(nops_correlator *c);
/**
 * Place a signal (with its series' recent window, oldest first; may be NULL) into an incident;
 * the incident as it now stands is copied to *out, *opened tells whether it is new.
 * NOPS_FULL when too many incidents are open.
 */
nops_err nops_correlate_signal(nops_correlator *c, const nops_signal *sig, const float *window,
                               uint32_t n, nops_incident *out, bool *opened);
/** A series left its anomalous state at ts_ns. */
void nops_correlate_cleared(nops_correlator *c, uint64_t series_id, int64_t ts_ns);
/** Resolve incidents whose series were all normal for resolve_s before now_ns; copies them. */
size_t nops_correlate_tick(nops_correlator *c, int64_t now_ns, nops_incident *out, size_t max);
/** Open incidents now, opened and resolved since creation. */
void nops_correlate_counts(nops_correlator *c, uint64_t *open, uint64_t *opened,
                           uint64_t *resolved);

#endif /* NOPS_CORRELATE_H */
