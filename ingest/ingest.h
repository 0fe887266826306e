/*
 * ingest.h — the streaming pipeline: a Kafka consumer group whose messages are parsed
 * (parse/), run through per-worker detectors (detect/) and the shared correlator (correlate/),
 * and written to the sinks (sinks/), with per-partition state snapshots and at-least-once
 * offset commits. The design essay is at the top of pipeline.c.
 */
#ifndef NOPS_INGEST_H
#define NOPS_INGEST_H

#include "core/core.h"
#include "correlate/correlate.h"
#include "detect/detect.h"
#include "kafka/kafka.h"
#include "parse/parse.h"
#include "sinks/sinks.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- series identity of a point ----------------------------------------------------- */

/**
 * A per-worker cache from a point's raw series bytes (nops_point.series and its field) to its
 * detector slot, so the canonical key is built only for a series not seen in that raw form.
 * Not thread-safe: one per thread, beside the detector it indexes.
 */
typedef struct nops_ingest_series_cache nops_ingest_series_cache;

/** A new cache, or NULL when out of memory. */
nops_ingest_series_cache *nops_ingest_series_cache_new(void);
void nops_ingest_series_cache_destroy(nops_ingest_series_cache *c);

/* For tests: replace the raw hash (span, field → 128 bits) to force collisions; entries in use. */
typedef void (*nops__series_hash_fn)(const char *span, size_t span_len, const char *field,
                                     size_t field_len, uint64_t out[2]);
void nops__ingest_series_cache_set_hash(nops_ingest_series_cache *c, nops__series_hash_fn fn);
uint32_t nops__ingest_series_cache_size(const nops_ingest_series_cache *c);

/**
 * Asked before a new series is registered; returns why it may not be (static text), or NULL
 * when it may. `key_len` is its canonical key's length.
 */
typedef const char *(*nops_ingest_admit_fn)(void *ud, size_t key_len);

/**
 * The detector slot of the point's series, registering it in `det` when new and `admit` (may
 * be NULL: always) agrees; marks the series seen at now_s. The series id (XXH3 of the canonical
 * key) is then nops_detect_slot_id(det, *slot). `c` may be NULL (no cache: the key is built
 * every time); one cache serves one detector.
 * @return NOPS_REJECT_NONE; NOPS_REJECT_TOO_LARGE when the name or key is too long or a label
 *         is given twice; NOPS_REJECT_SERIES_LIMIT when the series is new and refused (by
 *         `admit`, or out of memory). *detail (static text) says why.
 */
nops_reject nops_ingest_series_resolve(nops_ingest_series_cache *c, nops_detector *det,
                                       const nops_point *pt, uint32_t now_s,
                                       nops_ingest_admit_fn admit, void *ud, uint32_t *slot,
                                       const char **detail);

/**
 * The same work in two steps, so that a message's cache misses overlap instead of queueing:
 * hash every point of the message while it is parsed (nops_ingest_series_hash also starts
 * loading the point's cache cell), then, after the parse, find each in order and, on a miss,
 * resolve it with nops_ingest_series_add (given the same point again: its spans must be alive).
 * find + add of one point do exactly what nops_ingest_series_resolve does.
 */
typedef struct nops_ingest_series_ref {
    uint64_t hi;  /**< raw hash, high half (never 0) */
    uint32_t lo;  /**< raw hash, low 32 bits of the low half */
    uint32_t pad; /**< 0 */
} nops_ingest_series_ref;

/** Hash pt's raw series (pt->series_len must be > 0) into *ref and prefetch its cache cell. */
void nops_ingest_series_hash(nops_ingest_series_cache *c, const nops_point *pt,
                             nops_ingest_series_ref *ref);
/** A hit: *slot is the series' slot, marked seen at now_s. false: not cached (use _add). */
bool nops_ingest_series_find(nops_ingest_series_cache *c, nops_detector *det,
                             const nops_ingest_series_ref *ref, uint32_t now_s, uint32_t *slot);
/** After a miss of `ref` (pt's hash): build the key, find or admit the series and cache it;
 *  returns as nops_ingest_series_resolve. */
nops_reject nops_ingest_series_add(nops_ingest_series_cache *c, nops_detector *det,
                                   const nops_point *pt, const nops_ingest_series_ref *ref,
                                   uint32_t now_s, nops_ingest_admit_fn admit, void *ud,
                                   uint32_t *slot, const char **detail);

/** [pipeline] settings. */
typedef struct nops_pipeline_params {
    int64_t workers;     /**< detector threads; partition p goes to worker p % workers */
    int64_t queue_depth; /**< messages queued per worker before the poller waits */
    int64_t batch;       /**< messages a worker takes per turn */
    int64_t flush_ms;    /**< flush sinks and commit offsets at least this often */
    int64_t max_series;  /**< series per worker before registration is refused (0 = budget) */
    int64_t snapshot_ms; /**< detector state is snapshot to the data dir this often */
    int64_t max_future_s;     /**< points this far ahead of the wall clock are refused (0 = off) */
    int64_t max_past_s;       /**< points this far behind the wall clock are refused (0 = off) */
    int64_t series_memory_mb; /**< detector memory of all workers together (0 = no budget) */
    int64_t queue_mb;    /**< message bytes (MiB) queued per worker before the poller waits,
                              beside queue_depth (0 = count only) */
} nops_pipeline_params;

extern const nops_cfg_section nops_pipeline_cfg_section;

/** Counters of a running pipeline (monotonic totals unless named otherwise). */
typedef struct nops_pipeline_stats {
    uint64_t messages;          /**< Kafka messages processed */
    uint64_t points;            /**< points detected on */
    uint64_t queued_bytes;      /**< message bytes waiting in the workers' queues now */
    uint64_t queued_bytes_peak; /**< the most message bytes one worker's queue has held */
    uint64_t worker_cpu_ns;     /**< CPU time the worker threads have used, as of each one's
                                     last turn (a worker's parse, identity, detection and
                                     emission: the pipeline's own per-point cost) */
    uint64_t rejected[NOPS_REJECT_COUNT]; /**< rejected lines/objects/points by nops_reject */
    uint64_t dlq;               /**< messages sent to the dead-letter topic */
    uint64_t stale;             /**< NaN samples skipped (Prometheus staleness markers from a
                                     prometheus-kafka-adapter's "value":"NaN"): not rejected,
                                     not dead-lettered */
    uint64_t dlq_lost;          /**< dead-letter copies refused by the producer or not delivered:
                                     from the first, offsets are no longer committed (a restart
                                     replays the messages and copies them again) */
    uint64_t uncorrelated;      /**< signals the correlator refused (it holds its compile-time
                                     limit of open incidents, MAX_INCIDENTS = 1024 in
                                     correlate/): written, but in no incident */
    uint64_t key_unsplit;       /**< signals whose series key could not be split into its
                                     labels: written with the whole key as the metric name and
                                     no labels (the parsers refuse such names, so this is 0
                                     unless a key was damaged) */
    uint64_t signals;           /**< signals raised */
    uint64_t anomalies;         /**< anomalous points (a signal is raised at the first) */
    uint64_t incidents_opened;  /**< incidents opened */
    uint64_t incidents_resolved;/**< incidents resolved */
    uint64_t incidents_open;    /**< open now */
    uint64_t series;            /**< series tracked now (all workers) */
    uint64_t commits;           /**< successful offset commits */
    uint64_t commit_failures;   /**< failed commits (retried) */
    uint64_t flush_failures;    /**< failed sink flushes (partitions paused, retried) */
    uint64_t snapshots;         /**< partition state snapshots written */
    uint64_t restored_series;   /**< series restored from snapshots on assignment */
    uint64_t snapshots_rejected;/**< snapshots refused on assignment (damaged, foreign, forged) */
    uint64_t snapshot_series_skipped; /**< series left out of a snapshot (their record did not
                                     fit, or no memory): they start cold after a restart */
    uint64_t signal_contexts_dropped; /**< signal contexts (nops_pipeline_signal_contexts)
                                     replaced by newer ones (the oldest goes once
                                     NOPS_PIPELINE_SIGNAL_CONTEXTS are held) or not kept for
                                     want of memory */
    uint32_t partitions;        /**< partitions assigned now */
    bool paused;                /**< consumption paused because a sink is down */
    int64_t lag;                /**< sum over assigned partitions of high watermark − position */
    uint32_t lag_partitions;    /**< assigned partitions whose high watermark is known (in lag) */
    int64_t lag_as_of_ns;       /**< wall clock (ns) at which the last complete round of high
                                     watermark queries was sent (0 none yet): records produced
                                     before it are in `lag`; newer ones may not be until the next
                                     round (every 5 s and after each rebalance) or fetch */
    /** ingest-to-signal latency (wall clock at emission − point timestamp, for points stamped
     *  within the last hour): bucket i counts latencies below 2^i µs (the last is the rest) */
    uint64_t latency_us_log2[32];
    /** the same latencies (latency_us_log2[i] is the sum of [i][0..3]), bucket i (i ≥ 3,
     *  below 31) split into the quarters of its range
     *  [2^(i-1), 2^i) µs: [i][k] counts those below 2^(i-1) + (k+1)·2^(i-3) µs (buckets 0–2
     *  and 31 count in [i][3]) — the quantiles to a quarter octave (~19 %), not a factor of 2 */
    uint64_t latency_us_q[32][4];
} nops_pipeline_stats;

/** The q-quantile (0..1) of the latencies in microseconds: the upper bound of the quarter
 *  bucket (latency_us_q) it falls in. */
double nops_pipeline_latency_quantile(const nops_pipeline_stats *st, double q);

/**
 * The series one worker may hold: pipeline.max_series when set, and never more than fit in its
 * share (series_memory_mb / workers) of the budget with detect.window's state per series and
 * keys of ~128 bytes. Longer keys are charged as they come, so the budget holds whatever the
 * keys. 0 when not even the initial arrays fit (every new series is refused).
 */
uint32_t nops_pipeline_series_limit(const nops_pipeline_params *pp, const nops_detect_params *dp);

typedef struct nops_pipeline nops_pipeline;

/**
 * Build a pipeline: a consumer in the group, a DLQ producer, `workers` detector threads and a
 * correlator; detector state is snapshot per partition under sp->data_dir/state/ (on revoke,
 * periodically, at stop) and restored on assignment when it was taken at the committed offset,
 * so a rebalance or restart starts warm (a partition always resumes at its committed offset);
 * signals and incidents go to `sinks` (borrowed; must outlive the pipeline).
 * Nothing runs until nops_pipeline_start(). All params are copied.
 */
nops_pipeline *nops_pipeline_new(const nops_kafka_params *kp, const nops_pipeline_params *pp,
                                 const nops_detect_params *dp, const nops_correlate_params *cp,
                                 const nops_storage_params *sp, nops_sinks *sinks, char *errstr,
                                 size_t errstr_size);
/**
 * Key the state snapshots with the engine's secret (HMAC-SHA256, purpose "state-snapshot")
 * instead of a plain SHA-256, so whoever can write the state directory but not read the key
 * cannot plant a state. Call before nops_pipeline_start. `s` is borrowed and must outlive the
 * pipeline; NULL goes back to SHA-256. Snapshots written one way are refused the other way (the
 * partition then starts cold, once).
 */
void nops_pipeline_set_secret(nops_pipeline *p, const nops_secret *s);
/**
 * Call `fn(ctx, inc, events)` with every incident record right before it goes to the sinks: on
 * the worker that placed a signal (events from nops_correlate_place: OPENED, or UPDATED with
 * NEW_SERIES / SEVERITY_UP; 0 for a replayed signal) and on the poller that resolves incidents
 * (RESOLVED). What the hook attaches (inc->recos, n_recos, recommended_ns; any other change to
 * the record is discarded) is written with that record, kept by the correlator for the
 * incident's later records and saved with its partition's snapshot. The hook runs under the
 * pipeline's incident-ordering mutex (records of all incidents wait while it runs): it must be
 * thread-safe, must not call back into the pipeline, and should be quick — a slow hook slows
 * every worker that raises a signal. Call before nops_pipeline_start; `ctx` is borrowed and must
 * outlive the pipeline; fn NULL: none.
 */
void nops_pipeline_set_incident_hook(nops_pipeline *p, nops_incident_hook fn, void *ctx);
nops_err nops_pipeline_start(nops_pipeline *p, char *errstr, size_t errstr_size);
/**
 * Stop consuming, let the workers drain, flush the sinks, commit, leave the group. Bounded by
 * `timeout_ms`; returns NOPS_IO if the final flush or commit failed (nothing is lost: the
 * uncommitted messages are consumed again by the next owner).
 */
nops_err nops_pipeline_stop(nops_pipeline *p, int timeout_ms);
/**
 * The recent window of series `key` (canonical `name{k="v",...}`) as the detectors hold it:
 * up to `cap` values, oldest first, and the window's mean and std. Asks the workers between
 * their batches; NOPS_NOTFOUND if no worker tracks the series, NOPS_IO if they did not answer
 * within `timeout_ms` (pipeline not running or stalled). Thread-safe.
 */
nops_err nops_pipeline_series_window(nops_pipeline *p, const char *key, float *out,
                                     uint32_t cap, uint32_t *n, double *mean, double *std,
                                     int timeout_ms);
/**
 * New detector thresholds for a running pipeline (a config reload): false_alarm_points, the
 * z/EWMA/CUSUM thresholds (0 = derived from false_alarm_points), hysteresis and clear_points
 * are taken from `dp`, the rest of the detector settings stay as the pipeline was made with.
 * Each worker takes them before its next batch; series keep their state. NOPS_CONFIG with a
 * sentence when they are refused (nothing changes). Thread-safe.
 */
nops_err nops_pipeline_set_thresholds(nops_pipeline *p, const nops_detect_params *dp,
                                      char *errstr, size_t errstr_size);
void nops_pipeline_destroy(nops_pipeline *p);
void nops_pipeline_get_stats(nops_pipeline *p, nops_pipeline_stats *st);

/* ---- the points of a series, for GET /series --------------------------------------------
 *
 * Point times. The detector's ring holds values only. Beside it each worker keeps, per series
 * slot, 24 bytes: the newest point's time, the last positive step between two points, and how
 * many steps in a row had exactly that length (nops__slot_time in pipeline_int.h; one write per
 * point, in the loop that already reads the point's flags). The newest `run + 1` values of the
 * window are then at newest − k·step exactly: the times of the points as they were produced.
 * Older values of a window whose steps were not regular get times estimated from the last
 * step (marked `estimated`); values older than what the series' times say anything about (a
 * window restored from a snapshot, before two new points arrived) have no time and are left
 * out (counted in `untimed`). No time is invented: each is the point's own or marked.
 */

/** One point of a series as the engine holds it. */
typedef struct nops_series_point {
    int64_t ts_ns;  /**< its time: the point's own unless `estimated` */
    float value;    /**< its value */
    bool estimated; /**< ts_ns is newest − k·step (the steps before were not all that long) */
} nops_series_point;

/** The live window of a series with its points' times and the detector's band. */
typedef struct nops_series_view {
    nops_series_point *points; /**< the caller's array of `cap` points (cap ≥ the window) */
    uint32_t cap;              /**< its room */
    uint32_t n;                /**< points copied, oldest first */
    uint32_t untimed;          /**< the oldest window values left out: their time is unknown */
    double mean, std;          /**< the window's mean and population std now */
    double z_threshold;        /**< the rolling z-score's threshold (detect.z_threshold) */
} nops_series_view;

/**
 * The live window of series `key` (canonical `name{k="v",...}`) with its points' times (see
 * above), asked of the worker that holds it between its batches. NOPS_NOTFOUND if no worker
 * tracks the series, NOPS_IO if they did not answer within `timeout_ms`. Thread-safe.
 */
nops_err nops_pipeline_series_view(nops_pipeline *p, const char *key, nops_series_view *v,
                                   int timeout_ms);

/** Signal contexts the pipeline holds (the oldest replaced, and counted, past this). */
#define NOPS_PIPELINE_SIGNAL_CONTEXTS 1024

/**
 * The window a worker judged when it raised a signal: the series' values up to and including
 * the signal's point, with their times, and the band it was judged against. Kept in memory
 * (NOPS_PIPELINE_SIGNAL_CONTEXTS of them, each 88 bytes and 16 per point, at most
 * detect.window points: ~1 MiB in all at the default window of 60; copied once per signal, no
 * per-point work) so that the points around an anomaly can be served after
 * the live window moved on. Not written to the sinks; lost at restart.
 */
typedef struct nops_signal_context {
    char id[NOPS_ID_LEN];      /**< the signal's id */
    uint64_t series_id;        /**< XXH3 of its series key */
    int64_t ts_ns;             /**< the signal's point */
    double value;              /**< ... its value */
    nops_method_fired method;  /**< the detector that fired */
    double mean, std;          /**< the band: mean and population std of the window's values
                                    before the signal's point */
    double z_threshold;        /**< the rolling z-score's threshold */
    uint32_t n;                /**< points, oldest first; the last is the signal's */
    nops_series_point points[]; /**< n of them */
} nops_signal_context;

/**
 * Copies of the signal contexts held for series `key` whose points reach into
 * [from_ns, to_ns], oldest signal first: *out (NULL when none) is an array of *n contexts the
 * caller frees with nops_signal_contexts_free; *held (may be NULL) gets how many contexts of the
 * series are held at all, whatever the range. NOPS_NOMEM (nothing returned). Thread-safe.
 */
nops_err nops_pipeline_signal_contexts(nops_pipeline *p, const char *key, int64_t from_ns,
                                       int64_t to_ns, nops_signal_context ***out, size_t *n,
                                       size_t *held);
/** Free what nops_pipeline_signal_contexts returned (NULL is fine). */
void nops_signal_contexts_free(nops_signal_context **v, size_t n);

#endif /* NOPS_INGEST_H */
