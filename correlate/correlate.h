/*
 * correlate.h — signals → incidents: the correlator that groups the signals of all workers into
 * incidents, host first, and its [correlate] settings.
 *
 * Grouping (docs/incidents.md has the long form):
 *  - Host first. A signal joins the open incident of its host (the first of `host_labels` the
 *    series carries; a series without one is a host of its own) when that incident is still
 *    live at the signal's time: a member series is still anomalous, or its last signal is at
 *    most window_s before. Several metrics of one host therefore make one incident.
 *  - Service-wide only when hosts move together. A signal of a host with no live incident joins
 *    the live incident of another host of the same service (the first of `service_labels`)
 *    when its window, as captured at detection time, correlates (|Pearson r| ≥ min_r) with the
 *    window of a signal of the same metric in that incident within window_s. A host whose only
 *    live incident is `info` (a weak blip) may join its service this way too. The incident then spans hosts.
 *    Two hosts of different services, or of one service whose windows do not correlate, stay
 *    apart however close in time. A straggler — a host with no live incident signalling the
 *    metric of a live service-wide incident of its service within window_s, its window not of
 *    the service's shape — opens an incident of its own (a host with a problem of its own
 *    looks the same at its first signal), named in its summary as a straggler of the
 *    service-wide one and held at info while it holds one series: not a page.
 *  - Merging. A signal whose window correlates with members of several live incidents of its
 *    service and metric bridges them — one event that split while it began — and the incident
 *    it joins takes the others in (not one holding several series of one host: a problem of
 *    its own). A merged incident's last record is resolved and names the one it went into.
 *  - Identity. An incident's id is a hash of its opening host and its first signal's id (itself
 *    a hash of series and time), so the same data opens the same ids whatever the batching or
 *    the number of instances; a signal id already placed is not counted twice (a replay).
 *    nops_correlate_save/load carry a partition's open incidents (and the resolved ones kept
 *    for reopening) across a restart or a rebalance, with that partition's detector snapshot.
 *  - Reopening. A resolved one-host incident is kept reopen_s of data time after it became
 *    due to resolve; a signal of its host within that time reopens it (same id, status open,
 *    *opened false: an update for the sinks) instead of opening a new one — a persistent shift
 *    that signalled at its start and again when it ended, after its incident resolved, stays
 *    one incident. A live incident of the host wins; a service-wide incident is not reopened.
 *    Kept incidents are not counted open, and give their slot to a new open one when all are
 *    used (the one due first goes).
 *
 * Severity (never lowered while the incident is open, nor across a reopen; best = the strongest signal's score):
 *  - critical: 3+ hosts; or 2+ hosts with best ≥ strong_score; or 3+ series with best ≥
 *    strong_score; or 2+ series whose signals span critical_after_s or more.
 *  - warning: 2+ series (one host, several metrics); or best ≥ strong_score; or signals of one
 *    series spanning warning_after_s or more.
 *  - info: the rest — a single series whose signals are weaker than strong_score and short.
 *    An info incident is recorded in every sink but is not a page: alerting and the policy gate
 *    act on warning and critical (`incident.severity`).
 *
 * Thread contract. One correlator per pipeline, shared by every worker: each call takes its
 * mutex, so any thread may call any function at any time. A call does bounded work (a scan of
 * the open incidents and one matrix-vector product over the recent signals, cblas_sgemv) once
 * per signal, not per point, so the lock stays off the detectors' hot path. Each
 * nops_correlate_new sets the process's OpenBLAS to one thread (openblas_set_num_threads):
 * OpenBLAS's threaded pool hangs when two application threads enter it at once (correlate.c).
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
    int64_t window_s;          /**< signals this close in time may join one incident */
    double min_r;              /**< |Pearson r| of windows that joins hosts of one service */
    char host_labels[128];     /**< comma-separated labels naming the host (first present wins) */
    char service_labels[128];  /**< comma-separated labels naming the service */
    int64_t resolve_s;         /**< an incident resolves after all its series were normal this long */
    int64_t reopen_s;          /**< a resolved one-host incident reopens on its host's signal this long */
    double strong_score;       /**< a signal at least this strong makes an incident warning */
    int64_t warning_after_s;   /**< one series signalling this long makes it warning */
    int64_t critical_after_s;  /**< several series signalling this long make it critical */
    char service_topic[256];   /**< topic of the service stage (ingest/svcstage.c); "" none
                                    (the engine fills "<sinks.kafka_topic>.service" when a Kafka
                                    signals topic is set), "off" never */
    bool service_topic_derived; /**< not a setting: the engine derived service_topic, so a topic
                                    the cluster lacks means in-process (a warning), not a
                                    refusal to start */
} nops_correlate_params;

extern const nops_cfg_section nops_correlate_cfg_section;

/** Fill *p with the defaults of the [correlate] table (tests and embedders). */
void nops_correlate_defaults(nops_correlate_params *p);

typedef struct nops_correlator nops_correlator;

/** A correlator for windows of `window` points (detect.window). */
nops_correlator *nops_correlate_new(const nops_correlate_params *p, uint32_t window,
                                    char *errstr, size_t errstr_size);
void nops_correlate_destroy(nops_correlator *c);
/**
 * Place a signal (with its series' window as captured when it was detected, oldest first; may
 * be NULL) from partition `part` (-1: none) into an incident; the incident as it now stands is
 * copied to *out, *opened tells whether it is new (it then belongs to `part`; a reopened one
 * is not new). A signal id already placed in an incident still held (open, or resolved and
 * kept for reopening) changes nothing (a replay): *out is that incident as it stands, *opened
 * false. NOPS_FULL when too many incidents are open.
 */
nops_err nops_correlate_signal(nops_correlator *c, const nops_signal *sig, int32_t part,
                               const float *window, uint32_t n, nops_incident *out, bool *opened);
/**
 * nops_correlate_signal with what happened to the incident as bits of core.h's NOPS_INC_*
 * in *events: OPENED for a new one; UPDATED (with NEW_SERIES when the signal's series is new
 * to it, SEVERITY_UP when its severity rose) when the signal joined one, or reopened it; 0 for
 * a replayed signal (nothing changed).
 */
nops_err nops_correlate_place(nops_correlator *c, const nops_signal *sig, int32_t part,
                              const float *window, uint32_t n, nops_incident *out,
                              unsigned *events);
/**
 * Keep the recommendations of `inc` (recos, n_recos, recommended_ns; nothing else) on the
 * incident the correlator holds with inc->id, so its later records (updates, resolution) and
 * its partition's snapshot carry them. NOPS_NOTFOUND when no incident with that id is held
 * (e.g. resolved and forgotten).
 */
nops_err nops_correlate_attach(nops_correlator *c, const nops_incident *inc);
/** A series left its anomalous state at ts_ns. */
void nops_correlate_cleared(nops_correlator *c, uint64_t series_id, int64_t ts_ns);
/** Resolve incidents whose series were all normal for resolve_s before now_ns; copies them,
 *  and the last record (resolved, "merged into <id>") of incidents merged since the last tick.
 *  Forgets (no record) resolved incidents kept for reopening once reopen_s has passed. */
size_t nops_correlate_tick(nops_correlator *c, int64_t now_ns, nops_incident *out, size_t max);
/**
 * The same with time per partition: an incident of partition p is judged at
 * min(now_ns, part_now[p]) (p < n_parts; 0 when nothing of p was seen yet), so partitions
 * consumed at different paces (a backlog, a replay) do not resolve each other's incidents early.
 */
size_t nops_correlate_tick_parts(nops_correlator *c, int64_t now_ns, const int64_t *part_now,
                                 size_t n_parts, nops_incident *out, size_t max);
/**
 * The service a series names: the value of the first of service_labels among `labels`, into
 * out (cap bytes); false when it names none (or the value does not fit). Any thread.
 */
bool nops_correlate_service_of(const nops_correlator *c, const nops_labels *labels, char *out,
                               size_t cap);
/** Open incidents now (not the resolved ones kept for reopening), opened and resolved since
 *  creation (a reopened incident is not opened again, but resolves again). */
void nops_correlate_counts(nops_correlator *c, uint64_t *open, uint64_t *opened,
                           uint64_t *resolved);
/** The severity an incident of this breadth, strength and span gets (the rules above). */
nops_severity nops_correlate_severity(const nops_correlate_params *p, uint32_t n_series,
                                      uint32_t n_hosts, double best_score, int64_t span_ns,
                                      int64_t single_series_span_ns);

/**
 * The open incidents of partition `part` and the recent signals in them, as bytes (no
 * pointers), for that partition's snapshot; *out is allocated with nops_malloc and owned by the
 * caller (nops_free). NOPS_NOMEM.
 */
nops_err nops_correlate_save(nops_correlator *c, int32_t part, void **out, size_t *len);
/**
 * Replace the incidents of `part` with those saved by nops_correlate_save for that partition
 * by a correlator with the same window length. The bytes are checked for shape only (the
 * caller verifies their integrity first): NOPS_PARSE changes nothing; NOPS_FULL when not every
 * incident found a free slot (the rest are left out).
 */
nops_err nops_correlate_load(nops_correlator *c, int32_t part, const void *data, size_t len);
/** Forget the incidents of `part` without resolving them (its new owner carries them on). */
void nops_correlate_release(nops_correlator *c, int32_t part);

#endif /* NOPS_CORRELATE_H */
