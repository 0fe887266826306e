/*
 * detect_int.h — internals shared by the files of detect/ (not a public header).
 */
#ifndef NOPS_DETECT_INT_H
#define NOPS_DETECT_INT_H

#include "detect/detect.h"

/*
 * Series state, structure of arrays, every array 64-byte aligned and indexed by slot.
 *
 * The ring is k-major: ring[k * cap + slot]. When a fleet is scraped in lockstep every series of
 * a block sits at the same ring position, so one update reads and writes one contiguous vector
 * of the ring instead of one cache line per series.
 *
 * Numerics (the essay): window sums are kept in double and *shifted*: sum = Σ(x − K),
 * sumsq = Σ(x − K)² with K a float near the window mean. x − K of two floats is exact in double,
 * so for data at level 1e4 with σ = 1 the sums are exact integers in units of the smallest ulp
 * and the variance sumsq/n − (sum/n)² suffers no cancellation. Sums can still lose bits when
 * one window mixes wildly different magnitudes (a 1e30 spike absorbs the small values added
 * while it sits in the window, and removing it would leave garbage), so every time a series'
 * ring position wraps to 0 (every W updates) the sums and K are recomputed exactly from the ring:
 * the error a window can carry lives at most W updates. The EWMA mean and variance are double for
 * the same reason (float at 1e4 has a 1e-3 ulp, which would show in z_e).
 */
typedef struct nops__dstate {
    uint32_t cap;   /* slots allocated in every array */
    uint32_t W;     /* window */
    bool seasonal;  /* the seasonal arrays (sk, sper, sage) exist: allocated only once a season
                       is configured or set, so a detector without seasons pays nothing */
    float *ring;    /* W * cap values, ring[k * cap + s] */
    double *sum;    /* Σ(x − K) over the window */
    double *sumsq;  /* Σ(x − K)² over the window */
    float *shift;   /* K, re-chosen at every wrap */
    double *em;     /* EWMA mean */
    double *ev;     /* EW variance of the residual x − m (robust: clipped at 4σ once warm) */
    double *lm;     /* long-horizon baseline mean (α_L = 1/long_window) */
    double *lv;     /* long-horizon residual variance (clipped like ev) */
    double *gm;     /* CUSUM gate: long-horizon mean, never restarted */
    double *gv;     /* CUSUM gate: long-horizon residual variance, unclipped */
    float *lc;      /* lag-1 autocovariance of the long baseline's residuals (the CUSUM scales by
                       the long-run variance) */
    float *cp;      /* CUSUM S⁺ (σ units) */
    float *cn;      /* CUSUM S⁻ */
    float *last;    /* the previous valid value */
    float *res;     /* resolution: smallest non-zero |step| seen (0 = none yet) */
    uint32_t *age;  /* valid points seen, saturating at NOPS__AGE_MAX */
    uint32_t *lage; /* valid points since the long baseline (re)started */
    uint32_t *meta; /* NOPS__META_*: count, ring position and hysteresis state in one word */
    float *sk;      /* seasonal profile: NOPS_DETECT_SEASON_BINS knots, sk[b * cap + s] (k-major
                       like the ring, so a fleet in lockstep reads one vector per knot) */
    uint32_t *sper; /* season period in points (0 = no seasonal baseline for this series) */
    uint32_t *sage; /* season word: phase (points into the period, bits 0–23) and periods
                       completed since the baseline started (bits 24–31, saturating at 255) */
} nops__dstate;

#define NOPS__AGE_MAX 0x3fffffffu
#define NOPS__CLIP2 16.0  /* squared residuals enter the variances clipped at 4² σ² once warm */
#define NOPS__CUSUM_GATE 2.0 /* CUSUM only while long-horizon var ≤ this × short (EWMA) var */
#define NOPS__UCLIP 4.0f  /* CUSUM input clipped to ±4σ: spikes are the z detectors' job */
#define NOPS__SMEM 4u     /* the seasonal knots average over the last ~4 periods */
/* internal kernel index: NOPS_METHOD_ALL with the seasonal baseline (kernels.range[4]) */
#define NOPS__METHOD_ALL_SEASON 4
#define NOPS__KERNEL_N 5

/*
 * The small per-series counters share one 32-bit word, so that every array the kernel loop
 * touches has 32- or 64-bit elements: mixing 8- and 16-bit arrays with doubles makes GCC pick
 * 64-lane vectorisation factors that spill registers badly.
 */
#define NOPS__META_CNT(m) ((m) & 0x7ffu)           /* bits 0..10: points in the window ≤ W */
#define NOPS__META_POS(m) (((m) >> 11) & 0x7ffu)   /* bits 11..21: next ring index */
#define NOPS__META_HYST(m) ((m) >> 24)             /* bits 24..31: bit 7 in-anomaly, 0..6 quiet */
#define NOPS__META(cnt, pos, hyst) ((cnt) | ((pos) << 11) | ((hyst) << 24))

/* Constants a kernel needs, derived once from the params. */
typedef struct nops__kconst {
    uint32_t W;          /* window */
    uint32_t min_n;      /* points before a verdict (warmup) */
    uint32_t cusum_min_n;/* points before the CUSUM may alarm: max(warmup, long_window / 2) */
    double invW;         /* 1/W */
    double alpha;        /* EWMA α */
    double alpha_var;    /* EWMA variance α */
    double alpha_long;   /* long-horizon baseline α_L */
    float cusum_k;       /* CUSUM drift allowance */
    float inv_tz;        /* 1/z_threshold */
    float inv_te;        /* 1/ewma_threshold */
    float inv_h;         /* 1/cusum_threshold */
    float exit_ratio;    /* hysteresis */
    uint8_t clear_points;/* quiet points to leave the anomalous state */
} nops__kconst;

typedef void (*nops__range_fn)(const nops__kconst *k, nops__dstate *st, uint32_t first,
                               uint32_t n, const float *x, const nops_detect_out *out);
typedef void (*nops__pairs_fn)(const nops__kconst *k, nops__dstate *st, const uint32_t *slots,
                               uint32_t n, const float *x, const nops_detect_out *out);

/* One table per instruction set; index by nops_detect_method. */
typedef struct nops__kernels {
    nops__range_fn range[NOPS__KERNEL_N];
    nops__pairs_fn pairs[NOPS__KERNEL_N];
} nops__kernels;

extern const nops__kernels nops__kernels_scalar;
extern const nops__kernels nops__kernels_avx2;
extern const nops__kernels nops__kernels_avx512;

/* state.c */
nops_err nops__dstate_init(nops__dstate *st, uint32_t W, uint32_t cap, bool seasonal);
nops_err nops__dstate_enable_season(nops__dstate *st);
nops_err nops__dstate_grow(nops__dstate *st, uint32_t new_cap);
void nops__dstate_reset_slot(nops__dstate *st, uint32_t slot);
void nops__season_reset_slot(nops__dstate *st, uint32_t slot, uint32_t period);
void nops__dstate_fini(nops__dstate *st);
size_t nops__dstate_bytes_per_slot(uint32_t W, bool seasonal);
void nops__kconst_init(nops__kconst *k, const nops_detect_params *p);

#endif

#ifndef NOPS_DETECT_INT_DETECTOR
#define NOPS_DETECT_INT_DETECTOR
/* The detector: params, derived constants, SoA state, the registry and the chosen kernels. */
struct nops_detector {
    nops_detect_params p;       /* copy of the caller's params */
    nops__kconst k;             /* derived kernel constants */
    nops__dstate st;            /* series state, indexed by slot */
    const nops__kernels *kern;  /* kernels of the chosen variant */
    nops_detect_variant variant;/* the chosen variant (never AUTO) */
    /* registry: open addressing, linear probing, backward-shift deletion; id 0 = empty */
    uint64_t *ht_id;            /* ht_cap ids */
    uint32_t *ht_slot;          /* ht_cap slots */
    uint32_t ht_cap;            /* power of two, ≥ 2 × st.cap */
    uint64_t *slot_id;          /* slot → id (0 = free slot) */
    uint32_t *last_seen;        /* slot → seconds of last registration lookup */
    char **keys;                /* slot → key copy (NULL when none was given) */
    uint32_t *free_slots;       /* stack of evicted slots to reuse */
    uint32_t n_free;            /* entries on that stack */
    uint32_t hwm;               /* slots handed out so far (high-water mark) */
    uint64_t evictions;         /* series evicted since creation (caches of slots watch it) */
    uint64_t season_relearned;  /* series restored from an older record whose seasonal
                                   profile starts over (nops_detect_season_relearned) */
    uint32_t active;            /* registered series */
    size_t key_bytes;           /* bytes held by key copies incl. allocation headers */
};

/* registry.c */
nops_err nops__registry_init(nops_detector *det, uint32_t cap);
void nops__registry_fini(nops_detector *det);
#endif
