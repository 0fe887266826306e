/*
 * detect.h — per-series anomaly detection: the series registry, the SoA state and the SIMD
 * detector kernels (rolling z-score, robust EWMA, long-horizon CUSUM) with hysteresis.
 *
 * Ownership: a nops_detector owns all series state and the copies of series keys it was given;
 * output arrays passed to the update calls belong to the caller and are only written. A detector
 * is not thread-safe: one thread (one partition worker) drives it, without locks. (The
 * correlator, which is shared and locked, is correlate/correlate.h.)
 *
 * Semantics (docs/detection.md has the whole story), per series, W = window, n = points seen:
 *   - rolling z = (x − mean) / std over the previous ≤ W points (the current point excluded),
 *     population std;
 *   - robust EWMA: z_e = (x − m) / sqrt(v); m ← m + a(x − m) with a = max(α, 1/(n+1)) (so the
 *     first points give their exact mean); v ← v + b(min(e², 16 v) − v), e = x − m before the
 *     update, b = max(α_var, 1/(n+1)) (v is the mean of e² until 1/α_var points, then an EW mean
 *     with ≈ 2/α_var effective samples; squared residuals are clipped at 4σ once warm, so one
 *     outlier does not inflate the scale);
 *   - long-horizon CUSUM: a baseline mean/variance decayed over `long_window` points (the same
 *     update with α_L = 1/long_window); u = (x − m_L)/σ_L clipped to ±4; S⁺ ← max(0, S⁺ + u − k),
 *     S⁻ ← max(0, S⁻ − u − k), active after max(warmup, long_window/2) points and only while
 *     the series has a stable long baseline (long-horizon variance ≤ 2 × the EWMA's: a wave or a
 *     random walk keeps it out); at S/h ≥ 1 (an alarm) S⁺ = S⁻ = 0 and the baseline restarts,
 *     relearning the level from the next point as a new series would, the CUSUM silent for
 *     `warmup` points: a persistent level shift signals once, then is the new normal;
 *   - no verdict (all z = 0, no flags but VALID) before `warmup` points;
 *   - scale floors: the divisor is never below 1e-6·|level| + 1e-12, nor below the series'
 *     resolution (the smallest non-zero step |x_t − x_{t−1}| seen before this point) capped at
 *     5 % of |level|, so a quantised or flat-lined series does not fire on one small tick (a
 *     step of 50 % of the level still does); |z| is clamped to
 *     NOPS_DETECT_Z_MAX, so z is always finite; a constant series has z = 0 exactly;
 *   - NaN/±Inf inputs are rejected: flags = 0, z = 0, state untouched;
 *   - ratio r = max(|z|/z_threshold, |z_e|/ewma_threshold, max(S⁺,S⁻)/cusum_threshold) over the
 *     enabled detectors; the thresholds not set explicitly derive from one knob,
 *     false_alarm_points N (each detector gets a third of a 1/N per-point budget, see
 *     nops_detect_thresholds); a point is anomalous when r ≥ 1; a series enters the anomalous
 *     state (one signal: NOPS_DETECT_FIRED) at its first anomalous point and leaves it
 *     (NOPS_DETECT_CLEARED) after `clear_points` consecutive points with r < hysteresis;
 *   - score = 1 − 2^(−r²): 0 at r = 0, 0.5 exactly at the threshold, 0.9375 at twice it.
 */
#ifndef NOPS_DETECT_H
#define NOPS_DETECT_H

#include "core/core.h"

#include <stddef.h>
#include <stdint.h>

#define NOPS_DETECT_Z_MAX 1.0e6f       /**< |z| is clamped here (std ≈ 0 cases) */
#define NOPS_DETECT_FLOOR_REL 1.0e-6   /**< std floor relative to |mean| */
#define NOPS_DETECT_FLOOR_ABS 1.0e-12  /**< absolute std floor */
#define NOPS_DETECT_RES_REL 0.05       /**< the resolution floor is capped at this × |level| */
#define NOPS_DETECT_MAX_WINDOW 1024    /**< largest W */
#define NOPS_DETECT_SEASON_BINS 24     /**< knots of a seasonal profile (one per hour of a day) */
#define NOPS_DETECT_SEASON_MIN (2 * NOPS_DETECT_SEASON_BINS) /**< shortest season, points */
#define NOPS_DETECT_SEASON_MAX (1 << 24) /**< longest season, points */

/** Which detectors feed the verdict. Values match the config enum "zscore|ewma|both|all". */
typedef enum nops_detect_method {
    NOPS_METHOD_ZSCORE = 0, /**< rolling z-score only */
    NOPS_METHOD_EWMA = 1,   /**< robust EWMA only */
    NOPS_METHOD_BOTH = 2,   /**< rolling z-score and EWMA */
    NOPS_METHOD_ALL = 3,    /**< rolling z, EWMA and the long-horizon CUSUM (the default) */
} nops_detect_method;
#define NOPS_METHOD_N 4

/** The detector that gave a point its ratio (NOPS_DETECT_WHICH of its flags). */
typedef enum nops_detector_kind {
    NOPS_DETECTOR_ZSCORE = 0, /**< rolling z-score */
    NOPS_DETECTOR_EWMA = 1,   /**< robust EWMA */
    NOPS_DETECTOR_CUSUM = 2,  /**< long-horizon baseline CUSUM (change point) */
    NOPS_DETECTOR_SEASON = 3, /**< the EWMA on the deseasonalised value of a series with a
                                   season (its seasonal baseline): "this hour usually looks
                                   different" */
} nops_detector_kind;
#define NOPS_DETECTOR_N 4 /**< detector kinds */

/** Kernel instruction set. Values match the config enum "auto|scalar|avx2|avx512". */
typedef enum nops_detect_variant {
    NOPS_VARIANT_AUTO = 0,
    NOPS_VARIANT_SCALAR = 1,
    NOPS_VARIANT_AVX2 = 2,
    NOPS_VARIANT_AVX512 = 3,
} nops_detect_variant;

/** Settings of the [detect] config section. */
typedef struct nops_detect_params {
    int64_t window;        /**< W, points in the rolling window */
    double alpha;          /**< EWMA smoothing factor */
    double alpha_var;      /**< EWMA variance smoothing factor (≈ 2/α_var effective samples) */
    double false_alarm_points; /**< N: about one false signal per N points of a stationary series */
    double z_threshold;    /**< |rolling z| at or above this is anomalous (0 = from N) */
    double ewma_threshold; /**< |EWMA z| at or above this is anomalous (0 = from N) */
    double cusum_threshold;/**< CUSUM h, in σ (0 = from N) */
    double cusum_k;        /**< CUSUM drift allowance k, in σ (half the smallest shift sought) */
    int64_t long_window;   /**< points the long-horizon baseline is decayed over (α_L = 1/this) */
    int64_t season_points; /**< period of every new series' seasonal baseline, in points (0 =
                                none; nops_detect_set_season sets one per series) */
    int64_t season_s;      /**< period in seconds for callers that know a series' step
                                (nops_detect_season_for_step; 0 = none) */
    int64_t warmup;        /**< points before any verdict (0 = twice the window) */
    int method;            /**< nops_detect_method */
    double hysteresis;     /**< leave the anomalous state below this fraction of a threshold */
    int64_t clear_points;  /**< ... for this many consecutive points */
    int64_t ttl_s;         /**< idle series are evicted after this many seconds (0 = never) */
    int variant;           /**< nops_detect_variant; NEURALOPS_DETECT_VARIANT forces one */
} nops_detect_params;

/** The [detect] section: table for core's config system (base: nops_detect_params). */
extern const nops_cfg_section nops_detect_cfg_section;

/** Defaults of the table, for callers without a nops_cfg (thresholds resolved). */
void nops_detect_params_default(nops_detect_params *p);
/**
 * Fill the thresholds left at 0 (z, EWMA, CUSUM) and a warmup of 0 from false_alarm_points and
 * the window (see nops_detect_thresholds). Run by the config finalize step, by
 * nops_detect_params_default and on the detector's own copy in nops_detect_new.
 */
void nops_detect_params_resolve(nops_detect_params *p);
/**
 * The calibrated thresholds for a per-point false-alarm probability of 1/N shared by the three
 * detectors (1/(3N) each, two-sided): z from the Student-t quantile with W − 1 degrees of
 * freedom times sqrt((W+1)/(W−1)) (the point is not in its window and the std is the
 * population one); EWMA from the t quantile with (2 − α_var)/α_var degrees of freedom; CUSUM h
 * from Siegmund's approximation of the in-control run length, ARL = 6N one-sided.
 */
void nops_detect_thresholds(double N, int64_t window, double alpha_var, double cusum_k,
                            double *z_threshold, double *ewma_threshold, double *cusum_threshold);
/** Cross-field validation (also run by nops_cfg_finalize). */
nops_err nops_detect_params_check(const nops_detect_params *p, char *errstr, size_t errstr_size);

/* Per-point output flags. */
#define NOPS_DETECT_VALID 0x01u   /**< the point was finite and updated the state */
#define NOPS_DETECT_WARM 0x02u    /**< enough history: z values are verdicts, not 0 */
#define NOPS_DETECT_ANOM 0x04u    /**< this point is anomalous (r ≥ 1) */
#define NOPS_DETECT_FIRED 0x08u   /**< the series entered the anomalous state: one signal */
#define NOPS_DETECT_CLEARED 0x10u /**< the series returned to normal */
#define NOPS_DETECT_WHICH(f) (((f) >> 5) & 3u) /**< nops_detector_kind of the point's ratio */
#define NOPS_DETECT_CUSUM_DOWN 0x80u /**< the ratio is the CUSUM's and its downward sum (S⁻)
                                          leads: the level moved below its baseline (unset: above) */

/** Caller-owned output arrays, one element per input point; z, ze and flags are required. */
typedef struct nops_detect_out {
    float *z;       /**< rolling z (0 if not warm, not enabled or rejected) */
    float *ze;      /**< EWMA z (0 if not warm, not enabled or rejected) */
    uint8_t *flags; /**< NOPS_DETECT_* bits */
    float *ratio;   /**< optional (NULL = not written): the combined ratio r (0 if not warm) */
} nops_detect_out;

/* nops_label, one label of a series, is core's (core/core.h). */

typedef struct nops_detector nops_detector;

/** Memory held per series, as reported by nops_detect_memory(). */
typedef struct nops_detect_mem {
    size_t state_bytes;    /**< SoA arrays (ring, sums, EWMA, counters), whole capacity */
    size_t registry_bytes; /**< id → slot hash table, slot → id, last-seen, key pointers */
    size_t key_bytes;      /**< copies of series keys, allocation headers included */
    uint32_t capacity;     /**< slots allocated */
    uint32_t active;       /**< series registered */
} nops_detect_mem;

/**
 * Create a detector for up to `capacity_hint` series (it grows past that by doubling).
 * `p` is copied. Returns NULL with errstr filled on bad params or out of memory.
 */
nops_detector *nops_detect_new(const nops_detect_params *p, uint32_t capacity_hint, char *errstr,
                               size_t errstr_size);
void nops_detect_destroy(nops_detector *det);
/**
 * Change the thresholds of a running detector: false_alarm_points, z/ewma/cusum_threshold (0 =
 * derived from false_alarm_points, as at the start), hysteresis and clear_points are taken from
 * `p`; every other field stays as the detector was made (window, alpha, method... shape the
 * state it holds). The series' state is kept; the next update judges by the new thresholds.
 * NOPS_CONFIG with a sentence when the result does not pass nops_detect_params_check (nothing
 * changes then). Not thread-safe: call it from the thread that updates this detector.
 */
nops_err nops_detect_set_thresholds(nops_detector *det, const nops_detect_params *p,
                                    char *errstr, size_t errstr_size);
/** The detector's params, thresholds and warmup resolved (nops_detect_params_resolve). */
const nops_detect_params *nops_detect_get_params(const nops_detector *det);
/** Points a series needs before its first verdict. */
uint32_t nops_detect_warmup(const nops_detector *det);

/* ---- series registry ------------------------------------------------------------------ */

/**
 * Canonical series key (nops_series_key, core/core.h: `name{k1="v1",k2="v2"}`, labels sorted
 * by key) and its stable 64-bit id (XXH3 of the key). Writes at most key_cap bytes including
 * the NUL; NOPS_RANGE if the key does not fit, NOPS_INVAL for an empty name, more than 64
 * labels or a duplicate label key. `labels` is sorted in place.
 */
nops_err nops_detect_series_key(const char *name, size_t name_len, nops_label *labels,
                                size_t n_labels, char *key, size_t key_cap, size_t *key_len,
                                uint64_t *id);
/** The id of an already canonical key. */
uint64_t nops_detect_key_id(const char *key, size_t key_len);

/**
 * Slot of series `id`, registering it if new (its key is copied; key may be NULL). Marks the
 * series seen at `now_s`. Slots are dense, stable for the life of the series, and reused after
 * eviction. Registration may grow the state arrays; never call it during an update call.
 * @retval NOPS_NOMEM the series could not be registered.
 */
nops_err nops_detect_slot(nops_detector *det, uint64_t id, const char *key, size_t key_len,
                          uint32_t now_s, uint32_t *slot);
/**
 * Put the registered series in `slot` back to the state it had when it was registered: no
 * points seen, window, EWMA, long baseline, hysteresis and seasonal profile cleared, the season
 * period the params' (as nops_detect_slot gives a new series). The registry (id, key, last seen)
 * is untouched. O(window). For a detector reused for one throw-away series after another (the
 * API's POST /analyze). Not thread-safe: call it from the thread that updates this detector.
 * @retval NOPS_NOTFOUND the slot is free or beyond the slots handed out (nothing changes).
 */
nops_err nops_detect_reset_slot(nops_detector *det, uint32_t slot);
/** Mark a registered series seen at now_s (keeps it from TTL eviction); O(1). */
void nops_detect_touch(nops_detector *det, uint32_t slot, uint32_t now_s);
/** Slot of a registered series, or NOPS_NOTFOUND. */
nops_err nops_detect_lookup(const nops_detector *det, uint64_t id, uint32_t *slot);
/** The id of the series in `slot` (nops_detect_key_id of its key), or 0 when the slot is free
 *  or beyond the slots handed out; O(1). */
uint64_t nops_detect_slot_id(const nops_detector *det, uint32_t slot);
/** The key a series was registered with ("" if none was given); valid until evicted. */
const char *nops_detect_slot_key(const nops_detector *det, uint32_t slot);
/** Series evicted since creation: while it stays the same, every slot keeps its series. */
uint64_t nops_detect_evictions(const nops_detector *det);
/** Evict series not seen for ttl_s seconds (no-op when ttl_s is 0); returns how many. */
uint32_t nops_detect_evict_idle(nops_detector *det, uint32_t now_s);
/**
 * The same, and the ids of evicted series that were in their anomalous state (a series that
 * went silent while anomalous never clears by itself) into anomalous[0 .. *n_anomalous), at
 * most `cap` of them; eviction stops once `cap` of those are found (the rest go next time).
 */
uint32_t nops_detect_evict_idle_report(nops_detector *det, uint32_t now_s, uint64_t *anomalous,
                                       uint32_t cap, uint32_t *n_anomalous);
uint32_t nops_detect_series_count(const nops_detector *det);
void nops_detect_memory(const nops_detector *det, nops_detect_mem *mem);
/**
 * What nops_detect_memory() would report after registering one more series whose key is
 * `key_len` bytes, the doubling of every array included when the registration needs it.
 * Lets a caller refuse a series before it breaks a memory budget.
 */
void nops_detect_memory_after_add(const nops_detector *det, size_t key_len, nops_detect_mem *mem);
/**
 * The largest number of series whose state fits in `budget` bytes for a detector created with
 * `initial` slots (growing by doubling), keys of `key_len` bytes, and `extra_per_slot` bytes the
 * caller keeps per slot beside it; 0 when not even the initial arrays fit.
 */
uint32_t nops_detect_series_fit(const nops_detect_params *p, size_t budget, uint32_t initial,
                                size_t key_len, size_t extra_per_slot);

/* ---- kernels -------------------------------------------------------------------------- */

/**
 * Update slots first … first+n−1 with values[0..n−1] (one point per series, the layout of a
 * scrape across a fleet). All slots must be registered.
 */
nops_err nops_detect_update_range(nops_detector *det, uint32_t first, uint32_t n,
                                  const float *values, const nops_detect_out *out);
/**
 * Update series slots[i] with values[i], in order (a slot may repeat; later points see earlier
 * ones). All slots must be registered.
 */
nops_err nops_detect_update_pairs(nops_detector *det, const uint32_t *slots, const float *values,
                                  size_t n, const nops_detect_out *out);

/** Force a kernel variant; NOPS_UNSUPPORTED if this CPU (or build) lacks it. */
nops_err nops_detect_set_variant(nops_detector *det, nops_detect_variant v);
nops_detect_variant nops_detect_get_variant(const nops_detector *det);
/** Whether this CPU can run a variant (AUTO and SCALAR always can). */
bool nops_detect_variant_supported(nops_detect_variant v);
/** The best variant this CPU runs. */
nops_detect_variant nops_detect_variant_best(void);
const char *nops_detect_variant_name(nops_detect_variant v);

/**
 * Give series `slot` a seasonal baseline of `period` points (0 removes it), e.g. a day at the
 * series' step (86400 / step_s). Its profile — NOPS_DETECT_SEASON_BINS knots over the period,
 * interpolated linearly — is learned from scratch: the first period is collected, then the
 * EWMA and the long-horizon baseline (CUSUM and its gate) see the value minus the profile, and
 * a signal the EWMA gives there is reported as NOPS_DETECTOR_SEASON. Only with method `all`.
 * Setting the period a series already has is a no-op (its profile is kept).
 * @retval NOPS_RANGE slot not registered; NOPS_INVAL period outside
 *         {0} ∪ [NOPS_DETECT_SEASON_MIN, NOPS_DETECT_SEASON_MAX] or method not `all`.
 */
nops_err nops_detect_set_season(nops_detector *det, uint32_t slot, uint32_t period);
/** The season a caller that knows a series' step (seconds between points) should give it:
 *  season_s / step_s points when that is within NOPS_DETECT_SEASON_MIN..MAX and the method is
 *  `all`, else 0. */
uint32_t nops_detect_season_for_step(const nops_detect_params *p, int64_t step_s);
/** The season period of a series in points (0: none or not registered). */
uint32_t nops_detect_get_season(const nops_detector *det, uint32_t slot);

/** Window mean and std of a series now (its last ≤ W points); NOPS_RANGE if it has none. */
nops_err nops_detect_slot_stats(const nops_detector *det, uint32_t slot, double *mean,
                                double *std, uint32_t *count);

/**
 * Copy the last min(n, count) values of a series' window, oldest first, into `out`; returns how
 * many were copied (0 when the series has none or only EWMA runs).
 */
uint32_t nops_detect_slot_window(const nops_detector *det, uint32_t slot, float *out, uint32_t n);

/**
 * Serialise one series (key, window in time order, EWMA, hysteresis) into buf; returns the
 * bytes written, 0 if the slot is free or buf is too small. The format is versioned and
 * little-endian; window sums are not stored but recomputed exactly on restore.
 */
size_t nops_detect_save_series(const nops_detector *det, uint32_t slot, uint8_t *buf, size_t cap);
/** The largest record nops_detect_save_series writes: 88 bytes of header and state, the
 * CUSUM's autocovariance (4 bytes), the seasonal baseline (8 bytes and its knots), the key (at most NOPS_KEY_MAX − 1 bytes) and a full
 * window of floats. A buffer this size always fits. */
#define NOPS_DETECT_SERIES_REC_MAX                                                             \
    (88 + 4 + 8 + 4 * NOPS_DETECT_SEASON_BINS + (NOPS_KEY_MAX - 1) + 4 * NOPS_DETECT_MAX_WINDOW)
/**
 * Restore a series saved by nops_detect_save_series (registering it, or overwriting its state
 * if present); *used gets the bytes consumed. NOPS_PARSE for a malformed or foreign record
 * (other window or version), NOPS_NOMEM when it cannot be registered.
 */
nops_err nops_detect_restore_series(nops_detector *det, const uint8_t *rec, size_t len,
                                    uint32_t now_s, size_t *used, uint32_t *slot);
/** Series restored from a record older than the seasonal baseline ("NDS2", "NDS1") that got
 *  a season period: restored warm, their profile learned from scratch. */
uint64_t nops_detect_season_relearned(const nops_detector *det);
/** Slots handed out so far (slot indices are below this). */
uint32_t nops_detect_slot_limit(const nops_detector *det);

/* ---- scoring -------------------------------------------------------------------------- */

/** r = max(|z|/z_threshold, |ze|/ewma_threshold) over the z/EWMA methods `p` enables (the
 *  CUSUM part of a point's ratio comes only from the kernel: nops_detect_out.ratio). */
double nops_detect_ratio(const nops_detect_params *p, double z, double ze);
/** score = 1 − 2^(−r²), in [0, 1]. */
double nops_detect_score(double ratio);
/** "zscore", "ewma", "cusum" or "season". */
const char *nops_detector_name(nops_detector_kind k);
/** Bytes of detector state per series at these params: SoA state, registry and id table (the
 *  key copy not included). */
size_t nops_detect_bytes_per_series(const nops_detect_params *p);

#endif /* NOPS_DETECT_H */
