/*
 * detect.h — per-series anomaly detection: the series registry, the SoA state and the SIMD
 * rolling z-score / EWMA kernels with hysteresis.
 *
 * Ownership: a nops_detector owns all series state and the copies of series keys it was given;
 * output arrays passed to the update calls belong to the caller and are only written. A detector
 * is not thread-safe: one thread (one partition worker) drives it, without locks. (The
 * correlator, which is shared and locked, is correlate/correlate.h.)
 *
 * Semantics (README.md "Detection"), per series, W = window:
 *   - rolling z = (x − mean) / std over the previous W points (the current point excluded),
 *     population std; no verdict (z = 0) until the window holds max(2, W/2) points;
 *   - EWMA: z_e = (x − m_prev) / sqrt(v_prev); then m ← m + α(x − m_prev) and
 *     v ← (1 − α)(v + α(x − m_prev)²); the first point sets m = x, v = 0; same warm-up;
 *   - std ≈ 0: the divisor is never below floor = 1e-6·|mean| + 1e-12, and |z| is clamped to
 *     NOPS_DETECT_Z_MAX, so z is always finite; a constant series has z = 0 exactly;
 *   - NaN/±Inf inputs are rejected: flags = 0, z = 0, state untouched;
 *   - ratio r = max(|z|/z_threshold, |z_e|/ewma_threshold) over the enabled methods; a point is
 *     anomalous when r ≥ 1; a series enters the anomalous state (one signal: NOPS_DETECT_FIRED)
 *     at its first anomalous point and leaves it (NOPS_DETECT_CLEARED) after `clear_points`
 *     consecutive points with r < hysteresis — one excursion, one signal;
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
#define NOPS_DETECT_MAX_WINDOW 1024    /**< largest W */

/** Which detectors feed the verdict. Values match the config enum "zscore|ewma|both". */
typedef enum nops_detect_method {
    NOPS_METHOD_ZSCORE = 0,
    NOPS_METHOD_EWMA = 1,
    NOPS_METHOD_BOTH = 2,
} nops_detect_method;

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
    double z_threshold;    /**< |rolling z| at or above this is anomalous */
    double ewma_threshold; /**< |EWMA z| at or above this is anomalous */
    int method;            /**< nops_detect_method */
    double hysteresis;     /**< leave the anomalous state below this fraction of a threshold */
    int64_t clear_points;  /**< ... for this many consecutive points */
    int64_t ttl_s;         /**< idle series are evicted after this many seconds (0 = never) */
    int variant;           /**< nops_detect_variant; NEURALOPS_DETECT_VARIANT forces one */
} nops_detect_params;

/** The [detect] section: table for core's config system (base: nops_detect_params). */
extern const nops_cfg_section nops_detect_cfg_section;

/** Defaults of the table, for callers without a nops_cfg. */
void nops_detect_params_default(nops_detect_params *p);
/** Cross-field validation (also run by nops_cfg_finalize). */
nops_err nops_detect_params_check(const nops_detect_params *p, char *errstr, size_t errstr_size);

/* Per-point output flags. */
#define NOPS_DETECT_VALID 0x01u   /**< the point was finite and updated the state */
#define NOPS_DETECT_WARM 0x02u    /**< enough history: z values are verdicts, not 0 */
#define NOPS_DETECT_ANOM 0x04u    /**< this point is anomalous (r ≥ 1) */
#define NOPS_DETECT_FIRED 0x08u   /**< the series entered the anomalous state: one signal */
#define NOPS_DETECT_CLEARED 0x10u /**< the series returned to normal */

/** Caller-owned output arrays, one element per input point; all three are required. */
typedef struct nops_detect_out {
    float *z;       /**< rolling z (0 if not warm, not enabled or rejected) */
    float *ze;      /**< EWMA z (0 if not warm, not enabled or rejected) */
    uint8_t *flags; /**< NOPS_DETECT_* bits */
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
const nops_detect_params *nops_detect_get_params(const nops_detector *det);

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
/**
 * Restore a series saved by nops_detect_save_series (registering it, or overwriting its state
 * if present); *used gets the bytes consumed. NOPS_PARSE for a malformed or foreign record
 * (other window or version), NOPS_NOMEM when it cannot be registered.
 */
nops_err nops_detect_restore_series(nops_detector *det, const uint8_t *rec, size_t len,
                                    uint32_t now_s, size_t *used, uint32_t *slot);
/** Slots handed out so far (slot indices are below this). */
uint32_t nops_detect_slot_limit(const nops_detector *det);

/* ---- scoring -------------------------------------------------------------------------- */

/** r = max(|z|/z_threshold, |ze|/ewma_threshold) over the methods `p` enables. */
double nops_detect_ratio(const nops_detect_params *p, double z, double ze);
/** score = 1 − 2^(−r²), in [0, 1]. */
double nops_detect_score(double ratio);

#endif /* NOPS_DETECT_H */
